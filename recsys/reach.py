"""Brand reach: how many groups, members, orders, GMV and commission a product (or a brand) gets from the programme.

The programme is simulated, not guessed: every group that holds one of the asked products among its
candidates (or, for a cold group, among its segment's) gets its picks re-made with the ops weights and
the rules (`recsys.picks.select_picks`), once per day of the horizon, products picked on earlier days
being left out as the no-repeat rule does. Each placement (a pick of the product in a group on a day)
is one Bernoulli term: the group orders with probability p_conv. Hence per product set

    groups  = groups whose picks include it (day 1; distinct groups over the week)
    members = Σ member_count over those groups
    orders  = Σ p_conv                         GMV = Σ p_conv × order value paid (after coupon)
    commission paid = GMV × commission_rate

Intervals: a count built from Bernoulli terms whose probabilities are themselves estimates is
over-dispersed; we model it as gamma-Poisson (negative binomial) with var = μ + κμ², κ being
`ReachConfig.dispersion`, measured on the backtest (`recsys.weekly_forecast`, benchmarks/reach_backtest.py).
GMV and commission intervals scale the orders interval by their mean per order. Groups and members are
what the programme will do given today's artifact and are exact (no interval is invented for them).

What-if: a change of price, commission rate or coupon re-scores p_conv through a `Rescorer` (the ranker
on the pairs' stored feature rows) and then re-blends and re-picks; without a rescorer only the blend
sees the change (the answer says `rescored: false`). A product nobody has bought yet borrows the
placements of its nearest known products by title embedding, within its main category.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from contracts.config import BlendWeights, OpsWeights, ReachConfig, RuleConfig
from recsys.picks import select_picks

# Candidate columns a what-if may change, and those recomputed from them.
CHANGEABLE: tuple[str, ...] = ("price", "commission_rate", "coupon")
PLACEMENT_COLUMNS: tuple[str, ...] = ("day", "group_id", "rank", "product_id", "p_conv", "price", "commission_rate",
                                      "commission_yuan", "order_value", "coupon", "rating", "category", "brand",
                                      "member_count", "seller_type", "city_tier")
# The daily job's table of the candidates' ranker rows (see `training.tables.feature_table`).
FEATURES_FILE = "candidate_features.parquet"


# ----------------------------------------------------------------------------------- the count model


def count_interval(mean: np.ndarray | float, dispersion: float, level: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """Interval of a gamma-Poisson count with this mean and var = mean + dispersion·mean².

    The lower end is the (1 − level)/2 quantile; of the two upper ends around the (1 + level)/2 quantile
    the one whose coverage is nearer `level` is taken, so that small counts (where no interval covers
    exactly 80 %) are not always over-covered.
    """
    mu = np.atleast_1d(np.asarray(mean, dtype=float))
    mu = np.maximum(np.nan_to_num(mu), 0.0)
    alpha = (1.0 - level) / 2.0
    dist = _count_dist(mu, dispersion)
    lo = np.maximum(dist.ppf(alpha), 0.0)
    hi = np.maximum(dist.ppf(1.0 - alpha), lo)
    below = dist.cdf(lo - 1)
    cover_hi = dist.cdf(hi) - below
    hi_less = np.maximum(hi - 1, lo)
    cover_less = dist.cdf(hi_less) - below
    hi = np.where(np.abs(cover_less - level) < np.abs(cover_hi - level), hi_less, hi)
    zero = mu <= 0
    return np.where(zero, 0.0, lo), np.where(zero, 0.0, hi)


def _count_dist(mu: np.ndarray, dispersion: float) -> Any:
    mu = np.maximum(np.nan_to_num(np.asarray(mu, dtype=float)), 1e-12)
    if dispersion <= 0:
        return stats.poisson(mu)
    r = 1.0 / dispersion
    return stats.nbinom(r, r / (r + mu))


def count_median(mean: np.ndarray | float, dispersion: float) -> np.ndarray:
    """The median of the gamma-Poisson count: the point forecast that minimises absolute error (WAPE)."""
    return np.asarray(_count_dist(np.atleast_1d(mean), dispersion).ppf(0.5), dtype=float)


def nb_log_likelihood(y: np.ndarray, mu: np.ndarray, dispersion: float) -> float:
    """Σ log P(y | gamma-Poisson with mean mu and this dispersion); Poisson at dispersion 0."""
    y = np.asarray(y, dtype=float)
    mu = np.maximum(np.asarray(mu, dtype=float), 1e-9)
    if dispersion <= 0:
        return float(stats.poisson.logpmf(y, mu).sum())
    r = 1.0 / dispersion
    return float(stats.nbinom.logpmf(y, r, r / (r + mu)).sum())


def fit_dispersion(y: np.ndarray, mu: np.ndarray) -> float:
    """Maximum-likelihood dispersion κ of counts y around forecasts mu (grid on a log scale, 0 allowed)."""
    grid = np.r_[0.0, np.geomspace(1e-3, 20.0, 60)]
    ll = [nb_log_likelihood(y, mu, k) for k in grid]
    return float(grid[int(np.argmax(ll))])


def wape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Weighted absolute percentage error Σ|y − ŷ| / Σy."""
    actual = np.asarray(actual, dtype=float)
    return float(np.abs(actual - np.asarray(forecast, dtype=float)).sum() / max(actual.sum(), 1e-12))


# ----------------------------------------------------------------------------------- the backtest forecaster


def weekly_counts(orders: pd.DataFrame, cutoff: pd.Timestamp, weeks: int) -> pd.DataFrame:
    """Non-refunded order lines per product in each of the `weeks` weeks before cutoff (column 1 = the last week)
    and in the week from cutoff on (column 0)."""
    o = orders
    if "refunded" in o.columns:
        o = o[~o["refunded"].fillna(False).astype(bool)]
    at = pd.to_datetime(o["ordered_at"])
    if at.dt.tz is not None:
        at = at.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None)
    cutoff = pd.Timestamp(cutoff)
    cutoff = cutoff.tz_convert("Asia/Shanghai").tz_localize(None) if cutoff.tzinfo else cutoff
    offset = np.floor((cutoff - at).dt.total_seconds().to_numpy() / (7 * 86400.0))
    week = (offset + 1).astype(int)  # 0: [cutoff, cutoff+7d), 1: the week before, ...
    keep = (week >= 0) & (week <= weeks)
    frame = pd.DataFrame({"product_id": o["product_id"].astype(str).to_numpy()[keep], "week": week[keep]})
    table = frame.groupby(["product_id", "week"]).size().unstack(fill_value=0)
    return table.reindex(columns=range(weeks + 1), fill_value=0).astype(float)


@dataclass
class OrderRateForecaster:
    """Next-week orders per product, with a gamma-Poisson interval, learnt on the weeks just before the cut-off.

    The forecast is a non-negative mix of rates read before the cut-off,

        μ_p = β1·n_p,1 + β2·mean(n_p,2..4) + β3·mean(n_p,5..H) + β4·(category mean of n_·,1)
              + β5·(long-run share of p) × (all orders last week)

    (n_p,w: orders of p in the w-th week before the cut-off). The β are fitted by non-negative least
    squares on `fit_weeks` earlier weeks, each forecast from its own past exactly as the target will be;
    the dispersion κ by maximum likelihood on the same weeks. Last week alone is the naive forecast
    (β = (1, 0, 0, 0, 0)); the others smooth its noise and follow the market's level.
    """

    history_weeks: int = 8
    level: float = 0.8
    fit_weeks: int = 3

    def _features(self, table: pd.DataFrame, cats: np.ndarray) -> np.ndarray:
        hist = table.loc[:, 1:].to_numpy(float)
        weeks = hist.shape[1]
        last = hist[:, 0]
        recent = hist[:, 1:min(4, weeks)].mean(axis=1) if weeks > 1 else last
        old = hist[:, 4:].mean(axis=1) if weeks > 4 else recent
        codes, _ = pd.factorize(cats)
        cat_last = (np.bincount(codes, weights=last) / np.maximum(np.bincount(codes), 1))[codes]
        total = hist.sum(axis=0)
        share = hist.sum(axis=1) / max(total.sum(), 1.0)
        return np.column_stack([last, recent, old, cat_last, share * total[0]])

    def _rows(self, orders: pd.DataFrame, products: pd.DataFrame, cutoff: pd.Timestamp) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        table = weekly_counts(orders, cutoff, self.history_weeks)
        cats = _categories(products, table.index)
        return table, cats, self._features(table, cats)

    def fit(self, orders: pd.DataFrame, products: pd.DataFrame, cutoff: pd.Timestamp) -> "OrderRateForecaster":
        """Fit the mix and the dispersion on the `fit_weeks` weeks before `cutoff` (the target week is never read)."""
        from scipy.optimize import nnls

        X, y = [], []
        for k in range(1, self.fit_weeks + 1):
            table, _, feats = self._rows(orders, products, pd.Timestamp(cutoff) - pd.Timedelta(days=7 * k))
            active = table.loc[:, 1:].to_numpy().sum(axis=1) > 0
            X.append(feats[active])
            y.append(table[0].to_numpy(float)[active])
        X_all, y_all = np.vstack(X), np.concatenate(y)
        self.coef_, _ = nnls(X_all, y_all)
        mu = np.maximum(X_all @ self.coef_, 1e-6)
        self.fit_wape_ = wape(y_all, mu)
        self.dispersion_ = fit_dispersion(y_all, mu)
        self.cutoff_ = pd.Timestamp(cutoff)
        return self

    def forecast(self, orders: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
        """Per product with orders in the history or the target week: actual, forecast, interval, naive last week."""
        table, cats, feats = self._rows(orders, products, self.cutoff_)
        mu = np.maximum(feats @ self.coef_, 0.0)
        lo, hi = count_interval(mu, self.dispersion_, self.level)
        hist = table.loc[:, 1:].to_numpy()
        return pd.DataFrame({"product_id": table.index, "category": cats, "actual": table[0].to_numpy(), "forecast": mu,
                             "median": count_median(mu, self.dispersion_), "lo": lo, "hi": hi,
                             "naive": table[1].to_numpy(), "active": hist.sum(axis=1) > 0})


def _categories(products: pd.DataFrame, ids: pd.Index) -> np.ndarray:
    cat = products.assign(product_id=products["product_id"].astype(str)).set_index("product_id")["category"]
    cat = cat[~cat.index.duplicated()].astype(str).str.split("/", n=1).str[0]
    return cat.reindex(ids).fillna("").to_numpy(dtype=object)


def backtest_summary(frame: pd.DataFrame) -> dict[str, float]:
    """WAPE of the forecast and of naive last week, the relative gain and the interval coverage, on active products."""
    f = frame[frame["active"]]
    ours, naive = wape(f["actual"], f["forecast"]), wape(f["actual"], f["naive"])
    median = wape(f["actual"], f["median"]) if "median" in f else float("nan")
    covered = (f["actual"] >= f["lo"]) & (f["actual"] <= f["hi"])
    return {"products": int(len(f)), "actual_orders": float(f["actual"].sum()), "wape": ours, "naive_wape": naive,
            "gain_vs_naive": 1.0 - ours / naive if naive > 0 else float("nan"),
            "median_wape": median, "median_gain_vs_naive": 1.0 - median / naive if naive > 0 else float("nan"),
            "coverage": float(covered.mean())}


# ----------------------------------------------------------------------------------- candidates and rescoring


class CandidateSource(Protocol):
    """Where the programme's candidate rows come from (the artifact, or a frame in tests)."""

    groups: pd.DataFrame  # group_id, seller_type, city_tier, member_count, cold_start, segment

    def rows(self, group_id: str) -> dict[str, np.ndarray]:
        """The group's candidate rows as column → array (its segment's when it is cold)."""
        ...

    def groups_with(self, product_ids: Iterable[str]) -> list[str]:
        """Groups whose candidate rows hold any of these products."""
        ...


class ArtifactCandidates:
    """Candidate rows of a loaded daily artifact (`contracts.artifact.Artifact`)."""

    def __init__(self, artifact: Any) -> None:
        self.artifact = artifact
        self.groups = artifact.groups

    def rows(self, group_id: str) -> dict[str, np.ndarray]:
        """Own candidates, or the segment's for a cold group or one without rows."""
        group = self.artifact.group(group_id)
        cols = self.artifact.candidate_arrays(group_id)
        if bool(group.get("cold_start", False)) or len(cols.get("product_id", ())) == 0:
            cols = self.artifact.segment_arrays(str(group.get("segment", "")))
        return cols

    def groups_with(self, product_ids: Iterable[str]) -> list[str]:
        """Warm groups holding the products plus cold groups whose segment holds them."""
        wanted = set(map(str, product_ids))
        cands, segs, groups = self.artifact.candidates, self.artifact.segment_candidates, self.groups
        warm = set(cands.loc[cands["product_id"].isin(wanted), "group_id"].astype(str))
        seg_hit = set(segs.loc[segs["product_id"].isin(wanted), "segment"].astype(str))
        has_rows = set(cands["group_id"].astype(str))
        cold = groups["cold_start"].astype(bool) | ~groups["group_id"].astype(str).isin(has_rows)
        cold_hit = groups.loc[cold & groups["segment"].astype(str).isin(seg_hit), "group_id"].astype(str)
        warm_ok = groups.loc[~cold & groups["group_id"].astype(str).isin(warm), "group_id"].astype(str)
        return sorted(set(warm_ok) | set(cold_hit))


class Rescorer(Protocol):
    """Re-estimates p_conv for candidate rows whose price, commission rate or coupon changed."""

    def rescore(self, rows: pd.DataFrame) -> np.ndarray:
        """rows: group_id, product_id, feature_product_id (whose stored features to start from), price,
        commission_rate, coupon (the new values). Returns the new p_conv per row."""
        ...


class RankerRescorer:
    """The real rescorer: the artifact's conversion ranker on the pairs' stored feature rows, repriced.

    `features` is the artifact's `candidate_features` table (one ranker row per stored (group_id,
    product_id) candidate, as the daily job scored it), or the path of its Parquet file, read then only
    for the products asked about. `recsys.ranker.reprice_features` rewrites the price-like columns,
    commission and coupon; pairs without a stored row keep their p_conv (NaN returned).
    """

    def __init__(self, ranker: Any, features: pd.DataFrame | str | Path) -> None:
        self.ranker = ranker
        self.features = features

    @classmethod
    def from_artifact(cls, artifact: Any) -> "RankerRescorer | None":
        """The rescorer of an artifact holding models/ranker.* and candidate_features.parquet, else None."""
        from recsys.ranker import load_ranker

        path = Path(getattr(artifact, "path", artifact)) / FEATURES_FILE
        if not path.is_file():
            return None
        try:
            ranker = load_ranker(artifact)
        except FileNotFoundError:
            return None
        return cls(ranker, path)

    def _rows(self, product_ids: Sequence[str]) -> pd.DataFrame:
        wanted = sorted(set(map(str, product_ids)))
        if isinstance(self.features, pd.DataFrame):
            frame = self.features[self.features["product_id"].astype(str).isin(wanted)]
        else:
            frame = pd.read_parquet(self.features, filters=[("product_id", "in", wanted)])
        frame = frame.assign(group_id=frame["group_id"].astype(str), product_id=frame["product_id"].astype(str))
        return frame.drop_duplicates(["group_id", "product_id"]).set_index(["group_id", "product_id"])

    def rescore(self, rows: pd.DataFrame) -> np.ndarray:
        """New p_conv per row (NaN where no feature row is stored)."""
        from recsys.ranker import EXPOSED, reprice_features

        stored = self._rows(rows["feature_product_id"].astype(str).unique())
        key = pd.MultiIndex.from_arrays([rows["group_id"].astype(str).to_numpy(),
                                         rows["feature_product_id"].astype(str).to_numpy()])
        pos = stored.index.get_indexer(key)
        out = np.full(len(rows), np.nan)
        ok = pos >= 0
        if not ok.any():
            return out
        sub = rows.loc[ok]
        X = reprice_features(stored.iloc[pos[ok]].reset_index(), price=sub["price"].to_numpy(float),
                             commission_rate=sub["commission_rate"].to_numpy(float),
                             coupon=np.nan_to_num(sub["coupon"].to_numpy(float)) if "coupon" in sub else None)
        if EXPOSED in self.ranker.feature_names_:
            X[EXPOSED] = 1  # a what-if asks about a pair that is shown
        out[ok] = self.ranker.predict_proba(X)
        return out


# ----------------------------------------------------------------------------------- changes to candidates


@dataclass(frozen=True)
class Change:
    """A what-if on some products: any of a new price, commission rate or coupon (None keeps the current value)."""

    price: float | None = None
    commission_rate: float | None = None
    coupon: float | None = None

    def is_empty(self) -> bool:
        """Whether nothing changes."""
        return self.price is None and self.commission_rate is None and self.coupon is None


@dataclass
class NewProduct:
    """A product nobody has bought yet, placed by analogy with its nearest known products."""

    product_id: str
    title: str
    category: str
    price: float
    commission_rate: float
    brand: str = ""
    coupon: float = 0.0
    rating: float | None = None


@dataclass
class Overlay:
    """Per-product replacements of candidate rows (a what-if) and extra rows (new products), applied per group."""

    changed: dict[str, dict[str, float]] = field(default_factory=dict)  # product -> column -> new value
    rescored: dict[tuple[str, str], float] = field(default_factory=dict)  # (group, product) -> new p_conv
    extra: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # group -> new candidate rows

    def apply(self, group_id: str, cols: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The group's candidate columns with the overlay applied (the stored arrays are never written)."""
        out = {c: np.array(v, copy=True) for c, v in cols.items()}
        pids = out["product_id"].astype(str) if "product_id" in out else np.zeros(0, dtype=str)
        for pid, values in self.changed.items():
            hit = pids == pid
            if not hit.any():
                continue
            for col, value in values.items():
                if col in out:
                    out[col] = out[col].astype(float) if out[col].dtype.kind in "iub" else out[col]
                    out[col][hit] = value
            for j in np.flatnonzero(hit):
                p = self.rescored.get((group_id, pid))
                if p is not None and "p_conv" in out and not np.isnan(p):
                    out["p_conv"][j] = p
        rows = self.extra.get(group_id)
        if rows:
            frame = pd.concat([pd.DataFrame(out), pd.DataFrame(rows)], ignore_index=True)
            out = {c: frame[c].to_numpy() for c in frame.columns}
        return out


def component_values(row: Mapping[str, Any], change: Change, mean_qty: float) -> dict[str, float]:
    """The blend components of a candidate after a change: price, commission, coupon, commission_yuan, order_value."""
    price = float(row["price"]) if change.price is None else float(change.price)
    rate = float(row["commission_rate"]) if change.commission_rate is None else float(change.commission_rate)
    coupon = float(row.get("coupon", 0.0) or 0.0) if change.coupon is None else float(change.coupon)
    return {"price": price, "commission_rate": rate, "coupon": coupon, "commission_yuan": price * rate,
            "order_value": price * mean_qty}


def change_overlay(source: CandidateSource, product_ids: Sequence[str], change: Change,
                   rescorer: Rescorer | None, group_ids: Sequence[str]) -> tuple[Overlay, bool]:
    """The overlay of a what-if on these products, rescored through `rescorer` when given; (overlay, rescored)."""
    overlay = Overlay()
    records: list[dict[str, Any]] = []
    wanted = set(map(str, product_ids))
    for gid in group_ids:
        cols = source.rows(gid)
        pids = cols["product_id"].astype(str)
        for j in np.flatnonzero(np.isin(pids, list(wanted))):
            pid = pids[j]
            row = {c: cols[c][j] for c in ("price", "commission_rate", "coupon", "order_value") if c in cols}
            qty = float(row.get("order_value", row["price"])) / max(float(row["price"]), 1e-9)
            values = component_values(row, change, qty)
            overlay.changed.setdefault(pid, values)
            records.append({"group_id": gid, "product_id": pid, "feature_product_id": pid, **values})
    rescored = False
    if rescorer is not None and records:
        frame = pd.DataFrame(records)
        p = rescorer.rescore(frame)
        for (gid, pid), value in zip(zip(frame["group_id"], frame["product_id"]), p):
            if not np.isnan(value):
                overlay.rescored[(gid, pid)] = float(value)
        rescored = bool(np.isfinite(p).any())
    return overlay, rescored


def cold_overlay(source: CandidateSource, products: pd.DataFrame, new: NewProduct, embedder: Any,
                 neighbours: int, rescorer: Rescorer | None = None) -> tuple[Overlay, list[dict[str, Any]]]:
    """Place a new product where its nearest known products (title embedding, same main category first) sit.

    In each group holding some neighbours, the new product gets one candidate row whose p_conv is the
    similarity-weighted mean of the neighbours' p_conv there (or the ranker's on the best neighbour's
    feature row with the new price and commission, when a rescorer is given). Returns (overlay, neighbours).
    """
    known = products.assign(product_id=products["product_id"].astype(str))
    main = known["category"].astype(str).str.split("/", n=1).str[0]
    new_main = str(new.category).split("/", 1)[0]
    pool = known[(main == new_main).to_numpy()] if (main == new_main).any() else known
    pool = pool[pool["product_id"] != new.product_id]
    if pool.empty:
        return Overlay(), []
    vectors = np.asarray(embedder.encode([new.title] + pool["title"].astype(str).tolist()), dtype=float)
    sims = vectors[1:] @ vectors[0]
    order = np.argsort(-sims)[:neighbours]
    near = pool.iloc[order].assign(similarity=sims[order])
    near = near[near["similarity"] > 0]
    weight = dict(zip(near["product_id"], near["similarity"].astype(float)))
    overlay = Overlay()
    records: list[dict[str, Any]] = []
    for gid in source.groups_with(weight):
        cols = source.rows(gid)
        pids = cols["product_id"].astype(str)
        hit = np.flatnonzero(np.isin(pids, list(weight)))
        if len(hit) == 0 or new.product_id in set(pids):
            continue
        w = np.array([weight[pids[j]] for j in hit])
        p = float(np.average(cols["p_conv"][hit].astype(float), weights=w))
        best = hit[int(np.argmax(w))]
        qty = float(cols["order_value"][best]) / max(float(cols["price"][best]), 1e-9) if "order_value" in cols else 1.0
        rating = new.rating if new.rating is not None else float(np.average(cols["rating"][hit].astype(float), weights=w))
        row = {"product_id": new.product_id, "p_conv": p, "price": new.price, "commission_rate": new.commission_rate,
               "commission_yuan": new.price * new.commission_rate, "rating": rating, "order_value": new.price * qty,
               "category": new_main, "brand": new.brand, "reasons": '["new_product"]', "in_stock": True,
               "coupon": new.coupon, "presale": False, "repurchase_due": False, "price_change_7d": 0.0,
               "days_since_push": np.nan}
        if "adoption" in cols:  # the seller's habit for the product's nearest neighbours in this group
            row["adoption"] = float(np.average(cols["adoption"][hit].astype(float), weights=w))
        overlay.extra.setdefault(gid, []).append(row)
        records.append({"group_id": gid, "product_id": new.product_id, "feature_product_id": pids[best],
                        "price": new.price, "commission_rate": new.commission_rate, "coupon": new.coupon})
    if rescorer is not None and records:
        p = rescorer.rescore(pd.DataFrame(records))
        for rec, value in zip(records, p):
            if np.isfinite(value):
                for row in overlay.extra[rec["group_id"]]:
                    row["p_conv"] = float(value)
    info = [{"product_id": str(r.product_id), "title": str(r.title), "similarity": round(float(r.similarity), 4)}
            for r in near.itertuples()]
    return overlay, info


# ----------------------------------------------------------------------------------- simulation and forecast


def simulate_placements(source: CandidateSource, group_ids: Sequence[str], weights: OpsWeights, rules: RuleConfig,
                        days: int, overlay: Overlay | None = None) -> pd.DataFrame:
    """Every pick of the programme over `days` days in these groups: day, group_id, rank and the pick's components.

    Day d re-makes the group's picks without the products picked on days before d (the no-repeat rule)."""
    groups = source.groups.assign(group_id=source.groups["group_id"].astype(str)).set_index("group_id")
    info = {c: groups[c].to_dict() for c in ("seller_type", "city_tier", "member_count") if c in groups}
    parts: dict[str, list[np.ndarray]] = {c: [] for c in PLACEMENT_COLUMNS}
    for gid in group_ids:
        cols = source.rows(gid)
        if overlay is not None:
            cols = overlay.apply(gid, cols)
        if len(cols.get("product_id", ())) == 0:
            continue
        seller_type = str(info.get("seller_type", {}).get(gid, ""))
        w: BlendWeights = weights.for_seller_type(seller_type)
        available = np.ones(len(cols["product_id"]), dtype=bool)
        pids = cols["product_id"].astype(str)
        for day in range(days):
            sub = {c: v[available] for c, v in cols.items()}
            if len(sub["product_id"]) == 0:
                break
            picks = select_picks(sub, w, rules)
            n = len(picks)
            if n == 0:
                break
            extra = {"day": np.full(n, day), "group_id": np.full(n, gid, dtype=object),
                     "member_count": np.full(n, int(info.get("member_count", {}).get(gid, 0))),
                     "seller_type": np.full(n, seller_type, dtype=object),
                     "city_tier": np.full(n, int(info.get("city_tier", {}).get(gid, 0) or 0))}
            for c in PLACEMENT_COLUMNS:
                if c in extra:
                    parts[c].append(extra[c])
                elif c in picks:
                    parts[c].append(picks[c].to_numpy())
                else:
                    parts[c].append(np.full(n, 0.0 if c == "coupon" else np.nan))
            available &= ~np.isin(pids, picks["product_id"].astype(str).to_numpy())
    if not parts["day"]:
        return pd.DataFrame({c: [] for c in PLACEMENT_COLUMNS})
    out = pd.DataFrame({c: np.concatenate(v) for c, v in parts.items()})
    out["product_id"] = out["product_id"].astype(str)
    return out


def _paid_value(placements: pd.DataFrame) -> np.ndarray:
    price = placements["price"].to_numpy(float)
    coupon = np.nan_to_num(placements["coupon"].to_numpy(float)) if "coupon" in placements else 0.0
    value = placements["order_value"].to_numpy(float) if "order_value" in placements else price
    return value * np.maximum(price - coupon, 0.0) / np.maximum(price, 1e-9)


def summarise(placements: pd.DataFrame, cfg: ReachConfig, scale: float = 1.0) -> dict[str, Any]:
    """Groups, members, orders, GMV and commission of a set of placements, with intervals on the money and orders."""
    p = placements["p_conv"].to_numpy(float) if len(placements) else np.zeros(0)
    gmv_each = p * _paid_value(placements) if len(placements) else np.zeros(0)
    rate = placements["commission_rate"].to_numpy(float) if len(placements) else np.zeros(0)
    orders = float(p.sum()) * scale
    gmv = float(gmv_each.sum()) * scale
    commission = float((gmv_each * rate).sum()) * scale
    lo, hi = count_interval(orders, cfg.dispersion, cfg.interval_level)
    lo_f, hi_f = (float(lo[0]) / orders, float(hi[0]) / orders) if orders > 0 else (0.0, 0.0)
    reached = placements.drop_duplicates("group_id") if len(placements) else placements
    groups = float(len(reached)) * scale
    members = float(reached["member_count"].sum()) * scale if len(reached) else 0.0

    def figure(mean: float, lo_: float, hi_: float) -> dict[str, float]:
        return {"mean": round(mean, 4), "lo": round(lo_, 4), "hi": round(hi_, 4)}

    return {
        "groups": figure(groups, groups, groups),
        "members": figure(members, members, members),
        "placements": int(round(len(placements) * scale)),
        "orders": figure(orders, float(lo[0]), float(hi[0])),
        "gmv": figure(gmv, gmv * lo_f, gmv * hi_f),
        "commission": figure(commission, commission * lo_f, commission * hi_f),
    }


def breakdown(placements: pd.DataFrame, by: str, cfg: ReachConfig, scale: float = 1.0) -> list[dict[str, Any]]:
    """`summarise` per value of a group column (seller_type, city_tier), largest orders first."""
    if placements.empty:
        return []
    parts = [{"key": str(key), **summarise(frame, cfg, scale)} for key, frame in placements.groupby(by, sort=True)]
    return sorted(parts, key=lambda part: -part["orders"]["mean"])


@dataclass
class ReachForecaster:
    """Brand reach forecasts on one candidate source with one set of weights and rules."""

    source: CandidateSource
    weights: OpsWeights
    rules: RuleConfig
    cfg: ReachConfig = field(default_factory=ReachConfig)
    products: pd.DataFrame | None = None
    rescorer: Rescorer | None = None

    def _groups(self, product_ids: Sequence[str], overlay: Overlay | None) -> tuple[list[str], float]:
        ids = set(self.source.groups_with(product_ids))
        if overlay is not None:
            ids |= set(overlay.extra)
        ordered = sorted(ids)
        if len(ordered) <= self.cfg.max_groups:
            return ordered, 1.0
        rng = np.random.default_rng(self.cfg.seed)
        sample = sorted(rng.choice(ordered, size=self.cfg.max_groups, replace=False).tolist())
        return sample, len(ordered) / len(sample)

    def forecast(self, product_ids: Sequence[str], overlay: Overlay | None = None) -> dict[str, Any]:
        """Day and week figures, per product and broken down by seller type and city tier."""
        return self._forecast_placed(product_ids, overlay)[0]

    def _forecast_placed(self, product_ids: Sequence[str], overlay: Overlay | None) -> tuple[dict[str, Any], pd.DataFrame]:
        """`forecast` and the placements of the asked products it was summed from."""
        product_ids = [str(p) for p in product_ids]
        group_ids, scale = self._groups(product_ids, overlay)
        days = self.cfg.week_days
        placed = simulate_placements(self.source, group_ids, self.weights, self.rules, days, overlay)
        mine = placed[placed["product_id"].isin(product_ids)] if len(placed) else placed
        out: dict[str, Any] = {"product_ids": product_ids, "groups_considered": len(group_ids), "sampling_scale": scale}
        for name, horizon in (("day", 1), ("week", days)):
            part = mine[mine["day"] < horizon] if len(mine) else mine
            out[name] = {
                "total": summarise(part, self.cfg, scale),
                "by_seller_type": breakdown(part, "seller_type", self.cfg, scale),
                "by_city_tier": breakdown(part, "city_tier", self.cfg, scale),
                "by_product": [{"product_id": pid, **summarise(part[part["product_id"] == pid], self.cfg, scale)}
                               for pid in product_ids],
            }
        return out, mine

    def what_if(self, product_ids: Sequence[str], change: Change) -> dict[str, Any]:
        """The forecast before and after a change of price, commission rate or coupon on these products."""
        product_ids = [str(p) for p in product_ids]
        base = self.forecast(product_ids)
        group_ids, _ = self._groups(product_ids, None)
        overlay, rescored = change_overlay(self.source, product_ids, change, self.rescorer, group_ids)
        after = self.forecast(product_ids, overlay)
        return {"change": {k: v for k, v in vars(change).items() if v is not None}, "rescored": rescored,
                "base": base, "what_if": after}

    def what_if_explained(self, product_ids: Sequence[str], change: Change) -> dict[str, Any]:
        """`what_if` plus, per product, what moved its orders (`explain_change`)."""
        product_ids = [str(p) for p in product_ids]
        base, base_placed = self._forecast_placed(product_ids, None)
        group_ids, scale = self._groups(product_ids, None)
        overlay, rescored = change_overlay(self.source, product_ids, change, self.rescorer, group_ids)
        after, after_placed = self._forecast_placed(product_ids, overlay)
        explain = explain_change(self.source, product_ids, change, overlay, base_placed, after_placed, group_ids,
                                 self.weights, self.rules, self.products, scale)
        return {"change": {k: v for k, v in vars(change).items() if v is not None}, "rescored": rescored,
                "base": base, "what_if": after, "explain": explain}

    def new_product(self, new: NewProduct, embedder: Any) -> dict[str, Any]:
        """Forecast for a product without history, through its title embedding and category."""
        if self.products is None:
            raise ValueError("a new-product forecast needs the catalogue")
        overlay, near = cold_overlay(self.source, self.products, new, embedder, self.cfg.cold_neighbours, self.rescorer)
        result = self.forecast([new.product_id], overlay)
        result["neighbours"] = near
        return result


def _ratio(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    return np.maximum(np.asarray(new, dtype=float), 1e-12) / np.maximum(np.asarray(old, dtype=float), 1e-12)


def explain_change(source: CandidateSource, product_ids: Sequence[str], change: Change, overlay: Overlay,
                   base: pd.DataFrame, after: pd.DataFrame, group_ids: Sequence[str], weights: OpsWeights,
                   rules: RuleConfig, products: pd.DataFrame | None = None, scale: float = 1.0) -> list[dict[str, Any]]:
    """Per product, what a what-if moved and by how much, over the week of the forecast.

    The change of expected orders splits exactly into two parts:

        from_p_conv      Σ over the product's placements before the change of (new p_conv − old p_conv):
                         the ranker's re-estimate, with the picks held fixed
        from_placements  the rest: placements gained or lost when the blend and the rules re-make the picks

    `p_conv` is the mean over every group holding the product (before → after), `blend_factor` the
    geometric mean over those groups of the score ratio after/before under each group's weights (its
    p_conv, commission-in-yuan and order-value factors; the rating does not change) and `parts` that
    ratio's factors. `price_rule` is set when the new price moves more than `rules.max_price_change`
    from the current one: the rules then keep the product out of the picks for `rules.price_window_days`
    days after the change, which the week figures (the programme once the change has settled) leave out.
    """
    groups = source.groups.assign(group_id=source.groups["group_id"].astype(str)).set_index("group_id")
    seller_type = groups["seller_type"].astype(str).to_dict() if "seller_type" in groups else {}
    catalogue: dict[str, dict[str, Any]] = {}
    if products is not None:
        frame = products.assign(product_id=products["product_id"].astype(str)).drop_duplicates("product_id")
        catalogue = frame.set_index("product_id").to_dict("index")
    # Old and new p_conv and blend ratio of every (group, product) candidate the change touches.
    pairs: dict[str, list[tuple[float, float, float, float, float]]] = {str(p): [] for p in product_ids}
    for gid in group_ids:
        cols = source.rows(gid)
        pids = cols["product_id"].astype(str)
        w = weights.for_seller_type(seller_type.get(gid, ""))
        for j in np.flatnonzero(np.isin(pids, list(pairs))):
            pid = pids[j]
            new = overlay.changed.get(pid)
            if new is None:
                continue
            p_old = float(cols["p_conv"][j])
            p_new = overlay.rescored.get((gid, pid), p_old)
            cy_old = float(cols["commission_yuan"][j]) if "commission_yuan" in cols else float(cols["price"][j]) * float(cols["commission_rate"][j])
            ov_old = float(cols["order_value"][j]) if "order_value" in cols else float(cols["price"][j])
            f_p = float(_ratio(p_new, p_old)) ** w.conversion
            f_c = float(_ratio(new["commission_yuan"], cy_old)) ** w.earnings
            f_v = float(_ratio(new["order_value"], ov_old)) ** w.order_value
            pairs[pid].append((p_old, p_new, f_p, f_c, f_v))
    out: list[dict[str, Any]] = []
    for pid in map(str, product_ids):
        b = base[base["product_id"] == pid] if len(base) else base
        a = after[after["product_id"] == pid] if len(after) else after
        orders_before = float(b["p_conv"].sum()) * scale if len(b) else 0.0
        orders_after = float(a["p_conv"].sum()) * scale if len(a) else 0.0
        from_p = 0.0
        if len(b):
            new_p = [overlay.rescored.get((str(g), pid), float(p)) for g, p in zip(b["group_id"], b["p_conv"])]
            from_p = float(np.sum(np.asarray(new_p) - b["p_conv"].to_numpy(float))) * scale
        rows = np.asarray(pairs.get(pid) or [], dtype=float).reshape(-1, 5)
        geo = (lambda col: float(np.exp(np.mean(np.log(rows[:, col]))))) if len(rows) else (lambda col: 1.0)
        item = catalogue.get(pid, {})
        now = {"price": item.get("price"), "commission_rate": item.get("commission_rate"),
               "coupon": float(item.get("coupon", 0.0) or 0.0) if item else None}
        new = overlay.changed.get(pid) or {}
        entry: dict[str, Any] = {
            "product_id": pid,
            "before": {k: (None if v is None else float(v)) for k, v in now.items()},
            "after": {k: float(new[k]) for k in ("price", "commission_rate", "coupon") if k in new},
            "orders": {"before": round(orders_before, 4), "after": round(orders_after, 4)},
            "placements": {"before": int(round(len(b) * scale)), "after": int(round(len(a) * scale))},
            "groups": {"before": int(round(b["group_id"].nunique() * scale)) if len(b) else 0,
                       "after": int(round(a["group_id"].nunique() * scale)) if len(a) else 0},
            "from_p_conv": round(from_p, 4),
            "from_placements": round(orders_after - orders_before - from_p, 4),
            "p_conv": {"before": round(float(rows[:, 0].mean()), 6) if len(rows) else None,
                       "after": round(float(rows[:, 1].mean()), 6) if len(rows) else None},
            "blend_factor": round(geo(2) * geo(3) * geo(4), 4),
            "parts": {"p_conv": round(geo(2), 4), "commission_yuan": round(geo(3), 4), "order_value": round(geo(4), 4)},
            "candidate_groups": int(len(rows)),
            "price_rule": None,
        }
        old_price = now["price"]
        if change.price is not None and old_price:
            move = float(change.price) / float(old_price) - 1.0
            if abs(move) > rules.max_price_change:
                entry["price_rule"] = {"move": round(move, 4), "limit": rules.max_price_change,
                                       "days": rules.price_window_days}
        out.append(entry)
    return out


def brand_products(products: pd.DataFrame, brand: str) -> list[str]:
    """Ids of the catalogue's products of this brand."""
    return products.loc[products["brand"].fillna("").astype(str) == brand, "product_id"].astype(str).tolist()
