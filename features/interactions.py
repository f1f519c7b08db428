"""Group × product interaction matrices built from orders and pushes, plus the `TrainData` every source fits on.

Purchases count by quantity, decay with `FeatureConfig.half_life_days` (only on a real clock: see
`features.loading.CLOCKS`), and are confidence-scaled
(BM25 over the item × group matrix, as implicit's examples do, or log scaling). Refunded orders are
kept out of purchases. Pushes add a small exposure weight. Everything is vectorised (pandas codes,
scipy.sparse) so that it scales to a million groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from features.loading import check_clock, clock_of
from contracts.schema import GROUP_ID, ORDERED_AT, PRODUCT_ID, PUSHED_AT, SELLER_ID, TIMEZONE
from contracts.config import FeatureConfig

DAY = pd.Timedelta(days=1)
# The dtype pandas gives a column of Python strings (Arrow-backed `str` in pandas 3, object before).
TEXT_DTYPE = pd.Series(["x"]).dtype


def text_values(values: pd.Series, idx: np.ndarray | None = None) -> object:
    """A text column's values (at positions `idx`) for a new frame: Arrow strings stay in Arrow instead of going
    through a Python string per row and being inferred back (most of a block's frame building otherwise)."""
    if isinstance(values.dtype, pd.StringDtype) and values.dtype == TEXT_DTYPE:
        return values.array if idx is None else values.array.take(np.asarray(idx, dtype=np.int64))
    out = values.to_numpy(dtype=object)
    return out if idx is None else out[idx]


def _object_array(values: Iterable[object]) -> np.ndarray:
    """Any sequence of ids as a 1-d object array."""
    if isinstance(values, (pd.Series, pd.Index)):
        return values.to_numpy(dtype=object)
    if isinstance(values, np.ndarray):
        return values.astype(object)
    return np.asarray(list(values), dtype=object)


def _arrow_strings(values: object) -> pa.ChunkedArray | None:
    """The Arrow string array behind a pandas string column (pandas' default `str` dtype), else None."""
    if isinstance(values, (pd.Series, pd.Index)):
        values = values.array
    data = getattr(values, "_pa_array", None)
    if isinstance(data, pa.ChunkedArray) and (pa.types.is_string(data.type) or pa.types.is_large_string(data.type)):
        return data
    return None


class IdMap:
    """A stable mapping between external string ids and row/column indices; errors name the unknown id."""

    def __init__(self, ids: Iterable[object], kind: str = "id") -> None:
        self.kind = kind
        self.ids: np.ndarray = pd.unique(_object_array(ids))
        self._index = pd.Index(self.ids, dtype=object)
        self._arrow_ids: pa.Array | None = None

    def _arrow_id_array(self) -> pa.Array | None:
        """The ids as one Arrow string array, built once; None when they are not all strings."""
        if self._arrow_ids is None:
            if not all(isinstance(v, str) for v in self.ids):
                return None
            self._arrow_ids = pa.array(self.ids.tolist(), type=pa.string())
        return self._arrow_ids

    def _arrow_index(self, values: pa.ChunkedArray) -> np.ndarray | None:
        """Indices of Arrow strings looked up in Arrow (no Python object per row: 76M pushes stay cheap);
        None when the ids are not all strings."""
        ids = self._arrow_id_array()
        if ids is None:
            return None
        found = pc.index_in(values.cast(pa.string()), value_set=ids)
        return found.fill_null(-1).to_numpy().astype(np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    def text_of(self, idx: np.ndarray) -> object:
        """External ids at these (valid) indices as a new frame's column: taken in Arrow when the ids are strings
        and pandas stores text in Arrow (the same values and dtype as a frame built from `id_of`)."""
        idx = np.asarray(idx, dtype=np.int64)
        ids = self._arrow_id_array() if isinstance(TEXT_DTYPE, pd.StringDtype) else None
        if ids is None:
            return self.id_of(idx)
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self)):
            raise KeyError(f"{self.kind} index out of range 0..{len(self) - 1}")
        return pd.array(ids.take(pa.array(idx)), dtype=TEXT_DTYPE)

    def __contains__(self, item: object) -> bool:
        return item in self._index

    def index_of(self, ids: Iterable[object] | object, missing: str = "raise") -> np.ndarray:
        """Indices of `ids`; missing='raise' names the first unknown id, 'drop' removes them, 'mark' gives -1."""
        if isinstance(ids, (pd.Series, pd.Index)) and not pd.api.types.is_string_dtype(ids.dtype):
            ids = ids.astype(str)
        strings = _arrow_strings(ids)
        idx = self._arrow_index(strings) if strings is not None else None
        if idx is None:
            arr = _object_array([ids] if isinstance(ids, str) or np.isscalar(ids) else ids)
            idx = self._index.get_indexer(arr)
        unknown = idx < 0
        if unknown.any():
            if missing == "raise":
                pos = int(np.flatnonzero(unknown)[0])
                first = strings[pos].as_py() if strings is not None else arr[pos]
                more = int(unknown.sum()) - 1
                raise KeyError(f"unknown {self.kind} {first!r}" + (f" (and {more} more)" if more else ""))
            if missing == "drop":
                idx = idx[~unknown]
        return idx.astype(np.int64)

    def id_of(self, idx: np.ndarray | int) -> np.ndarray:
        """External ids at these indices (an index of -1 gives None)."""
        arr = np.asarray(idx, dtype=np.int64)
        if arr.size and (arr.max() >= len(self) or arr.min() < -1):
            bad = arr[(arr >= len(self)) | (arr < -1)][0]
            raise KeyError(f"{self.kind} index {int(bad)} out of range 0..{len(self) - 1}")
        out = np.where(arr >= 0, self.ids[np.clip(arr, 0, max(len(self) - 1, 0))] if len(self) else None, None)
        return out


def to_local_naive(values: pd.Series | pd.Timestamp | str) -> pd.Series | pd.Timestamp:
    """Datetimes as naive Asia/Shanghai wall-clock time, whatever zone they came in."""
    ts = pd.to_datetime(values)
    if isinstance(ts, pd.Timestamp):
        return ts.tz_convert(TIMEZONE).tz_localize(None) if ts.tzinfo is not None else ts
    if getattr(ts.dt, "tz", None) is not None:
        return ts.dt.tz_convert(TIMEZONE).dt.tz_localize(None)
    return ts


def days_before(times: pd.Series, now: pd.Timestamp) -> np.ndarray:
    """Age in (fractional) days of each timestamp relative to `now`."""
    return ((to_local_naive(now) - to_local_naive(times)) / DAY).to_numpy(dtype=np.float64)


# A weight is floored at 2^-60 ≈ 8.7e-19: far from float32's smallest normal (2^-126 ≈ 1.2e-38) even after the BM25
# and confidence scalings multiply it by small factors, so no weight underflows to 0 and eight years of history at a
# 14-day half-life keep every row (instead of 41 % zeros); events 60 half-lives old or more weigh alike.
MIN_LOG2_WEIGHT = -60.0


def decay(age_days: np.ndarray, half_life_days: float | None) -> np.ndarray:
    """Exponential time decay 0.5^(age / half-life) in float64, floored at 2^-60; future events (negative age)
    weigh 1; no half-life (None or 0) means no decay (all 1)."""
    age = np.asarray(age_days, dtype=np.float64)
    if not half_life_days:
        return np.ones(age.shape)
    # In log2 space and clipped before exponentiating: no underflow to 0, no overflow, whatever the span.
    return np.exp2(np.clip(-np.maximum(age, 0.0) / float(half_life_days), MIN_LOG2_WEIGHT, 0.0))


def newest_age(*ages: np.ndarray) -> float:
    """The smallest non-negative age among events (0 without any): decay is measured from the newest event."""
    values = [float(np.min(a[a >= 0])) for a in ages if a is not None and np.any(np.asarray(a) >= 0)]
    return min(values) if values else 0.0


def bm25_scale(matrix: sp.csr_matrix, k1: float, b: float) -> sp.csr_matrix:
    """BM25 weighting with items as documents and groups as terms (implicit's advice for ALS)."""
    items = matrix.T.tocoo()
    n_docs = float(items.shape[0])
    idf = np.log(n_docs) - np.log1p(np.bincount(items.col, minlength=items.shape[1]))
    idf = np.maximum(idf, 0.0) + 1e-3  # a group that bought everything still counts a little
    row_sums = np.ravel(items.sum(axis=1))
    avg = row_sums[row_sums > 0].mean() if (row_sums > 0).any() else 1.0
    length_norm = (1.0 - b) + b * row_sums / avg
    data = items.data * (k1 + 1.0) / (k1 * length_norm[items.row] + items.data) * idf[items.col]
    return sp.csr_matrix((data, (items.col, items.row)), shape=matrix.shape, dtype=np.float32)


def confidence(matrix: sp.csr_matrix, cfg: FeatureConfig) -> sp.csr_matrix:
    """Confidence-scaled copy of a raw weight matrix: BM25, c = 1 + α·log(1 + x), or unchanged."""
    if cfg.confidence == "bm25":
        return bm25_scale(matrix, cfg.bm25_k1, cfg.bm25_b)
    out = matrix.astype(np.float32, copy=True).tocsr()
    if cfg.confidence == "log":
        out.data = 1.0 + cfg.log_alpha * np.log1p(out.data)
    return out


def interaction_matrix(
    rows: np.ndarray, cols: np.ndarray, weights: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """Sum duplicate (row, col) weights into a CSR matrix."""
    m = sp.csr_matrix((weights.astype(np.float32), (rows, cols)), shape=shape, dtype=np.float32)
    m.sum_duplicates()
    m.eliminate_zeros()
    return m


def aggregate_rows(matrix: sp.csr_matrix, keys: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """Sum the rows of `matrix` sharing a key: returns (one row per distinct key, each row's key code)."""
    codes, uniques = pd.factorize(pd.Series(keys, dtype=object), use_na_sentinel=False)
    indicator = sp.csr_matrix(
        (np.ones(len(codes), dtype=np.float32), (codes, np.arange(len(codes)))), shape=(len(uniques), len(codes))
    )
    return (indicator @ matrix).tocsr(), codes.astype(np.int64)


def top_per_row(matrix: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Keep the `n` largest entries of each row (ties by column), vectorised over the non-zeros."""
    m = matrix.tocsr()
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((m.indices, -m.data, rows))
    starts = m.indptr[rows[order]]
    keep = order[(np.arange(len(order)) - starts) < n]
    return sp.csr_matrix((m.data[keep], (rows[keep], m.indices[keep])), shape=m.shape, dtype=m.dtype)


def with_fallback_rows(
    matrix: sp.csr_matrix,
    key_sets: list[np.ndarray],
    cold: np.ndarray,
    weights: list[float],
    top_n: int = 200,
) -> sp.csr_matrix:
    """Rows of cold groups topped up with L1-normalised aggregate rows (e.g. their seller's, their segment's).

    Each aggregate is rescaled to the mean mass of a warm row, so a cold group's history looks like a
    typical group's, led by what its seller's other groups and its segment buy. Aggregates keep their
    `top_n` items only: a segment's full row copied to every cold group would not fit in memory.
    """
    masses = np.ravel(matrix.sum(axis=1))
    warm_mass = float(masses[~cold].mean()) if (~cold).any() and masses[~cold].sum() > 0 else 1.0
    out = matrix.tocsr().astype(np.float32)
    cold_idx = np.flatnonzero(cold)
    if cold_idx.size == 0:
        return out
    for keys, w in zip(key_sets, weights):
        agg, codes = aggregate_rows(matrix, keys)
        agg = top_per_row(agg, top_n)
        sums = np.ravel(agg.sum(axis=1))
        inv = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
        agg = sp.diags(inv.astype(np.float32)) @ agg
        # Only cold rows receive an aggregate: (cold group → its key) selector times the aggregates.
        select = sp.csr_matrix(
            (np.ones(cold_idx.size, dtype=np.float32), (cold_idx, codes[cold_idx])), shape=(matrix.shape[0], agg.shape[0])
        )
        out = out + (w * warm_mass) * (select @ agg)
    return out.tocsr()


@dataclass
class TrainData:
    """Everything a candidate source fits on, aligned to `groups` rows and `items` columns."""

    groups: IdMap
    items: IdMap
    now: pd.Timestamp
    purchases: sp.csr_matrix  # decayed quantity of non-refunded orders
    weights: sp.csr_matrix  # purchases + push exposure at a smaller weight
    confidence: sp.csr_matrix  # weights, confidence-scaled (what ALS fits)
    bought: sp.csr_matrix  # 1 where the group ever bought the item (non-refunded)
    history: sp.csr_matrix  # purchases with seller/segment rows filled in for cold groups
    events: pd.DataFrame  # one row per non-refunded order: g, i, age_days, quantity
    item_frame: pd.DataFrame  # aligned to items: category, main_category, price, commission_rate, rating, in_stock, title
    group_frame: pd.DataFrame  # aligned to groups: seller_id, seller_type, city_tier, member_count, segment
    n_orders: np.ndarray  # non-refunded orders per group
    cold: np.ndarray  # bool: fewer than cfg.cold_min_orders orders
    item_vectors: np.ndarray | sp.csr_matrix | None = None
    push_events: pd.DataFrame | None = None  # one row per push before `now`: g, i, age_days
    cfg: FeatureConfig = field(default_factory=FeatureConfig)
    clock: str = "real"  # how the timestamps were made (features.loading.CLOCKS): only a real clock has a meaning in days

    @property
    def timed(self) -> bool:
        """Whether the timestamps are real, so that ages in days, decay, trends and recency mean something."""
        return self.clock == "real"

    @property
    def has_history(self) -> np.ndarray:
        """Boolean per group: it bought something, or was pushed something (a failed group-buy launch, a seller's
        push), before `now`: a group the models know."""
        known = self.n_orders > 0
        if self.push_events is not None and len(self.push_events):
            known = known | (np.bincount(self.push_events["g"].to_numpy(), minlength=self.n_groups) > 0)
        return known

    @property
    def n_groups(self) -> int:
        """Number of groups (rows)."""
        return len(self.groups)

    @property
    def n_items(self) -> int:
        """Number of products (columns)."""
        return len(self.items)

    @property
    def in_stock(self) -> np.ndarray:
        """Boolean mask of products that can be ordered now."""
        return self.item_frame["in_stock"].to_numpy(dtype=bool)

    @property
    def commission_yuan(self) -> np.ndarray:
        """Commission in yuan per product: price × commission_rate."""
        return (self.item_frame["price"] * self.item_frame["commission_rate"]).to_numpy(dtype=np.float64)

    def without_fit_inputs(self) -> TrainData:
        """The same data with what only fitting reads emptied: the exposure-weighted and confidence matrices (empty,
        same shape) and the push events (None). Fitted sources keep what they need, so scoring reads the rest;
        at a million groups this frees about 2.5 GB for the per-group part of the daily job."""
        empty = sp.csr_matrix(self.weights.shape, dtype=self.confidence.dtype)
        return replace(self, weights=empty, confidence=empty, push_events=None)


def _item_frame(products: pd.DataFrame) -> pd.DataFrame:
    """Product columns every source may use, with contract defaults filled in."""
    frame = pd.DataFrame(index=pd.RangeIndex(len(products)))
    frame["category"] = products["category"].astype(str).to_numpy() if "category" in products else "未分类"
    frame["main_category"] = frame["category"].str.split("/").str[0]
    frame["title"] = products["title"].astype(str).to_numpy() if "title" in products else ""
    frame["brand"] = products["brand"].astype(str).to_numpy() if "brand" in products else ""
    frame["price"] = pd.to_numeric(products["price"]).to_numpy(dtype=np.float64) if "price" in products else 1.0
    frame["commission_rate"] = (
        pd.to_numeric(products["commission_rate"]).to_numpy(dtype=np.float64) if "commission_rate" in products else 0.0
    )
    rating = pd.to_numeric(products["rating"]).to_numpy(dtype=np.float64) if "rating" in products else np.full(len(products), np.nan)
    if np.isnan(rating).any():
        # Contract: category median, then catalogue median.
        cat_median = pd.Series(rating).groupby(frame["category"]).transform("median").to_numpy()
        overall = np.nanmedian(rating) if (~np.isnan(rating)).any() else 0.95
        rating = np.where(np.isnan(rating), np.where(np.isnan(cat_median), overall, cat_median), rating)
    frame["rating"] = rating
    if "in_stock" in products:
        frame["in_stock"] = products["in_stock"].fillna(True).astype(bool).to_numpy()
    else:
        frame["in_stock"] = True
    return frame


def _group_frame(groups: pd.DataFrame, sellers: pd.DataFrame) -> pd.DataFrame:
    """Group columns joined with their seller's type and city tier; `segment` = seller_type × city_tier; extra columns kept."""
    g = groups.reset_index(drop=True)
    frame = pd.DataFrame(index=pd.RangeIndex(len(g)))
    frame["seller_id"] = g[SELLER_ID].astype(str).to_numpy() if SELLER_ID in g else g[GROUP_ID].astype(str).to_numpy()
    frame["member_count"] = pd.to_numeric(g["member_count"]).to_numpy() if "member_count" in g else 1
    if sellers is not None and len(sellers):
        s = sellers.set_index(sellers[SELLER_ID].astype(str))
        frame["seller_type"] = s["seller_type"].reindex(frame["seller_id"]).fillna("其他").astype(str).to_numpy()
        frame["city_tier"] = pd.to_numeric(s["city_tier"].reindex(frame["seller_id"])).fillna(0).astype(int).to_numpy()
    else:
        frame["seller_type"] = "其他"
        frame["city_tier"] = 0
    frame["segment"] = frame["seller_type"] + "|" + frame["city_tier"].astype(str)
    # Extra group attributes (e.g. a neighbourhood or age band) stay available as segment keys.
    for column in g.columns:
        if column not in frame and column not in (GROUP_ID, "theme", "created_at"):
            frame[column] = g[column].astype(str).to_numpy()
    return frame


def title_vectors(products: pd.DataFrame, cfg: FeatureConfig) -> np.ndarray | None:
    """Title embeddings in catalogue order, or None when switched off or the titles are only product ids."""
    if cfg.title_embeddings == "off" or "title" not in products or not len(products):
        return None
    titles = products["title"].fillna("").astype(str).to_numpy()
    if cfg.title_embeddings == "auto" and np.mean(titles != products[PRODUCT_ID].astype(str).to_numpy()) < 0.5:
        return None
    from features.embeddings import get_embedder

    return get_embedder(cfg).encode(list(titles))


def default_now(orders: pd.DataFrame) -> pd.Timestamp:
    """"Now" of a data set when none is given: one second after its last order (local time)."""
    if not len(orders):
        return pd.Timestamp("2000-01-01")
    return to_local_naive(orders[ORDERED_AT]).max() + pd.Timedelta(seconds=1)


def build_train_data(
    products: pd.DataFrame,
    sellers: pd.DataFrame | None,
    groups: pd.DataFrame,
    pushes: pd.DataFrame | None,
    orders: pd.DataFrame,
    cfg: FeatureConfig | None = None,
    now: pd.Timestamp | str | None = None,
    push_weight: float = 0.1,
    fallback_weights: tuple[float, float] = (1.0, 0.5),
    item_vectors: np.ndarray | sp.csr_matrix | None = None,
    clock: str | None = None,
) -> TrainData:
    """Build the interaction matrices and aligned frames from contract tables (only orders before `now` count).

    `clock` is how the timestamps were made (default: the orders' `attrs["clock"]`, which the loader sets, else
    "real"); on any other clock nothing decays, whatever `cfg.half_life_days` says.
    """
    cfg = cfg or FeatureConfig()
    clock = clock_of(orders) if clock is None else check_clock(clock)
    half_life = cfg.half_life_days if clock == "real" else None
    groups_map = IdMap(groups[GROUP_ID].astype(str).to_numpy(), kind="group")
    items_map = IdMap(products[PRODUCT_ID].astype(str).to_numpy(), kind="product")
    ordered = to_local_naive(orders[ORDERED_AT])
    if now is None and clock != "real" and pushes is not None and len(pushes) and len(orders):
        # A synthetic clock has no "after the last order": every push in the table is history (Beibei's failed
        # launches are appended after its successes, so their line numbers come last).
        now = max(ordered.max(), to_local_naive(pushes[PUSHED_AT]).max()) + pd.Timedelta(seconds=1)
    now = to_local_naive(pd.Timestamp(default_now(orders) if now is None else now))
    keep = (ordered < now).to_numpy().copy()
    if "refunded" in orders:
        keep &= ~orders["refunded"].fillna(False).astype(bool).to_numpy()
    o = orders.loc[keep]
    g_idx = groups_map.index_of(o[GROUP_ID])
    i_idx = items_map.index_of(o[PRODUCT_ID])
    age = days_before(o[ORDERED_AT], now)
    qty = pd.to_numeric(o["quantity"]).to_numpy(dtype=np.float64) if "quantity" in o else np.ones(len(o))
    shape = (len(groups_map), len(items_map))
    push_events = None
    p_age = None
    if pushes is not None and len(pushes):
        # Columns, not a filtered copy of the table: pushes are the biggest table (76M rows at a million groups).
        pushed = to_local_naive(pushes[PUSHED_AT])
        before = (pushed < now).to_numpy()
        pg = groups_map.index_of(pushes[GROUP_ID], missing="mark")[before]
        pi = items_map.index_of(pushes[PRODUCT_ID], missing="mark")[before]
        if (pg < 0).any() or (pi < 0).any():  # name the unknown id, as for orders
            bad = pushes.loc[before]
            groups_map.index_of(bad[GROUP_ID])
            items_map.index_of(bad[PRODUCT_ID])
        p_age = days_before(pushed[before], now)
        push_events = pd.DataFrame({"g": pg.astype(np.int32), "i": pi.astype(np.int32), "age_days": p_age})
    # Decay counts from the newest event before `now` (a common factor for orders and pushes), so the newest weighs
    # 1 however far `now` lies after the data.
    shift = newest_age(age, p_age)
    purchases = interaction_matrix(g_idx, i_idx, qty * decay(age - shift, half_life), shape)
    bought = interaction_matrix(g_idx, i_idx, np.ones(len(o)), shape)
    bought.data[:] = 1.0
    weights = purchases
    if push_events is not None and push_weight > 0:
        exposure = interaction_matrix(pg, pi, push_weight * decay(p_age - shift, half_life), shape)
        weights = (purchases + exposure).tocsr()
    n_orders = np.bincount(g_idx, minlength=shape[0])
    cold = n_orders < cfg.cold_min_orders
    group_frame = _group_frame(groups, sellers)
    history = with_fallback_rows(
        purchases, [group_frame["seller_id"].to_numpy(), group_frame["segment"].to_numpy()], cold, list(fallback_weights)
    )
    events = pd.DataFrame({"g": g_idx.astype(np.int32), "i": i_idx.astype(np.int32), "age_days": age, "quantity": qty})
    if item_vectors is None:
        item_vectors = title_vectors(products, cfg)
    return TrainData(
        groups=groups_map,
        items=items_map,
        now=now,
        purchases=purchases,
        weights=weights,
        confidence=confidence(weights, cfg),
        bought=bought,
        history=history,
        events=events,
        item_frame=_item_frame(products.reset_index(drop=True)),
        group_frame=group_frame,
        n_orders=n_orders,
        cold=cold,
        item_vectors=item_vectors,
        push_events=push_events,
        cfg=cfg,
        clock=clock,
    )
