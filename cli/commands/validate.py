"""Check a dataset folder against the data contract and print every problem (optionally quarantine bad rows)."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    """DIR, --quarantine and --rejects."""
    parser.add_argument("dir", help="folder with orders.csv|parquet and optionally products, sellers, groups, pushes")
    parser.add_argument("--quarantine", action="store_true",
                        help="load the good rows and write bad ones to <rejects or DIR>/rejects/<table>.csv")
    parser.add_argument("--rejects", default=None, metavar="OUT",
                        help="folder under which rejects/ is written (default: DIR)")


def run(args: argparse.Namespace) -> int:
    """Validate; exit 1 on any problem unless quarantining (file-level problems always exit 1)."""
    from features.loading import ValidationError, load_dataset

    try:
        ds = load_dataset(args.dir, quarantine=args.quarantine, rejects_dir=args.rejects)
    except ValidationError as err:
        print(err.listing("nothing loaded"))
        return 1
    for problem in ds.report.problems:
        print(problem)
    print(ds.report.summary())
    if ds.report.rejects_dir is not None:
        rejected = sum(t.rejected for t in ds.report.tables.values())
        print(f"{rejected} row(s) quarantined under {ds.report.rejects_dir}")
    else:
        print("no problems.")
    return 0
