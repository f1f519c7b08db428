"""Artifact hot swap: newer complete artifacts are swapped in atomically; incomplete or corrupt ones are
refused with a reason while the previous one keeps serving."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.artifacts import ArtifactHolder
from serving.storage.factory import open_store
from serving.testing import make_keys, service_config, write_small_artifact

T1 = datetime(2024, 5, 1, 2, 0, tzinfo=timezone.utc)


def corrupt(path: Path) -> None:
    """Flip bytes in the middle of the candidates table, as a bad disk or half-copied file would."""
    file = path / "candidates.parquet"
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    file.write_bytes(bytes(data))


@pytest.fixture
def served(tmp_path):
    """App serving artifact v1, with an admin key; yields (client, admin headers, artifact root, v1 path)."""
    root = tmp_path / "artifacts"
    v1 = write_small_artifact(root, T1)
    # A generous rate limit: the swap test hammers the picks endpoint from three threads.
    config = service_config(tmp_path, rate_limit_per_minute=1_000_000)
    store = open_store(config.service.db_url)
    keys = make_keys(store)
    with TestClient(create_app(config, store=store)) as client:
        client.seller_key = keys["seller0"]
        yield client, {"Authorization": f"Bearer {keys['admin']}"}, root, v1
    store.close()


def test_reload_swaps_to_a_newer_artifact(served):
    client, admin, root, v1 = served
    assert client.get("/readyz").json() == {"status": "ready", "artifact_version": v1.name, "reason": None}
    same = client.post("/v1/admin/reload", headers=admin).json()
    assert same == {"swapped": False, "version": v1.name, "previous_version": v1.name,
                    "reason": "already serving the newest artifact"}
    v2 = write_small_artifact(root, T1 + timedelta(days=1), seed=1)
    result = client.post("/v1/admin/reload", headers=admin).json()
    assert result == {"swapped": True, "version": v2.name, "previous_version": v1.name, "reason": "loaded"}
    assert client.get("/readyz").json()["artifact_version"] == v2.name
    metrics = client.get("/metrics").text
    assert f'quanxuan_artifact_info{{version="{v2.name}"}} 1.0' in metrics
    assert f'version="{v1.name}"' not in metrics


def test_a_corrupt_artifact_is_refused_and_the_old_one_keeps_serving(served, caplog):
    client, admin, root, v1 = served
    bad = write_small_artifact(root, T1 + timedelta(days=1))
    corrupt(bad)
    with caplog.at_level("WARNING", logger="quanxuan.artifacts"):
        result = client.post("/v1/admin/reload", headers=admin).json()
    assert result["swapped"] is False and result["version"] == v1.name
    assert "candidates.parquet is corrupt: sha256 does not match the manifest" in result["reason"]
    assert any("refused artifact" in r.message and "sha256" in r.message for r in caplog.records)
    assert client.get("/readyz").json()["artifact_version"] == v1.name
    assert 'quanxuan_artifact_reloads_total{outcome="refused"} 1.0' in client.get("/metrics").text


def test_an_incomplete_artifact_is_ignored(served):
    client, admin, root, v1 = served
    # A writer killed mid-way leaves a .tmp- folder, or a folder without its manifest (written last).
    (root / ".tmp-20250101T000000Z-test").mkdir()
    (root / ".tmp-20250101T000000Z-test" / "groups.parquet").write_bytes(b"partial")
    half = root / "20250102T000000Z-test"
    half.mkdir()
    (half / "groups.parquet").write_bytes(b"partial")
    result = client.post("/v1/admin/reload", headers=admin).json()
    assert (result["swapped"], result["version"]) == (False, v1.name)


def test_a_corrupt_newest_artifact_does_not_hide_a_valid_newer_one(served):
    client, admin, root, v1 = served
    v2 = write_small_artifact(root, T1 + timedelta(days=1), seed=1)
    corrupt(write_small_artifact(root, T1 + timedelta(days=2)))
    result = client.post("/v1/admin/reload", headers=admin).json()
    assert (result["swapped"], result["version"], result["previous_version"]) == (True, v2.name, v1.name)
    # The watch then keeps v2 and does not retry the refused one.
    again = client.post("/v1/admin/reload", headers=admin).json()
    assert again["swapped"] is False and again["version"] == v2.name


def test_a_manifest_naming_files_outside_its_folder_is_refused(served):
    import json
    import os

    from contracts.artifact import sha256_file

    client, admin, root, v1 = served
    secret = root.parent / "key_pepper"
    secret.write_text("not for the artifact")
    for escape in ("../../key_pepper", "/etc/hostname", "models/../../../key_pepper"):
        bad = write_small_artifact(root, T1 + timedelta(days=1, minutes=len(escape)))
        manifest = json.loads((bad / "manifest.json").read_text("utf-8"))
        # The true sha256 of the file named: only the confinement can refuse it.
        manifest["files"][escape] = sha256_file(Path(os.path.normpath(bad / escape)))
        (bad / "manifest.json").write_text(json.dumps(manifest), "utf-8")
        result = client.post("/v1/admin/reload", headers=admin).json()
        assert result["swapped"] is False and "not a file of the artifact folder" in result["reason"], escape
        assert client.get("/readyz").json()["artifact_version"] == v1.name


def test_a_missing_file_is_refused_with_its_name(served):
    client, admin, root, v1 = served
    bad = write_small_artifact(root, T1 + timedelta(days=1))
    (bad / "segment_candidates.parquet").unlink()
    result = client.post("/v1/admin/reload", headers=admin).json()
    assert result["swapped"] is False
    assert "segment_candidates.parquet is listed in the manifest but missing" in result["reason"]


def test_start_up_falls_back_to_the_newest_artifact_that_loads(tmp_path):
    root = tmp_path / "artifacts"
    good = write_small_artifact(root, T1)
    corrupt(write_small_artifact(root, T1 + timedelta(days=1)))
    refused: list[str] = []
    holder = ArtifactHolder(root, on_refuse=refused.append)
    outcome = holder.load_initial()
    assert outcome.swapped and holder.version == good.name
    assert refused == ["candidates.parquet is corrupt: sha256 does not match the manifest"]


def test_not_ready_without_an_artifact(tmp_path):
    config = service_config(tmp_path)
    store = open_store(config.service.db_url)
    keys = make_keys(store)
    with TestClient(create_app(config, store=store)) as client:
        response = client.get("/readyz")
        assert response.status_code == 503 and "no complete artifact" in response.json()["reason"]
        assert client.get("/healthz").json()["status"] == "ok"
        picks = client.get("/v1/groups/G0/picks", headers={"X-API-Key": keys["seller0"]})
        assert picks.status_code == 503
    store.close()


def test_the_file_watch_swaps_without_a_request(tmp_path):
    root = tmp_path / "artifacts"
    v1 = write_small_artifact(root, T1)
    holder = ArtifactHolder(root)
    holder.load_initial()
    holder.start_watch(0.05)
    try:
        bad = write_small_artifact(root, T1 + timedelta(days=1))
        corrupt(bad)
        time.sleep(0.3)
        assert holder.version == v1.name and "sha256" in holder.last_error
        v3 = write_small_artifact(root, T1 + timedelta(days=2))
        deadline = time.monotonic() + 5
        while holder.version != v3.name and time.monotonic() < deadline:
            time.sleep(0.02)
        assert holder.version == v3.name and holder.last_error is None
    finally:
        holder.stop_watch()


def test_requests_in_flight_during_swaps_all_succeed(served):
    client, admin, root, v1 = served
    statuses: list[int] = []
    versions: set[str] = set()
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            response = client.get("/v1/groups/G1/picks", headers={"X-API-Key": client.seller_key},
                                  params={"date": "2024-05-01", "k": 3})
            statuses.append(response.status_code)
            versions.add(response.json()["artifact_version"])

    def answered(n: int) -> None:
        deadline = time.monotonic() + 30
        while len(statuses) < n and time.monotonic() < deadline:
            time.sleep(0.01)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    answered(3)
    names = [v1.name]
    for day in range(1, 4):
        names.append(write_small_artifact(root, T1 + timedelta(days=day), seed=day).name)
        assert client.post("/v1/admin/reload", headers=admin).json()["swapped"] is True
        answered(len(statuses) + 6)  # requests keep being answered across each swap
    stop.set()
    for t in threads:
        t.join()
    assert len(statuses) > 10 and set(statuses) == {200}
    assert versions <= set(names) and names[-1] in versions and len(versions) >= 2
