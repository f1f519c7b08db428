"""How far can any model get on the sample world's held-out orders? Ceilings from the generator's own truth.

Logged orders in the sample world follow the sellers' pushes, so the chance that group g orders product p
in the test week is P(the seller pushes p to g) × P(order | pushed). Ranking by the generator's true
values of both terms is the best possible NDCG@10; replacing either by what can be estimated from the
training data shows which part limits a learned model:
  true push × true affinity        the information limit
  estimated push × true affinity   a model that recovered every latent taste exactly
  true push × affinity without the latent brand factors (taste, price fit, quality only)
  estimated push alone             the seller's own habits (the exposure source, no conversion term)
beside tuned-default ALS, the strongest baseline of the harness.

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/sample_ceiling.py [--groups 2000 --products 2000 --days 60]
"""

from __future__ import annotations

import argparse

import numpy as np

from features.interactions import build_train_data
from features.sample.simulate import true_affinity
from features.sample_world import _Builder, generate
from recsys import metrics as M
from contracts.config import Config
from cli.commands import add_sample_world_options
from recsys.candidates.registry import make_source
from training.evaluate import Frames, eval_groups, relevance, time_split


def ndcg10(scores: np.ndarray, rel: object) -> float:
    """Mean NDCG@10 of ranking every product by `scores` (rows = evaluated groups)."""
    ids = np.argsort(-scores, axis=1)[:, :10]
    return float(M.ndcg_at_k(ids, rel, 10).mean())  # type: ignore[arg-type]


def main() -> None:
    """Generate the world, split off the last 7 days, print the ceilings beside ALS."""
    args = add_sample_world_options(argparse.ArgumentParser()).parse_args()
    cfg = Config()
    world = generate(args.seed, args.groups, args.products, args.days)
    # The latent push policy is not part of the written truth tables; rebuild the same static world to read it.
    latent = _Builder(args.seed, args.groups, args.products, args.days, None)
    train, test, cutoff = time_split(Frames.of(world), 7)
    data = build_train_data(train.products, train.sellers, train.groups, train.pushes, train.orders, cfg.features, now=cutoff)
    rel_all = relevance(test.orders, data, False)
    rows = eval_groups(rel_all, None, cfg.candidates.seed)
    rel = rel_all[rows]
    g = np.array([int(x[1:]) for x in np.asarray(data.groups.ids)[rows]])
    p = np.array([int(x[1:]) for x in np.asarray(data.items.ids)])
    cat, pop = latent.cat, latent.pop
    weight = cat.commission_rate * np.sqrt(cat.popularity)
    per_cat = np.bincount(cat.cat, weights=weight, minlength=pop.perceived.shape[1])
    c = cat.cat[p]
    push_true = np.log(pop.perceived[g][:, c] * (weight[p] / per_cat[c])[None, :] + 1e-12)
    gg, pp = np.repeat(g, len(p)), np.tile(p, len(g))
    affinity = true_affinity(cat, pop, gg, pp).reshape(len(g), len(p))
    brand = np.einsum("gk,pk->gp", pop.factors[g], cat.factors[p])
    push_est = np.log(np.maximum(make_source("exposure", {"conversion_weight": 0.0, "group_weight": 0.0}, cfg)
                                 .fit(data).score(rows), 1e-12))
    als = make_source("als", {"factors": 64, "regularization": 10.0}, cfg).fit(data).score(rows)
    figures = {
        "true push × true affinity": ndcg10(push_true + affinity, rel),
        "estimated push × true affinity": ndcg10(push_est + affinity, rel),
        "true push × affinity without brand factors": ndcg10(push_true + affinity - brand, rel),
        "estimated push alone": ndcg10(push_est, rel),
        "ALS (64 factors, reg 10)": ndcg10(np.where(np.isfinite(als), als, -1e9), rel),
    }
    base = figures["ALS (64 factors, reg 10)"]
    print(f"sample world {args.groups}×{args.products}×{args.days}d, last 7 days held out, {len(rows)} groups with orders")
    for name, value in figures.items():
        print(f"{name:<45} NDCG@10 {value:.4f}  × {value / base:.2f} ALS")


if __name__ == "__main__":
    main()
