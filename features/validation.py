"""Row-level checks of the data contract: types, nulls, ranges, choices, duplicate keys and references.

Everything here is driven by `contracts.schema` and works on whole columns at once (no per-row
Python loops), so it serves both the file loader and the service validating feedback events.

Row numbers are whatever the caller passes in `rows`: the loader passes the line number in the
CSV file (header = line 1, so the first data row is 2) or the 1-based row of a Parquet file;
`validate_rows` numbers the rows of a DataFrame 1, 2, 3, ...
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api import types as ptypes

from contracts.schema import TABLES, TIMEZONE, Column, Table, bound_text

DATETIME_DTYPE = f"datetime64[ns, {TIMEZONE}]"

# Spellings accepted for booleans in text files (lower-cased before lookup).
BOOL_WORDS: dict[str, bool] = {
    "true": True, "t": True, "yes": True, "y": True, "1": True, "1.0": True, "是": True,
    "false": False, "f": False, "no": False, "n": False, "0": False, "0.0": False, "否": False,
}

# A time followed by Z or a UTC offset, e.g. 10:30Z, 10:30:00+08:00, 10:30:00 +0800.
_OFFSET_RE = r"\d:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"
# Required text columns where an empty cell is a legitimate empty string, as the contract says
# ("empty string for unbranded goods"); everywhere else an empty cell is a missing value.
EMPTY_ALLOWED: frozenset[tuple[str, str]] = frozenset({("products", "brand")})
# Bad bytes of a non-UTF-8 file are decoded to this character by the loader.
REPLACEMENT_CHAR = "\ufffd"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where (file, row, column), the offending value and why."""

    file: str
    row: int | None
    column: str | None
    value: str | None
    reason: str

    def __str__(self) -> str:
        where = self.file if self.row is None else f"{self.file}:{self.row}"
        column = f" {self.column}" if self.column else ""
        value = "" if self.value is None else f" {self.value!r}"
        return f"{where}{column}{value} — {self.reason}"


class ValidationError(ValueError):
    """Raised when input breaks the contract; `problems` lists every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        shown = "\n  ".join(str(p) for p in self.problems[:10])
        more = f"\n  … and {len(self.problems) - 10} more" if len(self.problems) > 10 else ""
        super().__init__(f"{len(self.problems)} problem(s) in the input:\n  {shown}{more}")

    def listing(self, outcome: str) -> str:
        """Every problem on its own line, then the count and what happened (e.g. "nothing loaded")."""
        return "\n".join([*(str(p) for p in self.problems), f"{len(self.problems)} problem(s); {outcome}."])


@dataclass
class CheckedTable:
    """A table after the row checks: contract columns coerced (bad cells left missing) and its problems."""

    name: str
    file: str
    frame: pd.DataFrame | None  # None when a file-level problem (e.g. a missing column) stops the checks
    rows: np.ndarray  # row number of each frame row, as reported in problems
    problems: list[Problem]  # row-level problems
    file_problems: list[Problem]  # problems with the table as a whole


def _problems(file: str, rows: np.ndarray, column: str | None, values: pd.Series, mask: np.ndarray,
              reason: str) -> list[Problem]:
    """One Problem per row selected by `mask` (a Python loop over the bad rows only)."""
    if not mask.any():
        return []
    picked = values[mask]
    return [
        Problem(file, int(r), column, None if pd.isna(v) else str(v), reason)
        for r, v in zip(rows[mask], picked.tolist())
    ]


def _text(s: pd.Series) -> pd.Series:
    """The column as strings; integral numbers (ids stored as numbers in Parquet) lose their '.0'."""
    if ptypes.is_string_dtype(s) or ptypes.is_object_dtype(s):
        out = s.astype("str")
    elif ptypes.is_float_dtype(s) and bool(((s.dropna() % 1) == 0).all()):
        out = s.astype("Int64").astype("str")
    else:
        out = s.astype("str")
    return out.where(s.notna())


def _coerce_number(s: pd.Series, integer: bool) -> tuple[pd.Series, np.ndarray, str]:
    """Numbers from a column; returns values (float64), invalid mask and the reason for invalid cells."""
    kind = "an integer" if integer else "a number"
    if ptypes.is_bool_dtype(s):
        return pd.Series(np.nan, index=s.index), s.notna().to_numpy(), f"not {kind} (got a boolean)"
    if ptypes.is_numeric_dtype(s):
        num = s.astype("float64")
        invalid = np.zeros(len(s), dtype=bool)
    elif ptypes.is_datetime64_any_dtype(s):
        return pd.Series(np.nan, index=s.index), s.notna().to_numpy(), f"not {kind} (got a timestamp)"
    else:
        text = _text(s).str.strip()
        num = pd.to_numeric(text, errors="coerce").astype("float64")
        invalid = (num.isna() & text.notna()).to_numpy().copy()
    invalid = invalid | np.isinf(num.to_numpy())
    if integer:
        invalid = invalid | (num.notna() & (num % 1 != 0)).to_numpy()
    return num.where(~invalid), invalid, f"not {kind}"


def _coerce_bool(s: pd.Series) -> tuple[pd.Series, np.ndarray, str]:
    """Booleans from bool, 0/1 numbers or words such as true/false/yes/no/是/否."""
    if ptypes.is_bool_dtype(s):
        return s.astype("object"), np.zeros(len(s), dtype=bool), ""
    if ptypes.is_numeric_dtype(s):
        mapped = s.map({1: True, 0: False})
    else:
        mapped = _text(s).str.strip().str.lower().map(BOOL_WORDS)
    invalid = (mapped.isna() & s.notna()).to_numpy()
    return mapped.astype("object"), invalid, "not a boolean (use true/false)"


# The years a contract timestamp may fall in: wide for any real log, and inside the nanosecond clock of pandas
# (1677–2262), which a year such as 1600 or 0001 would overflow.
EARLIEST_YEAR, LATEST_YEAR = 1900, 2199


def _within_years(values: pd.Series) -> pd.Series:
    """NaT for timestamps outside EARLIEST_YEAR–LATEST_YEAR, whatever their resolution or zone."""
    years = values.dt.year
    return values.where((years >= EARLIEST_YEAR) & (years <= LATEST_YEAR))


def _coerce_datetime(s: pd.Series) -> tuple[pd.Series, np.ndarray, str]:
    """Timestamps in Asia/Shanghai: naive ones are local time there, ones with an offset are converted."""
    reason = (f"unparseable timestamp or outside {EARLIEST_YEAR}–{LATEST_YEAR} "
              "(use ISO 8601 or YYYY-MM-DD HH:MM[:SS])")
    if ptypes.is_datetime64_any_dtype(s):
        s = _within_years(s)
        out = s.dt.tz_convert(TIMEZONE) if s.dt.tz is not None else s.dt.tz_localize(TIMEZONE, ambiguous="NaT",
                                                                                    nonexistent="NaT")
        return out.astype(DATETIME_DTYPE), (out.isna() & s.notna()).to_numpy(), reason
    if ptypes.is_numeric_dtype(s) or ptypes.is_bool_dtype(s):
        empty = pd.Series(pd.NaT, index=s.index, dtype=DATETIME_DTYPE)
        return empty, s.notna().to_numpy(), "not a timestamp (got a number)"
    text = _text(s).str.strip()
    if bool(text.str.contains("/", regex=False).any()):
        text = text.str.replace(r"^(\d{4})/(\d{2})/(\d{2})", r"\1-\2-\3", regex=True)
    has_offset = text.str.contains(_OFFSET_RE, regex=True).fillna(False).astype(bool)
    naive = _within_years(pd.to_datetime(text.where(~has_offset), format="ISO8601", errors="coerce"))
    naive = naive.dt.tz_localize(TIMEZONE, ambiguous="NaT", nonexistent="NaT").astype(DATETIME_DTYPE)
    if has_offset.any():
        aware = _within_years(pd.to_datetime(text.where(has_offset), format="ISO8601", errors="coerce", utc=True))
        naive = naive.where(~has_offset, aware.dt.tz_convert(TIMEZONE).astype(DATETIME_DTYPE))
    return naive, (naive.isna() & text.notna()).to_numpy(), reason


def _coerce(s: pd.Series, col: Column) -> tuple[pd.Series, np.ndarray, str]:
    """Coerce one column to its contract type: values, mask of cells that could not be read, reason."""
    if col.type == "str":
        text = _text(s)
        invalid = text.str.contains(REPLACEMENT_CHAR, regex=False).fillna(False).astype(bool).to_numpy()
        return text.where(~invalid), invalid, "not valid UTF-8 text (is the file GBK? save it as UTF-8)"
    if col.type in ("int", "float"):
        return _coerce_number(s, integer=col.type == "int")
    if col.type == "bool":
        return _coerce_bool(s)
    return _coerce_datetime(s)


def _absent(col: Column, index: pd.Index) -> pd.Series:
    """The column filled with its default, for an optional column the input lacks."""
    if col.type == "datetime":
        return pd.Series(pd.NaT, index=index, dtype=DATETIME_DTYPE)
    if col.type == "str":
        return pd.Series(col.default, index=index, dtype="str")
    if col.type in ("int", "float"):
        return pd.Series(np.nan if col.default is None else col.default, index=index, dtype="float64")
    return pd.Series(col.default, index=index, dtype="object")


def _range_reason(col: Column, high: bool) -> str:
    """Human wording of the bound a value broke, e.g. 'must be > 0' or 'must be between 0 and 1'."""
    if col.min is not None and col.max is not None and not col.min_exclusive:
        return f"must be between {bound_text(col.min)} and {bound_text(col.max)}"
    if high:
        return f"must be ≤ {bound_text(col.max)}"  # type: ignore[arg-type]
    return f"must be {'>' if col.min_exclusive else '≥'} {bound_text(col.min)}"  # type: ignore[arg-type]


def check_frame(table: Table | str, raw: pd.DataFrame, rows: np.ndarray | None = None,
                file: str | None = None) -> CheckedTable:
    """Check one table's rows against the contract (not references) and coerce them to contract types."""
    table = TABLES[table] if isinstance(table, str) else table
    file = file or table.name
    raw = raw.rename(columns=lambda c: str(c).strip().lstrip("\ufeff"))
    rows = np.arange(1, len(raw) + 1, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    raw = raw.reset_index(drop=True)
    file_problems: list[Problem] = []
    for name in table.required:
        if name not in raw.columns:
            file_problems.append(Problem(file, None, name, None, f"missing required column {name!r}"))
    dupes = raw.columns[raw.columns.duplicated()]
    for name in dict.fromkeys(dupes):
        file_problems.append(Problem(file, None, str(name), None, f"column {name!r} appears twice in the header"))
    if file_problems:
        return CheckedTable(table.name, file, None, rows, [], file_problems)

    problems: list[Problem] = []
    out: dict[str, pd.Series] = {}
    for col in table.columns:
        if col.name not in raw.columns:
            out[col.name] = _absent(col, raw.index)
            continue
        original = raw[col.name]
        if ptypes.is_string_dtype(original) or ptypes.is_object_dtype(original):
            # Blank cells are missing whatever the format: CSV readers already null them, Parquet may not.
            blank = original.astype("str").str.strip() == ""
            if blank.any():
                original = original.where(~blank.fillna(False).astype(bool))
        if (table.name, col.name) in EMPTY_ALLOWED:
            original = original.fillna("")
        values, invalid, reason = _coerce(original, col)
        problems += _problems(file, rows, col.name, original, invalid, reason)
        missing = (values.isna() & ~invalid).to_numpy() if col.type != "str" else (original.isna()).to_numpy()
        if col.required:
            problems += _problems(file, rows, col.name, original, missing, "missing value in a required column")
        elif col.default is not None and missing.any():
            values = values.where(~missing, col.default)
        present = values.notna().to_numpy()
        if col.min is not None or col.max is not None:
            num = values.astype("float64").to_numpy()
            low = np.zeros(len(num), dtype=bool)
            with np.errstate(invalid="ignore"):
                if col.min is not None:
                    low = (num <= col.min) if col.min_exclusive else (num < col.min)
                high = (num > col.max) if col.max is not None else np.zeros(len(num), dtype=bool)
            problems += _problems(file, rows, col.name, original, present & low, _range_reason(col, high=False))
            problems += _problems(file, rows, col.name, original, present & high, _range_reason(col, high=True))
        if col.choices:
            outside = present & ~values.isin(col.choices).to_numpy()
            problems += _problems(file, rows, col.name, original, outside, f"must be one of {'/'.join(col.choices)}")
        out[col.name] = values
    frame = pd.DataFrame(out, index=raw.index)
    if table.key:
        problems += duplicate_problems(table.key, frame[table.key], rows, file)
    return CheckedTable(table.name, file, frame, rows, problems, [])


def duplicate_problems(key: str, ids: pd.Series, rows: np.ndarray, file: str) -> list[Problem]:
    """Every repeat of a key after its first occurrence (the first one is kept)."""
    present = ids.notna()
    arr = _arrow_strings(ids.dropna())
    if len(pc.unique(arr)) == len(arr):  # the usual case, decided by Arrow hashing alone
        return []
    repeat = (ids.duplicated(keep="first") & present).to_numpy()
    if not repeat.any():
        return []
    first_row = pd.Series(rows, index=ids.index)[present].groupby(ids[present]).transform("min")
    firsts = first_row.reindex(ids.index)[repeat].astype("int64").tolist()
    return [
        Problem(file, int(r), key, str(v), f"duplicate {key} (first at row {f})")
        for r, v, f in zip(rows[repeat], ids[repeat].tolist(), firsts)
    ]


def _arrow_strings(values: Iterable[str]) -> pa.Array:
    """Strings as one Arrow array (zero-copy for Arrow-backed pandas strings)."""
    if isinstance(values, pd.Index):
        values = pd.Series(values, copy=False)
    if not isinstance(values, pd.Series):
        values = pd.Series(list(values), dtype="str")
    if not ptypes.is_string_dtype(values):
        values = values.astype("str")
    arr = pa.array(values, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.large_string())


def index_in(values: Iterable[str], ids: Iterable[str]) -> np.ndarray:
    """Position of each value in `ids` (unique), or -1; Arrow hashing, much faster than pandas on strings."""
    found = pc.index_in(_arrow_strings(values), value_set=_arrow_strings(ids))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _member(values: pd.Series, ids: Iterable[str]) -> np.ndarray:
    """Whether each value is one of `ids`."""
    found = pc.is_in(_arrow_strings(values), value_set=_arrow_strings(ids))
    return found.to_numpy(zero_copy_only=False).astype(bool)


def reference_problems(table: Table | str, frame: pd.DataFrame, rows: np.ndarray, file: str,
                       known_ids: Mapping[str, Iterable[str]],
                       rejected_ids: Mapping[str, Iterable[str]] | None = None) -> list[Problem]:
    """Rows pointing at ids that the referenced table (when given in `known_ids`) does not hold."""
    table = TABLES[table] if isinstance(table, str) else table
    problems: list[Problem] = []
    for column, target in table.references.items():
        if target not in known_ids or column not in frame.columns:
            continue
        ids = frame[column]
        unknown = ids.notna().to_numpy() & ~_member(ids, known_ids[target])
        if not unknown.any():
            continue
        cascade = unknown & _member(ids, (rejected_ids or {}).get(target, ()))
        problems += _problems(file, rows, column, ids, cascade, f"references a rejected {target} row")
        problems += _problems(file, rows, column, ids, unknown & ~cascade, f"unknown {column} (not in {target})")
    return problems


def validate_rows(table: str, df: pd.DataFrame, known_ids: dict[str, set[str]] | None = None) -> list[Problem]:
    """Problems of each row of `df` (e.g. pushes/orders feedback events) against the contract and known ids.

    Rows are numbered 1, 2, ... in `df` order; `known_ids` maps a table name ('products', 'groups',
    'sellers') to its ids, and only the tables given are checked as references.
    """
    checked = check_frame(table, df, file=table)
    if checked.frame is None:
        return checked.file_problems
    refs = reference_problems(table, checked.frame, checked.rows, table, known_ids or {})
    return sorted(checked.problems + refs, key=lambda p: (p.row or 0))


def final_dtypes(table: Table | str, frame: pd.DataFrame) -> pd.DataFrame:
    """Cast checked, problem-free rows to the contract dtypes: str ids, float, int, bool, tz-aware datetimes."""
    table = TABLES[table] if isinstance(table, str) else table
    out: dict[str, pd.Series] = {}
    for col in table.columns:
        s = frame[col.name]
        if col.type == "str":
            out[col.name] = s.astype("str")
        elif col.type == "int":
            out[col.name] = s.astype("int64")
        elif col.type == "float":
            out[col.name] = s.astype("float64")
        elif col.type == "bool":
            out[col.name] = s.astype("bool")
        else:
            out[col.name] = s.astype(DATETIME_DTYPE)
    return pd.DataFrame(out, columns=table.names).reset_index(drop=True)
