"""A call repeated in a daemon thread until stopped: the artifact watch and the picks warmer both run one."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("quanxuan.serving")


class Poller:
    """Calls `fn` every `interval_seconds` in a daemon thread; a call that fails is logged and the next one runs."""

    def __init__(self, name: str, fn: Callable[[], object], what: str) -> None:
        self.name = name
        self.fn = fn
        self.what = what  # for the log line of a failed call
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        """Whether `stop` was called: a long call may check it and return early."""
        return self._stop.is_set()

    def start(self, interval_seconds: float, first_now: bool) -> None:
        """Start the thread (no-op when running); `first_now` makes the first call at once, else after one interval."""
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            if not first_now and self._stop.wait(interval_seconds):
                return
            while not self._stop.is_set():
                try:
                    self.fn()
                except Exception:  # noqa: BLE001 - the thread must outlive any single bad call
                    log.exception("%s failed", self.what)
                self._stop.wait(interval_seconds)

        self._thread = threading.Thread(target=loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_seconds: float = 10.0) -> None:
        """Stop the thread and wait for it (at most `timeout_seconds`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_seconds)
            self._thread = None
