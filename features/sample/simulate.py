"""The daily simulation of one block of groups: pushes, orders after pushes, and re-buys from old links.

Everything is vectorised over the groups of a block; only the days are a Python loop, because
repurchase cycles make today's conversion depend on yesterday's orders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.lexicon import CATEGORIES
from features.sample.catalogue import CATEGORY_NAMES, Catalogue
from features.sample.population import Population

DAY_S = 86_400

# Conversion model constants (calibrated so that a push converts a few per cent of the time).
CATEGORY_WEIGHT = 1.0  # weight of log(category share × C) in the affinity
PUSH_BASE = 0.010  # expected orders of a neutral push to a 100-member group
REBUY_BASE = 0.004  # expected re-buys per group-day from one old link
SIZE_KNEE = 200  # past this many members, extra members convert at SIZE_TAIL of the rate
SIZE_TAIL = 0.25
PRICE_CHANGE_DAYS = 7  # a push within this many days of a price change converts worse
PRICE_CHANGE_FACTOR = 0.5
LINK_SLOTS = 16  # old links remembered per group
ORDER_SLOTS = 16  # recent purchases remembered per group

# Sellers push around breakfast, lunch and the evening.
_HOUR_WEIGHTS = np.array([0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.4, 1.2, 2.0, 2.2, 1.6, 1.4,
                          1.8, 1.2, 0.9, 0.9, 1.0, 1.2, 1.5, 2.2, 2.6, 2.4, 1.5, 0.6])
_HOUR_CDF = np.cumsum(_HOUR_WEIGHTS) / _HOUR_WEIGHTS.sum()

_CYCLE = np.array([np.nan if CATEGORIES[c].repurchase_days is None else CATEGORIES[c].repurchase_days for c in CATEGORY_NAMES])


def effective_members(members: np.ndarray) -> np.ndarray:
    """Members that behave like buyers: past SIZE_KNEE the group gets noisy and each extra member counts less."""
    m = members.astype(np.float64)
    return np.minimum(m, SIZE_KNEE) + SIZE_TAIL * np.maximum(m - SIZE_KNEE, 0.0)


def true_affinity(cat: Catalogue, pop: Population, g: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The latent log-affinity of groups g for products p: category taste, brand factors, price fit, quality."""
    n_cat = pop.taste.shape[1]
    share = pop.taste[g, cat.cat[p]].astype(np.float64)
    a = CATEGORY_WEIGHT * np.log(np.maximum(share * n_cat, np.exp(-5.0)))
    a += np.einsum("ij,ij->i", pop.factors[g], cat.factors[p], dtype=np.float64)
    z = cat.price_z[p]
    a -= pop.price_sensitivity[g] * (0.5 * (z - pop.price_level[g]) ** 2 + 0.3 * z)
    a += cat.quality[p]
    return a


def repurchase_factor(days_since: np.ndarray, category: np.ndarray) -> np.ndarray:
    """How a recent purchase of the same product by the group changes conversion (NaN days: never bought)."""
    cycle = _CYCLE[category]
    durable = np.isnan(cycle)
    bought = ~np.isnan(days_since)
    ratio = days_since / np.where(durable, 1.0, cycle)
    out = np.ones_like(days_since)
    out = np.where(bought & durable, 0.3, out)  # nobody needs a second air fryer this month
    out = np.where(bought & ~durable & (ratio < 0.5), 0.4, out)
    out = np.where(bought & ~durable & (ratio >= 0.8) & (ratio <= 1.6), 2.0, out)
    return out


class PushSampler:
    """Draws the product a seller pushes in a category: weighted toward commission and popularity."""

    def __init__(self, cat: Catalogue) -> None:
        weights = cat.commission_rate * np.sqrt(cat.popularity)
        self.order = np.argsort(cat.cat, kind="stable")
        self.cum = np.cumsum(weights[self.order])
        counts = np.bincount(cat.cat, minlength=len(CATEGORY_NAMES))
        ends = np.cumsum(counts)
        starts = ends - counts
        self.lo = np.where(starts > 0, self.cum[np.maximum(starts - 1, 0)], 0.0)
        self.hi = np.where(counts > 0, self.cum[np.maximum(ends - 1, 0)], self.lo)
        self.has = counts > 0

    def sample(self, category: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Product indices for categories `category` given uniforms `u`."""
        target = self.lo[category] + u * (self.hi[category] - self.lo[category])
        idx = np.searchsorted(self.cum, target, side="right")
        return self.order[np.clip(idx, 0, len(self.order) - 1)]


@dataclass
class BlockEvents:
    """Pushes and orders of one block, as arrays of global group / product indices and seconds in the window."""

    push_group: np.ndarray
    push_product: np.ndarray
    push_time: np.ndarray
    push_price: np.ndarray
    order_group: np.ndarray
    order_product: np.ndarray
    order_time: np.ndarray
    quantity: np.ndarray
    paid: np.ndarray
    commission: np.ndarray
    buyer: np.ndarray  # member number within the group
    refunded: np.ndarray


def _ring_write(bufs: list[np.ndarray], pos: np.ndarray, rows: np.ndarray, values: list[np.ndarray]) -> None:
    """Append `values` to the per-row ring buffers `bufs` (rows sorted ascending), advancing `pos`."""
    if len(rows) == 0:
        return
    first = np.searchsorted(rows, rows, side="left")
    rank = np.arange(len(rows)) - first
    slots = (pos[rows] + rank) % bufs[0].shape[1]
    for buf, vals in zip(bufs, values):
        buf[rows, slots] = vals
    np.add.at(pos, rows, 1)


def _days_since_bought(bought_p: np.ndarray, bought_day: np.ndarray, rows: np.ndarray, p: np.ndarray, today: int) -> np.ndarray:
    """Days since each (group row, product) was last bought, from the recent-purchase buffers; NaN if not."""
    match = bought_p[rows] == p[:, None]
    last = np.where(match, bought_day[rows], -1).max(axis=1)
    return np.where(last >= 0, today - last, np.nan).astype(np.float64)


def simulate_block(
    cat: Catalogue, pop: Population, sampler: PushSampler, g0: int, g1: int, days: int, weekday0: int,
    rng: np.random.Generator,
) -> BlockEvents:
    """Simulate groups g0..g1-1 over `days` days; weekday0 is the weekday (0 = Monday) of the first day."""
    nb = g1 - g0
    gl = np.arange(g0, g1)
    eff = effective_members(pop.member_count[gl]) / 100.0
    perceived_cdf = np.cumsum(pop.perceived[gl], axis=1)
    link_p = np.full((nb, LINK_SLOTS), -1, dtype=np.int64)
    link_pos = np.zeros(nb, dtype=np.int64)
    bought_p = np.full((nb, ORDER_SLOTS), -1, dtype=np.int64)
    bought_day = np.full((nb, ORDER_SLOTS), -1, dtype=np.int32)
    bought_pos = np.zeros(nb, dtype=np.int64)
    pushes: list[tuple[np.ndarray, ...]] = []
    orders: list[tuple[np.ndarray, ...]] = []

    for t in range(days):
        weekend = (weekday0 + t) % 7 >= 5
        alive = pop.created_day[gl] <= t
        n_push = rng.poisson(pop.push_rate[gl] * (1.15 if weekend else 1.0)) * alive
        rows = np.repeat(np.arange(nb), n_push)
        c = (perceived_cdf[rows] < rng.random(len(rows))[:, None]).sum(axis=1).clip(0, len(CATEGORY_NAMES) - 1)
        c = np.where(sampler.has[c], c, int(np.argmax(sampler.has)))
        p = sampler.sample(c, rng.random(len(rows)))
        usable = (cat.launch_day[p] <= t) & (cat.in_stock[p] | (t < days - 3))
        rows, p = rows[usable], p[usable]
        g = gl[rows]
        hour = np.searchsorted(_HOUR_CDF, rng.random(len(rows)))
        secs = t * DAY_S + hour * 3600 + rng.integers(0, 3600, len(rows))
        price = cat.price_on(p, np.full(len(p), t))
        pushes.append((g, p, secs, price))

        # Conversion of today's pushes.
        since = _days_since_bought(bought_p, bought_day, rows, p, t)
        recent_change = (cat.change_day[p] >= 0) & (t >= cat.change_day[p]) & (t - cat.change_day[p] < PRICE_CHANGE_DAYS)
        lam = (
            PUSH_BASE * pop.activity[g] * eff[rows] * np.exp(true_affinity(cat, pop, g, p))
            * repurchase_factor(since, cat.cat[p])
            * np.where(recent_change, PRICE_CHANGE_FACTOR, 1.0)
            * np.where(cat.coupon[p] > 0, 1.2, 1.0)
            * np.where(cat.presale[p], 0.7, 1.0)
            * np.where(t - cat.launch_day[p] < 7, 1.3, 1.0)  # novelty of a new launch
        )
        n_ord = rng.poisson(lam)
        src = np.repeat(np.arange(len(rows)), n_ord)
        # Most orders come within the hour, some that evening, a few over the next days.
        kind = rng.random(len(src))
        delay = np.where(kind < 0.7, rng.exponential(2400, len(src)),
                         np.where(kind < 0.95, rng.exponential(8 * 3600, len(src)), rng.uniform(DAY_S, 3 * DAY_S, len(src))))
        o_time = secs[src] + 60 + delay.astype(np.int64)
        o_rows, o_p = rows[src], p[src]

        _ring_write([link_p], link_pos, rows, [p])

        # Re-buys from old links: one remembered link per group-day may convert again.
        filled = np.minimum(link_pos, LINK_SLOTS)
        cand = np.flatnonzero(alive & (filled > 0))
        slot = (rng.random(len(cand)) * filled[cand]).astype(np.int64)
        rp = link_p[cand, slot]
        rg = gl[cand]
        r_since = _days_since_bought(bought_p, bought_day, cand, rp, t)
        r_lam = (REBUY_BASE * pop.activity[rg] * eff[cand] * np.exp(true_affinity(cat, pop, rg, rp))
                 * repurchase_factor(r_since, cat.cat[rp]) * (cat.in_stock[rp] | (t < days - 3)))
        n_re = rng.poisson(r_lam)
        r_src = np.repeat(np.arange(len(cand)), n_re)
        r_hour = np.searchsorted(_HOUR_CDF, rng.random(len(r_src)))
        r_time = t * DAY_S + r_hour * 3600 + rng.integers(0, 3600, len(r_src))

        all_rows = np.concatenate([o_rows, cand[r_src]])
        all_p = np.concatenate([o_p, rp[r_src]])
        all_time = np.concatenate([o_time, r_time])
        keep = all_time < days * DAY_S
        all_rows, all_p, all_time = all_rows[keep], all_p[keep], all_time[keep]
        sort = np.argsort(all_rows, kind="stable")
        all_rows, all_p, all_time = all_rows[sort], all_p[sort], all_time[sort]
        _ring_write([bought_p, bought_day], bought_pos, all_rows, [all_p, np.full(len(all_rows), t, dtype=np.int32)])
        orders.append((gl[all_rows], all_p, all_time))

    return _finish(cat, pop, pushes, orders, rng)


def _finish(cat: Catalogue, pop: Population, pushes: list[tuple[np.ndarray, ...]], orders: list[tuple[np.ndarray, ...]],
            rng: np.random.Generator) -> BlockEvents:
    """Concatenate the days and fill the order lines: quantity, paid, commission, buyer, refund."""
    pg, pp, pt, pr = (np.concatenate(x) for x in zip(*pushes))
    og, op, ot = (np.concatenate(x) for x in zip(*orders))
    n = len(og)
    quantity = rng.choice([1, 2, 3], size=n, p=[0.82, 0.13, 0.05])
    unit = cat.price_on(op, ot // DAY_S)
    paid = np.round(np.maximum(unit * quantity - cat.coupon[op], 0.01), 2)
    commission = np.round(paid * cat.commission_rate[op], 2)
    buyer = np.floor(rng.random(n) * pop.member_count[og]).astype(np.int64)
    refunded = rng.random(n) < 0.03
    return BlockEvents(pg, pp, pt, pr, og, op, ot, quantity, paid, commission, buyer, refunded)
