"""Latency and throughput of the picks endpoint (with copy) beside a bare FastAPI endpoint, on loopback.

Starts uvicorn servers with the same worker count: the real service on a generated artifact (SQLite state,
in-process or Redis cache) with today's picks prepared ahead (the default), the same service with preparation
off, and a bare app answering a constant JSON. Drives them with keep-alive HTTP/1.1 clients (asyncio, raw
sockets, so the client costs little) and prints p50, p99 and requests per second for:

- the first request of the day of every group at 16 clients (prepared ahead, and rendered on the request),
  against the cached throughput;
- cached group picks beside the bare endpoint at 1, 16 and 64 clients;
- seller-wide picks (every group of a seller in one call) against group picks;
- group picks while three what-ifs and an ops preview run, against the same clients idle.

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


async def drive_once(port: int, paths: list[str], headers: str, clients: int) -> tuple[list[float], int, dict[int, int]]:
    """Each path once, spread over `clients` keep-alive connections; latencies (s), requests/s, statuses."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def client(share: list[str]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for path in share:
            start = time.perf_counter()
            status = await _one(reader, writer, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
            latencies.append(time.perf_counter() - start)
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(client(paths[c::clients]) for c in range(clients)))
    return latencies, int(len(latencies) / (time.perf_counter() - began)), statuses


def metric_value(port: int, name: str) -> float:
    """One sample of the service's /metrics, or -1 when absent."""
    import httpx

    for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return -1.0


def heavy_requests(port: int, keys: list[str], brand: str, products: list[str]) -> list[tuple[str, int, float]]:
    """Three what-ifs (one per key, bodies nobody asked before) and an ops preview, at once; (name, status, seconds)."""
    import threading

    import httpx

    out: list[tuple[str, int, float]] = []

    def post(name: str, path: str, key: str, body: dict) -> None:
        start = time.perf_counter()
        status = httpx.post(f"http://127.0.0.1:{port}{path}", json=body, headers={"X-API-Key": key}, timeout=600).status_code
        out.append((name, status, time.perf_counter() - start))

    jobs = [threading.Thread(target=post, args=(f"what-if {i + 1}", f"/v1/brands/{brand}/reach/what-if", keys[i],
                                                {"product_ids": products, "price": 50.0 + 7 * i + time.time() % 1}))
            for i in range(3)]
    weights = {"default": {"conversion": 1.0, "earnings": 1.7 + time.time() % 1, "rating": 2.0, "order_value": 0.0,
                           "diversity": 1.0, "adoption": 1.0}, "overrides": {}}
    jobs.append(threading.Thread(target=post, args=("ops preview", "/v1/ops/preview", keys[3], {"weights": weights})))
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
    return out


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


def measure_levels(targets: list[tuple[str, int, list[str], str]], levels: list[int], seconds: float,
                   rounds: int) -> dict[tuple[str, int], tuple[float, float, int]]:
    """(p50 ms, p99 ms, req/s) per target and client count, the targets alternating in short slices.

    Alternating keeps noise from other processes on the machine falling on every target alike.
    """
    results: dict[tuple[str, int], tuple[float, float, int]] = {}
    for clients in levels:
        lat: dict[str, list[float]] = {name: [] for name, *_ in targets}
        count = {name: 0 for name, *_ in targets}
        for _, port, ps, hdr in targets:
            asyncio.run(drive(port, ps, hdr, clients, 0.5))  # warm connections and code paths
        for _ in range(rounds):
            for name, port, ps, hdr in targets:
                got, rps, statuses = asyncio.run(drive(port, ps, hdr, clients, seconds / rounds))
                assert set(statuses) <= {200}, (name, statuses)
                lat[name] += got
                count[name] += rps
        for name, *_ in targets:
            results[(name, clients)] = (pct(lat[name], 0.5), pct(lat[name], 0.99), count[name] // rounds)
    return results


def row(name: str, clients: int, p50: float, p99: float, rps: int) -> str:
    """One line of the results table."""
    return f"{name:<34}{clients:>8}{p50:>10.2f}{p99:>10.2f}{rps:>10}"


def main() -> int:
    """Build the world, start the servers, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=6.0, help="Measured time per endpoint and level.")
    parser.add_argument("--rounds", type=int, default=6, help="Alternating slices the measured time is split into.")
    parser.add_argument("--sellers", type=int, default=300)
    parser.add_argument("--groups-per-seller", type=int, default=3)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--candidates", type=int, default=200, help="Candidates per group.")
    parser.add_argument("--cache-url", default="", help="redis://… to cache picks and rate limits in Redis.")
    parser.add_argument("--levels", default="1,16,64")
    args = parser.parse_args()

    from datetime import datetime, timedelta, timezone

    from serving.auth import create_key
    from serving.storage.factory import open_store
    from serving.testing import small_world, write_small_artifact

    if args.cache_url and "prefix=" not in args.cache_url:
        # A key prefix of its own, so that the clean-up below deletes only this run's keys.
        args.cache_url += ("&" if "?" in args.cache_url else "?") + f"prefix=quanxuan-bench-{os.getpid()}:"
    tmp = Path(tempfile.mkdtemp(prefix="quanxuan-bench-"))
    servers: list[subprocess.Popen] = []
    try:
        t0 = time.perf_counter()
        world = dict(n_sellers=args.sellers, groups_per_seller=args.groups_per_seller, n_products=args.products,
                     candidates_per_group=args.candidates, cold_groups=max(1, args.sellers * args.groups_per_seller // 10))
        write_small_artifact(tmp / "artifacts", **world)
        products = small_world(**world)["products"]
        brand = str(products["brand"].value_counts().index[0])
        brand_products = products.loc[products["brand"] == brand, "product_id"].astype(str).tolist()[:50]
        keys: dict[str, str] = {}
        for name, url in (("prepared", "prepared.sqlite3"), ("on_request", "on_request.sqlite3")):
            store = open_store(f"sqlite:///{tmp / url}")
            keys[name] = create_key(store, PEPPER, "ops", name="bench", rate_per_minute=1_000_000)[0]
            if name == "prepared":
                keys["heavy"] = [create_key(store, PEPPER, "ops", name=f"heavy {i}", rate_per_minute=1_000_000)[0]
                                 for i in range(4)]  # type: ignore[assignment]
            store.close()
        n_groups = args.sellers * args.groups_per_seller
        print(f"artifact: {n_groups} groups ({n_groups // 10 or 1} cold), {args.products} products, "
              f"{args.candidates} candidates per group, built in {time.perf_counter() - t0:.1f}s")

        base_env = {**os.environ, "QUANXUAN_ARTIFACT_DIR": str(tmp / "artifacts"), "QUANXUAN_KEY_PEPPER": PEPPER,
                    "QUANXUAN_ARTIFACT_POLL_SECONDS": "0", "OPENBLAS_NUM_THREADS": "1"}
        ports = {"prepared": free_port(), "on_request": free_port(), "bare": free_port()}
        for name in ("prepared", "on_request"):
            cache = args.cache_url.replace(":quanxuan-bench", f":quanxuan-bench-{name}") if args.cache_url else ""
            env = {**base_env, "QUANXUAN_DB_URL": f"sqlite:///{tmp / (name + '.sqlite3')}", "QUANXUAN_CACHE_URL": cache,
                   "QUANXUAN_PREPARE_PICKS": "true" if name == "prepared" else "false"}
            servers.append(start_server("serving.app:create_app_from_env", ports[name], args.workers, env))
        servers.append(start_server("serving_latency:bare_app", ports["bare"], args.workers, base_env,
                                    app_dir=str(ROOT / "benchmarks")))
        deadline = time.monotonic() + 120
        for name in ("prepared", "on_request"):
            while time.monotonic() < deadline and not asyncio.run(drive_once(ports[name], ["/readyz"], "", 1))[2].get(200):
                time.sleep(0.2)
        t_ready = time.perf_counter()
        while metric_value(ports["prepared"], "quanxuan_picks_prepared_ready") != 1.0:
            if time.monotonic() > deadline + 600:
                raise RuntimeError("today's picks were not prepared within 10 minutes")
            time.sleep(0.5)
        print(f"today's picks of {n_groups} groups prepared in {time.perf_counter() - t_ready:.1f}s after start")
        print(f"uvicorn workers: {args.workers} per server; CPU: {cpu_info()}")
        print(f"python {platform.python_version()}, cache: {args.cache_url or 'in-process'}, state: SQLite")

        today = datetime.now(timezone(timedelta(hours=8))).date().isoformat()
        group_paths = [f"/v1/groups/G{g}/picks?date={today}" for g in range(n_groups)]
        seller_paths = [f"/v1/sellers/S{s}/picks?date={today}" for s in range(args.sellers)]
        auth = {name: f"X-API-Key: {keys[name]}\r\n" for name in ("prepared", "on_request")}
        header = f"{'endpoint':<34}{'clients':>8}{'p50 ms':>10}{'p99 ms':>10}{'req/s':>10}"

        # 1. The first request of the day of every group, 16 clients, each group once.
        print("\nfirst request of the day, every group once")
        print(header)
        first: dict[str, tuple[float, float, int]] = {}
        for name in ("prepared", "on_request"):
            lat, rps, statuses = asyncio.run(drive_once(ports[name], group_paths, auth[name], 16))
            assert set(statuses) == {200}, statuses
            first[name] = (pct(lat, 0.5), pct(lat, 0.99), rps)
            label = "prepared ahead (served)" if name == "prepared" else "rendered on the request"
            print(row(label, 16, *first[name]))

        # 2. Cached picks beside the bare endpoint.
        levels = [int(x) for x in args.levels.split(",")]
        targets = [("bare FastAPI", ports["bare"], ["/bare"], ""),
                   ("group picks with copy (cached)", ports["prepared"], group_paths, auth["prepared"]),
                   ("seller picks (cached)", ports["prepared"], seller_paths, auth["prepared"])]
        asyncio.run(drive_once(ports["prepared"], seller_paths, auth["prepared"], 16))  # render the seller answers once
        results = measure_levels(targets, levels, args.seconds, args.rounds)
        print("\ncached answers")
        print(header)
        for clients in levels:
            for name, *_ in targets:
                print(row(name, clients, *results[(name, clients)]))

        # 3. Group picks while three what-ifs and a preview run.
        import threading

        heavy: list[tuple[str, int, float]] = []
        thread = threading.Thread(target=lambda: heavy.extend(
            heavy_requests(ports["prepared"], keys["heavy"], brand, brand_products)))  # type: ignore[arg-type]
        idle = measure_levels(targets[1:2], [16], args.seconds, args.rounds)[(targets[1][0], 16)]
        thread.start()
        busy_lat: list[float] = []
        busy_count = busy_runs = 0
        while thread.is_alive():
            got, rps, statuses = asyncio.run(drive(ports["prepared"], group_paths, auth["prepared"], 16, 1.0))
            busy_lat += got
            busy_count += rps
            busy_runs += 1
        thread.join()
        print("\ngroup picks at 16 clients while 3 what-ifs and an ops preview run")
        print(header)
        print(row("idle", 16, *idle))
        if busy_lat:
            print(row("beside the heavy requests", 16, pct(busy_lat, 0.5), pct(busy_lat, 0.99), busy_count // busy_runs))
        for name, status, seconds in sorted(heavy):
            print(f"  {name}: {status} in {seconds:.2f}s")

        cached16 = results[("group picks with copy (cached)", 16)]
        print("\ntargets")
        print(f"first request of the day at 16 clients: {100 * first['prepared'][2] / max(1, cached16[2]):.0f}% of the "
              f"cached throughput (target >= 50%), p99 {first['prepared'][1]:.1f} ms (target <= 50); rendered on the "
              f"request instead: {100 * first['on_request'][2] / max(1, cached16[2]):.0f}%, p99 {first['on_request'][1]:.1f} ms")
        seller16 = results[("seller picks (cached)", 16)]
        print(f"seller picks p99 at 16 clients: {seller16[1] / max(1e-9, cached16[1]):.2f}x group picks p99 (target <= 2)")
        if busy_lat:
            print(f"picks p99 beside the heavy requests: {pct(busy_lat, 0.99) / max(1e-9, idle[1]):.2f}x idle (target <= 1.5)")
        for clients in levels:
            share = results[("group picks with copy (cached)", clients)][2] / max(1, results[("bare FastAPI", clients)][2])
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

            for name in ("prepared", "on_request"):
                open_cache(args.cache_url.replace(":quanxuan-bench", f":quanxuan-bench-{name}")).clear()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
