"""Where the heavy linear algebra runs: the CPU by default, a CUDA GPU when asked for or, with 'auto', when present.

Two pieces use it: ALS fitting (implicit's GPU backend, which PyPI's implicit wheels do not include — install
implicit built with CUDA to fit there; otherwise fitting stays on the CPU) and top-K scoring of factor models
(torch matrix products and torch.topk on the device, a block of groups at a time).
"""

from __future__ import annotations

import os
from typing import Literal

import numpy as np
import scipy.sparse as sp

from recsys.candidates.base import block_rows

Device = Literal["cpu", "cuda"]


def cpu_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one: a container's share, not the host's)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cuda_available() -> bool:
    """Whether torch sees a CUDA device."""
    try:
        import torch
    except ImportError:  # torch is a dependency, but a trimmed install should still run on the CPU
        return False
    return bool(torch.cuda.is_available())


def resolve_device(setting: str) -> Device:
    """'cpu' and 'cuda' as given ('cuda' without a device is an error); 'auto' = 'cuda' when present, else 'cpu'."""
    if setting == "cpu":
        return "cpu"
    if setting == "cuda":
        if not cuda_available():
            raise RuntimeError("candidates.device is 'cuda' but torch sees no CUDA device: use 'auto' or 'cpu'")
        return "cuda"
    if setting == "auto":
        return "cuda" if cuda_available() else "cpu"
    raise ValueError(f"unknown device {setting!r}: expected 'auto', 'cpu' or 'cuda'")


def implicit_gpu_available() -> bool:
    """Whether this implicit build can fit on the GPU."""
    try:
        import implicit.gpu
    except ImportError:
        return False
    return bool(implicit.gpu.HAS_CUDA)


def factor_top_k(group_factors: np.ndarray, item_factors: np.ndarray, k: int, allowed: np.ndarray,
                 known: np.ndarray, exclude: sp.csr_matrix | None, device: str) -> tuple[np.ndarray, np.ndarray]:
    """Top `k` items by group · item dot product on a torch device: (ids, scores), -1 / -inf padded.

    Rows of groups that are not `known` and items not `allowed` are never returned; `exclude` has one row per group.
    """
    import torch

    dev = torch.device(device)
    n, m = group_factors.shape[0], item_factors.shape[0]
    kk = min(k, m)
    ids = np.full((n, k), -1, dtype=np.int64)
    scores = np.full((n, k), -np.inf, dtype=np.float32)
    items = torch.as_tensor(np.ascontiguousarray(item_factors, dtype=np.float32), device=dev)
    blocked = torch.as_tensor(~np.asarray(allowed, dtype=bool), device=dev)
    minus_inf = torch.tensor(float("-inf"), device=dev)
    for start in range(0, n, block_rows(m)):
        stop = min(n, start + block_rows(m))
        block = torch.as_tensor(np.ascontiguousarray(group_factors[start:stop], dtype=np.float32), device=dev) @ items.T
        block = torch.where(blocked[None, :], minus_inf, block)
        if exclude is not None and exclude.nnz:
            rows, cols = exclude[start:stop].nonzero()
            block[torch.as_tensor(rows, device=dev), torch.as_tensor(cols, device=dev)] = minus_inf
        block[torch.as_tensor(~np.asarray(known[start:stop], dtype=bool), device=dev)] = minus_inf
        values, index = torch.topk(block, kk, dim=1)
        values_np, index_np = values.cpu().numpy(), index.cpu().numpy()
        finite = np.isfinite(values_np)
        ids[start:stop, :kk] = np.where(finite, index_np, -1)
        scores[start:stop, :kk] = np.where(finite, values_np, -np.inf)
    return ids, scores
