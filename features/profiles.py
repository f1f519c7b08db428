"""Group, product, segment and group × product feature tables, built as of a cut-off time.

Every function takes contract tables (`contracts.schema`) as DataFrames plus `as_of`, and uses only
events strictly before `as_of`, so the same code builds training rows (as_of = a past cut-off) and
serving rows (as_of = now). Everything is vectorised on integer codes (bincount, groupby on int
keys, id lookups hashed in Arrow): no Python loop runs per group or per product.

Conventions
-----------
- A purchase is a non-refunded order. Refunded orders count in no purchase, share, cycle or
  conversion figure (the contract keeps them as exposure only); they still date a product's first
  sighting and show the price it sold at.
- Category means the main category, the first level of `category` ("食品/零食" -> "食品").
- Category shares are wide columns on the group profile, `cat_share__<main category>` (one per main
  category of the catalogue, sorted): the share of the group's purchases in that category, 0 for a
  group without purchases (its `n_orders` says so). Wide, because the catalogue has tens of main
  categories and `pair_features` reads a share as one numpy lookup `shares[group, category]`.
- Rates are smoothed toward the overall rate with `cfg.conversion_prior_strength` pseudo-pushes;
  shares toward the segment (seller_type × city_tier) with `cfg.share_prior_strength` pseudo-orders.
- Times are in days (floats); NaN means "never" (no order, no push) unless a column says otherwise.

`build_profiles` computes every table once (reading the pushes' columns once, never copying that
table, and keeping of it only a per-pair `PushHistory`) and `Profiles.pair_features(pairs)` then
gives the ranker its rows; `Profiles.split` cuts per-block views of the group-keyed tables.
`PAIR_FEATURES` lists the columns pair_features returns, `PAIR_CATEGORICAL` those that are pandas
categoricals: seller_type, city_tier, theme and shop_type with the contract's fixed categories
(stable codes between training and serving); main_category with the catalogue's main categories,
sorted (LightGBM maps a pandas categorical back to the categories it was trained on).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from contracts.schema import (
    GROUP_ID,
    GROUP_THEMES,
    GROUPS,
    ORDERED_AT,
    ORDERS,
    PRODUCT_ID,
    PRODUCTS,
    PUSHED_AT,
    PUSHES,
    SELLER_ID,
    SELLER_TYPES,
    SELLERS,
    SHOP_TYPES,
    TIMEZONE,
    Table,
)
from contracts.config import FeatureConfig

DAY = pd.Timedelta(days=1)
CAT_SHARE_PREFIX = "cat_share__"
CITY_TIERS: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
UNKNOWN = "未知"
# The ranker's price feature: max/min − 1 of a product's prices seen in the last `price_window_days` (a range, never
# negative). Its name is the ranker format's (every stored model and `candidate_features` table carries it), so it
# stays for artifacts to load; inside the product profile it is `price_range_7d`. Not the rules' signed price move
# against the price before the window, which the artifact's candidates also spell `price_change_7d`
# (`training.tables.PRICE_MOVE`).
PRICE_RANGE_FEATURE = "price_change_7d"
PRICE_RANGE = "price_range_7d"  # its product profile column
# A robust spread: the IQR of a normal distribution is 1.349 standard deviations.
IQR_TO_STD = 1.349

# Columns of `pair_features`, besides group_id and product_id, in output order.
PAIR_FEATURES: tuple[str, ...] = (
    # group × product
    "cat_share",            # the group's own share of purchases in the product's main category
    "segment_cat_share",    # the same share in the group's segment (shrunk to the whole data)
    "cat_affinity",         # cat_share shrunk to segment_cat_share by the group's order count
    "price_z",              # (log price − group's median log paid price) / group's robust log-price spread
    "brand_share",          # share of the group's branded purchases of this brand; NaN for unbranded goods
    "brand_bought",         # 1 when the group bought this brand before, else 0 (NaN for unbranded goods)
    "days_since_cat",       # days since the group last bought this main category (NaN: never)
    "cat_cycle_days",       # the group's repurchase cycle for the category (or the category's, see cycles)
    "due_ratio",            # days_since_cat / cat_cycle_days
    "repurchase_due",       # 1 when due_ratio ≥ cfg.repurchase_due_ratio, else 0
    "days_since_push",      # days since this product was last pushed to this group (NaN: never)
    "times_pushed",         # pushes of this product to this group before as_of
    # group
    "member_count",
    "seller_type",
    "city_tier",
    "theme",
    "group_n_orders",
    "group_orders_30d",
    "group_conv_rate",
    "group_days_since_order",
    "group_is_cold",
    # product
    "main_category",
    "shop_type",
    "log_price",
    "coupon",
    "presale",
    "commission_rate",
    "commission_yuan",
    "rating",
    "review_count",
    PRICE_RANGE_FEATURE,
    "log_price_std",
    "product_conv_rate",
    "product_orders_7d",
    "product_orders_30d",
    "age_days",
)
PAIR_CATEGORICAL: tuple[str, ...] = ("seller_type", "city_tier", "theme", "main_category", "shop_type")


# --------------------------------------------------------------------------- small helpers


def to_as_of(as_of: object) -> pd.Timestamp:
    """A tz-aware Asia/Shanghai timestamp (naive input is read as Shanghai time)."""
    ts = pd.Timestamp(as_of)
    return ts.tz_localize(TIMEZONE) if ts.tzinfo is None else ts.tz_convert(TIMEZONE)


def _times(values: pd.Series) -> pd.Series:
    s = pd.to_datetime(values)
    return s.dt.tz_localize(TIMEZONE) if s.dt.tz is None else s


def _complete(frame: pd.DataFrame, table: Table) -> pd.DataFrame:
    """Add absent optional columns with the contract default (callers may pass partial frames)."""
    missing = [c for c in table.columns if c.name not in frame.columns]
    if not missing:
        return frame
    frame = frame.copy()
    for col in missing:
        if col.required:
            raise KeyError(f"table {table.name!r} lacks required column {col.name!r}")
        if col.type == "datetime":
            frame[col.name] = pd.Series(pd.NaT, index=frame.index, dtype=f"datetime64[ns, {TIMEZONE}]")
        elif col.default is None:
            frame[col.name] = np.nan
        else:
            frame[col.name] = col.default
    return frame


def main_category(category: pd.Series) -> pd.Series:
    """The first level of a category path: "食品/零食" -> "食品"."""
    # Split each distinct path once: a catalogue of 100k products has a few hundred paths.
    codes, paths = pd.factorize(category.fillna("").astype(str))
    heads = pd.Series(paths).str.split("/", n=1).str[0]
    return pd.Series(heads.to_numpy()[codes], index=category.index, dtype=heads.dtype, name=category.name)


def segment_key(seller_type: pd.Series, city_tier: pd.Series) -> pd.Series:
    """seller_type × city_tier as one string key such as "宝妈|3" (未知 when the seller is unknown)."""
    st = seller_type.astype(object).where(seller_type.notna(), UNKNOWN).astype(str)
    tier = pd.to_numeric(city_tier, errors="coerce")
    tier_s = tier.fillna(0).astype(int).astype(str).where(tier.notna(), UNKNOWN)
    return (st + "|" + tier_s).astype(object)


def _arrow_strings(values: object) -> pa.Array | pa.ChunkedArray:
    """Values as Arrow large strings (zero-copy for pandas' Arrow-backed str columns)."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.cast(pa.large_string())
    series = values if isinstance(values, pd.Series) else pd.Series(values, copy=False)
    if series.dtype != "str":
        series = series.astype("str")
    return pa.array(series).cast(pa.large_string())


def _positions(keys: object, values: object) -> np.ndarray:
    """Row of each value among `keys` (ids), -1 where absent.

    Hashing in Arrow: about ten times faster than pandas' get_indexer on millions of string ids.
    """
    pos = pc.index_in(_arrow_strings(values), value_set=_arrow_strings(keys))
    return np.asarray(pos.fill_null(-1).to_numpy(), dtype=np.int64)


def _factorize(values: object) -> tuple[np.ndarray, np.ndarray]:
    """(codes, uniques) of string ids in order of first appearance; -1 for missing values."""
    arr = _arrow_strings(values)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    encoded = arr.dictionary_encode()
    codes = np.asarray(encoded.indices.fill_null(-1).to_numpy(), dtype=np.int64)
    return codes, np.asarray(encoded.dictionary.to_numpy(zero_copy_only=False), dtype=object)


def _sorted_unique(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct int64 values and their counts (a plain sort: faster than np.unique's hashing here)."""
    ordered = np.sort(np.asarray(values, dtype=np.int64))
    if not len(ordered):
        return ordered, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    return ordered[starts], np.diff(np.r_[starts, len(ordered)])


def _take(values: np.ndarray, idx: np.ndarray, fill: float = np.nan) -> np.ndarray:
    """values[idx] as float, `fill` where idx is -1."""
    out = np.asarray(values, dtype=float)[np.maximum(idx, 0)] if len(values) else np.full(len(idx), fill)
    return np.where(idx >= 0, out, fill)


def _categorical(values: object, categories: tuple[object, ...] | list[object],
                 rows: np.ndarray | None = None) -> pd.Categorical:
    """A categorical with fixed categories; values outside them (free-text themes, blanks) become missing.

    With `rows`, `values` are per entity and the result has one entry per row (-1: missing): the codes
    are found once per entity, then taken per row.
    """
    if categories and all(isinstance(c, str) for c in categories):
        codes = _positions(pd.Series(list(categories), dtype=object), values)
    else:
        codes = pd.Index(list(categories)).get_indexer(np.asarray(values, dtype=float))
    if rows is not None:
        codes = np.where(rows >= 0, codes[np.maximum(rows, 0)] if len(codes) else -1, -1)
    return pd.Categorical.from_codes(codes, categories=list(categories))


def _smoothed_rate(hits: np.ndarray, trials: np.ndarray, strength: float) -> np.ndarray:
    """(hits + m·p0) / (trials + m) with p0 = Σhits / Σtrials; NaN when there are no trials at all."""
    total = float(trials.sum())
    if total <= 0:
        return np.full(len(hits), np.nan)
    prior = float(hits.sum()) / total
    denom = trials + strength
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (hits + strength * prior) / np.where(denom > 0, denom, 1), prior)


def _last_age(codes: np.ndarray, age: np.ndarray, n: int) -> np.ndarray:
    """Per code, the smallest age (days since the latest event); NaN for codes without events."""
    last = np.full(n, np.inf)
    np.minimum.at(last, codes, age)
    return np.where(np.isinf(last), np.nan, last)


def _local_day(times: pd.Series) -> np.ndarray:
    """Calendar day number (days since 1970-01-01) in Shanghai time."""
    local = times.dt.tz_convert(TIMEZONE).dt.tz_localize(None)
    return local.to_numpy().astype("datetime64[D]").astype(np.int64)


@dataclass(frozen=True)
class _Catalog:
    """Integer codes of the catalogue: product row, main category and brand."""

    index: pd.Index
    cat_codes: np.ndarray  # per product, into `categories`
    categories: list[str]  # main categories, sorted
    brand_codes: np.ndarray  # per product, into `brands`; -1 for unbranded goods
    brands: list[str]


def _catalog(products: pd.DataFrame) -> _Catalog:
    cat_codes, cats = pd.factorize(main_category(products["category"]), sort=True)
    brand = products["brand"].fillna("").astype(str)
    brand_codes, brands = pd.factorize(brand.mask(brand == ""), sort=True)
    return _Catalog(
        index=pd.Index(products[PRODUCT_ID].astype(str), name=PRODUCT_ID),
        cat_codes=cat_codes.astype(np.int64),
        categories=[str(c) for c in cats],
        brand_codes=brand_codes.astype(np.int64),
        brands=[str(b) for b in brands],
    )


@dataclass(frozen=True)
class _Purchases:
    """Non-refunded orders before as_of, as arrays aligned row by row."""

    group_id: pa.Array | pa.ChunkedArray
    product: np.ndarray  # catalogue row, -1 for a product missing from the catalogue
    cat: np.ndarray  # main category code, -1 when unknown
    brand: np.ndarray  # brand code, -1 when unbranded or unknown
    times: pd.Series
    age: np.ndarray  # days before as_of
    quantity: np.ndarray
    paid: np.ndarray


def _purchases(orders: pd.DataFrame, catalog: _Catalog, as_of: pd.Timestamp) -> _Purchases:
    o = _complete(orders, ORDERS)
    times = _times(o[ORDERED_AT])
    refunded = o["refunded"].fillna(False).astype(bool).to_numpy()
    keep = (times < as_of).to_numpy() & ~refunded
    o = o.loc[keep, [GROUP_ID, PRODUCT_ID, "quantity", "paid"]]
    times = times.loc[keep].reset_index(drop=True)
    prod = _positions(catalog.index, o[PRODUCT_ID])
    return _Purchases(
        group_id=_arrow_strings(o[GROUP_ID]),
        product=prod,
        cat=np.where(prod >= 0, catalog.cat_codes[np.maximum(prod, 0)] if len(catalog.cat_codes) else -1, -1),
        brand=np.where(prod >= 0, catalog.brand_codes[np.maximum(prod, 0)] if len(catalog.brand_codes) else -1, -1),
        times=times,
        age=((as_of - times) / DAY).to_numpy(dtype=float),
        quantity=o["quantity"].to_numpy(dtype=float),
        paid=o["paid"].to_numpy(dtype=float),
    )


@dataclass(frozen=True)
class _PushColumns:
    """Pushes before as_of as aligned arrays read from the table's columns (never a filtered copy of the table).

    Only the parts asked for are read (None otherwise): row lookups of 76M string ids cost seconds each.
    """

    group: np.ndarray | None  # int32 row among the group ids it was read against, -1 when unknown
    product: np.ndarray | None  # int32 catalogue row, -1 when unknown
    age: np.ndarray  # float64 days before as_of
    price: np.ndarray | None  # float64 price_at_push, NaN when absent


def _push_columns(pushes: pd.DataFrame, as_of: pd.Timestamp, group_index: pd.Index | None = None,
                  product_index: pd.Index | None = None, price: bool = False) -> _PushColumns:
    """The pushes strictly before as_of: rows among `group_index` / `product_index` and age, plus price when asked."""
    for name in (GROUP_ID, PRODUCT_ID, PUSHED_AT):
        if name not in pushes.columns:
            raise KeyError(f"table {PUSHES.name!r} lacks required column {name!r}")
    times = _times(pushes[PUSHED_AT])
    keep = (times < as_of).to_numpy()
    every = bool(keep.all())

    def kept(values: np.ndarray) -> np.ndarray:
        return values if every else values[keep]

    def rows(index: pd.Index | None, column: str) -> np.ndarray | None:
        return None if index is None else kept(_positions(index, pushes[column]).astype(np.int32))

    prices = None
    if price:
        raw = pushes["price_at_push"] if "price_at_push" in pushes.columns else pd.Series(np.nan, index=pushes.index)
        prices = kept(pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float))
    return _PushColumns(group=rows(group_index, GROUP_ID), product=rows(product_index, PRODUCT_ID),
                        age=kept(((as_of - times) / DAY).to_numpy(dtype=float)), price=prices)


@dataclass(frozen=True, eq=False)
class PushHistory:
    """Push history of every pushed (group, product) pair as of a cut-off: how often and how long ago.

    Keys are `group_row * n_products + product_row` (int64, sorted, unique), rows of the profile's
    `groups.index` and `products.index`; `times` counts the pair's pushes before as_of and
    `last_age` is the age in days of the latest one (float64: the very values of the raw pushes).
    A view for some groups (`Profiles.for_groups`) keeps only those groups' keys.
    """

    key: np.ndarray
    times: np.ndarray
    last_age: np.ndarray
    n_groups: int
    n_products: int

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays."""
        return int(self.key.nbytes + self.times.nbytes + self.last_age.nbytes)

    def take(self, idx: np.ndarray) -> PushHistory:
        """The entries at `idx` (ascending positions keep the keys sorted)."""
        return PushHistory(self.key[idx], self.times[idx], self.last_age[idx], self.n_groups, self.n_products)

    def lookup(self, gi: np.ndarray, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(times pushed, days since the last push) of each (group row, product row); 0 and NaN when never pushed."""
        if not len(self.key):
            return np.zeros(len(gi)), np.full(len(gi), np.nan)
        key = np.where((gi >= 0) & (pi >= 0), gi.astype(np.int64) * max(self.n_products, 1) + pi, -1)
        pos = np.minimum(np.searchsorted(self.key, key), len(self.key) - 1)
        found = (key >= 0) & (self.key[pos] == key)
        return np.where(found, self.times[pos], 0).astype(float), np.where(found, self.last_age[pos], np.nan)

    @classmethod
    def empty(cls, n_groups: int, n_products: int) -> PushHistory:
        """A history without pushes."""
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32), np.zeros(0), n_groups, n_products)


def _aggregate_pushes(key: np.ndarray, age: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted distinct keys with their push count and smallest age."""
    order = np.argsort(key)
    key, age = key[order], age[order]
    del order
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, dtype=np.int64)
    times = np.diff(np.r_[starts, len(key)]).astype(np.int32)
    last = np.minimum.reduceat(age, starts) if len(starts) else np.zeros(0)
    return key[starts], times, last


def _push_history(push: _PushColumns, n_groups: int, n_products: int, chunk: int = 1 << 24,
                  keep: np.ndarray | None = None) -> PushHistory:
    """Aggregate pushes (group and product rows known; of the group rows flagged in `keep` when given) into a
    `PushHistory`.

    Sorted by group row ranges of about `chunk` pushes each, so the sort's scratch memory stays a few
    hundred MB at 76M pushes instead of several GB.
    """
    assert push.group is not None and push.product is not None
    valid = (push.group >= 0) & (push.product >= 0)
    if keep is not None:
        valid &= keep[np.maximum(push.group, 0)]
    n_valid = int(valid.sum())
    if not n_valid:
        return PushHistory.empty(n_groups, n_products)
    n = max(n_products, 1)
    n_chunks = max(1, -(-n_valid // chunk))
    bounds = np.linspace(0, n_groups, n_chunks + 1).round().astype(np.int64)
    parts = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        sel = np.flatnonzero(valid & (push.group >= lo) & (push.group < hi)) if n_chunks > 1 else np.flatnonzero(valid)
        parts.append(_aggregate_pushes(push.group[sel].astype(np.int64) * n + push.product[sel], push.age[sel]))
        del sel
    # Parts are moved into the result one by one and freed (np.concatenate would hold both at once):
    # untouched pages of np.empty cost no memory.
    total = sum(len(part[0]) for part in parts)
    out = [np.empty(total, dtype=column.dtype) for column in parts[0]]
    at = 0
    while parts:
        part = parts.pop(0)
        for target, column in zip(out, part):
            target[at:at + len(column)] = column
        at += len(part[0])
        del part
    return PushHistory(out[0], out[1], out[2], n_groups, n_products)


# --------------------------------------------------------------------------- group tables


def group_profile(
    orders: pd.DataFrame,
    pushes: pd.DataFrame,
    groups: pd.DataFrame,
    sellers: pd.DataFrame,
    products: pd.DataFrame,
    as_of: object,
    cfg: FeatureConfig | None = None,
) -> pd.DataFrame:
    """One row per group (indexed by group_id): who runs it, its activity, conversion, price band, brands, categories.

    Columns: seller_id, member_count, seller_type, city_tier, theme, segment, n_orders, n_units, gmv,
    orders_7d, orders_30d, days_since_last_order, n_pushes, pushes_30d, days_since_last_push,
    conv_rate (orders per push, smoothed), log_price_median, log_price_iqr (unit prices paid),
    top_brand, top_brand_share, brand_hhi (over branded purchases), is_cold, then cat_share__<category>.
    """
    as_of = to_as_of(as_of)
    push = _push_columns(pushes, as_of, group_index=_group_index(groups))
    return _group_profile(orders, push, groups, sellers, products, as_of, cfg or FeatureConfig())


def _group_index(groups: pd.DataFrame) -> pd.Index:
    """Group ids in table order: the rows of the group profile."""
    return pd.Index(groups[GROUP_ID].astype(str), name=GROUP_ID)


def _group_profile(orders: pd.DataFrame, push: _PushColumns, groups: pd.DataFrame, sellers: pd.DataFrame,
                   products: pd.DataFrame, as_of: pd.Timestamp, cfg: FeatureConfig) -> pd.DataFrame:
    """`group_profile` from pushes already read into columns (group rows against `_group_index(groups)`)."""
    catalog = _catalog(_complete(products, PRODUCTS))
    g = _complete(groups, GROUPS)
    s = _complete(sellers, SELLERS)
    index = _group_index(g)
    n = len(index)

    out = pd.DataFrame(index=index)
    out[SELLER_ID] = g[SELLER_ID].astype(str).to_numpy()
    out["member_count"] = g["member_count"].to_numpy(dtype=np.int64)
    seller_row = _positions(s[SELLER_ID], out[SELLER_ID])
    out["seller_type"] = _categorical(s["seller_type"], SELLER_TYPES, rows=seller_row)
    out["city_tier"] = _take(s["city_tier"].to_numpy(dtype=float), seller_row)
    out["theme"] = g["theme"].fillna("").astype(str).to_numpy()
    out["segment"] = segment_key(out["seller_type"], out["city_tier"]).to_numpy()

    buys = _purchases(orders, catalog, as_of)
    gi = _positions(index, buys.group_id)
    mine = gi >= 0
    gi, age = gi[mine], buys.age[mine]
    qty, paid, cat, brand = buys.quantity[mine], buys.paid[mine], buys.cat[mine], buys.brand[mine]
    n_orders = np.bincount(gi, minlength=n)
    out["n_orders"] = n_orders
    out["n_units"] = np.bincount(gi, weights=qty, minlength=n)
    out["gmv"] = np.bincount(gi, weights=paid, minlength=n)
    out["orders_7d"] = np.bincount(gi[age < 7], minlength=n)
    out["orders_30d"] = np.bincount(gi[age < 30], minlength=n)
    out["days_since_last_order"] = _last_age(gi, age, n)

    assert push.group is not None
    # Counted at row + 1, slot 0 (unknown groups) then dropped: no filtered copies of the pushes' arrays.
    slot = push.group + 1
    n_pushes = np.bincount(slot, minlength=n + 1)[1:]
    out["n_pushes"] = n_pushes
    out["pushes_30d"] = np.bincount(slot[push.age < 30], minlength=n + 1)[1:]
    out["days_since_last_push"] = _last_age(slot, push.age, n + 1)[1:]
    del slot
    out["conv_rate"] = _smoothed_rate(n_orders.astype(float), n_pushes.astype(float), cfg.conversion_prior_strength)

    # Price band on the log scale: what this group usually pays per unit.
    unit = np.divide(paid, qty, out=np.zeros_like(paid), where=qty > 0)
    priced = unit > 0
    log_unit = pd.Series(np.log(unit[priced])).groupby(gi[priced])
    quartiles = log_unit.quantile([0.25, 0.5, 0.75]).unstack() if priced.any() else pd.DataFrame(columns=[0.25, 0.5, 0.75])
    quartiles = quartiles.reindex(range(n))
    out["log_price_median"] = quartiles[0.5].to_numpy(dtype=float)
    out["log_price_iqr"] = (quartiles[0.75] - quartiles[0.25]).to_numpy(dtype=float)

    top_brand, top_share, hhi = _brand_loyalty(gi, brand, n, catalog.brands)
    out["top_brand"] = top_brand
    out["top_brand_share"] = top_share
    out["brand_hhi"] = hhi
    out["is_cold"] = n_orders < cfg.cold_min_orders

    ncat = len(catalog.categories)
    known = cat >= 0
    counts = np.bincount(gi[known] * ncat + cat[known], minlength=n * ncat).reshape(n, ncat).astype(float)
    shares = counts / np.maximum(n_orders, 1)[:, None]
    share_cols = pd.DataFrame(shares, index=index, columns=[CAT_SHARE_PREFIX + c for c in catalog.categories])
    return pd.concat([out, share_cols], axis=1)


def _brand_counts(codes: np.ndarray, brand: np.ndarray, n_brands: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(code, brand, count) for every pair with a branded purchase, sorted by code then count descending."""
    branded = brand >= 0
    key = codes[branded].astype(np.int64) * max(n_brands, 1) + brand[branded]
    uniq, count = _sorted_unique(key)
    code, b = uniq // max(n_brands, 1), uniq % max(n_brands, 1)
    # uniq is sorted by (code, brand) and lexsort is stable: ties in count stay in brand order.
    order = np.lexsort((-count, code))
    return code[order], b[order], count[order]


def _brand_loyalty(codes: np.ndarray, brand: np.ndarray, n: int, brands: list[str]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top brand, its share and the Herfindahl index of brand shares, per code (NaN/None without branded buys)."""
    code, b, count = _brand_counts(codes, brand, len(brands))
    total = np.bincount(code, weights=count, minlength=n)
    share = count / np.maximum(total[code], 1)
    hhi = np.bincount(code, weights=share**2, minlength=n)
    first = np.ones(len(code), dtype=bool)
    first[1:] = code[1:] != code[:-1]
    top_brand = np.full(n, None, dtype=object)
    top_share = np.full(n, np.nan)
    top_brand[code[first]] = np.asarray(brands, dtype=object)[b[first]] if len(brands) else []
    top_share[code[first]] = share[first]
    return top_brand, top_share, np.where(total > 0, hhi, np.nan)


def group_brand_shares(orders: pd.DataFrame, products: pd.DataFrame, as_of: object) -> pd.DataFrame:
    """Long table group_id, brand, n_orders, share: each group's branded purchases by brand (share of its branded buys)."""
    as_of = to_as_of(as_of)
    catalog = _catalog(_complete(products, PRODUCTS))
    buys = _purchases(orders, catalog, as_of)
    codes, names = _factorize(buys.group_id)
    code, b, count = _brand_counts(codes, buys.brand, len(catalog.brands))
    total = np.bincount(code, weights=count, minlength=len(names))
    return pd.DataFrame({
        GROUP_ID: np.asarray(names, dtype=object)[code] if len(code) else np.array([], dtype=object),
        "brand": np.asarray(catalog.brands, dtype=object)[b] if len(b) else np.array([], dtype=object),
        "n_orders": count.astype(np.int64),
        "share": count / np.maximum(total[code], 1) if len(code) else np.array([], dtype=float),
    })


def group_category_cycle(
    orders: pd.DataFrame, products: pd.DataFrame, as_of: object, cfg: FeatureConfig | None = None
) -> pd.DataFrame:
    """Long table, one row per (group, main category) bought: repurchase timing.

    Columns: group_id, category, n_purchases (orders), n_purchase_days (distinct Shanghai calendar
    days: several members ordering the same day is one purchase occasion), last_bought_at,
    days_since_last, cycle_days, cycle_source, due_ratio = days_since_last / cycle_days.
    cycle_days is the median gap in days between the group's purchase days in that category when it
    has at least two; otherwise the category's median over the groups that have one (cycle_source
    "category"); otherwise the median over all categories ("all"); otherwise cfg.default_cycle_days.
    """
    cfg = cfg or FeatureConfig()
    as_of = to_as_of(as_of)
    catalog = _catalog(_complete(products, PRODUCTS))
    buys = _purchases(orders, catalog, as_of)
    known = buys.cat >= 0
    gcode, gnames = _factorize(buys.group_id.filter(pa.array(known)))
    ncat = max(len(catalog.categories), 1)
    frame = pd.DataFrame({
        "key": gcode.astype(np.int64) * ncat + buys.cat[known],
        "day": _local_day(buys.times[known]),
        "at": buys.times[known].reset_index(drop=True),
    })
    per_key = frame.groupby("key", sort=True).agg(n_purchases=("day", "size"), last_bought_at=("at", "max"))
    # Distinct (group × category, day) in sorted order through one int64: key · 2^20 + day.
    day0 = int(frame["day"].min()) if len(frame) else 0
    packed, _ = _sorted_unique(frame["key"].to_numpy() * (1 << 20) + (frame["day"].to_numpy() - day0))
    key_arr, day_arr = packed >> 20, packed & ((1 << 20) - 1)
    repeat = key_arr[1:] == key_arr[:-1]
    gaps = pd.Series((day_arr[1:] - day_arr[:-1])[repeat].astype(float), index=key_arr[1:][repeat])
    n_days = pd.Series(key_arr).value_counts()
    own_cycle = gaps.groupby(level=0).median()

    keys = per_key.index.to_numpy(dtype=np.int64)
    cat_of_key = keys % ncat
    cycle = own_cycle.reindex(keys).to_numpy(dtype=float)
    own = ~np.isnan(cycle)
    cat_median = pd.Series(cycle[own]).groupby(cat_of_key[own]).median().reindex(cat_of_key).to_numpy(dtype=float)
    all_median = float(np.median(cycle[own])) if own.any() else cfg.default_cycle_days
    has_cat = ~np.isnan(cat_median)
    source = np.where(own, "group", np.where(has_cat, "category", "all" if own.any() else "default"))
    cycle = np.where(own, cycle, np.where(has_cat, cat_median, all_median))
    since = ((as_of - per_key["last_bought_at"]) / DAY).to_numpy(dtype=float)

    out = pd.DataFrame({
        GROUP_ID: np.asarray(gnames, dtype=object)[keys // ncat],
        "category": np.asarray(catalog.categories, dtype=object)[cat_of_key],
        "n_purchases": per_key["n_purchases"].to_numpy(dtype=np.int64),
        "n_purchase_days": n_days.reindex(keys).to_numpy(dtype=np.int64),
        "last_bought_at": per_key["last_bought_at"].reset_index(drop=True),
        "days_since_last": since,
        "cycle_days": cycle,
        "cycle_source": source.astype(object),
        "due_ratio": since / cycle,
    })
    return out.sort_values([GROUP_ID, "category"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- product table


@dataclass(frozen=True)
class _PriceObservations:
    """Observed prices as aligned arrays; a row of -1 is no observation (unknown product, no positive price)."""

    row: np.ndarray  # product row
    age: np.ndarray  # days before as_of
    log_price: np.ndarray  # NaN where row is -1


def _price_observations(
    products_index: pd.Index, orders: pd.DataFrame, push: _PushColumns, as_of: pd.Timestamp
) -> tuple[_PriceObservations, _PriceObservations]:
    """Observed prices before as_of: from pushes (price_at_push) and from orders (paid / quantity).

    Masked rather than filtered: the pushes' arrays are used as they are, not copied.
    """
    assert push.product is not None and push.price is not None
    ok = (push.product >= 0) & (push.price > 0)
    from_pushes = _PriceObservations(np.where(ok, push.product, -1), push.age,
                                     np.log(push.price, where=ok, out=np.full(len(ok), np.nan)))
    o = _complete(orders, ORDERS)
    times = _times(o[ORDERED_AT])
    qty = o["quantity"].to_numpy(dtype=float)
    unit = np.divide(o["paid"].to_numpy(dtype=float), qty, out=np.zeros(len(o)), where=qty > 0)
    orow = _positions(products_index, o[PRODUCT_ID])
    # A refunded order still showed the price it was sold at.
    ok = (orow >= 0) & (unit > 0) & (times < as_of).to_numpy()
    from_orders = _PriceObservations(np.where(ok, orow, -1), ((as_of - times) / DAY).to_numpy(dtype=float),
                                     np.log(unit, where=ok, out=np.full(len(ok), np.nan)))
    return from_pushes, from_orders


def _price_stats(obs: _PriceObservations, n: int, window_days: float) -> tuple[np.ndarray, np.ndarray]:
    """Per product row: the price range (max/min − 1) within the window, std of log price over all history."""
    recent = np.flatnonzero((obs.row >= 0) & (obs.age < window_days))
    rows, values = obs.row[recent], obs.log_price[recent]
    low, high = np.full(n, np.inf), np.full(n, -np.inf)
    np.minimum.at(low, rows, values)
    np.maximum.at(high, rows, values)
    with np.errstate(invalid="ignore"):
        price_range = np.where(np.bincount(rows, minlength=n) > 0, np.exp(high - low) - 1.0, np.nan)
    # pandas' grouped std (the same one-pass algorithm over each product's prices in order) on categorical
    # codes: every product row is a group without hashing millions of keys; code -1 belongs to none.
    codes = pd.Categorical.from_codes(obs.row, categories=pd.RangeIndex(n))
    spread = pd.Series(obs.log_price).groupby(codes, observed=False).std(ddof=0).to_numpy(dtype=float)
    return price_range, spread


def product_profile(
    products: pd.DataFrame,
    orders: pd.DataFrame,
    pushes: pd.DataFrame,
    as_of: object,
    cfg: FeatureConfig | None = None,
    price_window_days: float = 7.0,
) -> pd.DataFrame:
    """One row per product (indexed by product_id): catalogue facts, sales velocity, conversion, price stability, age.

    Columns: category, main_category, brand, price, log_price, shop_type, in_stock, coupon, presale,
    commission_rate, commission_yuan (price × commission_rate), rating (imputed: the main category's
    median, else the catalogue's), rating_imputed, review_count, n_orders, orders_7d, orders_30d,
    units_7d, units_30d, days_since_last_order, n_pushes, pushes_30d, conv_rate (orders per push,
    smoothed toward the catalogue's), price_range_7d (max/min − 1 of the prices observed in the last
    `price_window_days` days, from pushes when the product has push prices there, else from orders;
    NaN when none; pass RuleConfig.price_window_days), log_price_std (std of observed log prices,
    same source rule, all history), first_seen_days (days since its first push or order), age_days
    (days since launched_at, or since first seen when launched_at is absent).
    """
    as_of = to_as_of(as_of)
    push = _push_columns(pushes, as_of, product_index=_catalog(_complete(products, PRODUCTS)).index, price=True)
    return _product_profile(products, orders, push, as_of, cfg or FeatureConfig(), price_window_days)


def _product_profile(products: pd.DataFrame, orders: pd.DataFrame, push: _PushColumns, as_of: pd.Timestamp,
                     cfg: FeatureConfig, price_window_days: float) -> pd.DataFrame:
    """`product_profile` from pushes already read into columns (product rows against the catalogue, prices)."""
    p = _complete(products, PRODUCTS)
    catalog = _catalog(p)
    index = catalog.index
    n = len(index)

    out = pd.DataFrame(index=index)
    out["category"] = p["category"].astype(str).to_numpy()
    out["main_category"] = np.asarray(catalog.categories, dtype=object)[catalog.cat_codes] if n else []
    out["brand"] = p["brand"].fillna("").astype(str).to_numpy()
    price = p["price"].to_numpy(dtype=float)
    out["price"] = price
    out["log_price"] = np.log(price)
    out["shop_type"] = p["shop_type"].fillna("POP").astype(str).to_numpy()
    out["in_stock"] = p["in_stock"].fillna(True).astype(bool).to_numpy()
    out["coupon"] = p["coupon"].fillna(0.0).to_numpy(dtype=float)
    out["presale"] = p["presale"].fillna(False).astype(bool).to_numpy()
    rate = p["commission_rate"].to_numpy(dtype=float)
    out["commission_rate"] = rate
    out["commission_yuan"] = price * rate

    rating = pd.to_numeric(p["rating"], errors="coerce").to_numpy(dtype=float)
    by_cat = pd.Series(rating).groupby(catalog.cat_codes).median().reindex(catalog.cat_codes).to_numpy(dtype=float)
    overall = float(np.nanmedian(rating)) if np.isfinite(rating).any() else np.nan
    imputed = np.isnan(rating)
    out["rating"] = np.where(imputed, np.where(np.isnan(by_cat), overall, by_cat), rating)
    out["rating_imputed"] = imputed
    out["review_count"] = p["review_count"].fillna(0).to_numpy(dtype=np.int64)

    buys = _purchases(orders, catalog, as_of)
    row, age, qty = buys.product, buys.age, buys.quantity
    known = row >= 0
    row, age, qty = row[known], age[known], qty[known]
    n_orders = np.bincount(row, minlength=n)
    out["n_orders"] = n_orders
    out["orders_7d"] = np.bincount(row[age < 7], minlength=n)
    out["orders_30d"] = np.bincount(row[age < 30], minlength=n)
    out["units_7d"] = np.bincount(row[age < 7], weights=qty[age < 7], minlength=n)
    out["units_30d"] = np.bincount(row[age < 30], weights=qty[age < 30], minlength=n)
    out["days_since_last_order"] = _last_age(row, age, n)

    assert push.product is not None
    # Counted at row + 1, slot 0 (unknown products) then dropped: no filtered copies of the pushes' arrays.
    slot = push.product + 1
    n_pushes = np.bincount(slot, minlength=n + 1)[1:]
    out["n_pushes"] = n_pushes
    out["pushes_30d"] = np.bincount(slot[push.age < 30], minlength=n + 1)[1:]
    out["conv_rate"] = _smoothed_rate(n_orders.astype(float), n_pushes.astype(float), cfg.conversion_prior_strength)

    from_pushes, from_orders = _price_observations(index, orders, push, as_of)
    push_range, push_spread = _price_stats(from_pushes, n, price_window_days)
    order_range, order_spread = _price_stats(from_orders, n, price_window_days)
    out[PRICE_RANGE] = np.where(np.isnan(push_range), order_range, push_range)
    out["log_price_std"] = np.where(np.isnan(push_spread), order_spread, push_spread)

    # First seen: the earliest push or order of any kind (refunded too) before as_of.
    o = _complete(orders, ORDERS)
    o_times = _times(o[ORDERED_AT])
    o_row = _positions(index, o[PRODUCT_ID])
    o_ok = (o_row >= 0) & (o_times < as_of).to_numpy()
    first_age = np.full(n + 1, -np.inf)
    np.maximum.at(first_age, o_row[o_ok] + 1, ((as_of - o_times) / DAY).to_numpy(dtype=float)[o_ok])
    np.maximum.at(first_age, slot, push.age)
    first_seen = np.where(np.isinf(first_age[1:]), np.nan, first_age[1:])
    out["first_seen_days"] = first_seen
    launched = _times(p["launched_at"])
    launch_age = ((as_of - launched) / DAY).to_numpy(dtype=float)
    out["age_days"] = np.where(np.isnan(launch_age), first_seen, launch_age)
    return out


# --------------------------------------------------------------------------- segments


@dataclass
class SegmentAggregates:
    """Category shares and product popularity pooled over sellers and over segments (seller_type × city_tier).

    shares frames are indexed by seller_id / segment with n_groups, n_orders and the cat_share__*
    columns (pooled: the segment's purchases by category over its purchases); popularity frames are
    long (seller_id or segment, product_id, n_orders, units, rank) with the top products of the last
    `window_days`, rank 1 = most ordered.
    """

    seller_shares: pd.DataFrame
    segment_shares: pd.DataFrame
    overall_shares: pd.Series
    seller_popularity: pd.DataFrame
    segment_popularity: pd.DataFrame


def _pooled_shares(group_prof: pd.DataFrame, by: str) -> pd.DataFrame:
    """Category shares pooled over the groups of each `by` value (purchases by category / purchases)."""
    share_cols = [c for c in group_prof.columns if c.startswith(CAT_SHARE_PREFIX)]
    codes, names = _factorize(group_prof[by])
    n = len(names)
    n_orders = group_prof["n_orders"].to_numpy(dtype=float)
    shares = group_prof[share_cols].to_numpy(dtype=float)
    total = np.bincount(codes, weights=n_orders, minlength=n)
    pooled = {col: np.bincount(codes, weights=shares[:, j] * n_orders, minlength=n) / np.maximum(total, 1)
              for j, col in enumerate(share_cols)}
    out = pd.DataFrame({"n_groups": np.bincount(codes, minlength=n), "n_orders": np.round(total).astype(np.int64),
                        **pooled}, index=pd.Index(names, name=by))
    return out.sort_index()


def _popularity(key_codes: np.ndarray, key_names: np.ndarray, product: np.ndarray, qty: np.ndarray,
                product_ids: pd.Index, key_name: str, top_n: int) -> pd.DataFrame:
    """Top products per key by orders (then units, then catalogue order), from integer codes."""
    n_products = max(len(product_ids), 1)
    packed = key_codes.astype(np.int64) * n_products + product
    by_pair = np.argsort(packed, kind="stable")
    packed = packed[by_pair]
    starts = np.flatnonzero(np.r_[True, packed[1:] != packed[:-1]]) if len(packed) else np.zeros(0, dtype=np.int64)
    pairs, count = packed[starts], np.diff(np.r_[starts, len(packed)])
    units = np.add.reduceat(qty[by_pair], starts) if len(starts) else np.zeros(0)
    key, row = pairs // n_products, pairs % n_products
    # Orders then units as one descending score (units / (max + 1) < 1 never outweighs an order);
    # pairs are sorted by (key, row) and lexsort is stable, so ties keep catalogue order.
    score = count + units / (units.max() + 1.0) if len(units) else units
    order = np.lexsort((-score, key))
    key, row, count, units = key[order], row[order], count[order], units[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, dtype=np.int64)
    rank = np.arange(len(key)) - np.repeat(starts, np.diff(np.r_[starts, len(key)])) + 1
    top = rank <= top_n
    return pd.DataFrame({
        key_name: np.asarray(key_names, dtype=object)[key[top]],
        PRODUCT_ID: np.asarray(product_ids, dtype=object)[row[top]],
        "n_orders": count[top],
        "units": units[top],
        "rank": rank[top].astype(np.int64),
    })


def segment_aggregates(
    group_prof: pd.DataFrame,
    orders: pd.DataFrame,
    products: pd.DataFrame,
    as_of: object,
    top_n: int = 100,
    window_days: float = 30.0,
) -> SegmentAggregates:
    """Seller-level and segment-level category shares and product popularity, for groups with little history."""
    as_of = to_as_of(as_of)
    catalog = _catalog(_complete(products, PRODUCTS))
    share_cols = [c for c in group_prof.columns if c.startswith(CAT_SHARE_PREFIX)]
    total = group_prof["n_orders"].to_numpy(dtype=float)
    overall = pd.Series(
        (group_prof[share_cols].to_numpy(dtype=float) * total[:, None]).sum(axis=0) / max(total.sum(), 1.0),
        index=share_cols, name="overall",
    )
    buys = _purchases(orders, catalog, as_of)
    gi = _positions(group_prof.index, buys.group_id)
    ok = (gi >= 0) & (buys.product >= 0) & (buys.age < window_days)
    rows, qty = buys.product[ok], buys.quantity[ok]
    seller_codes, seller_names = _factorize(group_prof[SELLER_ID])
    segment_codes, segment_names = _factorize(group_prof["segment"])
    return SegmentAggregates(
        seller_shares=_pooled_shares(group_prof, SELLER_ID),
        segment_shares=_pooled_shares(group_prof, "segment"),
        overall_shares=overall,
        seller_popularity=_popularity(seller_codes[gi[ok]], seller_names, rows, qty, catalog.index, SELLER_ID, top_n),
        segment_popularity=_popularity(segment_codes[gi[ok]], segment_names, rows, qty, catalog.index, "segment", top_n),
    )


# --------------------------------------------------------------------------- group × product


def _shrink(own: np.ndarray, n: np.ndarray, prior: np.ndarray, strength: float) -> np.ndarray:
    """(n·own + m·prior) / (n + m): an observed share pulled toward its prior when n is small."""
    denom = n + strength
    return np.where(denom > 0, (n * own + strength * prior) / np.where(denom > 0, denom, 1), prior)


def _group_price_scale(group_prof: pd.DataFrame, cfg: FeatureConfig) -> np.ndarray:
    """Per group, sqrt((n·s² + m·S²) / (n + m)) floored at cfg.min_log_price_scale, where s = IQR/1.349 of
    the group's log unit prices, n its orders, S² the order-weighted mean s² of groups with 2+ orders."""
    n = group_prof["n_orders"].to_numpy(dtype=float)
    own = group_prof["log_price_iqr"].to_numpy(dtype=float) / IQR_TO_STD
    has = np.isfinite(own)
    multi = has & (n >= 2)
    pooled = float(np.average(own[multi] ** 2, weights=n[multi])) if multi.any() else cfg.min_log_price_scale**2
    n_eff = np.where(has, n, 0.0)
    m = cfg.share_prior_strength
    var = (n_eff * np.nan_to_num(own) ** 2 + m * pooled) / np.maximum(n_eff + m, 1e-12)
    return np.maximum(np.sqrt(var), cfg.min_log_price_scale)


def _pair_lookup(left_keys: np.ndarray, right_keys: np.ndarray) -> np.ndarray:
    """Row in `left_keys` (unique int64) of each right key, -1 when absent."""
    return pd.Index(left_keys).get_indexer(right_keys)


def _rows_among(index: pd.Index, values: object) -> np.ndarray:
    """Row of each value among the ids of `index`, -1 where absent, as `_positions` gives.

    The values' distinct ids are hashed and the index's ids probed into them: a block's pairs name a
    few thousand groups, and hashing a million group ids per call is what would cost.
    """
    codes, distinct = _factorize(values)
    hit = _positions(pd.Series(distinct, dtype=object), index)
    found = np.flatnonzero(hit >= 0)[::-1]  # reversed: the first of duplicate ids is written last and wins
    row = np.full(len(distinct), -1, dtype=np.int64)
    row[hit[found]] = found
    return np.where(codes >= 0, row[np.maximum(codes, 0)], -1) if len(row) else np.full(len(codes), -1)


def _pair_history(pushes: pd.DataFrame, as_of: pd.Timestamp, group_index: pd.Index, product_index: pd.Index,
                  gi: np.ndarray, pi: np.ndarray) -> PushHistory:
    """The push history of the pairs (gi, pi) from the raw pushes table."""
    push = _push_columns(pushes, as_of, group_index=group_index, product_index=product_index)
    n = max(len(product_index), 1)
    assert push.group is not None and push.product is not None
    pair_key = np.unique(np.where((gi >= 0) & (pi >= 0), gi.astype(np.int64) * n + pi, -1))
    push_key = np.where((push.group >= 0) & (push.product >= 0), push.group.astype(np.int64) * n + push.product, -2)
    relevant = np.isin(push_key, pair_key)
    key, times, last = _aggregate_pushes(push_key[relevant], push.age[relevant])
    return PushHistory(key, times, last, len(group_index), len(product_index))


def pair_features(
    pairs: pd.DataFrame,
    group_prof: pd.DataFrame,
    product_prof: pd.DataFrame,
    cycles: pd.DataFrame,
    pushes: pd.DataFrame | PushHistory,
    as_of: object,
    *,
    brands: pd.DataFrame | None = None,
    segment_shares: pd.DataFrame | None = None,
    overall_shares: pd.Series | None = None,
    cfg: FeatureConfig | None = None,
    price_scale: np.ndarray | None = None,
) -> pd.DataFrame:
    """Features of each (group_id, product_id) row of `pairs` for the conversion ranker: group_id, product_id, PAIR_FEATURES.

    Rows keep the order of `pairs`. `pushes` is the raw pushes table or the profiles' `PushHistory`
    (same values, no pass over the pushes). `brands` is `group_brand_shares(...)` (brand columns are NaN
    without it); segment and overall shares are pooled from `group_prof` when not given. A group or
    product missing from its profile gets NaN features (LightGBM treats them as missing). `price_scale` is
    `_group_price_scale(group_prof, cfg)` when already computed.
    """
    cfg = cfg or FeatureConfig()
    as_of = to_as_of(as_of)
    m = len(pairs)
    group_rows = _rows_among(group_prof.index, pairs[GROUP_ID])
    pi = _positions(product_prof.index, pairs[PRODUCT_ID])
    n_products = len(product_prof)
    # Group columns are read for the pairs' own groups only when they are few (a block's 2,000 of a
    # million): `gp` holds those rows and `gi` indexes it; `group_rows` indexes the whole profile.
    used = np.unique(group_rows[group_rows >= 0])
    if len(used) < len(group_prof) // 2:
        gp = group_prof.take(used)
        gi = np.where(group_rows >= 0, np.searchsorted(used, group_rows), -1)
    else:
        gp, gi, used = group_prof, group_rows, np.arange(len(group_prof))
    n_groups = len(gp)
    # `.array` keeps the ids' dtype: no re-inference of millions of strings.
    out: dict[str, object] = {GROUP_ID: pairs[GROUP_ID].array, PRODUCT_ID: pairs[PRODUCT_ID].array}

    # Category affinity: the group's share of the product's main category, shrunk to its segment's.
    share_cols = [c for c in gp.columns if c.startswith(CAT_SHARE_PREFIX)]
    categories = [c[len(CAT_SHARE_PREFIX):] for c in share_cols]
    prod_cat = _positions(pd.Series(categories, dtype=object), product_prof["main_category"])
    ci = np.where(pi >= 0, prod_cat[np.maximum(pi, 0)] if n_products else -1, -1)
    shares = gp[share_cols].to_numpy(dtype=float)
    both = (gi >= 0) & (ci >= 0)
    own = np.where(gi >= 0, 0.0, np.nan)
    own[both] = shares[gi[both], ci[both]]
    if overall_shares is None or segment_shares is None:
        pooled = _pooled_shares(group_prof, "segment")
        segment_shares = pooled if segment_shares is None else segment_shares
        if overall_shares is None:
            counts = pooled[share_cols].to_numpy() * pooled["n_orders"].to_numpy()[:, None]
            overall_shares = pd.Series(counts.sum(axis=0) / max(pooled["n_orders"].sum(), 1), index=share_cols)
    seg_matrix = segment_shares.reindex(columns=share_cols).fillna(0.0).to_numpy(dtype=float)
    seg_matrix = _shrink(seg_matrix, segment_shares["n_orders"].to_numpy(dtype=float)[:, None],
                         overall_shares.reindex(share_cols).fillna(0.0).to_numpy(dtype=float)[None, :],
                         cfg.share_prior_strength)
    seg_row = _positions(segment_shares.index, gp["segment"])
    si = np.where(gi >= 0, seg_row[np.maximum(gi, 0)] if n_groups else -1, -1)
    seg = np.full(m, np.nan)
    ok = (si >= 0) & (ci >= 0)
    seg[ok] = seg_matrix[si[ok], ci[ok]]
    # A segment absent from segment_shares (e.g. a new seller type) falls back to the overall share.
    overall = overall_shares.reindex(share_cols).fillna(0.0).to_numpy(dtype=float)
    fallback = np.isnan(seg) & (ci >= 0)
    seg[fallback] = overall[ci[fallback]]
    g_orders = _take(gp["n_orders"].to_numpy(dtype=float), gi)
    out["cat_share"] = own
    out["segment_cat_share"] = seg
    affinity = _shrink(own, np.nan_to_num(g_orders), np.nan_to_num(seg), cfg.share_prior_strength)
    out["cat_affinity"] = np.where(np.isnan(own), np.nan, affinity)

    # Price against the group's band, in robust standard deviations of log price. A group with few
    # purchases has an unreliable spread (0 after one order), so its variance is shrunk toward the
    # typical within-group variance, weighted by orders like the shares.
    log_price = _take(product_prof["log_price"].to_numpy(dtype=float), pi)
    median = _take(gp["log_price_median"].to_numpy(dtype=float), gi)
    scale = _group_price_scale(group_prof, cfg) if price_scale is None else price_scale
    out["price_z"] = (log_price - median) / _take(scale[used], gi)

    # Brand loyalty: share of the group's branded purchases that went to this product's brand.
    product_brand = product_prof["brand"].fillna("").astype(str)
    branded = _take((product_brand != "").to_numpy(dtype=float), pi, fill=0.0) > 0
    brand_share = np.full(m, np.nan)
    if brands is not None:
        # Brand codes per product (not per pair): the pair's code is then one integer take.
        codes, vocab = _factorize(pd.concat([brands["brand"].astype(str), product_brand], ignore_index=True))
        nb = max(len(vocab), 1)
        table_codes, product_codes = codes[: len(brands)], codes[len(brands):]
        bg = _positions(gp.index, brands[GROUP_ID])
        known = bg >= 0
        table_keys = bg[known] * nb + table_codes[known]
        pair_codes = np.where(pi >= 0, product_codes[np.maximum(pi, 0)] if n_products else -1, -1)
        row = _pair_lookup(table_keys, np.where(branded & (gi >= 0), gi * nb + pair_codes, -1))
        found = (row >= 0) & branded & (gi >= 0)
        brand_share = np.where(gi >= 0, 0.0, np.nan)
        brand_share[found] = brands["share"].to_numpy(dtype=float)[known][row[found]]
        brand_share[~branded] = np.nan
    out["brand_share"] = brand_share
    out["brand_bought"] = np.where(np.isnan(brand_share), np.nan, (brand_share > 0).astype(float))

    # Repurchase timing of the product's category in this group.
    cg = _positions(gp.index, cycles[GROUP_ID])
    cc = _positions(pd.Series(categories, dtype=object), cycles["category"])
    nc = max(len(categories), 1)
    valid = (cg >= 0) & (cc >= 0)
    row = _pair_lookup(cg[valid].astype(np.int64) * nc + cc[valid], np.where(both, gi.astype(np.int64) * nc + ci, -1))
    row = np.where(both, row, -1)
    out["days_since_cat"] = _take(cycles["days_since_last"].to_numpy(dtype=float)[valid], row)
    out["cat_cycle_days"] = _take(cycles["cycle_days"].to_numpy(dtype=float)[valid], row)
    due = _take(cycles["due_ratio"].to_numpy(dtype=float)[valid], row)
    out["due_ratio"] = due
    out["repurchase_due"] = (np.nan_to_num(due) >= cfg.repurchase_due_ratio).astype(float)

    # Push history of this product to this group: pre-aggregated, or aggregated here from raw pushes
    # (only those of the asked pairs).
    if isinstance(pushes, PushHistory):
        if (pushes.n_groups, pushes.n_products) != (len(group_prof), n_products):
            raise ValueError("push history was built for other group or product profiles")
        history = pushes
    else:
        history = _pair_history(pushes, as_of, group_prof.index, product_prof.index, group_rows, pi)
    times, last = history.lookup(group_rows, pi)
    out["days_since_push"] = last
    out["times_pushed"] = np.where(gi >= 0, times, np.nan)

    # Group facts.
    out["member_count"] = _take(gp["member_count"].to_numpy(dtype=float), gi)
    out["seller_type"] = _categorical(gp["seller_type"].astype(object), SELLER_TYPES, rows=gi)
    out["city_tier"] = _categorical(gp["city_tier"], [float(t) for t in CITY_TIERS], rows=gi)
    out["theme"] = _categorical(gp["theme"], GROUP_THEMES, rows=gi)
    out["group_n_orders"] = g_orders
    out["group_orders_30d"] = _take(gp["orders_30d"].to_numpy(dtype=float), gi)
    out["group_conv_rate"] = _take(gp["conv_rate"].to_numpy(dtype=float), gi)
    out["group_days_since_order"] = _take(gp["days_since_last_order"].to_numpy(dtype=float), gi)
    out["group_is_cold"] = _take(gp["is_cold"].to_numpy(dtype=float), gi)

    # Product facts.
    all_categories = sorted(set(categories) | set(product_prof["main_category"].astype(str).unique()))
    out["main_category"] = _categorical(product_prof["main_category"], all_categories, rows=pi)
    out["shop_type"] = _categorical(product_prof["shop_type"], SHOP_TYPES, rows=pi)
    out["log_price"] = log_price
    for name in ("coupon", "presale", "commission_rate", "commission_yuan", "rating", "review_count",
                 PRICE_RANGE_FEATURE, "log_price_std"):
        column = PRICE_RANGE if name == PRICE_RANGE_FEATURE else name  # the ranker's name of the price range
        out[name] = _take(product_prof[column].to_numpy(dtype=float), pi)
    out["product_conv_rate"] = _take(product_prof["conv_rate"].to_numpy(dtype=float), pi)
    out["product_orders_7d"] = _take(product_prof["orders_7d"].to_numpy(dtype=float), pi)
    out["product_orders_30d"] = _take(product_prof["orders_30d"].to_numpy(dtype=float), pi)
    out["age_days"] = _take(product_prof["age_days"].to_numpy(dtype=float), pi)
    return pd.DataFrame(out, index=pairs.index)


# --------------------------------------------------------------------------- all at once


@dataclass
class Profiles:
    """Every feature table as of one cut-off; `pair_features(pairs)` builds ranker rows from them.

    Group-keyed tables: `push_history`, `brands`, `cycles`. A view made by `for_groups` / `split` holds
    only some groups' rows of those (the other tables are the same objects, not copies) and gives the
    whole's pair features for pairs of its groups. Groups are named either by id (strings) or by
    profile row: the position in `groups.index`, the order of the groups table (the TrainData group
    index too when both come from the same groups table).
    """

    as_of: pd.Timestamp
    groups: pd.DataFrame
    products: pd.DataFrame
    cycles: pd.DataFrame
    brands: pd.DataFrame
    segments: SegmentAggregates
    push_history: PushHistory
    cfg: FeatureConfig = field(default_factory=FeatureConfig)
    # `_group_price_scale` of `groups`, once computed: it pools over every group, so a block must not redo it.
    price_scale: np.ndarray | None = None

    def group_price_scale(self) -> np.ndarray:
        """Each profiled group's log-price scale (the price_z denominator), computed on first use."""
        if self.price_scale is None:
            self.price_scale = _group_price_scale(self.groups, self.cfg)
        return self.price_scale

    def price_scale_of(self, group_ids: object) -> np.ndarray:
        """`group_price_scale` of each of these group ids, NaN for a group without a profile."""
        rows = self.groups.index.get_indexer(np.asarray(group_ids, dtype=object))
        return np.where(rows >= 0, self.group_price_scale()[np.maximum(rows, 0)], np.nan)

    def pair_features(self, pairs: pd.DataFrame) -> pd.DataFrame:
        """group_id, product_id and PAIR_FEATURES for each row of `pairs`."""
        return pair_features(
            pairs, self.groups, self.products, self.cycles, self.push_history, self.as_of,
            brands=self.brands, segment_shares=self.segments.segment_shares,
            overall_shares=self.segments.overall_shares, cfg=self.cfg, price_scale=self.group_price_scale(),
        )

    def group_rows(self, groups: np.ndarray | pd.Series | list[object]) -> np.ndarray:
        """Sorted distinct profile rows of groups given as profile rows (integers) or ids (unknown ids dropped)."""
        values = np.asarray(groups)
        if not len(values):
            return np.zeros(0, dtype=np.int64)
        if values.dtype.kind in "iu":
            rows = values.astype(np.int64)
            if rows.min() < 0 or rows.max() >= len(self.groups):
                raise IndexError(f"group rows must lie in 0..{len(self.groups) - 1}")
        else:
            rows = _positions(self.groups.index, pd.Series(values, dtype="str"))
            rows = rows[rows >= 0]
        return np.unique(rows)

    def for_groups(self, groups: np.ndarray | pd.Series | list[object]) -> Profiles:
        """The view of these groups (profile rows or group ids): their push history, brands and cycles only."""
        return self.split([groups])[0]

    def split(self, blocks: list[np.ndarray]) -> list[Profiles]:
        """One view per block of groups (profile rows or group ids each), in one pass over each group-keyed table."""
        given = [np.asarray(b) for b in blocks]
        named = [k for k, b in enumerate(given) if len(b) and b.dtype.kind not in "iu"]
        skip = set(named)
        rows = {k: self.group_rows(b) for k, b in enumerate(given) if k not in skip}
        if named:  # ids of all blocks in one lookup: each lookup hashes every group id of the profile
            found = _positions(self.groups.index, pd.Series(np.concatenate([given[k] for k in named]), dtype="str"))
            for k, part in zip(named, np.split(found, np.cumsum([len(given[k]) for k in named])[:-1])):
                rows[k] = np.unique(part[part >= 0])
        n = len(self.groups)
        history = self.push_history
        # Keys are sorted by group row: each group's entries are one run, found by binary search.
        starts = np.searchsorted(history.key, np.arange(n + 1, dtype=np.int64) * max(history.n_products, 1))
        brands, cycles = _GroupRuns(self.brands, self.groups.index), _GroupRuns(self.cycles, self.groups.index)
        return [replace(self, push_history=history.take(_runs(starts, rows[k])), brands=brands.rows(rows[k]),
                        cycles=cycles.rows(rows[k])) for k in range(len(given))]

    def without_group_tables(self) -> Profiles:
        """The profiles with empty group-keyed tables: what every block shares (each carries its own view)."""
        return replace(self, push_history=self.push_history.take(np.zeros(0, dtype=np.int64)),
                       brands=self.brands.iloc[:0], cycles=self.cycles.iloc[:0])


def _runs(starts: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Positions starts[r] .. starts[r + 1] − 1 of every row r in `rows`, concatenated (ascending for sorted rows)."""
    lo, hi = starts[rows], starts[rows + 1]
    size = hi - lo
    total = int(size.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    # arange(total) shifted run by run: position i of run k is lo[k] + (i − run k's offset in the output).
    offset = np.cumsum(size) - size
    return np.arange(total, dtype=np.int64) + np.repeat(lo - offset, size)


class _GroupRuns:
    """A long table's rows grouped by profile row of their group_id, to cut views from it."""

    def __init__(self, frame: pd.DataFrame, group_index: pd.Index) -> None:
        self.frame = frame
        g = _positions(group_index, frame[GROUP_ID]) if len(frame) else np.zeros(0, dtype=np.int64)
        self.order = np.argsort(g, kind="stable")
        self.starts = np.searchsorted(g[self.order], np.arange(len(group_index) + 1))

    def rows(self, rows: np.ndarray) -> pd.DataFrame:
        """The table's rows of these groups (sorted distinct profile rows), in table order."""
        return self.frame.iloc[np.sort(self.order[_runs(self.starts, rows)])]


def build_profiles(
    products: pd.DataFrame,
    sellers: pd.DataFrame,
    groups: pd.DataFrame,
    pushes: pd.DataFrame,
    orders: pd.DataFrame,
    as_of: object,
    cfg: FeatureConfig | None = None,
    price_window_days: float = 7.0,
    history_groups: object | None = None,
) -> Profiles:
    """Group, product, cycle, brand and segment tables and the push history as of `as_of` (events strictly before it).

    The pushes are read once, column by column, for every table that needs them. With `history_groups` (group ids)
    the push history holds those groups' pairs only: the ranker's examples read a sample of groups, and the history
    of a million groups is the largest table to build.
    """
    cfg = cfg or FeatureConfig()
    as_of = to_as_of(as_of)
    group_index = _group_index(groups)
    product_index = _catalog(_complete(products, PRODUCTS)).index
    push = _push_columns(pushes, as_of, group_index=group_index, product_index=product_index, price=True)
    group_prof = _group_profile(orders, push, groups, sellers, products, as_of, cfg)
    product_prof = _product_profile(products, orders, push, as_of, cfg, price_window_days)
    keep = None
    if history_groups is not None:
        rows = _positions(group_index, pd.Series(np.asarray(history_groups, dtype=object), dtype=object))
        keep = np.zeros(len(group_index), dtype=bool)
        keep[rows[rows >= 0]] = True
    history = _push_history(push, len(group_index), len(product_index), keep=keep)
    del push
    return Profiles(
        as_of=as_of,
        groups=group_prof,
        products=product_prof,
        cycles=group_category_cycle(orders, products, as_of, cfg),
        brands=group_brand_shares(orders, products, as_of),
        segments=segment_aggregates(group_prof, orders, products, as_of),
        push_history=history,
        cfg=cfg,
    )
