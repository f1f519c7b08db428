"""Benchmark: the daily job's offline quality, run time and memory.

1. Sample world (default 2000 groups × 2000 products × 60 days), last 7 days held out: the full pipeline
   (`ranker`: candidates re-ranked by the seller's adoption × the LightGBM p_conv, the expected orders of a pick;
   `ranker_conversion`: p_conv alone; `ranker_ops`: the default ops blend adoption × p_conv × commission × rating²)
   against the candidate-only blend and every baseline, for each way of
   building ranker examples (`pushes`: P(order | shown); `exposure`: pushes plus unshown candidates with
   an exposed flag; `candidates`: a past snapshot's candidates labelled by an order in the next 7 days).
   Targets checked and printed, with p_conv judged on the test week's pushes and, against the
   generator's true affinity, the within-group rank correlation. `--oracle` ranks by that true affinity.
2. The whole `run_daily` job, each size in a fresh process: wall and CPU time, peak memory, artifact
   size, and the throughput of candidate generation + ranker scoring and of the picks (groups/s).
   The first size runs with the evaluation step (unless --no-eval), larger ones without.
3. Ta Feng (`--tafeng`, margin = price − cost as commission, neighbourhood groups = area × age): HR@10
   against expected margin@10 as the earnings weight moves, saved as a PNG.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/daily_job.py --modes pushes,exposure,candidates --oracle
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/daily_job.py --skip-world --modes pushes --job --sizes 20000x5000
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/daily_job.py --skip-world --modes pushes --tafeng
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from recsys.candidates.base import Recommender  # noqa: E402
from contracts.config import BlendWeights, Config  # noqa: E402
from training.daily import evaluate_pipeline, headline, run_daily  # noqa: E402

TAFENG = ROOT.parent / "shared" / "data" / "tafeng" / "ta_feng.csv.zip"


def mode_config(mode: str) -> Config:
    """Configuration for one way of building ranker examples."""
    cfg = Config()
    cfg.ranker.examples = mode
    if mode == "candidates":
        cfg.ranker.label_window_days = 7  # matches the 7-day test window
    return cfg


def check_targets(ev: dict) -> list[str]:
    """The issue's targets, each with PASS / FAIL."""
    m = ev["metrics"]
    others = {k: v["ndcg@10"] for k, v in m.items() if k not in ("ranker", "ranker_ops", "ranker_conversion")}
    best = max(others, key=others.get)
    rule = m["rating_commission"]
    ops = m["ranker_ops"]
    lines = [
        f"{'PASS' if m['ranker']['ndcg@10'] > others[best] else 'FAIL'} ndcg@10 ranker {m['ranker']['ndcg@10']:.4f} "
        f"> best other {best} {others[best]:.4f}",
        f"{'PASS' if ops['commission_realised@10'] > rule['commission_realised@10'] else 'FAIL'} commission@10 ranker_ops "
        f"{ops['commission_realised@10']:.3f} > rating×commission {rule['commission_realised@10']:.3f}",
        f"{'PASS' if ops['recall@10'] >= 1.5 * rule['recall@10'] else 'FAIL'} recall@10 ranker_ops {ops['recall@10']:.4f} "
        f">= 1.5 × rating×commission {rule['recall@10']:.4f}",
    ]
    h = ev.get("held_out_pushes")
    if h:
        lines.append(f"{'PASS' if h['ece'] <= 0.02 else 'FAIL'} p_conv on the test week's pushes (order within "
                     f"{h['label_window_days']} days, n {h['n']:,}): ECE {h['ece']:.4f} <= 0.02; AUC {h['auc']:.3f}, "
                     f"log loss {h['log_loss']:.4f}, mean p {h['mean_p']:.4f} vs rate {h['rate']:.4f}")
    r = ev["ranker"]
    lines.append(f"{'PASS' if r['calibrated']['ece'] <= 0.02 else 'FAIL'} ranker ECE {r['calibrated']['ece']:.4f} <= 0.02 "
                 f"(raw {r['uncalibrated']['ece']:.4f}; AUC {r['calibrated']['auc']:.3f} vs popularity "
                 f"{r['popularity_rate']['auc']:.3f}; log loss {r['calibrated']['log_loss']:.4f} vs "
                 f"{r['popularity_rate']['log_loss']:.4f})")
    return lines


def truth_agreement(state: Any, world: Any) -> str:
    """Within-group Spearman correlation, over today's candidates, between the generator's true affinity (its
    P(order | shown) up to per-group factors) and p_conv, and the same for the ALS score: who recovers conversion."""
    c = state.candidates[["group_id", "product_id", "p_conv"]].assign(als=state.features["score__als"].to_numpy())
    c["truth"] = world.truth.affinity(c["group_id"].to_numpy(dtype=object), c["product_id"].to_numpy(dtype=object))
    ranks = c.groupby("group_id")[["p_conv", "als", "truth"]].rank()
    ranks["group_id"] = c["group_id"].to_numpy()
    corr = {col: float(ranks.groupby("group_id")[[col, "truth"]].corr().xs(col, level=1)["truth"].mean()) for col in ("p_conv", "als")}
    return (f"within-group Spearman with the true affinity over the candidates: p_conv {corr['p_conv']:.3f}, "
            f"ALS score {corr['als']:.3f}")


def world_quality(groups: int, products: int, days: int, modes: list[str]) -> None:
    """Section 1."""
    from features.sample_world import generate

    world = generate(seed=7, groups=groups, products=products, days=days)
    for mode in modes:
        t0 = time.perf_counter()
        models: dict[str, Any] = {}
        ev = evaluate_pipeline(world, mode_config(mode), 7, log=lambda _: None, models_out=models)
        print(f"\n== sample world {groups}×{products}×{days}d, last 7 days held out, ranker examples: {mode} "
              f"({time.perf_counter() - t0:.0f}s)")
        for line in headline(ev) + check_targets(ev):
            print(line)
        print(truth_agreement(models["ranker"].state_, world))


class TrueAffinity(Recommender):
    """Oracle of P(order | shown) in the sample world: the generator's own log-affinity of group and product
    (the conversion model's main term), over the union candidates or, with `union=False`, every product."""

    name = "oracle"

    def __init__(self, world: Any, cfg: Config, union: bool = True) -> None:
        self.world = world
        self.cfg = cfg
        self.union = union

    def params(self) -> dict[str, Any]:
        """Whether the oracle is restricted to the union candidates."""
        return {"union": self.union}

    def _fit(self, data: Any) -> None:
        groups, items = data.groups.ids, data.items.ids
        pairs_g = np.repeat(np.asarray(groups, dtype=object), len(items))
        pairs_i = np.tile(np.asarray(items, dtype=object), len(groups))
        self.scores_ = self.world.truth.affinity(pairs_g, pairs_i).astype(np.float32).reshape(len(groups), len(items))
        if self.union:
            from recsys.candidates.union import union_candidates
            from training.examples import fit_sources

            u = union_candidates(fit_sources(data, self.cfg), data, np.arange(data.n_groups),
                                 self.cfg.candidates.per_source, self.cfg.candidates.union_size)
            keep = np.zeros(self.scores_.shape, dtype=bool)
            keep[data.groups.index_of(u["group_id"].to_numpy(dtype=object)), data.items.index_of(u["product_id"].to_numpy(dtype=object))] = True
            self.scores_[~keep] = -np.inf

    def score(self, group_idx: np.ndarray) -> np.ndarray:
        """The true affinity rows of these groups."""
        return self.scores_[np.asarray(group_idx)]


def oracle_quality(groups: int, products: int, days: int) -> None:
    """Section 1b: how far ranking by the true P(order | shown) gets on logged orders (the harness's NDCG@10)."""
    from features.sample_world import generate
    from recsys.candidates.registry import make_source
    from training.evaluate import EvalOptions, Frames, evaluate_models, time_split

    world = generate(seed=7, groups=groups, products=products, days=days)
    cfg = Config()
    train, test, cutoff = time_split(Frames.of(world), 7)
    models = {"als": make_source("als", None, cfg), "oracle_shown_union": TrueAffinity(world, cfg),
              "oracle_shown_all": TrueAffinity(world, cfg, union=False)}
    ev = evaluate_models(train, test, models, cfg, EvalOptions(ks=(10,), test_days=7), model_name="oracle_shown_union",
                         cutoff=cutoff)
    print(f"\n== sample world {groups}×{products}×{days}d: ranking by the generator's true affinity (P(order | shown))")
    for name, v in ev.metrics.items():
        print(f"{name:<20} ndcg@10 {v['ndcg@10']:.4f}  recall@10 {v['recall@10']:.4f}  hr@10 {v['hr@10']:.4f}")


def one_job(groups: int, products: int, days: int, mode: str, evaluate: bool) -> dict[str, Any]:
    """Run the whole daily job once in this process; wall and CPU seconds, peak RSS, artifact size, throughput."""
    from features.sample_world import generate

    world = generate(seed=7, groups=groups, products=products, days=days)
    cpu0 = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = run_daily(world, mode_config(mode), tmp, evaluate=evaluate)
        wall = time.perf_counter() - t0
        sizes = {f.name: f.stat().st_size for f in result.artifact.rglob("*") if f.is_file()}
    t = result.timings
    scoring = t["blocks"]  # candidates, ranker scoring, components and picks, block by block
    return {
        "size": f"{groups}x{products}x{days}d", "mode": mode, "evaluate": evaluate, "wall_s": round(wall, 1),
        "cpu_s": round(time.process_time() - cpu0, 1), "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "artifact_mib": round(sum(sizes.values()) / 2**20, 1),
        "candidate_features_mib": round(sizes.get("candidate_features.parquet", 0) / 2**20, 1),
        "candidates_and_scoring_groups_per_s": round(groups / scoring),
        "steps_s": {k: round(v, 1) for k, v in t.items()},
    }


def job_timing(sizes: list[tuple[int, int]], days: int, mode: str, evaluate_first: bool) -> None:
    """Section 2: each size in a fresh process (so peak RSS is that run's own); the first size with evaluation."""
    import json
    import subprocess

    for n, (groups, products) in enumerate(sizes):
        evaluate = evaluate_first and n == 0
        cmd = [sys.executable, __file__, "--one-job", f"{groups}x{products}", "--days", str(days), "--modes", mode]
        if evaluate:
            cmd.append("--evaluate")
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode or not lines:
            print(f"\n== daily job {groups}×{products}×{days}d failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
            continue
        r = json.loads(lines[-1])
        print(f"\n== daily job {r['size']} ({mode}{', with evaluation' if evaluate else ''}): {r['wall_s']}s wall, "
              f"{r['cpu_s']}s CPU, peak RSS {r['peak_rss_mib']} MiB, artifact {r['artifact_mib']} MiB "
              f"(candidate_features {r['candidate_features_mib']} MiB)\n"
              f"   candidates + ranker scoring + picks (blocks) {r['candidates_and_scoring_groups_per_s']:,} groups/s\n   steps: "
              + ", ".join(f"{k} {v}s" for k, v in r["steps_s"].items() if not k.startswith("total")))


def expected_margin(model: Any, k: int) -> float:
    """Mean over groups of Σ p_conv × commission over the model's top k (what the blend expects to earn)."""
    c = model.state_.candidates
    groups = np.arange(model.n_groups_)
    ids, _ = model.recommend(groups, k)
    value = pd.Series(c["p_conv"].to_numpy() * c["commission_yuan"].to_numpy(),
                      index=c["g"].to_numpy().astype(np.int64) * model.n_items_ + c["i"].to_numpy())
    keys = np.repeat(groups, k) * model.n_items_ + ids.ravel()
    found = value.reindex(np.where(ids.ravel() >= 0, keys, -1)).fillna(0.0).to_numpy()
    return float(found.reshape(len(groups), k).sum(axis=1).mean())


def tafeng_curve(out: Path, mode: str) -> None:
    """Section 3: one fitted pipeline, re-blended with earnings weights 0..3."""
    from features.adapter import load_tafeng
    from training.blocks import PipelineRecommender
    from training.evaluate import EvalOptions, Frames, evaluate_models, time_split

    frames = Frames.of(load_tafeng(TAFENG, level="area_age"))
    train, test, cutoff = time_split(frames, 14)
    cfg = mode_config(mode)
    cfg.ranker.example_days = 28
    steps = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)
    first = PipelineRecommender(train, cfg, BlendWeights(earnings=0.0, rating=0.0, diversity=0.0), log=lambda _: None)
    models = {"w=0": first}
    for w in steps[1:]:
        models[f"w={w:g}"] = PipelineRecommender(train, cfg, BlendWeights(earnings=w, rating=0.0, diversity=0.0), share=first)
    ev = evaluate_models(train, test, models, cfg, EvalOptions(ks=(10,), test_days=14), model_name="w=0", cutoff=cutoff)
    hr = [ev.metrics[f"w={w:g}"]["hr@10"] for w in steps]
    margin = [ev.metrics[f"w={w:g}"]["commission_realised@10"] for w in steps]
    expected = [expected_margin(models[f"w={w:g}"], 10) for w in steps]
    print("\n== Ta Feng (area × age groups), last 14 days held out, earnings weight → HR@10, margin@10")
    for w, h, e, m in zip(steps, hr, expected, margin):
        print(f"earnings {w:>4g}: HR@10 {h:.4f}, expected margin@10 {e:.2f} (Σ p_conv × margin), realised margin@10 {m:.2f}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, values, label in ((axes[0], expected, "expected margin@10: Σ p_conv × margin (TWD)"),
                              (axes[1], margin, "realised margin@10 (TWD)")):
        ax.plot(hr, values, marker="o")
        for w, h, v in zip(steps, hr, values):
            ax.annotate(f"{w:g}", (h, v), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel("HR@10 (held-out 14 days)")
        ax.set_ylabel(label)
    fig.suptitle("Ta Feng: earnings weight 0 → 3 (labels), margin = price − cost")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"saved {out}")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=2000)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--modes", default="candidates,pushes", help="ranker example modes to compare")
    parser.add_argument("--skip-world", action="store_true")
    parser.add_argument("--oracle", action="store_true", help="rank by the true P(order | shown) of the sample world")
    parser.add_argument("--job", action="store_true", help="time the whole job (section 2)")
    parser.add_argument("--sizes", default="", help="extra sizes for section 2, e.g. 5000x3000,20000x5000")
    parser.add_argument("--tafeng", action="store_true", help="section 3 (needs ../shared/data/tafeng)")
    parser.add_argument("--no-eval", action="store_true", help="section 2 without the evaluation step")
    parser.add_argument("--one-job", default="", help=argparse.SUPPRESS)
    parser.add_argument("--evaluate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--png", type=Path, default=ROOT / "reports" / "tafeng_earnings_tradeoff.png")
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    if args.one_job:
        import json

        groups, products = (int(x) for x in args.one_job.split("x"))
        print(json.dumps(one_job(groups, products, args.days, modes[0], args.evaluate)))
        return 0
    if not args.skip_world:
        world_quality(args.groups, args.products, args.days, modes)
    if args.oracle:
        oracle_quality(args.groups, args.products, args.days)
    if args.job or args.sizes:
        sizes = [(args.groups, args.products)] + [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",") if s]
        job_timing(sizes, args.days, modes[0], not args.no_eval)
    if args.tafeng:
        if not TAFENG.exists():
            print(f"{TAFENG} is absent: skipping Ta Feng")
        else:
            tafeng_curve(args.png, modes[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
