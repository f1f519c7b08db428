"""Print the data contract (the five tables, their columns, types, units and rules) as Markdown."""

from __future__ import annotations

import argparse

from contracts.schema import contract_markdown


def configure(parser: argparse.ArgumentParser) -> None:
    """No options."""


def run(args: argparse.Namespace) -> int:
    """Print the contract."""
    print(contract_markdown())
    return 0
