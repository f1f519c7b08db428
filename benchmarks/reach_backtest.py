"""Backtest of the reach count model: next-week orders per product against what happened.

For each cut-off, `OrderRateForecaster` reads the weeks of orders before it (decay, shrinkage and
dispersion chosen on the week before the cut-off, never on the target week), forecasts the next
seven days per product with an 80 % interval, and is compared with the naive forecast "same as last
week". Products counted: those with at least one order in the history window.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/reach_backtest.py            # both datasets
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/reach_backtest.py --only sample
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from recsys.reach import OrderRateForecaster, backtest_summary

ROOT = Path(__file__).resolve().parents[1]
TAFENG = ROOT.parent / "shared" / "data" / "tafeng" / "ta_feng.csv.zip"


def run(name: str, orders: pd.DataFrame, products: pd.DataFrame, cutoffs: list[pd.Timestamp], weeks: int) -> list[dict]:
    """Backtest every cut-off and print one line each plus the pooled figures."""
    rows, frames = [], []
    for cutoff in cutoffs:
        model = OrderRateForecaster(history_weeks=weeks).fit(orders, products, cutoff)
        frame = model.forecast(orders, products)
        frames.append(frame)
        s = backtest_summary(frame)
        rows.append({"dataset": name, "cutoff": str(cutoff.date()), **s, "coef": model.coef_.tolist(),
                     "dispersion": model.dispersion_})
        print(f"{name:<8} {cutoff.date()}  products {s['products']:>6}  orders {s['actual_orders']:>8.0f}  "
              f"WAPE mean {s['wape']:.3f} median {s['median_wape']:.3f}  naive {s['naive_wape']:.3f}  "
              f"gain mean {s['gain_vs_naive']:+.1%} median {s['median_gain_vs_naive']:+.1%}  "
              f"80% coverage {s['coverage']:.3f}  (β {' '.join(f'{c:.2f}' for c in model.coef_)}, κ {model.dispersion_:.3f})")
    pooled = backtest_summary(pd.concat(frames, ignore_index=True))
    print(f"{name:<8} pooled      products {pooled['products']:>6}  WAPE mean {pooled['wape']:.3f} "
          f"median {pooled['median_wape']:.3f}  naive {pooled['naive_wape']:.3f}  gain mean {pooled['gain_vs_naive']:+.1%} "
          f"median {pooled['median_gain_vs_naive']:+.1%}  80% coverage {pooled['coverage']:.3f}")
    return rows


def _local(times: pd.Series) -> pd.Series:
    at = pd.to_datetime(times)
    return at.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None) if at.dt.tz is not None else at


def main() -> None:
    """Run the backtest on the sample world and on Ta Feng."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["sample", "tafeng"], default=None)
    parser.add_argument("--weeks", type=int, default=8, help="weeks of history before each cut-off")
    parser.add_argument("--groups", type=int, default=3000)
    parser.add_argument("--products", type=int, default=1500)
    args = parser.parse_args()
    if args.only in (None, "sample"):
        from features.sample_world import generate

        t0 = time.perf_counter()
        world = generate(seed=7, groups=args.groups, products=args.products, days=90)
        end = _local(world.orders["ordered_at"]).max().normalize()
        cutoffs = [end - pd.Timedelta(days=7 * k - 1) for k in (3, 2, 1)]
        print(f"sample world {args.groups} groups × {args.products} products × 90 days "
              f"({len(world.orders):,} orders, {time.perf_counter() - t0:.1f}s to generate)")
        run("sample", world.orders, world.products, cutoffs, args.weeks)
    if args.only in (None, "tafeng"):
        if not TAFENG.exists():
            print(f"Ta Feng not found at {TAFENG}; skipped")
            return
        from features.adapter import load_tafeng

        t0 = time.perf_counter()
        ds = load_tafeng(TAFENG)
        end = _local(ds.orders["ordered_at"]).max().normalize()
        cutoffs = [end - pd.Timedelta(days=7 * k - 1) for k in (4, 3, 2, 1)]
        print(f"Ta Feng: {len(ds.orders):,} order lines, {ds.orders['product_id'].nunique():,} products "
              f"({time.perf_counter() - t0:.1f}s to load)")
        run("tafeng", ds.orders, ds.products, cutoffs, args.weeks)


if __name__ == "__main__":
    main()
