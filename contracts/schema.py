"""The data contract: the five tables Quanxuan reads, their columns, types, units and rules.

This module is the one place where the contract is written down; loaders, the sample
world, the adapter and the README table are all derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

ColumnType = Literal["str", "int", "float", "bool", "datetime"]

TIMEZONE = "Asia/Shanghai"

SELLER_TYPES: tuple[str, ...] = ("宝妈", "快递员", "导购", "安装维修", "微商", "学生", "其他")
GROUP_THEMES: tuple[str, ...] = ("母婴", "邻里", "同事", "福利", "学习", "亲友", "业主", "兴趣")
SHOP_TYPES: tuple[str, ...] = ("自营", "POP")

# Column-name constants so that code never spells a column twice.
PRODUCT_ID = "product_id"
SELLER_ID = "seller_id"
GROUP_ID = "group_id"
ORDER_ID = "order_id"
PUSHED_AT = "pushed_at"
ORDERED_AT = "ordered_at"

# Upper bounds of the open-ended numbers: far above any real value, and low enough that every value
# survives the int64 and float64 round trip through stores and files (one absurd order must not poison an export).
MAX_YUAN = 100_000_000.0
MAX_UNITS = 1_000_000
MAX_COUNT = 1_000_000_000


def bound_text(value: float) -> str:
    """A bound as the contract prints it: 0.5, 1, 100,000,000."""
    return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:g}"


@dataclass(frozen=True)
class Column:
    """One column of a table: its type, unit, bounds and behaviour when absent."""

    name: str
    type: ColumnType
    required: bool
    description: str
    unit: str = ""
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    choices: tuple[str, ...] | None = None
    default: object = None
    when_absent: str = ""


@dataclass(frozen=True)
class Table:
    """One table of the contract: its columns, key and references to other tables."""

    name: str
    description: str
    columns: tuple[Column, ...]
    key: str | None = None
    references: dict[str, str] = field(default_factory=dict)  # column -> table it points to

    def column(self, name: str) -> Column:
        """Return the column called `name`, or raise KeyError naming it."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"table {self.name!r} has no column {name!r}")

    @property
    def required(self) -> list[str]:
        """Names of the required columns, in contract order."""
        return [c.name for c in self.columns if c.required]

    @property
    def names(self) -> list[str]:
        """Names of all columns, in contract order."""
        return [c.name for c in self.columns]


PRODUCTS = Table(
    name="products",
    description="The catalogue a seller can push.",
    key=PRODUCT_ID,
    columns=(
        Column(PRODUCT_ID, "str", True, "Stable product id."),
        Column("title", "str", True, "Listing title, Chinese."),
        Column("category", "str", True, "Category, may be a path such as 食品/零食; the first level is the main category."),
        Column("brand", "str", True, "Brand name; empty string for unbranded goods."),
        Column("price", "float", True, "Current list price.", unit="yuan", min=0.0, min_exclusive=True,
               max=MAX_YUAN),
        Column("commission_rate", "float", True, "Seller commission as a share of the paid price.", unit="0-1", min=0.0, max=1.0),
        Column("rating", "float", False, "Good-review rate.", unit="0-1", min=0.0, max=1.0, default=None,
               when_absent="The catalogue median is used; a product with no reviews gets the category median."),
        Column("review_count", "int", False, "Number of reviews.", min=0, max=MAX_COUNT, default=0, when_absent="Treated as 0."),
        Column("shop_type", "str", False, "自营 (platform-run) or POP (third-party shop).", choices=SHOP_TYPES, default="POP",
               when_absent="Treated as POP."),
        Column("in_stock", "bool", False, "Whether the product can be ordered now.", default=True, when_absent="Treated as in stock."),
        Column("coupon", "float", False, "Coupon amount off the price.", unit="yuan", min=0.0, max=MAX_YUAN, default=0.0,
               when_absent="Treated as no coupon (0)."),
        Column("presale", "bool", False, "Presale item (ships later).", default=False, when_absent="Treated as not presale."),
        Column("launched_at", "datetime", False, "When the product entered the catalogue.", default=None,
               when_absent="The first push or order of the product is used as its launch."),
    ),
)

SELLERS = Table(
    name="sellers",
    description="The small sellers (小B) who run groups.",
    key=SELLER_ID,
    columns=(
        Column(SELLER_ID, "str", True, "Stable seller id."),
        Column("seller_type", "str", True, "Kind of seller.", choices=SELLER_TYPES),
        Column("city_tier", "int", True, "City tier, 1 (largest) to 6.", min=1, max=6),
        Column("joined_at", "datetime", False, "When the seller joined.", default=None, when_absent="Unknown; not used."),
        Column("inviter_id", "str", False, "Seller who invited this one.", default=None, when_absent="Unknown; not used."),
    ),
)

GROUPS = Table(
    name="groups",
    description="WeChat groups, each run by one seller.",
    key=GROUP_ID,
    references={SELLER_ID: "sellers"},
    columns=(
        Column(GROUP_ID, "str", True, "Stable group id."),
        Column(SELLER_ID, "str", True, "The seller who runs the group."),
        Column("member_count", "int", True, "Members in the group.", min=1, max=MAX_COUNT),
        Column("theme", "str", False, "Group theme such as 母婴, 邻里, 同事, 福利, 学习.", default="",
               when_absent="No theme; the seller type alone shapes the copy."),
        Column("created_at", "datetime", False, "When the group was created.", default=None, when_absent="Unknown; not used."),
    ),
)

PUSHES = Table(
    name="pushes",
    description="Exposures: the seller shared this product to this group.",
    references={GROUP_ID: "groups", PRODUCT_ID: "products"},
    columns=(
        Column(GROUP_ID, "str", True, "Group the product was shared to."),
        Column(PRODUCT_ID, "str", True, "Product shared."),
        Column(PUSHED_AT, "datetime", True, "When it was shared."),
        Column("price_at_push", "float", False, "Price shown in the share.", unit="yuan", min=0.0, min_exclusive=True,
               max=MAX_YUAN, default=None, when_absent="Price consistency is then judged from order prices only."),
    ),
)

ORDERS = Table(
    name="orders",
    description="Orders placed through a seller's link in a group.",
    key=ORDER_ID,
    references={GROUP_ID: "groups", PRODUCT_ID: "products"},
    columns=(
        Column(ORDER_ID, "str", True, "Stable order id."),
        Column(GROUP_ID, "str", True, "Group whose link the order came through."),
        Column(PRODUCT_ID, "str", True, "Product ordered."),
        Column(ORDERED_AT, "datetime", True, "When the order was placed."),
        Column("quantity", "int", True, "Units ordered.", min=1, max=MAX_UNITS),
        Column("paid", "float", True, "Amount paid for the line.", unit="yuan", min=0.0, max=MAX_YUAN),
        Column("commission", "float", False, "Commission earned by the seller.", unit="yuan", min=0.0, max=MAX_YUAN,
               default=None,
               when_absent="Computed as paid × the product's commission_rate."),
        Column("buyer_id", "str", False, "Hashed buyer id.", default=None, when_absent="Unknown; not used."),
        Column("refunded", "bool", False, "Whether the order was refunded.", default=False,
               when_absent="Treated as not refunded; refunded orders are kept as exposure but not as purchases."),
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in (PRODUCTS, SELLERS, GROUPS, PUSHES, ORDERS)}

# Load order respects references: a table is read after every table it points to.
LOAD_ORDER: tuple[str, ...] = ("products", "sellers", "groups", "pushes", "orders")


@dataclass
class ContractFrames:
    """The five contract tables as DataFrames; loaded datasets and the sample world both extend it."""

    products: pd.DataFrame
    sellers: pd.DataFrame
    groups: pd.DataFrame
    pushes: pd.DataFrame
    orders: pd.DataFrame

    def tables(self) -> dict[str, pd.DataFrame]:
        """The five frames by table name, in load order."""
        return {name: getattr(self, name) for name in LOAD_ORDER}


# How the timestamps of a dataset were made, weakest last: "real" (a time column), "line_order" (the adapter's
# synthetic clock of line numbers: order within a file, no meaning in days), "none" (no order at all).
CLOCKS: tuple[str, ...] = ("real", "line_order", "none")


def check_clock(kind: str) -> str:
    """The clock kind itself, or a ValueError naming the known kinds."""
    if kind not in CLOCKS:
        raise ValueError(f"unknown clock kind {kind!r}: expected one of {', '.join(CLOCKS)}")
    return kind


def clock_of(frame: object) -> str:
    """The clock kind a dataset, frames object or orders table carries (`clock` attribute or `attrs`); default real."""
    kind = getattr(frame, "clock", None)
    if kind is None and isinstance(frame, pd.DataFrame):
        kind = frame.attrs.get("clock")
    if kind is None:
        orders = frame.get("orders") if isinstance(frame, dict) else getattr(frame, "orders", None)
        kind = orders.attrs.get("clock") if isinstance(orders, pd.DataFrame) else None
    return check_clock(kind or "real")


@dataclass
class Frames(ContractFrames):
    """The five tables as the daily job and the harness pass them around: sellers and pushes may be absent, plus the
    sample world's ground truth when there is one and the clock the timestamps were made by."""

    sellers: pd.DataFrame | None
    pushes: pd.DataFrame | None
    truth: Any = None
    clock: str | None = None  # how the timestamps were made (CLOCKS); None: the orders' own, else real

    def __post_init__(self) -> None:
        self.clock = clock_of(self.orders) if self.clock is None else check_clock(self.clock)
        self.orders.attrs["clock"] = self.clock  # build_train_data reads it from the orders

    @classmethod
    def of(cls, obj: Any) -> "Frames":
        """Wrap anything with products/sellers/groups/pushes/orders attributes or keys (SampleWorld, Dataset, dict)."""
        if isinstance(obj, Frames):
            return obj
        if isinstance(obj, dict):
            return cls(obj["products"], obj.get("sellers"), obj["groups"], obj.get("pushes"), obj["orders"],
                       obj.get("truth"), clock_of(obj))
        return cls(obj.products, getattr(obj, "sellers", None), obj.groups, getattr(obj, "pushes", None), obj.orders,
                   getattr(obj, "truth", None), clock_of(obj))


def contract_markdown() -> str:
    """Render the contract as a Markdown table per table (used by the README and `quanxuan contract`)."""
    lines: list[str] = []
    for table in TABLES.values():
        lines.append(f"### `{table.name}` — {table.description}")
        lines.append("")
        lines.append("| column | type | unit | required | meaning | when absent |")
        lines.append("|---|---|---|---|---|---|")
        for c in table.columns:
            bounds = ""
            if c.min is not None or c.max is not None:
                lo = "" if c.min is None else (f">{bound_text(c.min)}" if c.min_exclusive else f"≥{bound_text(c.min)}")
                hi = "" if c.max is None else f"≤{bound_text(c.max)}"
                bounds = " " + " ".join(x for x in (lo, hi) if x)
            if c.choices:
                bounds += " one of " + "/".join(c.choices)
            lines.append(
                f"| `{c.name}` | {c.type} | {c.unit}{bounds} | {'yes' if c.required else 'no'} | "
                f"{c.description} | {c.when_absent or '—'} |"
            )
        lines.append("")
    return "\n".join(lines)
