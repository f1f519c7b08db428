"""Generate the sample world (the embedded default dataset) into a folder: five tables plus truth/."""

from __future__ import annotations

import argparse
import time

from cli.commands import add_sample_world_options


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: seed, sizes, window end and file format."""
    parser.add_argument("out", metavar="OUT", help="Folder to write products, sellers, groups, pushes, orders and truth/ into.")
    add_sample_world_options(parser)
    parser.add_argument("--end", default=None, help="Last day of the window, YYYY-MM-DD (default 2025-06-30).")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv", help="File format (default csv).")


def run(args: argparse.Namespace) -> int:
    """Stream the world to OUT block by block and print the row counts."""
    from datetime import date

    from features.sample_world import stream

    end = date.fromisoformat(args.end) if args.end else None
    t0 = time.perf_counter()
    counts = stream(args.seed, args.groups, args.products, args.days, args.out, fmt=args.format, end=end)
    elapsed = time.perf_counter() - t0
    for name, n in counts.items():
        print(f"{name:22s} {n:>12,d} rows")
    print(f"wrote {args.out} ({args.format}) in {elapsed:.1f}s")
    return 0
