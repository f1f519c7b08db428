"""Check promo copy against the advertising law: a text, or a file of texts (one per line), and print every hit."""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: the text itself, or --file with one text per line ('-' reads stdin)."""
    parser.add_argument("text", nargs="?", help="A text to check.")
    parser.add_argument("--file", help="A UTF-8 file with one text per line; '-' reads standard input.")


def run(args: argparse.Namespace) -> int:
    """Print hits as 'line:start-end [category, article] term -> suggestion'; exit 1 when any text has a hit."""
    from recsys.promo.adlaw import category_label, check, lexicon_version

    if args.text is None and args.file is None:
        print("copy-check: give a text or --file", file=sys.stderr)
        return 2
    if args.file == "-":
        texts = sys.stdin.read().splitlines()
    elif args.file:
        with open(args.file, encoding="utf-8") as fh:
            texts = fh.read().splitlines()
    else:
        texts = [args.text]
    flagged = 0
    for number, text in enumerate(texts, start=1):
        hits = check(text)
        flagged += bool(hits)
        for hit in hits:
            print(f"{number}:{hit.start}-{hit.end} [{category_label(hit.category)}, {hit.article}] {hit.term} "
                  f"-> {hit.suggestion}")
    print(f"lexicon {lexicon_version()}: {flagged} of {len(texts)} texts with hits")
    return 1 if flagged else 0
