"""The picks path passes a seller's other groups' copies of the day as history, so her day reads varied."""

from __future__ import annotations

from datetime import date

from contracts.config import CopyConfig, OpsWeights, RuleConfig
from serving.artifacts import Served
from serving.picking import PicksService
from serving.storage.factory import open_store
from serving.storage.memory_cache import MemoryCache
from contracts.artifact import load_latest

DAY = date(2024, 5, 1)


def test_other_groups_of_the_seller_count_as_the_days_history(tmp_path, artifacts) -> None:
    served = Served.of(load_latest(artifacts))
    store = open_store(f"sqlite:///{tmp_path}/store.sqlite3")
    service = PicksService(store, MemoryCache(), RuleConfig(), CopyConfig(), 0)
    seller = served.group_seller("G0")
    sisters = [g for g in served.seller_groups[seller] if g != "G0"]
    assert sisters, "the small artifact's seller S0 runs two groups"
    assert service.seller_day_history(served, "G0", DAY) == []
    first = service.render(served, sisters[0], DAY, 5, OpsWeights())
    used = {p["copy"]["template_id"] for p in first["picks"] if p["copy"]["template_id"]}
    history = service.seller_day_history(served, "G0", DAY)
    assert {t for _, t, _ in history} == used and {g for g, _, _ in history} == {sisters[0]}
    # Another day's copies do not count towards today's variety.
    assert service.seller_day_history(served, "G0", date(2024, 5, 2)) == []
    second = service.render(served, "G0", DAY, 5, OpsWeights())
    parts_first = {part for t in used for part in t.split("+") if not part.startswith("body.")}
    parts_second = [part for p in second["picks"] for part in p["copy"]["template_id"].split("+") if not part.startswith("body.")]
    # Openings and closings the sister group got today are avoided while fresher ones are left.
    assert sum(part in parts_first for part in parts_second) <= len(parts_second) // 2
    store.close()
