"""Secrets (the key pepper, database and cache URLs with passwords) never reach a file, a dump or an error message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import training.daily as daily
from features.sample_world import generate
from contracts.config import Config, config_hash
from serving.app import build_services
from serving.storage.factory import open_cache, open_store, redact
from cli.main import main
from training.evaluate import EvalOptions, Frames, run_evaluation, time_split
from training.report import write_report

PEPPER = "pepper-that-must-stay-secret"
PASSWORD = "pg-password-that-must-stay-secret"
ENV = {"QUANXUAN_KEY_PEPPER": PEPPER, "QUANXUAN_DB_URL": f"postgresql://quanxuan:{PASSWORD}@db.internal:5432/prod",
       "QUANXUAN_CACHE_URL": f"redis://:{PASSWORD}@cache.internal:6379/0"}


def _secret_config() -> Config:
    cfg = Config.load(env=ENV)
    cfg.ranker = cfg.ranker.model_copy(update={"n_estimators": 30, "min_child_samples": 20})
    cfg.candidates = cfg.candidates.model_copy(update={"per_source": 20, "union_size": 30, "als_iterations": 2})
    return cfg


def _files_holding_secrets(root: Path) -> list[str]:
    """Every file under root whose bytes contain the pepper or the password."""
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if PEPPER.encode() in data or PASSWORD.encode() in data:
                found.append(str(path.relative_to(root)))
    return found


def test_settings_hold_secrets_but_never_show_them():
    cfg = Config.load(env=ENV)
    assert cfg.service.key_pepper.get_secret_value() == PEPPER
    shown = json.dumps(cfg.model_dump(mode="json", by_alias=True)) + repr(cfg) + str(cfg.service)
    assert PEPPER not in shown and PASSWORD not in shown
    # The fingerprint of what produced the picks does not depend on the secrets either.
    assert config_hash(cfg) == config_hash(Config.load(env={**ENV, "QUANXUAN_KEY_PEPPER": "another"}))


def test_artifact_and_evaluation_report_hold_no_secret(tmp_path: Path):
    world = generate(seed=3, groups=60, products=80, days=30)
    cfg = _secret_config()
    result = daily.run_daily(world, cfg, tmp_path / "artifacts", evaluate=True, test_days=7, log=lambda _: None)
    assert (result.artifact / "evaluation.json").exists()
    assert _files_holding_secrets(tmp_path / "artifacts") == []
    train, test, cutoff = time_split(Frames.of(world), 7)
    options = EvalOptions(baselines=("popular", "own_top"), blend_sources=("popular", "own_top"))
    evaluated = run_evaluation(train, test, cfg, options, dataset="toy", cutoff=cutoff, log=lambda _: None)
    write_report(evaluated, tmp_path / "report")
    assert (tmp_path / "report" / "result.json").exists()
    assert _files_holding_secrets(tmp_path / "report") == []


def test_the_service_refuses_an_empty_pepper(tmp_path: Path):
    cfg = Config.load(env={"QUANXUAN_DB_URL": f"sqlite:///{tmp_path / 's.sqlite3'}"})
    with pytest.raises(ValueError, match="QUANXUAN_KEY_PEPPER is empty"):
        build_services(cfg)


def test_keys_create_refuses_an_empty_pepper(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.delenv("QUANXUAN_KEY_PEPPER", raising=False)
    assert main(["keys", "--db-url", f"sqlite:///{tmp_path / 's.sqlite3'}", "create", "--role", "ops"]) == 2
    assert "QUANXUAN_KEY_PEPPER is empty" in capsys.readouterr().out


def test_url_errors_never_print_a_password():
    assert redact(f"postgresql://u:{PASSWORD}@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact("sqlite:///state.sqlite3") == "sqlite:///state.sqlite3"
    for opener, url in ((open_store, f"mysql://u:{PASSWORD}@h/db"), (open_cache, f"memcached://u:{PASSWORD}@h")):
        with pytest.raises(ValueError) as info:
            opener(url)
        assert PASSWORD not in str(info.value) and "***" in str(info.value)
