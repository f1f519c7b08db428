"""Picks endpoints: the artifact's candidates blended with the current weights, with copy, cold start, 404s and caching."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient

from recsys.blend import weights_hash
from contracts.config import BlendWeights, OpsWeights, RuleConfig
from recsys.picks import pick_for_group
from recsys.promo.adlaw import check
from serving.app import create_app
from serving.storage.factory import open_store
from serving.testing import make_keys, service_config
from contracts.artifact import load_latest

DAY = "2024-05-01"


@pytest.fixture
def world(tmp_path, artifacts):
    """App on a small artifact: S0 (宝妈) runs G0, G1; S2 (导购) runs G4 and the cold G5."""
    config = service_config(tmp_path, artifact_dir=str(artifacts))
    store = open_store(config.service.db_url)
    keys = make_keys(store)
    with TestClient(create_app(config, store=store)) as client:
        yield client, store, keys, load_latest(artifacts)
    store.close()


def get(client, path, key, **params):
    return client.get(path, headers={"X-API-Key": key}, params=params)


def test_group_picks_match_the_blend_and_carry_copy(world):
    client, store, keys, artifact = world
    response = get(client, "/v1/groups/G0/picks", keys["seller0"], date=DAY, k=5)
    assert response.status_code == 200
    body = response.json()
    expected, cold = pick_for_group(artifact, "G0", OpsWeights(), RuleConfig(), 5)
    assert (body["group_id"], body["seller_id"], body["seller_type"], body["date"]) == ("G0", "S0", "宝妈", DAY)
    assert body["cold_start"] is cold is False
    assert body["artifact_version"] == artifact.version
    assert body["weights_hash"] == weights_hash(BlendWeights())
    assert [p["product_id"] for p in body["picks"]] == expected["product_id"].tolist()
    assert [p["rank"] for p in body["picks"]] == [1, 2, 3, 4, 5]
    assert [p["score"] for p in body["picks"]] == pytest.approx(expected["score"].tolist())
    assert [p["p_conv"] for p in body["picks"]] == pytest.approx(expected["p_conv"].tolist())
    titles = dict(zip(artifact.products["product_id"], artifact.products["title"]))
    for pick in body["picks"]:
        assert pick["title"] == titles[pick["product_id"]]
        assert pick["commission_yuan"] == pytest.approx(pick["price"] * pick["commission_rate"], abs=0.01)
        assert pick["reasons"] and len(pick["reason_labels"]) == len(pick["reasons"])
        assert pick["copy"]["text"] and pick["copy"]["adlaw_clean"] is True and check(pick["copy"]["text"]) == []
        assert pick["copy"]["short_title"] in pick["copy"]["text"] or pick["copy"]["template_id"] == "minimal"
    # Copy for one answer uses distinct templates, and they are remembered for the no-repeat rule.
    used = [p["copy"]["template_id"] for p in body["picks"]]
    assert len(set(used)) == len(used)
    assert sorted(t for t, _ in store.copy_history("G0", date(2024, 5, 1), date(2024, 5, 2))) == sorted(used)


def test_templates_do_not_repeat_on_the_next_days(world):
    client, _, keys, _ = world
    seen: list[set[str]] = []
    for day in ("2024-05-01", "2024-05-02"):
        picks = get(client, "/v1/groups/G0/picks", keys["seller0"], date=day, k=3).json()["picks"]
        seen.append({p["copy"]["template_id"] for p in picks})
    assert len(seen[0]) == 3 and not seen[0] & seen[1]


def test_a_cold_group_gets_segment_picks(world):
    client, _, keys, artifact = world
    body = get(client, "/v1/groups/G5/picks", keys["admin"], date=DAY).json()
    expected, cold = pick_for_group(artifact, "G5", OpsWeights(), RuleConfig(), 10)
    assert body["cold_start"] is True and cold is True
    assert body["segment"] == artifact.group("G5")["segment"]
    assert [p["product_id"] for p in body["picks"]] == expected["product_id"].tolist()
    assert len(body["picks"]) == 10


def test_unknown_group_and_seller_are_404_naming_them(world):
    client, _, keys, _ = world
    response = get(client, "/v1/groups/G404/picks", keys["seller0"])
    assert response.status_code == 404 and "unknown group 'G404'" in response.json()["detail"]
    response = get(client, "/v1/sellers/S404/picks", keys["ops"])
    assert response.status_code == 404 and "unknown seller 'S404'" in response.json()["detail"]


def test_seller_picks_hold_every_group_of_the_seller(world):
    client, _, keys, _ = world
    body = get(client, "/v1/sellers/S0/picks", keys["seller0"], date=DAY, k=4).json()
    assert (body["seller_id"], body["date"]) == ("S0", DAY)
    assert [g["group_id"] for g in body["groups"]] == ["G0", "G1"]
    for group in body["groups"]:
        alone = get(client, f"/v1/groups/{group['group_id']}/picks", keys["seller0"], date=DAY, k=4).json()
        assert group == alone


def test_weights_apply_at_request_time_per_seller_type(world):
    client, _, keys, artifact = world
    before_g0 = get(client, "/v1/groups/G0/picks", keys["seller0"], date=DAY).json()
    before_g2 = get(client, "/v1/groups/G2/picks", keys["seller1"], date=DAY).json()
    earner = BlendWeights(conversion=0.0, earnings=3.0, rating=0.0, diversity=0.0)
    new = OpsWeights(overrides={"宝妈": earner})
    assert client.put("/v1/ops/weights", json=new.model_dump(), headers={"X-API-Key": keys["ops"]}).status_code == 200
    after_g0 = get(client, "/v1/groups/G0/picks", keys["seller0"], date=DAY).json()
    after_g2 = get(client, "/v1/groups/G2/picks", keys["seller1"], date=DAY).json()
    expected, _ = pick_for_group(artifact, "G0", new, RuleConfig(), 10)
    assert after_g0["weights_hash"] == weights_hash(earner) != before_g0["weights_hash"]
    assert [p["product_id"] for p in after_g0["picks"]] == expected["product_id"].tolist()
    assert [p["product_id"] for p in after_g0["picks"]] != [p["product_id"] for p in before_g0["picks"]]
    # Commission alone now ranks G0's picks: highest commission in yuan first.
    yuan = [p["commission_yuan"] for p in after_g0["picks"]]
    assert yuan[0] == max(yuan)
    assert after_g2 == before_g2  # 快递员 keeps the default profile


def test_repeated_requests_are_served_from_the_cache(world):
    client, _, keys, _ = world

    def hits() -> float:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith('quanxuan_picks_cache_total{result="hit"}'):
                return float(line.split()[-1])
        return 0.0

    first = get(client, "/v1/groups/G1/picks", keys["seller0"], date=DAY)
    assert hits() == 0.0
    second = get(client, "/v1/groups/G1/picks", keys["seller0"], date=DAY)
    assert hits() == 1.0 and second.content == first.content
    get(client, "/v1/groups/G1/picks", keys["seller0"], date=DAY, k=3)
    assert hits() == 1.0  # another k is another answer


@pytest.mark.parametrize("params", [{"k": 0}, {"k": 201}, {"k": "many"}, {"date": "2024-13-01"}])
def test_bad_query_parameters_are_422(world, params):
    client, _, keys, _ = world
    assert get(client, "/v1/groups/G0/picks", keys["seller0"], **params).status_code == 422


def test_metrics_count_requests_by_route(world):
    client, _, keys, _ = world
    get(client, "/v1/groups/G0/picks", keys["seller0"], date=DAY)
    get(client, "/v1/groups/G404/picks", keys["seller0"], date=DAY)
    text = client.get("/metrics").text
    assert 'quanxuan_http_requests_total{method="GET",route="/v1/groups/{group_id}/picks",status="200"} 1.0' in text
    assert 'quanxuan_http_requests_total{method="GET",route="/v1/groups/{group_id}/picks",status="404"} 1.0' in text
    assert 'quanxuan_http_request_duration_seconds_count{method="GET",route="/v1/groups/{group_id}/picks"} 2.0' in text
