"""Export the feedback events the service received as contract CSVs (pushes.csv, orders.csv) for the daily job."""

from __future__ import annotations

import argparse
import os
from datetime import datetime


def configure(parser: argparse.ArgumentParser) -> None:
    """Subcommand export OUT [--since]."""
    parser.add_argument("--config", help="TOML or JSON configuration file.")
    parser.add_argument("--db-url", help="Database URL (default from settings / QUANXUAN_DB_URL).")
    sub = parser.add_subparsers(dest="action", required=True)
    export = sub.add_parser("export", help="Write OUT/pushes.csv and OUT/orders.csv in the data contract.")
    export.add_argument("out", help="Output folder.")
    export.add_argument("--since", help="Only events received at or after this ISO time (with offset), e.g. 2024-05-01T00:00:00+08:00.")


def run(args: argparse.Namespace) -> int:
    """Export the stored events."""
    from contracts.config import Config
    from serving.feedback import TZ, export_feedback
    from serving.storage.factory import open_store

    settings = Config.load(args.config or os.environ.get("QUANXUAN_CONFIG") or None).service
    since = None
    if args.since:
        since = datetime.fromisoformat(args.since)
        since = since if since.tzinfo else since.replace(tzinfo=TZ)
    store = open_store(args.db_url or settings.db_url)
    try:
        counts = export_feedback(store, args.out, since=since)
    finally:
        store.close()
    print(f"wrote {counts['pushes']} pushes and {counts['orders']} orders to {args.out}")
    return 0
