"""Fuzz the service through its own OpenAPI schema (schemathesis): no request may produce a 5xx."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from serving.app import create_app
from serving.storage.factory import open_store
from serving.testing import make_keys, service_config, write_small_artifact

# schemathesis builds its tests from the schema at collection time, so the app exists at import;
# its artifact and database are loaded only by the module fixture below.
TMP = Path(tempfile.mkdtemp(prefix="quanxuan-fuzz-"))
atexit.register(shutil.rmtree, TMP, True)  # also when the test is deselected and its fixture never runs
CONFIG = service_config(TMP, rate_limit_per_minute=1_000_000, max_batch_events=50)
STORE = open_store(CONFIG.service.db_url)
APP = create_app(CONFIG, store=STORE)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)

# The key that can reach each part of the API, so that requests get past the auth check.
KEY_FOR_PREFIX = (("/v1/groups", "seller0"), ("/v1/sellers", "seller0"), ("/v1/feedback", "seller0"),
                  ("/v1/ops", "ops"), ("/v1/admin", "admin"), ("/v1/copy", "brand"))


@pytest.fixture(scope="module")
def keys():
    """Serve a small artifact with one key per role; clean the folder up afterwards."""
    write_small_artifact(TMP / "artifacts")
    made = make_keys(STORE)
    with TestClient(APP):  # runs the lifespan: loads the artifact
        yield made
    STORE.close()


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_request_makes_a_server_error(case, keys):
    # DELETE /v1/admin/keys/{key_id} is fuzzed too: a random id cannot hit one of the 48-bit random key ids.
    who = next((name for prefix, name in KEY_FOR_PREFIX if case.path.startswith(prefix)), None)
    headers = {"X-API-Key": keys[who]} if who else {}
    case.call_and_validate(headers=headers, checks=[not_a_server_error])
