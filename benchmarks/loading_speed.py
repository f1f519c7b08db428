"""How long loading with validation takes: a large synthetic orders Parquet, and the same rows as CSV.

Usage: OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/loading_speed.py [--rows 10000000] [--csv-rows 1000000]
Prints wall and CPU seconds and rows per second of `load_dataset` (all checks on) for each format.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def write_orders(folder: Path, rows: int, fmt: str, seed: int = 7) -> Path:
    """A products table and `rows` orders over it, made up with a seeded generator."""
    rng = np.random.default_rng(seed)
    n_products, n_groups = 100_000, 50_000
    products = pd.DataFrame({
        "product_id": [f"p{i}" for i in range(n_products)], "title": "商品", "category": "食品/零食", "brand": "",
        "price": rng.uniform(1, 300, n_products).round(2), "commission_rate": rng.uniform(0, 0.3, n_products).round(3),
    })
    start = pd.Timestamp("2025-01-01", tz="Asia/Shanghai")
    quantity = rng.integers(1, 5, rows)
    orders = pd.DataFrame({
        "order_id": pd.Series(np.arange(rows)).astype("str"),
        "group_id": pd.Series(rng.integers(0, n_groups, rows)).astype("str"),
        "product_id": "p" + pd.Series(rng.integers(0, n_products, rows)).astype("str"),
        "ordered_at": start + pd.to_timedelta(rng.integers(0, 90 * 86400, rows), unit="s"),
        "quantity": quantity,
        "paid": (quantity * rng.uniform(1, 300, rows)).round(2),
        "buyer_id": "b" + pd.Series(rng.integers(0, rows // 5 + 1, rows)).astype("str"),
    })
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        products.to_parquet(folder / "products.parquet", index=False)
        orders.to_parquet(folder / "orders.parquet", index=False)
        return folder / "orders.parquet"
    products.to_csv(folder / "products.csv", index=False)
    orders.to_csv(folder / "orders.csv", index=False)
    return folder / "orders.csv"


def measure(folder: Path, rows: int, label: str) -> None:
    """Load the folder once and print the timing."""
    from features.loading import load_dataset

    t0, c0 = time.perf_counter(), time.process_time()
    ds = load_dataset(folder)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    if len(ds.orders) != rows:
        raise SystemExit(f"loaded {len(ds.orders)} of {rows} orders")
    # CPU seconds are the steadier figure on a shared machine; wall time includes waiting for a core.
    print(f"{label:<8} {rows:>11,} orders  wall {seconds:7.1f} s  cpu {cpu:7.1f} s  {rows / seconds:>12,.0f} rows/s (wall)")


def main() -> None:
    """Write, load and time each format."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="orders in the Parquet file")
    parser.add_argument("--csv-rows", type=int, default=1_000_000, help="orders in the CSV file (0 to skip)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_orders(Path(tmp) / "pq", args.rows, "parquet")
        print(f"parquet file: {path.stat().st_size / 1e6:.0f} MB")
        measure(Path(tmp) / "pq", args.rows, "parquet")
        if args.csv_rows:
            path = write_orders(Path(tmp) / "csv", args.csv_rows, "csv")
            print(f"csv file: {path.stat().st_size / 1e6:.0f} MB")
            measure(Path(tmp) / "csv", args.csv_rows, "csv")


if __name__ == "__main__":
    main()
