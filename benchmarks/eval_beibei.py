"""Beibei: train on tune.txt (converted group buys) and invalid.txt (failed launches, as pushes), test initiator → item on test.txt.

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/eval_beibei.py [--max-eval-groups N]
Reference (../shared/data/README.md): untuned ALS HR@10 0.0190; target ×1.3. Items seen in training are excluded.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from features.adapter import load_beibei
from recsys.config import Config
from training.evaluate import EvalOptions, Frames, run_evaluation
from training.report import write_report

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "beibei_groupbuy"


def main() -> None:
    """Train on tune + invalid, evaluate on test (new pairs only), print."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-eval-groups", type=int, default=20000)
    parser.add_argument("--out", default="reports/eval_beibei")
    args = parser.parse_args()
    f = load_beibei(DATA)
    test_start = f["test"]["ordered_at"].min()
    # Pushes of tune and invalid launches lie before the test clock; the test's own pushes are left out.
    pushes = f["pushes"][f["pushes"]["pushed_at"] < test_start]
    train = Frames(f["products"], f["sellers"], f["groups"], pushes, f["tune"])
    test = Frames(f["products"], f["sellers"], f["groups"], None, f["test"])
    options = EvalOptions(new_pairs_only=True, tune_metric="hr@10", validation_days=30, max_eval_groups=args.max_eval_groups,
                          baselines=("random", "popular", "item_knn_cosine", "item_knn_bm25", "als", "ease"),
                          blend_sources=("popular", "item_knn_cosine", "item_knn_bm25", "ease", "als", "exposure"))
    result = run_evaluation(train, test, Config(), options, dataset="Beibei", cutoff=test_start)
    for name, m in sorted(result.metrics.items(), key=lambda kv: -kv[1]["hr@10"]):
        print(f"{name:<20} hr@10 {m['hr@10']:.4f} ndcg@10 {m['ndcg@10']:.4f} fit {result.fit_seconds[name]:.1f}s")
    print(f"HR@10 blend {result.metrics['blend']['hr@10']:.4f} vs untuned-ALS reference 0.0190: ×{result.metrics['blend']['hr@10'] / 0.0190:.2f} (target ×1.30)")
    print("report:", write_report(result, args.out))


if __name__ == "__main__":
    main()
