"""Device choice for ALS fitting and top-K scoring; the torch top-K path checked on the CPU against numpy's."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import recsys.candidates.als as als_module
import recsys.device as device
from features.interactions import build_train_data
from features.sample_world import generate
from recsys.candidates import ALSSource
from contracts.config import FeatureConfig


def train_data():
    """A small sample world's training data (no title embeddings)."""
    w = generate(seed=3, groups=40, products=60, days=30)
    return build_train_data(w.products, w.sellers, w.groups, w.pushes, w.orders, FeatureConfig(title_embeddings="off"))


def test_resolve_device(monkeypatch: pytest.MonkeyPatch) -> None:
    assert device.resolve_device("cpu") == "cpu"
    monkeypatch.setattr(device, "cuda_available", lambda: False)
    assert device.resolve_device("auto") == "cpu"
    with pytest.raises(RuntimeError, match="no CUDA device"):
        device.resolve_device("cuda")
    monkeypatch.setattr(device, "cuda_available", lambda: True)
    assert device.resolve_device("auto") == "cuda"
    assert device.resolve_device("cuda") == "cuda"
    with pytest.raises(ValueError, match="unknown device"):
        device.resolve_device("tpu")


def test_factor_top_k_matches_the_numpy_path() -> None:
    rng = np.random.default_rng(3)
    users, items = rng.standard_normal((7, 4)).astype(np.float32), rng.standard_normal((30, 4)).astype(np.float32)
    allowed = np.ones(30, dtype=bool)
    allowed[[2, 5]] = False
    known = np.array([True] * 6 + [False])
    exclude = sp.csr_matrix((np.ones(2), ([0, 3], [7, 9])), shape=(7, 30))
    ids, scores = device.factor_top_k(users, items, 5, allowed, known, exclude, "cpu")
    dense = users @ items.T
    dense[:, ~allowed] = -np.inf
    dense[0, 7] = dense[3, 9] = -np.inf
    for row in range(6):
        expected = np.argsort(-dense[row])[:5]
        np.testing.assert_array_equal(ids[row], expected)
        np.testing.assert_allclose(scores[row], dense[row, expected], rtol=1e-5)
    assert (ids[6] == -1).all() and np.isneginf(scores[6]).all()


def test_als_on_a_cuda_device_recommends_as_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    data = train_data()
    source = ALSSource(factors=8, regularization=0.01).fit(data)
    groups = np.arange(data.n_groups)
    exclude = data.bought[groups]
    cpu_ids, _ = source.recommend(groups, 5, exclude=exclude)
    # Route the GPU branch through the same torch code on the CPU: everything but the device itself is exercised.
    real = device.factor_top_k
    monkeypatch.setattr(als_module, "factor_top_k", lambda *a: real(*a[:-1], "cpu"))
    source.device_ = "cuda"
    gpu_ids, _ = source.recommend(groups, 5, exclude=exclude)
    np.testing.assert_array_equal(gpu_ids, cpu_ids)
    assert (gpu_ids >= 0).any() and gpu_ids.max() < data.n_items


def test_als_device_auto_fits_on_the_cpu_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "cuda_available", lambda: False)
    source = ALSSource(factors=4, iterations=2, device="auto").fit(train_data())
    assert source.device_ == "cpu"
