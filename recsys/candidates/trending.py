"""Trending: products whose orders across groups rise fastest in the last days against a baseline window."""

from __future__ import annotations

import numpy as np

from features.interactions import TrainData
from recsys.candidates.base import SharedRowRecommender


class TrendingSource(SharedRowRecommender):
    """Poisson z-score of recent orders against the rate of the preceding baseline window.

    z = (recent − expected) / √(expected + 1), expected = baseline orders × days / baseline_days: it favours
    items that rise with volume over items with one lucky order. Items not ordered recently or not rising
    are not proposed, and nothing is on data without a real clock (`TrainData.timed`).
    """

    name = "trending"

    def __init__(self, days: int = 3, baseline_days: int = 14) -> None:
        self.days = days
        self.baseline_days = baseline_days

    def _fit(self, data: TrainData) -> None:
        if not data.timed:
            # Line numbers are no clock: "the last days" would be the last groups of the file, not a trend.
            self.z_ = np.full(data.n_items, -np.inf, dtype=np.float32)
            return
        age = data.events["age_days"].to_numpy()
        items = data.events["i"].to_numpy()
        recent = np.bincount(items[age < self.days], minlength=data.n_items).astype(np.float64)
        base_mask = (age >= self.days) & (age < self.days + self.baseline_days)
        baseline = np.bincount(items[base_mask], minlength=data.n_items).astype(np.float64)
        expected = baseline * self.days / self.baseline_days
        z = (recent - expected) / np.sqrt(expected + 1.0)
        self.z_ = np.where((recent > 0) & (z > 0), z, -np.inf).astype(np.float32)

    def _row(self) -> np.ndarray:
        """Trend z-score per item."""
        return self.z_
