"""Real order data that is not ours, evaluated as a new user would: `quanxuan adapt`, then `quanxuan evaluate`'s path.

Prints, per dataset, the served model (the ranker + blend `quanxuan train` builds), the tuned candidate union
("blend") and every tuned baseline side by side from one run, per test pair (pHR@10, pNDCG@10) and per group, and
the ratio served / tuned EASE per test pair.

- Ta Feng as a log WITHOUT time: lines sorted by customer then date, the date column dropped, each customer's last
  line (her last purchase) held out as the test; both files adapted with `quanxuan adapt` (no --time: the line
  number is the clock, recorded as "line_order" in clock.json); new pairs only (an item the customer bought before
  is not a test pair). Validation is carved the same way (each training customer's last line).
- Beibei group buys: tune.txt trains (with invalid.txt's failed launches as pushes), test.txt tests, new pairs only;
  there are no timestamps (line-order clock); tune.txt holds one success line per initiator, so validation and the
  ranker's holdout take that line from initiators whose failed launches (pushes) remain as their history.
- The sample world (real clock, last 7 days as the test), with --sample.

The default run subsamples customers / initiators with a seed (said in the output) to stay within ~10 minutes on two
cores, and searches smaller grids than the defaults for the slow sources (every baseline is still tuned).

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/real_data.py [--tafeng-groups 1500] [--beibei-groups 1500]
     [--sample] [--skip-beibei] [--skip-tafeng] [--ab tifu] [--out reports/real_data]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import pandas as pd

from contracts.config import Config
from cli.main import main as quanxuan
from training.evaluate import SERVED_CONVERSION, EvalOptions, EvalResult, load_frames, run_evaluation
from training.report import table, write_report

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TAFENG = SHARED / "tafeng" / "ta_feng.csv.zip"
BEIBEI = SHARED / "beibei_groupbuy"
# Smaller grids than the defaults where a fit is slow on two shared cores; every baseline is still tuned.
GRIDS = {
    "als": {"factors": [64, 128], "regularization": [0.05, 1.0], "iterations": [10]},
    "ease": {"lam": [50.0, 250.0, 1000.0]},
    "item_knn_bm25": {"neighbours": [100, 400], "k1": [1.2, 100.0]},
}
BASELINES = ("random", "popular", "segment_popular", "own_top", "item_knn_cosine", "item_knn_bm25", "als", "ease",
             "tifu_knn")  # TIFU-KNN only on a real clock (the evaluation leaves it out otherwise)
HEADLINE = ("pair_hr@10", "pair_ndcg@10", "hr@10", "ndcg@10")
TAFENG_FLAGS = ["--user", "CUSTOMER_ID", "--item", "PRODUCT_ID", "--quantity", "AMOUNT", "--price", "SALES_PRICE",
                "--cost", "ASSET", "--line-totals", "--category", "PRODUCT_SUBCLASS"]


def sample_ids(ids: np.ndarray, n: int | None, seed: int) -> set[str]:
    """A seeded sample of `n` distinct ids (all of them when n is None or larger)."""
    unique = np.unique(ids)
    if n is None or n >= unique.size:
        return set(unique)
    return set(np.random.default_rng(seed).choice(unique, n, replace=False))


def tafeng_without_time(work: Path, groups: int | None, seed: int) -> tuple[Path, Path, str]:
    """Ta Feng as an untimed log: (train folder, test folder, what was sampled), both adapted with `quanxuan adapt`."""
    raw = pd.read_csv(TAFENG, dtype=str)
    raw["_date"] = pd.to_datetime(raw["TRANSACTION_DT"], format="%m/%d/%Y")
    raw["_line"] = np.arange(len(raw))
    keep = sample_ids(raw["CUSTOMER_ID"].to_numpy(), groups, seed)
    raw = raw[raw["CUSTOMER_ID"].isin(keep)]
    log = raw.sort_values(["CUSTOMER_ID", "_date", "_line"], kind="stable").drop(columns=["TRANSACTION_DT", "_date", "_line"])
    last = ~log["CUSTOMER_ID"].duplicated(keep="last").to_numpy()
    work.mkdir(parents=True, exist_ok=True)
    log.loc[~last].to_csv(work / "tafeng_train.csv", index=False, quoting=csv.QUOTE_MINIMAL)
    log.loc[last].to_csv(work / "tafeng_test.csv", index=False, quoting=csv.QUOTE_MINIMAL)
    for part in ("train", "test"):
        code = quanxuan(["adapt", str(work / f"tafeng_{part}.csv"), str(work / f"tafeng_{part}")] + TAFENG_FLAGS
                        + ["--id-prefix", f"{part}:"])
        if code != 0:
            raise SystemExit(f"quanxuan adapt failed on Ta Feng {part} (exit {code})")
    sampled = f"{len(keep):,} of 32,266 customers (seed {seed})" if groups else "all 32,266 customers"
    return work / "tafeng_train", work / "tafeng_test", sampled


def beibei_folders(work: Path, groups: int | None, seed: int) -> tuple[Path, Path, str]:
    """Beibei: train = tune.txt (+ invalid.txt as pushes), test = test.txt, adapted with `quanxuan adapt` presets."""
    keep = None
    if groups:
        first = pd.read_csv(BEIBEI / "test.txt", sep="\t", header=None, usecols=[0], dtype=str)[0].to_numpy()
        keep = sample_ids(first, groups, seed)
    work.mkdir(parents=True, exist_ok=True)
    for name in ("tune", "invalid", "test"):
        lines = (BEIBEI / f"{name}.txt").read_text("utf-8").splitlines()
        if keep is not None:
            lines = [line for line in lines if line.split("\t", 1)[0] in keep]
        (work / f"beibei_{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    runs = [("tune", "train", "beibei-success", []), ("invalid", "train", "beibei-failed", ["--append"]),
            ("test", "test", "beibei-success", [])]
    for name, folder, preset, extra in runs:
        code = quanxuan(["adapt", str(work / f"beibei_{name}.txt"), str(work / f"beibei_{folder}"), "--preset", preset,
                         "--id-prefix", f"{name}:"] + extra)
        if code != 0:
            raise SystemExit(f"quanxuan adapt failed on Beibei {name} (exit {code})")
    sampled = f"{len(keep):,} test initiators (seed {seed}) and their lines" if keep is not None else "every initiator"
    return work / "beibei_train", work / "beibei_test", sampled


def evaluate(train: Path | str, test: Path | str | None, name: str, out: Path, options: EvalOptions,
             cfg: Config | None = None) -> EvalResult:
    """`quanxuan evaluate TRAIN --test TEST`'s own path (load_frames, run_evaluation, the report)."""
    if test is None:
        from training.evaluate import Frames, split_test

        frames, _ = load_frames(str(train))
        tr, te, cutoff = split_test(Frames.of(frames), options.test_days, None, options.seed)
    else:
        (tr, _), (te, _), cutoff = load_frames(str(train)), load_frames(str(test)), None
    result = run_evaluation(tr, te, cfg or Config(), options, dataset=name, cutoff=cutoff, log=lambda m: print(f"  {m}", flush=True))
    write_report(result, out)
    return result


def _ratio(a: float, b: float) -> str:
    return f"×{a / b:.2f}" if b > 0 else "×inf"


def summary(result: EvalResult, note: str, seconds: float) -> str:
    """The side-by-side table, then served / served by p_conv alone / union / tuned EASE / best baseline per test pair
    and per group, and the target ratios served / tuned EASE and served / best baseline."""
    m = result.metrics
    lines = [f"== {result.dataset}: {note}; clock {result.split['clock']}, test shape "
             f"{result.split['test_shape']['kind']}, validation {result.split['validation_shape']['kind']} ({seconds:.0f}s)",
             table(result, "pair_hr@10")]
    rows = [("served", result.served_model), ("served, p_conv only", SERVED_CONVERSION if SERVED_CONVERSION in m else None),
            ("union (tuned blend)", "blend" if "blend" in m else None), ("tuned EASE", "ease" if "ease" in m else None)]
    best = {metric: result.best_baseline(metric) for metric in HEADLINE}
    lines.append(f"{'':<22}" + "".join(f"{metric:>14}" for metric in HEADLINE))
    for label, name in rows:
        if name is not None:
            lines.append(f"{label:<22}" + "".join(f"{m[name][metric]:>14.4f}" for metric in HEADLINE))
    lines.append(f"{'best baseline':<22}" + "".join(f"{best[metric][1]:>8.4f} {best[metric][0][:5]:<5}" for metric in HEADLINE))
    for label, name in rows[:2]:
        if name is None or "ease" not in m:
            continue
        lines.append(f"{label:<22}" + "".join(f"{_ratio(m[name][metric], m['ease'][metric]) + ' EASE':>14}" for metric in HEADLINE))
        lines.append(f"{'':<22}" + "".join(f"{_ratio(m[name][metric], best[metric][1]) + ' best':>14}" for metric in HEADLINE))
    if not result.served_model:
        lines.append(f"served model not evaluated: {result.split.get('not_evaluated', {})}")
    return "\n".join(lines)


# Side-by-side designs (--ab NAME): each variant is (label, CandidateConfig/RankerConfig updates, EvalOptions updates),
# every variant evaluated on the same sampled data in one run.
VARIANTS: dict[str, list[tuple[str, dict[str, dict], dict]]] = {
    "default": [("defaults", {}, {})],
    # TIFU-KNN on a line-order clock (Ta Feng, Beibei) and in the sample world's blend (real clock).
    "tifu": [("without TIFU-KNN", {"candidates": {"line_order_sources": ()}}, {"drop": ("tifu_knn",)}),
             ("with TIFU-KNN", {"candidates": {"line_order_sources": ("tifu_knn",)}}, {})],
    # The holdout ranker's negatives: a sample of 50 of a group's union candidates, or the whole union (the very
    # distribution the served list is ranked from).
    "negatives": [("50 negatives", {"ranker": {"candidate_negatives": 50}}, {}),
                  ("whole union", {"ranker": {"candidate_negatives": 10000}}, {})],
}


def variant(label: str, updates: dict[str, dict], option_updates: dict, options: EvalOptions) -> tuple[Config, EvalOptions]:
    """The configuration and options of one side-by-side variant."""
    from dataclasses import replace

    cfg = Config()
    cfg = cfg.model_copy(update={section: getattr(cfg, section).model_copy(update=fields) for section, fields in updates.items()})
    extra = dict(option_updates)
    drop = set(extra.pop("drop", ()))
    if drop:
        extra["blend_sources"] = tuple(n for n in options.blend_sources if n not in drop)
    return cfg, replace(options, **extra)


def run_variants(name: str, train: Path | str, test: Path | str | None, dataset: str, out: Path, options: EvalOptions,
                 note: str, printed: list[str]) -> None:
    """Evaluate every variant of `name` on the same data, printing each summary."""
    for label, updates, option_updates in VARIANTS[name]:
        t0 = time.perf_counter()
        cfg, opts = variant(label, updates, option_updates, options)
        title = dataset if len(VARIANTS[name]) == 1 else f"{dataset} [{label}]"
        slug = out.name if len(VARIANTS[name]) == 1 else f"{out.name}_{label.replace(' ', '_').replace('-', '')}"
        try:
            result = evaluate(train, test, title, out.parent / slug, opts, cfg)
            printed.append(summary(result, note, time.perf_counter() - t0))
        except ValueError as err:
            printed.append(f"== {title}: {note}; not evaluated: {err}")
        print(printed[-1], flush=True)


def main() -> None:
    """Adapt and evaluate each dataset, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tafeng-groups", type=int, default=1500, help="customers sampled (0 = all)")
    parser.add_argument("--beibei-groups", type=int, default=1500, help="test initiators sampled (0 = all)")
    parser.add_argument("--skip-beibei", action="store_true")
    parser.add_argument("--skip-tafeng", action="store_true")
    parser.add_argument("--ab", choices=sorted(VARIANTS), default="default", help="side-by-side designs in one run")
    parser.add_argument("--sample", action="store_true", help="also the sample world (real clock)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default="reports/real_data")
    args = parser.parse_args()
    out = Path(args.out)
    options = EvalOptions(new_pairs_only=True, tune_metric="ndcg@10", validation_days=None, grids=GRIDS,
                          baselines=BASELINES, served=True, seed=args.seed)
    printed: list[str] = []
    if TAFENG.exists() and not args.skip_tafeng:
        train, test, note = tafeng_without_time(out / "data", args.tafeng_groups or None, args.seed)
        run_variants(args.ab, train, test, "Ta Feng without time", out / "tafeng_no_time", options, note, printed)
    elif not TAFENG.exists():
        print(f"Ta Feng not found at {TAFENG}: skipped")
    if not args.skip_beibei and BEIBEI.exists():
        train, test, note = beibei_folders(out / "data", args.beibei_groups or None, args.seed)
        run_variants(args.ab, train, test, "Beibei group buys", out / "beibei", options, note, printed)
    if args.sample:
        run_variants(args.ab, "sample", None, "sample world", out / "sample", EvalOptions(served=True, seed=args.seed),
                     "2000 groups × 2000 products × 60 days", printed)
    print("\n\n".join(printed))


if __name__ == "__main__":
    main()
