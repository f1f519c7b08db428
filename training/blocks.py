"""Blocks of whole sellers, and one block of the day.

Today's per-group part runs block by block of whole sellers (`cluster.block_groups`; `seller_blocks`): union
candidates → ranker rows → p_conv → components → picks (`day_block`), so memory is bounded by the block, and the
same function is the unit of work in this process, on forked ones (`training.forked`) and on a Dask cluster
(`training.distributed`). The evaluation harness runs the same scoring over every block and keeps it all
(`build_pipeline`, `PipelineRecommender`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import numpy as np
import pandas as pd

from contracts.artifact import _numpy_columns
from contracts.config import BlendWeights, Config
from contracts.schema import GROUP_ID, PRODUCT_ID, ContractFrames
from features.interactions import TrainData, text_values
from features.profiles import Profiles
from recsys.blend import blend_log_scores, weights_hash
from recsys.candidates.base import Recommender
from recsys.picks import greedy_picks_batch
from training.day_model import DayModel, PipelineState, build_day_model, score_candidates
from training.examples import Snapshot
from training.log import Log, default_log
from training.tables import components, feature_table, mean_quantity


def seller_blocks(data: TrainData, block_groups: int) -> list[np.ndarray]:
    """Group indices cut into blocks of about `block_groups` (ascending within a block); a seller's groups always
    share one block, so a block can run a seller over."""
    sellers = data.group_frame["seller_id"].astype(str).to_numpy(dtype=object)
    codes, _ = pd.factorize(sellers)
    order = np.argsort(codes, kind="stable")
    ends = np.r_[np.flatnonzero(np.diff(codes[order]) != 0) + 1, len(order)]
    blocks: list[np.ndarray] = []
    pos = 0
    while pos < len(order):
        end = int(ends[min(np.searchsorted(ends, pos + block_groups), len(ends) - 1)])
        blocks.append(np.sort(order[pos:end]))
        pos = end
    return blocks


def block_profiles(profiles: Profiles, data: TrainData, blocks: list[np.ndarray]) -> list[Profiles]:
    """Each block's view of the profiles (`Profiles.split`): the group-keyed tables (push history, brand shares,
    cycles) cut to its groups in one pass, the rest shared. Pair features read only the pair's own group's rows,
    so a view gives the same rows."""
    return profiles.split([np.asarray(data.groups.id_of(idx), dtype=object) for idx in blocks])


def _by_group(frames: list[pd.DataFrame], groups: list[np.ndarray]) -> pd.DataFrame:
    """Blocks' rows put back in group index order (each block is already in it): the table the whole run gives."""
    if not frames:
        return pd.DataFrame()
    order = np.argsort(np.concatenate(groups), kind="stable")
    return pd.concat(frames, ignore_index=True).take(order).reset_index(drop=True)


def build_pipeline(frames: ContractFrames, data: TrainData, cfg: Config, log: Log = default_log,
                   fitted: Mapping[str, Recommender] | None = None, shape: Any = None,
                   new_pairs_only: bool = False) -> PipelineState:
    """Train the ranker on past snapshots, then score today's union candidates of every group (all as of `data.now`),
    block by block, and keep them all (the evaluation harness reads them; the daily job streams blocks instead)."""
    model = build_day_model(frames, data, cfg, log, fitted, shape=shape, new_pairs_only=new_pairs_only)
    timings = dict(model.timings)
    t0 = time.perf_counter()
    blocks = seller_blocks(data, cfg.cluster.block_groups)
    parts = [score_candidates(model, idx, prof) for idx, prof in zip(blocks, block_profiles(model.profiles, data, blocks))]
    union, cands, feats = (_by_group([p[k] for p in parts], [p[1]["g"].to_numpy() for p in parts]) for k in range(3))
    timings["scoring"] = time.perf_counter() - t0
    log(f"candidates: {len(union):,} for {data.n_groups:,} groups, mean p_conv {cands['p_conv'].mean():.4f} "
        f"({timings['scoring']:.0f}s)")
    return PipelineState(model.ranker, model.ranker_metrics, cands, feats, Snapshot(data, model.sources, union, model.profiles),
                         timings)


class PipelineRecommender(Recommender):
    """The full pipeline as a harness model: candidates re-ranked by the blend of ranker p_conv and components."""

    name = "ranker"

    def __init__(self, frames: ContractFrames, cfg: Config, weights: BlendWeights, share: "PipelineRecommender | None" = None,
                 log: Log = default_log, fitted: Mapping[str, Recommender] | None = None, shape: Any = None,
                 new_pairs_only: bool = False) -> None:
        self.frames = frames
        self.cfg = cfg
        self.weights = weights
        self.share = share
        self.log = log
        self.fitted = fitted
        self.shape = shape  # how a holdout for the ranker's examples is carved (the test's shape), when it learns from one
        self.new_pairs_only = new_pairs_only

    def params(self) -> dict[str, Any]:
        """The blend weights (the rest is in the run's configuration)."""
        return {"weights": self.weights.model_dump()}

    def _fit(self, data: TrainData) -> None:
        if self.share is not None and self.share.is_fitted_on(data):
            self.state_ = self.share.state_
        else:
            self.state_ = build_pipeline(self.frames, data, self.cfg, self.log, self.fitted, self.shape, self.new_pairs_only)
        c = self.state_.candidates
        comps = add_order_value(c, data)
        self.log_scores_ = blend_log_scores(comps, self.weights)
        order = np.argsort(c["g"].to_numpy(), kind="stable")
        self.order_ = order
        self.bounds_ = np.searchsorted(c["g"].to_numpy()[order], np.arange(data.n_groups + 1))

    def score(self, group_idx: np.ndarray) -> np.ndarray:
        """Blend log-scores on each group's candidates; -inf elsewhere."""
        group_idx = np.asarray(group_idx)
        out = np.full((len(group_idx), self.n_items_), -np.inf, dtype=np.float32)
        items = self.state_.candidates["i"].to_numpy()
        for row, gi in enumerate(group_idx):
            sel = self.order_[self.bounds_[gi]:self.bounds_[gi + 1]]
            out[row, items[sel]] = self.log_scores_[sel]
        return out


def add_order_value(cands: pd.DataFrame, data: TrainData) -> pd.DataFrame:
    """order_value = price × the product's mean quantity per order (1 when never ordered)."""
    return cands.assign(order_value=cands["price"].to_numpy() * mean_quantity(data)[cands["i"].to_numpy()])


@dataclass
class DayBlock:
    """One block's share of the artifact: its warm groups' candidates and their feature rows, every group's picks."""

    candidates: pd.DataFrame
    features: pd.DataFrame
    picks: pd.DataFrame


def day_block(model: DayModel, group_idx: np.ndarray, profiles: Profiles | None = None) -> DayBlock:
    """The per-group part of the daily job for one block of groups: union candidates → ranker rows → p_conv →
    components → picks. The unit of work of the single-process run, the forked one and the Dask one; `model` is the
    complete day model (`complete_day_model`)."""
    # Cold groups read their segment's list, so they are not scored at all (about half the groups of the sample world).
    warm_groups = np.asarray(group_idx)[~model.groups["cold_start"].to_numpy(bool)[np.asarray(group_idx, dtype=np.int64)]]
    _, c, f = score_candidates(model, warm_groups, profiles)
    g = c["g"].to_numpy()
    stored = components(c, f, model.data, model.product, model.mean_qty)
    feats = feature_table(c, f, model.ranker, model.profiles, model.price_scale)
    return DayBlock(stored, feats, block_picks(model, group_idx, stored, g))


class _LazyColumns(Mapping[str, np.ndarray]):
    """A frame's columns as numpy arrays, each converted on first read: the picks read a few of a block's columns."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.done: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.done:
            self.done[name] = _numpy_columns(self.frame[[name]])[name]
        return self.done[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.frame.columns)

    def __len__(self) -> int:
        return len(self.frame.columns)

    def __contains__(self, name: object) -> bool:
        return name in self.frame.columns


def block_picks(model: DayModel, group_idx: np.ndarray, stored: pd.DataFrame, stored_g: np.ndarray) -> pd.DataFrame:
    """Default-weights picks of each group of the block, as the service would pick them from the artifact: its own
    candidates, or its segment's list when it is cold or has none (computed once per segment and weights). Warm
    groups are picked all at once (`greedy_picks_batch`, the same picks as `greedy_picks` group by group)."""
    cfg = model.cfg
    group_idx = np.asarray(group_idx, dtype=np.int64)
    # Only the block's rows of the groups table: converting a million rows' text per block would cost more than the picks.
    groups = model.groups.iloc[group_idx]
    lo = np.searchsorted(stored_g, group_idx, side="left")
    hi = np.searchsorted(stored_g, group_idx, side="right")
    seller_type = groups["seller_type"].astype(str).to_numpy(object)
    segment = groups["segment"].astype(str).to_numpy(object)
    by_type = {t: cfg.weights.for_seller_type(t) for t in pd.unique(seller_type)}
    hashes = {t: weights_hash(w) for t, w in by_type.items()}
    weights = [by_type[t] for t in seller_type]
    served_cold = groups["cold_start"].to_numpy(bool) | (hi == lo)
    # Warm groups: one vectorised pass over the block's stored candidates.
    warm = np.flatnonzero(~served_cold)
    rows, scores, _, which = greedy_picks_batch(_LazyColumns(stored), np.column_stack([lo[warm], hi[warm]]),
                                                [weights[r] for r in warm], cfg.rules)
    # The picked rows' product ids only (a tenth of the block's candidates), taken in Arrow.
    picked = np.asarray(text_values(stored[PRODUCT_ID].astype(str), rows), dtype=object) if len(rows) else np.zeros(0, object)
    per_group: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros(0, object), np.zeros(0))] * len(group_idx)
    starts = np.searchsorted(which, np.arange(len(warm) + 1))
    for j, r in enumerate(warm.tolist()):
        per_group[r] = (picked[starts[j]:starts[j + 1]], scores[starts[j]:starts[j + 1]])
    # Cold groups (and warm ones without candidates): their segment's list, once per segment and weights.
    for r in np.flatnonzero(served_cold).tolist():
        per_group[r] = model.segment_lists.picks(str(segment[r]), weights[r], hashes[seller_type[r]])
    counts = np.array([len(p[1]) for p in per_group], dtype=np.int64)
    ids = groups[GROUP_ID].astype(str).to_numpy(object)
    w_hash = np.array([hashes[t] for t in seller_type], dtype=object)
    return pd.DataFrame({
        GROUP_ID: np.repeat(ids, counts),
        "rank": np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts) + 1,
        PRODUCT_ID: np.concatenate([p[0] for p in per_group]) if per_group else np.zeros(0, object),
        "score": np.concatenate([p[1] for p in per_group]) if per_group else np.zeros(0),
        "weights_hash": np.repeat(w_hash, counts),
    })
