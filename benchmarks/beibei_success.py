"""Benchmark: does a Beibei group buy succeed? The conversion ranker's machinery on real social e-commerce data.

Data (../shared/data/beibei_groupbuy, read only): lines `initiator item [participants…]`; tune.txt and
test.txt hold successful group buys (someone joined), invalid.txt failed ones (nobody joined).
There are no timestamps, so line order stands in for time, as follows:

- history (features only): tune.txt (successes; each valid initiator's earlier leave-one-out record)
  + the first half of invalid.txt (failures);
- examples: test.txt (label 1; each valid initiator's later record) + the second half of invalid.txt
  (label 0), each given a pseudo time from its position in its file (0..30 days);
- the ranker (`recsys.ranker.fit_and_evaluate`) trains on the earliest examples, early-stops and
  calibrates on the next `validation_days/2`, and is scored on the last `validation_days/2`.

Features come from the past only: the history's item launches, successes, smoothed success rate and joiners;
the initiator's launches, successes, smoothed success rate, times she joined others and distinct
joiners reached; whether she launched the item before; and, over the examples strictly earlier in
pseudo time, the item's count and smoothed success rate (not the initiator's: see the caveat). Baselines on the same test rows: item
popularity (launches in history), initiator history (her smoothed success rate) and the per-item
success rate of the training examples.

Caveat: by construction every valid initiator has a success in tune.txt, while initiators who only
ever failed do not, so initiator history is unusually strong here; and test.txt holds exactly one
success per initiator, so her earlier examples would give the label away (left out). The figures say how well the
machinery uses such signals, not what a live system would reach.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/beibei_success.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recsys.calibration import probability_metrics  # noqa: E402
from contracts.config import RankerConfig  # noqa: E402
from recsys.ranker import LABEL, TIME, fit_and_evaluate, time_split  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "beibei_groupbuy"
PSEUDO_DAYS = 30.0


def read_lines(path: Path) -> pd.DataFrame:
    """initiator, item, n_participants, participants (list), pos (0..1 position in the file)."""
    initiators, items, participants = [], [], []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) < 2:
                continue
            initiators.append(parts[0])
            items.append(parts[1])
            participants.append(parts[2:])
    n = len(initiators)
    return pd.DataFrame({
        "group_id": initiators, "product_id": items, "participants": participants,
        "n_participants": [len(p) for p in participants], "pos": np.arange(n) / max(n - 1, 1),
    })


def history_features(history: pd.DataFrame, examples: pd.DataFrame, prior_strength: float = 5.0) -> pd.DataFrame:
    """Join item, initiator and pair statistics of the history onto the examples (missing = never seen)."""
    success = (history["n_participants"] > 0).astype(float)
    h = history.assign(success=success)
    rate = float(success.mean())
    item = h.groupby("product_id").agg(item_launches=("success", "size"), item_successes=("success", "sum"),
                                        item_joiners=("n_participants", "sum"))
    item["item_success_rate"] = (item["item_successes"] + prior_strength * rate) / (item["item_launches"] + prior_strength)
    init = h.groupby("group_id").agg(init_launches=("success", "size"), init_successes=("success", "sum"))
    init["init_success_rate"] = (init["init_successes"] + prior_strength * rate) / (init["init_launches"] + prior_strength)
    joined = h[["group_id", "participants"]].explode("participants").dropna()
    init["init_reach"] = joined.groupby("group_id")["participants"].nunique()
    as_joiner = joined["participants"].value_counts()
    pair = h.groupby(["group_id", "product_id"]).agg(pair_launches=("success", "size"), pair_successes=("success", "sum"))
    out = examples.join(item, on="product_id").join(init, on="group_id").join(pair, on=["group_id", "product_id"])
    out["init_joined_others"] = out["group_id"].map(as_joiner)
    for col in ("item_launches", "item_successes", "item_joiners", "init_launches", "init_successes", "init_reach",
                "pair_launches", "pair_successes", "init_joined_others"):
        out[col] = out[col].fillna(0.0)
    # Unseen items and initiators keep NaN rates: LightGBM learns what "unknown" means.
    return out


def running_features(examples: pd.DataFrame, prior_strength: float = 5.0) -> pd.DataFrame:
    """Per item: examples and successes strictly earlier in (pseudo) time, and their rate.

    Rows must be sorted by time; each row sees only rows before it, as a live system would.
    """
    out = examples.copy()
    y = out[LABEL].astype(float)
    rate = float(y.mean())
    # Items only: test.txt holds exactly one success per initiator, so an initiator's earlier examples
    # would reveal the label (an earlier success means this one is a failure), a leave-one-out artefact.
    for key, name in (("product_id", "item"),):
        grouped = y.groupby(out[key])
        seen = grouped.cumcount().astype(float)
        wins = grouped.cumsum() - y
        out[f"{name}_earlier"] = seen
        out[f"{name}_earlier_rate"] = (wins + prior_strength * rate) / (seen + prior_strength)
    return out


def build(data: Path) -> tuple[pd.DataFrame, dict[str, int]]:
    """History-derived features and labels for the example rows (see the module docstring)."""
    tune, test, invalid = (read_lines(data / f) for f in ("tune.txt", "test.txt", "invalid.txt"))
    half = len(invalid) // 2
    inv_hist, inv_ex = invalid.iloc[:half], invalid.iloc[half:].copy()
    inv_ex["pos"] = np.arange(len(inv_ex)) / max(len(inv_ex) - 1, 1)
    history = pd.concat([tune, inv_hist], ignore_index=True)
    examples = pd.concat([test.assign(**{LABEL: 1}), inv_ex.assign(**{LABEL: 0})], ignore_index=True)
    examples[TIME] = pd.Timestamp("2020-01-01") + pd.to_timedelta(examples["pos"] * PSEUDO_DAYS, unit="D")
    examples = examples.sort_values(TIME, kind="stable").reset_index(drop=True)
    frame = running_features(history_features(history, examples[["group_id", "product_id", TIME, LABEL]]))
    sizes = {"history": len(history), "examples": len(examples), "positives": int(examples[LABEL].sum())}
    return frame, sizes


def main(argv: list[str] | None = None) -> int:
    """Print AUC / log loss / ECE of the ranker and the baselines on the last pseudo-days."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--validation-days", type=int, default=10, help="pseudo-days held out (half calibrate, half test)")
    parser.add_argument("--trees", type=int, default=400)
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"{args.data} is absent: nothing to measure")
        return 1
    t0 = time.perf_counter()
    frame, sizes = build(args.data)
    t_build = time.perf_counter() - t0
    cfg = RankerConfig(validation_days=args.validation_days, n_estimators=args.trees, min_child_samples=100)
    ranker, metrics = fit_and_evaluate(frame, cfg)
    t_fit = time.perf_counter() - t0 - t_build
    _, valid = time_split(frame, cfg.validation_days)
    t = valid[TIME]
    test = valid[t > t.min() + (t.max() - t.min()) / 2]
    y = test[LABEL].to_numpy()
    item_pop = test["item_launches"].to_numpy(float)
    init_rate = test["init_success_rate"].fillna(float(frame[LABEL].mean())).to_numpy(float)
    from recsys.calibration import auc

    print(f"Beibei group-buy success, {sizes['history']:,} history lines, {sizes['examples']:,} examples "
          f"({sizes['positives']:,} successes); rows train/calibrate/test = {metrics['rows']}")
    print(f"features {t_build:.1f}s, fit {t_fit:.1f}s, best iteration {metrics['best_iteration']}")
    print(f"{'model':<28}{'AUC':>8}{'log loss':>10}{'ECE':>8}")
    for name in ("calibrated", "uncalibrated", "popularity_rate"):
        m = metrics[name]
        print(f"{'ranker ' + name if name != 'popularity_rate' else 'item success rate (train)':<28}"
              f"{m['auc']:>8.4f}{m['log_loss']:>10.4f}{m['ece']:>8.4f}")
    print(f"{'item popularity (launches)':<28}{auc(y, _scaled(item_pop)):>8.4f}{'—':>10}{'—':>8}")
    init = probability_metrics(y, init_rate)
    print(f"{'initiator history (rate)':<28}{init['auc']:>8.4f}{init['log_loss']:>10.4f}{init['ece']:>8.4f}")
    top = list(ranker.feature_importance().items())[:5]
    print("top features by gain: " + ", ".join(f"{k} {v:.0f}" for k, v in top))
    return 0


def _scaled(x: np.ndarray) -> np.ndarray:
    # AUC only needs the order; scale into [0, 1] so the probability checks accept it.
    return x / x.max() if x.max() > 0 else x


if __name__ == "__main__":
    sys.exit(main())
