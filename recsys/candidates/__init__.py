"""Candidate sources: every one fits on `TrainData` and answers `recommend(group_idx, k, exclude, allowed_items)`."""

from __future__ import annotations

from recsys.candidates.als import ALSSource
from recsys.candidates.base import Recommender, top_k
from recsys.candidates.content import ContentSource
from recsys.candidates.ease import EASESource
from recsys.candidates.exposure import ExposureSource
from recsys.candidates.knn import ItemKNNSource
from recsys.candidates.popular import GlobalPopular, OwnTopItems, RandomSource, RatingCommissionRule, SegmentPopular
from recsys.candidates.repurchase import RepurchaseSource
from recsys.candidates.tifu_knn import TIFUKNNSource
from recsys.candidates.trending import TrendingSource
from recsys.candidates.union import BlendRecommender, union_candidates

__all__ = [
    "ALSSource", "BlendRecommender", "ContentSource", "EASESource", "ExposureSource", "GlobalPopular", "ItemKNNSource", "OwnTopItems",
    "RandomSource", "RatingCommissionRule", "Recommender", "RepurchaseSource", "SegmentPopular", "TIFUKNNSource", "TrendingSource",
    "top_k", "union_candidates",
]
