"""The artifact the service answers from, swapped atomically for a newer one.

Requests take `holder.current` once and use that object throughout, so a swap never changes an
artifact under a request in flight. A newer artifact is loaded and verified completely before the
swap; one that is incomplete or corrupt is refused with a logged reason and the previous one keeps
serving. A background thread can poll the folder (the file watch).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from contracts.artifact import Artifact, ArtifactError, list_artifacts, load_artifact
from serving.polling import Poller

log = logging.getLogger("quanxuan.artifacts")


@dataclass
class Served:
    """A loaded artifact plus the look-ups the service needs on every request."""

    artifact: Artifact
    product_rows: dict[str, int] = field(default_factory=dict)
    seller_groups: dict[str, list[str]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    pick_day: date | None = None  # the day the artifact's picks were made for (its manifest's pick_date)

    @classmethod
    def of(cls, artifact: Artifact) -> "Served":
        """Index an artifact: product id -> row, seller id -> its group ids, group id -> its row as a dict."""
        products = {str(p): i for i, p in enumerate(artifact.products["product_id"].tolist())}
        groups = {str(row["group_id"]): row for row in artifact.groups.to_dict("records")}
        for row in groups.values():
            row["seller_id"] = str(row["seller_id"])
        sellers: dict[str, list[str]] = {}
        for gid, row in groups.items():
            sellers.setdefault(row["seller_id"], []).append(gid)
        pick_date = artifact.manifest.get("pick_date")
        return cls(artifact, products, sellers, groups, date.fromisoformat(str(pick_date)) if pick_date else None)

    @property
    def version(self) -> str:
        """The artifact's version."""
        return self.artifact.version

    def group_seller(self, group_id: str) -> str | None:
        """The seller running a group, or None for an unknown group."""
        row = self.groups.get(group_id)
        return None if row is None else row["seller_id"]

    def product(self, product_id: str) -> dict[str, Any] | None:
        """A product's catalogue row, or None."""
        row = self.product_rows.get(product_id)
        if row is None:
            return None
        frame = self.artifact.products
        return {c: _py(frame[c].iat[row]) for c in frame.columns}


def _py(value: Any) -> Any:
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


@dataclass(frozen=True)
class SwapOutcome:
    """What a load attempt did."""

    swapped: bool
    version: str | None
    previous_version: str | None
    reason: str


class ArtifactHolder:
    """Holds the serving artifact and swaps it for newer complete ones."""

    def __init__(self, root: str | Path, on_swap: Callable[[Served], None] | None = None,
                 on_refuse: Callable[[str], None] | None = None) -> None:
        self.root = Path(root)
        self.current: Served | None = None
        self.last_error: str | None = None
        self.on_swap = on_swap  # called with the new Served after each swap
        self.on_refuse = on_refuse  # called with the reason after each refusal
        self._lock = threading.Lock()
        self._refused: dict[Path, float] = {}
        self._watch = Poller("quanxuan-artifact-watch", lambda: self.reload(force=False), "artifact watch")

    @property
    def version(self) -> str | None:
        """Version now serving, or None."""
        current = self.current
        return current.version if current else None

    def _refuse(self, path: Path, reason: str) -> None:
        self.last_error = f"{path.name}: {reason}"
        log.warning("refused artifact %s: %s (still serving %s)", path, reason, self.version)
        try:
            self._refused[path] = (path / "manifest.json").stat().st_mtime
        except OSError:
            self._refused[path] = 0.0
        if self.on_refuse:
            self.on_refuse(reason)

    def _swap(self, artifact: Artifact) -> SwapOutcome:
        previous = self.version
        served = Served.of(artifact)
        self.current = served  # one reference assignment: atomic for readers
        self.last_error = None
        log.info("serving artifact %s (was %s)", served.version, previous)
        if self.on_swap:
            self.on_swap(served)
        return SwapOutcome(True, served.version, previous, "loaded")

    def load_initial(self) -> SwapOutcome:
        """At start-up: the newest artifact that loads, trying older complete ones when the newest is refused."""
        with self._lock:
            candidates = list(reversed(list_artifacts(self.root)))
            if not candidates:
                self.last_error = f"no complete artifact under {self.root}"
                log.warning(self.last_error)
                return SwapOutcome(False, None, None, self.last_error)
            for path in candidates:
                try:
                    return self._swap(load_artifact(path))
                except ArtifactError as exc:
                    self._refuse(path, exc.reason)
            return SwapOutcome(False, None, None, self.last_error or "every artifact was refused")

    def reload(self, force: bool = True) -> SwapOutcome:
        """Swap to the newest complete artifact newer than the one serving that loads cleanly.

        A refused newest artifact does not hide a valid one between it and the one serving (a restart would pick
        that one too). `force=False` (the file watch) skips artifacts already refused unless their manifest changed.
        """
        with self._lock:
            current = self.current
            serving = current.artifact.path.resolve() if current is not None else None
            newer: list[Path] = []
            for path in reversed(list_artifacts(self.root)):
                if serving is not None and path.resolve() == serving:
                    break
                newer.append(path)
            if not newer:
                reason = "already serving the newest artifact" if current is not None else f"no complete artifact under {self.root}"
                return SwapOutcome(False, self.version, self.version, reason)
            refusals: list[str] = []
            for path in newer:
                if not force and self._refused_unchanged(path):
                    refusals.append(f"{path.name} refused earlier")
                    continue
                try:
                    return self._swap(load_artifact(path))
                except ArtifactError as exc:
                    self._refuse(path, exc.reason)
                    refusals.append(f"refused {path.name}: {exc.reason}")
            return SwapOutcome(False, self.version, self.version, "; ".join(refusals))

    def _refused_unchanged(self, path: Path) -> bool:
        """Whether this artifact was refused before and its manifest has not changed since."""
        if path not in self._refused:
            return False
        try:
            return (path / "manifest.json").stat().st_mtime == self._refused[path]
        except OSError:
            return True

    def start_watch(self, interval_seconds: float) -> None:
        """Poll the artifact folder every interval in a daemon thread (no-op when interval is 0)."""
        if interval_seconds <= 0:
            return
        self._watch.start(interval_seconds, first_now=False)

    def stop_watch(self) -> None:
        """Stop the polling thread."""
        self._watch.stop(timeout_seconds=5)
