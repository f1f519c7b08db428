"""The daily job: load → validate → features → candidates → conversion ranker → per-group components →
evaluation against the baselines → artifact, written atomically.

Ranker rows come from one function, `Snapshot.rows`: each candidate source's score of the pair (from
the fitted source, whether or not the pair made its top list) and rank (NaN when it did not), then
`features.profiles.pair_features` (group, product and group × product features as of the snapshot).
Training rows and today's rows are built by that same code, only the moment differs.

The ranker learns from the past: sources are fitted on a snapshot `example_days` before today, the
pushes of the following days (labelled by an order within `label_window_days`) are the examples, and
each reads the profiles of the latest refresh (every `feature_refresh_days`) at or before its push, so
no feature sees its own label. Today's candidates are then scored with sources and profiles as of
today. Each candidate keeps its components (p_conv, price, commission, rating, order value, category,
brand, flags, reasons) so that the service can re-blend them with whatever weights ops set, without
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
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np
import pandas as pd

from features.interactions import IdMap, TrainData, build_train_data, default_now, text_values, to_local_naive
from features.profiles import Profiles, build_profiles
from contracts.schema import GROUP_ID, ORDERED_AT, PRODUCT_ID, PUSHED_AT, SELLERS
from recsys.adoption import SellerAdoption
from recsys.blend import blend_log_scores, weights_hash
from recsys.candidates.base import Recommender, groups_in_blocks
from recsys.candidates.union import union_candidates
from contracts.config import BlendWeights, ClusterConfig, Config, config_hash
from recsys.ranker import (
    EXPOSED,
    LABEL,
    META_FILE,
    MODEL_DIR,
    MODEL_FILE,
    PRICE_SCALE,
    TIME,
    ConversionRanker,
    feature_columns,
    fit_and_evaluate,
    order_labels_with_sampled_negatives,
    ordered_within,
    push_labels,
)

Log = Callable[[str], None]

# Sources whose scores and ranks feed the ranker (and whose union is the candidate set).
SOURCES: tuple[str, ...] = ("popular", "trending", "segment_popular", "own_top", "repurchase",
                            "item_knn_cosine", "ease", "als", "content", "tifu_knn")
# Sources that read ages in days or basket days: left out on a clock that is no clock (line order or none).
TIMED_SOURCES: tuple[str, ...] = ("trending", "repurchase", "tifu_knn")
BASELINES: tuple[str, ...] = ("random", "popular", "rating_commission", "segment_popular", "own_top",
                              "item_knn_cosine", "ease", "als")
# Source -> the reason code it gives a pick.
SOURCE_REASONS: dict[str, str] = {
    "repurchase": "repurchase_due", "own_top": "similar_to_past", "item_knn_cosine": "similar_to_past",
    "ease": "similar_to_past", "als": "similar_to_past", "content": "similar_to_past",
    "trending": "trending", "segment_popular": "segment_popular", "popular": "segment_popular",
    "tifu_knn": "similar_to_past",
}
CATEGORY_REASON_SHARE = 0.2  # a group "buys this category" when it holds this share of its purchases
NEW_PRODUCT_DAYS = 14
DUE_RANGE = (0.75, 2.0)  # due ratio (days since last / usual cycle) that counts as a repurchase due
# Ranker features read from days (ages, recency, cycles, windows of days): meaningless on a synthetic clock.
NON_TIMED_DROP: frozenset[str] = frozenset({
    "days_since_cat", "cat_cycle_days", "due_ratio", "repurchase_due", "days_since_push", "group_orders_30d",
    "group_days_since_order", "price_change_7d", "product_orders_7d", "product_orders_30d", "age_days",
    "score__trending", "rank__trending", "score__repurchase", "rank__repurchase",
})
# Ranker features read from pushes: meaningless without any.
PUSH_FEATURES: frozenset[str] = frozenset({"days_since_push", "times_pushed", "group_conv_rate", "product_conv_rate",
                                           EXPOSED})
# Held-out pushes are labelled with the default window whatever the ranker's own window is.
YARDSTICK_WINDOW_DAYS = 3


def default_log(message: str) -> None:
    """Plain, timestamped progress lines (stderr)."""
    print(f"[quanxuan {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def progress(items: Iterable[Any], total: int, desc: str) -> Iterable[Any]:
    """tqdm on a terminal; the bare iterable otherwise (the step's log line says what happens)."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(items, total=total, desc=desc, leave=False)
    return items


# ---------------------------------------------------------------------------------------------- features


def _keys(g: np.ndarray, i: np.ndarray, n_items: int) -> np.ndarray:
    return np.asarray(g, dtype=np.int64) * n_items + np.asarray(i, dtype=np.int64)


def _pushes(frames: Any) -> pd.DataFrame:
    """The pushes table, or an empty one with the contract's columns when the data has none."""
    pushes = getattr(frames, "pushes", None)
    if pushes is not None:
        return pushes
    return pd.DataFrame({GROUP_ID: pd.Series(dtype=str), PRODUCT_ID: pd.Series(dtype=str),
                         PUSHED_AT: pd.Series(dtype="datetime64[ns]"), "price_at_push": pd.Series(dtype=float)})


def _sellers(frames: Any) -> pd.DataFrame:
    sellers = getattr(frames, "sellers", None)
    if sellers is not None:
        return sellers
    return pd.DataFrame({c.name: pd.Series(dtype=object) for c in SELLERS.columns})


def profiles_at(frames: Any, as_of: pd.Timestamp, cfg: Config, history_groups: object | None = None) -> Profiles:
    """Group, product, cycle, brand and segment profiles from events strictly before `as_of` (features.profiles);
    the push history of `history_groups` only, when given."""
    return build_profiles(frames.products, _sellers(frames), frames.groups, _pushes(frames), frames.orders, as_of,
                          cfg.features, price_window_days=cfg.rules.price_window_days, history_groups=history_groups)


def source_scores(sources: Mapping[str, Recommender], data: TrainData, pairs: pd.DataFrame) -> pd.DataFrame:
    """`score__<source>` of every pair: the source's own score, whether or not the pair made its top list (NaN
    where the source has nothing to say, or for unknown ids).

    Read pair by pair from the fitted sources (`Recommender.pair_scores`), so that a pushed pair the sources did
    not propose (most pushes) gets the same kind of value as today's candidates, without a dense row per group.
    """
    g = data.groups.index_of(pairs[GROUP_ID], missing="mark")
    i = data.items.index_of(pairs[PRODUCT_ID], missing="mark")
    ok = np.flatnonzero((g >= 0) & (i >= 0))
    out = np.full((len(pairs), len(sources)), np.nan)
    for j, source in enumerate(sources.values()):
        values = np.asarray(source.pair_scores(g[ok], i[ok]), dtype=np.float64)
        out[ok, j] = np.where(np.isfinite(values), values, np.nan)
    return pd.DataFrame(out, columns=[f"score__{name}" for name in sources])


def source_ranks(union: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """`rank__<source>` of every pair in the union (1 = the source's best; NaN where it did not propose it) and
    n_sources, the number of sources proposing it."""
    cols = [c for c in union.columns if c.startswith("rank__")]
    groups = pd.Index(pd.unique(union[GROUP_ID].astype(str).to_numpy(dtype=object)))
    products = pd.Index(pd.unique(union[PRODUCT_ID].astype(str).to_numpy(dtype=object)))
    n = max(len(products), 1)
    table = pd.Index(_keys(groups.get_indexer(union[GROUP_ID].astype(str).to_numpy(dtype=object)),
                           products.get_indexer(union[PRODUCT_ID].astype(str).to_numpy(dtype=object)), n))
    g = groups.get_indexer(pairs[GROUP_ID].astype(str).to_numpy(dtype=object))
    i = products.get_indexer(pairs[PRODUCT_ID].astype(str).to_numpy(dtype=object))
    row = np.where((g >= 0) & (i >= 0), table.get_indexer(_keys(g, i, n)), -1)
    values = union[cols].to_numpy(dtype=np.float64)
    # An empty union (an early snapshot with nothing bought yet) proposes nothing: every rank is NaN.
    out = np.where(row[:, None] >= 0, values[np.maximum(row, 0)], np.nan) if len(values) \
        else np.full((len(pairs), len(cols)), np.nan)
    frame = pd.DataFrame(out, columns=cols)
    frame["n_sources"] = frame.notna().sum(axis=1).astype(float)
    return frame


@dataclass
class Snapshot:
    """Everything ranker rows are read from at one moment: the fitted sources, their union, and the profiles.

    Without a stored `union` (None), the ranks of a set of pairs are read from the union of their groups, built
    block by block of `block_groups` groups, so that no union of every group is ever held.
    """

    data: TrainData
    sources: dict[str, Recommender]
    union: pd.DataFrame | None
    profiles: Profiles
    per_source: int = 100
    union_size: int = 200
    block_groups: int = 2000
    reserved: int = 0  # each source's top this many lead the union (CandidateConfig.union_reserved)

    def rows(self, pairs: pd.DataFrame, profiles: Profiles | None = None, ranks: pd.DataFrame | None = None) -> pd.DataFrame:
        """Ranker inputs for (group_id, product_id) pairs: the sources' scores and ranks (`ranks` when already read,
        row for row), then `PAIR_FEATURES` (from `profiles` when given: a later refresh than the sources').

        The very same method builds training rows (a past snapshot) and today's rows, so a feature means the
        same thing in both.
        """
        keys = pairs[[GROUP_ID, PRODUCT_ID]].reset_index(drop=True)
        feats = (profiles or self.profiles).pair_features(keys).drop(columns=[GROUP_ID, PRODUCT_ID]).reset_index(drop=True)
        ranks = self.ranks(keys) if ranks is None else ranks.reset_index(drop=True)
        return pd.concat([source_scores(self.sources, self.data, keys), ranks, feats], axis=1)

    def ranks(self, keys: pd.DataFrame) -> pd.DataFrame:
        """`source_ranks` of the pairs, from the stored union or from their groups' union block by block."""
        if self.union is not None:
            return source_ranks(self.union, keys)
        g = self.data.groups.index_of(keys[GROUP_ID].astype(str).to_numpy(dtype=object), missing="mark")
        cols = [f"rank__{name}" for name in self.sources] + ["n_sources"]
        out = np.full((len(keys), len(cols)), np.nan)
        out[:, -1] = 0.0  # a pair of an unknown group is proposed by no source
        known = np.flatnonzero(g >= 0)
        for block, pos in groups_in_blocks(g[known], self.block_groups):
            sel = known[pos]
            union = union_candidates(self.sources, self.data, block, self.per_source, self.union_size,
                                     reserved=self.reserved)
            out[sel] = source_ranks(union, keys.iloc[sel]).reindex(columns=cols).to_numpy(dtype=np.float64)
        return pd.DataFrame(out, columns=cols)


def take_snapshot(frames: Any, data: TrainData, cfg: Config, fitted: Mapping[str, Recommender] | None = None,
                  with_union: bool = True, log: Log | None = None, history_groups: object | None = None) -> Snapshot:
    """Sources fitted on `data`, their union for every group (unless `with_union` is False: then ranks are read
    block by block), and the profiles as of `data.now` (push history of `history_groups` only, when given); `log`
    gets a line of what each part took."""
    t0 = time.perf_counter()
    each: dict[str, float] = {}
    sources = fit_sources(data, cfg, fitted=fitted, seconds=each)
    c = cfg.candidates
    union = union_candidates(sources, data, np.arange(data.n_groups), c.per_source, c.union_size,
                             reserved=c.union_reserved) if with_union else None
    t1 = time.perf_counter()
    profiles = profiles_at(frames, data.now, cfg, history_groups)
    if log is not None:
        log(f"ranker examples: snapshot of {data.now:%Y-%m-%d}: {len(sources)} sources fitted ({t1 - t0:.0f}s: {slowest(each)}), "
            f"profiles ({time.perf_counter() - t1:.0f}s)")
    return Snapshot(data, sources, union, profiles, c.per_source, c.union_size, cfg.cluster.block_groups, c.union_reserved)


# ---------------------------------------------------------------------------------------------- examples


def sources_for(data: TrainData, names: Iterable[str] = SOURCES, line_order: Iterable[str] = ()) -> tuple[str, ...]:
    """The sources that mean something on this data: the timed ones only on a real clock, but those of
    `line_order` (reading only the order of events) on a line-order clock too."""
    ordered = set(line_order) if data.clock == "line_order" else set()
    return tuple(n for n in names if data.timed or n not in TIMED_SOURCES or n in ordered)


def unfitted_copy(source: Recommender) -> Recommender:
    """A fresh source of the same class and hyper-parameters (those its constructor takes), not fitted."""
    import inspect

    accepted = inspect.signature(type(source).__init__).parameters
    copy = type(source)(**{k: v for k, v in source.params().items() if k in accepted})
    copy.name = source.name
    return copy


def fit_sources(data: TrainData, cfg: Config, names: Iterable[str] | None = None,
                fitted: Mapping[str, Recommender] | None = None, seconds: dict[str, float] | None = None,
                like: Mapping[str, Recommender] | None = None) -> dict[str, Recommender]:
    """Every candidate source that means something on the data (`sources_for`), fitted on it (configured
    hyper-parameters, or those of the same source in `like`); sources in `fitted` that were fitted on this very data
    are reused. Each fit's seconds go into `seconds` when given."""
    from training.evaluate import make_source

    out: dict[str, Recommender] = {}
    for name in sources_for(data, SOURCES if names is None else names, cfg.candidates.line_order_sources):
        t0 = time.perf_counter()
        known = (fitted or {}).get(name)
        if known is not None and known.is_fitted_on(data):
            out[name] = known
        elif like is not None and name in like:
            out[name] = unfitted_copy(like[name]).fit(data)
        else:
            out[name] = make_source(name, None, cfg).fit(data)
        if seconds is not None:
            seconds[name] = time.perf_counter() - t0
    return out


def slowest(seconds: Mapping[str, float], n: int = 4) -> str:
    """The `n` largest entries of a timing table, for a log line: 'als 120s, ease 40s, …'."""
    return ", ".join(f"{k} {v:.0f}s" for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])[:n])


def _orders_between(orders: pd.DataFrame, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.DataFrame:
    t = to_local_naive(orders[ORDERED_AT])
    keep = ((t >= lo) & (t < hi)).to_numpy().copy()
    if "refunded" in orders:
        keep &= ~orders["refunded"].fillna(False).astype(bool).to_numpy()
    return orders.loc[keep]


def _pair_set(frame: pd.DataFrame) -> pd.Index:
    return pd.Index(frame[GROUP_ID].astype(str).to_numpy(dtype=object) + "\x1f" + frame[PRODUCT_ID].astype(str).to_numpy(dtype=object))


def _in_pairs(frame: pd.DataFrame, pairs: pd.Index) -> np.ndarray:
    return _pair_set(frame).isin(pairs)


def _with_features(examples: pd.DataFrame, snap: Snapshot, frames: Any, cfg: Config, points: list[pd.Timestamp],
                   history_groups: object | None = None) -> pd.DataFrame:
    """Examples with ranker rows; each reads the profiles of the latest refresh point at or before its time (the push
    history of `history_groups` only, when given: the examples' groups)."""
    at = pd.to_datetime(examples[TIME]).to_numpy()
    which = np.searchsorted(np.asarray(points, dtype="datetime64[ns]"), at, side="right") - 1
    # Ranks come from the snapshot's union, the same whatever the refresh point: read once for every example.
    ranks = snap.ranks(examples[[GROUP_ID, PRODUCT_ID]].reset_index(drop=True))
    parts = []
    for k, point in enumerate(points):
        sel = np.flatnonzero(which == k)
        if len(sel):
            rows = examples.iloc[sel].reset_index(drop=True)
            profiles = snap.profiles if point == snap.data.now else profiles_at(frames, point, cfg, history_groups)
            parts.append(pd.concat([rows, snap.rows(rows, profiles, ranks.iloc[sel])], axis=1))
    if not parts:
        raise ValueError("no ranker examples: no push or order of a known group and product falls in the span")
    return pd.concat(parts, ignore_index=True).sort_values(TIME, kind="stable").reset_index(drop=True)


def learns_from_holdout(frames: Any, cfg: Config) -> bool:
    """Whether the ranker's examples come from a holdout of the orders (`holdout_examples`): without pushes or
    without a real clock (a past snapshot of line numbers is no past), unless configured otherwise."""
    from training.evaluate import Frames

    if cfg.ranker.orders_only_examples != "holdout":
        return False
    f = Frames.of(frames)
    return f.clock != "real" or f.pushes is None or not len(f.pushes)


def holdout_shape(clock: str, cfg: Config) -> Any:
    """The default holdout of the ranker's examples: each group's last line (a random one without any clock), or
    the last `holdout_days` on a real clock."""
    from training.evaluation_window import TestShape

    return TestShape("window", days=cfg.ranker.holdout_days) if clock == "real" else TestShape("holdout_last")


def holdout_examples(frames: Any, cfg: Config, shape: Any = None, new_pairs_only: bool = False, log: Log = default_log,
                     like: Mapping[str, Recommender] | None = None) -> pd.DataFrame:
    """Ranker examples learnt from orders alone: the data carved like validation (`shape`, default `holdout_shape`),
    sources fitted on the rest (the snapshot; hyper-parameters of `like` when given), and each sampled group's union
    candidates labelled 1 when held out, with at most `candidate_negatives` of its other candidates as negatives.
    With `new_pairs_only` the pairs the group bought in the snapshot are left out (the question the test asks).

    The ranker then learns what the served list needs: which of the union's candidates a group buys next, from the
    sources' scores and ranks and the pair features as of the snapshot. Raises ValueError when the holdout holds
    nothing (every group has a single line)."""
    from training.evaluate import Frames
    from training.evaluation_window import carve

    rc = cfg.ranker
    f = Frames.of(frames)
    shape = shape or holdout_shape(f.clock, cfg)
    kept, held, cut = carve(f, shape, f.clock, rc.seed)
    held_orders = [held.orders]
    for depth in range(1, rc.holdout_depth if shape.kind != "window" else 1):
        # Each repetition holds out the next lines back (or the window before), from what the last one kept.
        kept, more, cut = carve(kept, shape, f.clock, rc.seed + depth)
        held_orders.append(more.orders)
    data = build_train_data(kept.products, kept.sellers, kept.groups, kept.pushes, kept.orders, cfg.features, now=cut,
                            clock=f.clock)
    o = pd.concat(held_orders, ignore_index=True)
    if "refunded" in o:
        o = o.loc[~o["refunded"].fillna(False).astype(bool).to_numpy()]
    g = data.groups.index_of(o[GROUP_ID].astype(str).to_numpy(dtype=object), missing="mark")
    i = data.items.index_of(o[PRODUCT_ID].astype(str).to_numpy(dtype=object), missing="mark")
    ok = (g >= 0) & (i >= 0)
    ok[ok] = data.has_history[g[ok]]
    if not ok.any():
        raise ValueError(f"the {shape.kind} holdout leaves no group with a history and a held-out purchase")
    groups = np.unique(g[ok])
    chosen = sampled_groups(data.groups.ids[groups], rc.max_example_groups, rc.seed)
    if chosen is not None:
        groups = np.sort(data.groups.index_of(chosen))
    t0 = time.perf_counter()
    each: dict[str, float] = {}
    sources = fit_sources(data, cfg, like=like, seconds=each)
    c = cfg.candidates
    union = union_candidates(sources, data, groups, c.per_source, c.union_size, with_indices=True,
                             reserved=c.union_reserved)
    held_keys = pd.Index(np.unique(_keys(g[ok], i[ok], data.n_items)))
    keys = _keys(union["g"].to_numpy(), union["i"].to_numpy(), data.n_items)
    label = held_keys.get_indexer(keys) >= 0
    keep = np.ones(len(union), dtype=bool)
    if new_pairs_only:
        keep &= np.asarray(data.bought[union["g"].to_numpy(), union["i"].to_numpy()]).ravel() == 0
    # Negatives: a seeded sample of at most `candidate_negatives` of each group's other candidates.
    rng = np.random.default_rng(rc.seed)
    neg = np.flatnonzero(keep & ~label)
    shuffled = neg[rng.permutation(len(neg))]
    shuffled = shuffled[np.argsort(union["g"].to_numpy()[shuffled], kind="stable")]
    gs = union["g"].to_numpy()[shuffled]
    starts = np.r_[0, np.flatnonzero(np.diff(gs)) + 1] if len(gs) else np.zeros(0, np.int64)
    position = np.arange(len(gs)) - np.repeat(starts, np.diff(np.r_[starts, len(gs)]))
    rows = np.sort(np.r_[np.flatnonzero(keep & label), shuffled[position < rc.candidate_negatives]])
    union = union.drop(columns=["g", "i"])
    rank_cols = [col for col in union.columns if col.startswith("rank__")]
    ranks = union[rank_cols].iloc[rows].reset_index(drop=True)
    ranks["n_sources"] = ranks.notna().sum(axis=1).astype(float)
    profiles = profiles_at(kept, data.now, cfg)
    snap = Snapshot(data, sources, None, profiles, c.per_source, c.union_size, cfg.cluster.block_groups, c.union_reserved)
    examples = union[[GROUP_ID, PRODUCT_ID]].iloc[rows].reset_index(drop=True)
    examples[TIME] = data.now
    examples[LABEL] = label[rows].astype(np.int8)
    out = pd.concat([examples, snap.rows(examples, ranks=ranks)], axis=1)
    found = int(out[LABEL].sum())
    log(f"ranker examples: {shape.kind} holdout, snapshot of {len(kept.orders):,} orders ({time.perf_counter() - t0:.0f}s: "
        f"{slowest(each)}); {len(groups):,} groups, {found:,} of {int(ok.sum()):,} held-out purchases among their "
        f"candidates, {len(out):,} examples")
    if out[LABEL].nunique() < 2:
        raise ValueError("the holdout's candidates hold a single class: nothing to learn a ranking from")
    return meaningful_features(out, data, rc.max_category_levels)


def meaningful_features(examples: pd.DataFrame, data: TrainData, max_levels: int | None = None) -> pd.DataFrame:
    """Examples without the feature columns that mean nothing in this data: those read from days on a synthetic
    clock, those read from pushes when there are none, any constant (or empty) column, and categorical ones of more
    than `max_levels` levels when given."""
    drop = [col for col in examples.columns if col in NON_TIMED_DROP] if not data.timed else []
    if max_levels is not None:
        drop += [col for col in feature_columns(examples) if not pd.api.types.is_numeric_dtype(examples[col])
                 and not pd.api.types.is_bool_dtype(examples[col]) and examples[col].nunique(dropna=True) > max_levels]
    if data.push_events is None or not len(data.push_events):
        drop += [col for col in examples.columns if col in PUSH_FEATURES]
    features = [col for col in feature_columns(examples) if col not in drop]
    drop += [col for col in features if examples[col].nunique(dropna=True) <= 1
             and not (examples[col].isna().any() and examples[col].notna().any())]
    return examples.drop(columns=drop)


def ranker_examples(frames: Any, now: pd.Timestamp, cfg: Config, log: Log = default_log, shape: Any = None,
                    new_pairs_only: bool = False, like: Mapping[str, Recommender] | None = None) -> pd.DataFrame:
    """Labelled examples from the days before `now` (see `RankerConfig.examples` and the ranker's docstring).

    Candidate sources are fitted once, on a snapshot at the start of the span; pair features are read from
    profiles refreshed every `feature_refresh_days`, each example using the latest refresh before it. Without pushes
    or a real clock the examples come from a holdout of the orders instead (`holdout_examples`, carved as `shape`).
    """
    rc = cfg.ranker
    if learns_from_holdout(frames, cfg):
        try:
            return holdout_examples(frames, cfg, shape, new_pairs_only, log, like)
        except ValueError as err:
            # Nothing to hold out (every group has a single purchase line): the examples of a past snapshot instead.
            log(f"ranker examples: no holdout ({err}); a snapshot {rc.example_days} days back instead")
    window = pd.Timedelta(days=rc.label_window_days)
    start = now - (window if rc.examples == "candidates" else pd.Timedelta(days=rc.example_days))
    data = build_train_data(frames.products, frames.sellers, frames.groups, frames.pushes, frames.orders, cfg.features,
                            now=start)
    keep = None
    if rc.examples != "candidates":
        pushes = _pushes(frames)
        at = to_local_naive(pushes[PUSHED_AT])
        in_span = ((at >= start) & (at < now)).to_numpy()
    if rc.examples == "pushes" and in_span.any():
        # Whole groups are sampled before labelling, from the groups the labelled examples would hold (a known group
        # and product, a label window inside the data): the same sample as after, without labelling 50M pushes; and
        # before the snapshot, whose push history then holds the sampled groups only.
        g = data.groups.index_of(pushes[GROUP_ID], missing="mark")
        i = data.items.index_of(pushes[PRODUCT_ID], missing="mark")
        labelled = in_span & (g >= 0) & (i >= 0) & (at + pd.Timedelta(days=rc.label_window_days) <= now).to_numpy()
        keep = sampled_groups(data.groups.ids[np.unique(g[labelled])], rc.max_example_groups, rc.seed)
        if keep is not None:
            chosen = np.zeros(data.n_groups + 1, dtype=bool)
            chosen[data.groups.index_of(keep)] = True
            in_span = in_span & chosen[g]  # g = -1 reads the last slot, always False
        del g, i, labelled
    # Only the 'candidates' and 'exposure' examples draw from the union of every group; pushes read their ranks
    # from their own groups' union, block by block.
    snap = take_snapshot(frames, data, cfg, with_union=rc.examples != "pushes", log=log, history_groups=keep)
    del data
    union = snap.union
    orders = frames.orders.loc[(to_local_naive(frames.orders[ORDERED_AT]) < now).to_numpy()]
    orders = orders.assign(**{ORDERED_AT: to_local_naive(orders[ORDERED_AT])})
    if rc.examples == "candidates":
        bought = _pair_set(_orders_between(orders, start, start + window))
        examples = union[[GROUP_ID, PRODUCT_ID]].assign(**{TIME: start, LABEL: _in_pairs(union, bought).astype(np.int8)})
        out = _with_features(examples, snap, frames, cfg, [start])
        log(f"ranker examples: {len(out):,} candidates of {start:%Y-%m-%d}, ordered within {rc.label_window_days} days: "
            f"{out[LABEL].mean():.4f}")
        return out
    points = list(pd.date_range(start, now, freq=pd.Timedelta(days=rc.feature_refresh_days), inclusive="left"))
    if in_span.any():
        window_pushes = pushes.loc[in_span].assign(**{PUSHED_AT: at[in_span]})
        examples = push_labels(window_pushes, orders, rc.label_window_days, data_end=now).assign(**{EXPOSED: 1})
        kind = "pushes"
        if rc.examples == "exposure":
            unshown = unshown_examples(union, window_pushes, orders, points, now - pd.Timedelta(days=rc.validation_days), cfg)
            examples = pd.concat([examples, unshown], ignore_index=True)
            kind = f"pushes + {len(unshown):,} unshown candidates"
    else:
        recent = orders.loc[(orders[ORDERED_AT] >= start).to_numpy()]
        examples = order_labels_with_sampled_negatives(recent, frames.products[PRODUCT_ID].astype(str).to_numpy(),
                                                       rc.negatives_per_positive, rc.seed)
        kind = "orders with sampled negatives"
    known_groups = set(snap.data.groups.ids)
    known_products = set(snap.data.items.ids)
    examples = examples[examples[GROUP_ID].astype(str).isin(known_groups) & examples[PRODUCT_ID].astype(str).isin(known_products)]
    examples = sample_example_groups(examples, rc.max_example_groups, rc.seed)
    out = _with_features(examples[[GROUP_ID, PRODUCT_ID, TIME, LABEL] + ([EXPOSED] if EXPOSED in examples else [])],
                         snap, frames, cfg, points, keep)
    log(f"ranker examples: {len(out):,} {kind} from {start:%Y-%m-%d} to {now:%Y-%m-%d}, positive rate {out[LABEL].mean():.3f}")
    return out


def sampled_groups(group_ids: np.ndarray, max_groups: int, seed: int) -> np.ndarray | None:
    """A seeded sample of `max_groups` of these group ids (distinct, in sorted order first), or None when there
    are no more than that."""
    groups = np.unique(np.asarray(group_ids, dtype=object))
    if len(groups) <= max_groups:
        return None
    return np.random.default_rng(seed).choice(groups, size=max_groups, replace=False)


def sample_example_groups(examples: pd.DataFrame, max_groups: int, seed: int) -> pd.DataFrame:
    """The examples of at most `max_groups` groups, a seeded sample of whole groups (all of them when fewer)."""
    keep = sampled_groups(examples[GROUP_ID].astype(str).to_numpy(dtype=object), max_groups, seed)
    if keep is None:
        return examples
    return examples.loc[examples[GROUP_ID].astype(str).isin(keep).to_numpy()]


def unshown_examples(union: pd.DataFrame, pushes: pd.DataFrame, orders: pd.DataFrame, points: list[pd.Timestamp],
                     until: pd.Timestamp, cfg: Config) -> pd.DataFrame:
    """Candidates that were not pushed in a label window, labelled by an order in that window (exposed = 0).

    At each refresh point t whose window [t, t + label_window_days) ends by `until`, a seeded sample
    (`unshown_share`) of the snapshot's candidates, less the pairs pushed in the window.
    """
    rc = cfg.ranker
    window = pd.Timedelta(days=rc.label_window_days)
    rng = np.random.default_rng(rc.seed)
    push_at = pd.to_datetime(pushes[PUSHED_AT])
    parts = []
    for t in points:
        if t + window > until:
            continue
        pushed = _pair_set(pushes.loc[((push_at >= t) & (push_at < t + window)).to_numpy()])
        bought = _pair_set(_orders_between(orders, t, t + window))
        rows = union.loc[rng.random(len(union)) < rc.unshown_share, [GROUP_ID, PRODUCT_ID]]
        rows = rows.loc[~_in_pairs(rows, pushed)]
        parts.append(rows.assign(**{TIME: t, LABEL: _in_pairs(rows, bought).astype(np.int8), EXPOSED: 0}))
    if not parts:
        return pd.DataFrame(columns=[GROUP_ID, PRODUCT_ID, TIME, LABEL, EXPOSED])
    return pd.concat(parts, ignore_index=True)


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


@dataclass
class DayModel:
    """What scoring today's groups reads, learned once: the ranker, today's fitted sources and profiles, and the
    per-product tables. Every block of groups (in this process or on a Dask worker) reads the same one."""

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
    # Set by the daily job before its blocks run: the groups and segment_candidates tables, and each TrainData
    # group's log-price scale (NaN for a group without a profile).
    groups: pd.DataFrame | None = None
    segment: pd.DataFrame | None = None
    price_scale: np.ndarray | None = None
    # Built by the first block a process scores: the segments' picks per weight profile.
    segment_lists: SegmentLists | None = None


Trained = tuple[ConversionRanker, dict[str, Any], dict[str, float]]


def train_ranker(frames: Any, now: pd.Timestamp, cfg: Config, log: Log = default_log, shape: Any = None,
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


def build_day_model(frames: Any, data: TrainData, cfg: Config, log: Log = default_log,
                    fitted: Mapping[str, Recommender] | None = None, trained: Trained | None = None,
                    release_fit_inputs: bool = False, shape: Any = None, new_pairs_only: bool = False) -> DayModel:
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
    return DayModel(data, sources, profiles, ranker, metrics, cfg, product, mean_qty, timings, adoption)


def today_model(frames: Any, cfg: Config, trained: Trained, timings: dict[str, float], log: Log = default_log) -> DayModel:
    """Today's TrainData and day model for the daily job. Today's TrainData is handed straight to `build_day_model`,
    whose reference is then the only one: its fitting matrices (GBs at a million groups) go once the sources are fitted."""
    t0 = time.perf_counter()

    def data() -> TrainData:
        built = build_train_data(frames.products, frames.sellers, frames.groups, frames.pushes, frames.orders, cfg.features)
        timings["features"] = time.perf_counter() - t0
        log(f"features: {built.n_groups:,} groups, {built.n_items:,} products, now {built.now}")
        return built

    return build_day_model(frames, data(), cfg, log, trained=trained, release_fit_inputs=True)


def score_candidates(model: DayModel, group_idx: np.ndarray, profiles: Profiles | None = None
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


def build_pipeline(frames: Any, data: TrainData, cfg: Config, log: Log = default_log,
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


# ---------------------------------------------------------------------------------------------- blocks of sellers


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


class PipelineRecommender(Recommender):
    """The full pipeline as a harness model: candidates re-ranked by the blend of ranker p_conv and components."""

    name = "ranker"

    def __init__(self, frames: Any, cfg: Config, weights: BlendWeights, share: "PipelineRecommender | None" = None,
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


def mean_quantity(data: TrainData) -> np.ndarray:
    """Mean quantity per order of each item, in item index order (1 when never ordered)."""
    ev = data.events
    qty = pd.Series(ev["quantity"].to_numpy()).groupby(ev["i"].to_numpy()).mean()
    return qty.reindex(np.arange(data.n_items)).fillna(1.0).to_numpy()


def add_order_value(cands: pd.DataFrame, data: TrainData) -> pd.DataFrame:
    """order_value = price × the product's mean quantity per order (1 when never ordered)."""
    return cands.assign(order_value=cands["price"].to_numpy() * mean_quantity(data)[cands["i"].to_numpy()])


# ---------------------------------------------------------------------------------------------- artifact tables


def _reasons(ranks: pd.DataFrame, cat_share: np.ndarray, due: np.ndarray, launched_days: np.ndarray) -> np.ndarray:
    """Reason codes per candidate (JSON lists): category habit, then the proposing sources' codes by their best
    rank (repurchase only when due), then newness.

    Vectorised: each row's codes are encoded as one integer, and only the few distinct codes are turned into JSON.
    """
    names = [c[len("rank__"):] for c in ranks.columns]
    codes = list(dict.fromkeys(SOURCE_REASONS[n] for n in names if n in SOURCE_REASONS))
    values = ranks.to_numpy(dtype=float)
    best = np.full((len(ranks), len(codes)), np.inf)
    for j, name in enumerate(names):
        code = SOURCE_REASONS.get(name)
        if code is None:
            continue
        r = values[:, j] if code != "repurchase_due" else np.where(due, values[:, j], np.nan)
        k = codes.index(code)
        best[:, k] = np.fmin(best[:, k], np.where(np.isnan(r), np.inf, r))
    order = np.argsort(best, axis=1, kind="stable")
    present = np.isfinite(np.take_along_axis(best, order, axis=1))
    base = len(codes) + 1
    key = np.zeros(len(ranks), dtype=np.int64)
    for pos in range(len(codes)):
        key = key * base + np.where(present[:, pos], order[:, pos] + 1, 0)
    key = key * 4 + (np.asarray(cat_share, float) >= CATEGORY_REASON_SHARE) * 2 + (np.asarray(launched_days, float) <= NEW_PRODUCT_DAYS)
    uniq, inverse = np.unique(key, return_inverse=True)
    texts = []
    for k in uniq.tolist():
        new, cat = k & 1, (k >> 1) & 1
        k >>= 2
        digits = []
        for _ in range(len(codes)):
            digits.append(k % base)
            k //= base
        found = ["group_buys_category"] if cat else []
        found += [codes[d - 1] for d in reversed(digits) if d]
        if new:
            found.append("new_product")
        texts.append(json.dumps(list(dict.fromkeys(found))))
    return np.asarray(texts, dtype=object)[inverse.ravel()]


def product_state(products: pd.DataFrame, pushes: pd.DataFrame | None, orders: pd.DataFrame, now: pd.Timestamp,
                  window_days: int) -> pd.DataFrame:
    """Per product: main category, flags, days since launch and price change over the last `window_days`.

    The price `window_days` ago is the last seen price (push price, else paid / quantity) before then;
    the change is current list price / that price − 1 (NaN when unknown).
    """
    p = products.assign(**{PRODUCT_ID: products[PRODUCT_ID].astype(str)}).set_index(PRODUCT_ID)
    cut = now - pd.Timedelta(days=window_days)
    catalogue = IdMap(p.index, kind="product")
    # Columns as arrays (catalogue row, time, price): no copy of the pushes table, no string per push.
    rows, times, prices = [], [], []
    if pushes is not None and len(pushes) and "price_at_push" in pushes:
        rows.append(catalogue.index_of(pushes[PRODUCT_ID], missing="mark"))
        times.append(to_local_naive(pushes[PUSHED_AT]).to_numpy(dtype="datetime64[ns]"))
        prices.append(pd.to_numeric(pushes["price_at_push"], errors="coerce").to_numpy(dtype=float))
    rows.append(catalogue.index_of(orders[PRODUCT_ID], missing="mark"))
    times.append(to_local_naive(orders[ORDERED_AT]).to_numpy(dtype="datetime64[ns]"))
    prices.append((pd.to_numeric(orders["paid"]) / pd.to_numeric(orders["quantity"]).clip(lower=1)).to_numpy(dtype=float))
    # Each source cut to its usable observations before they are joined (76M pushes at a million groups).
    for k in range(len(rows)):
        ok = (rows[k] >= 0) & (times[k] < np.datetime64(cut, "ns")) & ~np.isnan(prices[k]) & ~np.isnat(times[k])
        rows[k], times[k], prices[k] = rows[k][ok], times[k][ok].astype(np.int64), prices[k][ok]
    row, t, price_seen = np.concatenate(rows), np.concatenate(times), np.concatenate(prices)
    del rows, times, prices
    # The last observation before the cut: the latest time per product, and of equal times the last one seen.
    latest = np.full(len(p.index), np.iinfo(np.int64).min)
    np.maximum.at(latest, row, t)
    at_latest = t == latest[row]
    last = pd.Series(price_seen[at_latest]).groupby(row[at_latest]).last()
    before = pd.Series(last.to_numpy(), index=p.index[last.index.to_numpy()])
    price = pd.to_numeric(p["price"])
    out = pd.DataFrame(index=p.index)
    out["price_change_7d"] = price / before.reindex(p.index) - 1.0
    out["presale"] = p["presale"].fillna(False).astype(bool) if "presale" in p else False
    out["coupon"] = pd.to_numeric(p["coupon"]).fillna(0.0) if "coupon" in p else 0.0
    out["in_stock"] = p["in_stock"].fillna(True).astype(bool) if "in_stock" in p else True
    if "launched_at" in p:
        out["launched_days"] = (now - to_local_naive(p["launched_at"])).dt.total_seconds() / 86400.0
    else:
        out["launched_days"] = np.inf
    return out


def item_product_state(frames: Any, data: TrainData, cfg: Config) -> pd.DataFrame:
    """`product_state` as of `data.now`, row i = item index i."""
    product = product_state(frames.products, frames.pushes, frames.orders, data.now, cfg.rules.price_window_days)
    return product.reindex(np.asarray(data.items.ids).astype(str))


def candidate_components(state: PipelineState, frames: Any, cfg: Config) -> pd.DataFrame:
    """The `candidates` table of the artifact: one row per (group, product) with every blend component."""
    data = state.data
    return components(state.candidates, state.features, data, item_product_state(frames, data, cfg), mean_quantity(data))


def components(c: pd.DataFrame, f: pd.DataFrame, data: TrainData, product: pd.DataFrame, mean_qty: np.ndarray) -> pd.DataFrame:
    """Candidates (`score_candidates`) and their ranker rows as `candidates` rows; `product` is `product_state` in
    item index order and `mean_qty` the mean quantity per order of each item."""
    i = c["i"].to_numpy()
    prod = product.iloc[i]
    # Due: the group's usual cycle for the product's category has (about) elapsed, not long ago.
    due = f["due_ratio"].between(*DUE_RANGE).to_numpy()
    items = data.item_frame
    rank_cols = [col for col in f.columns if col.startswith("rank__")]
    price = c["price"].to_numpy(float)
    return pd.DataFrame({
        GROUP_ID: text_values(c[GROUP_ID].astype(str)),
        PRODUCT_ID: text_values(c[PRODUCT_ID].astype(str)),
        "p_conv": c["p_conv"].to_numpy(float),
        "price": price,
        "commission_rate": c["commission_rate"].to_numpy(float),
        "commission_yuan": c["commission_yuan"].to_numpy(float),
        "rating": c["rating"].to_numpy(float),
        "order_value": price * mean_qty[i],
        "category": text_values(items["main_category"], i),
        "brand": text_values(items["brand"], i),
        "sources": text_values(c["sources"].astype(str)),
        "reasons": _reasons(f[rank_cols], f["cat_share"].to_numpy(float), due, prod["launched_days"].to_numpy(float)),
        "repurchase_due": due,
        "presale": prod["presale"].to_numpy(bool),
        "coupon": prod["coupon"].to_numpy(float),
        "in_stock": prod["in_stock"].to_numpy(bool),
        "price_change_7d": prod["price_change_7d"].to_numpy(float),
        "days_since_push": f["days_since_push"].to_numpy(float),
        "adoption": c["adoption"].to_numpy(float),
    })


def feature_table(c: pd.DataFrame, f: pd.DataFrame, ranker: ConversionRanker,
                  profiles: Profiles, scale_by_g: np.ndarray | None = None) -> pd.DataFrame:
    """The `candidate_features` rows of the candidates: group_id, product_id and the ranker's feature
    columns (float32), plus `_price_z_scale`, so that a what-if can rewrite price, commission or coupon
    (`recsys.ranker.reprice_features`) and ask the ranker again (`recsys.ranker.load_ranker`). `scale_by_g` is each
    TrainData group's log-price scale when already computed (read by the candidates' `g`)."""
    names = [n for n in ranker.feature_names_ if n in f.columns]
    out = f[names].reset_index(drop=True)
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].astype(np.float32)
    if scale_by_g is None:
        group_scale = profiles.price_scale_of(c[GROUP_ID].astype(str).to_numpy(dtype=object))
    else:
        group_scale = scale_by_g[c["g"].to_numpy()]
    out.insert(0, PRODUCT_ID, text_values(c[PRODUCT_ID].astype(str)))
    out.insert(0, GROUP_ID, text_values(c[GROUP_ID].astype(str)))
    out[PRICE_SCALE] = group_scale.astype(np.float32)
    if EXPOSED in ranker.feature_names_:
        out[EXPOSED] = np.int8(1)  # p_conv is asked about a shown pair
    return out


def segment_components(frames: Any, data: TrainData, cfg: Config, product: pd.DataFrame | None = None) -> pd.DataFrame:
    """The `segment_candidates` table: per segment its most bought products, p_conv = smoothed push conversion
    of the product in the segment (pushes of the last 28 days, labelled like the ranker's), shrunk to the
    product's overall rate and that to the global rate. `product` is `item_product_state` when already built."""
    segs = data.group_frame["segment"].to_numpy(object)
    ev = data.events
    half_life = cfg.features.half_life_days if data.timed else None  # no decay without a half-life or a real clock
    w = ev["quantity"].to_numpy(float) * (np.exp(-ev["age_days"].to_numpy() / half_life) if half_life else 1.0)
    mass = pd.Series(w).groupby([segs[ev["g"].to_numpy()], ev["i"].to_numpy()]).sum()
    glob = pd.Series(w).groupby(ev["i"].to_numpy()).sum().sort_values(ascending=False)
    n = cfg.candidates.union_size
    rate_seg, rate_item, base = _push_rates(frames, data, cfg)
    parts = []
    # The segments with any purchase, found once: probing the level per segment hashes millions of entries each time.
    bought_in = set(mass.index.get_level_values(0).unique())
    for seg in pd.unique(segs):
        top = mass.loc[seg].sort_values(ascending=False).index.to_numpy() if seg in bought_in else np.zeros(0, int)
        top = np.r_[top, glob.index.to_numpy()[~np.isin(glob.index.to_numpy(), top)]][:n].astype(np.int64)
        pid = data.items.id_of(top)
        item_rate = rate_item.reindex(top).fillna(base).to_numpy()
        seg_pos = rate_seg.reindex(pd.MultiIndex.from_arrays([np.full(len(top), seg, object), top]))
        pos, cnt = seg_pos["pos"].fillna(0).to_numpy(), seg_pos["n"].fillna(0).to_numpy()
        p_conv = (pos + 10.0 * item_rate) / (cnt + 10.0)
        parts.append(pd.DataFrame({"segment": seg, PRODUCT_ID: pid, "p_conv": p_conv, "i": top}))
    seg_frame = pd.concat(parts, ignore_index=True)
    items = data.item_frame
    i = seg_frame["i"].to_numpy()
    qty = pd.Series(ev["quantity"].to_numpy()).groupby(ev["i"].to_numpy()).mean().reindex(i).fillna(1.0).to_numpy()
    prod = (item_product_state(frames, data, cfg) if product is None else product).iloc[i]
    price = items["price"].to_numpy(float)[i]
    reasons = ["segment_popular"]
    out = pd.DataFrame({
        "segment": seg_frame["segment"].astype(str).to_numpy(),
        PRODUCT_ID: seg_frame[PRODUCT_ID].astype(str).to_numpy(),
        "p_conv": seg_frame["p_conv"].to_numpy(float),
        "price": price,
        "commission_rate": items["commission_rate"].to_numpy(float)[i],
        "commission_yuan": price * items["commission_rate"].to_numpy(float)[i],
        "rating": items["rating"].to_numpy(float)[i],
        "order_value": price * qty,
        "category": items["main_category"].to_numpy(object)[i],
        "brand": items["brand"].to_numpy(object)[i],
        "sources": "segment_popular",
        "reasons": [json.dumps(reasons + (["new_product"] if d <= NEW_PRODUCT_DAYS else [])) for d in prod["launched_days"].to_numpy(float)],
        "repurchase_due": False,
        "presale": prod["presale"].to_numpy(bool),
        "coupon": prod["coupon"].to_numpy(float),
        "in_stock": prod["in_stock"].to_numpy(bool),
        "price_change_7d": prod["price_change_7d"].to_numpy(float),
        "days_since_push": np.nan,
    })
    return out


def _push_rates(frames: Any, data: TrainData, cfg: Config) -> tuple[pd.DataFrame, pd.Series, float]:
    """Push conversion per (segment, item) and per item over the last 28 days; the global rate."""
    if frames.pushes is None or not len(frames.pushes):
        return pd.DataFrame(columns=["pos", "n"]), pd.Series(dtype=float), 0.0
    now = data.now
    # Integer pair keys and times, never a copy of the pushes table (70M rows at a million groups), and counts by
    # bincount over the few (segment, item) cells instead of sorting or grouping 70M keys.
    at = to_local_naive(frames.pushes[PUSHED_AT]).to_numpy()
    recent = (at >= np.datetime64(now - pd.Timedelta(days=28))) & \
        (at <= np.datetime64(now - pd.Timedelta(days=cfg.ranker.label_window_days)))
    at = at[recent]
    g = data.groups.index_of(frames.pushes[GROUP_ID], missing="mark")[recent].astype(np.int32)
    i = data.items.index_of(frames.pushes[PRODUCT_ID], missing="mark")[recent].astype(np.int32)
    del recent
    o = _orders_between(frames.orders, pd.Timestamp.min, now)
    og = data.groups.index_of(o[GROUP_ID], missing="mark")
    oi = data.items.index_of(o[PRODUCT_ID], missing="mark")
    width = np.int64(data.n_items)
    ok = (g >= 0) & (i >= 0)
    labels = ordered_within(np.where(ok, g.astype(np.int64) * width + i, -1), at,
                            np.where((og >= 0) & (oi >= 0), og * width + oi, -2),
                            to_local_naive(o[ORDERED_AT]).to_numpy(), pd.Timedelta(days=cfg.ranker.label_window_days))
    del at
    g, i, y = g[ok], i[ok], labels[ok].astype(float)
    del labels, ok
    base = float(y.mean()) if len(y) else 0.0
    item_n = np.bincount(i, minlength=data.n_items)
    item_pos = np.bincount(i, weights=y, minlength=data.n_items)
    pushed = np.flatnonzero(item_n)
    rate_item = pd.Series((item_pos[pushed] + 10.0 * base) / (item_n[pushed] + 10.0), index=pd.Index(pushed, name="i"))
    seg_codes, segments = pd.factorize(data.group_frame["segment"].to_numpy(object))
    key = seg_codes[g].astype(np.int64) * width + i
    del g, i
    cells = len(segments) * int(width)
    n = np.bincount(key, minlength=cells)
    pos = np.bincount(key, weights=y, minlength=cells)
    keys = np.flatnonzero(n)
    index = pd.MultiIndex.from_arrays([np.asarray(segments, dtype=object)[keys // width], keys % width], names=["s", "i"])
    rate_seg = pd.DataFrame({"pos": pos[keys], "n": n[keys]}, index=index).sort_index()
    return rate_seg, rate_item, base


def group_table(frames: Any, data: TrainData) -> pd.DataFrame:
    """The `groups` table: contract columns joined with seller type and city tier, cold flag and segment."""
    gf = data.group_frame
    groups = frames.groups.reset_index(drop=True)
    theme = groups["theme"].fillna("").astype(str).to_numpy() if "theme" in groups else np.full(len(groups), "")
    return pd.DataFrame({
        GROUP_ID: data.groups.ids.astype(str),
        "seller_id": gf["seller_id"].astype(str).to_numpy(),
        "seller_type": gf["seller_type"].astype(str).to_numpy(),
        "city_tier": gf["city_tier"].to_numpy(int),
        "member_count": gf["member_count"].to_numpy(int),
        "theme": theme,
        "cold_start": data.cold.astype(bool),
        "segment": gf["segment"].astype(str).to_numpy(),
    })


# ---------------------------------------------------------------------------------------------- one block of the day


@dataclass
class DayBlock:
    """One block's share of the artifact: its warm groups' candidates and their feature rows, every group's picks."""

    candidates: pd.DataFrame
    features: pd.DataFrame
    picks: pd.DataFrame


def day_block(model: DayModel, group_idx: np.ndarray, profiles: Profiles | None = None) -> DayBlock:
    """The per-group part of the daily job for one block of groups: union candidates → ranker rows → p_conv →
    components → picks. The unit of work of both the single-process run and the Dask one."""
    if model.groups is None or model.segment is None:
        raise ValueError("day_block needs model.groups and model.segment (set by run_daily)")
    # Cold groups read their segment's list, so they are not scored at all (about half the groups of the sample world).
    warm_groups = np.asarray(group_idx)[~model.groups["cold_start"].to_numpy(bool)[np.asarray(group_idx, dtype=np.int64)]]
    _, c, f = score_candidates(model, warm_groups, profiles)
    g = c["g"].to_numpy()
    stored = components(c, f, model.data, model.product, model.mean_qty)
    feats = feature_table(c, f, model.ranker, model.profiles, model.price_scale)
    return DayBlock(stored, feats, block_picks(model, group_idx, stored, g))


class SegmentLists:
    """Default picks of each segment's list per weight profile, picked once per process and reused by every block."""

    def __init__(self, segment: pd.DataFrame, rules: RuleConfig) -> None:
        from contracts.artifact import _numpy_columns

        segments = segment.sort_values("segment", kind="stable").reset_index(drop=True)
        self.keys = segments["segment"].astype(str).to_numpy(object)
        self.cols = _numpy_columns(segments)
        self.rules = rules
        self.cache: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}

    def picks(self, segment: str, w: BlendWeights, w_hash: str) -> tuple[np.ndarray, np.ndarray]:
        """(product ids, scores) of the segment's picks under weights `w` (fingerprint `w_hash`)."""
        from recsys.picks import greedy_picks

        key = (segment, w_hash)
        if key not in self.cache:
            rows = np.flatnonzero(self.keys == segment)
            cols = {name: a[rows] for name, a in self.cols.items()}
            idx, scores, _ = greedy_picks(cols, w, self.rules)
            self.cache[key] = (cols[PRODUCT_ID][idx], scores)
        return self.cache[key]


class _LazyColumns(Mapping[str, np.ndarray]):
    """A frame's columns as numpy arrays, each converted on first read: the picks read a few of a block's columns."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.done: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        from contracts.artifact import _numpy_columns

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
    from recsys.picks import greedy_picks_batch

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
    if model.segment_lists is None:
        model.segment_lists = SegmentLists(model.segment, cfg.rules)
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


def run_blocks(model: DayModel, blocks: list[np.ndarray], views: list[Profiles], log: Log = default_log) -> Iterator[DayBlock]:
    """Every block, in block order: in this process, on `cluster.processes` forked ones, or on the Dask cluster of
    `cluster.scheduler` when one is set; a generator, so the caller can write each block away before the next one is held."""
    if model.cfg.cluster.scheduler:
        from training.distributed import run_blocks_on_cluster

        yield from run_blocks_on_cluster(model, blocks, views, log)
        return
    from training.forked import run_blocks_forked, worker_processes

    processes = min(worker_processes(model.cfg.cluster.processes), len(blocks))
    if processes > 1:
        yield from run_blocks_forked(model, blocks, views, processes, log)
        return
    for idx, view in progress(zip(blocks, views), len(blocks), "blocks"):
        yield day_block(model, idx, view)


# ---------------------------------------------------------------------------------------------- the job


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
    from recsys.candidates import BlendRecommender
    from training.evaluate import EvalOptions, Frames, evaluate_models, make_source, time_split

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


def held_out_push_metrics(state: PipelineState, frames: Any, test: Any, cfg: Config) -> dict[str, Any] | None:
    """p_conv judged as P(order | shown) on the pushes after the cut-off, whatever the examples were: each push of
    the test days whose label window ends in them, featured as of the cut-off like today's candidates, labelled by an
    order within YARDSTICK_WINDOW_DAYS. The same yardstick for every example mode. None without such pushes."""
    from recsys.calibration import probability_metrics

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


def run_daily(frames: Any, cfg: Config, out_root: str | Path, evaluate: bool = True, test_days: int = 7,
              log: Log = default_log, source: str = "") -> DailyResult:
    """The whole job; the artifact is streamed into a temporary folder and published atomically at the very end (a
    crash leaves the previous one)."""
    from contracts.artifact import ArtifactWriter

    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    evaluation = None
    window_tables: dict[str, pd.DataFrame] = {}
    if evaluate:
        from training.evaluation_window import evaluation_tables

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
    model = today_model(frames, cfg, trained, timings, log)
    data = model.data
    timings.update({f"pipeline_{k}": v for k, v in model.timings.items()})
    t0 = time.perf_counter()
    groups = group_table(frames, data)
    segment = segment_components(frames, data, cfg, model.product)
    model.groups, model.segment = groups, segment
    model.price_scale = model.profiles.price_scale_of(data.groups.ids)
    blocks = seller_blocks(data, cfg.cluster.block_groups)
    views = block_profiles(model.profiles, data, blocks)
    # Each block carries its own view of the group-keyed tables (the push history is 1.5 GB at a million groups), so
    # the model every block shares (broadcast once to Dask workers) keeps none of them.
    model.profiles = model.profiles.without_group_tables()
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
