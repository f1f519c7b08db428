"""Shared fixtures: the real-data folder beside the project, skipped when absent (never under CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_data_dir(name: str) -> Path:
    """Path of ../shared/data/<name>; skips the test when absent, fails under CI=true."""
    path = SHARED_DATA / name
    if not path.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{path} is missing under CI: real-data tests must run there")
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture
def shared_data():
    """Returns a function name -> Path of a real dataset folder (skips if absent, fails under CI)."""
    return shared_data_dir


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory):
    """One small artifact folder shared by the service tests (they never change it), made for 2024-05-01, the day
    the tests ask picks and send feedback for."""
    from datetime import datetime, timezone

    from serving.testing import write_small_artifact

    root = tmp_path_factory.mktemp("artifacts")
    write_small_artifact(root, when=datetime(2024, 5, 1, 0, 30, tzinfo=timezone.utc))
    return root
