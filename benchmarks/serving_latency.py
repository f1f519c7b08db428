"""Latency and throughput of the picks endpoint (with copy) beside a bare FastAPI endpoint, on loopback.

Starts two uvicorn servers with the same worker count: the real service on a generated artifact
(SQLite state, in-process or Redis cache) and a bare app answering a constant JSON. Drives both with
keep-alive HTTP/1.1 clients (asyncio, raw sockets, so the client costs little) at 1, 16 and 64
concurrent clients and prints p50, p99 and requests per second. Picks requests cycle over every
group for one date: the first pass renders each group (cache miss, reported separately), later
requests are answered from the rendered-picks cache, as in production where each seller app asks
again during the day.

    .venv/bin/python benchmarks/serving_latency.py                # 1 worker, 6 s per endpoint and level
    .venv/bin/python benchmarks/serving_latency.py --workers 2 --seconds 8 --cache-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PEPPER = "bench-pepper"
DAY = "2024-05-01"


def bare_app():
    """The baseline: FastAPI answering a constant small JSON, no auth, no storage."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/bare")
    async def bare() -> dict[str, str]:
        """A constant answer."""
        return {"status": "ok"}

    return app


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(target: str, port: int, workers: int, env: dict[str, str], app_dir: str | None = None) -> subprocess.Popen:
    """uvicorn in a subprocess; returns once it answers /healthz or /bare."""
    cmd = [sys.executable, "-m", "uvicorn", target, "--factory", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    if app_dir:
        cmd += ["--app-dir", app_dir]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{target} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{target} did not start")


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def drive(port: int, paths: list[str], headers: str, clients: int, seconds: float) -> tuple[list[float], int, dict[int, int]]:
    """`clients` keep-alive connections sending requests back to back for `seconds`; latencies (s), count, statuses."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    requests = [f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode() for p in paths]
    deadline = time.perf_counter() + seconds

    async def client(offset: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = offset
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            status = await _one(reader, writer, requests[i % len(requests)])
            latencies.append(time.perf_counter() - start)
            statuses[status] = statuses.get(status, 0) + 1
            i += 1
        writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(client(c * 7) for c in range(clients)))
    elapsed = time.perf_counter() - began
    return latencies, int(len(latencies) / elapsed), statuses


async def fetch_each(port: int, paths: list[str], headers: str) -> tuple[list[float], dict[int, int]]:
    """Each path once, one after another on one connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    for path in paths:
        start = time.perf_counter()
        status = await _one(reader, writer, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
        latencies.append(time.perf_counter() - start)
        statuses[status] = statuses.get(status, 0) + 1
    writer.close()
    return latencies, statuses


def pct(values: list[float], q: float) -> float:
    """The q-quantile in milliseconds."""
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_info() -> str:
    """CPU model and core count."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.2f} at start"


def main() -> int:
    """Build the world, start both servers, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=6.0, help="Measured time per endpoint and level.")
    parser.add_argument("--rounds", type=int, default=6, help="Alternating slices the measured time is split into.")
    parser.add_argument("--sellers", type=int, default=100)
    parser.add_argument("--groups-per-seller", type=int, default=3)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--candidates", type=int, default=200, help="Candidates per group.")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--cache-url", default="", help="redis://… to cache picks and rate limits in Redis.")
    parser.add_argument("--levels", default="1,16,64")
    args = parser.parse_args()

    from serving.auth import create_key
    from serving.storage.factory import open_store
    from serving.testing import write_small_artifact

    if args.cache_url and "prefix=" not in args.cache_url:
        # A key prefix of its own, so that the clean-up below deletes only this run's keys.
        args.cache_url += ("&" if "?" in args.cache_url else "?") + f"prefix=quanxuan-bench-{os.getpid()}:"
    tmp = Path(tempfile.mkdtemp(prefix="quanxuan-bench-"))
    servers: list[subprocess.Popen] = []
    try:
        t0 = time.perf_counter()
        write_small_artifact(tmp / "artifacts", n_sellers=args.sellers, groups_per_seller=args.groups_per_seller,
                             n_products=args.products, candidates_per_group=args.candidates,
                             cold_groups=max(1, args.sellers * args.groups_per_seller // 10))
        db_url = f"sqlite:///{tmp / 'state.sqlite3'}"
        store = open_store(db_url)
        key, _ = create_key(store, PEPPER, "ops", name="bench", rate_per_minute=1_000_000)
        store.close()
        n_groups = args.sellers * args.groups_per_seller
        print(f"artifact: {n_groups} groups ({n_groups // 10 or 1} cold), {args.products} products, "
              f"{args.candidates} candidates per group, built in {time.perf_counter() - t0:.1f}s")

        env = {**os.environ, "QUANXUAN_ARTIFACT_DIR": str(tmp / "artifacts"), "QUANXUAN_DB_URL": db_url,
               "QUANXUAN_CACHE_URL": args.cache_url, "QUANXUAN_KEY_PEPPER": PEPPER,
               "QUANXUAN_ARTIFACT_POLL_SECONDS": "0", "OPENBLAS_NUM_THREADS": "1"}
        picks_port, bare_port = free_port(), free_port()
        servers.append(start_server("serving.app:create_app_from_env", picks_port, args.workers, env))
        servers.append(start_server("serving_latency:bare_app", bare_port, args.workers, env, app_dir=str(ROOT / "benchmarks")))
        # Wait until the service has loaded the artifact.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not asyncio.run(fetch_each(picks_port, ["/readyz"], ""))[1].get(200):
            time.sleep(0.2)

        print(f"uvicorn workers: {args.workers} per server; CPU: {cpu_info()}")
        print(f"python {platform.python_version()}, cache: {args.cache_url or 'in-process'}, state: SQLite")
        paths = [f"/v1/groups/G{g}/picks?date={DAY}&k={args.k}" for g in range(n_groups)]
        auth = f"X-API-Key: {key}\r\n"

        # First pass: every group rendered once (blend + rules + copy), one client.
        misses, statuses = asyncio.run(fetch_each(picks_port, paths, auth))
        assert set(statuses) == {200}, statuses
        print(f"\ncache miss (blend + rules + copy for {args.k} picks, 1 client, {len(misses)} groups): "
              f"p50 {pct(misses, 0.5):.2f} ms, p99 {pct(misses, 0.99):.2f} ms, mean {1000 * statistics.mean(misses):.2f} ms")

        print(f"\n{'endpoint':<28}{'clients':>8}{'p50 ms':>10}{'p99 ms':>10}{'req/s':>10}{'non-200':>9}")
        results: dict[tuple[str, int], int] = {}
        targets = (("bare FastAPI", bare_port, ["/bare"], ""), ("picks with copy (cached)", picks_port, paths, auth))
        for clients in [int(x) for x in args.levels.split(",")]:
            # Alternate short slices of both endpoints, so that noise from other processes on the
            # machine falls on both alike instead of on whichever ran during a busy second.
            lat: dict[str, list[float]] = {name: [] for name, *_ in targets}
            count = {name: 0 for name, *_ in targets}
            bad = {name: 0 for name, *_ in targets}
            for _, port, ps, hdr in targets:
                asyncio.run(drive(port, ps, hdr, clients, 0.5))  # warm connections and code paths
            slice_s = args.seconds / args.rounds
            for _ in range(args.rounds):
                for name, port, ps, hdr in targets:
                    got, rps, statuses = asyncio.run(drive(port, ps, hdr, clients, slice_s))
                    lat[name] += got
                    count[name] += rps
                    bad[name] += sum(n for s, n in statuses.items() if s != 200)
            for name, *_ in targets:
                results[(name, clients)] = count[name] // args.rounds
                print(f"{name:<28}{clients:>8}{pct(lat[name], 0.5):>10.2f}{pct(lat[name], 0.99):>10.2f}"
                      f"{results[(name, clients)]:>10}{bad[name]:>9}")
        print()
        for clients in [int(x) for x in args.levels.split(",")]:
            share = results[("picks with copy (cached)", clients)] / max(1, results[("bare FastAPI", clients)])
            print(f"picks throughput at {clients} clients: {100 * share:.0f}% of the bare endpoint")
    finally:
        for proc in servers:
            proc.terminate()
        for proc in servers:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if args.cache_url:
            from serving.storage.factory import open_cache

            open_cache(args.cache_url).clear()  # the rendered picks and buckets this run left in Redis
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
