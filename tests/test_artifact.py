"""The versioned artifact: atomic writes, latest selection, verification, per-group access and picks."""

from __future__ import annotations

import gc
import json
import signal
import subprocess
import sys
import textwrap
import weakref
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import contracts.artifact as artifact_mod
from contracts.config import BlendWeights, OpsWeights, RuleConfig
from recsys.picks import pick_for_group
from contracts.artifact import (ArtifactError, ArtifactWriter, latest_artifact, load_artifact, make_version,
                               read_manifest, write_artifact)

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


# ------------------------------------------------------------------------------------ the streaming writer


def _features(candidates: pd.DataFrame) -> pd.DataFrame:
    """A candidate_features-like table: keys plus float32 feature columns."""
    n = len(candidates)
    return pd.DataFrame({"group_id": candidates["group_id"], "product_id": candidates["product_id"],
                         "f_price": np.linspace(0.0, 1.0, n, dtype=np.float32),
                         "f_seen": np.arange(n, dtype=np.int8)})


def _streamed(root: Path, tables: dict[str, pd.DataFrame], block: int, extra: dict) -> Path:
    """Write the artifact with candidates and candidate_features appended `block` rows at a time."""
    with ArtifactWriter(root, "abc123", now=T0) as writer:
        for name, frame in tables.items():
            if name in ("candidates", "candidate_features"):
                for start in range(0, len(frame), block):
                    writer.append(name, frame.iloc[start:start + block])
            else:
                writer.write_table(name, frame)
        for name, content in extra.items():
            writer.add_file(name, content)
        return writer.commit(_manifest())


def test_streamed_blocks_give_the_tables_of_one_write(tmp_path: Path):
    tables = _tables()
    tables["candidate_features"] = _features(tables["candidates"])
    model = tmp_path / "ranker.txt"
    model.write_bytes(b"trees " * 1000)
    one = write_artifact(tmp_path / "one", tables, _manifest(), {"models/ranker.txt": b"trees " * 1000}, now=T0)
    many = _streamed(tmp_path / "many", tables, 3, {"models/ranker.txt": model})
    assert many.name == one.name == "20240501T083000Z-abc123"
    assert pq.ParquetFile(many / "candidates.parquet").num_row_groups == 3  # 7 rows in blocks of 3
    for name in tables:
        whole, streamed = (pd.read_parquet(path / f"{name}.parquet") for path in (one, many))
        pd.testing.assert_frame_equal(whole, streamed, check_exact=True, obj=name)
    m_one, m_many = load_artifact(one).manifest, load_artifact(many).manifest
    assert m_many["tables"] == m_one["tables"] == {"groups": 3, "products": 8, "candidates": 7, "segment_candidates": 2,
                                                   "picks": 1, "candidate_features": 7}
    assert set(m_many["files"]) == set(m_one["files"])
    assert m_many["files"]["models/ranker.txt"] == m_one["files"]["models/ranker.txt"]
    drop = ("files",)
    assert {k: v for k, v in m_many.items() if k not in drop} == {k: v for k, v in m_one.items() if k not in drop}
    art = load_artifact(many)
    assert art["g1"]["product_id"].tolist() == ["p0", "p1", "p2", "p3"]
    assert art["g2"]["product_id"].tolist() == ["p4", "p5", "p6"]
    assert not list((tmp_path / "many").glob(".tmp-*"))


def test_streamed_blocks_in_seller_order_load_like_group_order(tmp_path: Path):
    """Blocks of whole sellers arrive in any group order; each group's rows keep their order within its block."""
    tables = _tables()
    cands = tables["candidates"]
    one = load_artifact(write_artifact(tmp_path / "one", tables, _manifest(), now=T0))
    with ArtifactWriter(tmp_path / "many", "abc123", now=T0) as writer:
        for name, frame in tables.items():
            if name == "candidates":
                writer.append(name, cands[cands["group_id"] == "g1"])
                writer.append(name, cands[cands["group_id"] == "g2"])
            else:
                writer.write_table(name, frame)
        many = load_artifact(writer.commit(_manifest()))
    assert pd.read_parquet(many.path / "candidates.parquet")["group_id"].tolist()[:1] == ["g1"]
    pd.testing.assert_frame_equal(one.candidates, many.candidates, check_exact=True)
    for gid in ("g1", "g2", "g3"):
        pd.testing.assert_frame_equal(one[gid], many[gid], check_exact=True)


def test_schema_drift_between_blocks_is_cast_to_the_first_schema(tmp_path: Path):
    first = pd.DataFrame({"note": [None, None], "score": [np.nan, np.nan], "count": [1, 2], "flag": [True, False]})
    # Other column order, text where the first block had none, NaN in the int column, None in the bool column.
    second = pd.DataFrame({"flag": [None], "count": [np.nan], "score": [0.5], "note": ["新品"]})
    third = pd.DataFrame({"note": [None], "score": [1], "count": [3.0], "flag": [True]})
    with ArtifactWriter(tmp_path, "abc123", now=T0) as writer:
        for frame in (first, second, third):
            writer.append("drift", frame)
        with pytest.raises(ArtifactError, match="does not fit"):
            writer.append("drift", pd.DataFrame({"note": ["x"], "score": [0.0], "count": [1.5], "flag": [True]}))
        with pytest.raises(ArtifactError, match="columns"):
            writer.append("drift", third.assign(extra=1))
        # An empty first block only hints the dtypes: the all-None column then keeps its float type.
        writer.append("hinted", pd.DataFrame({"a": pd.Series(dtype="int64"), "b": pd.Series(dtype="float64")}))
        writer.append("hinted", pd.DataFrame({"a": [7], "b": [None]}))
        writer.append("hinted", pd.DataFrame({"a": [8], "b": [2.5]}))
        writer.append("empty", pd.DataFrame({"a": pd.Series(dtype="int64"), "b": pd.Series(dtype="str")}))
        for name, frame in _tables().items():
            writer.write_table(name, frame)
        path = writer.commit(_manifest())
    schema = pq.read_schema(path / "drift.parquet")
    assert [str(schema.field(c).type) for c in ("note", "score", "count", "flag")] == ["large_string", "double",
                                                                                      "int64", "bool"]
    drift = pd.read_parquet(path / "drift.parquet")
    assert list(drift.columns) == ["note", "score", "count", "flag"]
    assert [None if pd.isna(v) else v for v in drift["note"]] == [None, None, "新品", None]
    assert drift["score"].tolist()[2:] == [0.5, 1.0] and drift["score"].isna().tolist() == [True, True, False, False]
    assert drift["count"].isna().tolist() == [False, False, True, False]
    assert drift["count"].dropna().tolist() == [1, 2, 3]
    assert [None if pd.isna(v) else bool(v) for v in drift["flag"]] == [True, False, None, True]
    assert str(pq.read_schema(path / "hinted.parquet").field("b").type) == "double"
    hinted = pd.read_parquet(path / "hinted.parquet")
    assert hinted["a"].tolist() == [7, 8] and hinted["b"].isna().tolist() == [True, False] and hinted["b"].iat[1] == 2.5
    empty = pd.read_parquet(path / "empty.parquet")
    assert list(empty.columns) == ["a", "b"] and len(empty) == 0
    assert read_manifest(path)["tables"] == {**{n: len(f) for n, f in _tables().items()},
                                             "drift": 4, "hinted": 2, "empty": 0}


def test_leaving_the_with_block_without_commit_keeps_the_previous_latest(tmp_path: Path):
    good = write_artifact(tmp_path, _tables(), _manifest(), now=T0)
    with pytest.raises(RuntimeError, match="block failed"):
        with ArtifactWriter(tmp_path, "abc123", now=T0 + timedelta(hours=1)) as writer:
            writer.append("candidates", _tables()["candidates"])
            assert (writer.tmp / "candidates.parquet").is_file()
            raise RuntimeError("block failed")
    with ArtifactWriter(tmp_path, "abc123", now=T0 + timedelta(hours=2)) as writer:
        writer.append("candidates", _tables()["candidates"])  # no commit
    with pytest.raises(ArtifactError, match="aborted"):
        writer.append("candidates", _tables()["candidates"])
    assert latest_artifact(tmp_path) == good
    assert [p.name for p in tmp_path.iterdir()] == [good.name]


def test_crash_mid_stream_keeps_previous_latest(tmp_path: Path, monkeypatch):
    good = write_artifact(tmp_path, _tables(), _manifest(), now=T0)
    calls = {"n": 0}
    real = pq.ParquetWriter.write_table

    def failing(self, table, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError("disk full")
        return real(self, table, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", failing)
    big = pd.concat([_tables()["candidates"]] * 50, ignore_index=True)
    with pytest.raises(OSError, match="disk full"):
        _streamed(tmp_path, {**_tables("b"), "candidates": big}, 20, {})
    assert calls["n"] == 4  # three blocks were on disk when the fourth failed
    assert latest_artifact(tmp_path) == good
    assert [p.name for p in tmp_path.iterdir()] == [good.name]


def test_kill_mid_stream_keeps_previous_latest(tmp_path: Path):
    good = write_artifact(tmp_path, _tables(), _manifest(), now=T0)
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path[:0] = [{str(Path(__file__).parents[1])!r}, {str(Path(__file__).parent)!r}]
        from test_artifact import _tables
        from contracts.artifact import ArtifactWriter
        with ArtifactWriter({str(tmp_path)!r}, "abc123") as writer:
            for _ in range(3):
                writer.append("candidates", _tables()["candidates"])
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    left = [p for p in tmp_path.iterdir() if p != good]
    assert len(left) == 1 and left[0].name.startswith(".tmp-") and (left[0] / "candidates.parquet").exists()
    assert latest_artifact(tmp_path) == good
    assert load_artifact(latest_artifact(tmp_path)).version == good.name


def test_commit_refuses_missing_tables_and_columns(tmp_path: Path):
    tables = _tables()
    with pytest.raises(ArtifactError, match="picks"):
        with ArtifactWriter(tmp_path, "abc123", now=T0) as writer:
            for name in ("groups", "products", "candidates", "segment_candidates"):
                writer.append(name, tables[name])
            writer.commit(_manifest())
    with pytest.raises(ArtifactError, match=r"'candidates' lacks columns \['in_stock'\]"):
        with ArtifactWriter(tmp_path, "abc123", now=T0) as writer:
            for name, frame in tables.items():
                writer.append(name, frame.drop(columns="in_stock") if name == "candidates" else frame)
            writer.commit(_manifest())
    with pytest.raises(ArtifactError, match="config_hash"):
        with ArtifactWriter(tmp_path, "other", now=T0) as writer:
            for name, frame in tables.items():
                writer.write_table(name, frame)
            writer.commit(_manifest())
    assert not any(tmp_path.iterdir())


def test_writer_keeps_no_frames_and_refuses_reuse(tmp_path: Path):
    with ArtifactWriter(tmp_path, "abc123", now=T0) as writer:
        block = _tables()["candidates"]
        ref = weakref.ref(block)
        writer.append("candidates", block)
        del block
        gc.collect()
        assert ref() is None  # appending kept nothing of the frame
        with pytest.raises(ArtifactError, match="already in the artifact"):
            writer.write_table("candidates", _tables()["candidates"])
        with pytest.raises(ArtifactError, match="already in the artifact"):
            writer.add_file("candidates.parquet", b"x")
        with pytest.raises(ArtifactError, match="bad table name"):
            writer.append("../x", _tables()["picks"])
        for name, frame in _tables().items():
            if name != "candidates":
                writer.write_table(name, frame)
        path = writer.commit(_manifest())
    with pytest.raises(ArtifactError, match="committed"):
        writer.append("candidates", _tables()["candidates"])
    assert latest_artifact(tmp_path) == path and len(load_artifact(path)["g1"]) == 4
