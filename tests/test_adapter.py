"""The generic adapter: flags to contract tables, presets as plain flags, the `quanxuan adapt` command."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.adapter import (PRESETS, adapt, build_dataset, load_beibei, load_tafeng, read_interactions,
                              spec_from_flags, to_events)
from features.loading import load_dataset
from contracts.schema import TABLES
from features.validation import ValidationError
from cli.main import main

# A Ta Feng-shaped file with made-up values: m/d/Y dates, line totals for price (SALES) and cost (ASSET).
SHOP_CSV = (
    '"DT","CUST","AGE","AREA","SUBCLASS","ITEM","UNITS","ASSET","SALES"\n'
    '"11/1/2000","c1","30-34","115","100","i1","2","20","30"\n'
    '"11/1/2000","c2","30-34","115","100","i1","1","10","12"\n'
    '"11/2/2000","c1","30-34","115","200","i2","1","50","40"\n'
    '"11/3/2000","c3",,"221","200","i2","3","60","90"\n'
)
SHOP_FLAGS = ["--user", "CUST", "--item", "ITEM", "--time", "DT", "--time-format", "%m/%d/%Y", "--quantity", "UNITS",
              "--price", "SALES", "--cost", "ASSET", "--line-totals", "--category", "SUBCLASS"]


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    path = tmp_path / "shop.csv"
    path.write_text(SHOP_CSV, encoding="utf-8")
    return path


def test_line_totals_margin_as_commission_and_customer_groups(shop: Path):
    spec = spec_from_flags(SHOP_FLAGS)
    ds = build_dataset([to_events(read_interactions(shop, spec), spec)])
    o = ds.orders
    assert o["order_id"].tolist() == ["1", "2", "3", "4"]
    assert o["group_id"].tolist() == ["c1", "c2", "c1", "c3"]
    assert o["buyer_id"].tolist() == ["c1", "c2", "c1", "c3"]
    assert o["quantity"].tolist() == [2, 1, 1, 3]
    assert o["paid"].tolist() == [30.0, 12.0, 40.0, 90.0]
    # commission = SALES − ASSET, a loss counts as 0.
    assert o["commission"].tolist() == [10.0, 2.0, 0.0, 30.0]
    assert o["ordered_at"].dt.strftime("%Y-%m-%d %H:%M %Z").tolist() == [
        "2000-11-01 00:00 CST", "2000-11-01 00:00 CST", "2000-11-02 00:00 CST", "2000-11-03 00:00 CST"]
    p = ds.products
    # i1: unit prices 15 and 12 -> 13.5; rate 12/42. i2: unit prices 40 and 30 -> 35; rate 30/130.
    assert p[["product_id", "category", "price"]].values.tolist() == [["i1", "100", 13.5], ["i2", "200", 35.0]]
    assert p["commission_rate"].round(6).tolist() == [round(12 / 42, 6), round(30 / 130, 6)]
    assert ds.groups[["group_id", "seller_id", "member_count"]].values.tolist() == [
        ["c1", "c1", 1], ["c2", "c2", 1], ["c3", "c3", 1]]
    assert set(ds.sellers["seller_type"]) == {"其他"} and set(ds.sellers["city_tier"]) == {3}
    assert ds.pushes.empty


def test_group_by_several_columns_forms_neighbourhood_groups(shop: Path):
    spec = spec_from_flags(SHOP_FLAGS + ["--group-by", "AREA", "AGE"])
    ds = build_dataset([to_events(read_interactions(shop, spec), spec)])
    assert ds.orders["group_id"].tolist() == ["115|30-34", "115|30-34", "115|30-34", "221|"]
    assert ds.groups[["group_id", "member_count"]].values.tolist() == [["115|30-34", 2], ["221|", 1]]


def test_unit_prices_without_cost_give_zero_commission(tmp_path: Path):
    path = tmp_path / "sales.csv"
    path.write_text("when,who,what,n,unit\n2024-05-01T10:00:00+00:00,u1,a,3,2.5\n2024-05-02 09:00,u2,a,1,3\n",
                    encoding="utf-8")
    spec = spec_from_flags(["--user", "who", "--item", "what", "--time", "when", "--quantity", "n", "--price", "unit"])
    ds = build_dataset([to_events(read_interactions(path, spec), spec)])
    assert ds.orders["paid"].tolist() == [7.5, 3.0]
    assert ds.orders["commission"].tolist() == [0.0, 0.0]
    assert ds.orders["ordered_at"].dt.strftime("%m-%d %H:%M").tolist() == ["05-01 18:00", "05-02 09:00"]
    assert ds.products["price"].tolist() == [2.75]


def test_headerless_lines_with_synthetic_clock_and_rows(tmp_path: Path):
    ok = tmp_path / "ok.txt"
    ok.write_text("10\t500\t77\n11\t501\t78\t79\n10\t502\t80\n", encoding="utf-8")
    failed = tmp_path / "failed.txt"
    failed.write_text("12\t500\n10\t503\n", encoding="utf-8")
    success = spec_from_flags(PRESETS["beibei-success"] + ["--id-prefix", "ok:", "--start", "2021-01-01 00:00"])
    fail = spec_from_flags(PRESETS["beibei-failed"] + ["--start", "2021-01-01 00:00", "--step-seconds", "3600"])
    parts = [to_events(read_interactions(ok, success), success), to_events(read_interactions(failed, fail), fail)]
    ds = build_dataset(parts)
    assert ds.orders[["order_id", "group_id", "product_id", "buyer_id"]].values.tolist() == [
        ["ok:1", "10", "500", "77"], ["ok:2", "11", "501", "78"], ["ok:3", "10", "502", "80"]]
    assert ds.orders["ordered_at"].dt.strftime("%H:%M").tolist() == ["00:01", "00:02", "00:03"]
    assert ds.pushes[["group_id", "product_id"]].values.tolist() == [
        ["10", "500"], ["11", "501"], ["10", "502"], ["12", "500"], ["10", "503"]]
    assert ds.pushes["pushed_at"].dt.strftime("%H:%M").tolist() == ["00:01", "00:02", "00:03", "01:00", "02:00"]
    # No prices at all: paid 0 and the documented 1-yuan placeholder price.
    assert ds.products["price"].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert ds.groups[["group_id", "member_count"]].values.tolist() == [["10", 2], ["11", 1], ["12", 1]]


def test_load_beibei_splits_files(tmp_path: Path):
    (tmp_path / "tune.txt").write_text("1\t100\t5\n2\t101\t6\n", encoding="utf-8")
    (tmp_path / "test.txt").write_text("1\t102\t7\n", encoding="utf-8")
    (tmp_path / "invalid.txt").write_text("3\t100\n", encoding="utf-8")
    frames = load_beibei(tmp_path)
    assert frames["tune"]["order_id"].tolist() == ["tune:1", "tune:2"]
    assert frames["test"]["order_id"].tolist() == ["test:1"]
    assert frames["invalid"][["group_id", "product_id"]].values.tolist() == [["3", "100"]]
    assert len(frames["pushes"]) == 4 and len(frames["orders"]) == 3
    assert frames["test"]["ordered_at"].min() > frames["tune"]["ordered_at"].max()


def test_load_beibei_participants_order_in_their_own_name(tmp_path: Path):
    (tmp_path / "tune.txt").write_text("1\t100\t5\n2\t101\t6\t7\n", encoding="utf-8")
    (tmp_path / "test.txt").write_text("5\t102\t8\n", encoding="utf-8")
    (tmp_path / "invalid.txt").write_text("3\t100\n", encoding="utf-8")
    frames = load_beibei(tmp_path, participants=True)
    # The first participant of each tune line joins in her own name, at the line's clock; test.txt's do not.
    assert frames["joined"][["order_id", "group_id", "product_id"]].values.tolist() == [
        ["joined:1", "5", "100"], ["joined:2", "6", "101"]]
    assert frames["joined"]["ordered_at"].tolist() == frames["tune"]["ordered_at"].tolist()
    assert len(frames["orders"]) == 5 and "8" not in set(frames["orders"]["group_id"])
    assert {"5", "6"} <= set(frames["groups"]["group_id"])
    assert "joined" not in load_beibei(tmp_path)


def test_time_format_mismatch_names_the_line(shop: Path, tmp_path: Path):
    bad = tmp_path / "bad.csv"
    bad.write_text(SHOP_CSV.replace('"11/2/2000"', '"2000-11-02"'), encoding="utf-8")
    spec = spec_from_flags(SHOP_FLAGS)
    with pytest.raises(ValidationError) as info:
        to_events(read_interactions(bad, spec), spec, "bad.csv")
    assert [str(p) for p in info.value.problems] == ["bad.csv:4 DT '2000-11-02' — does not match --time-format %m/%d/%Y"]


def test_missing_column_and_missing_flags_are_reported(shop: Path):
    spec = spec_from_flags(["--user", "CUST", "--item", "SKU"])
    with pytest.raises(ValidationError, match="no column 'SKU'"):
        to_events(read_interactions(shop, spec), spec)
    with pytest.raises(ValueError, match="--item is required"):
        spec_from_flags(["--user", "CUST"])
    with pytest.raises(ValueError, match="give --user or --group-by"):
        spec_from_flags(["--item", "ITEM"])


def test_every_preset_is_plain_flags():
    for name, flags in PRESETS.items():
        assert all(isinstance(f, str) for f in flags), name
        assert spec_from_flags(flags).item, name


def test_bad_quantity_is_rejected_or_quarantined(tmp_path: Path):
    path = tmp_path / "in.csv"
    path.write_text("u,i,q\na,x,1\nb,y,two\n", encoding="utf-8")
    spec = spec_from_flags(["--user", "u", "--item", "i", "--quantity", "q"])
    with pytest.raises(ValidationError, match="orders:2 quantity 'two' — not an integer"):
        adapt(path, tmp_path / "out", spec)
    ds = adapt(path, tmp_path / "out", spec, quarantine=True)
    assert ds.orders["product_id"].tolist() == ["x"]
    rejects = pd.read_csv(tmp_path / "out" / "rejects" / "orders.csv", dtype=str)
    assert rejects["order_id"].tolist() == ["2"]


def test_adapt_command_writes_a_loadable_folder_and_appends(shop: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    first = ["adapt", str(shop), str(out), "--preset", "tafeng-customer", "--user", "CUST", "--item", "ITEM",
             "--time", "DT", "--quantity", "UNITS", "--price", "SALES", "--cost", "ASSET", "--category", "SUBCLASS",
             "--id-prefix", "a:"]
    assert main(first) == 0
    printed = capsys.readouterr().out
    assert "orders" in printed and "clock: real" in printed
    ds = load_dataset(out)
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{t}.parquet" for t in TABLES] + ["clock.json"])
    assert ds.clock == "real" and ds.orders.attrs["clock"] == "real"
    assert ds.orders["order_id"].tolist() == ["a:1", "a:2", "a:3", "a:4"]
    assert ds.products["category"].tolist() == ["100", "200"]
    more = tmp_path / "more.csv"
    more.write_text('"DT","CUST","ITEM","UNITS","SALES"\n"12/1/2000","c9","i3","1","5"\n', encoding="utf-8")
    second = ["adapt", str(more), str(out), "--user", "CUST", "--item", "ITEM", "--time", "DT", "--time-format",
              "%m/%d/%Y", "--quantity", "UNITS", "--price", "SALES", "--line-totals", "--append", "--id-prefix", "b:",
              "--format", "csv"]
    assert main(second) == 0
    again = load_dataset(out)
    assert again.orders["order_id"].tolist() == ["a:1", "a:2", "a:3", "a:4", "b:1"]
    assert again.products[["product_id", "category"]].values.tolist() == [["i1", "100"], ["i2", "200"], ["i3", "未知"]]
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{t}.csv" for t in TABLES] + ["clock.json"])
    assert main(["adapt", str(shop), str(tmp_path / "x"), "--user", "CUST"]) == 2


def test_load_tafeng_rejects_unknown_level(shop: Path):
    with pytest.raises(ValueError, match="level must be one of"):
        load_tafeng(shop, level="store")
