"""Ta Feng: train Nov 2000 – Jan 2001, test Feb 2001, new customer-item pairs, full ranking over all items.

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/eval_tafeng.py [--level customer|area_age] [--max-eval-groups N]
Reference (../shared/data/README.md): popularity HR@10 0.0292, tuned EASE 0.0317; target: best tuned baseline × 1.2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from features.adapter import load_tafeng
from recsys.config import Config
from training.evaluate import EvalOptions, Frames, run_evaluation, time_split
from training.report import write_report

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tafeng" / "ta_feng.csv.zip"


def main() -> None:
    """Load, split at 2001-02-01, tune on the last 14 days of January, evaluate, print."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--level", default="customer", choices=["customer", "area_age"])
    parser.add_argument("--max-eval-groups", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    frames = Frames.of(load_tafeng(DATA, level=args.level))
    cutoff = pd.Timestamp("2001-02-01")
    train, test, cutoff = time_split(frames, test_days=28, cutoff=cutoff)
    options = EvalOptions(test_days=28, validation_days=14, new_pairs_only=True, tune_metric="hr@10",
                          max_eval_groups=args.max_eval_groups, max_tune_groups=3000,
                          baselines=("random", "popular", "segment_popular", "item_knn_cosine", "item_knn_bm25", "als", "ease"),
                          blend_sources=("popular", "trending", "segment_popular", "item_knn_cosine", "ease", "als", "repurchase"))
    result = run_evaluation(train, test, Config(), options, dataset=f"Ta Feng ({args.level})", cutoff=cutoff)
    for name, m in sorted(result.metrics.items(), key=lambda kv: -kv[1]["hr@10"]):
        print(f"{name:<20} hr@10 {m['hr@10']:.4f} ndcg@10 {m['ndcg@10']:.4f} recall@20 {m['recall@20']:.4f} fit {result.fit_seconds[name]:.1f}s")
    best, value = result.best_baseline("hr@10")
    print(f"HR@10 lift over best baseline ({best} {value:.4f}): ×{result.lift('hr@10'):.2f} (target ×1.20)")
    print("report:", write_report(result, args.out or f"reports/eval_tafeng_{args.level}"))


if __name__ == "__main__":
    main()
