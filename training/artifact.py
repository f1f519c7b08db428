"""The versioned artifact the daily job writes and the service reads.

Layout: `<root>/<version>/` holding one Parquet file per table (`groups`, `products`,
`candidates`, `segment_candidates`, `picks`, and the optional `candidate_features`), extra files
(the daily job adds `models/ranker.txt`, LightGBM's text model, and `models/ranker.json`, its
features and calibrator; see `recsys.ranker.load_ranker`), and `manifest.json` (written last). The version is the UTC time `YYYYMMDDTHHMMSSZ` plus the short config hash.

Writes are atomic: everything goes into `<root>/.tmp-<version>/`, every file is fsynced,
then the folder is renamed in one `os.rename`. A crash or kill mid-write leaves at most a
`.tmp-*` folder, which readers ignore, so the previous artifact stays the latest.
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


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.reset_index(drop=True).to_parquet(buf, index=False)
    return buf.getvalue()


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
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    now = now or datetime.now(timezone.utc)
    base = make_version(str(manifest.get("config_hash", "")), now)
    version, n = base, 1
    while (root / version).exists() or (root / (TMP_PREFIX + version)).exists():
        n += 1
        version = f"{base}.{n}"
    tmp = root / (TMP_PREFIX + version)
    final = root / version
    tmp.mkdir()
    try:
        files: dict[str, str] = {}
        for name, frame in tables.items():
            data = _parquet_bytes(frame)
            _write_synced(tmp / f"{name}.parquet", data)
            files[f"{name}.parquet"] = hashlib.sha256(data).hexdigest()
        for name, content in (extra_files or {}).items():
            _check_extra_name(name)
            data = Path(content).read_bytes() if isinstance(content, Path) else bytes(content)
            if "/" in name:
                (tmp / name).parent.mkdir(exist_ok=True)
            _write_synced(tmp / name, data)
            files[name] = hashlib.sha256(data).hexdigest()
        for sub in {name.split("/")[0] for name in (extra_files or {}) if "/" in name}:
            _fsync_dir(tmp / sub)
        full = {
            **dict(manifest),
            "version": version,
            "created_at": now.astimezone(timezone.utc).isoformat(),
            "libraries": library_versions(),
            "tables": {name: int(len(frame)) for name, frame in tables.items()},
            "files": files,
        }
        payload = json.dumps(full, ensure_ascii=False, indent=2, sort_keys=True, default=_json_default)
        _write_synced(tmp / MANIFEST, payload.encode("utf-8"))
        _fsync_dir(tmp)
        os.rename(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


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
    for name, digest in files.items():
        file = path / name
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
