"""The sample world: a deterministic, believable dataset in the five-table contract, with its ground truth.

`generate` builds it in memory (demo sizes); `stream` writes it block by block of groups so that a
million groups fit in bounded memory; `write` saves an in-memory world. Both paths draw the same
world: blocks of BLOCK_GROUPS groups each get their own random stream, so a block's events do not
depend on how many blocks are held at once.

What drives the data (see features/sample/*): each group has a latent taste (a Dirichlet over main
categories shaped by the seller type, the seller's focus and the group theme), latent brand factors and
a price band from its city tier. Sellers push what they believe the group wants, tilted to high
commission. A push converts by the group's affinity for the product, group size (per-member
conversion falls past 200 members), the repurchase cycle, a recent price change, coupon and presale.
Members also re-buy from old links. Some groups are dead, some brand new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Iterator, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from features.sample.catalogue import CATEGORY_NAMES, FACTORS, Catalogue, build_catalogue
from features.sample.population import Population, build_population
from features.sample.simulate import DAY_S, PushSampler, simulate_block, true_affinity
from contracts.schema import (GROUP_ID, GROUP_THEMES, LOAD_ORDER, ORDER_ID, ORDERED_AT, PRODUCT_ID, PUSHED_AT, SELLER_ID,
                             SELLER_TYPES, TABLES, ContractFrames)

DEFAULT_END = date(2025, 6, 30)
BLOCK_GROUPS = 20_000
TABLE_NAMES: tuple[str, ...] = LOAD_ORDER
TRUTH_NAMES: tuple[str, ...] = ("group_category_truth", "group_truth", "product_truth")
Format = Literal["csv", "parquet"]


@dataclass
class GroundTruth:
    """What the generator knows and a model should recover: per-group category shares and the affinity."""

    group_category: pd.DataFrame  # group_id, category, share (shares sum to 1 per group)
    groups: pd.DataFrame  # group_id, seller_type, theme, dead, activity, price_level, price_sensitivity, f0..f7
    products: pd.DataFrame  # product_id, category, price_z, quality, popularity, price_before, price_changed_on, f0..f7

    def taste(self) -> pd.DataFrame:
        """Group × main-category share matrix (rows group_id, columns categories)."""
        wide = self.group_category.pivot(index=GROUP_ID, columns="category", values="share")
        return wide.reindex(columns=[c for c in CATEGORY_NAMES if c in wide.columns])

    def affinity(self, group_ids: np.ndarray | list[str], product_ids: np.ndarray | list[str]) -> np.ndarray:
        """The true log-affinity of each (group_id, product_id) pair: higher means more likely to convert."""
        taste = self.taste()
        g = pd.Index(self.groups[GROUP_ID]).get_indexer(np.asarray(group_ids, dtype=object))
        p = pd.Index(self.products[PRODUCT_ID]).get_indexer(np.asarray(product_ids, dtype=object))
        if (g < 0).any() or (p < 0).any():
            raise KeyError("unknown group_id or product_id in affinity()")
        fcols = [f"f{k}" for k in range(FACTORS)]
        cat_index = pd.Index(list(taste.columns)).get_indexer(self.products["category"].to_numpy(dtype=object))
        taste_arr = taste.reindex(self.groups[GROUP_ID]).to_numpy(np.float32)
        pop = _PopulationView(
            taste=taste_arr, factors=self.groups[fcols].to_numpy(np.float32),
            price_sensitivity=self.groups["price_sensitivity"].to_numpy(), price_level=self.groups["price_level"].to_numpy(),
        )
        cat = _CatalogueView(
            cat=cat_index, factors=self.products[fcols].to_numpy(np.float32),
            price_z=self.products["price_z"].to_numpy(), quality=self.products["quality"].to_numpy(),
        )
        return true_affinity(cat, pop, g, p)  # type: ignore[arg-type]


@dataclass
class _PopulationView:
    taste: np.ndarray
    factors: np.ndarray
    price_sensitivity: np.ndarray
    price_level: np.ndarray


@dataclass
class _CatalogueView:
    cat: np.ndarray
    factors: np.ndarray
    price_z: np.ndarray
    quality: np.ndarray


@dataclass
class SampleWorld(ContractFrames):
    """The five contract tables plus the ground truth that generated them."""

    truth: GroundTruth


class _Builder:
    """Draws the static world once and turns blocks of simulated events into Arrow tables."""

    def __init__(self, seed: int, groups: int, products: int, days: int, end: date | None) -> None:
        if groups < 1 or products < 1 or days < 1:
            raise ValueError("groups, products and days must all be at least 1")
        self.seed, self.days = seed, days
        end = end or DEFAULT_END
        self.start = datetime.combine(end - timedelta(days=days - 1), datetime.min.time())
        self.start_s = int((self.start - datetime(1970, 1, 1)).total_seconds())
        self.cat: Catalogue = build_catalogue(np.random.default_rng([seed, 0]), products, days)
        comm = np.array([self.cat.commission_rate[self.cat.cat == c].mean() if (self.cat.cat == c).any() else 0.1
                         for c in range(len(CATEGORY_NAMES))])
        self.pop: Population = build_population(np.random.default_rng([seed, 1]), groups, days, comm)
        self.sampler = PushSampler(self.cat)
        self.product_ids = _ids("p", np.arange(products), max(5, len(str(products - 1))))
        self.group_ids = _ids("g", np.arange(groups), max(5, len(str(groups - 1))))
        self.seller_ids = _ids("s", np.arange(self.pop.n_sellers), max(5, len(str(self.pop.n_sellers - 1))))

    # -- static tables -------------------------------------------------------------------------
    def _ts(self, day_offsets: np.ndarray) -> pa.Array:
        """Naive Asia/Shanghai wall-clock timestamps from (fractional) days relative to the window start."""
        secs = self.start_s + np.floor(np.asarray(day_offsets) * DAY_S).astype(np.int64)
        return pa.array(secs, pa.int64()).cast(pa.timestamp("s"))

    def products(self) -> pa.Table:
        """The catalogue table."""
        c = self.cat
        return pa.table({
            PRODUCT_ID: self.product_ids, "title": pa.array(c.title, pa.string()), "category": pa.array(c.category, pa.string()),
            "brand": pa.array(c.brand, pa.string()), "price": c.price, "commission_rate": c.commission_rate,
            "rating": c.rating, "review_count": c.review_count,
            "shop_type": pa.array(np.where(c.self_run, "自营", "POP").tolist(), pa.string()),
            "in_stock": c.in_stock, "coupon": c.coupon, "presale": c.presale, "launched_at": self._ts(c.launch_day),
        })

    def sellers(self) -> pa.Table:
        """The sellers table."""
        p = self.pop
        inviter = pc.if_else(pa.array(p.inviter >= 0), pc.take(self.seller_ids, pa.array(np.maximum(p.inviter, 0))),
                             pa.scalar(None, pa.string()))
        return pa.table({
            SELLER_ID: self.seller_ids, "seller_type": pa.array(np.array(SELLER_TYPES)[p.seller_type].tolist(), pa.string()),
            "city_tier": p.city_tier.astype(np.int64), "joined_at": self._ts(p.seller_joined_day), "inviter_id": inviter,
        })

    def groups(self) -> pa.Table:
        """The groups table."""
        p = self.pop
        return pa.table({
            GROUP_ID: self.group_ids, SELLER_ID: pc.take(self.seller_ids, pa.array(p.seller)),
            "member_count": p.member_count, "theme": pa.array(np.array(GROUP_THEMES)[p.theme].tolist(), pa.string()),
            "created_at": self._ts(p.created_day),
        })

    def product_truth(self) -> pa.Table:
        """Latent product parameters and price history."""
        c = self.cat
        changed_on = pc.if_else(pa.array(c.change_day >= 0), self._ts(np.maximum(c.change_day, 0)),
                                pa.scalar(None, pa.timestamp("s")))
        cols = {
            PRODUCT_ID: self.product_ids, "category": pa.array(np.array(CATEGORY_NAMES)[c.cat].tolist(), pa.string()),
            "price_z": c.price_z, "quality": c.quality, "popularity": c.popularity, "price_before": c.price_before,
            "price_changed_on": changed_on,
        }
        cols.update({f"f{k}": c.factors[:, k] for k in range(FACTORS)})
        return pa.table(cols)

    # -- per block -----------------------------------------------------------------------------
    def blocks(self) -> Iterator[dict[str, pa.Table]]:
        """Pushes, orders and per-group truth of each block of BLOCK_GROUPS groups, in order."""
        weekday0 = self.start.weekday()
        n = self.pop.n_groups
        for b, g0 in enumerate(range(0, n, BLOCK_GROUPS)):
            g1 = min(g0 + BLOCK_GROUPS, n)
            ev = simulate_block(self.cat, self.pop, self.sampler, g0, g1, self.days, weekday0,
                                np.random.default_rng([self.seed, 2, b]))
            ps = np.argsort(ev.push_time, kind="stable")
            pushes = pa.table({
                GROUP_ID: pc.take(self.group_ids, pa.array(ev.push_group[ps])),
                PRODUCT_ID: pc.take(self.product_ids, pa.array(ev.push_product[ps])),
                PUSHED_AT: self._ts(ev.push_time[ps] / DAY_S), "price_at_push": ev.push_price[ps],
            })
            os_ = np.argsort(ev.order_time, kind="stable")
            salt = np.uint64((self.seed * 0x9E3779B97F4A7C15) % 2**64)
            buyer_key = _mix64(((ev.order_group[os_].astype(np.uint64) << np.uint64(20)) + ev.buyer[os_].astype(np.uint64)) ^ salt)
            orders = pa.table({
                ORDER_ID: _ids("o", b * 100_000_000 + np.arange(len(os_)), 13),
                GROUP_ID: pc.take(self.group_ids, pa.array(ev.order_group[os_])),
                PRODUCT_ID: pc.take(self.product_ids, pa.array(ev.order_product[os_])),
                ORDERED_AT: self._ts(ev.order_time[os_] / DAY_S),
                "quantity": ev.quantity[os_].astype(np.int64), "paid": ev.paid[os_], "commission": ev.commission[os_],
                "buyer_id": _ids("u", (buyer_key % np.uint64(10**12)).astype(np.int64), 12), "refunded": ev.refunded[os_],
            })
            yield {"pushes": pushes, "orders": orders, **self._group_truth(g0, g1)}

    def _group_truth(self, g0: int, g1: int) -> dict[str, pa.Table]:
        """Per-group truth of groups g0..g1-1: long category shares and the latent parameters."""
        p, nb, nc = self.pop, g1 - g0, len(CATEGORY_NAMES)
        gids = self.group_ids[g0:g1]
        long = pa.table({
            GROUP_ID: pc.take(gids, pa.array(np.repeat(np.arange(nb), nc))),
            "category": pa.array(np.tile(np.array(CATEGORY_NAMES), nb).tolist(), pa.string()),
            "share": p.taste[g0:g1].astype(np.float64).ravel(),
        })
        cols = {
            GROUP_ID: gids, "seller_type": pa.array(np.array(SELLER_TYPES)[p.seller_type[p.seller[g0:g1]]].tolist(), pa.string()),
            "theme": pa.array(np.array(GROUP_THEMES)[p.theme[g0:g1]].tolist(), pa.string()),
            "focus": pa.array(np.array(CATEGORY_NAMES)[p.seller_focus[p.seller[g0:g1]]].tolist(), pa.string()),
            "dead": p.dead[g0:g1], "activity": p.activity[g0:g1], "push_rate": p.push_rate[g0:g1],
            "price_level": p.price_level[g0:g1], "price_sensitivity": p.price_sensitivity[g0:g1],
        }
        cols.update({f"f{k}": p.factors[g0:g1, k] for k in range(FACTORS)})
        return {"group_category_truth": long, "group_truth": pa.table(cols)}


def _ids(prefix: str, idx: np.ndarray, width: int) -> pa.Array:
    """String ids such as p00042, built in Arrow (fast for millions)."""
    digits = pc.utf8_lpad(pa.array(np.asarray(idx, dtype=np.int64)).cast(pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, pa.scalar(""))


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-mixed 64-bit hash, used to make stable pseudonymous buyer ids."""
    x = x.astype(np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    """An Arrow table as a DataFrame (strings become pandas' default string dtype)."""
    return table.to_pandas()


def generate(seed: int, groups: int, products: int, days: int, end: date | None = None) -> SampleWorld:
    """Generate the whole world in memory; the window is the `days` days ending on `end` (default 2025-06-30)."""
    b = _Builder(seed, groups, products, days, end)
    parts: dict[str, list[pa.Table]] = {}
    for block in b.blocks():
        for name, table in block.items():
            parts.setdefault(name, []).append(table)
    cat = {name: pa.concat_tables(tables) for name, tables in parts.items()}
    truth = GroundTruth(
        group_category=_to_pandas(cat["group_category_truth"]), groups=_to_pandas(cat["group_truth"]),
        products=_to_pandas(b.product_truth()),
    )
    return SampleWorld(
        products=_to_pandas(b.products()), sellers=_to_pandas(b.sellers()), groups=_to_pandas(b.groups()),
        pushes=_to_pandas(cat["pushes"]), orders=_to_pandas(cat["orders"]), truth=truth,
    )


class _Sink:
    """Writes Arrow tables to OUT/<name>.<fmt>, appending block after block."""

    def __init__(self, out_dir: Path, fmt: Format) -> None:
        if fmt not in ("csv", "parquet"):
            raise ValueError(f"unknown format {fmt!r}: use csv or parquet")
        self.out_dir, self.fmt = out_dir, fmt
        self.writers: dict[str, object] = {}
        self.schemas: dict[str, pa.Schema] = {}

    def path(self, name: str) -> Path:
        """Where table `name` goes: truth tables under truth/, the rest at the top."""
        sub = self.out_dir / "truth" if name in TRUTH_NAMES else self.out_dir
        sub.mkdir(parents=True, exist_ok=True)
        return sub / f"{name}.{self.fmt}"

    def append(self, name: str, table: pa.Table) -> None:
        """Append a block to table `name`, opening its file on the first block."""
        writer = self.writers.get(name)
        if writer is None:
            path = str(self.path(name))
            writer = (pq.ParquetWriter(path, table.schema, compression="zstd") if self.fmt == "parquet"
                      else pacsv.CSVWriter(path, table.schema))
            self.writers[name] = writer
            self.schemas[name] = table.schema
        schema = self.schemas[name]
        writer.write_table(table if table.schema == schema else table.cast(schema))  # type: ignore[attr-defined]

    def close(self) -> None:
        """Close every open file."""
        for writer in self.writers.values():
            writer.close()  # type: ignore[attr-defined]


def stream(seed: int, groups: int, products: int, days: int, out_dir: str | Path, fmt: Format = "parquet",
           end: date | None = None) -> dict[str, int]:
    """Generate and write the world block by block (bounded memory); returns row counts per table."""
    out = Path(out_dir)
    b = _Builder(seed, groups, products, days, end)
    sink = _Sink(out, fmt)
    counts: dict[str, int] = {}
    try:
        for name, table in (("products", b.products()), ("sellers", b.sellers()), ("groups", b.groups()),
                            ("product_truth", b.product_truth())):
            sink.append(name, table)
            counts[name] = table.num_rows
        for block in b.blocks():
            for name, table in block.items():
                sink.append(name, table)
                counts[name] = counts.get(name, 0) + table.num_rows
    finally:
        sink.close()
    return counts


def write(world: SampleWorld, out_dir: str | Path, fmt: Format = "csv") -> list[Path]:
    """Write the five tables to OUT/<table>.<fmt> and the ground truth to OUT/truth/; returns the paths."""
    sink = _Sink(Path(out_dir), fmt)
    frames = {**world.tables(), "group_category_truth": world.truth.group_category,
              "group_truth": world.truth.groups, "product_truth": world.truth.products}
    try:
        for name, df in frames.items():
            sink.append(name, pa.Table.from_pandas(df, preserve_index=False))
    finally:
        sink.close()
    return [sink.path(name) for name in frames]


def read(out_dir: str | Path) -> SampleWorld:
    """Read a world written by `write` or `stream` (CSV or Parquet) back into DataFrames."""
    out = Path(out_dir)

    def load(path_base: Path) -> pd.DataFrame:
        pq_path, csv_path = path_base.with_suffix(".parquet"), path_base.with_suffix(".csv")
        if pq_path.exists():
            return pq.read_table(pq_path).to_pandas()
        return pacsv.read_csv(csv_path).to_pandas()

    tables = {name: load(out / name) for name in TABLE_NAMES}
    truth = GroundTruth(*(load(out / "truth" / name) for name in ("group_category_truth", "group_truth", "product_truth")))
    return SampleWorld(**tables, truth=truth)


def contract_columns() -> dict[str, list[str]]:
    """Column names of each table in contract order (what the generator emits)."""
    return {name: TABLES[name].names for name in TABLE_NAMES}
