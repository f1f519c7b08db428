"""Today's picks for one group: re-blend the stored components with the current weights, apply the rules,
and re-rank greedily for diversity.

The greedy re-rank: at each step every remaining candidate's diversity penalty is its stored
`diversity_penalty` (0 when absent) plus `rules.category_decay` per earlier pick of the same main
category, so with weight `diversity` its score is multiplied by (1 − penalty)^diversity; the best
one is taken. `max_per_category` and `max_per_brand` are hard caps in the top K (unbranded goods,
brand "", are not capped). Everything is numpy on the group's ≈200 rows: well under a millisecond
before the small output frame is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import pandas as pd

from recsys.blend import EPS, blend_log_scores
from recsys.config import BlendWeights, OpsWeights, RuleConfig
from recsys.rules import eligible_mask, pick_flags, pick_reasons

if TYPE_CHECKING:
    from training.artifact import Artifact

# Component columns copied into every pick when present.
PICK_COMPONENTS: tuple[str, ...] = (
    "p_conv", "price", "commission_rate", "commission_yuan", "rating", "order_value",
    "category", "brand", "sources", "repurchase_due", "presale", "coupon", "price_change_7d", "days_since_push", "adoption",
)
PICK_COLUMNS: tuple[str, ...] = ("rank", "product_id", "score", "diversity_penalty", "reasons", "flags")


def _arrays(cands: pd.DataFrame | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    if isinstance(cands, pd.DataFrame):
        return {c: cands[c].to_numpy() for c in cands.columns}
    return {c: np.asarray(v) for c, v in cands.items()}


def _codes(values: np.ndarray, blank_is_none: bool) -> tuple[np.ndarray, int]:
    """Integer codes per distinct value; blank values get -1 when blank_is_none."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if blank_is_none:
        blank = np.flatnonzero((uniques == "") | pd.isna(uniques))
        if len(blank):
            codes = np.where(np.isin(codes, blank), -1, codes)
    return codes, max(len(uniques), 1)


def _main_category(values: np.ndarray) -> np.ndarray:
    # "食品/零食" -> "食品": diversity is judged on the main category, as the contract defines.
    return np.array([str(v).split("/", 1)[0] for v in values], dtype=object)


def greedy_picks(
    cols: Mapping[str, np.ndarray],
    w: BlendWeights,
    rules: RuleConfig,
    k: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The selection alone: (row indices into `cols`, scores, diversity penalties) of the picks, best first.

    Blend, hard filters, then the greedy diversity re-rank under the category and brand caps; no frame is
    built, so a batch job can rank every group cheaply.
    """
    k = rules.top_k if k is None else int(k)
    if "product_id" not in cols:
        raise KeyError("candidates need a product_id column")
    keep = np.flatnonzero(eligible_mask(cols, rules))
    sub = {c: np.asarray(v)[keep] for c, v in cols.items()}
    m = len(keep)
    base = blend_log_scores(sub, w, diversity_penalty=np.zeros(m))
    penalty0 = np.clip(np.nan_to_num(np.asarray(sub.get("diversity_penalty", np.zeros(m)), float)), 0.0, 1.0)
    cat, n_cat = _codes(_main_category(sub["category"]) if "category" in sub else np.zeros(m, object), False)
    brand, n_brand = _codes(sub["brand"] if "brand" in sub else np.full(m, "", object), True)
    cat_count = np.zeros(n_cat, dtype=np.int64)
    brand_count = np.zeros(n_brand + 1, dtype=np.int64)  # last slot counts unbranded goods, never capped
    brand_slot = np.where(brand < 0, n_brand, brand)
    available = np.ones(m, dtype=bool)
    chosen: list[int] = []
    scores: list[float] = []
    penalties: list[float] = []
    for _ in range(min(k, m)):
        allowed = available & (cat_count[cat] < rules.max_per_category)
        allowed &= (brand < 0) | (brand_count[brand_slot] < rules.max_per_brand)
        if not allowed.any():
            break
        penalty = np.minimum(penalty0 + rules.category_decay * cat_count[cat], 1.0)
        score = base + w.diversity * np.log(np.maximum(1.0 - penalty, EPS))
        score = np.where(allowed, score, -np.inf)
        j = int(np.argmax(score))
        chosen.append(j)
        scores.append(float(np.exp(score[j])))
        penalties.append(float(penalty[j]))
        available[j] = False
        cat_count[cat[j]] += 1
        brand_count[brand_slot[j]] += 1
    return keep[np.asarray(chosen, dtype=np.int64)], np.asarray(scores, float), np.asarray(penalties, float)


def select_picks(
    cands: pd.DataFrame | Mapping[str, np.ndarray],
    w: BlendWeights,
    rules: RuleConfig,
    k: int | None = None,
) -> pd.DataFrame:
    """Rank one group's candidates: blend, filter by the rules, greedy diversity re-rank, top k with reasons.

    Returns one row per pick: rank (1-based), product_id, score (blended, including the diversity
    term at the time of the pick), diversity_penalty, the components, reasons (list of codes) and
    flags (list: presale, coupon).
    """
    cols = _arrays(cands)
    idx, scores, penalties = greedy_picks(cols, w, rules, k)
    out: dict[str, Any] = {
        "rank": np.arange(1, len(idx) + 1),
        "product_id": cols["product_id"][idx],
        "score": scores,
        "diversity_penalty": penalties,
    }
    for name in PICK_COMPONENTS:
        if name in cols:
            out[name] = cols[name][idx]
    chosen = idx.tolist()
    flags = [pick_flags(_at(cols, "presale", j), _at(cols, "coupon", j)) for j in chosen]
    out["flags"] = flags
    out["reasons"] = [
        pick_reasons(_at(cols, "reasons", j), _at(cols, "rating", j), _at(cols, "repurchase_due", j), f, rules)
        for j, f in zip(chosen, flags)
    ]
    return pd.DataFrame(out)


def _at(cols: Mapping[str, np.ndarray], name: str, j: int) -> Any:
    return cols[name][j] if name in cols else None


def group_candidates(artifact: "Artifact", group_id: str, weights: OpsWeights) -> tuple[dict[str, np.ndarray], BlendWeights, bool]:
    """The candidate arrays a group is served from, its seller type's weights, and whether it is served cold
    (cold groups, and groups without candidates, read their segment's list). KeyError for an unknown group."""
    group = artifact.group(group_id)
    w = weights.for_seller_type(str(group.get("seller_type", "")))
    cold = bool(group.get("cold_start", False))
    cols = artifact.candidate_arrays(group_id)
    if cold or len(cols.get("product_id", ())) == 0:
        cols = artifact.segment_arrays(str(group.get("segment", "")))
        cold = True
    return cols, w, cold


def pick_for_group(
    artifact: "Artifact",
    group_id: str,
    weights: OpsWeights,
    rules: RuleConfig,
    k: int | None = None,
) -> tuple[pd.DataFrame, bool]:
    """Picks for a group with its seller type's weights; cold groups (or groups without candidates)
    get their segment's candidates. Returns (picks, cold_start). KeyError for an unknown group."""
    cols, w, cold = group_candidates(artifact, group_id, weights)
    return select_picks(cols, w, rules, k), cold
