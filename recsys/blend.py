"""The ops blend: one score per candidate from its components and the current weights.

    score = p_conv^conversion × commission_yuan^earnings × rating^rating
            × order_value^order_value × (1 − diversity_penalty)^diversity × adoption^adoption

Weights (`contracts.config.BlendWeights`), each an exponent:
- conversion ∈ [0, 3]: predicted probability that the group orders the product if pushed today.
- earnings ∈ [0, 3]: commission in yuan (price × commission_rate); 1 with conversion 1 gives
  the seller's expected earnings p_conv × commission.
- rating ∈ [0, 10]: good-review rate (0–1); 2 means a 0.9-rated item keeps 81 % of its score.
- order_value ∈ [0, 3]: expected order value in yuan (price × mean quantity), for GMV-minded sellers.
- diversity ∈ [0, 5]: how hard a repeated category (or brand) is pushed down; the penalty (0–1)
  grows with each earlier pick of the same category (see `recsys.picks`).
- adoption ∈ [0, 3]: the chance that the seller pushes the pick at all (`recsys.adoption`): her
  category mix for this group × how often sellers push the product within its category. A pick she
  never pushes earns nothing, so 1 (the default) makes the score her expected earnings from the pick;
  0 ranks by what converts whatever her habits. Components built without pushes carry 1 (neutral).

A weight of 0 removes the component (x^0 = 1, even for x = 0). The product is computed as a sum
of logs, vectorised, with components floored at a small epsilon so that a zero component gives a
tiny score instead of log(0); ranking should use `blend_log_scores`, which never underflows.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from contracts.config import BlendWeights, config_hash

EPS = 1e-9
# Component column -> weight field; the diversity term uses 1 − diversity_penalty.
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("p_conv", "conversion"),
    ("commission_yuan", "earnings"),
    ("rating", "rating"),
    ("order_value", "order_value"),
    ("adoption", "adoption"),
)
# Components that candidate tables from before they existed may lack: absent means neutral.
OPTIONAL_COMPONENTS: frozenset[str] = frozenset({"adoption"})


def _column(components: pd.DataFrame | Mapping[str, np.ndarray], name: str, n: int) -> np.ndarray | None:
    if name not in components:
        return None
    values = components[name]
    arr = values.to_numpy(dtype=float, na_value=np.nan) if isinstance(values, pd.Series) else np.asarray(values, float)
    if arr.shape != (n,):
        raise ValueError(f"component {name!r} has shape {arr.shape}, expected ({n},)")
    return arr


def _length(components: pd.DataFrame | Mapping[str, np.ndarray]) -> int:
    if isinstance(components, pd.DataFrame):
        return len(components)
    for name, _ in COMPONENTS:
        if name in components:
            return len(components[name])
    return 0


def blend_log_scores(
    components: pd.DataFrame | Mapping[str, np.ndarray],
    w: BlendWeights,
    diversity_penalty: np.ndarray | None = None,
) -> np.ndarray:
    """log(score) per row; a component whose weight is non-zero must be present (NaN counts as 0)."""
    n = _length(components)
    out = np.zeros(n, dtype=float)
    for name, field in COMPONENTS:
        weight = float(getattr(w, field))
        if weight == 0.0:
            continue
        values = _column(components, name, n)
        if values is None and name in OPTIONAL_COMPONENTS:
            continue
        if values is None:
            raise KeyError(f"component {name!r} is needed for weight {field}={weight:g}")
        # A missing optional value (e.g. a cold group's segment pick has no adoption) is neutral, not zero.
        fill = 1.0 if name in OPTIONAL_COMPONENTS else 0.0
        out += weight * np.log(np.maximum(np.nan_to_num(values, nan=fill), EPS))
    if w.diversity != 0.0:
        penalty = diversity_penalty if diversity_penalty is not None else _column(components, "diversity_penalty", n)
        if penalty is not None:
            keep = 1.0 - np.clip(np.nan_to_num(np.asarray(penalty, float), nan=0.0), 0.0, 1.0)
            out += float(w.diversity) * np.log(np.maximum(keep, EPS))
    return out


def blend_scores(
    components: pd.DataFrame | Mapping[str, np.ndarray],
    w: BlendWeights,
    diversity_penalty: np.ndarray | None = None,
) -> np.ndarray:
    """The blended score per row (see the module docstring for the formula)."""
    return np.exp(blend_log_scores(components, w, diversity_penalty))


def weights_hash(w: BlendWeights) -> str:
    """Short stable fingerprint of a weight profile (marks picks made with other weights as stale)."""
    return config_hash(w)
