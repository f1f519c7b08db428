"""Evaluate the candidate blend against tuned baselines on a time split (or given train/test folders)."""

from __future__ import annotations

import argparse

from training.commands import add_sample_world_options


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of `quanxuan evaluate`."""
    parser.add_argument("data", nargs="?", default="sample",
                        help="'sample' (generated world), a contract folder, tafeng:<csv.zip>[:area_age], or beibei:<folder>")
    parser.add_argument("--test", default=None, help="a second contract folder used as the test window (no time split)")
    parser.add_argument("--test-days", type=int, default=7, help="days after the cut-off that form the test window")
    parser.add_argument("--cutoff", default=None, help="cut-off date (default: the last --test-days days are the test)")
    parser.add_argument("--validation-days", type=int, default=7, help="last days of the training data used to tune")
    parser.add_argument("--new-pairs-only", action="store_true", help="exclude items each group bought in training")
    parser.add_argument("--no-tune", action="store_true", help="use configured hyper-parameters and equal blend weights")
    parser.add_argument("--max-eval-groups", type=int, default=None, help="subsample test groups (seeded)")
    add_sample_world_options(parser)
    parser.add_argument("--config", default=None, help="TOML or JSON configuration file")
    parser.add_argument("--out", default="reports/evaluation", help="folder for result.json, report.md and plots")


def run(args: argparse.Namespace) -> int:
    """Load, split, tune, evaluate, write the report and print the headline."""
    from recsys.config import Config
    from training.evaluate import EvalOptions, Frames, load_frames, run_evaluation, time_split
    from training.report import write_report

    cfg = Config.load(args.config)
    options = EvalOptions(test_days=args.test_days, validation_days=args.validation_days,
                          new_pairs_only=args.new_pairs_only, tune=not args.no_tune,
                          max_eval_groups=args.max_eval_groups, seed=args.seed)
    frames, name = load_frames(args.data, seed=args.seed, groups=args.groups, products=args.products, days=args.days)
    if args.test:
        test, _ = load_frames(args.test)
        train, cutoff = frames, None
    elif isinstance(frames, tuple):
        train, test = frames
        cutoff = None
    else:
        train, test, cutoff = time_split(Frames.of(frames), args.test_days, args.cutoff)
    result = run_evaluation(train, test, cfg, options, dataset=name, cutoff=cutoff)
    path = write_report(result, args.out)
    for metric in ("ndcg@10", "hr@10"):
        best, value = result.best_baseline(metric)
        print(f"{metric}: {result.model_name} {result.metrics[result.model_name][metric]:.4f}, best baseline {best} {value:.4f}, "
              f"×{result.lift(metric):.2f}")
    print(f"report: {path}")
    return 0
