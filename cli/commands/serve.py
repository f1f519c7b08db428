"""Run the HTTP service (uvicorn): picks with copy, feedback, ops weights, keys, health and metrics."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from contracts.config import ServiceSettings


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: config file, host, port, workers; other settings come from QUANXUAN_* variables."""
    parser.add_argument("--config", help="TOML or JSON configuration file (sections as in contracts.config).")
    parser.add_argument("--host", help="Listen address (default from settings: 127.0.0.1).")
    parser.add_argument("--port", type=int, help="Listen port (default from settings: 8000).")
    parser.add_argument("--workers", type=int, help="uvicorn worker processes (default from settings: 1).")
    parser.add_argument("--artifact-dir", help="Folder of versioned artifacts (QUANXUAN_ARTIFACT_DIR).")
    parser.add_argument("--db-url", help="sqlite:///file or postgresql://… (QUANXUAN_DB_URL).")
    parser.add_argument("--cache-url", help="redis://… or empty for in-process (QUANXUAN_CACHE_URL).")


def _share_between_workers(settings: ServiceSettings, port: int) -> None:
    """Worker processes share what would otherwise be per process: rate limits and rendered picks (a SQLite cache file
    unless a Redis URL is set) and metrics (Prometheus multiprocess mode, so counters add up across workers)."""
    state = Path(tempfile.gettempdir()) / f"quanxuan-{port}"
    if not settings.cache_url.get_secret_value():
        os.environ["QUANXUAN_CACHE_URL"] = f"sqlite:///{state / 'cache.sqlite3'}"
    metrics_dir = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or state / "metrics")
    # Files of an earlier run would add its counts to this one's.
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)


def run(args: argparse.Namespace) -> int:
    """Start uvicorn with the app factory, so every worker builds its own app from the same settings."""
    import uvicorn

    from contracts.config import Config

    # Workers are separate processes: hand them the settings through the environment.
    if args.config:
        os.environ["QUANXUAN_CONFIG"] = os.path.abspath(args.config)
    for name in ("artifact_dir", "db_url", "cache_url"):
        value = getattr(args, name)
        if value is not None:
            os.environ[f"QUANXUAN_{name.upper()}"] = value
    settings = Config.load(os.environ.get("QUANXUAN_CONFIG") or None).service
    if not settings.key_pepper.get_secret_value():
        print("error: QUANXUAN_KEY_PEPPER is empty; set the same secret for the service and `quanxuan keys`")
        return 2
    workers = args.workers or settings.workers
    if workers > 1:
        _share_between_workers(settings, args.port or settings.port)
    uvicorn.run(
        "serving.app:create_app_from_env",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=workers,
        log_level="info",
        access_log=False,
    )
    return 0
