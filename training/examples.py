"""The ranker's examples and the snapshot their rows are read from.

Ranker rows come from one function, `Snapshot.rows`: each candidate source's score of the pair (from the fitted
source, whether or not the pair made its top list) and rank (NaN when it did not), then
`features.profiles.pair_features` (group, product and group × product features as of the snapshot). Training rows
and today's rows are built by that same code, only the moment differs.

The ranker learns from the past: sources are fitted on a snapshot `example_days` before today, the pushes of the
following days (labelled by an order within `label_window_days`) are the examples, and each reads the profiles of
the latest refresh (every `feature_refresh_days`) at or before its push, so no feature sees its own label. Without
pushes or a real clock the examples come from a holdout of the orders instead (`holdout_examples`).
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from contracts.config import Config
from contracts.schema import GROUP_ID, ORDERED_AT, PRODUCT_ID, PUSHED_AT, SELLERS, ContractFrames, Frames
from features.interactions import TrainData, build_train_data, to_local_naive
from features.profiles import Profiles, build_profiles
from recsys.candidates.base import Recommender, groups_in_blocks
from recsys.candidates.registry import TIMED_SOURCES, make_source
from recsys.candidates.union import union_candidates
from recsys.ranker import EXPOSED, LABEL, TIME, feature_columns, order_labels_with_sampled_negatives, push_labels
from training.evaluation_window import TestShape, carve
from training.log import Log, default_log, slowest
from training.tables import orders_between

# Sources whose scores and ranks feed the ranker (and whose union is the candidate set).
SOURCES: tuple[str, ...] = ("popular", "trending", "segment_popular", "own_top", "repurchase",
                            "item_knn_cosine", "ease", "als", "content", "tifu_knn")
# Ranker features read from days (ages, recency, cycles, windows of days): meaningless on a synthetic clock.
NON_TIMED_DROP: frozenset[str] = frozenset({
    "days_since_cat", "cat_cycle_days", "due_ratio", "repurchase_due", "days_since_push", "group_orders_30d",
    "group_days_since_order", "price_change_7d", "product_orders_7d", "product_orders_30d", "age_days",
    "score__trending", "rank__trending", "score__repurchase", "rank__repurchase",
})
# Ranker features read from pushes: meaningless without any.
PUSH_FEATURES: frozenset[str] = frozenset({"days_since_push", "times_pushed", "group_conv_rate", "product_conv_rate",
                                           EXPOSED})


def _keys(g: np.ndarray, i: np.ndarray, n_items: int) -> np.ndarray:
    return np.asarray(g, dtype=np.int64) * n_items + np.asarray(i, dtype=np.int64)


def _pushes(frames: ContractFrames) -> pd.DataFrame:
    """The pushes table, or an empty one with the contract's columns when the data has none."""
    pushes = getattr(frames, "pushes", None)
    if pushes is not None:
        return pushes
    return pd.DataFrame({GROUP_ID: pd.Series(dtype=str), PRODUCT_ID: pd.Series(dtype=str),
                         PUSHED_AT: pd.Series(dtype="datetime64[ns]"), "price_at_push": pd.Series(dtype=float)})


def _sellers(frames: ContractFrames) -> pd.DataFrame:
    sellers = getattr(frames, "sellers", None)
    if sellers is not None:
        return sellers
    return pd.DataFrame({c.name: pd.Series(dtype=object) for c in SELLERS.columns})


def profiles_at(frames: ContractFrames, as_of: pd.Timestamp, cfg: Config, history_groups: object | None = None) -> Profiles:
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


def take_snapshot(frames: ContractFrames, data: TrainData, cfg: Config, fitted: Mapping[str, Recommender] | None = None,
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


def sources_for(data: TrainData, names: Iterable[str] = SOURCES, line_order: Iterable[str] = ()) -> tuple[str, ...]:
    """The sources that mean something on this data: the timed ones only on a real clock, but those of
    `line_order` (reading only the order of events) on a line-order clock too."""
    ordered = set(line_order) if data.clock == "line_order" else set()
    return tuple(n for n in names if data.timed or n not in TIMED_SOURCES or n in ordered)


def unfitted_copy(source: Recommender) -> Recommender:
    """A fresh source of the same class and hyper-parameters (those its constructor takes), not fitted."""
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


def _pair_set(frame: pd.DataFrame) -> pd.Index:
    return pd.Index(frame[GROUP_ID].astype(str).to_numpy(dtype=object) + "\x1f" + frame[PRODUCT_ID].astype(str).to_numpy(dtype=object))


def _in_pairs(frame: pd.DataFrame, pairs: pd.Index) -> np.ndarray:
    return _pair_set(frame).isin(pairs)


def _with_features(examples: pd.DataFrame, snap: Snapshot, frames: ContractFrames, cfg: Config, points: list[pd.Timestamp],
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


def learns_from_holdout(frames: ContractFrames, cfg: Config) -> bool:
    """Whether the ranker's examples come from a holdout of the orders (`holdout_examples`): without pushes or
    without a real clock (a past snapshot of line numbers is no past), unless configured otherwise."""
    if cfg.ranker.orders_only_examples != "holdout":
        return False
    f = Frames.of(frames)
    return f.clock != "real" or f.pushes is None or not len(f.pushes)


def holdout_shape(clock: str, cfg: Config) -> Any:
    """The default holdout of the ranker's examples: each group's last line (a random one without any clock), or
    the last `holdout_days` on a real clock."""
    return TestShape("window", days=cfg.ranker.holdout_days) if clock == "real" else TestShape("holdout_last")


def holdout_examples(frames: ContractFrames, cfg: Config, shape: Any = None, new_pairs_only: bool = False, log: Log = default_log,
                     like: Mapping[str, Recommender] | None = None) -> pd.DataFrame:
    """Ranker examples learnt from orders alone: the data carved like validation (`shape`, default `holdout_shape`),
    sources fitted on the rest (the snapshot; hyper-parameters of `like` when given), and each sampled group's union
    candidates labelled 1 when held out, with at most `candidate_negatives` of its other candidates as negatives.
    With `new_pairs_only` the pairs the group bought in the snapshot are left out (the question the test asks).

    The ranker then learns what the served list needs: which of the union's candidates a group buys next, from the
    sources' scores and ranks and the pair features as of the snapshot. Raises ValueError when the holdout holds
    nothing (every group has a single line)."""
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


def ranker_examples(frames: ContractFrames, now: pd.Timestamp, cfg: Config, log: Log = default_log, shape: Any = None,
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
        bought = _pair_set(orders_between(orders, start, start + window))
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
        bought = _pair_set(orders_between(orders, t, t + window))
        rows = union.loc[rng.random(len(union)) < rc.unshown_share, [GROUP_ID, PRODUCT_ID]]
        rows = rows.loc[~_in_pairs(rows, pushed)]
        parts.append(rows.assign(**{TIME: t, LABEL: _in_pairs(rows, bought).astype(np.int8), EXPOSED: 0}))
    if not parts:
        return pd.DataFrame(columns=[GROUP_ID, PRODUCT_ID, TIME, LABEL, EXPOSED])
    return pd.concat(parts, ignore_index=True)
