"""The daily job: load → validate → features → candidates → conversion ranker → per-group components →
evaluation against the baselines → artifact, written atomically.

The job's parts live below it, each importing only those under it: the ranker's examples and the snapshot their
rows are read from (`training.examples`), the fitted day model and the scoring of candidates
(`training.day_model`), the artifact's tables (`training.tables`), blocks of whole sellers and one block of the day
(`training.blocks`), and the runners of the blocks on forked processes (`training.forked`) or a Dask cluster
(`training.distributed`). This module holds the job itself: `run_daily`, the evaluation it runs first
(`evaluate_pipeline`) and its headline.

The ranker learns from the past (see `training.examples`); today's candidates are then scored with sources and
profiles as of today. Each candidate keeps its components (p_conv, price, commission, rating, order value,
category, brand, flags, reasons) so that the service can re-blend them with whatever weights ops set, without
retraining; the artifact also holds the ranker (`models/`) and each stored candidate's feature row
(`candidate_features`) for what-ifs.

Today's per-group part runs block by block of whole sellers (`cluster.block_groups`; `seller_blocks`,
`day_block`): union candidates → ranker rows → p_conv → components → picks, so memory is bounded by the block,
and the same function is the unit of work on a Dask cluster (`training.distributed`, `cluster.scheduler`).
Every group is scored on its own, so the candidates and picks do not depend on how groups are cut into blocks.

Cold groups (fewer than `cold_min_orders` orders) are served from their segment (seller type × city
tier): the segment's most bought products, with p_conv the smoothed push-conversion rate of the product
within the segment.
"""

from __future__ import annotations

import gc
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from contracts.artifact import ArtifactWriter
from contracts.config import BlendWeights, ClusterConfig, Config, config_hash
from contracts.schema import GROUP_ID, ORDERED_AT, PRODUCT_ID, PUSHED_AT, ContractFrames, Frames
from features.interactions import default_now, to_local_naive
from features.profiles import Profiles
from recsys.blend import weights_hash
from recsys.calibration import probability_metrics
from recsys.candidates import BlendRecommender
from recsys.candidates.base import Recommender
from recsys.candidates.registry import make_source
from recsys.ranker import LABEL, META_FILE, MODEL_DIR, MODEL_FILE, push_labels
from training.blocks import DayBlock, PipelineRecommender, block_profiles, day_block, seller_blocks
from training.day_model import DayModel, PipelineState, complete_day_model, score_rows, today_model, train_ranker
from training.distributed import run_blocks_on_cluster
from training.evaluate import EvalOptions, evaluate_models
from training.evaluation_window import evaluation_tables, time_split
from training.examples import SOURCES
from training.forked import run_blocks_forked, worker_processes
from training.log import Log, default_log, progress

BASELINES: tuple[str, ...] = ("random", "popular", "rating_commission", "segment_popular", "own_top",
                              "item_knn_cosine", "ease", "als")
# Held-out pushes are labelled with the default window whatever the ranker's own window is.
YARDSTICK_WINDOW_DAYS = 3


def run_blocks(model: DayModel, blocks: list[np.ndarray], views: list[Profiles], log: Log = default_log) -> Iterator[DayBlock]:
    """Every block, in block order: in this process, on `cluster.processes` forked ones, or on the Dask cluster of
    `cluster.scheduler` when one is set; a generator, so the caller can write each block away before the next one is held."""
    if model.cfg.cluster.scheduler:
        yield from run_blocks_on_cluster(model, blocks, views, log)
        return
    processes = min(worker_processes(model.cfg.cluster.processes), len(blocks))
    if processes > 1:
        yield from run_blocks_forked(model, blocks, views, processes, log)
        return
    for idx, view in progress(zip(blocks, views), len(blocks), "blocks"):
        yield day_block(model, idx, view)


@dataclass
class DailyResult:
    """What a daily run produced."""

    artifact: Path
    manifest: dict[str, Any]
    evaluation: dict[str, Any] | None
    timings: dict[str, float]
    model: DayModel | None = None  # what today's blocks were scored with (benchmarks read its fitted sources)


def evaluate_pipeline(frames: Any, cfg: Config, test_days: int = 7, log: Log = default_log,
                      max_eval_groups: int | None = None, models_out: dict[str, Recommender] | None = None) -> dict[str, Any]:
    """Hold out the last `test_days`: baselines, the candidate-only blend and the full pipeline on one harness
    (plus p_conv judged on the test days' pushes); the fitted models go into `models_out` when given."""
    frames = Frames.of(frames)
    train, test, cutoff = time_split(frames, test_days)
    models: dict[str, Recommender] = {name: make_source(name, None, cfg) for name in BASELINES}
    sources = {name: models[name] if name in models else make_source(name, None, cfg) for name in SOURCES}
    models["candidates"] = BlendRecommender(sources, per_source=cfg.candidates.per_source)
    # "ranker" is the expected orders of a pick: the chance the seller pushes it × p_conv; "ranker_conversion" is
    # p_conv alone, which logged orders (that follow the sellers' own pushes) judge without her habits.
    conversion = BlendWeights(conversion=1.0, earnings=0.0, rating=0.0, order_value=0.0, diversity=0.0, adoption=1.0)
    # The pipeline reuses the sources the harness has just fitted on the same training data.
    ranker = PipelineRecommender(train, cfg, conversion, log=log, fitted=sources)
    models["ranker"] = ranker
    models["ranker_conversion"] = PipelineRecommender(train, cfg, conversion.model_copy(update={"adoption": 0.0}),
                                                      share=ranker, log=log)
    models["ranker_ops"] = PipelineRecommender(train, cfg, cfg.weights.default.model_copy(update={"diversity": 0.0}),
                                               share=ranker, log=log)
    options = EvalOptions(ks=(10, 20), test_days=test_days, max_eval_groups=max_eval_groups)
    result = evaluate_models(train, test, models, cfg, options, model_name="ranker", dataset="daily", cutoff=cutoff)
    out = result.to_dict()
    out["ranker"] = ranker.state_.ranker_metrics
    out["held_out_pushes"] = held_out_push_metrics(ranker.state_, frames, test, cfg)
    if models_out is not None:
        models_out.update(models)
    return out


def held_out_push_metrics(state: PipelineState, frames: Frames, test: Frames, cfg: Config) -> dict[str, Any] | None:
    """p_conv judged as P(order | shown) on the pushes after the cut-off, whatever the examples were: each push of
    the test days whose label window ends in them, featured as of the cut-off like today's candidates, labelled by an
    order within YARDSTICK_WINDOW_DAYS. The same yardstick for every example mode. None without such pushes."""
    pushes = getattr(test, "pushes", None)
    if pushes is None or not len(pushes):
        return None
    now = state.data.now
    end = to_local_naive(test.orders[ORDERED_AT]).max() if len(test.orders) else now
    pushes = pushes.assign(**{PUSHED_AT: to_local_naive(pushes[PUSHED_AT])})
    orders = test.orders.assign(**{ORDERED_AT: to_local_naive(test.orders[ORDERED_AT])})
    window = YARDSTICK_WINDOW_DAYS
    labelled = push_labels(pushes, orders, window, data_end=end)
    known = labelled[GROUP_ID].astype(str).isin(set(state.data.groups.ids)) & labelled[PRODUCT_ID].astype(str).isin(set(state.data.items.ids))
    labelled = labelled[known].reset_index(drop=True)
    if labelled[LABEL].nunique() < 2:
        return None
    p = score_rows(state.ranker, state.snapshot.rows(labelled))
    return {**probability_metrics(labelled[LABEL].to_numpy(), p), "label_window_days": window}


def headline(evaluation: dict[str, Any]) -> list[str]:
    """Lines comparing the pipeline with the candidate-only blend and the baselines."""
    m = evaluation["metrics"]
    lines = [f"{'model':<20}{'ndcg@10':>9}{'recall@10':>11}{'hr@10':>8}{'commission@10':>15}"]
    for name, v in sorted(m.items(), key=lambda kv: -kv[1]["ndcg@10"]):
        lines.append(f"{name:<20}{v['ndcg@10']:>9.4f}{v['recall@10']:>11.4f}{v['hr@10']:>8.4f}{v['commission_realised@10']:>15.3f}")
    return lines


def run_daily(frames: ContractFrames, cfg: Config, out_root: str | Path, evaluate: bool = True, test_days: int = 7,
              log: Log = default_log, source: str = "") -> DailyResult:
    """The whole job; the artifact is streamed into a temporary folder and published atomically at the very end (a
    crash leaves the previous one)."""
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    evaluation = None
    window_tables: dict[str, pd.DataFrame] = {}
    if evaluate:
        t0 = time.perf_counter()
        log(f"evaluation: last {test_days} days held out")
        fitted: dict[str, Recommender] = {}
        evaluation = evaluate_pipeline(frames, cfg, test_days, log, models_out=fitted)
        # The ops preview replays these: candidates as scored at the cut-off, and what the groups then ordered.
        window_tables = evaluation_tables(fitted["ranker"], frames, cfg, test_days)
        timings["evaluation"] = time.perf_counter() - t0
        for line in headline(evaluation):
            log(line)
    # The ranker learns first, from its own past snapshot, which is freed before today's data is built: the two
    # TrainData and profile sets are never held together (the job's peak memory at a million groups).
    trained = train_ranker(frames, default_now(frames.orders), cfg, log)
    gc.collect()
    fitted = today_model(frames, cfg, trained, timings, log)
    data = fitted.data
    timings.update({f"pipeline_{k}": v for k, v in fitted.timings.items()})
    t0 = time.perf_counter()
    model = complete_day_model(fitted, frames)
    groups, segment = model.groups, model.segment
    blocks = seller_blocks(data, cfg.cluster.block_groups)
    views = block_profiles(fitted.profiles, data, blocks)
    # Each block carries its own view of the group-keyed tables (the push history is 1.5 GB at a million groups), so
    # the model every block shares (broadcast once to Dask workers) keeps none of them, and the whole tables go here.
    del fitted
    timings["blocks_setup"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    where = f"on {cfg.cluster.scheduler}" if cfg.cluster.scheduler else "in this process"
    log(f"scoring {data.n_groups:,} groups in {len(blocks):,} blocks of whole sellers {where}")
    w_hash = weights_hash(cfg.weights.default)
    # Where the blocks ran does not change the picks, so it does not change the fingerprint either.
    c_hash = config_hash(cfg.model_copy(update={"cluster": ClusterConfig()}))
    with ArtifactWriter(out_root, c_hash) as writer:
        # Blocks go straight into the artifact's Parquet files (in block order: a seller's groups stay together),
        # so the job holds one block's candidates at a time, whatever the number of groups.
        n_candidates = n_picks = n_done = 0
        every = max(1, len(blocks) // 20)  # a progress line per ~5 % of the blocks (plain logs have no bar)
        for k, block in enumerate(run_blocks(model, blocks, views, log), start=1):
            writer.append("candidates", block.candidates)
            writer.append("candidate_features", block.features)
            writer.append("picks", block.picks)
            n_candidates += len(block.candidates)
            n_picks += len(block.picks)
            n_done += len(blocks[k - 1])
            if k % every == 0 and k < len(blocks):
                spent = time.perf_counter() - t0
                log(f"blocks {k:,}/{len(blocks):,}: {n_done:,} groups, {n_done / spent:,.0f} groups/s")
        del views
        cold_ids = set(groups.loc[groups["cold_start"], GROUP_ID])
        timings["blocks"] = time.perf_counter() - t0
        log(f"blocks: {n_candidates:,} candidates, {n_picks:,} picks for {len(groups):,} groups "
            f"({timings['blocks']:.1f}s)")
        ordered = to_local_naive(frames.orders[ORDERED_AT])
        manifest = {
            "source": source,
            "config_hash": c_hash,
            "weights_hash": w_hash,
            "data_window": {"start": str(ordered.min()), "end": str(ordered.max())},
            "pick_date": str((ordered.max().normalize() + pd.Timedelta(days=1)).date()),
            "metrics": {"ranker": model.ranker_metrics,
                        "evaluation": None if evaluation is None else evaluation["metrics"]},
            "feature_importance": dict(list(model.ranker.feature_importance().items())[:15]),
            "counts": {"groups": len(groups), "cold_groups": len(cold_ids), "candidates": n_candidates,
                       "segment_candidates": len(segment)},
        }
        writer.add_file(f"{MODEL_DIR}/{MODEL_FILE}", model.ranker.model_text().encode("utf-8"))
        writer.add_file(f"{MODEL_DIR}/{META_FILE}", json.dumps(model.ranker.meta(), ensure_ascii=False).encode("utf-8"))
        if evaluation is not None:
            writer.add_file("evaluation.json", json.dumps(evaluation, ensure_ascii=False, default=str).encode("utf-8"))
        products = frames.products.assign(**{PRODUCT_ID: frames.products[PRODUCT_ID].astype(str)})
        for name, table in {"groups": groups, "products": products, "segment_candidates": segment, **window_tables}.items():
            writer.write_table(name, table)
        timings["total_before_write"] = time.perf_counter() - t_all
        manifest["timings_s"] = {k: round(v, 2) for k, v in timings.items()}
        path = writer.commit(manifest)
    timings["total"] = time.perf_counter() - t_all
    log(f"artifact: {path} ({timings['total']:.1f}s in all)")
    return DailyResult(path, manifest, evaluation, timings, model)
