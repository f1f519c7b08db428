"""Fit time and peak memory of the candidate sources at 10k, 100k and 1M groups (sample world, streamed to Parquet).

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/fit_scale.py [--sizes 10000 100000 1000000] [--products 100000 --days 30]
Each size runs in a fresh process so that peak RSS (ru_maxrss) belongs to that size alone; the world is written
block by block by `features.sample_world.stream` into a temporary folder and read back from Parquet.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

SOURCES = ("popular", "trending", "segment_popular", "own_top", "repurchase", "category_affinity", "item_knn_cosine", "ease",
           "als", "exposure", "random")


def one(groups: int, products: int, days: int, sources: tuple[str, ...]) -> dict[str, float]:
    """Stream a world to Parquet, build TrainData, fit every source, score 10k groups; timings and peak RSS."""
    import numpy as np
    import pyarrow.parquet as pq

    from features.interactions import build_train_data
    from features.sample_world import stream
    from contracts.config import Config
    from recsys.candidates.registry import make_source

    out: dict[str, float] = {"groups": groups, "products": products, "days": days}
    with tempfile.TemporaryDirectory(prefix="fit_scale_") as folder:
        t = time.perf_counter()
        counts = stream(seed=7, groups=groups, products=products, days=days, out_dir=folder, fmt="parquet")
        out["generate_s"] = time.perf_counter() - t
        out["orders"] = counts.get("orders", 0)
        out["pushes"] = counts.get("pushes", 0)
        t = time.perf_counter()
        tables = {name: pq.read_table(f"{folder}/{name}.parquet").to_pandas() for name in ("products", "sellers", "groups",
                                                                                          "pushes", "orders")}
        out["read_s"] = time.perf_counter() - t
    t = time.perf_counter()
    # The content source is not timed here, and embedding 100k new titles is its own cost (benchmarks/embeddings.py).
    features = Config().features.model_copy(update={"title_embeddings": "off"})
    data = build_train_data(tables["products"], tables["sellers"], tables["groups"], tables["pushes"], tables["orders"],
                            features)
    del tables
    out["interactions_s"] = time.perf_counter() - t
    fitted = {}
    for name in sources:
        t = time.perf_counter()
        fitted[name] = make_source(name, {}, Config()).fit(data)
        out[f"fit_{name}_s"] = time.perf_counter() - t
    out["fit_total_s"] = sum(v for k, v in out.items() if k.startswith("fit_"))
    n = min(groups, 10000)
    for name in ("als", "popular"):
        if name in fitted:
            t = time.perf_counter()
            fitted[name].recommend(np.arange(n), 100)
            out[f"{name}_top100_per_1k_groups_s"] = (time.perf_counter() - t) / (n / 1000)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {k: round(v, 2) for k, v in out.items()}


def main() -> None:
    """Run each size in a subprocess and print one JSON line each, then a table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--sources", nargs="+", default=list(SOURCES))
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.products, args.days, tuple(args.sources))))
        return
    rows = []
    for size in args.sizes:
        proc = subprocess.run([sys.executable, __file__, "--one", str(size), "--products", str(args.products),
                               "--days", str(args.days), "--sources", *args.sources], capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{size}: failed\n{proc.stderr[-2000:]}", flush=True)
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        print(json.dumps(row), flush=True)
        rows.append(row)
    if rows:
        keys = ["orders", "generate_s", "interactions_s", *[f"fit_{s}_s" for s in args.sources], "fit_total_s", "peak_rss_mb"]
        print(f"{'':<22}" + "".join(f"{int(r['groups']):>12,}" for r in rows))
        for key in keys:
            print(f"{key:<22}" + "".join(f"{r.get(key, float('nan')):>12,.1f}" for r in rows))


if __name__ == "__main__":
    main()
