"""Benchmark: calibration of the conversion ranker on the sample world (log loss, AUC, ECE with 15 bins).

Builds the ranker's examples once (pushes of the last `example_days` labelled by an order within
`label_window_days`, features from a snapshot at their start; or candidate examples), then fits with
isotonic, Platt and no calibration, and prints each against the smoothed popularity-rate baseline on
the last half of the validation window.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/ranker_calibration.py [--examples candidates]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.sample_world import generate  # noqa: E402
from contracts.config import Config  # noqa: E402
from recsys.ranker import fit_and_evaluate  # noqa: E402
from training.examples import ranker_examples  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Print one line per calibration method plus the baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=2000)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--examples", choices=("pushes", "exposure", "candidates"), default="pushes")
    args = parser.parse_args(argv)
    world = generate(seed=7, groups=args.groups, products=args.products, days=args.days)
    cfg = Config()
    cfg.ranker.examples = args.examples
    if args.examples == "candidates":
        cfg.ranker.label_window_days = 7
    now = pd.Timestamp(world.orders["ordered_at"].max()) + pd.Timedelta(seconds=1)
    t0 = time.perf_counter()
    examples = ranker_examples(world, now, cfg, log=lambda _: None)
    print(f"{len(examples):,} examples ({args.examples}), positive rate {examples['label'].mean():.4f}, "
          f"built in {time.perf_counter() - t0:.1f}s")
    print(f"{'model':<24}{'log loss':>10}{'AUC':>8}{'ECE':>8}{'mean p':>9}{'rate':>8}")
    baseline = None
    for method in ("isotonic", "platt", "none"):
        cfg.ranker.calibration = method
        t0 = time.perf_counter()
        _, metrics = fit_and_evaluate(examples, cfg.ranker)
        m = metrics["calibrated"]
        print(f"{'ranker ' + method:<24}{m['log_loss']:>10.4f}{m['auc']:>8.4f}{m['ece']:>8.4f}{m['mean_p']:>9.4f}"
              f"{m['rate']:>8.4f}   ({time.perf_counter() - t0:.1f}s, rows {metrics['rows']})")
        baseline = metrics["popularity_rate"]
    b = baseline
    print(f"{'popularity rate':<24}{b['log_loss']:>10.4f}{b['auc']:>8.4f}{b['ece']:>8.4f}{b['mean_p']:>9.4f}{b['rate']:>8.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
