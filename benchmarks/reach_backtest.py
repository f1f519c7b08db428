"""Backtest of the reach count model: next-week orders per product against what happened.

Rolling origin: the last `--test-weeks` weeks of the data are forecast one at a time, each from the data
before its cut-off. For each cut-off, `WeeklyOrderForecaster` (recsys/weekly_forecast.py) is fitted on
forecast origins one to `--fit-weeks` weeks before it (features read only from the weeks before each
origin, never the target week), forecasts the seven days from the cut-off per product with an 80 %
interval, and is compared with the naive forecast "same as last week". Products counted: those with at
least one order in the `--weeks` weeks before the cut-off. The point forecast is a quantile of the
predictive count near the median (what minimises WAPE), and the interval's nominal level is calibrated
conformally; both on the latest origin before the cut-off, forecast by a model that did not see it.
The pooled line is the WAPE of all test weeks together (Σ|error| / Σ orders over product-weeks).

"ceiling" is the gain over naive that even the true rates would give if every week were a fresh draw
from the fitted gamma-Poisson counts (`stationary_ceiling`): how far noise alone lets a forecast go.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/reach_backtest.py            # both datasets
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/reach_backtest.py --only sample
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from recsys.reach import backtest_summary
from recsys.weekly_forecast import WeeklyOrderForecaster, stationary_ceiling

ROOT = Path(__file__).resolve().parents[1]
TAFENG = ROOT.parent / "shared" / "data" / "tafeng" / "ta_feng.csv.zip"


def run(name: str, orders: pd.DataFrame, products: pd.DataFrame, pushes: pd.DataFrame | None,
        cutoffs: list[pd.Timestamp], weeks: int, fit_weeks: int, lookback: int) -> dict[str, float]:
    """Backtest every cut-off and print one line each plus the pooled figures."""
    frames, ceilings = [], []
    for cutoff in cutoffs:
        t0 = time.perf_counter()
        model = WeeklyOrderForecaster(history_weeks=weeks, fit_weeks=fit_weeks, lookback_weeks=lookback)
        model.fit(orders, products, cutoff, pushes)
        frame = model.forecast()
        frames.append(frame)
        s = backtest_summary(frame)
        active = frame[frame["active"]]
        ceiling = stationary_ceiling(active["forecast"].to_numpy(), model.dispersion_)
        ceilings.append(ceiling["gain"])
        print(f"{name:<7} {cutoff.date()}  products {s['products']:>6}  orders {s['actual_orders']:>7.0f}  "
              f"WAPE {s['median_wape']:.3f} (mean forecast {s['wape']:.3f})  naive {s['naive_wape']:.3f}  "
              f"gain {s['median_gain_vs_naive']:+.1%}  ceiling {ceiling['gain']:+.1%}  80% coverage {s['coverage']:.3f}  "
              f"κ {model.dispersion_:.3f}  q {model.quantile_:.2f}  level {model.interval_level_:.2f}  "
              f"origins {len(model.fit_origins_)}  ({time.perf_counter() - t0:.1f}s)")
    pooled = backtest_summary(pd.concat(frames, ignore_index=True))
    print(f"{name:<7} pooled over {len(cutoffs)} rolling test weeks: products {pooled['products']:>6}  WAPE {pooled['median_wape']:.3f} "
          f"(mean forecast {pooled['wape']:.3f})  naive {pooled['naive_wape']:.3f}  gain {pooled['median_gain_vs_naive']:+.1%}  "
          f"ceiling {sum(ceilings) / len(ceilings):+.1%}  80% coverage {pooled['coverage']:.3f}")
    return pooled


def _local(times: pd.Series) -> pd.Series:
    at = pd.to_datetime(times)
    return at.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None) if at.dt.tz is not None else at


def main() -> None:
    """Run the backtest on the sample world and on Ta Feng."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["sample", "tafeng"], default=None)
    parser.add_argument("--weeks", type=int, default=8, help="weeks of history before each origin")
    parser.add_argument("--fit-weeks", type=int, default=10, help="forecast origins before each cut-off the model learns on (at most)")
    parser.add_argument("--lookback", type=int, default=12, help="weeks before each origin the features read")
    parser.add_argument("--test-weeks", type=int, default=None, help="rolling test weeks (default: 3 sample, 4 Ta Feng)")
    parser.add_argument("--groups", type=int, default=3000)
    parser.add_argument("--products", type=int, default=1500)
    args = parser.parse_args()
    if args.only in (None, "sample"):
        from features.sample_world import generate

        t0 = time.perf_counter()
        world = generate(seed=7, groups=args.groups, products=args.products, days=90)
        end = _local(world.orders["ordered_at"]).max().normalize()
        cutoffs = [end - pd.Timedelta(days=7 * k - 1) for k in range(args.test_weeks or 3, 0, -1)]
        print(f"sample world {args.groups} groups × {args.products} products × 90 days "
              f"({len(world.orders):,} orders, {len(world.pushes):,} pushes, {time.perf_counter() - t0:.1f}s to generate)")
        run("sample", world.orders, world.products, world.pushes, cutoffs, args.weeks, args.fit_weeks, args.lookback)
    if args.only in (None, "tafeng"):
        if not TAFENG.exists():
            print(f"Ta Feng not found at {TAFENG}; skipped")
            return
        from features.adapter import load_tafeng

        t0 = time.perf_counter()
        ds = load_tafeng(TAFENG)
        end = _local(ds.orders["ordered_at"]).max().normalize()
        cutoffs = [end - pd.Timedelta(days=7 * k - 1) for k in range(args.test_weeks or 4, 0, -1)]
        print(f"Ta Feng: {len(ds.orders):,} order lines, {ds.orders['product_id'].nunique():,} products, no pushes "
              f"({time.perf_counter() - t0:.1f}s to load)")
        run("tafeng", ds.orders, ds.products, ds.pushes if len(ds.pushes) else None, cutoffs, args.weeks, args.fit_weeks, args.lookback)


if __name__ == "__main__":
    main()
