"""Time and peak memory of generating the sample world, each size in a fresh process.

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/sample_world.py
     (the demo size in memory and streamed, then 100k groups × 100k products × 30 days streamed to Parquet)
     OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/sample_world.py --groups 1000000 --products 100000 --days 30
     (one size only; 1M groups takes minutes and must stay within 24 GB)
Prints rows written, wall seconds, CPU seconds (robust when the machine is shared), peak RSS of the
generating process and megabytes on disk.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _child(mode: str, groups: int, products: int, days: int, fmt: str) -> None:
    """Generate one size in this process and print a JSON line of figures."""
    from features.sample_world import generate, stream

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        if mode == "memory":
            world = generate(7, groups, products, days)
            counts = {name: len(df) for name, df in world.tables().items()}
        else:
            counts = stream(7, groups, products, days, tmp, fmt=fmt)  # type: ignore[arg-type]
        seconds = time.perf_counter() - start
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = {"counts": counts, "seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
               "peak_gb": usage.ru_maxrss / 1024**2, "bytes": size}  # ru_maxrss is in kilobytes on Linux
    print(json.dumps(figures))


def _run(mode: str, groups: int, products: int, days: int, fmt: str) -> dict:
    """Run one size in a fresh interpreter, so that peak RSS is that size's alone."""
    cmd = [sys.executable, __file__, "--child", mode, "--groups", str(groups), "--products", str(products),
           "--days", str(days), "--format", fmt]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    """Parse options and print one line per size."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--format", choices=("csv", "parquet"), default="parquet")
    parser.add_argument("--child", choices=("memory", "stream"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.groups, args.products, args.days, args.format)
        return
    if args.groups:
        runs = [("stream", args.groups, args.products, args.days, args.format)]
    else:
        runs = [("memory", 2000, 2000, 60, "parquet"), ("stream", 2000, 2000, 60, "csv"),
                ("stream", 2000, 2000, 60, "parquet"), ("stream", 100_000, 100_000, 30, "parquet")]
    print(f"{'mode':<7}{'groups':>10}{'products':>10}{'days':>5}{'fmt':>8}{'pushes':>13}{'orders':>11}"
          f"{'seconds':>9}{'CPU s':>8}{'peak GB':>9}{'MB out':>9}")
    for mode, groups, products, days, fmt in runs:
        r = _run(mode, groups, products, days, fmt)
        c = r["counts"]
        print(f"{mode:<7}{groups:>10,}{products:>10,}{days:>5}{fmt if mode == 'stream' else '-':>8}{c['pushes']:>13,}"
              f"{c['orders']:>11,}{r['seconds']:>9.1f}{r['cpu_seconds']:>8.1f}{r['peak_gb']:>9.2f}{r['bytes'] / 1e6:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
