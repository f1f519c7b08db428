"""The versioned artifact: atomic writes, latest selection, verification, per-group access and picks."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

import training.artifact as artifact_mod
from recsys.config import BlendWeights, OpsWeights, RuleConfig
from recsys.picks import pick_for_group
from training.artifact import ArtifactError, latest_artifact, load_artifact, make_version, write_artifact

T0 = datetime(2024, 5, 1, 8, 30, 0, tzinfo=timezone.utc)


def _components(n: int, key: str, value: str, start: int = 0) -> dict:
    return {
        key: [value] * n,
        "product_id": [f"p{start + i}" for i in range(n)],
        "p_conv": [0.4 - 0.05 * i for i in range(n)],
        "price": [10.0 + 10 * i for i in range(n)],
        "commission_rate": [0.1] * n,
        "commission_yuan": [1.0 + i for i in range(n)],
        "rating": [0.95] * n,
        "order_value": [10.0] * n,
        "category": ["食品", "日用", "母婴", "美妆"][:n],
        "brand": [""] * n,
        "sources": ["als"] * n,
        "reasons": [json.dumps(["trending"])] * n,
        "repurchase_due": [False] * n,
        "presale": [False] * n,
        "coupon": [0.0] * n,
        "in_stock": [True] * n,
        "price_change_7d": [0.0] * n,
        "days_since_push": [float("nan")] * n,
    }


def _tables(tag: str = "a") -> dict[str, pd.DataFrame]:
    groups = pd.DataFrame({
        "group_id": ["g1", "g2", "g3"], "seller_id": ["s1", "s2", "s3"], "seller_type": ["宝妈", "快递员", "宝妈"],
        "city_tier": [1, 3, 2], "member_count": [300, 120, 40], "theme": ["母婴", "邻里", "母婴"],
        "cold_start": [False, False, True], "segment": ["宝妈|母婴", "快递员|邻里", "宝妈|母婴"],
    })
    products = pd.DataFrame({"product_id": [f"p{i}" for i in range(8)], "title": [f"商品{i}{tag}" for i in range(8)],
                             "category": ["食品"] * 8, "brand": [""] * 8, "price": [10.0] * 8,
                             "commission_rate": [0.1] * 8})
    # g2 before g1 on purpose: the index must not rely on input order.
    candidates = pd.concat([pd.DataFrame(_components(3, "group_id", "g2", 4)),
                            pd.DataFrame(_components(4, "group_id", "g1"))], ignore_index=True)
    segment = pd.DataFrame(_components(2, "segment", "宝妈|母婴", 6))
    picks = pd.DataFrame({"group_id": ["g1"], "rank": [1], "product_id": ["p0"], "score": [0.3], "weights_hash": ["x"]})
    return {"groups": groups, "products": products, "candidates": candidates, "segment_candidates": segment,
            "picks": picks}


def _manifest() -> dict:
    return {"config_hash": "abc123", "data_window": {"start": "2024-03-01", "end": "2024-04-30"},
            "pick_date": "2024-05-01", "weights_hash": "w1", "metrics": {"ndcg@10": 0.3}}


def test_write_then_load_roundtrip(tmp_path: Path):
    path = write_artifact(tmp_path, _tables(), _manifest(), {"ranker.txt": b"model", "notes.json": b"{}"}, now=T0)
    assert path.name == "20240501T083000Z-abc123" == make_version("abc123", T0)
    assert latest_artifact(tmp_path) == path
    art = load_artifact(path)
    m = art.manifest
    assert m["version"] == path.name and m["pick_date"] == "2024-05-01" and m["metrics"] == {"ndcg@10": 0.3}
    assert set(m["files"]) == {"groups.parquet", "products.parquet", "candidates.parquet",
                               "segment_candidates.parquet", "picks.parquet", "ranker.txt", "notes.json"}
    assert "pandas" in m["libraries"] and m["created_at"].startswith("2024-05-01T08:30:00")
    assert art["g1"]["product_id"].tolist() == ["p0", "p1", "p2", "p3"]
    assert art["g2"]["product_id"].tolist() == ["p4", "p5", "p6"]
    assert len(art["g3"]) == 0
    assert art.candidate_arrays("g2")["p_conv"].tolist() == pytest.approx([0.4, 0.35, 0.3])
    assert art.group("g2")["seller_type"] == "快递员" and art.group("g3")["cold_start"] is True
    assert "g1" in art and "nope" not in art and len(art) == 3
    with pytest.raises(KeyError, match="nope"):
        art["nope"]
    assert not list(tmp_path.glob(".tmp-*"))


def test_latest_is_newest_and_ignores_incomplete(tmp_path: Path):
    first = write_artifact(tmp_path, _tables(), _manifest(), now=T0)
    second = write_artifact(tmp_path, _tables("b"), _manifest(), now=T0 + timedelta(hours=1))
    assert latest_artifact(tmp_path) == second
    # A leftover temp folder (killed write) and a folder without a manifest are both ignored.
    (tmp_path / ".tmp-20990101T000000Z-abc123").mkdir()
    (tmp_path / ".tmp-20990101T000000Z-abc123" / "groups.parquet").write_bytes(b"half")
    (tmp_path / "20990101T000000Z-abc123").mkdir()
    (tmp_path / "20990102T000000Z-abc123").mkdir()
    (tmp_path / "20990102T000000Z-abc123" / "manifest.json").write_text("{not json")
    assert latest_artifact(tmp_path) == second
    assert load_artifact(first).products["title"].iat[0] == "商品0a"
    assert latest_artifact(tmp_path / "absent") is None


def test_same_second_gets_a_distinct_version(tmp_path: Path):
    a = write_artifact(tmp_path, _tables(), _manifest(), now=T0)
    b = write_artifact(tmp_path, _tables(), _manifest(), now=T0)
    assert a != b and b.name == a.name + ".2"


def test_crash_mid_write_keeps_previous_latest(tmp_path: Path, monkeypatch):
    good = write_artifact(tmp_path, _tables(), _manifest(), now=T0)
    calls = {"n": 0}
    real = artifact_mod._write_synced

    def failing(path, data):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        real(path, data)

    monkeypatch.setattr(artifact_mod, "_write_synced", failing)
    with pytest.raises(OSError, match="disk full"):
        write_artifact(tmp_path, _tables("b"), _manifest(), now=T0 + timedelta(hours=1))
    assert latest_artifact(tmp_path) == good
    assert [p.name for p in tmp_path.iterdir()] == [good.name]


def test_missing_table_refused_before_writing(tmp_path: Path):
    tables = _tables()
    del tables["picks"]
    with pytest.raises(ArtifactError, match="picks"):
        write_artifact(tmp_path, tables, _manifest(), now=T0)
    assert not any(tmp_path.iterdir())


def test_corrupt_or_incomplete_artifact_raises(tmp_path: Path):
    path = write_artifact(tmp_path, _tables(), _manifest(), {"ranker.txt": b"model"}, now=T0)
    (path / "ranker.txt").write_bytes(b"tampered")
    with pytest.raises(ArtifactError, match="ranker.txt is corrupt"):
        load_artifact(path)
    (path / "ranker.txt").write_bytes(b"model")
    load_artifact(path)
    (path / "candidates.parquet").unlink()
    with pytest.raises(ArtifactError, match="candidates.parquet is listed in the manifest but missing"):
        load_artifact(path)
    (path / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        load_artifact(path)
    assert latest_artifact(tmp_path) is None


def test_pick_for_group_uses_seller_weights_and_segment_for_cold(tmp_path: Path):
    art = load_artifact(write_artifact(tmp_path, _tables(), _manifest(), now=T0))
    rules = RuleConfig(category_decay=0.0)
    # Default weights: p_conv × commission × rating² → g1's p3 (0.25 × 4) wins over p0 (0.4 × 1).
    weights = OpsWeights(overrides={"快递员": BlendWeights(earnings=0.0)})
    picks, cold = pick_for_group(art, "g1", weights, rules, k=2)
    assert not cold and picks["product_id"].tolist() == ["p3", "p2"]
    # The 快递员 profile ignores earnings, so g2 is ranked by conversion alone.
    picks, cold = pick_for_group(art, "g2", weights, rules, k=3)
    assert not cold and picks["product_id"].tolist() == ["p4", "p5", "p6"]
    picks, cold = pick_for_group(art, "g3", weights, rules, k=5)
    assert cold and picks["product_id"].tolist() == ["p7", "p6"]
    with pytest.raises(KeyError, match="g9"):
        pick_for_group(art, "g9", weights, rules)


def test_extra_files_may_sit_in_one_sub_folder(tmp_path: Path):
    path = write_artifact(tmp_path, _tables(), _manifest(), {"models/ranker.txt": b"trees", "models/ranker.json": b"{}"}, now=T0)
    assert (path / "models" / "ranker.txt").read_bytes() == b"trees"
    assert {"models/ranker.txt", "models/ranker.json"} <= set(load_artifact(path).manifest["files"])
    (path / "models" / "ranker.txt").write_bytes(b"other trees")
    with pytest.raises(ArtifactError, match="models/ranker.txt is corrupt"):
        load_artifact(path)
    for bad in ("../escape.txt", "a/b/c.txt", ".hidden", "models/.x", "/abs.txt", "models/"):
        with pytest.raises(ArtifactError, match="bad extra file name"):
            write_artifact(tmp_path / "bad", _tables(), _manifest(), {bad: b"x"}, now=T0)
    assert not any((tmp_path / "bad").iterdir())
