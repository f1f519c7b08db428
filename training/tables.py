"""The artifact's tables of the daily job: per-candidate components (`candidates`), their ranker rows
(`candidate_features`), the cold groups' segment lists (`segment_candidates`) and the `groups` table, with the
per-product state (flags, newness, price change) and reason codes they read.

These read only features, the ranker's column names and the scored candidates, never the job's other parts, so
the evaluation window (`training.evaluation_window`) builds the same tables from the harness's fitted pipeline.
"""

from __future__ import annotations

import json
from typing import Protocol

import numpy as np
import pandas as pd

from contracts.schema import GROUP_ID, ORDERED_AT, PRODUCT_ID, PUSHED_AT, ContractFrames
from features.interactions import IdMap, TrainData, text_values, to_local_naive
from features.profiles import Profiles
from contracts.config import Config
from recsys.candidates.registry import SOURCE_REASONS
from recsys.ranker import EXPOSED, PRICE_SCALE, ConversionRanker, ordered_within

CATEGORY_REASON_SHARE = 0.2  # a group "buys this category" when it holds this share of its purchases
NEW_PRODUCT_DAYS = 14
DUE_RANGE = (0.75, 2.0)  # due ratio (days since last / usual cycle) that counts as a repurchase due


class ScoredCandidates(Protocol):
    """What `candidate_components` reads of a pipeline run (`training.day_model.PipelineState`)."""

    candidates: pd.DataFrame
    features: pd.DataFrame

    @property
    def data(self) -> TrainData:
        """The training data the candidates were scored on."""
        ...


def orders_between(orders: pd.DataFrame, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.DataFrame:
    """The orders placed in [lo, hi), refunded ones left out."""
    t = to_local_naive(orders[ORDERED_AT])
    keep = ((t >= lo) & (t < hi)).to_numpy().copy()
    if "refunded" in orders:
        keep &= ~orders["refunded"].fillna(False).astype(bool).to_numpy()
    return orders.loc[keep]


def mean_quantity(data: TrainData) -> np.ndarray:
    """Mean quantity per order of each item, in item index order (1 when never ordered)."""
    ev = data.events
    qty = pd.Series(ev["quantity"].to_numpy()).groupby(ev["i"].to_numpy()).mean()
    return qty.reindex(np.arange(data.n_items)).fillna(1.0).to_numpy()


def _reasons(ranks: pd.DataFrame, cat_share: np.ndarray, due: np.ndarray, launched_days: np.ndarray) -> np.ndarray:
    """Reason codes per candidate (JSON lists): category habit, then the proposing sources' codes by their best
    rank (repurchase only when due), then newness.

    Vectorised: each row's codes are encoded as one integer, and only the few distinct codes are turned into JSON.
    """
    names = [c[len("rank__"):] for c in ranks.columns]
    codes = list(dict.fromkeys(SOURCE_REASONS[n] for n in names if n in SOURCE_REASONS))
    values = ranks.to_numpy(dtype=float)
    best = np.full((len(ranks), len(codes)), np.inf)
    for j, name in enumerate(names):
        code = SOURCE_REASONS.get(name)
        if code is None:
            continue
        r = values[:, j] if code != "repurchase_due" else np.where(due, values[:, j], np.nan)
        k = codes.index(code)
        best[:, k] = np.fmin(best[:, k], np.where(np.isnan(r), np.inf, r))
    order = np.argsort(best, axis=1, kind="stable")
    present = np.isfinite(np.take_along_axis(best, order, axis=1))
    base = len(codes) + 1
    key = np.zeros(len(ranks), dtype=np.int64)
    for pos in range(len(codes)):
        key = key * base + np.where(present[:, pos], order[:, pos] + 1, 0)
    key = key * 4 + (np.asarray(cat_share, float) >= CATEGORY_REASON_SHARE) * 2 + (np.asarray(launched_days, float) <= NEW_PRODUCT_DAYS)
    uniq, inverse = np.unique(key, return_inverse=True)
    texts = []
    for k in uniq.tolist():
        new, cat = k & 1, (k >> 1) & 1
        k >>= 2
        digits = []
        for _ in range(len(codes)):
            digits.append(k % base)
            k //= base
        found = ["group_buys_category"] if cat else []
        found += [codes[d - 1] for d in reversed(digits) if d]
        if new:
            found.append("new_product")
        texts.append(json.dumps(list(dict.fromkeys(found))))
    return np.asarray(texts, dtype=object)[inverse.ravel()]


# The rules' price move: current list price / the last price seen before the window − 1, signed (NaN when unknown).
# The artifact's candidates and segment_candidates carry it as `price_change_7d` (RULES_PRICE_CHANGE), the column the
# service's rules read; inside `product_state` it is `price_move_7d`. Not the ranker's feature of the same artifact
# spelling, the price range within the window (`features.profiles.PRICE_RANGE_FEATURE`, in `candidate_features`).
PRICE_MOVE = "price_move_7d"
RULES_PRICE_CHANGE = "price_change_7d"


def product_state(products: pd.DataFrame, pushes: pd.DataFrame | None, orders: pd.DataFrame, now: pd.Timestamp,
                  window_days: int) -> pd.DataFrame:
    """Per product: main category, flags, days since launch and the price move over the last `window_days`.

    The price `window_days` ago is the last seen price (push price, else paid / quantity) before then;
    the move (`PRICE_MOVE`) is current list price / that price − 1 (NaN when unknown).
    """
    p = products.assign(**{PRODUCT_ID: products[PRODUCT_ID].astype(str)}).set_index(PRODUCT_ID)
    cut = now - pd.Timedelta(days=window_days)
    catalogue = IdMap(p.index, kind="product")
    # Columns as arrays (catalogue row, time, price): no copy of the pushes table, no string per push.
    rows, times, prices = [], [], []
    if pushes is not None and len(pushes) and "price_at_push" in pushes:
        rows.append(catalogue.index_of(pushes[PRODUCT_ID], missing="mark"))
        times.append(to_local_naive(pushes[PUSHED_AT]).to_numpy(dtype="datetime64[ns]"))
        prices.append(pd.to_numeric(pushes["price_at_push"], errors="coerce").to_numpy(dtype=float))
    rows.append(catalogue.index_of(orders[PRODUCT_ID], missing="mark"))
    times.append(to_local_naive(orders[ORDERED_AT]).to_numpy(dtype="datetime64[ns]"))
    prices.append((pd.to_numeric(orders["paid"]) / pd.to_numeric(orders["quantity"]).clip(lower=1)).to_numpy(dtype=float))
    # Each source cut to its usable observations before they are joined (76M pushes at a million groups).
    for k in range(len(rows)):
        ok = (rows[k] >= 0) & (times[k] < np.datetime64(cut, "ns")) & ~np.isnan(prices[k]) & ~np.isnat(times[k])
        rows[k], times[k], prices[k] = rows[k][ok], times[k][ok].astype(np.int64), prices[k][ok]
    row, t, price_seen = np.concatenate(rows), np.concatenate(times), np.concatenate(prices)
    del rows, times, prices
    # The last observation before the cut: the latest time per product, and of equal times the last one seen.
    latest = np.full(len(p.index), np.iinfo(np.int64).min)
    np.maximum.at(latest, row, t)
    at_latest = t == latest[row]
    last = pd.Series(price_seen[at_latest]).groupby(row[at_latest]).last()
    before = pd.Series(last.to_numpy(), index=p.index[last.index.to_numpy()])
    price = pd.to_numeric(p["price"])
    out = pd.DataFrame(index=p.index)
    out[PRICE_MOVE] = price / before.reindex(p.index) - 1.0
    out["presale"] = p["presale"].fillna(False).astype(bool) if "presale" in p else False
    out["coupon"] = pd.to_numeric(p["coupon"]).fillna(0.0) if "coupon" in p else 0.0
    out["in_stock"] = p["in_stock"].fillna(True).astype(bool) if "in_stock" in p else True
    if "launched_at" in p:
        out["launched_days"] = (now - to_local_naive(p["launched_at"])).dt.total_seconds() / 86400.0
    else:
        out["launched_days"] = np.inf
    return out


def item_product_state(frames: ContractFrames, data: TrainData, cfg: Config) -> pd.DataFrame:
    """`product_state` as of `data.now`, row i = item index i."""
    product = product_state(frames.products, frames.pushes, frames.orders, data.now, cfg.rules.price_window_days)
    return product.reindex(np.asarray(data.items.ids).astype(str))


def candidate_components(state: ScoredCandidates, frames: ContractFrames, cfg: Config) -> pd.DataFrame:
    """The `candidates` table of the artifact: one row per (group, product) with every blend component."""
    data = state.data
    return components(state.candidates, state.features, data, item_product_state(frames, data, cfg), mean_quantity(data))


def components(c: pd.DataFrame, f: pd.DataFrame, data: TrainData, product: pd.DataFrame, mean_qty: np.ndarray) -> pd.DataFrame:
    """Candidates (`score_candidates`) and their ranker rows as `candidates` rows; `product` is `product_state` in
    item index order and `mean_qty` the mean quantity per order of each item."""
    i = c["i"].to_numpy()
    prod = product.iloc[i]
    # Due: the group's usual cycle for the product's category has (about) elapsed, not long ago.
    due = f["due_ratio"].between(*DUE_RANGE).to_numpy()
    items = data.item_frame
    rank_cols = [col for col in f.columns if col.startswith("rank__")]
    price = c["price"].to_numpy(float)
    return pd.DataFrame({
        GROUP_ID: text_values(c[GROUP_ID].astype(str)),
        PRODUCT_ID: text_values(c[PRODUCT_ID].astype(str)),
        "p_conv": c["p_conv"].to_numpy(float),
        "price": price,
        "commission_rate": c["commission_rate"].to_numpy(float),
        "commission_yuan": c["commission_yuan"].to_numpy(float),
        "rating": c["rating"].to_numpy(float),
        "order_value": price * mean_qty[i],
        "category": text_values(items["main_category"], i),
        "brand": text_values(items["brand"], i),
        "sources": text_values(c["sources"].astype(str)),
        "reasons": _reasons(f[rank_cols], f["cat_share"].to_numpy(float), due, prod["launched_days"].to_numpy(float)),
        "repurchase_due": due,
        "presale": prod["presale"].to_numpy(bool),
        "coupon": prod["coupon"].to_numpy(float),
        "in_stock": prod["in_stock"].to_numpy(bool),
        RULES_PRICE_CHANGE: prod[PRICE_MOVE].to_numpy(float),
        "days_since_push": f["days_since_push"].to_numpy(float),
        "adoption": c["adoption"].to_numpy(float),
    })


def feature_table(c: pd.DataFrame, f: pd.DataFrame, ranker: ConversionRanker,
                  profiles: Profiles, scale_by_g: np.ndarray | None = None) -> pd.DataFrame:
    """The `candidate_features` rows of the candidates: group_id, product_id and the ranker's feature
    columns (float32), plus `_price_z_scale`, so that a what-if can rewrite price, commission or coupon
    (`recsys.ranker.reprice_features`) and ask the ranker again (`recsys.ranker.load_ranker`). `scale_by_g` is each
    TrainData group's log-price scale when already computed (read by the candidates' `g`)."""
    names = [n for n in ranker.feature_names_ if n in f.columns]
    out = f[names].reset_index(drop=True)
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].astype(np.float32)
    if scale_by_g is None:
        group_scale = profiles.price_scale_of(c[GROUP_ID].astype(str).to_numpy(dtype=object))
    else:
        group_scale = scale_by_g[c["g"].to_numpy()]
    out.insert(0, PRODUCT_ID, text_values(c[PRODUCT_ID].astype(str)))
    out.insert(0, GROUP_ID, text_values(c[GROUP_ID].astype(str)))
    out[PRICE_SCALE] = group_scale.astype(np.float32)
    if EXPOSED in ranker.feature_names_:
        out[EXPOSED] = np.int8(1)  # p_conv is asked about a shown pair
    return out


def segment_components(frames: ContractFrames, data: TrainData, cfg: Config, product: pd.DataFrame | None = None) -> pd.DataFrame:
    """The `segment_candidates` table: per segment its most bought products, p_conv = smoothed push conversion
    of the product in the segment (pushes of the last 28 days, labelled like the ranker's), shrunk to the
    product's overall rate and that to the global rate. `product` is `item_product_state` when already built."""
    segs = data.group_frame["segment"].to_numpy(object)
    ev = data.events
    half_life = cfg.features.half_life_days if data.timed else None  # no decay without a half-life or a real clock
    w = ev["quantity"].to_numpy(float) * (np.exp(-ev["age_days"].to_numpy() / half_life) if half_life else 1.0)
    mass = pd.Series(w).groupby([segs[ev["g"].to_numpy()], ev["i"].to_numpy()]).sum()
    glob = pd.Series(w).groupby(ev["i"].to_numpy()).sum().sort_values(ascending=False)
    n = cfg.candidates.union_size
    rate_seg, rate_item, base = _push_rates(frames, data, cfg)
    parts = []
    # The segments with any purchase, found once: probing the level per segment hashes millions of entries each time.
    bought_in = set(mass.index.get_level_values(0).unique())
    for seg in pd.unique(segs):
        top = mass.loc[seg].sort_values(ascending=False).index.to_numpy() if seg in bought_in else np.zeros(0, int)
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
    prod = (item_product_state(frames, data, cfg) if product is None else product).iloc[i]
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
        RULES_PRICE_CHANGE: prod[PRICE_MOVE].to_numpy(float),
        "days_since_push": np.nan,
    })
    return out


def _push_rates(frames: ContractFrames, data: TrainData, cfg: Config) -> tuple[pd.DataFrame, pd.Series, float]:
    """Push conversion per (segment, item) and per item over the last 28 days; the global rate."""
    if frames.pushes is None or not len(frames.pushes):
        return pd.DataFrame(columns=["pos", "n"]), pd.Series(dtype=float), 0.0
    now = data.now
    # Integer pair keys and times, never a copy of the pushes table (70M rows at a million groups), and counts by
    # bincount over the few (segment, item) cells instead of sorting or grouping 70M keys.
    at = to_local_naive(frames.pushes[PUSHED_AT]).to_numpy()
    recent = (at >= np.datetime64(now - pd.Timedelta(days=28))) & \
        (at <= np.datetime64(now - pd.Timedelta(days=cfg.ranker.label_window_days)))
    at = at[recent]
    g = data.groups.index_of(frames.pushes[GROUP_ID], missing="mark")[recent].astype(np.int32)
    i = data.items.index_of(frames.pushes[PRODUCT_ID], missing="mark")[recent].astype(np.int32)
    del recent
    o = orders_between(frames.orders, pd.Timestamp.min, now)
    og = data.groups.index_of(o[GROUP_ID], missing="mark")
    oi = data.items.index_of(o[PRODUCT_ID], missing="mark")
    width = np.int64(data.n_items)
    ok = (g >= 0) & (i >= 0)
    labels = ordered_within(np.where(ok, g.astype(np.int64) * width + i, -1), at,
                            np.where((og >= 0) & (oi >= 0), og * width + oi, -2),
                            to_local_naive(o[ORDERED_AT]).to_numpy(), pd.Timedelta(days=cfg.ranker.label_window_days))
    del at
    g, i, y = g[ok], i[ok], labels[ok].astype(float)
    del labels, ok
    base = float(y.mean()) if len(y) else 0.0
    item_n = np.bincount(i, minlength=data.n_items)
    item_pos = np.bincount(i, weights=y, minlength=data.n_items)
    pushed = np.flatnonzero(item_n)
    rate_item = pd.Series((item_pos[pushed] + 10.0 * base) / (item_n[pushed] + 10.0), index=pd.Index(pushed, name="i"))
    seg_codes, segments = pd.factorize(data.group_frame["segment"].to_numpy(object))
    key = seg_codes[g].astype(np.int64) * width + i
    del g, i
    cells = len(segments) * int(width)
    n = np.bincount(key, minlength=cells)
    pos = np.bincount(key, weights=y, minlength=cells)
    keys = np.flatnonzero(n)
    index = pd.MultiIndex.from_arrays([np.asarray(segments, dtype=object)[keys // width], keys % width], names=["s", "i"])
    rate_seg = pd.DataFrame({"pos": pos[keys], "n": n[keys]}, index=index).sort_index()
    return rate_seg, rate_item, base


def group_table(frames: ContractFrames, data: TrainData) -> pd.DataFrame:
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
