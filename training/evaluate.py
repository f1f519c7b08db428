"""The evaluation harness: time split, tuned baselines, the tuned blend of candidate sources, metrics and breakdowns.

Headline figures always come from a split by time (train before a cut-off, test the following days) or from
train/test tables given separately; hyper-parameters are tuned on a validation window carved from the end of
the TRAINING data, then every model is refitted on the full training data with the chosen values.
`evaluate_models(train, test, models, cfg)` is the plug-in point for any `Recommender` (e.g. the LightGBM ranker).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.interactions import TrainData, build_train_data, to_local_naive
from contracts.schema import GROUP_ID, ORDERED_AT, PRODUCT_ID, PUSHED_AT, Frames
from recsys import metrics as M
from recsys.candidates import BlendRecommender, Recommender
from recsys.candidates.learned import LearnedBlend
from recsys.candidates.registry import CONFIG_OF_PARAM, GRIDS, TIMED_SOURCES, grid_of, make_source
from recsys.candidates.union import normalise_scores
from contracts.config import BlendWeights, Config
from training.blocks import PipelineRecommender
from training.evaluation_window import TestShape, carve, detect_test_shape, time_split

SIZE_BANDS = ((0, 50, "<50"), (50, 201, "50–200"), (201, np.inf, ">200"))


@dataclass
class EvalOptions:
    """How an evaluation runs."""

    ks: tuple[int, ...] = (10, 20)
    test_days: int = 7
    validation_days: int | None = 7  # a window validation's days; None: as long as the test window
    new_pairs_only: bool = False
    tune: bool = True
    tune_metric: str = "ndcg@10"
    max_eval_groups: int | None = None  # subsample test groups (seeded) to bound run time
    max_tune_groups: int = 3000
    seed: int = 7
    model: str = "blend"  # the model under test: "blend" (tuned linear blend) or "learned" (LightGBM over candidates)
    max_ranker_groups: int = 8000  # validation groups the learned blend trains on
    ranker_params: dict[str, Any] = field(default_factory=dict)  # LearnedBlend settings (n_estimators, per_source, …)
    grids: dict[str, dict[str, list[Any]]] = field(default_factory=dict)  # per-source grid overrides (e.g. a smaller ALS grid)
    # Which validation orders are targets (a boolean mask over them; default all), so that validation asks the
    # test's question when training holds other kinds of orders (Beibei: participants' orders train, not target).
    validation_targets: Callable[[pd.DataFrame], np.ndarray] | None = None
    # Also judge each group's list by its members (test orders' buyer_id): member_hr@K, member_recall@K.
    member_metrics: bool = False
    # How the test was made (training.evaluation_window.TestShape); None: detected from train and test.
    shape: TestShape | None = None
    # Feature half-lives tried on validation (a real clock only; None = no decay); empty keeps the configured one.
    half_lives: tuple[float | None, ...] = (None, 7.0, 14.0, 30.0, 90.0)
    served: bool = False  # also score the model `quanxuan train` serves (ranker + blend of training.daily)
    keep_lists: bool = False  # keep every model's top-K lists (EvalResult.lists) for --lists
    baselines: tuple[str, ...] = (
        "random", "popular", "rating_commission", "segment_popular", "own_top",
        "item_knn_cosine", "item_knn_bm25", "als", "ease", "tifu_knn",
    )
    # TIFU-KNN is a baseline, not a blend source: side by side on the sample world (benchmarks/real_data.py --sample
    # --ab tifu) the tuned union fell from pHR@10 0.1547 to 0.1469 with it.
    blend_sources: tuple[str, ...] = (
        "popular", "trending", "segment_popular", "own_top", "repurchase", "item_knn_cosine", "ease", "als", "content",
        "exposure",
    )


@dataclass
class EvalResult:
    """Every figure of one evaluation run, plus what produced it."""

    dataset: str
    split: dict[str, Any]
    metrics: dict[str, dict[str, float]]  # model -> metric -> value
    breakdowns: dict[str, dict[str, dict[str, dict[str, float]]]]  # kind -> band -> model -> metric -> value
    params: dict[str, Any]
    fit_seconds: dict[str, float]
    tuning: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    spearman: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    model_name: str = "blend"
    served_model: str | None = None  # the model `quanxuan train` would serve, when it was evaluated
    dropped: dict[str, Any] = field(default_factory=dict)  # test rows left out, by reason
    lists: pd.DataFrame | None = field(default=None, repr=False)  # model, group_id, rank, product_id, score (keep_lists)

    def best_baseline(self, metric: str = "ndcg@10") -> tuple[str, float]:
        """The strongest baseline on a metric (every model except the one under test and the served one)."""
        others = {m: v[metric] for m, v in self.metrics.items()
                  if m not in (self.model_name, self.served_model, SERVED_CONVERSION)}
        name = max(others, key=others.get)
        return name, others[name]

    def lift(self, metric: str = "ndcg@10") -> float:
        """Model / best baseline on a metric."""
        _, best = self.best_baseline(metric)
        return self.metrics[self.model_name][metric] / best if best > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dictionary (the lists go to their own Parquet file)."""
        out = asdict(replace(self, lists=None))
        del out["lists"]
        return out


# ---------------------------------------------------------------------------------------------- splits


def split_test(frames: Frames, test_days: int = 7, cutoff: pd.Timestamp | str | None = None,
               seed: int = 7) -> tuple[Frames, Frames, pd.Timestamp | None]:
    """(train, test, cut-off) of one dataset: the last `test_days` on a real clock, else each group's last line held
    out (line order is an order within a group, not a time: no window can be cut from it)."""
    frames = Frames.of(frames)
    if frames.clock == "real":
        return time_split(frames, test_days, cutoff)
    if cutoff is not None:
        raise ValueError(f"--cutoff needs real timestamps; this data's clock is {frames.clock!r}")
    return carve(frames, TestShape("holdout_last"), frames.clock, seed)


def relevance(test_orders: pd.DataFrame, data: TrainData, new_pairs_only: bool) -> sp.csr_matrix:
    """Groups × items, 1 where the group ordered the item in the test window (refunds and unknown ids left out)."""
    o = test_orders
    if "refunded" in o:
        o = o.loc[~o["refunded"].fillna(False).astype(bool).to_numpy()]
    g = data.groups.index_of(o[GROUP_ID].astype(str).to_numpy(), missing="mark")
    i = data.items.index_of(o[PRODUCT_ID].astype(str).to_numpy(), missing="mark")
    keep = (g >= 0) & (i >= 0)
    rel = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32), (g[keep], i[keep])), shape=(data.n_groups, data.n_items))
    rel.sum_duplicates()
    rel.data[:] = 1.0
    if new_pairs_only:
        rel = rel - rel.multiply(data.bought.sign())
        rel.eliminate_zeros()
    return rel.tocsr()


def test_accounting(test_orders: pd.DataFrame, data: TrainData, new_pairs_only: bool) -> dict[str, Any]:
    """How many test rows count and why the others do not (refunded, unknown group or product, seen in training)."""
    o = test_orders
    refunded = o["refunded"].fillna(False).astype(bool).to_numpy() if "refunded" in o else np.zeros(len(o), dtype=bool)
    g = data.groups.index_of(o[GROUP_ID].astype(str).to_numpy(), missing="mark")
    i = data.items.index_of(o[PRODUCT_ID].astype(str).to_numpy(), missing="mark")
    unknown_group = ~refunded & (g < 0)
    unknown_product = ~refunded & (g >= 0) & (i < 0)
    known = ~refunded & (g >= 0) & (i >= 0)
    seen = np.zeros(len(o), dtype=bool)
    if new_pairs_only and known.any():
        seen[known] = np.asarray(data.bought[g[known], i[known]]).ravel() > 0
    kept = known & ~seen
    pairs = np.unique(g[kept].astype(np.int64) * max(data.n_items, 1) + i[kept]).size
    return {"test_rows": int(len(o)), "refunded": int(refunded.sum()), "unknown_group": int(unknown_group.sum()),
            "unknown_product": int(unknown_product.sum()), "seen_in_training": int(seen.sum()),
            "kept_rows": int(kept.sum()), "repeated_pair_rows": int(kept.sum() - pairs), "test_pairs": int(pairs)}


def member_relevance(test_orders: pd.DataFrame, data: TrainData, groups: np.ndarray,
                     new_pairs_only: bool) -> tuple[sp.csr_matrix, np.ndarray]:
    """Members × items relevance of the evaluated groups' buyers, and each member's row in `groups`.

    A member is a (group, buyer_id) pair with a test order; with new pairs only, items her group bought in
    training are left out (the group's list cannot hold them). Members with nothing left are dropped.
    """
    o = test_orders.loc[test_orders["buyer_id"].notna().to_numpy()] if "buyer_id" in test_orders else test_orders.iloc[0:0]
    if "refunded" in o:
        o = o.loc[~o["refunded"].fillna(False).astype(bool).to_numpy()]
    g = data.groups.index_of(o[GROUP_ID].astype(str).to_numpy(), missing="mark")
    i = data.items.index_of(o[PRODUCT_ID].astype(str).to_numpy(), missing="mark")
    pos = np.full(data.n_groups, -1, dtype=np.int64)
    pos[groups] = np.arange(groups.size)
    keep = (g >= 0) & (i >= 0)
    keep[keep] = pos[g[keep]] >= 0
    if new_pairs_only:
        keep[keep] = np.asarray(data.bought[g[keep], i[keep]]).ravel() == 0
    g, i, buyer = g[keep], i[keep], o["buyer_id"].astype(str).to_numpy()[keep]
    codes, uniques = pd.factorize(pd.Series(g.astype(str)) + "|" + pd.Series(buyer))
    rel = sp.csr_matrix((np.ones(codes.size, dtype=np.float32), (codes, i)), shape=(len(uniques), data.n_items))
    rel.sum_duplicates()
    rel.data[:] = 1.0
    member_group = np.zeros(len(uniques), dtype=np.int64)
    member_group[codes] = pos[g]
    return rel.tocsr(), member_group


def eval_groups(rel: sp.csr_matrix, limit: int | None, seed: int) -> np.ndarray:
    """Groups with at least one relevant item, subsampled (seeded) to `limit`."""
    groups = np.flatnonzero(np.diff(rel.indptr) > 0)
    if limit is not None and groups.size > limit:
        groups = np.sort(np.random.default_rng(seed).choice(groups, limit, replace=False))
    return groups


# ---------------------------------------------------------------------------------------------- metrics


def list_metrics(ids: np.ndarray, rel: sp.csr_matrix, data: TrainData, ks: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Per-group metric arrays for one model's lists."""
    out: dict[str, np.ndarray] = {}
    commission = data.commission_yuan
    for k in ks:
        out[f"recall@{k}"] = M.recall_at_k(ids, rel, k)
        out[f"ndcg@{k}"] = M.ndcg_at_k(ids, rel, k)
        out[f"hr@{k}"] = M.hit_rate_at_k(ids, rel, k)
        out[f"map@{k}"] = M.average_precision_at_k(ids, rel, k)
        out[f"commission_realised@{k}"] = M.realised_commission_at_k(ids, rel, commission, k)
        out[f"commission_potential@{k}"] = M.potential_commission_at_k(ids, commission, k)
    return out


def summary_metrics(ids: np.ndarray, per_group: dict[str, np.ndarray], data: TrainData, ks: tuple[int, ...],
                    rel: sp.csr_matrix | None = None) -> dict[str, float]:
    """Means of the per-group metrics, the per-test-pair ones (with `rel`), and list-level coverage and diversity.

    Per test pair (pair_hr@K, pair_ndcg@K): each test (group, product) pair counts once, so a group with three test
    items weighs three times a group with one; pair_hr@K is the share of test pairs found in their group's top K.
    """
    out = {name: _nanmean(v) for name, v in per_group.items()}
    if rel is not None:
        for k in ks:
            out[f"pair_hr@{k}"] = M.pair_mean(per_group[f"recall@{k}"], rel)
            out[f"pair_ndcg@{k}"] = M.pair_mean(per_group[f"ndcg@{k}"], rel)
    categories = pd.factorize(data.item_frame["category"])[0]
    for k in ks:
        out[f"coverage@{k}"] = M.catalogue_coverage(ids, data.n_items, k)
        out[f"diversity_category@{k}"] = _nanmean(M.intra_list_diversity_category(ids, categories, k))
        if isinstance(data.item_vectors, np.ndarray):
            out[f"diversity_embedding@{k}"] = _nanmean(M.intra_list_diversity_embedding(ids, data.item_vectors, k))
    return out


def _nanmean(values: np.ndarray) -> float:
    """Mean of the defined values; NaN without a warning when none is (e.g. empty lists have no diversity)."""
    v = np.asarray(values, dtype=np.float64)
    ok = ~np.isnan(v)
    return float(v[ok].mean()) if ok.any() else float("nan")


def group_bands(data: TrainData, groups: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Masks over the evaluated groups for each breakdown: size band, seller type, cold vs warm."""
    frame = data.group_frame.iloc[groups]
    members = frame["member_count"].to_numpy(dtype=np.float64)
    bands: dict[str, dict[str, np.ndarray]] = {"size_band": {}, "seller_type": {}, "history": {}}
    for lo, hi, label in SIZE_BANDS:
        bands["size_band"][label] = (members >= lo) & (members < hi)
    for seller_type in sorted(frame["seller_type"].unique()):
        bands["seller_type"][seller_type] = (frame["seller_type"] == seller_type).to_numpy()
    cold = data.cold[groups]
    bands["history"]["cold"] = cold
    bands["history"]["warm"] = ~cold
    return bands


# ---------------------------------------------------------------------------------------------- models


BLEND_WEIGHT_STEPS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass
class Validation:
    """The tuning split: sources fit on `data` (train minus its last days), scored on `rel` for `groups`."""

    data: TrainData
    rel: sp.csr_matrix
    groups: np.ndarray
    exclude: sp.csr_matrix | None
    rel_all: sp.csr_matrix | None = None  # every validation group's relevance (the ranker samples its own groups)


def validation_shape(train: Frames, options: EvalOptions) -> TestShape:
    """The shape validation is carved in: the test's (options.shape), else the last window on a real clock and
    each group's last line otherwise; a window lasts `validation_days` when set, else the test's days."""
    shape = options.shape
    if shape is None:
        shape = TestShape("window", days=options.validation_days or options.test_days) if train.clock == "real" \
            else TestShape("holdout_last")
    if shape.kind == "window" and options.validation_days:
        shape = replace(shape, days=options.validation_days)
    if shape.kind == "window" and train.clock != "real":
        raise ValueError(f"a time-window test on a {train.clock!r} clock: its timestamps are not times")
    return shape


def split_validation_or_raise(train: Frames, cfg: Config, options: EvalOptions, item_vectors: Any = None) -> None:
    """ValueError when validation cannot be carved from training (no group keeps a history and something to find)."""
    build_validation(train, with_half_life(cfg, None), replace(options, max_tune_groups=1), item_vectors)


def split_validation(train: Frames, options: EvalOptions) -> tuple[Frames, Frames, pd.Timestamp | None]:
    """Training minus validation, the validation orders, and the cut-off (None for holdouts)."""
    return carve(train, validation_shape(train, options), train.clock, options.seed)


def build_validation(train: Frames, cfg: Config, options: EvalOptions, item_vectors: Any = None,
                     split: tuple[Frames, Frames, pd.Timestamp | None] | None = None) -> Validation:
    """Carve validation off the training data the way the test was made (`validation_shape`) and score on it.

    Only groups that keep a training history are validation rows (a holdout keeps one by construction; a window
    drops the groups first seen in it), so tuning asks what the test asks of groups the models know.
    With a 'member_' tuning metric the rows are the validation window's members (buyer_id within a group),
    each holding her group's list, instead of the groups.
    """
    train = Frames.of(train)
    sub, val, cut = split if split is not None else split_validation(train, options)
    data = build_train_data(sub.products, sub.sellers, sub.groups, sub.pushes, sub.orders, cfg.features, now=cut,
                            item_vectors=item_vectors, clock=train.clock)
    targets = val.orders
    if options.validation_targets is not None:
        targets = targets.loc[np.asarray(options.validation_targets(targets), dtype=bool)]
    rel = relevance(targets, data, options.new_pairs_only)
    rel = (sp.diags(data.has_history.astype(np.float32)) @ rel).tocsr()
    rel.eliminate_zeros()
    if options.tune_metric.startswith("member_"):
        # One row per member, holding her group's list: the tuning asks how many members a list reaches.
        member_rel, member_group = member_relevance(targets, data, np.flatnonzero(np.diff(rel.indptr) > 0),
                                                    options.new_pairs_only)
        rows = eval_groups(member_rel, options.max_tune_groups, options.seed)
        groups = np.flatnonzero(np.diff(rel.indptr) > 0)[member_group[rows]]
        exclude = data.bought[groups] if options.new_pairs_only else None
        return Validation(data, member_rel[rows], groups, exclude, rel)
    groups = eval_groups(rel, options.max_tune_groups, options.seed)
    if groups.size == 0:
        raise ValueError("validation holds no group with a training history and something to find: "
                         "the training data is too thin to tune on (try --no-tune)")
    exclude = data.bought[groups] if options.new_pairs_only else None
    return Validation(data, rel[groups], groups, exclude, rel)


def recommend_rows(model: Recommender, val: Validation, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The model's top-k lists for the validation rows, each distinct group scored once (member rows repeat groups)."""
    unique, row_of = np.unique(val.groups, return_inverse=True)
    if unique.size == val.groups.size:
        return model.recommend(val.groups, k, exclude=val.exclude)
    # A row's exclusions are its group's purchases, so rows of one group share them.
    exclude = val.data.bought[unique] if val.exclude is not None else None
    ids, scores = model.recommend(unique, k, exclude=exclude)
    return ids[row_of], scores[row_of]


def validation_score(model: Recommender, val: Validation, metric: str) -> float:
    """Mean validation metric of a fitted model."""
    name, k = metric.removeprefix("member_").split("@")
    ids, _ = recommend_rows(model, val, int(k))
    fn = {"ndcg": M.ndcg_at_k, "hr": M.hit_rate_at_k, "recall": M.recall_at_k, "map": M.average_precision_at_k}[name]
    return float(fn(ids, val.rel, int(k)).mean())


def tune_source(name: str, val: Validation, cfg: Config, metric: str,
                grid: Mapping[str, list[Any]] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Grid search of one source's hyper-parameters on the validation window: (best params, every trial)."""
    grid = grid_of(name) if grid is None else grid
    keys = list(grid)
    trials = []
    for values in itertools.product(*(grid[k] for k in keys)) if keys else [()]:
        params = dict(zip(keys, values))
        model = make_source(name, params, cfg).fit(val.data)
        trials.append({"params": params, metric: validation_score(model, val, metric)})
    best = max(trials, key=lambda t: t[metric])
    return best["params"], trials


def _ranked_score(rows: np.ndarray, scores: np.ndarray, labels: np.ndarray, n_rel: np.ndarray, metric: str) -> float:
    """A top-k metric computed from (group row, score, label) candidate pairs."""
    name, k_text = metric.removeprefix("member_").split("@")
    k = int(k_text)
    order = np.lexsort((-scores, rows))
    r, lab = rows[order], labels[order]
    starts = np.r_[0, np.flatnonzero(np.diff(r)) + 1]
    rank = np.arange(len(r)) - np.repeat(starts, np.diff(np.r_[starts, len(r)]))
    top = rank < k
    per_row_hits = np.bincount(r[top], weights=lab[top], minlength=len(n_rel))
    if name == "hr":
        return float((per_row_hits > 0).mean())
    if name == "recall":
        return float((per_row_hits / n_rel).mean())
    if name == "ndcg":
        disc = 1.0 / np.log2(rank[top] + 2.0)
        dcg = np.bincount(r[top], weights=lab[top] * disc, minlength=len(n_rel))
        idcg = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))[np.minimum(n_rel, k) - 1]
        return float((dcg / idcg).mean())
    raise ValueError(f"blend tuning supports ndcg, hr and recall, not {name!r}")


def tune_blend(sources: Mapping[str, Recommender], val: Validation, per_source: int, metric: str,
               rounds: int = 3) -> tuple[dict[str, float], str, list[dict[str, Any]]]:
    """Coordinate ascent on the blend weights (and the normalisation) over the sources' validation lists.

    Every source is fitted on the validation data already; its top-`per_source` lists are computed once and the
    weighted sums are evaluated on the union of candidates, exactly as `BlendRecommender` scores.
    """
    names = list(sources)
    lists = {name: recommend_rows(sources[name], val, per_source) for name in names}
    n_rel = np.diff(val.rel.indptr)
    trials: list[dict[str, Any]] = []
    best_overall: tuple[float, dict[str, float], str] = (-1.0, {}, "rank")
    for how in ("rank", "minmax"):
        parts = []
        for j, name in enumerate(names):
            ids, scores = lists[name]
            norm = normalise_scores(ids, scores, how)
            rr, cc = np.nonzero(ids >= 0)
            parts.append(pd.DataFrame({"r": rr, "i": ids[rr, cc], "s": j, "v": norm[rr, cc]}))
        long = pd.concat(parts, ignore_index=True)
        wide = long.pivot_table(index=["r", "i"], columns="s", values="v", aggfunc="sum", fill_value=0.0)
        wide = wide.reindex(columns=range(len(names)), fill_value=0.0)
        rows = wide.index.get_level_values("r").to_numpy()
        items = wide.index.get_level_values("i").to_numpy()
        features = wide.to_numpy(dtype=np.float64)
        labels = np.asarray(val.rel[rows, items]).ravel().astype(np.float64)

        def evaluate(w: dict[str, float]) -> float:
            vec = np.array([w[n] for n in names])
            s = features @ vec
            keep = s > 0
            return _ranked_score(rows[keep], s[keep], labels[keep], n_rel, metric)

        weights = {n: 1.0 for n in names}
        best = evaluate(weights)
        trials.append({"normalise": how, "weights": dict(weights), metric: best})
        for _ in range(rounds):
            improved = False
            for n in names:
                for step in BLEND_WEIGHT_STEPS:
                    if step == weights[n]:
                        continue
                    cand = {**weights, n: step}
                    if not any(cand.values()):
                        continue
                    value = evaluate(cand)
                    trials.append({"normalise": how, "weights": dict(cand), metric: value})
                    if value > best + 1e-9:
                        best, weights, improved = value, cand, True
            if not improved:
                break
        if best > best_overall[0]:
            best_overall = (best, weights, how)
    return best_overall[1], best_overall[2], trials


# ---------------------------------------------------------------------------------------------- evaluation


def evaluate_models(
    train: Any,
    test: Any,
    models: Mapping[str, Recommender],
    cfg: Config | None = None,
    options: EvalOptions | None = None,
    model_name: str = "blend",
    dataset: str = "",
    item_vectors: Any = None,
    cutoff: pd.Timestamp | None = None,
    optional: frozenset[str] = frozenset(),
) -> EvalResult:
    """Fit every model on `train` and score its top-K lists against the orders of `test`, with breakdowns.

    A model named in `optional` whose fit raises ValueError (data it cannot learn from) is left out and its reason
    recorded under split["not_evaluated"]; any other model's error stops the run.
    """
    cfg = cfg or Config()
    options = options or EvalOptions()
    train, test = Frames.of(train), Frames.of(test)
    if cutoff is None:
        cutoff = window_cutoff(train, test)
    data = build_train_data(train.products, train.sellers, train.groups, train.pushes, train.orders, cfg.features,
                            now=cutoff, item_vectors=item_vectors, clock=train.clock)
    dropped = test_accounting(test.orders, data, options.new_pairs_only)
    rel_full = relevance(test.orders, data, options.new_pairs_only)
    groups = eval_groups(rel_full, options.max_eval_groups, options.seed)
    if groups.size == 0:
        raise ValueError(f"no test group has an order to find: check the split and the new-pairs option ({dropped})")
    rel = rel_full[groups]
    dropped["evaluated_groups"] = int(groups.size)
    dropped["evaluated_pairs"] = int(rel.nnz)
    members = member_relevance(test.orders, data, groups, options.new_pairs_only) if options.member_metrics else None
    exclude = data.bought[groups] if options.new_pairs_only else None
    k_max = max(options.ks)
    bands = group_bands(data, groups)
    result_metrics: dict[str, dict[str, float]] = {}
    per_band: dict[str, dict[str, dict[str, dict[str, float]]]] = {kind: {b: {} for b in masks} for kind, masks in bands.items()}
    fit_seconds: dict[str, float] = {}
    params: dict[str, Any] = {}
    lists: list[pd.DataFrame] = []
    not_evaluated: dict[str, str] = {}
    for name, model in models.items():
        start = time.perf_counter()
        try:
            model.fit(data)
        except ValueError as err:
            if name not in optional:
                raise
            not_evaluated[name] = f"{type(err).__name__}: {err}"
            continue
        fit_seconds[name] = round(time.perf_counter() - start, 3)
        ids, scores = model.recommend(groups, k_max, exclude=exclude)
        if options.keep_lists:
            lists.append(top_lists(name, ids, scores, groups, data))
        per_group = list_metrics(ids, rel, data, options.ks)
        result_metrics[name] = summary_metrics(ids, per_group, data, options.ks, rel)
        if members is not None:
            member_rel, member_group = members
            for k in options.ks:
                result_metrics[name][f"member_hr@{k}"] = float(M.hit_rate_at_k(ids[member_group], member_rel, k).mean())
                result_metrics[name][f"member_recall@{k}"] = float(M.recall_at_k(ids[member_group], member_rel, k).mean())
        params[name] = {"class": type(model).__name__, **_jsonable(model.params())}
        for kind, masks in bands.items():
            for band, mask in masks.items():
                if mask.any():
                    per_band[kind][band][name] = {
                        "groups": int(mask.sum()),
                        **{m: float(np.nanmean(per_group[m][mask])) for m in ("ndcg@10", "hr@10", "recall@10") if m in per_group},
                    }
    spearman: dict[str, float] = {}
    truth = category_truth(test.truth, data)
    if truth is not None:
        for name, model in models.items():
            if name in not_evaluated:
                continue
            spearman[name] = category_spearman(model, data, truth)
    return EvalResult(
        dataset=dataset,
        split={"cutoff": str(cutoff), "clock": train.clock, "test_orders": int(len(test.orders)), "train_orders": int(len(train.orders)),
               "eval_groups": int(groups.size), "items": data.n_items, "groups": data.n_groups,
               "new_pairs_only": options.new_pairs_only, "relevant_pairs": int(rel.nnz),
               **({"eval_members": int(members[0].shape[0])} if members is not None else {}),
               **({"not_evaluated": not_evaluated} if not_evaluated else {})},
        metrics=result_metrics, breakdowns=per_band, params=params, fit_seconds=fit_seconds,
        spearman=spearman, config=cfg.model_dump(mode="json", by_alias=True), model_name=model_name,
        dropped=dropped, lists=pd.concat(lists, ignore_index=True) if lists else None,
    )


def window_cutoff(train: Frames, test: Frames) -> pd.Timestamp | None:
    """The cut-off of a time-window test (its first order, when every test order follows every training order on a
    real clock); None otherwise, so that every training order counts."""
    if train.clock != "real" or not len(test.orders):
        return None
    first = to_local_naive(test.orders[ORDERED_AT]).min()
    if len(train.orders) and to_local_naive(train.orders[ORDERED_AT]).max() > first:
        return None
    return first


def top_lists(name: str, ids: np.ndarray, scores: np.ndarray, groups: np.ndarray, data: TrainData) -> pd.DataFrame:
    """One model's lists as rows: model, group_id, rank (1 = best), product_id, score; empty slots left out."""
    rows, cols = np.nonzero(ids >= 0)
    return pd.DataFrame({
        "model": pd.Categorical([name] * rows.size),
        GROUP_ID: np.asarray(data.groups.id_of(groups[rows]), dtype=object).astype(str),
        "rank": (cols + 1).astype(np.int16),
        PRODUCT_ID: np.asarray(data.items.id_of(ids[rows, cols]), dtype=object).astype(str),
        "score": scores[rows, cols].astype(np.float64),
    })


def _jsonable(value: Any) -> Any:
    """Parameters as JSON-friendly values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


# ---------------------------------------------------------------------------------------------- ground truth


def category_truth(truth: Any, data: TrainData) -> pd.DataFrame | None:
    """The generator's per-group category preferences as a groups × main-categories frame, if available.

    Accepts a wide frame indexed (or keyed by a group_id column) with one column per main category, or a
    long frame with group_id, category and a numeric weight column.
    """
    if truth is None:
        return None
    frame = getattr(truth, "group_category", truth)
    if not isinstance(frame, pd.DataFrame):
        return None
    if {GROUP_ID, "category"} <= set(frame.columns):
        value = [c for c in frame.columns if c not in (GROUP_ID, "category") and pd.api.types.is_numeric_dtype(frame[c])]
        if not value:
            return None
        frame = frame.pivot_table(index=GROUP_ID, columns="category", values=value[0], aggfunc="mean")
    elif GROUP_ID in frame.columns:
        frame = frame.set_index(GROUP_ID)
    frame = frame.select_dtypes("number")
    cats = sorted(set(frame.columns) & set(data.item_frame["main_category"].unique()))
    if len(cats) < 3:
        return None
    frame = frame[cats]
    frame.index = frame.index.astype(str)
    return frame


def category_spearman(model: Recommender, data: TrainData, truth: pd.DataFrame, k: int = 50, max_groups: int = 2000) -> float:
    """Mean per-group Spearman between a model's category preference (rank-discounted top-k mass) and the truth."""
    idx = data.groups.index_of(truth.index.to_numpy(), missing="mark")
    keep = idx >= 0
    idx, t = idx[keep][:max_groups], truth.to_numpy(dtype=np.float64)[keep][:max_groups]
    cats = list(truth.columns)
    cat_of_item = pd.Categorical(data.item_frame["main_category"], categories=cats).codes
    ids, _ = model.recommend(idx, k)
    weight = np.where(ids >= 0, 1.0 / np.log2(np.arange(2, k + 2)), 0.0)
    item_cat = np.where(ids >= 0, cat_of_item[np.maximum(ids, 0)], -1)
    pred = np.zeros((len(idx), len(cats)))
    rows = np.repeat(np.arange(len(idx)), k).reshape(len(idx), k)
    ok = item_cat >= 0
    np.add.at(pred, (rows[ok], item_cat[ok]), weight[ok])
    return M.mean_spearman(pred, t)


# ---------------------------------------------------------------------------------------------- the full run


# Hyper-parameters that are half-lives in days: fixed at "no decay" without a real clock.
HALF_LIFE_KEYS = ("half_life_days", "item_half_life_days")
# Sources whose validation score picks the feature half-life (they read the decayed matrices).
HALF_LIFE_PROBES = ("item_knn_cosine", "ease", "als")
SERVED = "served"
# The served pipeline ranked by p_conv alone (no ops weights): its ranking skill apart from the ops' trade-offs.
SERVED_CONVERSION = "served_conversion"


def for_clock(options: EvalOptions, clock: str, line_order: Iterable[str] = ()) -> EvalOptions:
    """Options without what needs a real clock: timed sources and half-life grids (a synthetic clock has no days);
    the sources of `line_order` (reading only the order of events) stay on a line-order clock."""
    if clock == "real":
        return options
    ordered = set(line_order) if clock == "line_order" else set()
    timed = [n for n in TIMED_SOURCES if n not in ordered]
    grids = {name: {k: v for k, v in grid_of(name).items() if k not in HALF_LIFE_KEYS} for name in GRIDS}
    grids.update({name: {k: v for k, v in grid.items() if k not in HALF_LIFE_KEYS} for name, grid in options.grids.items()})
    return replace(options, grids=grids, half_lives=(),
                   blend_sources=tuple(n for n in options.blend_sources if n not in timed),
                   baselines=tuple(n for n in options.baselines if n not in timed))


def with_half_life(cfg: Config, half_life: float | None) -> Config:
    """The configuration with another feature half-life (None: no decay)."""
    return cfg.model_copy(update={"features": cfg.features.model_copy(update={"half_life_days": half_life})})


def tune_half_life(train: Frames, cfg: Config, options: EvalOptions, item_vectors: Any, split: Any,
                   log: Callable[[str], None]) -> tuple[float | None, list[dict[str, Any]]]:
    """The feature half-life (from options.half_lives, None = no decay) whose decayed matrices score best on
    validation, judged by the mean validation score of the probe sources at their configured parameters."""
    probes = [n for n in HALF_LIFE_PROBES if n in set(options.baselines) | set(options.blend_sources)] or ["item_knn_cosine"]
    trials = []
    for half_life in options.half_lives:
        val = build_validation(train, with_half_life(cfg, half_life), options, item_vectors, split)
        scores = {n: validation_score(make_source(n, None, cfg).fit(val.data), val, options.tune_metric) for n in probes}
        trials.append({"half_life_days": half_life, options.tune_metric: float(np.mean(list(scores.values()))), **scores})
    best = max(trials, key=lambda t: t[options.tune_metric])
    tried = ", ".join(f"{t['half_life_days']}: {t[options.tune_metric]:.4f}" for t in trials)
    log(f"tuned half_life_days: {best['half_life_days']} ({tried})")
    return best["half_life_days"], trials


def tuned_config(cfg: Config, chosen: Mapping[str, Mapping[str, Any]]) -> Config:
    """The configuration `quanxuan train` would need to build its sources with the tuned parameters (those that
    CandidateConfig holds; the other sources keep their defaults in the daily job)."""
    updates = {field_name: chosen[name][key] for (name, key), field_name in CONFIG_OF_PARAM.items()
               if key in chosen.get(name, {})}
    return cfg.model_copy(update={"candidates": cfg.candidates.model_copy(update=updates)}) if updates else cfg


def served_model(train: Frames, cfg: Config, fitted: Mapping[str, Recommender], log: Callable[[str], None],
                 shape: TestShape | None = None, new_pairs_only: bool = False) -> Recommender:
    """The model `quanxuan train` serves, as the daily job builds it (`training.blocks`): the conversion ranker over the candidate union,
    blended with the ops default weights (the diversity penalty is a list rule of serving, not a score). When the
    ranker learns from a holdout of the orders it is carved like validation (`shape`), asking the test's question."""
    weights = cfg.weights.default.model_copy(update={"diversity": 0.0})
    return PipelineRecommender(train, cfg, weights, log=log, fitted=fitted, shape=shape, new_pairs_only=new_pairs_only)


def conversion_model(served: Recommender, log: Callable[[str], None]) -> Recommender:
    """The served pipeline (sharing its fitted state) ranked by p_conv alone: every ops weight but conversion at 0."""
    weights = BlendWeights(conversion=1.0, earnings=0.0, rating=0.0, order_value=0.0, diversity=0.0, adoption=0.0)
    return PipelineRecommender(served.frames, served.cfg, weights, share=served, log=log)


def run_evaluation(
    train: Any,
    test: Any,
    cfg: Config | None = None,
    options: EvalOptions | None = None,
    dataset: str = "",
    item_vectors: Any = None,
    cutoff: pd.Timestamp | None = None,
    log: Callable[[str], None] = print,
) -> EvalResult:
    """Tune every baseline and the blend on validation carved from training like the test, then evaluate all on test.

    The test's shape (window, one held-out line per group, random holdout) is detected unless options.shape says it;
    on a clock that is not real there is no decay, trend, repurchase timing or time window. With options.served the
    model `quanxuan train` serves is built with the tuned configuration and scored beside the others.
    """
    cfg = cfg or Config()
    options = options or EvalOptions()
    train, test = Frames.of(train), Frames.of(test)
    options = for_clock(options, train.clock, cfg.candidates.line_order_sources)
    if options.shape is None:
        options = replace(options, shape=detect_test_shape(train, test, train.clock))
    log(f"clock: {train.clock}; test shape: {options.shape.kind} {options.shape.to_dict()}")
    if train.pushes is None or not len(train.pushes):
        # The exposure source models the seller's pushes: without a pushes table it has nothing to learn from.
        options = replace(options, blend_sources=tuple(s for s in options.blend_sources if s != "exposure"))
    needed = sorted(set(options.baselines) | set(options.blend_sources))
    chosen: dict[str, dict[str, Any]] = {name: {} for name in needed}
    tuning: dict[str, list[dict[str, Any]]] = {}
    blend_weights: dict[str, float] = {name: 1.0 for name in options.blend_sources}
    normalise = "rank"
    if train.clock != "real":
        cfg = with_half_life(cfg, None)
    val = None
    if options.tune:
        try:
            split_validation_or_raise(train, cfg, options, item_vectors)
        except ValueError as err:
            # No group keeps a history once validation is carved (Beibei: one success line per initiator): every
            # model runs at its configured defaults rather than no evaluation at all.
            log(f"not tuned: {err}")
            options = replace(options, tune=False)
    if options.tune:
        start = time.perf_counter()
        split = split_validation(train, options)
        if options.half_lives:
            half_life, tuning["half_life_days"] = tune_half_life(train, cfg, options, item_vectors, split, log)
            cfg = with_half_life(cfg, half_life)
        val = build_validation(train, cfg, options, item_vectors, split)
        log(f"validation ({validation_shape(train, options).kind}): {val.groups.size} groups, {val.rel.nnz} pairs "
            f"({time.perf_counter() - start:.1f}s)")
        for name in needed:
            grid = options.grids.get(name, grid_of(name))
            if grid:
                t0 = time.perf_counter()
                chosen[name], tuning[name] = tune_source(name, val, cfg, options.tune_metric, grid)
                log(f"tuned {name}: {chosen[name]} ({time.perf_counter() - t0:.1f}s)")
        if options.model == "blend":
            fitted = {name: make_source(name, chosen[name], cfg).fit(val.data) for name in options.blend_sources}
            blend_weights, normalise, tuning["blend"] = tune_blend(fitted, val, cfg.candidates.per_source, options.tune_metric)
            log(f"tuned blend: {normalise} {blend_weights}")
    models: dict[str, Recommender] = {name: make_source(name, chosen[name], cfg) for name in options.baselines}
    # The model shares fitted baseline instances (same data object), so each source is fitted once.
    sources = {name: models[name] if name in models else make_source(name, chosen[name], cfg) for name in options.blend_sources}
    if options.model == "learned":
        if val is None:
            val = build_validation(train, cfg, options, item_vectors)
        start = time.perf_counter()
        models["learned"] = train_learned_blend(sources, val, cfg, options)
        log(f"trained learned blend: {models['learned'].train_stats_} ({time.perf_counter() - start:.1f}s)")
    elif options.model == "blend":
        models["blend"] = BlendRecommender(sources, blend_weights, per_source=cfg.candidates.per_source, normalise=normalise)
    else:
        raise ValueError(f"unknown model {options.model!r}: expected 'blend' or 'learned'")
    served_cfg = tuned_config(cfg, chosen)
    if options.served:
        # Fitted after the baselines (dict order), so it reuses every source they fitted on the same data.
        models[SERVED] = served_model(train, served_cfg, sources, log, validation_shape(train, options),
                                      options.new_pairs_only)
        models[SERVED_CONVERSION] = conversion_model(models[SERVED], log)
    if cutoff is None and options.shape.kind == "window":
        cutoff = window_cutoff(train, test)
    # The served model cannot always learn (e.g. a ranker needs a span of time): then the union is the headline.
    result = evaluate_models(train, test, models, cfg, options, model_name=SERVED if options.served else options.model,
                             dataset=dataset, item_vectors=item_vectors, cutoff=cutoff,
                             optional=frozenset({SERVED, SERVED_CONVERSION}))
    served = options.served and SERVED in result.metrics
    if options.served and not served:
        log(f"served model not evaluated: {result.split['not_evaluated'][SERVED]}")
        result.model_name = options.model
    result.served_model = SERVED if served else None
    if options.model == "learned":
        tuning["learned"] = [{"train": models["learned"].train_stats_, "importance": models["learned"].importances()}]
    result.tuning = _jsonable(tuning)
    result.split["test_shape"] = options.shape.to_dict()
    result.split["validation_shape"] = validation_shape(train, options).to_dict()
    result.config = served_cfg.model_dump(mode="json", by_alias=True)
    result.config["evaluation"] = _jsonable(asdict(options))
    return result


def train_learned_blend(sources: Mapping[str, Recommender], val: Validation, cfg: Config, options: EvalOptions) -> LearnedBlend:
    """A LearnedBlend over these sources with its ranker fitted on (a seeded sample of) the validation groups."""
    if val.rel_all is not None:
        groups = eval_groups(val.rel_all, options.max_ranker_groups, options.seed + 1)
        rel = val.rel_all[groups]
    else:
        groups, rel = val.groups, val.rel
    exclude = val.data.bought[groups] if options.new_pairs_only else None
    learned = LearnedBlend(sources, **{"per_source": cfg.candidates.per_source, "seed": options.seed, **options.ranker_params})
    return learned.fit_ranker(val.data, groups, rel, exclude)


def load_frames(spec: str, seed: int = 7, groups: int = 2000, products: int = 2000, days: int = 60) -> tuple[Any, str]:
    """Load a dataset by spec: 'sample', a contract folder, 'tafeng:<csv.zip>[:area_age]' or 'beibei:<folder>'.

    Returns (frames, name); Beibei gives a (train, test) pair (tune.txt, test.txt) because it has no timestamps to
    split on.
    """
    if spec == "sample":
        from features.sample_world import generate

        return generate(seed=seed, groups=groups, products=products, days=days), f"sample world {groups}×{products}×{days}d"
    if spec.startswith("tafeng:"):
        from features.adapter import load_tafeng

        parts = spec.split(":")
        level = parts[2] if len(parts) > 2 else "customer"
        return load_tafeng(parts[1], level=level), f"Ta Feng ({level})"
    if spec.startswith("beibei:"):
        from features.adapter import load_beibei

        f = load_beibei(spec.split(":", 1)[1])
        start = f["test"][ORDERED_AT].min()
        # The test's own pushes (its lines are shares that converted) stay out of training.
        pushes = f["pushes"].loc[(f["pushes"][PUSHED_AT] < start).to_numpy()].reset_index(drop=True)
        train = Frames(f["products"], f["sellers"], f["groups"], pushes, f["tune"])
        return (train, Frames(f["products"], f["sellers"], f["groups"], None, f["test"])), "Beibei"
    from features.loading import load_dataset

    return load_dataset(spec), spec
