"""The `quanxuan` command: one subcommand per offline job or service action."""

from __future__ import annotations

import argparse
import importlib
import sys

# Subcommand name -> module exposing `configure(parser)` and `run(args) -> int`.
# Command modules import heavy libraries (torch, lightgbm) inside run(), so `--help` stays fast.
COMMANDS: dict[str, str] = {
    "contract": "training.commands.contract",
    "sample": "training.commands.sample",
    "validate": "training.commands.validate",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="quanxuan", description="圈选: daily picks and promo copy for WeChat group sellers.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        sp = sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.configure(sp)
        sp.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    return int(args._module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
