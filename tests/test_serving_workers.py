"""`quanxuan serve --workers 2` for real, on loopback: one rate limit per key across the workers, and counters that
add up across them (never seeming to go backwards between scrapes)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from serving.auth import create_key
from serving.storage.factory import open_store
from serving.testing import PEPPER, write_small_artifact

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _requests_counted(metrics: str, route: str) -> float:
    pattern = re.compile(r'^quanxuan_http_requests_total\{[^}]*route="' + re.escape(route) + r'"[^}]*\} (\S+)$', re.M)
    return sum(float(v) for v in pattern.findall(metrics))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A two-worker service on a free loopback port; yields (base URL, a key of 6 requests a minute, an ops key)."""
    root = tmp_path_factory.mktemp("workers")
    write_small_artifact(root / "artifacts", when=datetime.now(timezone.utc))
    db_url = f"sqlite:///{root / 'state.sqlite3'}"
    store = open_store(db_url)
    slow, _ = create_key(store, PEPPER, "ops", rate_per_minute=6)  # a bucket of one token, one more each 10 s
    ops, _ = create_key(store, PEPPER, "ops")
    store.close()
    port = _free_port()
    env = {**os.environ, "QUANXUAN_DB_URL": db_url, "QUANXUAN_KEY_PEPPER": PEPPER,
           "QUANXUAN_ARTIFACT_DIR": str(root / "artifacts"), "QUANXUAN_ARTIFACT_POLL_SECONDS": "0",
           "QUANXUAN_STATE_REFRESH_SECONDS": "0", "PROMETHEUS_MULTIPROC_DIR": str(root / "metrics")}
    env.pop("QUANXUAN_CACHE_URL", None)
    log = open(root / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--workers", "2", "--port", str(port)],
                            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (root / "server.log").read_text("utf-8", "replace")[-3000:]
                pytest.fail(f"the two-worker service did not become ready (exit {proc.poll()}):\n{tail}")
            time.sleep(0.3)
        yield base, slow, ops
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_a_keys_rate_limit_holds_across_workers(server):
    base, slow, _ = server
    # A new connection per request, so the kernel spreads them over both workers.
    codes = [httpx.get(f"{base}/v1/ops/weights", headers={"X-API-Key": slow}, timeout=10).status_code
             for _ in range(12)]
    assert codes.count(200) == 1 and codes.count(429) == 11


def test_counters_add_up_across_workers_and_never_go_back(server):
    base, _, ops = server
    seen: list[float] = []
    for _ in range(15):
        httpx.get(f"{base}/v1/ops/weights", headers={"X-API-Key": ops}, timeout=10)
        seen.append(_requests_counted(httpx.get(f"{base}/metrics", timeout=10).text, "/v1/ops/weights"))
    assert seen == sorted(seen)
    assert seen[-1] - seen[0] == 14  # every request counted once, whichever worker answered it
