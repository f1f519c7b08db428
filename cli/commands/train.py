"""Run the daily job: load and validate the data, build features and candidates, train the conversion ranker,
evaluate against the baselines on the last days, and write a new artifact atomically."""

from __future__ import annotations

import argparse

from cli.commands import add_sample_world_options


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of `quanxuan train`."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", metavar="DIR", help="folder with the contract tables (CSV or Parquet)")
    source.add_argument("--sample", action="store_true", help="generate the sample world in memory")
    parser.add_argument("--out", default="artifacts", help="artifact root folder (default: artifacts)")
    parser.add_argument("--config", default=None, help="TOML or JSON configuration file")
    parser.add_argument("--no-eval", action="store_true", help="skip the held-out evaluation (about half the run time)")
    parser.add_argument("--test-days", type=int, default=7, help="days held out by the evaluation")
    add_sample_world_options(parser)
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="score the groups on this Dask scheduler (tcp://host:8786, or 'local'); overrides cluster.scheduler")


def run(args: argparse.Namespace) -> int:
    """Load, train, evaluate, write; prints the artifact path. A failure leaves the previous artifact in place."""
    from contracts.config import Config
    from training.daily import run_daily
    from training.log import default_log

    cfg = Config.load(args.config)
    if args.scheduler is not None:
        cfg.cluster = cfg.cluster.model_copy(update={"scheduler": args.scheduler})
    if args.sample:
        from features.loading import dataset_from_frames
        from features.sample_world import generate

        world = generate(seed=args.seed, groups=args.groups, products=args.products, days=args.days)
        frames = dataset_from_frames(world.tables())
        source = f"sample world seed={args.seed} {args.groups}×{args.products}×{args.days}d"
    else:
        from features.loading import load_dataset

        frames = load_dataset(args.data)
        source = str(args.data)
    default_log(f"loaded and validated {source}: " + ", ".join(f"{k} {len(v):,}" for k, v in frames.tables().items()))
    result = run_daily(frames, cfg, args.out, evaluate=not args.no_eval, test_days=args.test_days, source=source)
    print(result.artifact)
    return 0
