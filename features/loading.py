"""Load a folder of contract tables with validation, optional quarantine of bad rows, and derived tables.

A dataset folder holds `<table>.csv` (UTF-8, a BOM is fine) or `<table>.parquet` for each table of
`contracts.schema`. Only `orders` is required: group, product and time are what the models learn
from. When `products`, `groups` or `sellers` are absent they are built from the orders (and pushes)
with the documented defaults of `derive_products`, `derive_groups` and `derive_sellers`; an absent
`pushes` table is simply empty. Missing optional columns get the contract's default; absent
`commission` is paid × the product's commission_rate and absent `launched_at` is the product's
first push or order, as the contract says.

Row numbers in problems: for CSV the line number in the file, counting the header as line 1 (so
the first data row is row 2, as a spreadsheet shows it); for Parquet the 1-based row (first row =
1). CSV fields may not contain line breaks: one line is one row.

All-or-nothing by default: any problem raises `ValidationError` listing every problem and nothing
loads. With `quarantine=True`, rows with problems (and rows pointing at them, e.g. the orders of a
rejected product) go to `<rejects_dir or dataset dir>/rejects/<table>.csv` with the original cells
plus `reason` and `row`, the rest loads, and per table read = loaded + rejected. Problems with a
whole file (zero bytes, a missing required column, no orders at all) stop the load even then.

`clock.json` (written by `quanxuan adapt`) says how the timestamps were made: "real", "line_order" (line numbers)
or "none"; a folder without it has a real clock. The kind is `Dataset.clock` and `orders.attrs["clock"]`, and
every consumer of times respects it (no decay, trends, recency or time split on a synthetic clock).
"""

from __future__ import annotations

import codecs
import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from contracts.schema import CLOCKS, GROUP_ID, LOAD_ORDER, ContractFrames, check_clock, clock_of, ORDERED_AT, PRODUCT_ID, PUSHED_AT, SELLER_ID, TABLES, TIMEZONE
from features.validation import (DATETIME_DTYPE, CheckedTable, Problem, ValidationError, check_frame, final_dtypes,
                                 index_in, reference_problems, validate_rows)

__all__ = [
    "CLOCKS", "CLOCK_FILE", "Dataset", "LoadReport", "Problem", "TableReport", "ValidationError", "check_clock", "clock_of",
    "dataset_from_frames", "read_clock", "weakest_clock", "write_clock",
    "derive_groups", "derive_products", "derive_sellers", "empty_table", "load_dataset", "load_table",
    "validate_rows",
]

NULL_TOKENS = ["", "NULL", "null", "NaN", "nan", "None"]
UNKNOWN_CATEGORY = "未知"
DEFAULT_SELLER_TYPE = "其他"
DEFAULT_CITY_TIER = 3
FALLBACK_PRICE = 1.0  # yuan, only when no order, push or other product says anything about prices
# Tables that other tables point at: only their ids are collected for the reference checks.
REFERENCED = frozenset(target for t in TABLES.values() for target in t.references.values())


@dataclass
class TableReport:
    """Row counts of one table: read from its file = loaded + rejected; derived rows were synthesised."""

    source: str  # the file name, or "absent" when the table was not given
    read: int = 0
    loaded: int = 0
    rejected: int = 0
    derived: int = 0

    @property
    def rows(self) -> int:
        """Rows in the loaded table."""
        return self.loaded + self.derived


@dataclass
class LoadReport:
    """What a load did: counts per table, every problem, and the rejected rows under quarantine."""

    tables: dict[str, TableReport]
    problems: list[Problem] = field(default_factory=list)
    rejects: dict[str, pd.DataFrame] = field(default_factory=dict)
    rejects_dir: Path | None = None

    def summary(self) -> str:
        """One line per table: source, read, loaded, rejected, derived."""
        lines = [f"{'table':<9} {'source':<18} {'read':>10} {'loaded':>10} {'rejected':>9} {'derived':>9}"]
        for name, t in self.tables.items():
            lines.append(f"{name:<9} {t.source:<18} {t.read:>10} {t.loaded:>10} {t.rejected:>9} {t.derived:>9}")
        return "\n".join(lines)


CLOCK_FILE = "clock.json"  # in a contract folder, written by the adapter; absent means a real clock


def weakest_clock(*kinds: str) -> str:
    """The clock of data combining these: a synthetic part makes the whole synthetic."""
    return max((check_clock(k) for k in kinds), key=CLOCKS.index, default="real")


def read_clock(folder: str | Path) -> str:
    """The clock kind recorded in a contract folder's clock.json ("real" when there is none)."""
    import json

    path = Path(folder) / CLOCK_FILE
    if not path.exists():
        return "real"
    try:
        kind = json.loads(path.read_text("utf-8")).get("clock")
    except (ValueError, AttributeError) as err:
        raise ValidationError([Problem(str(path), None, "clock", None, f"not a JSON object with a 'clock' key ({err})")])
    if kind not in CLOCKS:
        raise ValidationError([Problem(str(path), None, "clock", str(kind), f"expected one of {', '.join(CLOCKS)}")])
    return kind


def write_clock(folder: str | Path, kind: str, how: str = "") -> Path:
    """Record how the folder's timestamps were made (clock.json: {"clock": kind, "how": …})."""
    import json

    path = Path(folder) / CLOCK_FILE
    path.write_text(json.dumps({"clock": check_clock(kind), "how": how}, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


@dataclass
class Dataset(ContractFrames):
    """The five contract tables, typed and in schema column order, plus the load report and the clock kind."""

    report: LoadReport
    clock: str = "real"

    def __post_init__(self) -> None:
        check_clock(self.clock)
        # Tables travel without their dataset (splits, the daily job): the orders carry the clock for build_train_data.
        self.orders.attrs["clock"] = self.clock


@dataclass
class RawTable:
    """A table as read from its file: raw cells, row numbers and what could not be read."""

    name: str
    file: str
    frame: pd.DataFrame | None
    rows: np.ndarray
    unreadable: pd.DataFrame  # lines that could not be split into fields: header columns + row + reason
    problems: list[Problem]  # row-level problems found while reading
    file_problems: list[Problem]

    @property
    def read(self) -> int:
        """Data rows in the file, readable or not."""
        return (0 if self.frame is None else len(self.frame)) + len(self.unreadable)


def empty_table(name: str) -> pd.DataFrame:
    """A table with no rows but the contract's columns and dtypes."""
    return final_dtypes(name, check_frame(name, pd.DataFrame(columns=TABLES[name].required)).frame)


# ---------------------------------------------------------------- reading files


def _fatal(name: str, file: str, reason: str) -> RawTable:
    """A table that could not be read at all."""
    return RawTable(name, file, None, np.zeros(0, dtype=np.int64), pd.DataFrame(), [],
                    [Problem(file, None, None, None, reason)])


def _split_line(text: str, width: int) -> list[str | None]:
    """Best-effort fields of a malformed line, padded or cut to the header width, for the rejects file."""
    try:
        fields: list[str | None] = list(next(csv.reader([text]), []))
    except csv.Error:
        fields = [text]
    fields = fields[:width] + [None] * max(0, width - len(fields))
    return fields


def _read_csv(path: Path, name: str) -> RawTable:
    """Read a CSV as text cells, finding empty files, unterminated quotes and lines of the wrong width."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    file = path.name
    data = path.read_bytes()
    if not data:
        return _fatal(name, file, "empty file (0 bytes)")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        # Bad bytes become U+FFFD, which the row checks report per cell as "not valid UTF-8".
        data = data.decode("utf-8", errors="replace").encode("utf-8")

    arr = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(arr == 10)
    starts = np.concatenate(([0], newlines + 1))
    if starts[-1] == len(arr):
        starts = starts[:-1]
    seg_end = np.concatenate((starts[1:], [len(arr)]))  # start of the next line (or end of data)
    ends = seg_end - (arr[np.maximum(seg_end - 1, 0)] == 10)  # without the newline
    ends = ends - ((ends > starts) & (arr[np.maximum(ends - 1, 0)] == 13))  # and without a CR
    nonempty = ends > starts
    if not nonempty.any():
        return _fatal(name, file, "empty file (no header)")
    line_no = np.arange(1, len(starts) + 1, dtype=np.int64)
    header_idx = int(np.flatnonzero(nonempty)[0])
    header = next(csv.reader([data[starts[header_idx]:ends[header_idx]].decode("utf-8")]))
    width = len(header)

    # A line with an odd number of quote characters leaves a quoted field open: CSV would swallow the
    # following lines into it, so such lines are cut out before parsing.
    odd = np.bitwise_xor.reduceat((arr == 34).view(np.uint8), starts).astype(bool) if len(arr) else nonempty
    is_data = nonempty & (np.arange(len(starts)) > header_idx)
    bad_quote = is_data & odd
    unreadable_rows: list[tuple[int, str, str]] = []
    for i in np.flatnonzero(bad_quote):
        unreadable_rows.append((int(line_no[i]), data[starts[i]:ends[i]].decode("utf-8"), "unterminated quote"))
    keep_line = ~bad_quote
    if bad_quote.any():
        kept = np.repeat(keep_line, seg_end - starts)
        data = arr[kept].tobytes()
    seg_len = (seg_end - starts)[keep_line]
    kept_starts = np.concatenate(([0], np.cumsum(seg_len)[:-1]))
    kept_line_no = line_no[keep_line]
    kept_is_data = is_data[keep_line]

    skipped: list[str] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        skipped.append(row.text)
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(newlines_in_values=False, ignore_empty_lines=True,
                                             invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in header},
                                                 strings_can_be_null=True, quoted_strings_can_be_null=True,
                                                 null_values=NULL_TOKENS),
        )
    except (pa.ArrowInvalid, ValueError) as exc:
        return _fatal(name, file, f"not a readable CSV file: {exc}")

    # Find each skipped line in the data, in order, to learn its line number.
    skipped_idx: list[int] = []
    pos = 0
    for text in skipped:
        found = data.find(text.encode("utf-8"), pos)
        if found < 0:
            return _fatal(name, file, "could not locate a malformed line; check the file's structure")
        i = int(np.searchsorted(kept_starts, found, side="right") - 1)
        skipped_idx.append(i)
        try:
            n_fields = len(next(csv.reader([text]), []))
        except csv.Error:
            n_fields = text.count(",") + 1
        unreadable_rows.append((int(kept_line_no[i]), text,
                                f"wrong number of fields: {n_fields} where the header has {width} "
                                f"({'truncated line?' if n_fields < width else 'unquoted comma?'})"))
        pos = int(kept_starts[i] + seg_len[i])
    parsed = kept_is_data.copy()
    parsed[skipped_idx] = False
    rows = kept_line_no[parsed]
    if len(rows) != table.num_rows:
        return _fatal(name, file, f"could not number the rows ({table.num_rows} parsed, {len(rows)} lines)")

    frame = table.to_pandas()
    unreadable_rows.sort()
    unreadable = pd.DataFrame([_split_line(t, width) for _, t, _ in unreadable_rows], columns=header,
                              dtype="object")
    unreadable["row"] = [r for r, _, _ in unreadable_rows]
    unreadable["reason"] = [why for _, _, why in unreadable_rows]
    problems = [Problem(file, r, None, t[:80], why) for r, t, why in unreadable_rows]
    return RawTable(name, file, frame, rows, unreadable, problems, [])


def _read_parquet(path: Path, name: str) -> RawTable:
    """Read a Parquet file as it is typed; the row checks coerce and judge its columns."""
    file = path.name
    if path.stat().st_size == 0:
        return _fatal(name, file, "empty file (0 bytes)")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        return _fatal(name, file, f"not a readable Parquet file: {exc}")
    frame = frame.reset_index(drop=True)
    rows = np.arange(1, len(frame) + 1, dtype=np.int64)
    return RawTable(name, file, frame, rows, pd.DataFrame(), [], [])


def _read(path: Path, name: str) -> RawTable:
    """Read one table file, CSV or Parquet by its suffix."""
    return _read_parquet(path, name) if path.suffix == ".parquet" else _read_csv(path, name)


def _table_files(folder: Path) -> tuple[dict[str, Path], list[Problem]]:
    """The file of each table present in `folder`, and problems such as a table given twice."""
    found: dict[str, Path] = {}
    problems: list[Problem] = []
    for name in LOAD_ORDER:
        candidates = [folder / f"{name}.{ext}" for ext in ("csv", "parquet") if (folder / f"{name}.{ext}").is_file()]
        if len(candidates) > 1:
            problems.append(Problem(candidates[0].name, None, None, None,
                                    f"both {name}.csv and {name}.parquet exist; keep one"))
        elif candidates:
            found[name] = candidates[0]
    if "orders" not in found and not problems:
        problems.append(Problem("orders.csv", None, None, None,
                                "orders.csv or orders.parquet is required"))
    return found, problems


def load_table(path: str | Path, table_name: str) -> pd.DataFrame:
    """Read and check one table file on its own (no references); raise ValidationError on any problem."""
    raw = _read(Path(path), table_name)
    if raw.file_problems:
        raise ValidationError(raw.file_problems)
    checked = check_frame(table_name, raw.frame, raw.rows, raw.file)
    problems = checked.file_problems or raw.problems + checked.problems
    if problems:
        raise ValidationError(sorted(problems, key=lambda p: p.row or 0))
    return final_dtypes(table_name, checked.frame)


# ---------------------------------------------------------------- derived tables


def derive_products(orders: pd.DataFrame, pushes: pd.DataFrame,
                    categories: pd.Series | None = None) -> pd.DataFrame:
    """Products seen in orders/pushes: title = the id, category 未知 (or `categories`: id -> category),
    brand "", price = median paid/quantity of its paid orders, else median price_at_push, else the
    catalogue median; commission_rate = Σcommission / Σpaid of its orders, else 0."""
    ids = pd.Index(pd.unique(pd.concat([orders[PRODUCT_ID], pushes[PRODUCT_ID]], ignore_index=True)), dtype="str")
    paid = orders[orders["paid"] > 0]
    unit = (paid["paid"] / paid["quantity"]).groupby(paid[PRODUCT_ID]).median()
    pushed = pushes["price_at_push"].groupby(pushes[PRODUCT_ID]).median()
    price = pd.Series(np.nan, index=ids).fillna(unit).fillna(pushed)
    price = price.fillna(price.median() if price.notna().any() else FALLBACK_PRICE)
    known = paid[paid["commission"].notna()]
    sums = known.groupby(PRODUCT_ID)[["commission", "paid"]].sum()
    rate = (sums["commission"] / sums["paid"]).clip(0.0, 1.0)
    category = pd.Series(UNKNOWN_CATEGORY, index=ids)
    if categories is not None:
        category = categories.reindex(ids).fillna(UNKNOWN_CATEGORY)
    frame = pd.DataFrame({
        PRODUCT_ID: ids, "title": ids, "category": category.to_numpy(), "brand": "",
        "price": price.to_numpy(), "commission_rate": rate.reindex(ids).fillna(0.0).to_numpy(),
    })
    return final_dtypes("products", check_frame("products", frame).frame)


def derive_groups(orders: pd.DataFrame, pushes: pd.DataFrame) -> pd.DataFrame:
    """Groups seen in orders/pushes, each run by a seller of the same id; member_count = distinct buyers, ≥ 1."""
    ids = pd.Index(pd.unique(pd.concat([orders[GROUP_ID], pushes[GROUP_ID]], ignore_index=True)), dtype="str")
    # Distinct (group, buyer) pairs counted per group position, without grouping by strings.
    pairs = pd.DataFrame({"g": index_in(orders[GROUP_ID], ids), "b": orders["buyer_id"].factorize()[0]})
    pairs = pairs[pairs["b"] >= 0].drop_duplicates()
    counts = np.bincount(pairs["g"].to_numpy(), minlength=len(ids))
    members = pd.Series(np.maximum(counts, 1), index=ids, dtype="int64")
    frame = pd.DataFrame({GROUP_ID: ids, SELLER_ID: ids, "member_count": members.to_numpy()})
    return final_dtypes("groups", check_frame("groups", frame).frame)


def derive_sellers(seller_ids: pd.Series | pd.Index) -> pd.DataFrame:
    """Sellers of the given ids with seller_type 其他 and city_tier 3."""
    ids = pd.Index(pd.unique(pd.Series(seller_ids).dropna()), dtype="str")
    frame = pd.DataFrame({SELLER_ID: ids, "seller_type": DEFAULT_SELLER_TYPE, "city_tier": DEFAULT_CITY_TIER})
    return final_dtypes("sellers", check_frame("sellers", frame).frame)


def _fill_when_absent(products: pd.DataFrame, pushes: pd.DataFrame, orders: pd.DataFrame) -> None:
    """Fill commission (paid × commission_rate) and launched_at (first push or order), as the contract says."""
    missing = orders["commission"].isna().to_numpy()
    if missing.any():
        at = index_in(orders[PRODUCT_ID][missing], products[PRODUCT_ID])
        rate = np.where(at >= 0, products["commission_rate"].to_numpy()[at], 0.0)
        commission = orders["commission"].to_numpy(copy=True)
        commission[missing] = orders["paid"].to_numpy()[missing] * rate
        orders["commission"] = commission
    if products["launched_at"].isna().any():
        # Group by integer product positions: far faster than grouping by the id strings.
        at = np.concatenate([index_in(orders[PRODUCT_ID], products[PRODUCT_ID]),
                             index_in(pushes[PRODUCT_ID], products[PRODUCT_ID])])
        ns = np.concatenate([orders[ORDERED_AT].astype(DATETIME_DTYPE).dt.tz_convert(None).to_numpy().view("int64"),
                             pushes[PUSHED_AT].astype(DATETIME_DTYPE).dt.tz_convert(None).to_numpy().view("int64")])
        first = np.full(len(products), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first, at[at >= 0], ns[at >= 0])
        launched = pd.to_datetime(pd.Series(first, index=products.index).where(first < np.iinfo(np.int64).max),
                                  utc=True).dt.tz_convert(TIMEZONE).astype(DATETIME_DTYPE)
        products["launched_at"] = products["launched_at"].fillna(launched)


# ---------------------------------------------------------------- the load itself


def _rejects_frame(raw: RawTable, positions: np.ndarray, reasons: dict[int, list[str]]) -> pd.DataFrame:
    """Rejected rows with their original cells, the row number and the reasons."""
    rows = raw.rows[positions]
    out = raw.frame.iloc[positions].astype("object").copy() if raw.frame is not None else pd.DataFrame()
    out["row"] = rows
    out["reason"] = ["; ".join(dict.fromkeys(reasons[int(r)])) for r in rows]
    if len(raw.unreadable):
        out = pd.concat([out, raw.unreadable.astype("object")], ignore_index=True)
    cols = [c for c in out.columns if c not in ("row", "reason")] + ["row", "reason"]
    return out[cols].sort_values("row", kind="stable").reset_index(drop=True)


def _assemble(raws: dict[str, RawTable], quarantine: bool, rejects_root: Path | None,
              early: list[Problem] | None = None) -> Dataset:
    """Check, cross-reference, quarantine, derive and type the tables read from files or frames."""
    fatal = list(early or [])
    for raw in raws.values():
        fatal += raw.file_problems
    checked: dict[str, CheckedTable] = {}
    for name, raw in raws.items():
        if raw.frame is not None:
            checked[name] = check_frame(name, raw.frame, raw.rows, raw.file)
            fatal += checked[name].file_problems
    if "orders" in raws and not raws["orders"].file_problems and raws["orders"].read == 0:
        fatal.append(Problem(raws["orders"].file, None, None, None, "no data rows: orders needs at least one order"))
    if fatal:
        raise ValidationError(fatal)

    problems: dict[str, list[Problem]] = {}
    good: dict[str, np.ndarray] = {}
    known: dict[str, pd.Index] = {}
    rejected: dict[str, pd.Index] = {}
    for name in LOAD_ORDER:
        if name not in checked:
            continue
        c = checked[name]
        found = raws[name].problems + c.problems
        found += reference_problems(name, c.frame, c.rows, c.file, known, rejected)
        problems[name] = found
        bad = np.isin(c.rows, [p.row for p in found if p.row is not None])
        good[name] = ~bad
        key = TABLES[name].key
        if key and name in REFERENCED:
            ids = c.frame[key]
            # Ids on unreadable lines still count as rejected rows, so references to them cascade.
            if key in raws[name].unreadable.columns:
                unreadable_ids = raws[name].unreadable[key].dropna().astype("str")
            else:
                unreadable_ids = pd.Series([], dtype="str")
            bad_ids = pd.Index(pd.concat([ids[bad].dropna(), unreadable_ids]).unique())
            keep = pd.Index(ids[~bad].dropna().unique())
            known[name] = keep if quarantine else keep.union(bad_ids)
            rejected[name] = bad_ids.difference(keep)

    all_problems = [p for name in LOAD_ORDER for p in sorted(problems.get(name, []), key=lambda p: p.row or 0)]
    if all_problems and not quarantine:
        raise ValidationError(all_problems)

    reports: dict[str, TableReport] = {name: TableReport("absent") for name in LOAD_ORDER}
    rejects: dict[str, pd.DataFrame] = {}
    frames: dict[str, pd.DataFrame] = {}
    for name, c in checked.items():
        raw = raws[name]
        reasons: dict[int, list[str]] = {}
        for p in problems[name]:
            if p.row is not None:
                reasons.setdefault(p.row, []).append(p.reason if p.column is None else f"{p.column}: {p.reason}")
        positions = np.flatnonzero(~good[name])
        if quarantine:
            rejects[name] = _rejects_frame(raw, positions, reasons)
        frames[name] = final_dtypes(name, c.frame[good[name]])
        reports[name] = TableReport(raw.file, read=raw.read, loaded=len(frames[name]),
                                    rejected=len(positions) + len(raw.unreadable))

    rejects_dir = None
    if quarantine and rejects_root is not None:
        rejects_dir = rejects_root / "rejects"
        rejects_dir.mkdir(parents=True, exist_ok=True)
        for name, frame in rejects.items():
            frame.to_csv(rejects_dir / f"{name}.csv", index=False)

    orders = frames["orders"]
    if orders.empty:
        raise ValidationError(all_problems + [Problem(raws["orders"].file, None, None, None,
                                                      "no orders left after quarantine")])
    pushes = frames.get("pushes", empty_table("pushes"))
    if "products" not in frames:
        frames["products"] = derive_products(orders, pushes)
        reports["products"].derived = len(frames["products"])
    if "groups" not in frames:
        frames["groups"] = derive_groups(orders, pushes)
        reports["groups"].derived = len(frames["groups"])
    sellers = frames.get("sellers", empty_table("sellers"))
    missing = pd.Index(frames["groups"][SELLER_ID].unique()).difference(pd.Index(sellers[SELLER_ID]), sort=False)
    if len(missing):
        # Only reachable when sellers are absent or groups were derived: given files were cross-checked.
        extra = derive_sellers(missing)
        sellers = pd.concat([sellers, extra], ignore_index=True) if len(sellers) else extra
        reports["sellers"].derived = len(extra)
    frames["sellers"] = sellers
    frames["pushes"] = pushes
    _fill_when_absent(frames["products"], pushes, orders)
    report = LoadReport(reports, all_problems, rejects, rejects_dir)
    return Dataset(report=report, **{name: frames[name] for name in LOAD_ORDER})


def load_dataset(path: str | Path, quarantine: bool = False, rejects_dir: str | Path | None = None) -> Dataset:
    """Load the contract tables of a folder; see the module docstring for defaults, rows and quarantine."""
    folder = Path(path)
    if not folder.is_dir():
        raise ValidationError([Problem(str(folder), None, None, None, "not a folder")])
    files, early = _table_files(folder)
    raws = {name: _read(file, name) for name, file in files.items()}
    root = Path(rejects_dir) if rejects_dir is not None else folder
    ds = _assemble(raws, quarantine, root, early)
    ds.clock = read_clock(folder)
    ds.orders.attrs["clock"] = ds.clock
    return ds


def dataset_from_frames(frames: dict[str, pd.DataFrame], quarantine: bool = False,
                        rejects_dir: str | Path | None = None) -> Dataset:
    """Check and load in-memory tables exactly like files (rows numbered 1, 2, ...; needs 'orders')."""
    raws: dict[str, RawTable] = {}
    early: list[Problem] = []
    for name in LOAD_ORDER:
        if name in frames:
            frame = frames[name].reset_index(drop=True)
            raws[name] = RawTable(name, name, frame, np.arange(1, len(frame) + 1, dtype=np.int64),
                                  pd.DataFrame(), [], [])
    if "orders" not in raws:
        early.append(Problem("orders", None, None, None, "an orders table is required"))
    return _assemble(raws, quarantine, Path(rejects_dir) if rejects_dir is not None else None, early)
