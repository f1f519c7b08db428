"""Reader of product-title corpora tagged character by character (BIO tags), such as the Taobao NER titles.

Each line is "<char> <tag>", a blank line ends a title; tags HPPX (brand), HCCX (product word), XH (model).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable


@dataclass(frozen=True)
class TaggedTitle:
    """A title with its tagged entities."""

    title: str
    brands: tuple[str, ...]
    products: tuple[str, ...]


def entities(title: str, tags: list[str], kind: str) -> list[str]:
    """Spans of `title` tagged B-kind followed by I-kind."""
    found, start = [], None
    for i, tag in enumerate(tags + ["O"]):
        if start is not None and tag != f"I-{kind}":
            found.append(title[start:i])
            start = None
        if tag == f"B-{kind}":
            start = i
    return found


def read_tagged_titles(folder: str | Path, files: Iterable[str] = ("train.txt", "dev.txt", "test.txt")) -> list[TaggedTitle]:
    """Every title of the given files, in file order."""
    out: list[TaggedTitle] = []
    for name in files:
        chars: list[str] = []
        tags: list[str] = []
        for line in (Path(folder) / name).read_text("utf-8").split("\n") + [""]:
            if not line.strip():
                if chars:
                    title = "".join(chars)
                    out.append(TaggedTitle(title, tuple(entities(title, tags, "HPPX")), tuple(entities(title, tags, "HCCX"))))
                chars, tags = [], []
                continue
            parts = line.split(" ")
            chars.append(parts[0] or " ")
            tags.append(parts[-1])
    return out


def normalised(text: str) -> str:
    """Lower-case digits, Latin letters and CJK characters only: for checking that a span survives shortening."""
    return re.sub(r"[^0-9a-z一-鿿]", "", text.lower())
