"""Ta Feng and Beibei through the generic adapter: the row counts their READMEs state."""

from __future__ import annotations

import pytest

from features.adapter import load_beibei, load_tafeng
from contracts.schema import TABLES

pytestmark = pytest.mark.realdata


def test_tafeng_customer_and_area_age(shared_data):
    path = shared_data("tafeng") / "ta_feng.csv.zip"
    ds = load_tafeng(path, level="customer")
    assert len(ds.orders) == 817_741
    assert ds.orders["buyer_id"].nunique() == 32_266
    assert len(ds.groups) == 32_266
    assert len(ds.products) == 23_812
    # category is the first PRODUCT_SUBCLASS seen per product: 1,998 of the 2,012 subclasses.
    assert ds.products["category"].nunique() == 1_998
    assert ds.orders["ordered_at"].min().strftime("%Y-%m-%d") == "2000-11-01"
    assert ds.orders["ordered_at"].max().strftime("%Y-%m-%d") == "2001-02-28"
    # SALES_PRICE > ASSET on 91% of lines: those carry a positive margin as commission.
    assert round(float((ds.orders["commission"] > 0).mean()), 2) == 0.91
    assert ds.report.tables["orders"].read == ds.report.tables["orders"].loaded == 817_741
    for name in TABLES:
        assert list(getattr(ds, name).columns) == TABLES[name].names

    area = load_tafeng(path, level="area_age")
    assert len(area.orders) == 817_741
    assert area.orders["group_id"].str.contains("|", regex=False).all()
    # 8 residence areas × age groups (incl. unknown age) seen together: 88 neighbourhood groups.
    assert len(area.groups) == 88
    assert area.groups["member_count"].sum() >= 32_266


def test_beibei_files(shared_data):
    frames = load_beibei(shared_data("beibei_groupbuy"))
    assert len(frames["tune"]) == 154_184
    assert len(frames["test"]) == 178_642
    assert len(frames["invalid"]) == 211_291
    assert len(frames["orders"]) == 154_184 + 178_642
    assert len(frames["pushes"]) == 154_184 + 178_642 + 211_291
    assert frames["products"]["product_id"].nunique() <= 30_782
    assert frames["test"]["ordered_at"].min() > frames["tune"]["ordered_at"].max()
    assert frames["groups"]["group_id"].is_unique
