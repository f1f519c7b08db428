"""Evaluate the tuned blend against tuned baselines on the demo sample world (test = last 7 days).

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/eval_sample.py [--groups 2000 --products 2000 --days 60] [--model learned]
Prints the headline table, the lift of NDCG@10 over the best baseline (target ≥ 1.3×), and the blend's fit time.
"""

from __future__ import annotations

import argparse
import time

from features.sample_world import generate
from contracts.config import Config
from cli.commands import add_sample_world_options
from training.evaluate import EvalOptions, run_evaluation, time_split, Frames
from training.report import table, write_report


def main() -> None:
    """Generate, split, tune, evaluate, print."""
    parser = add_sample_world_options(argparse.ArgumentParser())
    parser.add_argument("--model", choices=["blend", "learned"], default="blend",
                        help="the model: the tuned blend of sources, or the LambdaRank blend learned on the validation split")
    parser.add_argument("--out", default="reports/eval_sample")
    args = parser.parse_args()
    start = time.perf_counter()
    world = generate(seed=args.seed, groups=args.groups, products=args.products, days=args.days)
    train, test, cutoff = time_split(Frames.of(world), test_days=7)
    print(f"generated in {time.perf_counter() - start:.1f}s: {len(world.orders)} orders, {len(world.pushes)} pushes; cut-off {cutoff}")
    result = run_evaluation(train, test, Config(), EvalOptions(model=args.model), dataset="sample world", cutoff=cutoff)
    print(table(result, "ndcg@10"))
    print("target ×1.30 on NDCG@10")
    print(f"fit of every model on the full training data: {sum(result.fit_seconds.values()):.1f}s")
    print("Spearman vs truth:", {k: round(v, 3) for k, v in result.spearman.items()})
    print("report:", write_report(result, args.out))


if __name__ == "__main__":
    main()
