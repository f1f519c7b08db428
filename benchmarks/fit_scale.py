"""Fit time and peak memory of the candidate sources at 10k, 100k and 1M groups (sample world).

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/fit_scale.py [--sizes 10000 100000 1000000] [--products 2000 --days 30]
Each size runs in a fresh process so that peak RSS (ru_maxrss) belongs to that size alone.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def one(groups: int, products: int, days: int) -> dict[str, float]:
    """Generate a world, build TrainData, fit every source, score 10k groups; timings and peak RSS."""
    import numpy as np

    from features.interactions import build_train_data
    from features.sample_world import generate
    from recsys.config import Config
    from training.evaluate import make_source

    out: dict[str, float] = {"groups": groups}
    t = time.perf_counter()
    world = generate(seed=7, groups=groups, products=products, days=days)
    out["generate_s"] = time.perf_counter() - t
    t = time.perf_counter()
    data = build_train_data(world.products, world.sellers, world.groups, world.pushes, world.orders, Config().features)
    out["interactions_s"] = time.perf_counter() - t
    fitted = {}
    for name in ("popular", "trending", "segment_popular", "own_top", "repurchase", "item_knn_cosine", "ease", "als",
                 "content", "exposure"):
        t = time.perf_counter()
        fitted[name] = make_source(name, {}, Config()).fit(data)
        out[f"fit_{name}_s"] = time.perf_counter() - t
    out["fit_total_s"] = sum(v for k, v in out.items() if k.startswith("fit_"))
    t = time.perf_counter()
    fitted["als"].recommend(np.arange(min(groups, 10000)), 100)
    out["als_top100_per_1k_groups_s"] = (time.perf_counter() - t) / (min(groups, 10000) / 1000)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {k: round(v, 2) for k, v in out.items()}


def main() -> None:
    """Run each size in a subprocess and print one line each."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.products, args.days)))
        return
    for size in args.sizes:
        proc = subprocess.run([sys.executable, __file__, "--one", str(size), "--products", str(args.products), "--days", str(args.days)],
                              capture_output=True, text=True)
        print(proc.stdout.strip().splitlines()[-1] if proc.returncode == 0 else f"{size}: failed\n{proc.stderr[-2000:]}")


if __name__ == "__main__":
    main()
