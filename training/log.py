"""Progress lines of the daily job: the `Log` callable every step takes, its plain default, a progress bar on a
terminal, and the slowest entries of a timing table for a log line.

Their own module because every part of the job (examples, day model, blocks, the job itself) logs, and the parts
import each other downwards only.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Iterable, Mapping

Log = Callable[[str], None]


def default_log(message: str) -> None:
    """Plain, timestamped progress lines (stderr)."""
    print(f"[quanxuan {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def progress(items: Iterable[Any], total: int, desc: str) -> Iterable[Any]:
    """tqdm on a terminal; the bare iterable otherwise (the step's log line says what happens)."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(items, total=total, desc=desc, leave=False)
    return items


def slowest(seconds: Mapping[str, float], n: int = 4) -> str:
    """The `n` largest entries of a timing table, for a log line: 'als 120s, ease 40s, …'."""
    return ", ".join(f"{k} {v:.0f}s" for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])[:n])
