"""The `quanxuan` subcommands, one module each (registered in cli.main)."""

from __future__ import annotations

import argparse


def add_sample_world_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """--seed, --groups, --products and --days of the sample world, with the demo world's sizes as defaults."""
    parser.add_argument("--seed", type=int, default=7, help="sample world: random seed (the same seed, the same world)")
    parser.add_argument("--groups", type=int, default=2000, help="sample world: WeChat groups")
    parser.add_argument("--products", type=int, default=2000, help="sample world: products")
    parser.add_argument("--days", type=int, default=60, help="sample world: days of pushes and orders")
    return parser
