"""Clock kinds: the adapter records how timestamps were made, the loader reads it, every consumer respects it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.adapter import adapt, spec_from_flags
from features.interactions import build_train_data
from features.loading import CLOCK_FILE, ValidationError, load_dataset, weakest_clock
from recsys.candidates import TrendingSource
from contracts.config import FeatureConfig
from training.evaluate import EvalOptions, Frames, for_clock, split_test, time_split


@pytest.fixture()
def log_file(tmp_path: Path) -> Path:
    """Four purchases of two users, with a date column."""
    path = tmp_path / "log.csv"
    path.write_text("user,item,day\nu1,a,2024-01-01\nu1,b,2024-01-03\nu2,a,2024-01-02\nu2,c,2024-01-09\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("flags, kind", [
    (["--time", "day"], "real"),
    ([], "line_order"),
    (["--step-seconds", "0"], "none"),
])
def test_adapt_records_the_clock_and_the_loader_reads_it(log_file: Path, tmp_path: Path, flags: list[str], kind: str):
    out = tmp_path / kind
    ds = adapt(log_file, out, spec_from_flags(["--user", "user", "--item", "item"] + flags))
    assert ds.clock == kind
    assert json.loads((out / CLOCK_FILE).read_text("utf-8"))["clock"] == kind
    loaded = load_dataset(out)
    assert loaded.clock == kind and loaded.orders.attrs["clock"] == kind
    assert Frames.of(loaded).clock == kind
    assert build_train_data(loaded.products, loaded.sellers, loaded.groups, loaded.pushes, loaded.orders).clock == kind


def test_appending_keeps_the_weakest_clock(log_file: Path, tmp_path: Path):
    out = tmp_path / "out"
    adapt(log_file, out, spec_from_flags(["--user", "user", "--item", "item", "--time", "day", "--id-prefix", "a:"]))
    ds = adapt(log_file, out, spec_from_flags(["--user", "user", "--item", "item", "--id-prefix", "b:"]), append=True)
    assert ds.clock == "line_order" and load_dataset(out).clock == "line_order"
    assert weakest_clock("real", "none", "line_order") == "none" and weakest_clock() == "real"


def test_a_folder_without_clock_file_is_real_and_a_bad_one_is_named(log_file: Path, tmp_path: Path):
    out = tmp_path / "out"
    adapt(log_file, out, spec_from_flags(["--user", "user", "--item", "item", "--time", "day"]))
    (out / CLOCK_FILE).unlink()
    assert load_dataset(out).clock == "real"
    (out / CLOCK_FILE).write_text('{"clock": "sundial"}', encoding="utf-8")
    with pytest.raises(ValidationError, match="clock.json.*sundial"):
        load_dataset(out)


def test_no_time_split_trend_or_half_life_grid_without_a_real_clock(log_file: Path, tmp_path: Path):
    ds = adapt(log_file, tmp_path / "o", spec_from_flags(["--user", "user", "--item", "item"]))
    frames = Frames.of(ds)
    with pytest.raises(ValueError, match="no time split on a 'line_order' clock"):
        time_split(frames, 7)
    # Without a real clock the test is each group's last line instead of the last days.
    train, test, cutoff = split_test(frames)
    assert cutoff is None and sorted(test.orders["product_id"]) == ["b", "c"] and test.clock == "line_order"
    data = build_train_data(ds.products, ds.sellers, ds.groups, ds.pushes, ds.orders, FeatureConfig(half_life_days=1.0))
    # Line numbers one minute apart: a 1-day half-life would decay nothing anyway, but no decay is applied at all.
    assert data.purchases.data.tolist() == [1.0] * 4
    assert np.isneginf(TrendingSource().fit(data).z_).all()
    options = for_clock(EvalOptions(), "line_order")
    assert "trending" not in options.blend_sources and "repurchase" not in options.blend_sources
    assert options.half_lives == () and "half_life_days" not in options.grids["popular"]
    assert for_clock(EvalOptions(), "real") == EvalOptions()


def test_frames_take_the_clock_of_their_orders():
    orders = pd.DataFrame({"order_id": ["o"], "group_id": ["g"], "product_id": ["p"],
                           "ordered_at": [pd.Timestamp("2024-01-01")], "quantity": 1, "paid": 1.0})
    orders.attrs["clock"] = "none"
    assert Frames(None, None, None, None, orders).clock == "none"
    with pytest.raises(ValueError, match="unknown clock kind"):
        Frames(None, None, None, None, orders, clock="wall")


def test_sources_that_read_only_the_order_of_events_run_on_a_line_order_clock(log_file: Path, tmp_path: Path):
    from types import SimpleNamespace

    from training.examples import sources_for

    names = ("popular", "trending", "repurchase", "tifu_knn")
    # TIFU-KNN's baskets need an order of events, not days: kept on line order when listed, never on "none".
    assert sources_for(SimpleNamespace(timed=False, clock="line_order"), names, ("tifu_knn",)) == ("popular", "tifu_knn")
    assert sources_for(SimpleNamespace(timed=False, clock="line_order"), names, ()) == ("popular",)
    assert sources_for(SimpleNamespace(timed=False, clock="none"), names, ("tifu_knn",)) == ("popular",)
    assert sources_for(SimpleNamespace(timed=True, clock="real"), names, ()) == names
    with_tifu = EvalOptions(blend_sources=EvalOptions().blend_sources + ("tifu_knn",))
    ordered = for_clock(with_tifu, "line_order", ("tifu_knn",))
    assert "tifu_knn" in ordered.blend_sources and "tifu_knn" in ordered.baselines
    assert "trending" not in ordered.blend_sources and "repurchase" not in ordered.blend_sources
    assert "tifu_knn" not in for_clock(with_tifu, "none", ("tifu_knn",)).blend_sources
    assert "tifu_knn" not in for_clock(EvalOptions(), "line_order").baselines
