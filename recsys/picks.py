"""Today's picks for one group: re-blend the stored components with the current weights, apply the rules,
and re-rank greedily for diversity.

The greedy re-rank: at each step every remaining candidate's diversity penalty is its stored
`diversity_penalty` (0 when absent) plus `rules.category_decay` per earlier pick of the same main
category, so with weight `diversity` its score is multiplied by (1 − penalty)^diversity; the best
one is taken. `max_per_category` and `max_per_brand` are hard caps in the top K (unbranded goods,
brand "", are not capped). One implementation serves both users: the daily job picks a whole block of
groups in one pass (`greedy_picks_batch`), and the service's `greedy_picks` is that pass over one group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from recsys.blend import COMPONENTS, EPS, blend_log_scores
from contracts.config import BlendWeights, OpsWeights, RuleConfig
from recsys.rules import eligible_mask, pick_flags, pick_reasons

if TYPE_CHECKING:
    from contracts.artifact import Artifact

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
    if "product_id" not in cols:
        raise KeyError("candidates need a product_id column")
    # One group is a block of one: the service and the daily job share a single implementation of the re-rank.
    rows, scores, penalties, _ = greedy_picks_batch(cols, np.array([0, len(cols["product_id"])]), w, rules, k)
    return rows, scores, penalties


def greedy_picks_batch(
    cols: Mapping[str, np.ndarray],
    bounds: np.ndarray,
    weights: BlendWeights | Sequence[BlendWeights],
    rules: RuleConfig,
    k: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`greedy_picks` of many groups at once: (row indices into `cols`, scores, penalties, group of each pick).

    Group r's rows are `bounds[r]:bounds[r + 1]` (G + 1 offsets) or `bounds[r, 0]:bounds[r, 1]` (a (G, 2) array);
    `weights` is one profile for every group or one per group. Picks come group by group, each group's best first,
    exactly as `greedy_picks` on the group's slice gives them: the rules and the blend run once over all rows, then
    the k greedy steps run over a padded (groups × rows) table, one argmax per group and step.
    """
    k = rules.top_k if k is None else int(k)
    if "product_id" not in cols:
        raise KeyError("candidates need a product_id column")
    lo, hi = _group_bounds(bounds)
    n_groups = len(lo)
    profile_of, profiles = _weight_profiles(weights, n_groups)
    sizes = hi - lo
    group = np.repeat(np.arange(n_groups), sizes)
    rows = np.arange(len(group)) + np.repeat(lo - (np.cumsum(sizes) - sizes), sizes)
    ok = eligible_mask(cols, rules)[rows]
    keep, group = rows[ok], group[ok]
    n = len(keep)

    base = np.empty(n)
    present = [name for name, _ in COMPONENTS if name in cols]
    for p, w in enumerate(profiles):
        sel = np.flatnonzero(profile_of[group] == p)
        sub = {name: np.asarray(cols[name])[keep[sel]] for name in present}
        base[sel] = blend_log_scores(sub, w, diversity_penalty=np.zeros(len(sel)))
    if "diversity_penalty" in cols:
        penalty0 = np.clip(np.nan_to_num(np.asarray(np.asarray(cols["diversity_penalty"])[keep], float)), 0.0, 1.0)
    else:
        penalty0 = np.zeros(n)
    cat = _main_category_codes(np.asarray(cols["category"])[keep]) if "category" in cols else np.zeros(n, np.int64)
    brand = _codes(np.asarray(cols["brand"])[keep], True)[0] if "brand" in cols else np.full(n, -1)

    # One table row per group with eligible candidates; padding sits after a group's candidates and is never
    # allowed, so argmax ties still go to the first candidate as in `greedy_picks`.
    m = np.bincount(group, minlength=n_groups)
    live = np.flatnonzero(m)
    starts = np.cumsum(m) - m
    table_row = np.zeros(n_groups, dtype=np.int64)
    table_row[live] = np.arange(len(live))
    at = (table_row[group], np.arange(n) - starts[group])
    shape = (len(live), int(m.max()) if len(live) else 0)

    def padded(values: np.ndarray, fill: Any) -> np.ndarray:
        out = np.full(shape, fill, dtype=values.dtype)
        out[at] = values
        return out

    base2, penalty0_2 = padded(base, -np.inf), padded(penalty0, 0.0)
    cat2, brand2 = padded(cat, -1), padded(brand, -1)  # no code is -1 but padding and unbranded goods
    diversity = np.array([float(w.diversity) for w in profiles])[profile_of[live]]
    # Per cell, the earlier picks of its group in its main category and of its brand (what the caps count).
    cat_count = np.zeros(shape, dtype=np.int64)
    brand_count = np.zeros(shape, dtype=np.int64)
    allowed = padded(np.ones(n, bool), False) & (cat_count < rules.max_per_category)
    allowed &= (brand2 < 0) | (brand_count < rules.max_per_brand)
    penalty = np.minimum(penalty0_2 + rules.category_decay * cat_count, 1.0)
    score = np.where(allowed, base2 + diversity[:, None] * np.log(np.maximum(1.0 - penalty, EPS)), -np.inf)

    picked: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for _ in range(min(k, shape[1])):
        # A group with nothing allowed never gets anything allowed again: `greedy_picks` stops there too.
        gi = np.flatnonzero(allowed.any(axis=1))
        if not len(gi):
            break
        j = np.argmax(score, axis=1)[gi]
        picked.append((gi, j, score[gi, j], penalty[gi, j]))
        allowed[gi, j] = False
        score[gi, j] = -np.inf
        # Only the cells of each pick's main category and brand change; they are recomputed as `greedy_picks`
        # computes every cell, so scores stay bit-identical.
        r, c = np.nonzero(cat2[gi] == cat2[gi, j][:, None])
        g = gi[r]
        cat_count[g, c] += 1
        penalty[g, c] = np.minimum(penalty0_2[g, c] + rules.category_decay * cat_count[g, c], 1.0)
        allowed[g, c] &= cat_count[g, c] < rules.max_per_category
        raw = base2[g, c] + diversity[g] * np.log(np.maximum(1.0 - penalty[g, c], EPS))
        score[g, c] = np.where(allowed[g, c], raw, -np.inf)
        b = brand2[gi, j]
        gb, b = gi[b >= 0], b[b >= 0]  # unbranded goods are never capped
        r, c = np.nonzero(brand2[gb] == b[:, None])
        g = gb[r]
        brand_count[g, c] += 1
        full = brand_count[g, c] >= rules.max_per_brand
        allowed[g[full], c[full]] = False
        score[g[full], c[full]] = -np.inf
    if not picked:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0, np.int64)
    gi, j, log_score, pen = (np.concatenate(x) for x in zip(*picked))
    order = np.argsort(gi, kind="stable")  # steps were appended in order: each group keeps its pick order
    group_of = live[gi[order]]
    return keep[starts[group_of] + j[order]], np.exp(log_score[order]), pen[order], group_of


def _group_bounds(bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) row bounds per group from G + 1 offsets or a (G, 2) array."""
    b = np.asarray(bounds, dtype=np.int64)
    if b.ndim == 2:
        lo, hi = b[:, 0], b[:, 1]
    else:
        lo, hi = b[:-1], b[1:]
    if np.any(hi < lo):
        raise ValueError("group bounds must not decrease")
    return lo, hi


def _weight_profiles(
    weights: BlendWeights | Sequence[BlendWeights], n_groups: int
) -> tuple[np.ndarray, list[BlendWeights]]:
    """Index of each group's profile into the list of distinct profiles (equal weights share one)."""
    if isinstance(weights, BlendWeights):
        return np.zeros(n_groups, dtype=np.int64), [weights]
    if len(weights) != n_groups:
        raise ValueError(f"{len(weights)} weight profiles for {n_groups} groups")
    by_id: dict[int, int] = {}
    by_value: dict[tuple[float, ...], int] = {}
    profiles: list[BlendWeights] = []
    index = np.empty(n_groups, dtype=np.int64)
    for r, w in enumerate(weights):
        p = by_id.get(id(w))
        if p is None:
            key = tuple(float(getattr(w, f)) for f in BlendWeights.model_fields)
            p = by_value.setdefault(key, len(profiles))
            if p == len(profiles):
                profiles.append(w)
            by_id[id(w)] = p
        index[r] = p
    return index, profiles


def _main_category_codes(values: np.ndarray) -> np.ndarray:
    """Codes equal exactly where `_main_category` gives equal text; splits each distinct category only once."""
    raw, uniques = pd.factorize(values)
    if (raw < 0).any() or not all(isinstance(u, str) for u in uniques):
        # Missing or non-text categories: str() row by row, as `_main_category` does (1 and 1.0 hash alike).
        return pd.factorize(_main_category(values))[0]
    return pd.factorize(_main_category(uniques))[0][raw]


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
