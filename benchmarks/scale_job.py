"""The daily job at scale: per-stage time and peak memory, and top-K scoring against the machine's matmul rate.

The sample world (default 100k groups × 100k products × 30 days) is written once by `features.sample_world.stream`
into runs/scale_<groups>/ and read back from Parquet. Title embeddings are off (`features.title_embeddings`):
embedding 100k titles is its own cost (benchmarks/embeddings.py), and the daily job would embed only new titles.

Then, in one process per mode (`single`, then `dask` on a LocalCluster of 2 worker processes):
- the whole `run_daily` (no evaluation), each stage's wall time and peak RSS (sampled every 50 ms over the process
  and its children, so Dask workers count; a stage ends at the job's next log line);
- top-K scoring throughput: the job's own fitted ALS, top-100 of its first 20k warm groups (fixed-shape block
  matmul into a reused buffer + the chunk-maxima top-K) in groups/s, beside np.matmul's float32 GFLOP/s on the same
  block shape in the same run, and their ratio;
- for `dask`, whether its candidates and picks equal the single-process ones (sha256 of the tables, read in batches).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/scale_job.py [--groups 100000 --products 100000 --days 30]
        [--modes single,dask] [--config benchmarks/scale_config.toml]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class RssSampler:
    """Peak resident memory of this process and its children since the last `mark`, sampled in a thread."""

    def __init__(self, every_s: float = 0.05) -> None:
        import psutil

        self.proc = psutil.Process()
        self.every_s = every_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def rss(self) -> int:
        """Bytes resident in this process and all its descendants now: plain RSS alone, proportional set sizes
        (PSS) once there are children, since forked workers share most of their pages with this process and
        the sum of their RSS would count those pages once per process."""
        children = self.proc.children(recursive=True)
        if not children:
            return self.proc.memory_info().rss
        total = 0
        for proc in [self.proc, *children]:
            try:
                total += _pss(proc.pid)
            except Exception:  # a worker may exit between listing and reading
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.perf_counter()
            self.peak = max(self.peak, self.rss())
            # Reading PSS walks every mapped page: keep the sampler's share of a core under about 5 %.
            time.sleep(max(self.every_s, 20 * (time.perf_counter() - t)))

    def mark(self) -> int:
        """The peak since the previous mark (bytes); starts a new window."""
        peak, self.peak = max(self.peak, self.rss()), 0
        return peak

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join()


def _pss(pid: int) -> int:
    """Proportional set size of a process in bytes (Linux smaps_rollup)."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    raise ValueError(f"no Pss line for process {pid}")


def matmul_gflops(m: int, k: int, n: int, repeat: int = 5) -> float:
    """Best-of float32 np.matmul rate on an (m × k) @ (k × n) product, GFLOP/s."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    out = np.empty((m, n), dtype=np.float32)
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - t)
    return 2.0 * m * k * n / best / 1e9


def topk_throughput(source: Any, groups: Any, k: int = 100) -> dict[str, float]:
    """ALS top-k groups/s (the first 20k of `groups`) and the matmul bound on the same block shape."""
    from recsys.candidates.base import block_rows

    n = min(len(groups), 20_000)
    t = time.perf_counter()
    source.recommend(groups[:n], k)
    groups_s = n / (time.perf_counter() - t)
    factors, items = source.item_factors_.shape[1], source.item_factors_.shape[0]
    rate = matmul_gflops(block_rows(items), factors, items)
    bound = rate * 1e9 / (2.0 * factors * items)
    return {"topk_groups_per_s": groups_s, "matmul_gflops": rate, "matmul_bound_groups_per_s": bound,
            "bound_over_achieved": bound / groups_s}


def ensure_world(groups: int, products: int, days: int) -> Path:
    """The world's folder under runs/, written once."""
    from features.sample_world import stream

    folder = ROOT / "runs" / f"scale_{groups}x{products}x{days}"
    if not (folder / "orders.parquet").exists():
        t = time.perf_counter()
        counts = stream(seed=7, groups=groups, products=products, days=days, out_dir=folder, fmt="parquet")
        print(f"world written to {folder} in {time.perf_counter() - t:.0f}s: {counts}", flush=True)
    return folder


def table_hash(path: Path) -> str:
    """sha256 of a Parquet table's rows (content, not file bytes), read batch by batch (100M rows at 1M groups)."""
    import pandas as pd
    import pyarrow.parquet as pq

    digest = hashlib.sha256()
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1 << 20):
        digest.update(pd.util.hash_pandas_object(batch.to_pandas(), index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def one_mode(folder: Path, mode: str, block_groups: int, config: str = "") -> dict[str, Any]:
    """The daily job in this process (mode 'single' or 'dask'); stages, peaks, throughput, table hashes."""
    from features.sample_world import read
    from contracts.config import Config
    from training.daily import run_daily
    from training.log import default_log

    sampler = RssSampler()
    stages: list[dict[str, Any]] = []
    t_last = time.perf_counter()

    def close(name: str) -> None:
        nonlocal t_last
        now = time.perf_counter()
        seconds, peak = now - t_last, sampler.mark() / 2**30
        t_last = now
        # Progress lines ("blocks 25/500: …") and the block count's closing line make one stage.
        name = "blocks" if name.startswith("blocks ") or name == "blocks" else name
        if stages and stages[-1]["stage"] == name:
            seconds += stages[-1].pop("s")
            peak = max(peak, stages.pop()["peak_rss_gib"])
        stages.append({"stage": name, "s": round(seconds, 1), "peak_rss_gib": round(peak, 2)})

    world = read(folder)
    close("load")
    cfg = Config.load(config) if config else Config()
    cfg.features = cfg.features.model_copy(update={"title_embeddings": "off"})
    cfg.cluster = cfg.cluster.model_copy(update={"block_groups": block_groups, "scheduler": "local" if mode == "dask" else ""})

    def log(line: str) -> None:
        default_log(line)
        close(line.split(":")[0][:18])

    with tempfile.TemporaryDirectory(dir=ROOT / "runs") as tmp:
        result = run_daily(world, cfg, tmp, evaluate=False, log=log)
        hashes = {name: table_hash(result.artifact / f"{name}.parquet") for name in ("candidates", "picks")}
        sizes = sum(f.stat().st_size for f in result.artifact.rglob("*") if f.is_file())
    close("hash tables")
    # The job's own fitted ALS, measured on its warm groups.
    model = result.model
    data = model.data
    warm = np.flatnonzero(~data.cold)
    throughput = topk_throughput(model.sources["als"], warm)
    close("topk_throughput")
    sampler.stop()
    return {"mode": mode, "groups": data.n_groups, "warm_groups": len(warm), "products": data.n_items, "timings": result.timings,
            "stages": stages, "hashes": hashes, "artifact_mib": round(sizes / 2**20), **throughput}


def main() -> int:
    """Write the world once, run each mode in a fresh process, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=100_000)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--modes", default="single,dask")
    parser.add_argument("--block-groups", type=int, default=2000)
    parser.add_argument("--config", default="", help="a TOML configuration (e.g. benchmarks/scale_config.toml); "
                        "default: the shipped defaults")
    parser.add_argument("--one", default="", help=argparse.SUPPRESS)
    parser.add_argument("--folder", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print("RESULT " + json.dumps(one_mode(Path(args.folder), args.one, args.block_groups, args.config), default=float))
        return 0
    folder = ensure_world(args.groups, args.products, args.days)
    results = []
    for mode in args.modes.split(","):
        proc = subprocess.run([sys.executable, __file__, "--one", mode, "--folder", str(folder),
                               "--block-groups", str(args.block_groups), "--config", args.config], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
        lines = [line[7:] for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode or not lines:
            print(f"== {mode} failed (exit {proc.returncode}); its log is above")
            continue
        r = json.loads(lines[-1])
        results.append(r)
        total = sum(s["s"] for s in r["stages"] if s["stage"] not in ("topk_throughput", "hash tables"))
        print(f"\n== daily job, {mode}: {r['groups']:,} groups × {r['products']:,} products × {args.days} days, "
              f"blocks of {args.block_groups} groups: {total:.0f}s, peak RSS "
              f"{max(s['peak_rss_gib'] for s in r['stages']):.2f} GiB (process + workers), artifact {r['artifact_mib']} MiB")
        for s in r["stages"]:
            print(f"   {s['stage']:<18}{s['s']:>8.1f}s   peak {s['peak_rss_gib']:>6.2f} GiB")
        print(f"   ALS top-100 scoring: {r['topk_groups_per_s']:,.0f} groups/s; np.matmul float32 "
              f"{r['matmul_gflops']:.1f} GFLOP/s on the same shape = bound {r['matmul_bound_groups_per_s']:,.0f} groups/s; "
              f"bound / achieved = {r['bound_over_achieved']:.2f}")
        print(f"   whole per-group part (blocks): {r['groups'] / r['timings']['blocks']:,.0f} groups/s "
              f"({r['warm_groups'] / r['timings']['blocks']:,.0f} warm groups/s; cold ones read their segment); "
              f"tables sha256 {r['hashes']}")
    if len(results) == 2:
        same = results[0]["hashes"] == results[1]["hashes"]
        print(f"\ncandidates and picks of {results[1]['mode']} {'EQUAL' if same else 'DIFFER FROM'} {results[0]['mode']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
