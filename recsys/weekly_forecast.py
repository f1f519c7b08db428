"""Next-week orders per product: a pooled model on lagged counts, buyers, pushes and market level, with a count interval.

One row per (product, forecast origin): features read only from the weeks before the origin, target the
orders of the seven days from it. The model is fitted on every origin from one week before the cut-off back
to the oldest one with `min_history` observed weeks behind it (never on the target week), LightGBM with a
Poisson objective, so that every product borrows strength from all the others (a sparse product falls back to
its category, its brand and the market).

Features, per product p and origin c (n_w: p's orders in the w-th week before c; M_w: all orders then):

- market-relative rates: p's share of the market over the last 1, 2, 4 and 8 weeks, over the whole history
  and exponentially weighted, each times the market's reference level (median of the last eight observed
  M_w) — a spike or a data gap of the whole market then moves every product alike instead of being read as
  p's own change; last week's market against that level;
- the raw last-week count (the naive forecast), the fraction of history weeks with an order, weeks since the
  last order, and p's distinct buyers (last week, last four) with its orders per buyer (bulk or repeat buying);
- category and brand: their shares (per product) over the last week, four weeks and the whole history, the
  category's trend and the product's share of its category;
- pushes, where the data has them: p's pushes last week, over four weeks and on average, its push→order rate
  shrunk to the category's, and that rate times last week's, the last four weeks' and the average pushes
  (the programme's own leading signal);
- the product's age in weeks (since launch, else since its first order), capped;
- holiday distance: signed weeks from the target week and from last week to the nearest holiday (`HOLIDAYS`,
  e.g. Chinese New Year), so that the stocking-up week before and the quiet week of the holiday differ.

Calibration, on the latest fitting origin (forecast by a model fitted only on the origins before it):
the gamma-Poisson dispersion κ by maximum likelihood; the point quantile (what minimises WAPE there, near
the median, which minimises absolute error when the model is right); and the nominal level of the interval,
conformally: the level whose intervals cover the held-out week's counts closest to `level`.
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
    "last", "s1", "s2", "s4", "s8", "s_all", "s_ewm", "market_last", "active_weeks", "since_last",
    "buyers_last", "buyers_4", "per_buyer",
    "cat_s1", "cat_s4", "cat_all", "cat_trend", "cat_share", "brand_s4", "brand_all",
    "push_last", "push_4", "push_mean", "push_conv", "push_expected", "push_expected_4", "push_expected_mean",
    "age_weeks", "holiday_target", "holiday_last",
)
EWM_HALFLIFE = 2.0  # weeks


def _local_naive(times: pd.Series) -> pd.Series:
    at = pd.to_datetime(times)
    return at.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None) if at.dt.tz is not None else at


def _naive_stamp(t: pd.Timestamp) -> pd.Timestamp:
    t = pd.Timestamp(t)
    return t.tz_convert("Asia/Shanghai").tz_localize(None) if t.tzinfo else t


def _week_index(times: pd.Series, cutoff: pd.Timestamp) -> np.ndarray:
    offset = np.floor((_naive_stamp(cutoff) - _local_naive(times)).dt.total_seconds().to_numpy() / WEEK_S)
    return (offset + 1).astype(int)


def week_matrix(keys: pd.Series, times: pd.Series, cutoff: pd.Timestamp, weeks: int,
                index: pd.Index | None = None, distinct: pd.Series | None = None) -> pd.DataFrame:
    """Events per key in week w = 0..weeks relative to cutoff (0: [cutoff, cutoff + 7 d), w ≥ 1: the w-th week before).

    With `distinct`, the number of distinct values of it (e.g. buyers) per key and week instead of events."""
    week = _week_index(times, cutoff)
    keep = (week >= 0) & (week <= weeks)
    frame = pd.DataFrame({"key": keys.astype(str).to_numpy()[keep], "week": week[keep]})
    if distinct is not None:
        frame["who"] = distinct.astype(str).to_numpy()[keep]
        frame = frame.drop_duplicates()
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


def ewm_weights(weeks: int, halflife: float) -> np.ndarray:
    """Weights of weeks 1..weeks before an origin in an exponentially weighted mean (sum 1, week 1 heaviest)."""
    w = 0.5 ** (np.arange(weeks) / halflife)
    return w / w.sum()


def group_rate(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row, the mean of `values` over the rows sharing its code (a category's or brand's rate per product)."""
    n = np.bincount(codes)
    return (np.bincount(codes, weights=values) / np.maximum(n, 1))[codes]


@dataclass
class WeekData:
    """Weekly counts of orders, buyers (and pushes) per product relative to the latest cut-off, built once."""

    orders: pd.DataFrame  # product × week (0 = the target week of the latest cut-off)
    buyers: pd.DataFrame  # distinct buyers per product × week
    pushes: pd.DataFrame | None
    observed: np.ndarray  # week → the whole week lies after the data's first event
    holiday: np.ndarray  # week → signed weeks to the nearest holiday (`_holiday_weeks`)
    category: np.ndarray
    brand: np.ndarray
    age_weeks: np.ndarray  # at the latest cut-off

    @classmethod
    def build(cls, orders: pd.DataFrame, products: pd.DataFrame, cutoff: pd.Timestamp, weeks: int,
              pushes: pd.DataFrame | None = None) -> "WeekData":
        """Count orders (non-refunded), buyers and pushes per product and week, up to `weeks` weeks before `cutoff`."""
        if "refunded" in orders.columns:
            orders = orders[~orders["refunded"].fillna(False).astype(bool)]
        o = week_matrix(orders["product_id"], orders["ordered_at"], cutoff, weeks)
        # Buyers, else groups; with neither every order line counts as its own buyer.
        who_col = next((c for c in ("buyer_id", "group_id") if c in orders.columns), None)
        who = orders[who_col] if who_col else pd.Series(np.arange(len(orders)), index=orders.index)
        b = week_matrix(orders["product_id"], orders["ordered_at"], cutoff, weeks, o.index, distinct=who)
        p = None
        if pushes is not None and len(pushes):
            p = week_matrix(pushes["product_id"], pushes["pushed_at"], cutoff, weeks)
            index = o.index.union(p.index)
            o, b, p = (t.reindex(index, fill_value=0.0) for t in (o, b, p))
        start = _local_naive(orders["ordered_at"]).min()
        week_start = np.array([_naive_stamp(cutoff) - pd.Timedelta(days=7 * w) for w in range(weeks + 1)])
        observed = np.array([ws >= start.normalize() for ws in week_start])
        observed[0] = True
        prod = products.assign(product_id=products["product_id"].astype(str)).drop_duplicates("product_id")
        prod = prod.set_index("product_id").reindex(o.index)
        category = prod["category"].fillna("").astype(str).str.split("/", n=1).str[0].to_numpy(dtype=object)
        brand = prod["brand"].fillna("").astype(str).to_numpy(dtype=object) if "brand" in prod else np.full(len(o), "", dtype=object)
        first = _local_naive(orders["ordered_at"]).groupby(orders["product_id"].astype(str).to_numpy()).min().reindex(o.index)
        launched = _local_naive(prod["launched_at"]) if "launched_at" in prod else first
        born = launched.fillna(first).fillna(_naive_stamp(cutoff))
        age = ((_naive_stamp(cutoff) - born).dt.total_seconds() / WEEK_S).to_numpy(float)
        return cls(o, b, p, observed, _holiday_weeks(cutoff, weeks), category, brand, age)

    def history_depth(self, shift: int) -> int:
        """Observed weeks before the origin `shift` weeks before the latest cut-off."""
        return int(self.observed[shift + 1:].sum())

    def rows(self, shift: int, history: int, active_weeks: int | None = None) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """(features, target, active) for the origin `shift` weeks before the latest cut-off; active: an order in
        the `active_weeks` (default `history`) weeks before the origin."""
        cols = [c for c in range(shift + 1, shift + 1 + history) if c < len(self.observed) and self.observed[c]]
        if not cols:
            raise ValueError(f"no observed week before the origin {shift} weeks before the cut-off")
        hist = self.orders[cols].to_numpy(float)
        who = self.buyers[cols].to_numpy(float)
        target = self.orders[shift].to_numpy(float)
        market = hist.sum(axis=0)
        ref = max(float(np.median(market[:8])), 1.0)

        def share(k: int) -> np.ndarray:
            return hist[:, :k].sum(axis=1) / max(market[:k].sum(), 1.0) * ref

        ew = ewm_weights(len(cols), EWM_HALFLIFE)
        s1, s4, s_all = share(1), share(4), share(len(cols))
        cat, _ = pd.factorize(self.category)
        brand, _ = pd.factorize(self.brand)
        n_cat = np.bincount(cat)
        cat_s4, cat_all = group_rate(cat, s4), group_rate(cat, s_all)
        seen = hist > 0
        since = np.where(seen.any(axis=1), seen.argmax(axis=1), len(cols)).astype(float)
        feats: dict[str, Any] = {
            "last": hist[:, 0], "s1": s1, "s2": share(2), "s4": s4, "s8": share(8), "s_all": s_all,
            "s_ewm": (hist @ ew) / max(float(market @ ew), 1.0) * ref, "market_last": np.full(len(s1), market[0] / ref),
            "active_weeks": seen.mean(axis=1), "since_last": since,
            "buyers_last": who[:, 0] / max(market[0], 1.0) * ref, "buyers_4": who[:, :4].sum(axis=1) / max(market[:4].sum(), 1.0) * ref,
            "per_buyer": (hist[:, :8].sum(axis=1) + 1.0) / (who[:, :8].sum(axis=1) + 1.0),
            "cat_s1": group_rate(cat, s1), "cat_s4": cat_s4, "cat_all": cat_all,
            "cat_trend": (cat_s4 + 0.1) / (cat_all + 0.1),
            "cat_share": (s_all + 0.1) / (cat_all * n_cat[cat] + 0.1 * n_cat[cat]),
            "brand_s4": group_rate(brand, s4), "brand_all": group_rate(brand, s_all),
            "age_weeks": np.clip(self.age_weeks - shift, 0.0, 52.0),
            "holiday_target": np.full(len(s1), self.holiday[shift]),
            "holiday_last": np.full(len(s1), self.holiday[shift + 1]),
        }
        if self.pushes is not None:
            ph = self.pushes[cols].to_numpy(float)
            pos, tries = hist.sum(axis=1), ph.sum(axis=1)
            prior = (np.bincount(cat, weights=pos) + 1.0) / (np.bincount(cat, weights=tries) + 10.0)
            conv = (pos + 20.0 * prior[cat]) / (tries + 20.0)
            feats.update(push_last=ph[:, 0], push_4=ph[:, :4].mean(axis=1), push_mean=ph.mean(axis=1), push_conv=conv,
                         push_expected=ph[:, 0] * conv, push_expected_4=ph[:, :4].mean(axis=1) * conv,
                         push_expected_mean=ph.mean(axis=1) * conv)
        else:
            feats.update({name: np.full(len(s1), np.nan) for name in FEATURES if name.startswith("push_")})
        frame = pd.DataFrame(feats, index=self.orders.index)[list(FEATURES)]
        window = hist[:, :active_weeks] if active_weeks else hist
        return frame, target, window.sum(axis=1) > 0


def pick_quantile(y: np.ndarray, mean: np.ndarray, dispersion: float,
                  grid: tuple[float, ...] = (0.4, 0.45, 0.5, 0.55, 0.6)) -> float:
    """The quantile of the gamma-Poisson predictive count whose values have the least WAPE on held-out counts y
    (ties go to the one nearest the median)."""
    from recsys.reach import _count_dist, wape

    dist = _count_dist(np.maximum(np.asarray(mean, dtype=float), 1e-9), dispersion)
    errors = [(round(wape(y, dist.ppf(q)), 6), abs(q - 0.5), q) for q in grid]
    return min(errors)[2]


def calibrate_level(y: np.ndarray, mean: np.ndarray, dispersion: float, target: float = 0.8,
                    grid: tuple[float, ...] = tuple(np.round(np.arange(0.6, 0.951, 0.01), 2))) -> float:
    """Conformal level: the nominal level of `count_interval` whose intervals cover held-out counts y closest to target."""
    from recsys.reach import count_interval

    y = np.asarray(y, dtype=float)
    gaps = []
    for level in grid:
        lo, hi = count_interval(mean, dispersion, level)
        gaps.append((abs(float(np.mean((y >= lo) & (y <= hi))) - target), abs(level - target), level))
    return float(min(gaps)[2])


@dataclass
class WeeklyOrderForecaster:
    """Pooled next-week orders per product (LightGBM Poisson on `FEATURES`) with a calibrated gamma-Poisson interval.

    `history_weeks` weeks before an origin define the products counted (those with an order then);
    features read up to `lookback_weeks` weeks. Fitting origins: 1..`fit_weeks` weeks before the cut-off
    (at most), each with at least `min_history` observed weeks behind it.
    """

    history_weeks: int = 8
    fit_weeks: int = 10
    lookback_weeks: int = 12
    min_history: int = 4
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

    def _rows(self, shift: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        return self.data_.rows(shift, self.lookback_weeks, self.history_weeks)

    def _stack(self, shifts: list[int]) -> tuple[pd.DataFrame, np.ndarray]:
        X, y = [], []
        for k in shifts:
            feats, target, active = self._rows(k)
            X.append(feats[active])
            y.append(target[active])
        return pd.concat(X, ignore_index=True), np.concatenate(y)

    def fit(self, orders: pd.DataFrame, products: pd.DataFrame, cutoff: pd.Timestamp,
            pushes: pd.DataFrame | None = None) -> "WeeklyOrderForecaster":
        """Fit on the origins before `cutoff`; κ, the point quantile and the interval level on the latest one like the
        target week, forecast by a model fitted on the origins before it."""
        from recsys.reach import fit_dispersion, wape

        depth = self.lookback_weeks + self.fit_weeks + 1
        self.data_ = WeekData.build(orders, products, cutoff, depth, pushes)
        shifts = [k for k in range(1, self.fit_weeks + 1) if self.data_.history_depth(k) >= self.min_history]
        if len(shifts) < 2:
            raise ValueError("too little history before the cut-off to fit the forecaster")
        # The check origin is the latest whose week is like the target's: a holiday week (or the stocking-up
        # week before one) only for such a week.
        festive = lambda k: self.data_.holiday[k] in (-1.0, 0.0)  # noqa: E731
        like = [k for k in shifts[:-1] if festive(k) == festive(0)]
        check_at = like[0] if like else shifts[0]
        X_old, y_old = self._stack([k for k in shifts if k > check_at])
        X_new, y_new = self._stack([check_at])
        mu_new = np.maximum(self._model().fit(X_old, y_old).predict(X_new), 1e-6)
        self.dispersion_ = fit_dispersion(y_new, mu_new)
        self.quantile_ = pick_quantile(y_new, mu_new, self.dispersion_)
        self.interval_level_ = calibrate_level(y_new, mu_new, self.dispersion_, self.level)
        self.check_wape_ = wape(y_new, count_quantile(mu_new, self.dispersion_, self.quantile_))
        X, y = self._stack(shifts)
        self.model_ = self._model().fit(X, y)
        self.cutoff_ = pd.Timestamp(cutoff)
        self.fit_origins_ = shifts
        return self

    def forecast(self, orders: pd.DataFrame | None = None, products: pd.DataFrame | None = None) -> pd.DataFrame:
        """Per product: actual (when the target week is in the data), forecast mean, point (calibrated quantile),
        interval, naive, active."""
        from recsys.reach import count_interval

        feats, target, active = self._rows(0)
        mu = np.maximum(self.model_.predict(feats), 0.0)
        lo, hi = count_interval(mu, self.dispersion_, self.interval_level_)
        return pd.DataFrame({"product_id": feats.index, "category": self.data_.category, "actual": target, "forecast": mu,
                             "median": count_quantile(mu, self.dispersion_, self.quantile_), "lo": lo, "hi": hi,
                             "naive": feats["last"].to_numpy(), "active": active})


def count_quantile(mean: np.ndarray, dispersion: float, q: float = 0.5) -> np.ndarray:
    """The q-quantile of the gamma-Poisson count with this mean (q = 0.5: `recsys.reach.count_median`)."""
    from recsys.reach import _count_dist

    return np.asarray(_count_dist(np.atleast_1d(mean), dispersion).ppf(q), dtype=float)


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
