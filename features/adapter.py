"""The generic adapter: map any interactions file (one line per purchase or share) onto the contract.

Columns are named by flags, the same ones `quanxuan adapt` takes:

- `--item` (required) is the product; `--user` the buyer (`buyer_id`).
- `--group-by COL [COL ...]` names the column(s) whose values form the WeChat group, joined with
  "|" (a missing part is empty); without it each user is their own group. Each group is run by a
  seller of the same id (seller_type 其他, city_tier 3); member_count is the group's distinct buyers.
- `--time` with `--time-format` (strftime, e.g. %m/%d/%Y) or ISO text; naive times are Asia/Shanghai.
  Without `--time` the line number is the clock: line n happens at `--start` + n × `--step-seconds`.
- `--quantity` (default 1); `--price` the unit price, or the line's total with `--line-totals`;
  `--cost` the cost, same basis. paid = the line's revenue; commission = price − cost (the margin
  stands in for the seller's commission, negative margins count as 0), or 0 without `--cost`.
- `--rows orders|pushes|both`: each line is an order, a push (a share that did not convert), or
  both (a share that converted: a push and an order at the same time).
- `--category` fills products.category (first value seen per item); other product fields follow
  `features.loading.derive_products` (price = median paid per unit, else 1 yuan when no price is known).
- `--sep`, `--no-header NAME ...` (positional names for a headerless file; extra fields are ignored).

Order ids are `--id-prefix` + the 1-based data line. Presets are only lists of these flags.
The output folder also gets `clock.json`: "real" with `--time`, "line_order" for the synthetic clock,
"none" with `--step-seconds 0` (features.loading.CLOCKS); appending keeps the weakest of the two.
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.loading import Dataset, dataset_from_frames, load_dataset, weakest_clock, write_clock
from contracts.schema import GROUP_ID, LOAD_ORDER, ORDER_ID, ORDERED_AT, PRODUCT_ID, PUSHED_AT, TIMEZONE
from features.validation import Problem, ValidationError

TAFENG_FLAGS = [
    "--user", "CUSTOMER_ID", "--item", "PRODUCT_ID", "--time", "TRANSACTION_DT", "--time-format", "%m/%d/%Y",
    "--quantity", "AMOUNT", "--price", "SALES_PRICE", "--cost", "ASSET", "--line-totals",
    "--category", "PRODUCT_SUBCLASS",
]
BEIBEI_FLAGS = [
    "--no-header", "initiator", "item", "participant", "--sep", "\\t",
    "--item", "item", "--user", "participant", "--group-by", "initiator",
]
PRESETS: dict[str, list[str]] = {
    # Ta Feng (ta_feng.csv.zip): each customer is a group of one.
    "tafeng-customer": TAFENG_FLAGS,
    # Ta Feng with residence area × age group as neighbourhood groups (community group buying).
    "tafeng-area-age": TAFENG_FLAGS + ["--group-by", "PIN_CODE", "AGE_GROUP"],
    # Beibei tune.txt / test.txt: the initiator shared the item to her circle and a friend joined.
    "beibei-success": BEIBEI_FLAGS + ["--rows", "both"],
    # Beibei invalid.txt: the initiator shared the item and nobody joined: a push without an order.
    "beibei-failed": BEIBEI_FLAGS + ["--rows", "pushes"],
    # Beibei tune.txt seen from the (first) participant: she joined a buy of the item, an order of her own.
    "beibei-joined": ["--no-header", "initiator", "item", "participant", "--sep", "\\t",
                      "--item", "item", "--user", "participant", "--rows", "orders"],
}
CLOCK_HOW = {"real": "the input's time column", "line_order": "line numbers: line n at --start + n × --step-seconds",
             "none": "no clock: every line at --start"}
BEIBEI_START = {"tune": "2020-01-01 00:00", "invalid": "2020-01-01 00:00", "test": "2020-06-01 00:00"}


@dataclass(frozen=True)
class AdapterSpec:
    """How an interactions file maps onto the contract; each field is one `quanxuan adapt` flag."""

    item: str
    user: str | None = None
    group_by: tuple[str, ...] = ()
    time: str | None = None
    time_format: str | None = None
    quantity: str | None = None
    price: str | None = None
    cost: str | None = None
    line_totals: bool = False
    category: str | None = None
    sep: str = ","
    names: tuple[str, ...] = ()
    rows: str = "orders"
    start: str = "2020-01-01 00:00"
    step_seconds: float = 60.0
    id_prefix: str = ""


@dataclass
class Events:
    """Orders and pushes built from one input file, before validation, plus item categories."""

    orders: pd.DataFrame
    pushes: pd.DataFrame
    categories: pd.Series | None
    clock: str = "real"  # how the times were made (features.loading.CLOCKS)


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The adapter's flags; every default is None so that presets can fill what is not given."""
    parser.add_argument("--item", help="column of the product id (required)")
    parser.add_argument("--user", help="column of the buyer id")
    parser.add_argument("--group-by", nargs="+", metavar="COL", help="column(s) forming the group (default: --user)")
    parser.add_argument("--time", help="column of the order time (default: the line number is the clock)")
    parser.add_argument("--time-format", help="strftime format of --time, e.g. %%m/%%d/%%Y (default: ISO 8601)")
    parser.add_argument("--quantity", help="column of units (default 1)")
    parser.add_argument("--price", help="column of the unit price (or the line total with --line-totals)")
    parser.add_argument("--cost", help="column of the cost, same basis as --price; commission = price − cost")
    parser.add_argument("--line-totals", action="store_true", default=None,
                        help="--price and --cost are totals of the line, not per unit")
    parser.add_argument("--category", help="column of the product category")
    parser.add_argument("--sep", help="field separator (default ','; '\\t' for tab, 'whitespace' for runs of blanks)")
    parser.add_argument("--no-header", nargs="+", metavar="NAME", dest="names",
                        help="the file has no header: these are its leading columns' names")
    parser.add_argument("--rows", choices=("orders", "pushes", "both"), help="what each line is (default orders)")
    parser.add_argument("--start", help="synthetic clock start without --time (default 2020-01-01 00:00)")
    parser.add_argument("--step-seconds", type=float, help="synthetic clock step per line (default 60)")
    parser.add_argument("--id-prefix", help="prefix of the order ids (default none)")


def spec_from_namespace(ns: argparse.Namespace, base_flags: list[str] | None = None) -> AdapterSpec:
    """An AdapterSpec from parsed flags, on top of `base_flags` (a preset) for whatever was not given."""
    values: dict[str, object] = {}
    if base_flags:
        parser = argparse.ArgumentParser(add_help=False)
        add_flags(parser)
        values.update({k: v for k, v in vars(parser.parse_args(base_flags)).items() if v is not None})
    values.update({k: v for k, v in vars(ns).items() if v is not None and k in AdapterSpec.__dataclass_fields__})
    if "group_by" in values:
        values["group_by"] = tuple(values["group_by"])  # type: ignore[arg-type]
    if "names" in values:
        values["names"] = tuple(values["names"])  # type: ignore[arg-type]
    if not values.get("item"):
        raise ValueError("--item is required (the column of the product id)")
    if not values.get("user") and not values.get("group_by"):
        raise ValueError("give --user or --group-by: groups are formed from them")
    return AdapterSpec(**values)  # type: ignore[arg-type]


def spec_from_flags(flags: list[str]) -> AdapterSpec:
    """An AdapterSpec from a list of command-line flags, e.g. a preset."""
    parser = argparse.ArgumentParser(add_help=False)
    add_flags(parser)
    return spec_from_namespace(parser.parse_args(flags))


def _separator(sep: str) -> str:
    """The separator as pandas wants it."""
    return {"\\t": "\t", "tab": "\t", "whitespace": r"\s+"}.get(sep, sep)


def read_interactions(path: str | Path, spec: AdapterSpec) -> pd.DataFrame:
    """Read the input file (CSV/TSV, zipped or not) as text cells."""
    if not spec.names:
        return pd.read_csv(path, sep=_separator(spec.sep), dtype=str, keep_default_na=False, na_values=[""],
                           encoding="utf-8-sig")
    # Headerless lines may carry more or fewer fields than named (e.g. a variable participant list):
    # pandas copes when some line has every named field, or when none has more; otherwise each
    # line is read whole and split, keeping the named leading fields.
    sep = _separator(spec.sep)
    common = {"sep": sep, "header": None, "names": list(spec.names), "dtype": str, "keep_default_na": False,
              "na_values": [""], "encoding": "utf-8-sig"}
    for extra in ({"usecols": list(range(len(spec.names)))}, {"index_col": False}):
        try:
            return pd.read_csv(path, **common, **extra)
        except (pd.errors.ParserError, ValueError):
            continue
    lines = pd.read_csv(path, sep="\x1f", header=None, names=["line"], dtype=str, quoting=csv.QUOTE_NONE,
                        keep_default_na=False, encoding="utf-8-sig", skip_blank_lines=True)["line"]
    fields = lines.str.strip().str.split(sep, n=len(spec.names), expand=True, regex=len(sep) > 1)
    fields = fields.reindex(columns=range(len(spec.names)))
    fields.columns = list(spec.names)
    return fields.replace("", np.nan).astype("str")


def _number(df: pd.DataFrame, column: str | None, default: float) -> pd.Series:
    """A numeric column, or the default everywhere when the flag is not given; bad cells become NaN."""
    if column is None:
        return pd.Series(default, index=df.index, dtype="float64")
    values = df[column]
    if not pd.api.types.is_numeric_dtype(values):
        values = values.astype("str").str.strip()
    return pd.to_numeric(values, errors="coerce").astype("float64")


def spec_clock(spec: AdapterSpec) -> str:
    """How the spec makes timestamps: "real" from --time, "line_order" from line numbers, "none" with a zero step."""
    if spec.time is not None:
        return "real"
    return "line_order" if spec.step_seconds else "none"


def _times(df: pd.DataFrame, spec: AdapterSpec, source: str, strict: bool) -> pd.Series:
    """Event times: the --time column, or the synthetic clock of line numbers."""
    if spec.time is None:
        line = np.arange(1, len(df) + 1, dtype="float64")
        start = pd.Timestamp(spec.start, tz=TIMEZONE)
        return pd.Series(start + pd.to_timedelta(line * spec.step_seconds, unit="s"), index=df.index)
    raw = df[spec.time]
    if spec.time_format is None:
        return raw  # ISO text: the loader parses it and reports bad cells
    parsed = pd.to_datetime(raw.str.strip(), format=spec.time_format, errors="coerce")
    bad = parsed.isna() & raw.notna()
    if strict and bad.any():
        header = 0 if spec.names else 1
        raise ValidationError([
            Problem(source, int(i) + 1 + header, spec.time, str(v), f"does not match --time-format {spec.time_format}")
            for i, v in raw[bad].items()
        ])
    if parsed.dt.tz is None:
        return parsed.dt.tz_localize(TIMEZONE, ambiguous="NaT", nonexistent="NaT")
    return parsed.dt.tz_convert(TIMEZONE)


def to_events(df: pd.DataFrame, spec: AdapterSpec, source: str = "input", strict: bool = True) -> Events:
    """Orders and pushes from the input rows, following the spec (see the module docstring)."""
    df = df.reset_index(drop=True)
    missing = [c for c in (spec.item, spec.user, spec.time, spec.quantity, spec.price, spec.cost, spec.category,
                           *spec.group_by) if c is not None and c not in df.columns]
    if missing:
        raise ValidationError([Problem(source, None, c, None, f"no column {c!r} in the input") for c in missing])
    line = pd.Series(np.arange(1, len(df) + 1), index=df.index).astype("str")
    if spec.group_by:
        group = df[spec.group_by[0]].fillna("")
        for column in spec.group_by[1:]:
            group = group + "|" + df[column].fillna("")
    else:
        group = df[spec.user]
    user = df[spec.user] if spec.user else pd.Series(np.nan, index=df.index, dtype="str")
    at = _times(df, spec, source, strict)
    quantity = _number(df, spec.quantity, 1.0)
    price = _number(df, spec.price, 0.0)
    cost = _number(df, spec.cost, np.nan) if spec.cost else None
    basis = 1.0 if spec.line_totals else quantity
    paid = price * basis
    commission = ((price - cost) * basis).clip(lower=0.0) if cost is not None else pd.Series(0.0, index=df.index)
    unit_price = (paid / quantity).where((paid > 0) & (quantity > 0))
    orders = pd.DataFrame({
        ORDER_ID: spec.id_prefix + line, GROUP_ID: group, PRODUCT_ID: df[spec.item], ORDERED_AT: at,
        # Raw quantity cells, so that a bad one is reported with its value; paid uses the parsed numbers.
        "quantity": df[spec.quantity] if spec.quantity else quantity, "paid": paid, "commission": commission, "buyer_id": user,
    })
    pushes = pd.DataFrame({GROUP_ID: group, PRODUCT_ID: df[spec.item], PUSHED_AT: at, "price_at_push": unit_price})
    if spec.rows == "orders":
        pushes = pushes.iloc[0:0]
    elif spec.rows == "pushes":
        orders = orders.iloc[0:0]
    categories = None
    if spec.category:
        categories = df[spec.category].groupby(df[spec.item]).first()
    return Events(orders, pushes, categories, spec_clock(spec))


def build_dataset(parts: list[Events], quarantine: bool = False, rejects_dir: str | Path | None = None) -> Dataset:
    """Validate the events of one or more inputs together and derive products, groups and sellers."""
    orders = pd.concat([p.orders for p in parts], ignore_index=True)
    pushes = pd.concat([p.pushes for p in parts], ignore_index=True)
    ds = dataset_from_frames({"orders": orders, "pushes": pushes}, quarantine=quarantine, rejects_dir=rejects_dir)
    known = [p.categories for p in parts if p.categories is not None]
    if known:
        categories = pd.concat(known)
        categories = categories[~categories.index.duplicated(keep="first")].dropna()
        mapped = ds.products[PRODUCT_ID].map(categories)
        ds.products["category"] = mapped.fillna(ds.products["category"]).astype("str")
    ds.clock = weakest_clock(*(p.clock for p in parts))
    ds.orders.attrs["clock"] = ds.clock
    return ds


def events_of(ds: Dataset) -> Events:
    """The orders, pushes and categories of an adapted dataset, to add another input to it."""
    categories = ds.products.set_index(PRODUCT_ID)["category"]
    return Events(ds.orders, ds.pushes, categories, ds.clock)


def write_dataset(ds: Dataset, out: str | Path, fmt: str = "parquet") -> dict[str, Path]:
    """Write the five tables to `out` as <table>.parquet or <table>.csv; returns the paths."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name in LOAD_ORDER:
        other = folder / f"{name}.{'csv' if fmt == 'parquet' else 'parquet'}"
        if other.exists():
            other.unlink()  # a table must not exist in both formats
        path = folder / f"{name}.{fmt}"
        frame = getattr(ds, name)
        if fmt == "parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
        paths[name] = path
    # Consumers of the folder must know whether its times are real (features.loading.read_clock).
    paths["clock"] = write_clock(folder, ds.clock, CLOCK_HOW[ds.clock])
    return paths


def adapt(input_path: str | Path, out: str | Path, spec: AdapterSpec, fmt: str = "parquet", append: bool = False,
          quarantine: bool = False) -> Dataset:
    """Adapt one input file into a folder of contract tables (adding to the tables already there with append)."""
    events = to_events(read_interactions(input_path, spec), spec, Path(input_path).name, strict=not quarantine)
    parts = [events_of(load_dataset(out)), events] if append else [events]
    ds = build_dataset(parts, quarantine=quarantine, rejects_dir=out if quarantine else None)
    write_dataset(ds, out, fmt)
    return ds


def load_tafeng(path: str | Path, level: str = "customer") -> Dataset:
    """Ta Feng through the generic adapter: level 'customer' (one group per customer) or 'area_age'."""
    presets = {"customer": "tafeng-customer", "area_age": "tafeng-area-age"}
    if level not in presets:
        raise ValueError(f"level must be one of {sorted(presets)}")
    spec = spec_from_flags(PRESETS[presets[level]])
    return build_dataset([to_events(read_interactions(path, spec), spec, Path(path).name)])


def load_beibei(folder: str | Path, participants: bool = False) -> dict[str, pd.DataFrame]:
    """Beibei group buys through the generic adapter, as frames.

    tune.txt and test.txt lines are converted shares (a push and an order by the first participant),
    invalid.txt lines are pushes without orders. There are no timestamps: the line number is the
    clock, one minute per line, with tune and invalid starting 2020-01-01 and test 2020-06-01, so
    that every test order comes after every tune order. Keys: the five tables (all files together)
    plus 'tune' and 'test' (their orders) and 'invalid' (its pushes). With `participants`, the first
    participant of each tune.txt line also orders the item in her own name (order ids 'joined:<line>',
    the line's clock), under key 'joined' and in the orders table; test.txt's participants stay out.
    """
    folder = Path(folder)
    files = [("tune", "tune", "beibei-success"), ("invalid", "invalid", "beibei-failed"), ("test", "test", "beibei-success")]
    if participants:
        files.append(("joined", "tune", "beibei-joined"))
    parts: list[Events] = []
    for name, file, preset in files:
        spec = spec_from_flags(PRESETS[preset] + ["--id-prefix", f"{name}:", "--start", BEIBEI_START[file]])
        parts.append(to_events(read_interactions(folder / f"{file}.txt", spec), spec, f"{file}.txt"))
    ds = build_dataset(parts)
    frames = ds.tables()
    for name in ("tune", "test", "joined")[: 3 if participants else 2]:
        frames[name] = ds.orders[ds.orders[ORDER_ID].str.startswith(f"{name}:")].reset_index(drop=True)
    n_tune = len(parts[0].pushes)
    frames["invalid"] = ds.pushes.iloc[n_tune:n_tune + len(parts[1].pushes)].reset_index(drop=True)
    for frame in frames.values():
        frame.attrs["clock"] = ds.clock  # line numbers: order within a file, no meaning in days
    return frames
