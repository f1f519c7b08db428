"""Map an interactions file (any columns, named by flags or a preset) onto the contract tables in a folder."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    """INPUT, OUT, --preset, the adapter's column flags and output options."""
    from features.adapter import PRESETS, add_flags

    parser.add_argument("input", metavar="INPUT", help="interactions file: CSV/TSV, zipped or not")
    parser.add_argument("out", metavar="OUT", help="folder to write products, sellers, groups, pushes, orders into")
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="start from a preset's flags (explicit flags override them)")
    add_flags(parser)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet", help="output format (default parquet)")
    parser.add_argument("--append", action="store_true",
                        help="add to the tables already in OUT (give each input its own --id-prefix)")
    parser.add_argument("--quarantine", action="store_true",
                        help="keep going past bad lines; they go to OUT/rejects/<table>.csv")


def run(args: argparse.Namespace) -> int:
    """Adapt, write, and print the row counts; exit 1 with every problem when the input breaks the contract."""
    import time

    from features.adapter import PRESETS, adapt, spec_from_namespace
    from features.validation import ValidationError

    try:
        spec = spec_from_namespace(args, PRESETS[args.preset] if args.preset else None)
    except ValueError as err:
        print(f"adapt: {err}")
        return 2
    t0 = time.perf_counter()
    try:
        ds = adapt(args.input, args.out, spec, fmt=args.format, append=args.append, quarantine=args.quarantine)
    except ValidationError as err:
        print(err.listing("nothing written"))
        return 1
    for problem in ds.report.problems:
        print(problem)
    print(ds.report.summary())
    print(f"clock: {ds.clock} (recorded in {args.out}/clock.json)")
    print(f"wrote {args.out} in {time.perf_counter() - t0:.1f}s")
    return 0
