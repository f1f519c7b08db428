"""The daily job: load → validate → features → candidates → conversion ranker → per-group components →
evaluation against the baselines → artifact, written atomically.

The ranker learns from a snapshot in the past: candidate sources and pair features are computed as of
`now − example_days`, and the pushes of the following days (labelled by an order within
`label_window_days`) are the examples, so no feature sees its own label. Today's candidates are then
scored with sources refitted on all the data. Each candidate keeps its components (p_conv, price,
commission, rating, order value, category, brand, flags, reasons) so that the service can re-blend
them with whatever weights ops set, without retraining.

Cold groups (fewer than `cold_min_orders` orders) are served from their segment (seller type × city
tier): the segment's most bought products, with p_conv the smoothed push-conversion rate of the product
within the segment.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from features.interactions import TrainData, build_train_data, to_local_naive
from features.schema import GROUP_ID, ORDERED_AT, PRODUCT_ID, PUSHED_AT
from recsys.blend import blend_log_scores, weights_hash
from recsys.candidates.base import Recommender
from recsys.candidates.repurchase import purchase_cycles
from recsys.candidates.union import union_candidates
from recsys.config import BlendWeights, Config, config_hash
from recsys.ranker import LABEL, TIME, ConversionRanker, fit_and_evaluate, order_labels_with_sampled_negatives, push_labels

Log = Callable[[str], None]

# Sources whose scores and ranks feed the ranker (and whose union is the candidate set).
SOURCES: tuple[str, ...] = ("popular", "trending", "segment_popular", "own_top", "repurchase",
                            "item_knn_cosine", "ease", "als", "content")
BASELINES: tuple[str, ...] = ("random", "popular", "rating_commission", "segment_popular", "own_top",
                              "item_knn_cosine", "ease", "als")
# Source -> the reason code it gives a pick.
SOURCE_REASONS: dict[str, str] = {
    "repurchase": "repurchase_due", "own_top": "similar_to_past", "item_knn_cosine": "similar_to_past",
    "ease": "similar_to_past", "als": "similar_to_past", "content": "similar_to_past",
    "trending": "trending", "segment_popular": "segment_popular", "popular": "segment_popular",
}
CATEGORY_REASON_SHARE = 0.2  # a group "buys this category" when it holds this share of its purchases
NEW_PRODUCT_DAYS = 14
DUE_RANGE = (0.75, 2.0)  # due ratio (days since last / usual cycle) that counts as a repurchase due


def default_log(message: str) -> None:
    """Plain, timestamped progress lines (stderr)."""
    print(f"[quanxuan {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def progress(items: Iterable[Any], total: int, desc: str) -> Iterable[Any]:
    """tqdm on a terminal; the bare iterable otherwise (the step's log line says what happens)."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(items, total=total, desc=desc, leave=False)
    return items


# ---------------------------------------------------------------------------------------------- features


def _keys(g: np.ndarray, i: np.ndarray, n_items: int) -> np.ndarray:
    return np.asarray(g, dtype=np.int64) * n_items + np.asarray(i, dtype=np.int64)


@dataclass
class PairFeaturizer:
    """Group, product and (group, product) features as of `data.now`, computed once and looked up per pair.

    Category affinity (share of the group's purchases in the product's main category), brand loyalty,
    price against the group's usual band, whether and how long ago the group bought it, the due ratio of its
    item and category cycles, group size, seller type, city tier, rating, reviews, commission, popularity,
    and days since the product was last pushed to the group.
    """

    data: TrainData
    products: pd.DataFrame
    pushes: pd.DataFrame | None
    tables_: dict[str, Any] = field(default_factory=dict, repr=False)

    def fit(self) -> "PairFeaturizer":
        """Precompute the lookup tables."""
        d = self.data
        items = d.item_frame
        ev = d.events
        g, i, age, qty = ev["g"].to_numpy(), ev["i"].to_numpy(), ev["age_days"].to_numpy(), ev["quantity"].to_numpy()
        cat_codes, cats = pd.factorize(items["main_category"])
        brand_codes, brands = pd.factorize(items["brand"].where(items["brand"] != "", None))
        n_g = d.n_groups
        t: dict[str, Any] = {"cat": cat_codes, "brand": brand_codes}
        t["group_total"] = np.bincount(g, weights=qty, minlength=n_g)
        t["group_cat"] = _dense_counts(g, cat_codes[i], qty, n_g, len(cats))
        has_brand = brand_codes[i] >= 0
        t["group_brand"] = pd.Series(qty[has_brand]).groupby([g[has_brand], brand_codes[i][has_brand]]).sum()
        price = items["price"].to_numpy(float)
        band = pd.Series(np.log(price[i])).groupby(g).median()
        t["group_log_price"] = band.reindex(range(n_g)).to_numpy()
        pair = pd.DataFrame({"k": _keys(g, i, d.n_items), "age": age, "q": qty}).groupby("k").agg(
            last=("age", "min"), times=("q", "size"))
        t["pair_last"], t["pair_times"] = pair["last"], pair["times"]
        cyc = purchase_cycles(g, i, age)
        t["item_due"] = pd.Series(cyc["due_ratio"].to_numpy(), index=_keys(cyc["g"].to_numpy(), cyc["key"].to_numpy(), d.n_items))
        ccyc = purchase_cycles(g, cat_codes[i], age)
        t["cat_due"] = pd.Series(ccyc["due_ratio"].to_numpy(), index=ccyc["g"].to_numpy().astype(np.int64) * len(cats) + ccyc["key"].to_numpy())
        t["n_cats"] = len(cats)
        t["item_pop"] = np.bincount(i, weights=np.exp(-age / 14.0), minlength=d.n_items)
        t["item_groups"] = np.bincount(np.unique(_keys(g, i, d.n_items)) % d.n_items, minlength=d.n_items)
        reviews = self.products.set_index(self.products[PRODUCT_ID].astype(str))
        review_count = reviews["review_count"] if "review_count" in reviews else pd.Series(0, index=reviews.index)
        t["reviews"] = pd.to_numeric(review_count, errors="coerce").reindex(d.items.ids).fillna(0).to_numpy(float)
        t["push_last"], t["push_times"], t["group_push_rate"] = self._push_tables()
        self.tables_ = t
        return self

    def _push_tables(self) -> tuple[pd.Series, pd.Series, np.ndarray]:
        d = self.data
        empty = pd.Series(dtype=float)
        if self.pushes is None or not len(self.pushes):
            return empty, empty, np.full(d.n_groups, np.nan)
        at = to_local_naive(self.pushes[PUSHED_AT])
        keep = (at < d.now).to_numpy()
        p = self.pushes.loc[keep]
        pg = d.groups.index_of(p[GROUP_ID].astype(str).to_numpy(), missing="mark")
        pi = d.items.index_of(p[PRODUCT_ID].astype(str).to_numpy(), missing="mark")
        ok = (pg >= 0) & (pi >= 0)
        age = ((d.now - at[keep]).dt.total_seconds().to_numpy() / 86400.0)[ok]
        frame = pd.DataFrame({"k": _keys(pg[ok], pi[ok], d.n_items), "age": age})
        agg = frame.groupby("k")["age"].agg(["min", "size"])
        pushes_per_group = np.bincount(pg[ok], minlength=d.n_groups).astype(float)
        rate = np.divide(d.n_orders, pushes_per_group, out=np.full(d.n_groups, np.nan), where=pushes_per_group > 0)
        return agg["min"], agg["size"], rate

    def transform(self, g: np.ndarray, i: np.ndarray) -> pd.DataFrame:
        """Feature rows for pairs given as group and item indices."""
        d, t = self.data, self.tables_
        g = np.asarray(g, dtype=np.int64)
        i = np.asarray(i, dtype=np.int64)
        items, groups = d.item_frame, d.group_frame
        keys = _keys(g, i, d.n_items)
        price = items["price"].to_numpy(float)[i]
        cat = t["cat"][i]
        total = t["group_total"][g]
        brand = t["brand"][i]
        brand_mass = t["group_brand"].reindex(pd.MultiIndex.from_arrays([g, brand])).to_numpy(float) if len(t["group_brand"]) else np.full(len(g), np.nan)
        out = pd.DataFrame({
            "category_share": np.divide(t["group_cat"][g, cat], total, out=np.zeros(len(g)), where=total > 0),
            "brand_share": np.where(brand >= 0, np.divide(np.nan_to_num(brand_mass), total, out=np.zeros(len(g)), where=total > 0), np.nan),
            "price_vs_band": np.log(price) - t["group_log_price"][g],
            "bought_times": t["pair_times"].reindex(keys).fillna(0).to_numpy(float),
            "days_since_bought": t["pair_last"].reindex(keys).to_numpy(float),
            "item_due_ratio": t["item_due"].reindex(keys).to_numpy(float),
            "category_due_ratio": t["cat_due"].reindex(g * t["n_cats"] + cat).to_numpy(float),
            "member_count": groups["member_count"].to_numpy(float)[g],
            "seller_type": groups["seller_type"].to_numpy(object)[g],
            "city_tier": groups["city_tier"].to_numpy(float)[g],
            "group_orders": d.n_orders[g].astype(float),
            "group_push_rate": t["group_push_rate"][g],
            "price": price,
            "commission_rate": items["commission_rate"].to_numpy(float)[i],
            "commission_yuan": price * items["commission_rate"].to_numpy(float)[i],
            "rating": items["rating"].to_numpy(float)[i],
            "review_count": t["reviews"][i],
            "item_popularity": t["item_pop"][i],
            "item_groups": t["item_groups"][i].astype(float),
            "days_since_push": t["push_last"].reindex(keys).to_numpy(float) if len(t["push_last"]) else np.nan,
            "times_pushed": t["push_times"].reindex(keys).fillna(0).to_numpy(float) if len(t["push_times"]) else 0.0,
        })
        return out


def _dense_counts(rows: np.ndarray, cols: np.ndarray, weights: np.ndarray, n_rows: int, n_cols: int) -> np.ndarray:
    out = np.zeros((n_rows, max(n_cols, 1)))
    np.add.at(out, (rows, cols), weights)
    return out


def ranker_rows(union: pd.DataFrame, featurizer: PairFeaturizer, g: np.ndarray, i: np.ndarray) -> pd.DataFrame:
    """Ranker inputs for pairs: each source's score and rank (NaN when it did not propose the pair) + pair features."""
    data = featurizer.data
    source_cols = [c for c in union.columns if c.startswith(("score__", "rank__"))]
    ug = data.groups.index_of(union[GROUP_ID].to_numpy(dtype=object))
    ui = data.items.index_of(union[PRODUCT_ID].to_numpy(dtype=object))
    table = union[source_cols].set_axis(_keys(ug, ui, data.n_items))
    rows = table.reindex(_keys(g, i, data.n_items)).reset_index(drop=True)
    rows["n_sources"] = rows[[c for c in source_cols if c.startswith("rank__")]].notna().sum(axis=1).astype(float)
    return pd.concat([rows, featurizer.transform(g, i)], axis=1)


# ---------------------------------------------------------------------------------------------- pipeline


def fit_sources(data: TrainData, cfg: Config, names: Iterable[str] = SOURCES) -> dict[str, Recommender]:
    """Fit every candidate source on the data (configured hyper-parameters)."""
    from training.evaluate import make_source

    return {name: make_source(name, None, cfg).fit(data) for name in names}


def ranker_examples(frames: Any, now: pd.Timestamp, cfg: Config, log: Log = default_log) -> pd.DataFrame:
    """Labelled examples of the last `example_days` before `now`, with features from a snapshot at their start."""
    rc = cfg.ranker
    # Candidate examples need only one full label window; push examples span `example_days`.
    start = now - pd.Timedelta(days=rc.label_window_days if rc.examples == "candidates" else rc.example_days)
    snap = build_train_data(frames.products, frames.sellers, frames.groups, frames.pushes, frames.orders, cfg.features, now=start)
    sources = fit_sources(snap, cfg)
    union = union_candidates(sources, snap, np.arange(snap.n_groups), cfg.candidates.per_source, cfg.candidates.union_size)
    orders = frames.orders.loc[(to_local_naive(frames.orders[ORDERED_AT]) < now).to_numpy()]
    pushes = frames.pushes
    if rc.examples == "candidates":
        return candidate_examples(union, snap, frames, orders, start, rc.label_window_days, log)
    if pushes is not None and len(pushes):
        at = to_local_naive(pushes[PUSHED_AT])
        window = pushes.loc[((at >= start) & (at < now)).to_numpy()].assign(**{PUSHED_AT: at[(at >= start) & (at < now)]})
        examples = push_labels(window, orders.assign(**{ORDERED_AT: to_local_naive(orders[ORDERED_AT])}),
                               rc.label_window_days, data_end=now)
        kind = "pushes"
    else:
        recent = orders.loc[(to_local_naive(orders[ORDERED_AT]) >= start).to_numpy()]
        examples = order_labels_with_sampled_negatives(recent, snap.items.ids, rc.negatives_per_positive, rc.seed)
        kind = "orders with sampled negatives"
    g = snap.groups.index_of(examples[GROUP_ID].astype(str).to_numpy(), missing="mark")
    i = snap.items.index_of(examples[PRODUCT_ID].astype(str).to_numpy(), missing="mark")
    ok = (g >= 0) & (i >= 0)
    examples = examples.loc[ok].reset_index(drop=True)
    feats = ranker_rows(union, PairFeaturizer(snap, frames.products, frames.pushes).fit(), g[ok], i[ok])
    out = pd.concat([examples[[GROUP_ID, PRODUCT_ID, TIME, LABEL]], feats], axis=1)
    log(f"ranker examples: {len(out):,} {kind} from {start:%Y-%m-%d} to {now:%Y-%m-%d}, positive rate {out[LABEL].mean():.3f}")
    return out


def candidate_examples(union: pd.DataFrame, snap: TrainData, frames: Any, orders: pd.DataFrame, start: pd.Timestamp,
                       window_days: int, log: Log = default_log) -> pd.DataFrame:
    """Every union candidate of the snapshot at `start`, positive when ordered within `window_days` after it."""
    t = to_local_naive(orders[ORDERED_AT])
    o = orders.loc[((t >= start) & (t < start + pd.Timedelta(days=window_days))).to_numpy()]
    if "refunded" in o:
        o = o.loc[~o["refunded"].fillna(False).astype(bool).to_numpy()]
    og = snap.groups.index_of(o[GROUP_ID].astype(str).to_numpy(), missing="mark")
    oi = snap.items.index_of(o[PRODUCT_ID].astype(str).to_numpy(), missing="mark")
    ordered = _keys(og[(og >= 0) & (oi >= 0)], oi[(og >= 0) & (oi >= 0)], snap.n_items)
    g = snap.groups.index_of(union[GROUP_ID].to_numpy(dtype=object))
    i = snap.items.index_of(union[PRODUCT_ID].to_numpy(dtype=object))
    label = np.isin(_keys(g, i, snap.n_items), ordered).astype(np.int8)
    feats = ranker_rows(union, PairFeaturizer(snap, frames.products, frames.pushes).fit(), g, i)
    out = pd.concat([union[[GROUP_ID, PRODUCT_ID]].assign(**{TIME: start, LABEL: label}), feats], axis=1)
    log(f"ranker examples: {len(out):,} candidates of {start:%Y-%m-%d}, ordered within {window_days} days: {label.mean():.4f}")
    return out


@dataclass
class PipelineState:
    """What one pipeline run learned: the ranker, its metrics, and today's candidates with their components."""

    ranker: ConversionRanker
    ranker_metrics: dict[str, Any]
    candidates: pd.DataFrame  # group_id, product_id, g, i, the ranker inputs and the components
    data: TrainData
    timings: dict[str, float]


def build_pipeline(frames: Any, data: TrainData, cfg: Config, log: Log = default_log) -> PipelineState:
    """Train the ranker on a past snapshot, then score today's union candidates (all as of `data.now`)."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    examples = ranker_examples(frames, data.now, cfg, log)
    timings["ranker_examples"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ranker, metrics = fit_and_evaluate(examples, cfg.ranker)
    timings["ranker_fit"] = time.perf_counter() - t0
    c = metrics["calibrated"]
    log(f"ranker: AUC {c['auc']:.3f}, log loss {c['log_loss']:.4f}, ECE {c['ece']:.4f} "
        f"(raw ECE {metrics['uncalibrated']['ece']:.4f}, popularity AUC {metrics['popularity_rate']['auc']:.3f})")
    t0 = time.perf_counter()
    sources = fit_sources(data, cfg)
    union = union_candidates(sources, data, np.arange(data.n_groups), cfg.candidates.per_source, cfg.candidates.union_size)
    timings["candidates"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    g = data.groups.index_of(union[GROUP_ID].to_numpy(dtype=object))
    i = data.items.index_of(union[PRODUCT_ID].to_numpy(dtype=object))
    feats = ranker_rows(union, PairFeaturizer(data, frames.products, frames.pushes).fit(), g, i)
    cands = pd.concat([union[[GROUP_ID, PRODUCT_ID, "sources"]], feats], axis=1)
    cands["g"], cands["i"] = g, i
    cands["p_conv"] = ranker.predict_proba(feats)
    timings["scoring"] = time.perf_counter() - t0
    log(f"candidates: {len(cands):,} for {data.n_groups:,} groups, mean p_conv {cands['p_conv'].mean():.4f}")
    return PipelineState(ranker, metrics, cands, data, timings)


class PipelineRecommender(Recommender):
    """The full pipeline as a harness model: candidates re-ranked by the blend of ranker p_conv and components."""

    name = "ranker"

    def __init__(self, frames: Any, cfg: Config, weights: BlendWeights, share: "PipelineRecommender | None" = None,
                 log: Log = default_log) -> None:
        self.frames = frames
        self.cfg = cfg
        self.weights = weights
        self.share = share
        self.log = log

    def params(self) -> dict[str, Any]:
        """The blend weights (the rest is in the run's configuration)."""
        return {"weights": self.weights.model_dump()}

    def _fit(self, data: TrainData) -> None:
        if self.share is not None and self.share.is_fitted_on(data):
            self.state_ = self.share.state_
        else:
            self.state_ = build_pipeline(self.frames, data, self.cfg, self.log)
        c = self.state_.candidates
        comps = add_order_value(c, data)
        self.log_scores_ = blend_log_scores(comps, self.weights)
        order = np.argsort(c["g"].to_numpy(), kind="stable")
        self.order_ = order
        self.bounds_ = np.searchsorted(c["g"].to_numpy()[order], np.arange(data.n_groups + 1))

    def score(self, group_idx: np.ndarray) -> np.ndarray:
        """Blend log-scores on each group's candidates; -inf elsewhere."""
        group_idx = np.asarray(group_idx)
        out = np.full((len(group_idx), self.n_items_), -np.inf, dtype=np.float32)
        items = self.state_.candidates["i"].to_numpy()
        for row, gi in enumerate(group_idx):
            sel = self.order_[self.bounds_[gi]:self.bounds_[gi + 1]]
            out[row, items[sel]] = self.log_scores_[sel]
        return out


def add_order_value(cands: pd.DataFrame, data: TrainData) -> pd.DataFrame:
    """order_value = price × the product's mean quantity per order (1 when never ordered)."""
    ev = data.events
    qty = pd.Series(ev["quantity"].to_numpy()).groupby(ev["i"].to_numpy()).mean()
    mean_qty = qty.reindex(cands["i"].to_numpy()).fillna(1.0).to_numpy()
    return cands.assign(order_value=cands["price"].to_numpy() * mean_qty)


# ---------------------------------------------------------------------------------------------- artifact tables


def _reasons(cands: pd.DataFrame, launched_days: np.ndarray) -> list[str]:
    """Reason codes per candidate: category habit, then the proposing sources by rank, then newness."""
    rank_cols = [c for c in cands.columns if c.startswith("rank__")]
    names = [c[len("rank__"):] for c in rank_cols]
    ranks = cands[rank_cols].to_numpy(float)
    order = np.argsort(np.where(np.isnan(ranks), np.inf, ranks), axis=1)
    cat_share = cands["category_share"].to_numpy(float)
    due = cands["repurchase_due"].to_numpy(bool)
    out = []
    for row in range(len(cands)):
        codes = ["group_buys_category"] if cat_share[row] >= CATEGORY_REASON_SHARE else []
        for j in order[row]:
            if np.isnan(ranks[row, j]):
                break
            code = SOURCE_REASONS.get(names[j])
            if code == "repurchase_due" and not due[row]:
                continue
            if code:
                codes.append(code)
        if launched_days[row] <= NEW_PRODUCT_DAYS:
            codes.append("new_product")
        out.append(json.dumps(list(dict.fromkeys(codes))))
    return out


def product_state(products: pd.DataFrame, pushes: pd.DataFrame | None, orders: pd.DataFrame, now: pd.Timestamp,
                  window_days: int) -> pd.DataFrame:
    """Per product: main category, flags, days since launch and price change over the last `window_days`.

    The price `window_days` ago is the last seen price (push price, else paid / quantity) before then;
    the change is current list price / that price − 1 (NaN when unknown).
    """
    p = products.assign(**{PRODUCT_ID: products[PRODUCT_ID].astype(str)}).set_index(PRODUCT_ID)
    cut = now - pd.Timedelta(days=window_days)
    seen = []
    if pushes is not None and len(pushes) and "price_at_push" in pushes:
        seen.append(pd.DataFrame({PRODUCT_ID: pushes[PRODUCT_ID].astype(str), "t": to_local_naive(pushes[PUSHED_AT]),
                                  "price": pd.to_numeric(pushes["price_at_push"], errors="coerce")}))
    seen.append(pd.DataFrame({PRODUCT_ID: orders[PRODUCT_ID].astype(str), "t": to_local_naive(orders[ORDERED_AT]),
                              "price": pd.to_numeric(orders["paid"]) / pd.to_numeric(orders["quantity"]).clip(lower=1)}))
    s = pd.concat(seen, ignore_index=True).dropna()
    before = s[s["t"] < cut].sort_values("t").groupby(PRODUCT_ID)["price"].last()
    price = pd.to_numeric(p["price"])
    out = pd.DataFrame(index=p.index)
    out["price_change_7d"] = price / before.reindex(p.index) - 1.0
    out["presale"] = p["presale"].fillna(False).astype(bool) if "presale" in p else False
    out["coupon"] = pd.to_numeric(p["coupon"]).fillna(0.0) if "coupon" in p else 0.0
    out["in_stock"] = p["in_stock"].fillna(True).astype(bool) if "in_stock" in p else True
    if "launched_at" in p:
        out["launched_days"] = (now - to_local_naive(p["launched_at"])).dt.total_seconds() / 86400.0
    else:
        out["launched_days"] = np.inf
    return out


def candidate_components(state: PipelineState, frames: Any, cfg: Config) -> pd.DataFrame:
    """The `candidates` table of the artifact: one row per (group, product) with every blend component."""
    data = state.data
    c = add_order_value(state.candidates, data)
    prod = product_state(frames.products, frames.pushes, frames.orders, data.now, cfg.rules.price_window_days)
    prod = prod.reindex(c[PRODUCT_ID].astype(str).to_numpy())
    due_item = c["item_due_ratio"].between(*DUE_RANGE).to_numpy()
    due_cat = c["category_due_ratio"].between(*DUE_RANGE).to_numpy()
    c = c.assign(repurchase_due=due_item | due_cat)
    items = data.item_frame
    out = pd.DataFrame({
        GROUP_ID: c[GROUP_ID].astype(str).to_numpy(),
        PRODUCT_ID: c[PRODUCT_ID].astype(str).to_numpy(),
        "p_conv": c["p_conv"].to_numpy(float),
        "price": c["price"].to_numpy(float),
        "commission_rate": c["commission_rate"].to_numpy(float),
        "commission_yuan": c["commission_yuan"].to_numpy(float),
        "rating": c["rating"].to_numpy(float),
        "order_value": c["order_value"].to_numpy(float),
        "category": items["main_category"].to_numpy(object)[c["i"].to_numpy()],
        "brand": items["brand"].to_numpy(object)[c["i"].to_numpy()],
        "sources": c["sources"].astype(str).to_numpy(),
        "reasons": _reasons(c, prod["launched_days"].to_numpy(float)),
        "repurchase_due": c["repurchase_due"].to_numpy(bool),
        "presale": prod["presale"].to_numpy(bool),
        "coupon": prod["coupon"].to_numpy(float),
        "in_stock": prod["in_stock"].to_numpy(bool),
        "price_change_7d": prod["price_change_7d"].to_numpy(float),
        "days_since_push": c["days_since_push"].to_numpy(float),
    })
    return out


def segment_components(frames: Any, data: TrainData, cfg: Config, candidates: pd.DataFrame) -> pd.DataFrame:
    """The `segment_candidates` table: per segment its most bought products, p_conv = smoothed push conversion
    of the product in the segment (pushes of the last 28 days, labelled like the ranker's), shrunk to the
    product's overall rate and that to the global rate."""
    segs = data.group_frame["segment"].to_numpy(object)
    ev = data.events
    w = ev["quantity"].to_numpy(float) * np.exp(-ev["age_days"].to_numpy() / cfg.features.half_life_days)
    mass = pd.Series(w).groupby([segs[ev["g"].to_numpy()], ev["i"].to_numpy()]).sum()
    glob = pd.Series(w).groupby(ev["i"].to_numpy()).sum().sort_values(ascending=False)
    n = cfg.candidates.union_size
    rate_seg, rate_item, base = _push_rates(frames, data, cfg)
    template = candidates.drop_duplicates(PRODUCT_ID).set_index(PRODUCT_ID)
    parts = []
    for seg in pd.unique(segs):
        top = mass.loc[seg].sort_values(ascending=False).index.to_numpy() if seg in mass.index.get_level_values(0) else np.zeros(0, int)
        top = np.r_[top, glob.index.to_numpy()[~np.isin(glob.index.to_numpy(), top)]][:n].astype(np.int64)
        pid = data.items.id_of(top)
        item_rate = rate_item.reindex(top).fillna(base).to_numpy()
        seg_pos = rate_seg.reindex(pd.MultiIndex.from_arrays([np.full(len(top), seg, object), top]))
        pos, cnt = seg_pos["pos"].fillna(0).to_numpy(), seg_pos["n"].fillna(0).to_numpy()
        p_conv = (pos + 10.0 * item_rate) / (cnt + 10.0)
        parts.append(pd.DataFrame({"segment": seg, PRODUCT_ID: pid, "p_conv": p_conv, "i": top}))
    seg_frame = pd.concat(parts, ignore_index=True)
    items = data.item_frame
    i = seg_frame["i"].to_numpy()
    qty = pd.Series(ev["quantity"].to_numpy()).groupby(ev["i"].to_numpy()).mean().reindex(i).fillna(1.0).to_numpy()
    prod = product_state(frames.products, frames.pushes, frames.orders, data.now, cfg.rules.price_window_days)
    prod = prod.reindex(seg_frame[PRODUCT_ID].astype(str).to_numpy())
    price = items["price"].to_numpy(float)[i]
    reasons = ["segment_popular"]
    out = pd.DataFrame({
        "segment": seg_frame["segment"].astype(str).to_numpy(),
        PRODUCT_ID: seg_frame[PRODUCT_ID].astype(str).to_numpy(),
        "p_conv": seg_frame["p_conv"].to_numpy(float),
        "price": price,
        "commission_rate": items["commission_rate"].to_numpy(float)[i],
        "commission_yuan": price * items["commission_rate"].to_numpy(float)[i],
        "rating": items["rating"].to_numpy(float)[i],
        "order_value": price * qty,
        "category": items["main_category"].to_numpy(object)[i],
        "brand": items["brand"].to_numpy(object)[i],
        "sources": "segment_popular",
        "reasons": [json.dumps(reasons + (["new_product"] if d <= NEW_PRODUCT_DAYS else [])) for d in prod["launched_days"].to_numpy(float)],
        "repurchase_due": False,
        "presale": prod["presale"].to_numpy(bool),
        "coupon": prod["coupon"].to_numpy(float),
        "in_stock": prod["in_stock"].to_numpy(bool),
        "price_change_7d": prod["price_change_7d"].to_numpy(float),
        "days_since_push": np.nan,
    })
    del template
    return out


def _push_rates(frames: Any, data: TrainData, cfg: Config) -> tuple[pd.DataFrame, pd.Series, float]:
    """Push conversion per (segment, item) and per item over the last 28 days; the global rate."""
    if frames.pushes is None or not len(frames.pushes):
        return pd.DataFrame(columns=["pos", "n"]), pd.Series(dtype=float), 0.0
    now = data.now
    at = to_local_naive(frames.pushes[PUSHED_AT])
    recent = frames.pushes.loc[((at >= now - pd.Timedelta(days=28)) & (at < now)).to_numpy()]
    recent = recent.assign(**{PUSHED_AT: to_local_naive(recent[PUSHED_AT])})
    orders = frames.orders.assign(**{ORDERED_AT: to_local_naive(frames.orders[ORDERED_AT])})
    orders = orders.loc[(orders[ORDERED_AT] < now).to_numpy()]
    lab = push_labels(recent, orders, cfg.ranker.label_window_days, data_end=now)
    g = data.groups.index_of(lab[GROUP_ID].to_numpy(dtype=object), missing="mark")
    i = data.items.index_of(lab[PRODUCT_ID].to_numpy(dtype=object), missing="mark")
    ok = (g >= 0) & (i >= 0)
    seg = data.group_frame["segment"].to_numpy(object)[g[ok]]
    y = lab[LABEL].to_numpy(float)[ok]
    base = float(y.mean()) if len(y) else 0.0
    by_item = pd.DataFrame({"i": i[ok], "y": y}).groupby("i")["y"].agg(["sum", "count"])
    rate_item = (by_item["sum"] + 10.0 * base) / (by_item["count"] + 10.0)
    rate_seg = pd.DataFrame({"s": seg, "i": i[ok], "y": y}).groupby(["s", "i"])["y"].agg(pos="sum", n="count")
    return rate_seg, rate_item, base


def group_table(frames: Any, data: TrainData) -> pd.DataFrame:
    """The `groups` table: contract columns joined with seller type and city tier, cold flag and segment."""
    gf = data.group_frame
    groups = frames.groups.reset_index(drop=True)
    theme = groups["theme"].fillna("").astype(str).to_numpy() if "theme" in groups else np.full(len(groups), "")
    return pd.DataFrame({
        GROUP_ID: data.groups.ids.astype(str),
        "seller_id": gf["seller_id"].astype(str).to_numpy(),
        "seller_type": gf["seller_type"].astype(str).to_numpy(),
        "city_tier": gf["city_tier"].to_numpy(int),
        "member_count": gf["member_count"].to_numpy(int),
        "theme": theme,
        "cold_start": data.cold.astype(bool),
        "segment": gf["segment"].astype(str).to_numpy(),
    })


# ---------------------------------------------------------------------------------------------- the job


@dataclass
class DailyResult:
    """What a daily run produced."""

    artifact: Path
    manifest: dict[str, Any]
    evaluation: dict[str, Any] | None
    timings: dict[str, float]


def evaluate_pipeline(frames: Any, cfg: Config, test_days: int = 7, log: Log = default_log,
                      max_eval_groups: int | None = None) -> dict[str, Any]:
    """Hold out the last `test_days`: baselines, the candidate-only blend and the full pipeline on one harness."""
    from recsys.candidates import BlendRecommender
    from training.evaluate import EvalOptions, Frames, evaluate_models, make_source, time_split

    frames = Frames.of(frames)
    train, test, cutoff = time_split(frames, test_days)
    models: dict[str, Recommender] = {name: make_source(name, None, cfg) for name in BASELINES}
    sources = {name: models[name] if name in models else make_source(name, None, cfg) for name in SOURCES}
    models["candidates"] = BlendRecommender(sources, per_source=cfg.candidates.per_source)
    conversion = BlendWeights(conversion=1.0, earnings=0.0, rating=0.0, order_value=0.0, diversity=0.0)
    ranker = PipelineRecommender(train, cfg, conversion, log=log)
    models["ranker"] = ranker
    models["ranker_ops"] = PipelineRecommender(train, cfg, cfg.weights.default.model_copy(update={"diversity": 0.0}),
                                               share=ranker, log=log)
    options = EvalOptions(ks=(10, 20), test_days=test_days, max_eval_groups=max_eval_groups)
    result = evaluate_models(train, test, models, cfg, options, model_name="ranker", dataset="daily", cutoff=cutoff)
    out = result.to_dict()
    out["ranker"] = ranker.state_.ranker_metrics
    return out


def headline(evaluation: dict[str, Any]) -> list[str]:
    """Lines comparing the pipeline with the candidate-only blend and the baselines."""
    m = evaluation["metrics"]
    lines = [f"{'model':<20}{'ndcg@10':>9}{'recall@10':>11}{'hr@10':>8}{'commission@10':>15}"]
    for name, v in sorted(m.items(), key=lambda kv: -kv[1]["ndcg@10"]):
        lines.append(f"{name:<20}{v['ndcg@10']:>9.4f}{v['recall@10']:>11.4f}{v['hr@10']:>8.4f}{v['commission_realised@10']:>15.3f}")
    return lines


def run_daily(frames: Any, cfg: Config, out_root: str | Path, evaluate: bool = True, test_days: int = 7,
              log: Log = default_log, source: str = "") -> DailyResult:
    """The whole job; the artifact is written atomically at the very end (a crash leaves the previous one)."""
    from training.artifact import Artifact, write_artifact
    from recsys.picks import pick_for_group

    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    evaluation = None
    if evaluate:
        t0 = time.perf_counter()
        log(f"evaluation: last {test_days} days held out")
        evaluation = evaluate_pipeline(frames, cfg, test_days, log)
        timings["evaluation"] = time.perf_counter() - t0
        for line in headline(evaluation):
            log(line)
    t0 = time.perf_counter()
    data = build_train_data(frames.products, frames.sellers, frames.groups, frames.pushes, frames.orders, cfg.features)
    timings["features"] = time.perf_counter() - t0
    log(f"features: {data.n_groups:,} groups, {data.n_items:,} products, now {data.now}")
    state = build_pipeline(frames, data, cfg, log)
    timings.update({f"pipeline_{k}": v for k, v in state.timings.items()})
    t0 = time.perf_counter()
    candidates = candidate_components(state, frames, cfg)
    groups = group_table(frames, data)
    segment = segment_components(frames, data, cfg, candidates)
    products = frames.products.assign(**{PRODUCT_ID: frames.products[PRODUCT_ID].astype(str)})
    # Cold groups read their segment's list, so their own rows are not stored.
    cold_ids = set(groups.loc[groups["cold_start"], GROUP_ID])
    candidates = candidates[~candidates[GROUP_ID].isin(cold_ids)].reset_index(drop=True)
    timings["components"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    w_hash = weights_hash(cfg.weights.default)
    memory = Artifact(Path("."), {}, groups, products, candidates, segment, pd.DataFrame(columns=["group_id"]))
    picks = []
    for gid in progress(memory.group_ids(), len(memory), "picks"):
        frame, _ = pick_for_group(memory, gid, cfg.weights, cfg.rules)
        picks.append(pd.DataFrame({GROUP_ID: gid, "rank": frame["rank"].to_numpy(), PRODUCT_ID: frame[PRODUCT_ID].to_numpy(),
                                   "score": frame["score"].to_numpy(), "weights_hash": w_hash}))
    picks_frame = pd.concat(picks, ignore_index=True)
    timings["picks"] = time.perf_counter() - t0
    log(f"picks: {len(picks_frame):,} for {len(memory):,} groups ({timings['picks']:.1f}s)")
    ordered = to_local_naive(frames.orders[ORDERED_AT])
    manifest = {
        "source": source,
        "config_hash": config_hash(cfg),
        "weights_hash": w_hash,
        "data_window": {"start": str(ordered.min()), "end": str(ordered.max())},
        "pick_date": str((ordered.max().normalize() + pd.Timedelta(days=1)).date()),
        "metrics": {"ranker": state.ranker_metrics,
                    "evaluation": None if evaluation is None else evaluation["metrics"]},
        "feature_importance": dict(list(state.ranker.feature_importance().items())[:15]),
        "counts": {"groups": len(groups), "cold_groups": len(cold_ids), "candidates": len(candidates),
                   "segment_candidates": len(segment)},
    }
    extra = {"ranker.txt": state.ranker.model_text().encode("utf-8")}
    if evaluation is not None:
        extra["evaluation.json"] = json.dumps(evaluation, ensure_ascii=False, default=str).encode("utf-8")
    timings["total_before_write"] = time.perf_counter() - t_all
    manifest["timings_s"] = {k: round(v, 2) for k, v in timings.items()}
    tables = {"groups": groups, "products": products, "candidates": candidates, "segment_candidates": segment,
              "picks": picks_frame}
    path = write_artifact(out_root, tables, manifest, extra)
    timings["total"] = time.perf_counter() - t_all
    log(f"artifact: {path} ({timings['total']:.1f}s in all)")
    return DailyResult(path, manifest, evaluation, timings)
