"""The fitted day model and the scoring of today's candidates.

`train_ranker` learns the conversion ranker from past examples (`training.examples`); `build_day_model` then fits
today's sources and profiles, learned once (`FittedDay`); `complete_day_model` adds what the daily job's blocks read
besides (the groups and segment tables, price scales, segment lists) and builds the `DayModel` once, complete and
frozen: nothing is set on it afterwards. `score_candidates` turns a set of groups into their union candidates with p_conv and prices and their ranker rows; every group is
scored on its own, so the result does not depend on how groups are cut into blocks (`training.blocks`).
`SegmentLists`, the cold groups' picks, is here because the model holds it.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, fields
from typing import Any, Mapping

import numpy as np
import pandas as pd

from contracts.artifact import _numpy_columns
from contracts.config import BlendWeights, Config, RuleConfig
from contracts.schema import GROUP_ID, PRODUCT_ID, ContractFrames
from features.interactions import TrainData, build_train_data
from features.profiles import Profiles
from recsys.adoption import SellerAdoption
from recsys.candidates.base import Recommender
from recsys.candidates.union import union_candidates
from recsys.picks import greedy_picks
from recsys.ranker import EXPOSED, ConversionRanker, fit_and_evaluate
from training.examples import Snapshot, fit_sources, profiles_at, ranker_examples
from training.log import Log, default_log, slowest
from training.tables import group_table, item_product_state, mean_quantity, segment_components


@dataclass
class PipelineState:
    """What one pipeline run learned: the ranker, its metrics, and today's candidates with their features."""

    ranker: ConversionRanker
    ranker_metrics: dict[str, Any]
    candidates: pd.DataFrame  # group_id, product_id, sources, g, i, p_conv, price, commission_rate, commission_yuan, rating
    features: pd.DataFrame  # the ranker rows of the candidates, row for row
    snapshot: Snapshot  # today's sources, union and profiles
    timings: dict[str, float]

    @property
    def data(self) -> TrainData:
        """Today's training data."""
        return self.snapshot.data

    @property
    def profiles(self) -> Profiles:
        """Today's profiles."""
        return self.snapshot.profiles


def score_rows(ranker: ConversionRanker, rows: pd.DataFrame) -> np.ndarray:
    """p_conv of ranker rows; a ranker trained with the `exposed` flag is asked about shown pairs (exposed = 1)."""
    if EXPOSED in ranker.feature_names_:
        rows = rows.assign(**{EXPOSED: 1})
    return ranker.predict_proba(rows)


class SegmentLists:
    """Default picks of each segment's list per weight profile, picked once per process and reused by every block."""

    def __init__(self, segment: pd.DataFrame, rules: RuleConfig) -> None:
        segments = segment.sort_values("segment", kind="stable").reset_index(drop=True)
        self.keys = segments["segment"].astype(str).to_numpy(object)
        self.cols = _numpy_columns(segments)
        self.rules = rules
        self.cache: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}

    def picks(self, segment: str, w: BlendWeights, w_hash: str) -> tuple[np.ndarray, np.ndarray]:
        """(product ids, scores) of the segment's picks under weights `w` (fingerprint `w_hash`)."""
        key = (segment, w_hash)
        if key not in self.cache:
            rows = np.flatnonzero(self.keys == segment)
            cols = {name: a[rows] for name, a in self.cols.items()}
            idx, scores, _ = greedy_picks(cols, w, self.rules)
            self.cache[key] = (cols[PRODUCT_ID][idx], scores)
        return self.cache[key]


@dataclass(frozen=True)
class FittedDay:
    """What `build_day_model` learns once: the ranker, today's fitted sources and profiles, and the per-product
    tables; enough to score candidates (`score_candidates`, the evaluation harness's `build_pipeline`)."""

    data: TrainData
    sources: dict[str, Recommender]
    profiles: Profiles
    ranker: ConversionRanker
    ranker_metrics: dict[str, Any]
    cfg: Config
    product: pd.DataFrame  # product_state, row i = item index i
    mean_qty: np.ndarray  # mean quantity per order of item i (1 when never ordered)
    timings: dict[str, float]
    adoption: SellerAdoption  # the chance the seller pushes a pair at all (a blend component)


@dataclass(frozen=True)
class DayModel(FittedDay):
    """What the daily job's blocks read, built complete once (`complete_day_model`): the fitted day plus the groups
    and segment_candidates tables, each TrainData group's log-price scale and the segments' picks. Every block of
    groups (in this process, on a forked one or on a Dask worker) reads the same one; its `profiles` keep no
    group-keyed tables (each block carries its own view, `training.blocks.block_profiles`)."""

    groups: pd.DataFrame  # the artifact's groups table, row g = TrainData group g
    segment: pd.DataFrame  # the artifact's segment_candidates table
    price_scale: np.ndarray  # log-price scale of each TrainData group (NaN for a group without a profile)
    segment_lists: SegmentLists  # the segments' picks per weight profile (each picked on first use, then reused)


def complete_day_model(fitted: FittedDay, frames: ContractFrames) -> DayModel:
    """The daily job's day model, built complete from the fitted day: the groups and segment tables, the groups'
    log-price scales, the segments' lists, and the profiles without their group-keyed tables."""
    data, cfg = fitted.data, fitted.cfg
    groups = group_table(frames, data)
    segment = segment_components(frames, data, cfg, fitted.product)
    price_scale = fitted.profiles.price_scale_of(data.groups.ids)
    parts = {f.name: getattr(fitted, f.name) for f in fields(FittedDay)}
    parts["profiles"] = fitted.profiles.without_group_tables()
    return DayModel(**parts, groups=groups, segment=segment, price_scale=price_scale,
                    segment_lists=SegmentLists(segment, cfg.rules))


Trained = tuple[ConversionRanker, dict[str, Any], dict[str, float]]


def train_ranker(frames: ContractFrames, now: pd.Timestamp, cfg: Config, log: Log = default_log, shape: Any = None,
                 new_pairs_only: bool = False, like: Mapping[str, Recommender] | None = None) -> Trained:
    """The conversion ranker trained on the past snapshots before `now` (or on a holdout carved as `shape`, see
    `ranker_examples`); its metrics and timings."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    examples = ranker_examples(frames, now, cfg, log, shape=shape, new_pairs_only=new_pairs_only, like=like)
    timings["ranker_examples"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ranker, metrics = fit_and_evaluate(examples, cfg.ranker)
    timings["ranker_fit"] = time.perf_counter() - t0
    c = metrics["calibrated"]
    log(f"ranker: {metrics['rows']['train']:,} training rows, {ranker.best_iteration_} trees; held-out shown pairs: "
        f"AUC {c['auc']:.3f}, log loss {c['log_loss']:.4f}, ECE {c['ece']:.4f} (raw ECE {metrics['uncalibrated']['ece']:.4f}, "
        f"popularity AUC {metrics['popularity_rate']['auc']:.3f}) ({timings['ranker_fit']:.0f}s)")
    return ranker, metrics, timings


def build_day_model(frames: ContractFrames, data: TrainData, cfg: Config, log: Log = default_log,
                    fitted: Mapping[str, Recommender] | None = None, trained: Trained | None = None,
                    release_fit_inputs: bool = False, shape: Any = None, new_pairs_only: bool = False) -> FittedDay:
    """Train the ranker (unless `trained` already is), then fit today's sources and profiles: everything but the
    per-group work. With `release_fit_inputs` the model keeps `data.without_fit_inputs()`, and when the caller
    holds no other reference to `data` its fitting matrices are freed before the profiles are built. `shape` and
    `new_pairs_only` say how a holdout of the orders is carved for the ranker's examples (`holdout_examples`)."""
    ranker, metrics, timings = trained if trained is not None else \
        train_ranker(frames, data.now, cfg, log, shape=shape, new_pairs_only=new_pairs_only, like=fitted)
    timings = dict(timings)
    if cfg.ranker.inference == "compiled" and ranker.compiled_ is None:
        t0 = time.perf_counter()
        ranker.compile()
        timings["ranker_compile"] = time.perf_counter() - t0
        log(f"ranker: {ranker.best_iteration_} trees compiled to native code ({timings['ranker_compile']:.0f}s)")
    t0 = time.perf_counter()
    each: dict[str, float] = {}
    sources = fit_sources(data, cfg, fitted=fitted, seconds=each)
    timings["sources"] = time.perf_counter() - t0
    timings.update({f"source_{k}": v for k, v in each.items()})
    log(f"sources: {len(sources)} fitted on today's data ({timings['sources']:.0f}s: {slowest(each)})")
    adoption = SellerAdoption(data)
    if release_fit_inputs:
        data = data.without_fit_inputs()
        gc.collect()
    t0 = time.perf_counter()
    profiles = profiles_at(frames, data.now, cfg)
    product = item_product_state(frames, data, cfg)
    mean_qty = mean_quantity(data)
    timings["profiles"] = time.perf_counter() - t0
    log(f"profiles: groups, products, push history as of {data.now:%Y-%m-%d} ({timings['profiles']:.0f}s)")
    return FittedDay(data, sources, profiles, ranker, metrics, cfg, product, mean_qty, timings, adoption)


def today_model(frames: ContractFrames, cfg: Config, trained: Trained, timings: dict[str, float], log: Log = default_log) -> FittedDay:
    """Today's TrainData and day model for the daily job. Today's TrainData is handed straight to `build_day_model`,
    whose reference is then the only one: its fitting matrices (GBs at a million groups) go once the sources are fitted."""
    t0 = time.perf_counter()

    def data() -> TrainData:
        built = build_train_data(frames.products, frames.sellers, frames.groups, frames.pushes, frames.orders, cfg.features)
        timings["features"] = time.perf_counter() - t0
        log(f"features: {built.n_groups:,} groups, {built.n_items:,} products, now {built.now}")
        return built

    return build_day_model(frames, data(), cfg, log, trained=trained, release_fit_inputs=True)


def score_candidates(model: FittedDay, group_idx: np.ndarray, profiles: Profiles | None = None
                     ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Today's union candidates of these groups: (union, candidates with p_conv and prices, their ranker rows).

    Every group is scored on its own, so the result of a group does not depend on the block it came in;
    `profiles` may be the block's view (`block_profiles`), which gives the same rows as the whole.
    """
    data, cfg = model.data, model.cfg
    union = union_candidates(model.sources, data, np.asarray(group_idx, dtype=np.int64), cfg.candidates.per_source,
                             cfg.candidates.union_size, with_indices=True, reserved=cfg.candidates.union_reserved)
    # The union rows are the pairs: their ranks are its own rank columns, no look-up by id.
    rank_cols = [c for c in union.columns if c.startswith("rank__")]
    ranks = union[rank_cols].reset_index(drop=True)
    ranks["n_sources"] = ranks.notna().sum(axis=1).astype(float)
    feats = Snapshot(data, model.sources, union, profiles or model.profiles).rows(union, ranks=ranks)
    cands = union[[GROUP_ID, PRODUCT_ID, "sources", "g", "i"]].reset_index(drop=True)
    union = union.drop(columns=["g", "i"])
    i = cands["i"].to_numpy()
    cands["p_conv"] = score_rows(model.ranker, feats) if len(feats) else np.zeros(0)
    items = data.item_frame
    cands["price"] = items["price"].to_numpy(float)[i]
    cands["commission_rate"] = items["commission_rate"].to_numpy(float)[i]
    cands["commission_yuan"] = cands["price"] * cands["commission_rate"]
    cands["rating"] = items["rating"].to_numpy(float)[i]
    cands["adoption"] = model.adoption.pairs(cands["g"].to_numpy(), i)
    return union, cands, feats
