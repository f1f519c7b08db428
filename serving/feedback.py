"""Feedback from seller apps: validate a batch of push or order events exactly as the loaders validate
file rows (`features.validation`), and export what was stored as contract CSVs (pushes.csv,
orders.csv) for the next daily job to merge.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from contracts.schema import TABLES, TIMEZONE
from features.validation import check_frame, final_dtypes, reference_problems
from serving.schemas import Rejected
from serving.storage.base import EVENT_COLUMNS, EventTable, Store

TZ = ZoneInfo(TIMEZONE)
TIME_COLUMN: dict[str, str] = {"pushes": "pushed_at", "orders": "ordered_at"}
# Clocks on phones drift; an event further ahead than this is a bug, not a drift.
MAX_CLOCK_SKEW = timedelta(hours=1)


@dataclass
class Checked:
    """A batch split into valid events, rejected ones (index + reason), in-batch repeats and events outside the caller's scope."""

    valid: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    repeats: int = 0
    foreign: list[int] = field(default_factory=list)


def _shape_problem(raw: Any, allowed: set[str]) -> str | None:
    """Why an event cannot even become a table row, or None."""
    if not isinstance(raw, dict):
        return "an event must be a JSON object"
    event_id = raw.get("event_id")
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 128:
        return "event_id: required, a non-empty string of at most 128 characters"
    unknown = sorted(set(raw) - allowed - {"event_id"})
    if unknown:
        return f"unknown fields {unknown}"
    nested = sorted(k for k, v in raw.items() if isinstance(v, (dict, list)))
    if nested:
        return f"{', '.join(nested)}: must be a single value, not a list or object"
    return None


def _plain(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value


def check_events(
    table: EventTable,
    events: list[Any],
    group_seller: Callable[[str], str | None],
    product_ids: Iterable[str],
    group_ids: Iterable[str],
    may_write: Callable[[str], bool],
    now: datetime | None = None,
) -> Checked:
    """Validate a batch against the contract and the serving artifact's ids, and check the caller's scope.

    `group_seller(group_id)` gives the seller running a known group; `may_write(seller_id)` says
    whether the caller may write feedback for that seller's groups. Naive timestamps are read in
    Asia/Shanghai, as the loaders read them. An event id repeated inside the batch counts once.
    """
    now = now or datetime.now(TZ)
    contract = TABLES[table]
    allowed = set(contract.names)
    out = Checked()
    rows: list[dict[str, Any]] = []
    indexes: list[int] = []
    seen: set[str] = set()
    for index, raw in enumerate(events):
        problem = _shape_problem(raw, allowed)
        if problem:
            event_id = raw.get("event_id") if isinstance(raw, dict) and isinstance(raw.get("event_id"), str) else None
            out.rejected.append(Rejected(index=index, event_id=event_id, reason=problem))
            continue
        if raw["event_id"] in seen:
            out.repeats += 1
            continue
        seen.add(raw["event_id"])
        rows.append(raw)
        indexes.append(index)
    if not rows:
        return out
    frame = pd.DataFrame.from_records([{c: r.get(c) for c in contract.names if c in r} for r in rows], index=range(len(rows)))
    checked = check_frame(contract, frame)
    problems = list(checked.file_problems)
    if checked.frame is not None:
        problems += checked.problems
        problems += reference_problems(contract, checked.frame, checked.rows, table,
                                       {"groups": set(group_ids), "products": set(product_ids)})
    reasons: dict[int, list[str]] = {}
    for p in problems:
        targets = range(len(rows)) if p.row is None else [p.row - 1]
        for i in targets:
            value = "" if p.value is None else f" {p.value!r}"
            reasons.setdefault(i, []).append(f"{p.column or 'event'}{value}: {p.reason}")
    good = [i for i in range(len(rows)) if i not in reasons]
    typed = final_dtypes(contract, checked.frame.iloc[good]) if good and checked.frame is not None else None
    time_col = TIME_COLUMN[table]
    for position, i in enumerate(good):
        event = {c: _plain(v) for c, v in typed.iloc[position].items()} if typed is not None else {}
        event = {c: (None if pd.isna(v) else v) if not isinstance(v, (list, dict)) else v for c, v in event.items()}
        event["event_id"] = rows[i]["event_id"]
        if event[time_col] > now + MAX_CLOCK_SKEW:
            reasons[i] = [f"{time_col} {event[time_col].isoformat()}: is in the future"]
            continue
        seller = group_seller(event["group_id"])
        if seller is None or not may_write(seller):
            out.foreign.append(indexes[i])
            continue
        event["seller_id"] = seller
        out.valid.append(event)
    for i, why in sorted(reasons.items()):
        out.rejected.append(Rejected(index=indexes[i], event_id=rows[i]["event_id"], reason="; ".join(why)))
    out.rejected.sort(key=lambda r: r.index)
    return out


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(TZ).isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _scoped_order_ids(rows: list[dict[str, Any]]) -> list[str]:
    """Order ids for the export: as sent, except an id that two sellers used, which becomes `order_id@seller_id`.

    Ids are unique per seller in the store; the contract wants them unique in the file. Qualifying every
    use of a shared id (not all but the first) keeps both orders and lets no seller claim another's id.
    """
    sellers: dict[str, set[str]] = {}
    for row in rows:
        sellers.setdefault(row["order_id"], set()).add(row["seller_id"])
    return [row["order_id"] if len(sellers[row["order_id"]]) == 1 else f"{row['order_id']}@{row['seller_id']}"
            for row in rows]


def export_feedback(store: Store, out_dir: str | Path, since: datetime | None = None) -> dict[str, int]:
    """Write pushes.csv and orders.csv (data-contract columns, times in Asia/Shanghai with offset); returns row counts.

    Each file is written beside its target and renamed into place, so a failed export leaves the previous files whole.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for table in ("pushes", "orders"):
        contract = TABLES[table]
        columns = [c for c in contract.names if c in EVENT_COLUMNS[table]]
        rows = store.events(table, since=since)  # type: ignore[arg-type]
        if table == "orders":
            rows = [{**row, "order_id": oid} for row, oid in zip(rows, _scoped_order_ids(rows))]
        target = out / f"{table}.csv"
        partial = out / f".{table}.csv.partial"
        with open(partial, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            for row in rows:
                writer.writerow([_cell(row[c]) for c in columns])
        partial.replace(target)
        counts[table] = len(rows)
    return counts
