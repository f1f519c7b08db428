"""Loading with validation: the malformed corpus, quarantine accounting, timestamps, derived tables, the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.loading import Dataset, ValidationError, load_dataset, load_table
from contracts.schema import TABLES
from features.validation import Problem, validate_rows
from cli.main import main

MALFORMED = Path(__file__).parent / "malformed"
BASE = MALFORMED / "_base"
EXPECTATIONS: dict[str, dict] = json.loads((MALFORMED / "expectations.json").read_text(encoding="utf-8"))
SHANGHAI = "Asia/Shanghai"


def make_case(name: str, folder: Path) -> Path:
    """The valid base dataset with the case's bad file(s) laid over it."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in BASE.iterdir():
        shutil.copy(f, folder / f.name)
    for removed in EXPECTATIONS[name].get("remove", []):
        (folder / removed).unlink()
    for f in (MALFORMED / name).iterdir():
        if f.suffix in (".csv", ".parquet"):
            shutil.copy(f, folder / f.name)
    return folder


def data_rows(path: Path) -> int:
    """Rows a human counts in a table file: non-blank lines after the header, or Parquet rows."""
    if path.suffix == ".parquet":
        return len(pd.read_parquet(path))
    lines = [line for line in path.read_bytes().split(b"\n") if line.strip(b"\r")]
    return max(0, len(lines) - 1)


def matches(p: Problem, e: dict) -> bool:
    """Whether a problem is the one the expectations table describes."""
    return (Path(p.file).name == e["file"] and p.row == e["row"] and p.column == e["column"]
            and e["reason"] in p.reason and ("value" not in e or p.value == e["value"]))


def test_corpus_is_large_enough():
    cases = [d for d in MALFORMED.iterdir() if d.is_dir() and not d.name.startswith("_")]
    assert len(cases) >= 20
    assert sorted(d.name for d in cases) == sorted(EXPECTATIONS)


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTATIONS.items() if not e.get("loads")))
def test_malformed_case_raises_the_specific_problem(name: str, tmp_path: Path):
    folder = make_case(name, tmp_path / name)
    with pytest.raises(ValidationError) as info:
        load_dataset(folder)
    problems = info.value.problems
    assert any(matches(p, EXPECTATIONS[name]) for p in problems), [str(p) for p in problems]
    # Nothing loads, so nothing is written either.
    assert not (folder / "rejects").exists()


@pytest.mark.parametrize("name", sorted(EXPECTATIONS))
def test_malformed_case_under_quarantine_loses_no_row(name: str, tmp_path: Path):
    e = EXPECTATIONS[name]
    folder = make_case(name, tmp_path / name)
    if e.get("fatal"):
        with pytest.raises(ValidationError) as info:
            load_dataset(folder, quarantine=True)
        assert any(e["reason"] in p.reason for p in info.value.problems)
        return
    ds = load_dataset(folder, quarantine=True)
    for table, rep in ds.report.tables.items():
        if rep.source == "absent":
            continue
        assert rep.read == data_rows(folder / rep.source), table
        assert rep.read == rep.loaded + rep.rejected, table
        assert len(getattr(ds, table)) == rep.loaded
        rejects = pd.read_csv(folder / "rejects" / f"{table}.csv", dtype=str, keep_default_na=False)
        assert len(rejects) == rep.rejected
        assert list(rejects.columns[-2:]) == ["row", "reason"]
    expected_rejected = e.get("rejected", {})
    assert {t: r.rejected for t, r in ds.report.tables.items() if r.rejected} == expected_rejected
    if not e.get("loads"):
        table = e["file"].split(".")[0]
        rejects = pd.read_csv(folder / "rejects" / f"{table}.csv", dtype=str, keep_default_na=False)
        assert str(e["row"]) in set(rejects["row"])
        assert any(e["reason"] in r for r in rejects["reason"])
    # Every order is either loaded or in the rejects file.
    rejected_orders = pd.read_csv(folder / "rejects" / "orders.csv", dtype=str, keep_default_na=False)
    source = folder / ds.report.tables["orders"].source
    all_ids = (pd.read_parquet(source) if source.suffix == ".parquet" else pd.read_csv(source, dtype=str))["order_id"]
    assert sorted(list(ds.orders["order_id"]) + list(rejected_orders["order_id"])) == sorted(all_ids)


def test_cascade_reason_names_the_rejected_row(tmp_path: Path):
    ds = load_dataset(make_case("negative_price", tmp_path / "c"), quarantine=True)
    orders = ds.report.rejects["orders"]
    assert orders[["order_id", "row", "reason"]].values.tolist() == [
        ["o2", 3, "product_id: references a rejected products row"]]
    products = ds.report.rejects["products"]
    assert products[["product_id", "price", "row", "reason"]].values.tolist() == [["p2", "-5", 3, "price: must be > 0"]]
    assert sorted(ds.products["product_id"]) == ["p1", "p3"]


def test_rejects_go_under_the_given_folder(tmp_path: Path):
    folder = make_case("quantity_zero", tmp_path / "data")
    ds = load_dataset(folder, quarantine=True, rejects_dir=tmp_path / "out")
    assert ds.report.rejects_dir == tmp_path / "out" / "rejects"
    assert sorted(p.name for p in (tmp_path / "out" / "rejects").iterdir()) == sorted(f"{t}.csv" for t in TABLES)
    assert not (folder / "rejects").exists()


def test_base_dataset_loads_with_contract_types_and_values(tmp_path: Path):
    ds = load_dataset(BASE)
    for name in TABLES:
        frame = getattr(ds, name)
        assert list(frame.columns) == TABLES[name].names
    assert ds.orders["quantity"].dtype == np.int64
    assert ds.orders["paid"].dtype == np.float64
    assert ds.orders["refunded"].tolist() == [False, False, True, False]
    assert str(ds.orders["ordered_at"].dt.tz) == SHANGHAI
    assert ds.orders["ordered_at"].dt.strftime("%Y-%m-%d %H:%M").tolist() == [
        "2024-01-05 09:30", "2024-01-05 10:00", "2024-01-06 21:00", "2024-01-07 08:15"]
    # Absent commission is paid × the product's commission_rate (89.7 × 0.1).
    assert ds.orders["commission"].round(2).tolist() == [5.98, 3.6, 9.48, 8.97]
    assert ds.products["brand"].tolist() == ["好奇", "", "帮宝适"]
    assert ds.products["rating"].isna().tolist() == [False, False, True]
    assert ds.products["in_stock"].tolist() == [True, True, False]
    # Absent launched_at is the first push or order of the product.
    assert ds.products["launched_at"].dt.strftime("%m-%d %H:%M").tolist() == ["01-01 00:00", "01-02 08:00", "01-06 20:00"]
    assert ds.sellers["inviter_id"].isna().tolist() == [True, False]
    assert {n: (r.read, r.loaded, r.rejected, r.derived) for n, r in ds.report.tables.items()} == {
        "products": (3, 3, 0, 0), "sellers": (2, 2, 0, 0), "groups": (2, 2, 0, 0),
        "pushes": (3, 3, 0, 0), "orders": (4, 4, 0, 0)}


def test_timestamps_naive_are_shanghai_and_offsets_are_converted(tmp_path: Path):
    (tmp_path / "orders.csv").write_text(
        "order_id,group_id,product_id,ordered_at,quantity,paid\n"
        "a,g,p,2024-03-01 08:00,1,10\n"
        "b,g,p,2024-03-01T00:00:00Z,1,10\n"
        "c,g,p,2024-03-01T01:30:00+02:00,1,10\n"
        "d,g,p,2024-03-01,1,10\n"
        "e,g,p,2024/03/01 09:15:30,1,10\n"
        "f,g,p,2024-03-01 09:15:30.250,1,10\n", encoding="utf-8")
    ordered = load_dataset(tmp_path).orders["ordered_at"]
    assert str(ordered.dt.tz) == SHANGHAI
    assert ordered.dt.strftime("%Y-%m-%d %H:%M:%S").tolist() == [
        "2024-03-01 08:00:00", "2024-03-01 08:00:00", "2024-03-01 07:30:00",
        "2024-03-01 00:00:00", "2024-03-01 09:15:30", "2024-03-01 09:15:30"]


def test_orders_alone_build_documented_defaults(tmp_path: Path):
    (tmp_path / "orders.csv").write_text(
        "order_id,group_id,product_id,ordered_at,quantity,paid,commission,buyer_id\n"
        "1,g1,p1,2024-01-01 10:00,2,20,2,u1\n"
        "2,g1,p1,2024-01-02 10:00,1,12,,u2\n"
        "3,g1,p2,2024-01-03 10:00,1,0,,u1\n"
        "4,g2,p2,2024-01-04 10:00,1,0,,\n", encoding="utf-8")
    ds = load_dataset(tmp_path)
    # p1: unit prices 10 and 12 -> median 11; commission 2 on the 20 yuan with known commission -> 0.1.
    # p2: never paid for -> catalogue median (11); no commission known -> 0.
    assert ds.products[["product_id", "title", "category", "brand", "price", "commission_rate"]].values.tolist() == [
        ["p1", "p1", "未知", "", 11.0, 0.1], ["p2", "p2", "未知", "", 11.0, 0.0]]
    assert ds.groups[["group_id", "seller_id", "member_count"]].values.tolist() == [["g1", "g1", 2], ["g2", "g2", 1]]
    assert ds.sellers[["seller_id", "seller_type", "city_tier"]].values.tolist() == [["g1", "其他", 3], ["g2", "其他", 3]]
    assert ds.orders["commission"].round(6).tolist() == [2.0, 1.2, 0.0, 0.0]
    assert ds.pushes.empty and list(ds.pushes.columns) == TABLES["pushes"].names
    assert ds.report.tables["products"].derived == 2 and ds.report.tables["products"].read == 0


def test_parquet_round_trip_keeps_types(tmp_path: Path):
    ds = load_dataset(BASE)
    out = tmp_path / "pq"
    out.mkdir()
    for name, frame in ds.tables().items():
        frame.to_parquet(out / f"{name}.parquet", index=False)
    again = load_dataset(out)
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(again, name), getattr(ds, name))


def test_both_csv_and_parquet_is_a_problem(tmp_path: Path):
    folder = make_case("bom_loads", tmp_path / "d")
    load_dataset(BASE).orders.to_parquet(folder / "orders.parquet")
    with pytest.raises(ValidationError, match="both orders.csv and orders.parquet"):
        load_dataset(folder)


def test_load_table_checks_one_file(tmp_path: Path):
    products = load_table(BASE / "products.csv", "products")
    assert products["price"].tolist() == [29.9, 45.0, 89.0]
    with pytest.raises(ValidationError) as info:
        load_table(MALFORMED / "negative_price" / "products.csv", "products")
    assert [str(p) for p in info.value.problems] == ["products.csv:3 price '-5' — must be > 0"]


def test_validate_rows_reports_each_bad_event():
    events = pd.DataFrame({
        "group_id": ["g1", "g1", "gX", None],
        "product_id": ["p1", "p2", "p1", "p1"],
        "pushed_at": ["2024-01-05 09:00", "not a time", "2024-01-05 09:00", "2024-01-05 09:00"],
    })
    problems = validate_rows("pushes", events, {"groups": {"g1"}, "products": {"p1", "p2"}})
    assert [(p.row, p.column, p.value, p.reason) for p in problems] == [
        (2, "pushed_at", "not a time", "unparseable timestamp or outside 1900–2199 (use ISO 8601 or YYYY-MM-DD HH:MM[:SS])"),
        (3, "group_id", "gX", "unknown group_id (not in groups)"),
        (4, "group_id", None, "missing value in a required column"),
    ]
    assert validate_rows("orders", events, None)[0].reason == "missing required column 'order_id'"
    assert validate_rows("pushes", events.iloc[:1], {"groups": {"g1"}}) == []


def test_validate_command_prints_problems_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    folder = make_case("negative_price", tmp_path / "d")
    assert main(["validate", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "products.csv:3 price '-5' — must be > 0" in out
    assert main(["validate", str(folder), "--quarantine", "--rejects", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "orders.csv:3 product_id 'p2' — references a rejected products row" in out
    assert (tmp_path / "out" / "rejects" / "products.csv").exists()
    assert main(["validate", str(BASE)]) == 0


def test_dataset_is_a_plain_dataclass():
    ds = load_dataset(BASE)
    assert isinstance(ds, Dataset)
    assert list(ds.tables()) == ["products", "sellers", "groups", "pushes", "orders"]
