"""Adoption: the chance that a seller pushes a given product to a given group at all.

A pick earns only if the seller forwards it. Her pushes show which categories she serves each group and,
across all sellers, which products of a category sellers reach for. Both come from the exposure source
with its conversion terms switched off:
    adoption(g, i) = share of g's pushes in i's category (shrunk to the platform's mix)
                     × i's share of all pushes in its category.
Without a pushes table every pair gets 1, a neutral factor in the blend.
"""

from __future__ import annotations

import numpy as np

from features.interactions import TrainData
from recsys.candidates.exposure import ExposureSource

PRIOR_PUSHES = 20.0  # pseudo-pushes at the platform's category mix: a new group starts from the platform's habits
ITEM_PRIOR_PUSHES = 1.0  # one pseudo-push per product, so a product nobody has pushed yet is unlikely, not impossible


class SellerAdoption:
    """Fitted once per daily run; `pairs` scores any (group, item) pairs of that run's TrainData."""

    def __init__(self, data: TrainData, prior_pushes: float = PRIOR_PUSHES) -> None:
        self.source: ExposureSource | None = None
        if data.push_events is not None and len(data.push_events):
            self.source = ExposureSource(conversion_weight=0.0, group_weight=0.0, prior_pushes=prior_pushes,
                                         item_prior_pushes=ITEM_PRIOR_PUSHES).fit(data)

    def pairs(self, group_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Adoption of each pair (0–1), or 1 everywhere when the data has no pushes."""
        if self.source is None:
            return np.ones(len(np.asarray(group_idx)), dtype=np.float64)
        return self.source.pair_scores(group_idx, item_idx)
