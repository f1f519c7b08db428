"""The `quanxuan` command: one subcommand per offline job or service action."""

from __future__ import annotations

import argparse
import importlib
import sys

# Subcommand name -> module exposing `configure(parser)` and `run(args) -> int`.
# Only the chosen subcommand's module is imported, so `quanxuan validate` does not pay for torch.
COMMANDS: dict[str, str] = {
    "contract": "cli.commands.contract",
    "demo": "cli.commands.demo",
    "sample": "cli.commands.sample",
    "validate": "cli.commands.validate",
    "adapt": "cli.commands.adapt",
    "evaluate": "cli.commands.evaluate",
    "serve": "cli.commands.serve",
    "keys": "cli.commands.keys",
    "feedback": "cli.commands.feedback",
    "copy-check": "cli.commands.copycheck",
    "copy": "cli.commands.copy",
    "train": "cli.commands.train",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; the options of `command` (if given) are configured from its module."""
    parser = argparse.ArgumentParser(prog="quanxuan", description="圈选: daily picks and promo copy for WeChat group sellers.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    for name, module_name in COMMANDS.items():
        if name != command:
            sub.add_parser(name)
            continue
        module = importlib.import_module(module_name)
        sp = sub.add_parser(name, description=(module.__doc__ or "").strip())
        module.configure(sp)
        sp.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command if command in COMMANDS else None).parse_args(argv)
    return int(args._module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
