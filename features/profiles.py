"""Group, product, segment and group × product feature tables, built as of a cut-off time.

Every function takes contract tables (`features.schema`) as DataFrames plus `as_of`, and uses only
events strictly before `as_of`, so the same code builds training rows (as_of = a past cut-off) and
serving rows (as_of = now). Everything is vectorised on integer codes (bincount, groupby on int
keys, `Index.get_indexer`): no Python loop runs per group or per product.

Conventions
-----------
- A purchase is a non-refunded order; refunded orders count nowhere here (the contract keeps them as
  exposure only, and pushes are the exposure table).
- Category means the main category, the first level of `category` ("食品/零食" -> "食品").
- Category shares are wide columns on the group profile, `cat_share__<main category>` (one per main
  category of the catalogue, sorted): the share of the group's purchases in that category, 0 for a
  group without purchases (its `n_orders` says so). Wide, because the catalogue has tens of main
  categories and `pair_features` reads a share as one numpy lookup `shares[group, category]`.
- Rates are smoothed toward the overall rate with `cfg.conversion_prior_strength` pseudo-pushes;
  shares toward the segment (seller_type × city_tier) with `cfg.share_prior_strength` pseudo-orders.
- Times are in days (floats); NaN means "never" (no order, no push) unless a column says otherwise.

`build_profiles` computes every table once and `Profiles.pair_features(pairs)` then gives the ranker
its rows; `PAIR_FEATURES` lists the columns it returns, `PAIR_CATEGORICAL` those that are pandas
categoricals with fixed categories (stable codes between training and serving).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.schema import (
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
from recsys.config import FeatureConfig

DAY = pd.Timedelta(days=1)
CAT_SHARE_PREFIX = "cat_share__"
CITY_TIERS: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
UNKNOWN = "未知"
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
    "price_change_7d",
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
    return category.fillna("").astype(str).str.split("/", n=1).str[0]


def segment_key(seller_type: pd.Series, city_tier: pd.Series) -> pd.Series:
    """seller_type × city_tier as one string key such as "宝妈|3" (未知 when the seller is unknown)."""
    st = seller_type.astype(object).where(seller_type.notna(), UNKNOWN).astype(str)
    tier = pd.to_numeric(city_tier, errors="coerce")
    tier_s = tier.fillna(0).astype(int).astype(str).where(tier.notna(), UNKNOWN)
    return (st + "|" + tier_s).astype(object)


def _take(values: np.ndarray, idx: np.ndarray, fill: float = np.nan) -> np.ndarray:
    """values[idx] as float, `fill` where idx is -1."""
    out = np.asarray(values, dtype=float)[np.maximum(idx, 0)] if len(values) else np.full(len(idx), fill)
    return np.where(idx >= 0, out, fill)


def _take_obj(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=object)
    out = values[np.maximum(idx, 0)] if len(values) else np.full(len(idx), None, dtype=object)
    return np.where(idx >= 0, out, None)


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

    group_id: np.ndarray
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
    o, times = o.loc[keep], times.loc[keep].reset_index(drop=True)
    prod = catalog.index.get_indexer(o[PRODUCT_ID].astype(str))
    return _Purchases(
        group_id=o[GROUP_ID].astype(str).to_numpy(),
        product=prod,
        cat=np.where(prod >= 0, catalog.cat_codes[np.maximum(prod, 0)] if len(catalog.cat_codes) else -1, -1),
        brand=np.where(prod >= 0, catalog.brand_codes[np.maximum(prod, 0)] if len(catalog.brand_codes) else -1, -1),
        times=times,
        age=((as_of - times) / DAY).to_numpy(dtype=float),
        quantity=o["quantity"].to_numpy(dtype=float),
        paid=o["paid"].to_numpy(dtype=float),
    )


def _pushes_before(pushes: pd.DataFrame, as_of: pd.Timestamp) -> tuple[pd.DataFrame, pd.Series]:
    p = _complete(pushes, PUSHES)
    times = _times(p[PUSHED_AT])
    keep = (times < as_of).to_numpy()
    return p.loc[keep].reset_index(drop=True), times.loc[keep].reset_index(drop=True)


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
    cfg = cfg or FeatureConfig()
    as_of = to_as_of(as_of)
    catalog = _catalog(_complete(products, PRODUCTS))
    g = _complete(groups, GROUPS)
    s = _complete(sellers, SELLERS)
    index = pd.Index(g[GROUP_ID].astype(str), name=GROUP_ID)
    n = len(index)

    out = pd.DataFrame(index=index)
    out[SELLER_ID] = g[SELLER_ID].astype(str).to_numpy()
    out["member_count"] = g["member_count"].to_numpy(dtype=np.int64)
    seller_row = pd.Index(s[SELLER_ID].astype(str)).get_indexer(out[SELLER_ID])
    out["seller_type"] = pd.Categorical(_take_obj(s["seller_type"].to_numpy(dtype=object), seller_row),
                                        categories=SELLER_TYPES)
    out["city_tier"] = _take(s["city_tier"].to_numpy(dtype=float), seller_row)
    out["theme"] = g["theme"].fillna("").astype(str).to_numpy()
    out["segment"] = segment_key(out["seller_type"], out["city_tier"]).to_numpy()

    buys = _purchases(orders, catalog, as_of)
    gi = index.get_indexer(buys.group_id)
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

    pu, pu_times = _pushes_before(pushes, as_of)
    pgi = index.get_indexer(pu[GROUP_ID].astype(str))
    pmine = pgi >= 0
    pgi = pgi[pmine]
    page = ((as_of - pu_times) / DAY).to_numpy(dtype=float)[pmine]
    n_pushes = np.bincount(pgi, minlength=n)
    out["n_pushes"] = n_pushes
    out["pushes_30d"] = np.bincount(pgi[page < 30], minlength=n)
    out["days_since_last_push"] = _last_age(pgi, page, n)
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
    uniq, count = np.unique(key, return_counts=True)
    code, b = uniq // max(n_brands, 1), uniq % max(n_brands, 1)
    order = np.lexsort((b, -count, code))
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
    codes, names = pd.factorize(buys.group_id)
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
    gcode, gnames = pd.factorize(buys.group_id[known])
    ncat = max(len(catalog.categories), 1)
    frame = pd.DataFrame({
        "key": gcode.astype(np.int64) * ncat + buys.cat[known],
        "day": _local_day(buys.times[known]),
        "at": buys.times[known].reset_index(drop=True),
    })
    per_key = frame.groupby("key", sort=True).agg(n_purchases=("day", "size"), last_bought_at=("at", "max"))
    days = frame[["key", "day"]].drop_duplicates().sort_values(["key", "day"], kind="stable")
    key_arr, day_arr = days["key"].to_numpy(), days["day"].to_numpy()
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
