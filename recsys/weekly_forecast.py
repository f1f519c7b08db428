"""Next-week orders per product: a pooled model on lagged counts, pushes and market level, with a count interval.

One row per (product, forecast origin): features read only from the weeks before the origin, target the
orders of the seven days from it. The model is fitted on origins one to `fit_weeks` weeks before the
cut-off (never on the target week), LightGBM with a Poisson objective, so that every product borrows
strength from all the others (a sparse product falls back to its category and to the market).

Features, per product p and origin c (n_w: p's orders in the w-th week before c; M_w: all orders then):

- market-relative rates: p's share of the market last week, over weeks 1–4 and over the whole history,
  each times the market's reference level (median of M_1..M_4) — a spike or a data gap of the whole
  market then moves every product alike instead of being read as p's own change;
- the raw last-week count (the naive forecast) and the fraction of history weeks with an order;
- the category's share trend (weeks 1–4 against the whole history) and the product's share of its category;
- pushes, where the data has them: p's pushes last week and on average, and its push→order rate shrunk
  to the category's, times last week's pushes (the programme's own leading signal);
- the product's age in weeks (since launch, else since its first order), capped;
- holiday distance: signed weeks from the target week and from last week to the nearest holiday (`HOLIDAYS`,
  e.g. Chinese New Year), so that the stocking-up week before and the quiet week of the holiday differ.

The point forecast for WAPE is the median of the predictive count (absolute error is minimised by the
median, not the mean); the interval is gamma-Poisson with dispersion κ fitted by maximum likelihood on the
most recent fitting origin forecast by a model that did not see it, so that κ measures out-of-sample error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

WEEK_S = 7 * 86400.0
# Chinese New Year's eve and day, the one holiday that moves the shopping of whole weeks in our data.
HOLIDAYS: tuple[str, ...] = (
    "2000-02-04", "2000-02-05", "2001-01-23", "2001-01-24", "2002-02-11", "2002-02-12", "2023-01-21", "2023-01-22",
    "2024-02-09", "2024-02-10", "2025-01-28", "2025-01-29", "2026-02-16", "2026-02-17", "2027-02-05", "2027-02-06",
)
HOLIDAY_REACH = 3  # weeks around a holiday that count as touched by it
FEATURES: tuple[str, ...] = (
    "last", "share_last", "share_recent", "share_all", "active_weeks", "cat_trend", "cat_share", "cat_level",
    "push_last", "push_mean", "push_conv", "push_expected", "age_weeks", "holiday_target", "holiday_last",
)


def _local_naive(times: pd.Series) -> pd.Series:
    at = pd.to_datetime(times)
    return at.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None) if at.dt.tz is not None else at


def _naive_stamp(t: pd.Timestamp) -> pd.Timestamp:
    t = pd.Timestamp(t)
    return t.tz_convert("Asia/Shanghai").tz_localize(None) if t.tzinfo else t


def week_matrix(keys: pd.Series, times: pd.Series, cutoff: pd.Timestamp, weeks: int,
                index: pd.Index | None = None) -> pd.DataFrame:
    """Events per key in week w = 0..weeks relative to cutoff (0: [cutoff, cutoff + 7 d), w ≥ 1: the w-th week before)."""
    at = _local_naive(times)
    offset = np.floor((_naive_stamp(cutoff) - at).dt.total_seconds().to_numpy() / WEEK_S)
    week = (offset + 1).astype(int)
    keep = (week >= 0) & (week <= weeks)
    frame = pd.DataFrame({"key": keys.astype(str).to_numpy()[keep], "week": week[keep]})
    table = frame.groupby(["key", "week"]).size().unstack(fill_value=0)
    table = table.reindex(columns=range(weeks + 1), fill_value=0).astype(float)
    return table if index is None else table.reindex(index, fill_value=0.0)


def _holiday_weeks(cutoff: pd.Timestamp, weeks: int) -> np.ndarray:
    """Signed distance in weeks from week w = 0..weeks (relative to cutoff) to the nearest holiday week, clipped to ±3
    (0: the week holds a holiday, −1: the week before one, when people stock up; 3: no holiday near)."""
    days = pd.to_datetime(list(HOLIDAYS))
    offset = np.floor((_naive_stamp(cutoff) - days).total_seconds().to_numpy() / WEEK_S).astype(int) + 1
    out = np.full(weeks + 1, float(HOLIDAY_REACH))
    for w in range(weeks + 1):
        gaps = offset - w  # > 0: the holiday lies before week w
        near = gaps[np.abs(gaps) <= HOLIDAY_REACH]
        if len(near):
            out[w] = float(near[np.argmin(np.abs(near))])
    return out


@dataclass
class WeekData:
    """Weekly counts of orders (and pushes) per product relative to the latest cut-off, built once."""

    orders: pd.DataFrame  # product × week (0 = the target week of the latest cut-off)
    pushes: pd.DataFrame | None
    observed: np.ndarray  # week → the whole week lies after the data's first event
    holiday: np.ndarray  # week → signed weeks to the nearest holiday (`_holiday_weeks`)
    category: np.ndarray
    age_weeks: np.ndarray  # at the latest cut-off

    @classmethod
    def build(cls, orders: pd.DataFrame, products: pd.DataFrame, cutoff: pd.Timestamp, weeks: int,
              pushes: pd.DataFrame | None = None) -> "WeekData":
        """Count orders (non-refunded) and pushes per product and week, up to `weeks` weeks before `cutoff`."""
        if "refunded" in orders.columns:
            orders = orders[~orders["refunded"].fillna(False).astype(bool)]
        o = week_matrix(orders["product_id"], orders["ordered_at"], cutoff, weeks)
        p = None
        if pushes is not None and len(pushes):
            p = week_matrix(pushes["product_id"], pushes["pushed_at"], cutoff, weeks)
            index = o.index.union(p.index)
            o, p = o.reindex(index, fill_value=0.0), p.reindex(index, fill_value=0.0)
        start = _local_naive(orders["ordered_at"]).min()
        week_start = np.array([_naive_stamp(cutoff) - pd.Timedelta(days=7 * w) for w in range(weeks + 1)])
        observed = np.array([ws >= start.normalize() for ws in week_start])
        observed[0] = True
        prod = products.assign(product_id=products["product_id"].astype(str)).drop_duplicates("product_id")
        prod = prod.set_index("product_id").reindex(o.index)
        category = prod["category"].fillna("").astype(str).str.split("/", n=1).str[0].to_numpy(dtype=object)
        first = _local_naive(orders["ordered_at"]).groupby(orders["product_id"].astype(str).to_numpy()).min().reindex(o.index)
        launched = _local_naive(prod["launched_at"]) if "launched_at" in prod else first
        born = launched.fillna(first).fillna(_naive_stamp(cutoff))
        age = ((_naive_stamp(cutoff) - born).dt.total_seconds() / WEEK_S).to_numpy(float)
        return cls(o, p, observed, _holiday_weeks(cutoff, weeks), category, age)

    def rows(self, shift: int, history: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """(features, target, active) for the origin `shift` weeks before the latest cut-off."""
        cols = list(range(shift + 1, shift + 1 + history))
        seen = self.observed[cols]
        hist = self.orders[cols].to_numpy(float)[:, seen]
        if hist.shape[1] == 0:
            raise ValueError(f"no observed week before the origin {shift} weeks before the cut-off")
        target = self.orders[shift].to_numpy(float)
        market = hist.sum(axis=0)
        ref = float(np.median(market[:4]))
        last, m_last = hist[:, 0], max(market[0], 1.0)
        recent = hist[:, :4]
        share_last = last / m_last * ref
        share_recent = recent.sum(axis=1) / max(market[:4].sum(), 1.0) * ref
        share_all = hist.sum(axis=1) / max(market.sum(), 1.0) * ref
        codes, _ = pd.factorize(self.category)
        n_cat = np.bincount(codes, minlength=codes.max() + 1)
        cat_recent = np.bincount(codes, weights=share_recent)
        cat_all = np.bincount(codes, weights=share_all)
        cat_trend = ((cat_recent + 1.0) / (cat_all + 1.0))[codes]
        cat_share = (share_all + 0.1) / (cat_all[codes] + 0.1 * n_cat[codes])
        cat_level = (cat_all / np.maximum(n_cat, 1))[codes]
        feats: dict[str, Any] = {
            "last": last, "share_last": share_last, "share_recent": share_recent, "share_all": share_all,
            "active_weeks": (hist > 0).mean(axis=1), "cat_trend": cat_trend, "cat_share": cat_share, "cat_level": cat_level,
            "age_weeks": np.clip(self.age_weeks - shift, 0.0, 52.0),
            "holiday_target": np.full(len(last), self.holiday[shift]),
            "holiday_last": np.full(len(last), self.holiday[shift + 1]),
        }
        if self.pushes is not None:
            ph = self.pushes[cols].to_numpy(float)[:, seen]
            pos, tries = hist.sum(axis=1), ph.sum(axis=1)
            prior = (np.bincount(codes, weights=pos) + 1.0) / (np.bincount(codes, weights=tries) + 10.0)
            conv = (pos + 20.0 * prior[codes]) / (tries + 20.0)
            feats.update(push_last=ph[:, 0], push_mean=ph.mean(axis=1), push_conv=conv, push_expected=ph[:, 0] * conv)
        else:
            feats.update({name: np.full(len(last), np.nan) for name in ("push_last", "push_mean", "push_conv", "push_expected")})
        frame = pd.DataFrame(feats, index=self.orders.index)[list(FEATURES)]
        return frame, target, hist.sum(axis=1) > 0


@dataclass
class WeeklyOrderForecaster:
    """Pooled next-week orders per product (LightGBM Poisson on `FEATURES`) with a gamma-Poisson interval."""

    history_weeks: int = 8
    fit_weeks: int = 6
    level: float = 0.8
    n_estimators: int = 300
    learning_rate: float = 0.03
    num_leaves: int = 15
    min_child_samples: int = 50
    seed: int = 7

    def _model(self) -> Any:
        import lightgbm as lgb

        return lgb.LGBMRegressor(objective="poisson", n_estimators=self.n_estimators, learning_rate=self.learning_rate,
                                 num_leaves=self.num_leaves, min_child_samples=self.min_child_samples, subsample=0.8,
                                 subsample_freq=1, colsample_bytree=0.8, reg_lambda=1.0, random_state=self.seed,
                                 n_jobs=1, verbose=-1)

    def _stack(self, data: WeekData, shifts: range) -> tuple[pd.DataFrame, np.ndarray]:
        X, y = [], []
        for k in shifts:
            feats, target, active = data.rows(k, self.history_weeks)
            X.append(feats[active])
            y.append(target[active])
        return pd.concat(X, ignore_index=True), np.concatenate(y)

    def fit(self, orders: pd.DataFrame, products: pd.DataFrame, cutoff: pd.Timestamp,
            pushes: pd.DataFrame | None = None) -> "WeeklyOrderForecaster":
        """Fit on the origins 1..fit_weeks weeks before `cutoff`; κ on a recent origin forecast by a model fitted on older ones."""
        from recsys.reach import fit_dispersion, wape

        depth = self.history_weeks + self.fit_weeks + 1
        self.data_ = WeekData.build(orders, products, cutoff, depth, pushes)
        shifts = [k for k in range(1, self.fit_weeks + 2) if self.data_.observed[k + 1]]
        if len(shifts) < 2:
            raise ValueError("too little history before the cut-off to fit the forecaster")
        # κ is measured on the latest origin whose week is like the target's: a holiday week (or the stocking-up
        # week before one) only for such a week.
        festive = lambda k: self.data_.holiday[k] in (-1.0, 0.0)  # noqa: E731
        like = [k for k in shifts[:-1] if festive(k) == festive(0)]
        check_at = like[0] if like else 1
        X_old, y_old = self._stack(self.data_, range(check_at + 1, shifts[-1] + 1))
        X_new, y_new = self._stack(self.data_, range(check_at, check_at + 1))
        check = self._model().fit(X_old, y_old)
        mu_new = np.maximum(check.predict(X_new), 1e-6)
        self.dispersion_ = fit_dispersion(y_new, mu_new)
        self.check_wape_ = wape(y_new, count_median(mu_new, self.dispersion_))
        X, y = self._stack(self.data_, range(1, shifts[-1]))
        self.model_ = self._model().fit(X, y)
        self.cutoff_ = pd.Timestamp(cutoff)
        self.coef_ = np.array([self.model_.n_estimators])
        return self

    def forecast(self, orders: pd.DataFrame | None = None, products: pd.DataFrame | None = None) -> pd.DataFrame:
        """Per product: actual (when the target week is in the data), forecast mean, median, interval, naive, active."""
        from recsys.reach import count_interval

        feats, target, active = self.data_.rows(0, self.history_weeks)
        mu = np.maximum(self.model_.predict(feats), 0.0)
        lo, hi = count_interval(mu, self.dispersion_, self.level)
        return pd.DataFrame({"product_id": feats.index, "category": self.data_.category, "actual": target, "forecast": mu,
                             "median": count_median(mu, self.dispersion_), "lo": lo, "hi": hi,
                             "naive": feats["last"].to_numpy(), "active": active})


def count_median(mean: np.ndarray, dispersion: float) -> np.ndarray:
    """The median of the gamma-Poisson count (see `recsys.reach.count_median`)."""
    from recsys.reach import count_median as median

    return median(mean, dispersion)


def stationary_ceiling(mean: np.ndarray, dispersion: float) -> dict[str, float]:
    """Expected WAPE of the best point forecast (the median) and of naive last week if each count were drawn afresh
    every week from gamma-Poisson(mean, dispersion): the gain over naive no forecaster can beat in a stationary world."""
    from recsys.reach import _count_dist

    mu = np.maximum(np.asarray(mean, dtype=float), 1e-9)
    dist = _count_dist(mu, dispersion)
    top = int(np.max(dist.ppf(1.0 - 1e-12))) + 1
    y = np.arange(top + 1)[None, :]
    pmf = dist.pmf(y.T).T  # products × counts
    med = dist.ppf(0.5)[:, None]
    best = float((pmf * np.abs(y - med)).sum())
    cdf = np.cumsum(pmf, axis=1)
    # E|Y − Y'| for two independent draws = 2 Σ_k F(k)(1 − F(k)).
    naive = float((2.0 * cdf * (1.0 - cdf)).sum())
    total = float(mu.sum())
    return {"median_wape": best / total, "naive_wape": naive / total, "gain": 1.0 - best / naive if naive > 0 else float("nan")}
