"""Evaluate the served model, the candidate blend and tuned baselines on a held-out test (or given train/test folders)."""

from __future__ import annotations

import argparse

from cli.commands import add_sample_world_options


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of `quanxuan evaluate`."""
    parser.add_argument("data", nargs="?", default="sample",
                        help="'sample' (generated world), a contract folder, tafeng:<csv.zip>[:area_age], or beibei:<folder>")
    parser.add_argument("--test", default=None, help="a second contract folder used as the test (no split); validation "
                        "is carved from the training data the way this test was made")
    parser.add_argument("--test-days", type=int, default=7, help="days after the cut-off that form the test window")
    parser.add_argument("--cutoff", default=None, help="cut-off date (default: the last --test-days days are the test)")
    parser.add_argument("--validation-days", type=int, default=None,
                        help="days of a validation window (default: as long as the test window)")
    parser.add_argument("--new-pairs-only", action="store_true", help="exclude items each group bought in training")
    parser.add_argument("--no-tune", action="store_true", help="use configured hyper-parameters and equal blend weights")
    parser.add_argument("--no-served", action="store_true",
                        help="skip the model `quanxuan train` serves (the ranker and blend; the slowest to build)")
    parser.add_argument("--max-eval-groups", type=int, default=None, help="subsample test groups (seeded)")
    parser.add_argument("--lists", default=None, metavar="FILE",
                        help="write every model's top K per group as Parquet: model, group_id, rank, product_id, score")
    add_sample_world_options(parser)
    parser.add_argument("--config", default=None, help="TOML or JSON configuration file")
    parser.add_argument("--out", default="reports/evaluation", help="folder for result.json, report.md and plots")


def run(args: argparse.Namespace) -> int:
    """Load, split, tune, evaluate, write the report (and the lists) and print the headline."""
    from pathlib import Path

    from contracts.config import Config
    from training.evaluate import EvalOptions, Frames, load_frames, run_evaluation, split_test
    from training.report import headline_lines, write_report

    cfg = Config.load(args.config)
    options = EvalOptions(test_days=args.test_days, validation_days=args.validation_days,
                          new_pairs_only=args.new_pairs_only, tune=not args.no_tune, served=not args.no_served,
                          max_eval_groups=args.max_eval_groups, seed=args.seed, keep_lists=args.lists is not None)
    frames, name = load_frames(args.data, seed=args.seed, groups=args.groups, products=args.products, days=args.days)
    cutoff = None
    if args.test:
        test, _ = load_frames(args.test)
        train = frames
    elif isinstance(frames, tuple):
        train, test = frames
    else:
        train, test, cutoff = split_test(Frames.of(frames), args.test_days, args.cutoff, args.seed)
    result = run_evaluation(train, test, cfg, options, dataset=name, cutoff=cutoff)
    path = write_report(result, args.out)
    if args.lists:
        lists = Path(args.lists)
        lists.parent.mkdir(parents=True, exist_ok=True)
        result.lists.to_parquet(lists, index=False)
        print(f"lists: {lists} ({len(result.lists):,} rows)")
    for line in headline_lines(result):
        print(line)
    print(f"report: {path}")
    return 0
