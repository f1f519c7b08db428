"""How a test was made (and validation carved the same way), and the last evaluation window as artifact tables.

`detect_test_shape(train, test, clock)` tells the three kinds of tests apart: the last time window (a real clock
and every test order after every training order), one held-out line per group (`holdout_last`: the group's last
line when the lines have an order, a random one without a clock), or a random holdout of several lines per group
(`holdout_random`, with the median share of a group's lines held out). `carve(frames, shape, seed)` cuts a split
of that shape out of any frames (validation out of training, or a test out of data without a real clock), keeping
at least one training line (a purchase, or a push of its own) in every group it holds lines out of.
`time_split(frames, test_days)` is the window shape itself (the last days on a real clock); it lives here, under the
harness (`training.evaluate`) and the daily job that both cut with it, so neither imports the other for it.

The ops preview replays the last evaluation window with any weights:

The daily job's evaluation holds out the last `test_days` and fits the full pipeline on the days before.
`evaluation_tables` turns that fitted pipeline into two tables:

- `evaluation_candidates`: the candidates as scored at the cut-off, same columns as `candidates`; a cold
  group gets its segment's list written under its own id (the preview replays every group alike);
- `evaluation_window`: the non-refunded orders of the held-out days per (group_id, product_id): orders
  (order lines), quantity, paid, commission.

Wiring in the daily job (the fitted pipeline is the `"ranker"` model of `evaluate_pipeline(..., models_out=)`):

    models = {}
    evaluation = evaluate_pipeline(frames, cfg, test_days, log, models_out=models)
    tables.update(evaluation_tables(models["ranker"], frames, cfg, test_days))
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from contracts.schema import GROUP_ID, ORDERED_AT, PRODUCT_ID, PUSHED_AT, ContractFrames, Frames
from features.interactions import to_local_naive
from training.tables import candidate_components, group_table, segment_components

# A test where at least this share of the test groups hold exactly one test line is "one held-out item per group".
ONE_PER_GROUP_SHARE = 0.9
SHAPES = ("window", "holdout_last", "holdout_random")


def window_orders(orders: pd.DataFrame) -> pd.DataFrame:
    """Non-refunded orders per (group_id, product_id): orders (lines), quantity, paid, commission."""
    o = orders
    if "refunded" in o.columns:
        o = o[~o["refunded"].fillna(False).astype(bool)]
    frame = pd.DataFrame({GROUP_ID: o[GROUP_ID].astype(str).to_numpy(), PRODUCT_ID: o[PRODUCT_ID].astype(str).to_numpy(),
                          "quantity": pd.to_numeric(o["quantity"]).to_numpy(float),
                          "paid": pd.to_numeric(o["paid"]).to_numpy(float),
                          "commission": pd.to_numeric(o["commission"]).fillna(0.0).to_numpy(float)})
    out = frame.groupby([GROUP_ID, PRODUCT_ID], sort=True).agg(orders=("paid", "size"), quantity=("quantity", "sum"),
                                                                paid=("paid", "sum"), commission=("commission", "sum"))
    return out.reset_index()


def time_split(frames: Frames, test_days: int = 7, cutoff: pd.Timestamp | str | None = None) -> tuple[Frames, Frames, pd.Timestamp]:
    """Train on everything before the cut-off, test on the `test_days` that follow (default: the last days).

    The default cut-off is midnight `test_days` days before the day after the last order, so the test is the
    last `test_days` whole calendar days. Catalogue, sellers and groups are shared; no event crosses the cut.
    """
    frames = Frames.of(frames)
    if frames.clock != "real":
        raise ValueError(f"no time split on a {frames.clock!r} clock: its timestamps are not times "
                         "(hold out lines per group instead: training.evaluation_window.carve)")
    ordered = to_local_naive(frames.orders[ORDERED_AT])
    if cutoff is None:
        cutoff = ordered.max().normalize() + pd.Timedelta(days=1) - pd.Timedelta(days=test_days)
    cutoff = to_local_naive(pd.Timestamp(cutoff))
    end = cutoff + pd.Timedelta(days=test_days)
    in_train = (ordered < cutoff).to_numpy()
    in_test = ((ordered >= cutoff) & (ordered < end)).to_numpy()

    def pushes_where(lo: pd.Timestamp | None, hi: pd.Timestamp) -> pd.DataFrame | None:
        if frames.pushes is None:
            return None
        t = to_local_naive(frames.pushes[PUSHED_AT])
        keep = (t < hi) if lo is None else ((t >= lo) & (t < hi))
        return frames.pushes.loc[keep.to_numpy()].reset_index(drop=True)

    train = Frames(frames.products, frames.sellers, frames.groups, pushes_where(None, cutoff),
                   frames.orders.loc[in_train].reset_index(drop=True), frames.truth, frames.clock)
    test = Frames(frames.products, frames.sellers, frames.groups, pushes_where(cutoff, end),
                  frames.orders.loc[in_test].reset_index(drop=True), frames.truth, frames.clock)
    return train, test, cutoff


def evaluation_tables(pipeline: Any, frames: Any, cfg: Any, test_days: int = 7) -> dict[str, pd.DataFrame]:
    """`evaluation_candidates` and `evaluation_window` from the evaluation's fitted pipeline (`PipelineRecommender`)."""

    train, test, _ = time_split(Frames.of(frames), test_days)
    state = pipeline.state_
    cands = candidate_components(state, train, cfg)
    groups = group_table(train, state.data)
    segs = segment_components(train, state.data, cfg)
    cold = groups.loc[groups["cold_start"], [GROUP_ID, "segment"]]
    cold_rows = cold.merge(segs, on="segment", how="inner").drop(columns="segment")
    warm = cands[~cands[GROUP_ID].isin(set(cold[GROUP_ID]))]
    table = pd.concat([warm, cold_rows[warm.columns.intersection(cold_rows.columns)]], ignore_index=True)
    return {"evaluation_candidates": table, "evaluation_window": window_orders(test.orders)}


@dataclass(frozen=True)
class TestShape:
    """How a test was made: its kind (SHAPES), the window's days, the share of a group's lines held out."""

    __test__ = False  # a data class, not a pytest test class

    kind: str
    days: int = 7  # window: the test's length in whole days
    share: float = 0.0  # holdout_random: median share of a test group's lines held out
    test_groups: int = 0
    lines_per_group: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary for result.json."""
        return asdict(self)


def _orders(frames: ContractFrames) -> pd.DataFrame:
    """Non-refunded orders (what counts as a purchase)."""
    o = frames.orders
    if "refunded" in o.columns:
        o = o.loc[~o["refunded"].fillna(False).astype(bool).to_numpy()]
    return o


def detect_test_shape(train: Any, test: Any, clock: str) -> TestShape:
    """The shape of `test` against `train`: a time window, one held-out line per group, or a random holdout."""

    tr, te = _orders(train), _orders(test)
    if not len(te):
        raise ValueError("the test has no (non-refunded) orders: nothing to detect a shape from")
    per_group = te[GROUP_ID].astype(str).value_counts()
    stats = {"test_groups": int(per_group.size), "lines_per_group": round(float(per_group.mean()), 3)}
    if clock == "real" and len(tr):
        t_train, t_test = to_local_naive(tr[ORDERED_AT]), to_local_naive(te[ORDERED_AT])
        if t_test.min() >= t_train.max():
            span = (t_test.max() - t_test.min()) / pd.Timedelta(days=1)
            return TestShape("window", days=max(1, math.ceil(span)), **stats)
    if float((per_group == 1).mean()) >= ONE_PER_GROUP_SHARE:
        return TestShape("holdout_last", **stats)
    in_train = tr[GROUP_ID].astype(str).value_counts().reindex(per_group.index).fillna(0.0)
    share = float(np.median(per_group / (per_group + in_train)))
    return TestShape("holdout_random", share=round(share, 4), **stats)


def _pushed_apart(pushes: pd.DataFrame, orders: pd.DataFrame, purchase: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Per group (codes of `group`, aligned to `orders`): whether it has a push that is not one of its purchase
    lines (same group, product and time)."""

    n_groups = int(group.max()) + 1 if len(group) else 0
    if not len(pushes) or not n_groups:
        return np.zeros(n_groups, dtype=bool)
    key = [GROUP_ID, PRODUCT_ID]
    p_key = pushes[key].astype(str).assign(t=to_local_naive(pushes[PUSHED_AT]).to_numpy())
    o = orders.loc[purchase]
    o_key = o[key].astype(str).assign(t=to_local_naive(o[ORDERED_AT]).to_numpy()).drop_duplicates()
    apart = p_key.merge(o_key, on=key + ["t"], how="left", indicator=True)["_merge"].eq("left_only").to_numpy()
    codes = pd.Index(orders[GROUP_ID].astype(str).to_numpy()[np.unique(group, return_index=True)[1]])
    pg = codes.get_indexer(p_key[GROUP_ID].to_numpy()[apart])
    return np.bincount(pg[pg >= 0], minlength=n_groups) > 0


def carve(frames: ContractFrames, shape: TestShape, clock: str, seed: int = 7) -> tuple[Frames, Frames, pd.Timestamp | None]:
    """(kept, held out, cut-off) cut from `frames` the way `shape` says; the cut-off is None for holdouts.

    Holdouts only take lines from groups that keep a history: another purchase line, or a push that is no purchase
    line (a failed launch), so one with a single purchase line and such a push can be held out; `holdout_last` holds out each group's latest line (by time, then line order), or a random one when
    the clock is "none". The pushes of a held-out line (same group, product and time) are held out with it.
    """

    if shape.kind not in SHAPES:
        raise ValueError(f"unknown test shape {shape.kind!r}: expected one of {', '.join(SHAPES)}")
    if shape.kind == "window":
        return time_split(Frames.of(frames), shape.days)
    f = Frames.of(frames)
    orders = f.orders.reset_index(drop=True)
    purchase = np.ones(len(orders), dtype=bool)
    if "refunded" in orders.columns:
        purchase = ~orders["refunded"].fillna(False).astype(bool).to_numpy()
    group = pd.factorize(orders[GROUP_ID].astype(str))[0]
    rng = np.random.default_rng(seed)
    # Rank each purchase line within its group: by time then position (holdout_last), or at random.

    when = to_local_naive(orders[ORDERED_AT]).to_numpy(dtype="datetime64[ns]").astype(np.int64)
    random_key = rng.random(len(orders))
    idx = np.flatnonzero(purchase)
    if shape.kind == "holdout_last" and clock != "none":
        order = idx[np.lexsort((idx, when[idx], group[idx]))][::-1]  # latest first within each group
        order = order[np.argsort(group[order], kind="stable")]
    else:
        order = idx[np.lexsort((random_key[idx], group[idx]))]
    g = group[order]
    starts = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
    sizes = np.diff(np.r_[starts, len(g)])
    rank = np.arange(len(g)) - np.repeat(starts, sizes)
    n = np.repeat(sizes, sizes)
    if shape.kind == "holdout_last":
        take = np.ones(len(g), dtype=np.int64)
    else:
        take = np.clip(np.rint(shape.share * n), 1, None).astype(np.int64)
    # A group keeps a history through another purchase line or a push of its own that is no purchase line's
    # (a failed group-buy launch): with such a push, even a group's only purchase line can be held out.
    pushed = _pushed_apart(f.pushes, orders, purchase, group) if f.pushes is not None else np.zeros(0, bool)
    keeps = n - 1 + (pushed[g] if pushed.size else 0)
    held_mask = np.zeros(len(orders), dtype=bool)
    held_mask[order[rank < np.minimum(take, keeps)]] = True
    held = orders.loc[held_mask].reset_index(drop=True)
    kept_orders = orders.loc[~held_mask].reset_index(drop=True)
    pushes_kept = pushes_held = None
    if f.pushes is not None:
        key = [GROUP_ID, PRODUCT_ID]
        p = f.pushes.reset_index(drop=True)
        p_key = p[key].astype(str).assign(t=to_local_naive(p[PUSHED_AT]).to_numpy())
        h_key = held[key].astype(str).assign(t=to_local_naive(held[ORDERED_AT]).to_numpy()).drop_duplicates()
        leak = p_key.merge(h_key, on=key + ["t"], how="left", indicator=True)["_merge"].eq("both").to_numpy()
        pushes_kept = p.loc[~leak].reset_index(drop=True)
        pushes_held = p.loc[leak].reset_index(drop=True)
    for frame in (held, kept_orders):
        frame.attrs["clock"] = clock
    kept = Frames(f.products, f.sellers, f.groups, pushes_kept, kept_orders, f.truth, clock)
    out = Frames(f.products, f.sellers, f.groups, pushes_held, held, f.truth, clock)
    return kept, out, None
