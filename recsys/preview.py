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

The last evaluation window, when the artifact holds it (`EvaluationWindow`: the candidates as scored at
the daily job's evaluation cut-off, and the orders of the held-out days after it), is replayed the same
way: each weight set makes its picks from the cut-off's candidates, and beside their expected figures
come the realised ones, what the held-out days say those picks would have brought:

- realised orders       order lines in the window of the picked (group, product) pairs
- realised GMV / commission   what those order lines paid and earned the sellers
- hit rate              share of picks ordered in the window
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from contracts.config import BlendWeights, OpsWeights, ReachConfig, RuleConfig
from recsys.reach import ArtifactCandidates, CandidateSource, simulate_placements

CURVE_WEIGHTS: tuple[str, ...] = tuple(BlendWeights.model_fields)
# Optional artifact tables of the last evaluation window (written by the daily job, see
# `training.evaluation_window.evaluation_tables`).
WINDOW_CANDIDATES = "evaluation_candidates"
WINDOW_ORDERS = "evaluation_window"
WINDOW_COLUMNS: tuple[str, ...] = ("group_id", "product_id", "orders", "quantity", "paid", "commission")


@dataclass
class EvaluationWindow:
    """The last evaluation window: candidates as scored at its cut-off and the held-out orders per (group, product)."""

    candidates: CandidateSource
    orders: pd.DataFrame  # WINDOW_COLUMNS, one row per ordered pair

    @classmethod
    def from_tables(cls, groups: pd.DataFrame, candidates: pd.DataFrame, orders: pd.DataFrame,
                    products: pd.DataFrame | None = None) -> "EvaluationWindow":
        """From the groups table, the cut-off's candidates (every evaluated group under its own id) and the window's orders."""
        from contracts.artifact import Artifact

        missing = [c for c in WINDOW_COLUMNS if c not in orders.columns]
        if missing:
            raise ValueError(f"evaluation window lacks columns {missing}")
        held = set(candidates["group_id"].astype(str))
        # Every group with rows reads its own rows here: cold groups got their segment's list written under their id.
        g = groups.assign(group_id=groups["group_id"].astype(str))
        g = g[g["group_id"].isin(held)].assign(cold_start=False)
        segs = candidates.head(0).drop(columns="group_id").assign(segment=pd.Series(dtype=str))
        art = Artifact(Path("."), {}, g, products if products is not None else pd.DataFrame(), candidates, segs,
                       pd.DataFrame(columns=["group_id"]))
        window = orders.assign(group_id=orders["group_id"].astype(str), product_id=orders["product_id"].astype(str))
        return cls(ArtifactCandidates(art), window[list(WINDOW_COLUMNS)].reset_index(drop=True))

    @classmethod
    def from_artifact(cls, artifact: Any) -> "EvaluationWindow | None":
        """The window stored in an artifact (evaluation_candidates.parquet, evaluation_window.parquet), else None."""
        folder = Path(artifact.path)
        cands, orders = folder / f"{WINDOW_CANDIDATES}.parquet", folder / f"{WINDOW_ORDERS}.parquet"
        if not cands.is_file() or not orders.is_file():
            return None
        return cls.from_tables(artifact.groups, pd.read_parquet(cands), pd.read_parquet(orders), artifact.products)


def realised_figures(picks: pd.DataFrame, window: pd.DataFrame, scale: float = 1.0) -> dict[str, float]:
    """What the window's orders say the picks brought: realised orders, GMV, commission and the hit rate."""
    if picks.empty:
        return {"realised_orders": 0.0, "realised_gmv": 0.0, "realised_commission": 0.0, "hit_rate": 0.0}
    keys = picks[["group_id", "product_id"]].astype(str).drop_duplicates()
    hits = keys.merge(window, on=["group_id", "product_id"], how="inner")
    return {
        "realised_orders": round(float(hits["orders"].sum()) * scale, 4),
        "realised_gmv": round(float(hits["paid"].sum()) * scale, 4),
        "realised_commission": round(float(hits["commission"].sum()) * scale, 4),
        "hit_rate": round(len(hits) / len(keys), 4),
    }


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
           n_candidates: int, scale: float, window: pd.DataFrame | None = None) -> dict[str, float]:
    """One day's picks of these groups with these weights, summarised (and judged on the window's orders when given)."""
    picks = simulate_placements(source, group_ids, weights, rules, days=1)
    figures = pick_figures(picks, n_candidates, scale)
    if window is not None:
        figures.update(realised_figures(picks, window, scale))
    return figures


def _delta(new: dict[str, float], now: dict[str, float]) -> dict[str, float]:
    return {k: round(new[k] - now[k], 4) for k in now if isinstance(now[k], (int, float))}


def _curve_values(curve_weight: str, cfg: ReachConfig, values: Sequence[float] | None) -> list[float]:
    if values is not None:
        return [float(v) for v in values]
    bound = BlendWeights.model_fields[curve_weight].metadata
    hi = next((m.le for m in bound if getattr(m, "le", None) is not None), 3.0)
    return np.linspace(0.0, min(float(hi), 3.0), cfg.curve_points).round(3).tolist()


def replay_window(window: EvaluationWindow, current: OpsWeights, proposed: OpsWeights, rules: RuleConfig,
                  cfg: ReachConfig, curve_weight: str, curve_values: Sequence[float]) -> dict[str, Any]:
    """Expected and realised figures of both weight sets (and of the curve's points) on the last evaluation window."""
    group_ids, scale = sample_groups(window.candidates, cfg.preview_groups, cfg.seed)
    n_cands = candidate_products(window.candidates, group_ids)
    now = replay(window.candidates, group_ids, current, rules, n_cands, scale, window.orders)
    new = replay(window.candidates, group_ids, proposed, rules, n_cands, scale, window.orders)
    curve = []
    for value in curve_values:
        default = proposed.default.model_copy(update={curve_weight: float(value)})
        weights = OpsWeights(default=default, overrides=proposed.overrides)
        curve.append({"value": float(value), **replay(window.candidates, group_ids, weights, rules, n_cands, scale,
                                                      window.orders)})
    return {"groups_replayed": len(group_ids), "scale": scale, "proposed": new, "current": now,
            "delta": _delta(new, now), "curve": curve}


def preview(source: CandidateSource, current: OpsWeights, proposed: OpsWeights, rules: RuleConfig,
            cfg: ReachConfig, curve_weight: str = "earnings", curve_values: Sequence[float] | None = None,
            window: EvaluationWindow | None = None) -> dict[str, Any]:
    """Figures of the proposed and current weights on the same groups, their differences, and the trade-off curve;
    with `window`, the same replayed on the last evaluation window with realised figures (`"window"`, else None)."""
    if curve_weight not in CURVE_WEIGHTS:
        raise ValueError(f"curve_weight must be one of {', '.join(CURVE_WEIGHTS)}")
    group_ids, scale = sample_groups(source, cfg.preview_groups, cfg.seed)
    n_cands = candidate_products(source, group_ids)
    now = replay(source, group_ids, current, rules, n_cands, scale)
    new = replay(source, group_ids, proposed, rules, n_cands, scale)
    curve_values = _curve_values(curve_weight, cfg, curve_values)
    curve = []
    for value in curve_values:
        default = proposed.default.model_copy(update={curve_weight: float(value)})
        weights = OpsWeights(default=default, overrides=proposed.overrides)
        curve.append({"value": float(value), **replay(source, group_ids, weights, rules, n_cands, scale)})
    replayed = None if window is None else replay_window(window, current, proposed, rules, cfg, curve_weight, curve_values)
    return {"groups_replayed": len(group_ids), "scale": scale, "proposed": new, "current": now, "delta": _delta(new, now),
            "curve": {"weight": curve_weight, "proposed_value": float(getattr(proposed.default, curve_weight)),
                      "current_value": float(getattr(current.default, curve_weight)), "points": curve},
            "window": replayed}
