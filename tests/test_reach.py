"""Brand reach: the count model, the programme simulation, what-ifs through a real ranker, new products, the API."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from contracts.config import BlendWeights, OpsWeights, ReachConfig, RuleConfig
from recsys.reach import (
    ArtifactCandidates,
    Change,
    NewProduct,
    OrderRateForecaster,
    RankerRescorer,
    ReachForecaster,
    backtest_summary,
    count_interval,
    fit_dispersion,
    simulate_placements,
    weekly_counts,
)
from contracts.artifact import Artifact

CONVERSION_ONLY = OpsWeights(default=BlendWeights(conversion=1, earnings=0, rating=0, order_value=0, diversity=0))
EARNINGS = OpsWeights(default=BlendWeights(conversion=1, earnings=1, rating=0, order_value=0, diversity=0))
ONE_A_DAY = RuleConfig(top_k=1, max_per_brand=50, max_per_category=50, category_decay=0.0)


def _world() -> Artifact:
    """Two warm groups (宝妈 tier 1, 学生 tier 3) with three candidates each, one cold group in the 学生|3 segment."""
    groups = pd.DataFrame({
        "group_id": ["G1", "G2", "G3"], "seller_id": ["S1", "S2", "S2"], "seller_type": ["宝妈", "学生", "学生"],
        "city_tier": [1, 3, 3], "member_count": [100, 40, 60], "theme": ["母婴", "学习", "学习"],
        "cold_start": [False, False, True], "segment": ["宝妈|1", "学生|3", "学生|3"],
    })
    products = pd.DataFrame({
        "product_id": ["A", "B", "C"], "title": ["婴儿纸尿裤L码", "婴儿湿巾80抽", "学生笔记本文具套装"],
        "category": ["母婴/纸尿裤", "母婴/湿巾", "文具/本册"], "brand": ["好孩子", "好孩子", "得力"],
        "price": [100.0, 20.0, 10.0], "commission_rate": [0.1, 0.1, 0.2],
    })

    def rows(key: str, value: str, p_conv: list[float]) -> list[dict]:
        return [{key: value, "product_id": pid, "p_conv": p, "price": price, "commission_rate": rate,
                 "commission_yuan": price * rate, "rating": 0.95, "order_value": price, "category": cat.split("/")[0],
                 "brand": brand, "reasons": "[]", "in_stock": True, "coupon": 0.0}
                for pid, p, price, rate, cat, brand in zip(products.product_id, p_conv, products.price,
                                                           products.commission_rate, products.category, products.brand)]

    cands = pd.DataFrame(rows("group_id", "G1", [0.10, 0.30, 0.05]) + rows("group_id", "G2", [0.02, 0.04, 0.20]))
    segs = pd.DataFrame(rows("segment", "学生|3", [0.01, 0.03, 0.25]) + rows("segment", "宝妈|1", [0.1, 0.1, 0.1]))
    picks = pd.DataFrame({"group_id": [], "rank": [], "product_id": [], "score": [], "weights_hash": []})
    return Artifact(Path("."), {}, groups, products, cands, segs, picks)


def test_count_interval_is_the_negative_binomial_central_interval():
    lo, hi = count_interval([0.0, 100.0], dispersion=0.0, level=0.8)
    assert (lo[0], hi[0]) == (0.0, 0.0)
    assert lo[1] == stats.poisson.ppf(0.1, 100)
    assert hi[1] in (stats.poisson.ppf(0.9, 100), stats.poisson.ppf(0.9, 100) - 1)
    # P(0) = 0.74 and P(≤1) = 0.96 at mean 0.3: [0, 0] is the interval nearer 80 %.
    lo, hi = count_interval(0.3, dispersion=0.0)
    assert (lo[0], hi[0]) == (0.0, 0.0)
    r = 1 / 0.5
    lo, hi = count_interval(20.0, dispersion=0.5)
    assert lo[0] == stats.nbinom.ppf(0.1, r, r / (r + 20.0))


def test_intervals_cover_close_to_their_level_on_simulated_counts():
    rng = np.random.default_rng(0)
    mu = rng.gamma(1.0, 3.0, size=20000)
    kappa = 0.3
    y = rng.poisson(mu * rng.gamma(1 / kappa, kappa, size=mu.size))
    lo, hi = count_interval(mu, kappa, 0.8)
    coverage = np.mean((y >= lo) & (y <= hi))
    assert 0.75 <= coverage <= 0.85  # the target band; small counts keep it a little above 80 %
    assert abs(fit_dispersion(y, mu) - kappa) < 0.08


def test_weekly_counts_bins_orders_by_week_before_and_after_the_cutoff():
    orders = pd.DataFrame({
        "product_id": ["A", "A", "A", "B", "B"],
        "ordered_at": pd.to_datetime(["2025-06-30 10:00", "2025-06-29 10:00", "2025-06-20 00:00", "2025-07-03 09:00", "2025-06-24 08:00"]),
        "refunded": [False, False, False, False, True],
    })
    table = weekly_counts(orders, pd.Timestamp("2025-07-01"), weeks=2)
    assert table.loc["A"].tolist() == [0.0, 2.0, 1.0]
    assert table.loc["B"].tolist() == [1.0, 0.0, 0.0]


def test_order_rate_forecaster_beats_naive_on_stationary_demand():
    rng = np.random.default_rng(3)
    n_products, days = 600, 84
    rate = rng.gamma(0.8, 1.5, size=n_products) / 7.0  # orders per day
    counts = rng.poisson(np.outer(rate, np.ones(days)))
    p, d = np.nonzero(counts)
    reps = counts[p, d]
    start = pd.Timestamp("2025-04-01")
    orders = pd.DataFrame({"product_id": np.repeat([f"P{i}" for i in p], reps),
                           "ordered_at": start + pd.to_timedelta(np.repeat(d, reps) + 0.5, unit="D")})
    products = pd.DataFrame({"product_id": [f"P{i}" for i in range(n_products)],
                             "category": [f"类{i % 5}/子" for i in range(n_products)]})
    cutoff = start + pd.Timedelta(days=77)
    model = OrderRateForecaster(history_weeks=8).fit(orders, products, cutoff)
    result = backtest_summary(model.forecast(orders, products))
    assert result["gain_vs_naive"] > 0.12
    assert 0.72 <= result["coverage"] <= 0.88


def test_simulation_picks_one_a_day_without_repeats_and_sums_bernoulli_terms():
    art = _world()
    src = ArtifactCandidates(art)
    placed = simulate_placements(src, ["G1", "G3"], CONVERSION_ONLY, ONE_A_DAY, days=3)
    g1 = placed[placed["group_id"] == "G1"].sort_values("day")
    assert g1["product_id"].tolist() == ["B", "A", "C"]
    g3 = placed[placed["group_id"] == "G3"].sort_values("day")  # cold: its segment's list
    assert g3["product_id"].tolist() == ["C", "B", "A"]
    assert g3["p_conv"].tolist() == [0.25, 0.03, 0.01]

    cfg = ReachConfig(dispersion=0.0, week_days=3)
    result = ReachForecaster(src, CONVERSION_ONLY, ONE_A_DAY, cfg, art.products).forecast(["A", "B"])
    day, week = result["day"]["total"], result["week"]["total"]
    assert day["groups"]["mean"] == 1 and day["members"]["mean"] == 100  # only G1 picks B on day 1
    assert day["orders"]["mean"] == pytest.approx(0.30)
    assert day["gmv"]["mean"] == pytest.approx(0.30 * 20.0)
    assert day["commission"]["mean"] == pytest.approx(0.30 * 20.0 * 0.1)
    # Over three days every group picks A and B once: 0.1+0.3 (G1), 0.02+0.04 (G2), 0.01+0.03 (G3).
    assert week["orders"]["mean"] == pytest.approx(0.50)
    assert week["groups"]["mean"] == 3 and week["members"]["mean"] == 200
    by_type = {part["key"]: part["orders"]["mean"] for part in result["week"]["by_seller_type"]}
    assert by_type == pytest.approx({"宝妈": 0.40, "学生": 0.10})
    assert {p["key"] for p in result["week"]["by_city_tier"]} == {"1", "3"}


def test_what_if_commission_moves_a_product_into_the_picks_through_the_blend():
    art = _world()
    forecaster = ReachForecaster(ArtifactCandidates(art), EARNINGS, ONE_A_DAY, ReachConfig(week_days=1), art.products)
    # Day-1 pick by p_conv × commission_yuan. Now A (0.1 × 10) wins only in G1; at 60 % A scores 0.02 × 60 = 1.2
    # against C's 0.2 × 2 in G2, and 0.01 × 60 = 0.6 against C's 0.25 × 2 in cold G3's segment.
    result = forecaster.what_if(["A"], Change(commission_rate=0.6))
    assert result["rescored"] is False
    base, after = result["base"]["day"]["total"], result["what_if"]["day"]["total"]
    assert base["groups"]["mean"] == 1 and base["orders"]["mean"] == pytest.approx(0.10)
    assert after["groups"]["mean"] == 3 and after["members"]["mean"] == 200
    assert after["orders"]["mean"] == pytest.approx(0.10 + 0.02 + 0.01)
    assert after["commission"]["mean"] == pytest.approx((0.10 + 0.02 + 0.01) * 100 * 0.6)


@pytest.fixture(scope="module")
def daily_artifact(tmp_path_factory) -> Artifact:
    """An artifact written by the real daily job (ranker, candidate_features) on a tiny sample world."""
    from features.sample_world import generate
    from contracts.config import Config
    from contracts.artifact import load_artifact
    from training.daily import run_daily

    cfg = Config()
    cfg.ranker = cfg.ranker.model_copy(update={"n_estimators": 40, "min_child_samples": 20})
    cfg.candidates = cfg.candidates.model_copy(update={"per_source": 30, "union_size": 40, "als_iterations": 3})
    world = generate(seed=3, groups=80, products=120, days=40)
    result = run_daily(world, cfg, tmp_path_factory.mktemp("daily"), evaluate=False, log=lambda _: None)
    return load_artifact(result.artifact)


def _moved_product(art: Artifact, ranker, feats: pd.DataFrame, change: Change) -> tuple[str, pd.DataFrame, np.ndarray]:
    """The product with the most stored rows whose p_conv the ranker moves under this change; its rows and new p_conv."""
    from recsys.ranker import reprice_features

    for pid in feats["product_id"].value_counts().index:
        rows = feats[feats["product_id"] == pid]
        price = rows["log_price"].map(np.exp).to_numpy() if change.price is None else change.price
        new = ranker.predict_proba(reprice_features(rows, price=price, commission_rate=change.commission_rate,
                                                    coupon=change.coupon))
        if not np.allclose(new, ranker.predict_proba(rows)):
            return str(pid), rows, new
    raise AssertionError(f"no product moves under {change}")


@pytest.mark.parametrize("change", [Change(commission_rate=0.45), Change(price=1.0), Change(coupon=30.0)],
                         ids=["commission", "price", "coupon"])
def test_what_if_rescores_through_the_daily_jobs_ranker(daily_artifact, change):
    from recsys.ranker import load_ranker

    art = daily_artifact
    rescorer = RankerRescorer.from_artifact(art)
    assert rescorer is not None
    ranker = load_ranker(art)
    feats = pd.read_parquet(art.path / "candidate_features.parquet")
    pid, rows, expected = _moved_product(art, ranker, feats, change)
    stored = art.candidates.set_index(["group_id", "product_id"])["p_conv"]
    everywhere = OpsWeights(default=BlendWeights(conversion=1, earnings=0, rating=0, order_value=0, diversity=0))
    forecaster = ReachForecaster(ArtifactCandidates(art), everywhere, RuleConfig(top_k=40, max_per_brand=40,
                                 max_per_category=40, category_decay=0.0, no_repeat_days=0, max_price_change=10.0,
                                 in_stock_only=False),
                                 ReachConfig(week_days=1, max_groups=1000), art.products, rescorer)
    result = forecaster.what_if([pid], change)
    assert result["rescored"] is True
    # Every warm group holding the product picks it (top 40 of ≤ 40 candidates), at the ranker's new p_conv.
    warm = rows["group_id"].astype(str).tolist()
    groups = ArtifactCandidates(art).groups_with([pid])
    cold = [g for g in groups if g not in set(warm)]
    source = ArtifactCandidates(art)
    seg_p = {g: float(source.rows(g)["p_conv"][source.rows(g)["product_id"] == pid][0]) for g in cold}
    before = result["base"]["day"]["by_product"][0]["orders"]["mean"]
    after = result["what_if"]["day"]["by_product"][0]["orders"]["mean"]
    assert before == pytest.approx(stored.reindex(pd.MultiIndex.from_product([warm, [pid]])).sum() + sum(seg_p.values()), abs=1e-3)
    assert after == pytest.approx(expected.sum() + sum(seg_p.values()), abs=1e-3)
    assert after != pytest.approx(before, abs=1e-6)


def test_artifact_without_ranker_files_gives_no_rescorer(tmp_path):
    from serving.testing import write_small_artifact

    assert RankerRescorer.from_artifact(write_small_artifact(tmp_path)) is None


class BigramEmbedder:
    """A small real embedder: hashed character bigrams, L2-normalised."""

    dim = 256
    name = "bigram"

    def encode(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for r, text in enumerate(texts):
            for a, b in zip(text, text[1:]):
                out[r, (ord(a) * 31 + ord(b)) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_new_product_borrows_the_placements_of_its_nearest_titles():
    art = _world()
    forecaster = ReachForecaster(ArtifactCandidates(art), CONVERSION_ONLY, RuleConfig(top_k=4, max_per_brand=5, category_decay=0.0),
                                 ReachConfig(week_days=1, cold_neighbours=1), art.products)
    new = NewProduct("NEW", "婴儿纸尿裤XL码", "母婴/纸尿裤", price=90.0, commission_rate=0.12, brand="好孩子")
    result = forecaster.new_product(new, BigramEmbedder())
    assert [n["product_id"] for n in result["neighbours"]] == ["A"]
    # Placed wherever A sits, with A's p_conv there: G1 0.10, G2 0.02, cold G3 (segment) 0.01.
    day = result["day"]["total"]
    assert day["groups"]["mean"] == 3
    assert day["orders"]["mean"] == pytest.approx(0.10 + 0.02 + 0.01)
    assert day["gmv"]["mean"] == pytest.approx((0.10 + 0.02 + 0.01) * 90.0)


# ------------------------------------------------------------------------------------------ the API


@pytest.fixture()
def client(tmp_path):
    from fastapi.testclient import TestClient

    from serving.app import create_app
    from serving.storage.factory import open_store
    from serving.testing import make_keys, service_config, write_small_artifact

    write_small_artifact(tmp_path / "artifacts")
    config = service_config(tmp_path)
    store = open_store(config.service.db_url)
    keys = make_keys(store)
    with TestClient(create_app(config, store=store, watch=False)) as c:
        yield c, {name: {"Authorization": f"Bearer {key}"} for name, key in keys.items()}
    store.close()


def test_brand_reach_endpoint_reads_only_the_keys_brand(client):
    c, keys = client
    ok = c.get("/v1/brands/好孩子/reach", headers=keys["brand"])
    assert ok.status_code == 200
    body = ok.json()
    assert body["product_ids"] == ["P0", "P5", "P10", "P15", "P20", "P25"]
    week = body["week"]["total"]
    assert week["orders"]["lo"] <= week["orders"]["mean"] <= week["orders"]["hi"]
    assert sum(p["orders"]["mean"] for p in body["week"]["by_seller_type"]) == pytest.approx(week["orders"]["mean"], abs=1e-3)
    assert c.get("/v1/brands/三只松鼠/reach", headers=keys["brand"]).status_code == 403
    assert c.get("/v1/brands/三只松鼠/reach", headers=keys["ops"]).status_code == 200
    assert c.get("/v1/brands/好孩子/reach", headers=keys["seller0"]).status_code == 403
    assert c.get("/v1/brands/无此品牌/reach", headers=keys["ops"]).status_code == 404
    assert c.get("/v1/brands/好孩子/reach?product_id=P1", headers=keys["brand"]).status_code == 422


def test_what_if_endpoint(client):
    c, keys = client
    r = c.post("/v1/brands/好孩子/reach/what-if", headers=keys["brand"], json={"commission_rate": 0.6})
    assert r.status_code == 200
    body = r.json()
    assert body["change"] == {"commission_rate": 0.6}
    assert body["what_if"]["week"]["total"]["commission"]["mean"] > body["base"]["week"]["total"]["commission"]["mean"]
    assert c.post("/v1/brands/好孩子/reach/what-if", headers=keys["brand"], json={}).status_code == 422
    assert c.post("/v1/brands/三只松鼠/reach/what-if", headers=keys["brand"], json={"coupon": 5}).status_code == 403


# ------------------------------------------------------------------------------------------ the weekly forecaster


def test_weekly_forecaster_learns_from_pushes_and_beats_naive_on_stationary_demand():
    from recsys.weekly_forecast import WeeklyOrderForecaster

    rng = np.random.default_rng(5)
    n_products, days = 400, 98
    pushes_per_day = rng.gamma(1.0, 2.0, size=n_products)
    conv = rng.beta(2, 8, size=n_products)
    start = pd.Timestamp("2025-03-01")

    def events(rate: np.ndarray, column: str) -> pd.DataFrame:
        counts = rng.poisson(np.outer(rate, np.ones(days)))
        p, d = np.nonzero(counts)
        reps = counts[p, d]
        return pd.DataFrame({"product_id": np.repeat([f"P{i}" for i in p], reps),
                             column: start + pd.to_timedelta(np.repeat(d, reps) + 0.5, unit="D")})

    pushes = events(pushes_per_day, "pushed_at")
    orders = events(pushes_per_day * conv, "ordered_at")
    products = pd.DataFrame({"product_id": [f"P{i}" for i in range(n_products)], "category": [f"类{i % 4}" for i in range(n_products)]})
    cutoff = start + pd.Timedelta(days=91)
    model = WeeklyOrderForecaster(n_estimators=150).fit(orders, products, cutoff, pushes)
    frame = model.forecast()
    result = backtest_summary(frame)
    assert result["median_gain_vs_naive"] > 0.2
    assert 0.72 <= result["coverage"] <= 0.9
    # The target week is never read when fitting: the same fit on data cut at the cut-off forecasts the same.
    early = orders[orders["ordered_at"] < cutoff]
    again = WeeklyOrderForecaster(n_estimators=150).fit(early, products, cutoff, pushes[pushes["pushed_at"] < cutoff])
    assert np.allclose(again.forecast().set_index("product_id")["forecast"].reindex(frame["product_id"]).to_numpy(),
                       frame["forecast"].to_numpy())


def test_holiday_distance_and_stationary_ceiling():
    from recsys.weekly_forecast import _holiday_weeks, stationary_ceiling

    # Chinese New Year's eve 2001-01-23: the week from 2001-01-18 holds it (0), the week after is +1, before −1.
    dist = _holiday_weeks(pd.Timestamp("2001-02-01"), 6)
    assert dist.tolist() == [2.0, 1.0, 0.0, -1.0, -2.0, -3.0, 3.0]
    mu = np.array([0.5, 4.0])
    c = stationary_ceiling(mu, 0.0)
    y = np.arange(60)
    pmf = np.vstack([stats.poisson.pmf(y, m) for m in mu])
    best = sum(float((p * np.abs(y - stats.poisson.ppf(0.5, m))).sum()) for p, m in zip(pmf, mu))
    naive = sum(float((np.outer(p, p) * np.abs(y[:, None] - y[None, :])).sum()) for p in pmf)
    assert c["median_wape"] == pytest.approx(best / mu.sum()) and c["naive_wape"] == pytest.approx(naive / mu.sum())


def test_ewm_weights_and_group_rate_by_hand():
    from recsys.weekly_forecast import ewm_weights, group_rate

    assert np.allclose(ewm_weights(3, 1.0), [4 / 7, 2 / 7, 1 / 7])
    assert group_rate(np.array([0, 0, 1]), np.array([1.0, 3.0, 5.0])).tolist() == [2.0, 2.0, 5.0]


def test_week_matrix_counts_distinct_buyers():
    from recsys.weekly_forecast import week_matrix

    at = pd.to_datetime(["2025-06-30 10:00", "2025-06-29 10:00", "2025-06-28 09:00", "2025-06-20 08:00"])
    keys = pd.Series(["A", "A", "A", "A"])
    buyers = pd.Series(["u1", "u1", "u2", "u1"])
    lines = week_matrix(keys, pd.Series(at), pd.Timestamp("2025-07-01"), 2)
    people = week_matrix(keys, pd.Series(at), pd.Timestamp("2025-07-01"), 2, distinct=buyers)
    assert lines.loc["A"].tolist() == [0.0, 3.0, 1.0]
    assert people.loc["A"].tolist() == [0.0, 2.0, 1.0]


def test_pick_quantile_and_conformal_level():
    from recsys.weekly_forecast import calibrate_level, pick_quantile

    # Poisson(3): the 0.4-quantile is 2 (P(≤2) = 0.42), the 0.45- and 0.5-quantiles are 3; counts of 2 want 0.4.
    assert pick_quantile(np.full(50, 2.0), np.full(50, 3.0), 0.0) == 0.4
    assert pick_quantile(np.full(50, 3.0), np.full(50, 3.0), 0.0) == 0.5
    # Poisson(10): the 80 % interval reaches 13 or 14, so six 10s and two 13s of ten counts are covered: 80 % exactly.
    y = np.array([10.0] * 6 + [13.0] * 2 + [20.0] * 2)
    assert calibrate_level(y, np.full(10, 10.0), 0.0) == 0.8
    # Counts more spread than the model says: the calibrated level rises above 80 % and brings coverage back.
    rng = np.random.default_rng(1)
    mu = rng.gamma(2.0, 2.0, size=5000)
    counts = rng.poisson(mu * rng.gamma(2.0, 0.5, size=mu.size))
    level = calibrate_level(counts, mu, 0.0)
    lo, hi = count_interval(mu, 0.0, level)
    assert level > 0.85 and 0.77 <= np.mean((counts >= lo) & (counts <= hi)) <= 0.83
