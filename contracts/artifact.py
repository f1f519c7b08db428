"""The versioned artifact the daily job writes and the service reads.

Layout: `<root>/<version>/` holding one Parquet file per table (`groups`, `products`,
`candidates`, `segment_candidates`, `picks`, and the optional `candidate_features`), extra files
(the daily job adds `models/ranker.txt`, LightGBM's text model, and `models/ranker.json`, its
features and calibrator; see `recsys.ranker.load_ranker`), and `manifest.json` (written last). The version is the UTC time `YYYYMMDDTHHMMSSZ` plus the short config hash.

Writes are atomic: everything goes into `<root>/.tmp-<version>/`, every file is fsynced,
then the folder is renamed in one `os.rename`. A crash or kill mid-write leaves at most a
`.tmp-*` folder, which readers ignore, so the previous artifact stays the latest.

`ArtifactWriter` is the one write path: big tables (`candidates`, `candidate_features` at a million groups)
are appended block by block into one Parquet file each, so the job never holds a whole table;
`write_artifact` writes whole tables through it. A table's rows are in the order of its appends:
readers must not assume candidates sorted by group (`Artifact` sorts them once, stably, at load).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST = "manifest.json"
TMP_PREFIX = ".tmp-"
REQUIRED_TABLES: tuple[str, ...] = ("groups", "products", "candidates", "segment_candidates", "picks")
# Columns a reader relies on; the rest of each table is free to grow.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "groups": ("group_id", "seller_id", "seller_type", "city_tier", "member_count", "theme", "cold_start", "segment"),
    "products": ("product_id", "title", "category", "brand", "price", "commission_rate"),
    "candidates": ("group_id", "product_id", "p_conv", "price", "commission_rate", "commission_yuan", "rating",
                   "order_value", "category", "brand", "reasons", "in_stock"),
    "segment_candidates": ("segment", "product_id", "p_conv", "price", "commission_rate", "commission_yuan", "rating",
                           "order_value", "category", "brand", "reasons", "in_stock"),
    "picks": ("group_id", "rank", "product_id", "score", "weights_hash"),
}
_LIBRARIES = ("numpy", "pandas", "pyarrow", "lightgbm", "scikit-learn", "implicit", "torch", "pydantic")


class ArtifactError(Exception):
    """An artifact folder that is incomplete, corrupt or unreadable; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def make_version(config_hash: str, now: datetime | None = None) -> str:
    """`YYYYMMDDTHHMMSSZ-<config hash>` for the given (default: current) UTC time."""
    now = now or datetime.now(timezone.utc)
    return now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + (config_hash or "nohash")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape the artifact's numbers."""
    versions = {"python": sys.version.split()[0]}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def sha256_file(path: Path, fsync: bool = False) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks; `fsync` also flushes it to disk."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
        if fsync:
            os.fsync(fh.fileno())
    return digest.hexdigest()


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _copy_synced(source: Path, path: Path) -> str:
    """Copy a file in 1 MiB chunks, fsync it, and return its sha256 (a big model never sits in memory)."""
    digest = hashlib.sha256()
    with open(source, "rb") as src, open(path, "wb") as dst:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            digest.update(chunk)
            dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _frame_schema(frame: pd.DataFrame, hint: pa.Schema | None = None) -> pa.Schema:
    """The Arrow schema a table's file gets from its first rows; columns with no type yet (all None) take the
    hint's type (an earlier empty block's) or else text, so that later blocks with values still fit."""
    schema = pa.Schema.from_pandas(frame, preserve_index=False)
    fields = []
    for f in schema:
        if pa.types.is_null(f.type):
            hinted = hint.field(f.name).type if hint is not None and f.name in hint.names else pa.null()
            # large_string is what pandas' own text columns become, so a later block of text casts for free.
            f = f.with_type(pa.large_string() if pa.types.is_null(hinted) else hinted)
        fields.append(f)
    return pa.schema(fields, metadata=schema.metadata)


def _check_columns(name: str, frame: pd.DataFrame, schema: pa.Schema) -> None:
    columns = [str(c) for c in frame.columns]
    if sorted(columns) != sorted(schema.names):
        raise ArtifactError(f"table {name!r}: a block has columns {columns}, the table has {schema.names}")


def _to_arrow(name: str, frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """A block as an Arrow table of the table's schema: same columns (any order), values cast to the fixed types."""
    _check_columns(name, frame, schema)
    try:
        # from_pandas with a schema casts (int → float, NaN → null in an int column, None → null) and
        # refuses what would lose data (1.5 into an int column, numbers into a text column).
        return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise ArtifactError(f"table {name!r}: a block does not fit the table's schema: {exc}") from None


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    # A whole table keeps pandas' own conversion (all-None columns stay Arrow null, read back as None).
    buf = io.BytesIO()
    frame.reset_index(drop=True).to_parquet(buf, index=False)
    return buf.getvalue()


class _StreamedTable:
    """One table appended block by block into one Parquet file (each block adds row groups; none is kept)."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self.rows = 0
        self.schema: pa.Schema | None = None  # fixed by the first block with rows
        self.hint: pa.Schema | None = None  # the first empty block's columns and dtypes
        self._writer: pq.ParquetWriter | None = None

    @property
    def known(self) -> pa.Schema | None:
        """The fixed schema, else the empty blocks' one (None before any block)."""
        return self.schema if self.schema is not None else self.hint

    @property
    def columns(self) -> list[str]:
        """The table's columns so far."""
        return list(self.known.names) if self.known is not None else []

    def append(self, frame: pd.DataFrame) -> None:
        """Write a block's rows; nothing of the frame is kept."""
        if len(frame) == 0:
            # No rows to write: only remember the columns (and dtypes) in case no block ever has rows.
            if self.known is None:
                self.hint = _frame_schema(frame)
            else:
                _check_columns(self.name, frame, self.known)
            return
        if self._writer is None:
            if self.hint is not None:
                _check_columns(self.name, frame, self.hint)
            self.schema = _frame_schema(frame, self.hint)
            self._open()
        assert self._writer is not None and self.schema is not None
        self._writer.write_table(_to_arrow(self.name, frame, self.schema))
        self.rows += len(frame)

    def _open(self) -> None:
        self.schema = self.known if self.known is not None else pa.schema([])
        # Arrow's own file sink: a Python file object as sink made writing about 1.7× slower. Only text columns are
        # dictionary-encoded: trying it on every float feature column (then falling back) made a 100k-row block of
        # candidate features 5× slower to write, and the file larger.
        text = [f.name for f in self.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
        self._writer = pq.ParquetWriter(str(self.path), self.schema, use_dictionary=text or False)

    def close(self) -> str:
        """Finish the file (a table that never had rows gets an empty one), fsync it and return its sha256."""
        if self._writer is None:
            self._open()
        assert self._writer is not None
        self._writer.close()
        # Hashing re-reads the file just written, from the page cache (about 1 GB/s).
        return sha256_file(self.path, fsync=True)

    def discard(self) -> None:
        """Close without caring about errors (the folder is about to be removed)."""
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # noqa: BLE001 - cleaning up after an earlier failure
                pass


class ArtifactWriter:
    """Writes one artifact version piece by piece into `<root>/.tmp-<version>/`, then publishes it atomically.

    Use as a context manager. `append` streams a big table block by block (only row counts are kept),
    `write_table` writes a whole table, `add_file` an extra file, and `commit(manifest)` checks the required
    tables and columns, writes manifest.json last and renames the folder. Leaving the `with` block without
    a commit (or by an exception) removes the temp folder, so the previous artifact stays the latest.
    """

    def __init__(self, root: str | Path, config_hash: str, now: datetime | None = None) -> None:
        self.root = Path(root)
        self.config_hash = str(config_hash)
        self.now = now or datetime.now(timezone.utc)
        self.root.mkdir(parents=True, exist_ok=True)
        base = make_version(self.config_hash, self.now)
        self.version, n = base, 1
        while True:
            self.tmp = self.root / (TMP_PREFIX + self.version)
            if not (self.root / self.version).exists():
                try:
                    self.tmp.mkdir()  # exclusive: two writers in the same second get distinct versions
                    break
                except FileExistsError:
                    pass
            n += 1
            self.version = f"{base}.{n}"
        self.final = self.root / self.version
        self._rows: dict[str, int] = {}  # table → rows, in the order tables were started
        self._columns: dict[str, list[str]] = {}
        self._streams: dict[str, _StreamedTable] = {}
        self._files: dict[str, str] = {}  # file name → sha256
        self._sub_folders: set[str] = set()
        self._state = "open"

    def __enter__(self) -> "ArtifactWriter":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._state == "open":
            self.abort()

    def _check_open(self) -> None:
        if self._state != "open":
            raise ArtifactError(f"artifact writer for {self.version} is already {self._state}")

    def append(self, name: str, frame: pd.DataFrame) -> None:
        """Append a block of rows to a table (one Parquet file; the first block with rows fixes the schema)."""
        self._check_open()
        stream = self._streams.get(name)
        if stream is None:
            self._claim(name)
            stream = self._streams[name] = _StreamedTable(name, self.tmp / f"{name}.parquet")
            self._rows[name] = 0
        stream.append(frame)
        self._rows[name] = stream.rows

    def write_table(self, name: str, frame: pd.DataFrame) -> None:
        """Write a whole table at once (as one append, but all-None columns keep pandas' own null type)."""
        self._check_open()
        self._claim(name)
        data = _parquet_bytes(frame)
        _write_synced(self.tmp / f"{name}.parquet", data)
        self._files[f"{name}.parquet"] = hashlib.sha256(data).hexdigest()
        self._rows[name] = int(len(frame))
        self._columns[name] = [str(c) for c in frame.columns]

    def add_file(self, name: str, content: bytes | Path) -> None:
        """Add an extra file ("ranker.txt" or "models/ranker.txt"): bytes, or the path of a file to copy."""
        self._check_open()
        _check_extra_name(name)
        if name in self._files or (name.endswith(".parquet") and name[: -len(".parquet")] in self._rows):
            raise ArtifactError(f"{name} is already in the artifact")
        if "/" in name:
            sub = name.split("/")[0]
            if sub not in self._sub_folders:
                (self.tmp / sub).mkdir(exist_ok=True)
                self._sub_folders.add(sub)
        if isinstance(content, Path):
            self._files[name] = _copy_synced(content, self.tmp / name)
        else:
            data = bytes(content)
            _write_synced(self.tmp / name, data)
            self._files[name] = hashlib.sha256(data).hexdigest()

    def _claim(self, name: str) -> None:
        """Reserve a new table's name: a plain file name, not used yet."""
        if "/" in name:
            raise ArtifactError(f"bad table name {name!r}")
        _check_extra_name(f"{name}.parquet")
        if name in self._rows or f"{name}.parquet" in self._files:
            raise ArtifactError(f"table {name!r} is already in the artifact")

    def commit(self, manifest: Mapping[str, Any]) -> Path:
        """Check, finish every file, write manifest.json last and rename the folder into place; return its path.

        `manifest` carries what the caller knows (data_window, pick_date, config_hash, weights_hash,
        metrics, ...); version, created_at, libraries, row counts per table and the files' sha256 are added here.
        """
        self._check_open()
        try:
            missing = [name for name in REQUIRED_TABLES if name not in self._rows]
            if missing:
                raise ArtifactError(f"tables missing from the artifact: {missing}")
            for name in REQUIRED_TABLES:
                have = self._streams[name].columns if name in self._streams else self._columns[name]
                absent = [c for c in REQUIRED_COLUMNS[name] if c not in have]
                if absent:
                    raise ArtifactError(f"table {name!r} lacks columns {absent}")
            if "config_hash" in manifest and str(manifest["config_hash"]) != self.config_hash:
                raise ArtifactError(f"manifest config_hash {manifest['config_hash']!r} is not the writer's "
                                    f"{self.config_hash!r}")
            for name, stream in self._streams.items():
                self._files[f"{name}.parquet"] = stream.close()
            for sub in self._sub_folders:
                _fsync_dir(self.tmp / sub)
            full = {
                **dict(manifest),
                "version": self.version,
                "created_at": self.now.astimezone(timezone.utc).isoformat(),
                "libraries": library_versions(),
                "tables": dict(self._rows),
                "files": dict(self._files),
            }
            payload = json.dumps(full, ensure_ascii=False, indent=2, sort_keys=True, default=_json_default)
            _write_synced(self.tmp / MANIFEST, payload.encode("utf-8"))
            _fsync_dir(self.tmp)
            os.rename(self.tmp, self.final)
            self._state = "committed"  # published: from here on a failure must not remove anything
            _fsync_dir(self.root)
        except BaseException:
            self.abort()
            raise
        return self.final

    def abort(self) -> None:
        """Drop everything written so far (the temp folder); the previous artifact stays the latest."""
        if self._state == "committed":
            return
        self._state = "aborted"
        for stream in self._streams.values():
            stream.discard()
        shutil.rmtree(self.tmp, ignore_errors=True)


def write_artifact(
    root: str | Path,
    tables: Mapping[str, pd.DataFrame],
    manifest: Mapping[str, Any],
    extra_files: Mapping[str, bytes | Path] | None = None,
    now: datetime | None = None,
) -> Path:
    """Write tables (Parquet) + extra files + manifest into a new version folder atomically; return its path.

    `manifest` carries what the caller knows (data_window, pick_date, config_hash, weights_hash,
    metrics, ...); version, created_at, libraries and the files' sha256 are added here.
    """
    missing = [name for name in REQUIRED_TABLES if name not in tables]
    if missing:
        raise ArtifactError(f"tables missing from the artifact: {missing}")
    with ArtifactWriter(root, str(manifest.get("config_hash", "")), now) as writer:
        for name, frame in tables.items():
            writer.write_table(name, frame)
        for name, content in (extra_files or {}).items():
            writer.add_file(name, content)
        return writer.commit(manifest)


def _check_extra_name(name: str) -> None:
    """A file name, or one sub-folder and a file name ("models/ranker.txt"); no hidden parts, no escape."""
    parts = name.split("/")
    if len(parts) > 2 or any(not p or p.startswith(".") for p in parts) or name == MANIFEST or "\\" in name:
        raise ArtifactError(f"bad extra file name {name!r}")


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (datetime, pd.Timestamp)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The parsed manifest of an artifact folder; ArtifactError when absent or unparseable."""
    file = Path(path) / MANIFEST
    try:
        manifest = json.loads(file.read_text("utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{file} is missing (incomplete artifact)") from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{file} cannot be parsed: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ArtifactError(f"{file} has no files section")
    return manifest


def list_artifacts(root: str | Path) -> list[Path]:
    """Complete artifacts under root (manifest present and parseable), oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found: list[tuple[str, str, Path]] = []
    for child in root.iterdir():
        if child.name.startswith(".") or not child.is_dir():
            continue
        try:
            manifest = read_manifest(child)
        except ArtifactError:
            continue
        found.append((str(manifest.get("created_at", "")), child.name, child))
    return [p for _, _, p in sorted(found)]


def latest_artifact(root: str | Path) -> Path | None:
    """The newest complete artifact under root, or None."""
    found = list_artifacts(root)
    return found[-1] if found else None


@dataclass
class Artifact:
    """A loaded artifact with an index for O(candidates of the group) per-request access."""

    path: Path
    manifest: dict[str, Any]
    groups: pd.DataFrame
    products: pd.DataFrame
    candidates: pd.DataFrame
    segment_candidates: pd.DataFrame
    picks: pd.DataFrame
    _group_rows: dict[str, int] = field(default_factory=dict, repr=False)
    _cand_slices: dict[str, slice] = field(default_factory=dict, repr=False)
    _seg_slices: dict[str, slice] = field(default_factory=dict, repr=False)
    _cand_arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _seg_arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # Sorting once makes each group's candidates one contiguous slice: a view, no copy, per request.
        self.candidates = self.candidates.sort_values(["group_id"], kind="stable").reset_index(drop=True)
        self.segment_candidates = self.segment_candidates.sort_values(["segment"], kind="stable").reset_index(drop=True)
        self.groups = self.groups.reset_index(drop=True)
        self._group_rows = {str(g): i for i, g in enumerate(self.groups["group_id"].tolist())}
        self._cand_slices = _slices(self.candidates["group_id"])
        self._seg_slices = _slices(self.segment_candidates["segment"])
        self._cand_arrays = _numpy_columns(self.candidates)
        self._seg_arrays = _numpy_columns(self.segment_candidates)

    @property
    def version(self) -> str:
        """The artifact's version string."""
        return str(self.manifest.get("version", self.path.name))

    def __contains__(self, group_id: object) -> bool:
        return str(group_id) in self._group_rows

    def __len__(self) -> int:
        return len(self._group_rows)

    def __getitem__(self, group_id: str) -> pd.DataFrame:
        """The candidates of a known group (may be empty); KeyError naming an unknown group."""
        if group_id not in self._group_rows:
            raise KeyError(f"unknown group_id {group_id!r}")
        return self.candidates.iloc[self._cand_slices.get(group_id, slice(0, 0))]

    def group(self, group_id: str) -> dict[str, Any]:
        """The group's row (seller_type, segment, cold_start, ...) as a dict; KeyError naming an unknown group."""
        try:
            row = self._group_rows[group_id]
        except KeyError:
            raise KeyError(f"unknown group_id {group_id!r}") from None
        return {c: _py(self.groups[c].iat[row]) for c in self.groups.columns}

    def group_ids(self) -> list[str]:
        """All group ids in the artifact."""
        return list(self._group_rows)

    def candidate_arrays(self, group_id: str) -> dict[str, np.ndarray]:
        """The group's candidates as column → numpy view (no copy); empty arrays when it has none."""
        sl = self._cand_slices.get(group_id, slice(0, 0))
        return {c: a[sl] for c, a in self._cand_arrays.items()}

    def segment_arrays(self, segment: str) -> dict[str, np.ndarray]:
        """A segment's candidates (for cold groups) as column → numpy view."""
        sl = self._seg_slices.get(segment, slice(0, 0))
        return {c: a[sl] for c, a in self._seg_arrays.items()}

    def segment_candidates_of(self, segment: str) -> pd.DataFrame:
        """A segment's candidates as a DataFrame."""
        return self.segment_candidates.iloc[self._seg_slices.get(segment, slice(0, 0))]

    def picks_of(self, group_id: str) -> pd.DataFrame:
        """The precomputed default-weights picks of a group, by rank."""
        return self.picks[self.picks["group_id"] == group_id].sort_values("rank")


def _numpy_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    # Plain numpy (object for text): slicing Arrow-backed string arrays per request costs far more.
    out: dict[str, np.ndarray] = {}
    for col in frame.columns:
        series = frame[col]
        numeric = pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
        out[col] = series.to_numpy() if numeric else series.to_numpy(dtype=object)
    return out


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _slices(keys: pd.Series) -> dict[str, slice]:
    values = keys.astype(str).to_numpy()
    if len(values) == 0:
        return {}
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    return {str(values[s]): slice(int(s), int(e)) for s, e in zip(starts, ends)}


def load_artifact(path: str | Path) -> Artifact:
    """Load and verify an artifact: every listed file's sha256, every required table and column."""
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"{path} is not an artifact folder")
    manifest = read_manifest(path)
    files: dict[str, str] = manifest["files"]
    for name in REQUIRED_TABLES:
        if f"{name}.parquet" not in files:
            raise ArtifactError(f"table {name!r} is not listed in the manifest")
    root = path.resolve()
    for name, digest in files.items():
        file = path / name
        # A manifest is data: it may only name files inside its own folder (no ../../key_pepper, no absolute path).
        parts = name.split("/")
        if (not isinstance(name, str) or len(parts) > 2 or any(not p or p.startswith(".") for p in parts)
                or "\\" in name or name.startswith("/") or not file.resolve().is_relative_to(root)):
            raise ArtifactError(f"the manifest lists {name!r}, which is not a file of the artifact folder")
        if not file.is_file():
            raise ArtifactError(f"{name} is listed in the manifest but missing")
        if sha256_file(file) != digest:
            raise ArtifactError(f"{name} is corrupt: sha256 does not match the manifest")
    tables: dict[str, pd.DataFrame] = {}
    for name in REQUIRED_TABLES:
        try:
            frame = pd.read_parquet(path / f"{name}.parquet")
        except Exception as exc:  # noqa: BLE001 - any reader failure means the artifact is unusable
            raise ArtifactError(f"{name}.parquet cannot be read: {exc}") from None
        absent = [c for c in REQUIRED_COLUMNS[name] if c not in frame.columns]
        if absent:
            raise ArtifactError(f"table {name!r} lacks columns {absent}")
        tables[name] = frame
    for key in ("group_id", "product_id", "segment", "seller_type", "category", "brand"):
        for frame in tables.values():
            if key in frame.columns:
                frame[key] = frame[key].fillna("").astype(str)
    return Artifact(path=path, manifest=manifest, **tables)


def load_latest(root: str | Path) -> Artifact | None:
    """Load the newest complete artifact under root, or None when there is none."""
    path = latest_artifact(root)
    return load_artifact(path) if path else None
