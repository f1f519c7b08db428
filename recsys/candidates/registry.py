"""The one registry of candidate sources: each source's name, how it is built from CandidateConfig, its search grid,
the tuned parameters that have a home in the configuration, the reason code it gives a pick, and whether it needs
a real clock.

The daily job (`training.examples`), the evaluation harness (`training.evaluate`) and the tests all build sources
here, so a source added once is fitted, tuned, explained and contract-tested everywhere.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from contracts.config import CandidateConfig, Config
from recsys.candidates.als import ALSSource
from recsys.candidates.base import Recommender
from recsys.candidates.category import CategoryAffinitySource
from recsys.candidates.content import ContentSource
from recsys.candidates.ease import EASESource
from recsys.candidates.exposure import ExposureSource
from recsys.candidates.knn import ItemKNNSource
from recsys.candidates.popular import GlobalPopular, OwnTopItems, RandomSource, RatingCommissionRule, SegmentPopular
from recsys.candidates.repurchase import RepurchaseSource
from recsys.candidates.tifu_knn import TIFUKNNSource
from recsys.candidates.trending import TrendingSource

# A source from the configured defaults (c) and the hyper-parameters that override them (p).
SourceFactory = Callable[[CandidateConfig, dict[str, Any]], Recommender]

FACTORIES: dict[str, SourceFactory] = {
    "random": lambda c, p: RandomSource(seed=c.seed),
    "popular": lambda c, p: GlobalPopular(**p),
    "rating_commission": lambda c, p: RatingCommissionRule(),
    "segment_popular": lambda c, p: SegmentPopular(**p),
    "own_top": lambda c, p: OwnTopItems(**p),
    "item_knn_cosine": lambda c, p: ItemKNNSource(**{"neighbours": c.knn_neighbours, "threads": c.threads, **p,
                                                     "weighting": "cosine"}),
    "item_knn_bm25": lambda c, p: ItemKNNSource(**{"neighbours": c.knn_neighbours, "threads": c.threads, **p,
                                                   "weighting": "bm25"}),
    "als": lambda c, p: ALSSource(**{"factors": c.als_factors, "regularization": c.als_regularization,
                                     "iterations": c.als_iterations, "algorithm": c.algorithm, "seed": c.seed,
                                     "device": c.device, "threads": c.threads, **p}),
    "ease": lambda c, p: EASESource(**{"lam": c.ease_lambda, "max_items": c.ease_max_items,
                                       "memory_share": c.ease_memory_share, "threads": c.threads, **p}),
    "content": lambda c, p: ContentSource(**{"dims": c.content_dims, "seed": c.seed, **p}),
    "repurchase": lambda c, p: RepurchaseSource(**p),
    "exposure": lambda c, p: ExposureSource(**p),
    "trending": lambda c, p: TrendingSource(**{"days": c.trending_days, "baseline_days": c.trending_baseline_days, **p}),
    "category_affinity": lambda c, p: CategoryAffinitySource(**p),
    "tifu_knn": lambda c, p: TIFUKNNSource(**{"neighbours": c.tifu_neighbours, "within_decay": c.tifu_within_decay,
                                              "group_decay": c.tifu_group_decay, "groups": c.tifu_groups,
                                              "alpha": c.tifu_alpha, "similarity": c.tifu_similarity,
                                              "exclude_seen": c.tifu_exclude_seen,
                                              "new_item_weight": c.tifu_new_item_weight,
                                              "item_neighbours": c.tifu_item_neighbours, **p}),
}

# Grids searched on the validation window; kept small so a run stays within minutes on 2 cores.
GRIDS: dict[str, dict[str, list[Any]]] = {
    "popular": {"half_life_days": [None, 3.0, 7.0, 14.0, 30.0]},
    "segment_popular": {"shrink": [0.0, 0.3, 1.0, 3.0], "half_life_days": [None, 7.0]},
    "own_top": {"half_life_days": [None, 7.0, 30.0]},
    "item_knn_cosine": {"neighbours": [20, 100, 400]},
    "item_knn_bm25": {"neighbours": [20, 100, 400], "k1": [1.2, 100.0]},
    "als": {"factors": [32, 64, 128], "regularization": [0.05, 1.0, 10.0]},
    "ease": {"lam": [10.0, 50.0, 250.0, 1000.0, 5000.0]},
    "trending": {"days": [1, 3, 7], "baseline_days": [7, 21]},
    "exposure": {"conversion_weight": [0.0, 0.5, 1.0], "group_weight": [0.0, 1.0], "half_life_days": [None, 14.0]},
    "repurchase": {"width": [0.3, 0.6, 1.0], "category_weight": [0.0, 0.3, 1.0]},
    "content": {},
    "category_affinity": {"affinity_power": [0.25, 0.5, 1.0], "category_power": [0.0, 0.5, 1.0],
                          "item_half_life_days": [None, 14.0]},
    "tifu_knn": {"alpha": [0.3, 0.7], "groups": [3, 7], "neighbours": [100, 300], "new_item_weight": [0.0, 0.2]},
}

# Tuned source parameters that have a home in CandidateConfig, so the served pipeline is built with them.
CONFIG_OF_PARAM: dict[tuple[str, str], str] = {
    ("als", "factors"): "als_factors", ("als", "regularization"): "als_regularization",
    ("als", "iterations"): "als_iterations", ("ease", "lam"): "ease_lambda", ("ease", "max_items"): "ease_max_items",
    ("item_knn_cosine", "neighbours"): "knn_neighbours", ("trending", "days"): "trending_days",
    ("trending", "baseline_days"): "trending_baseline_days",
    ("tifu_knn", "alpha"): "tifu_alpha", ("tifu_knn", "groups"): "tifu_groups",
    ("tifu_knn", "neighbours"): "tifu_neighbours", ("tifu_knn", "new_item_weight"): "tifu_new_item_weight",
}

# The reason code a candidate source gives the picks it proposes (sources without one give none).
SOURCE_REASONS: dict[str, str] = {
    "repurchase": "repurchase_due", "own_top": "similar_to_past", "item_knn_cosine": "similar_to_past",
    "ease": "similar_to_past", "als": "similar_to_past", "content": "similar_to_past",
    "trending": "trending", "segment_popular": "segment_popular", "popular": "segment_popular",
    "tifu_knn": "similar_to_past",
}

# Sources that read ages in days or basket days: left out on a clock that is no clock (line order or none).
TIMED_SOURCES: tuple[str, ...] = ("trending", "repurchase", "tifu_knn")


def source_names() -> list[str]:
    """Every registered source name, in registry order ('segment_popular:<column>' variants not listed)."""
    return list(FACTORIES)


def make_source(name: str, params: Mapping[str, Any] | None = None, cfg: Config | None = None) -> Recommender:
    """A fresh source by its registered name, with the given hyper-parameters over the configured defaults.

    'segment_popular:<column>' is popularity within a group attribute (e.g. segment_popular:age_group).
    """
    c = (cfg or Config()).candidates
    p = dict(params or {})
    base, _, key = name.partition(":")
    if base == "segment_popular" and key:
        source: Recommender = SegmentPopular(**{**p, "key": key})
        source.name = name
        return source
    if name not in FACTORIES:
        raise KeyError(f"unknown source {name!r}; known: {sorted(FACTORIES)}")
    source = FACTORIES[name](c, p)
    source.name = name
    return source


def grid_of(name: str) -> dict[str, list[Any]]:
    """The search grid of a source; 'segment_popular:<column>' shares segment_popular's."""
    return GRIDS.get(name, GRIDS.get(name.partition(":")[0], {}))
