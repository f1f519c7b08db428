"""Ops preview: what a change of blend weights would do to the picks, before it goes live.

The preview replays the artifact's candidates (the scores of the last daily run, i.e. its data window)
through `select_picks` with the proposed weights and with the weights in force, on the same seeded
sample of groups, and reports totals scaled to all groups:

- expected orders       Σ p_conv over the picks
- seller earnings       Σ p_conv × commission_yuan (expected commission in yuan)
- mean rating           mean good-review rate of the picks
- catalogue coverage    distinct picked products / distinct candidate products
- diversity             mean over groups of (distinct main categories in the picks / picks)

plus the trade-off curve: the same figures as one weight of the default profile moves across its range
(the overrides stay as proposed), so ops see how much conversion each yuan of earnings costs.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from recsys.config import BlendWeights, OpsWeights, ReachConfig, RuleConfig
from recsys.reach import CandidateSource, simulate_placements

CURVE_WEIGHTS: tuple[str, ...] = tuple(BlendWeights.model_fields)


def sample_groups(source: CandidateSource, n: int, seed: int) -> tuple[list[str], float]:
    """A seeded sample of at most n group ids and the factor that scales its totals to all groups."""
    ids = source.groups["group_id"].astype(str).tolist()
    if len(ids) <= n:
        return ids, 1.0
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(ids, size=n, replace=False).tolist()), len(ids) / n


def pick_figures(picks: pd.DataFrame, n_candidates: int, scale: float = 1.0) -> dict[str, float]:
    """Expected orders, seller earnings, mean rating, catalogue coverage and diversity of one day's picks."""
    if picks.empty:
        return {"expected_orders": 0.0, "seller_earnings": 0.0, "mean_rating": 0.0, "coverage": 0.0, "diversity": 0.0,
                "picks": 0}
    p = picks["p_conv"].to_numpy(float)
    earnings = p * picks["commission_yuan"].to_numpy(float)
    main = picks["category"].astype(str).str.split("/", n=1).str[0]
    per_group = pd.DataFrame({"g": picks["group_id"].to_numpy(), "c": main.to_numpy()}).groupby("g")["c"].agg(["nunique", "size"])
    return {
        "expected_orders": round(float(p.sum()) * scale, 4),
        "seller_earnings": round(float(earnings.sum()) * scale, 4),
        "mean_rating": round(float(np.nanmean(picks["rating"].to_numpy(float))), 4),
        "coverage": round(picks["product_id"].nunique() / max(n_candidates, 1), 4),
        "diversity": round(float((per_group["nunique"] / per_group["size"]).mean()), 4),
        "picks": int(round(len(picks) * scale)),
    }


def candidate_products(source: CandidateSource, group_ids: Sequence[str]) -> int:
    """Distinct products among the candidates of these groups (the denominator of coverage)."""
    seen: set[str] = set()
    for gid in group_ids:
        seen.update(source.rows(gid)["product_id"].astype(str).tolist())
    return len(seen)


def replay(source: CandidateSource, group_ids: Sequence[str], weights: OpsWeights, rules: RuleConfig,
           n_candidates: int, scale: float) -> dict[str, float]:
    """One day's picks of these groups with these weights, summarised."""
    picks = simulate_placements(source, group_ids, weights, rules, days=1)
    return pick_figures(picks, n_candidates, scale)


def preview(source: CandidateSource, current: OpsWeights, proposed: OpsWeights, rules: RuleConfig,
            cfg: ReachConfig, curve_weight: str = "earnings", curve_values: Sequence[float] | None = None) -> dict[str, Any]:
    """Figures of the proposed and current weights on the same groups, their differences, and the trade-off curve."""
    if curve_weight not in CURVE_WEIGHTS:
        raise ValueError(f"curve_weight must be one of {', '.join(CURVE_WEIGHTS)}")
    group_ids, scale = sample_groups(source, cfg.preview_groups, cfg.seed)
    n_cands = candidate_products(source, group_ids)
    now = replay(source, group_ids, current, rules, n_cands, scale)
    new = replay(source, group_ids, proposed, rules, n_cands, scale)
    if curve_values is None:
        bound = BlendWeights.model_fields[curve_weight].metadata
        hi = next((m.le for m in bound if getattr(m, "le", None) is not None), 3.0)
        curve_values = np.linspace(0.0, min(float(hi), 3.0), cfg.curve_points).round(3).tolist()
    curve = []
    for value in curve_values:
        default = proposed.default.model_copy(update={curve_weight: float(value)})
        weights = OpsWeights(default=default, overrides=proposed.overrides)
        curve.append({"value": float(value), **replay(source, group_ids, weights, rules, n_cands, scale)})
    delta = {k: round(new[k] - now[k], 4) for k in now if isinstance(now[k], (int, float))}
    return {"groups_replayed": len(group_ids), "scale": scale, "proposed": new, "current": now, "delta": delta,
            "curve": {"weight": curve_weight, "proposed_value": float(getattr(proposed.default, curve_weight)),
                      "current_value": float(getattr(current.default, curve_weight)), "points": curve}}
