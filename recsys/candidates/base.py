"""One interface for every candidate source: batch of group indices in, (item indices, scores) out.

Modelled on implicit's `RecommenderBase.recommend`: a source scores whole blocks of groups against the
catalogue, stock and exclusion filters are applied, and the top K per row is taken into pre-allocated
outputs, so memory stays bounded whatever the number of groups.
A score of -inf means "this source does not propose the item"; such slots come back as id -1.
Rows are ranked by score, then by item index (also at the k-th place).

That dense path (`recommend_dense`) is the reference. `recommend` takes exact shortcuts where a source's rows
allow: sparse rows go straight from their non-zeros (`_recommend_sparse`), rows shared by many groups are
ranked once (`_recommend_shared`), and wide dense rows use a threshold top-K (`top_k`). `pair_scores` reads
single (group, item) cells without a dense row per group.
"""

from __future__ import annotations

import weakref
from abc import ABC, abstractmethod
from typing import Any, Callable, Iterator

import numpy as np
import scipy.sparse as sp

from features.interactions import TrainData

# Scores are computed for at most this many (group, item) cells at once.
BLOCK_CELLS = 1 << 23
# Groups per block on the sparse paths (their blocks hold a few thousand entries per group, not n_items).
SPARSE_BLOCK_ROWS = 1024
# Threshold top-K: rows narrower than TOPK_MIN_WIDTH use argpartition; chunks are at most TOPK_CHUNK columns wide,
# at least TOPK_CHUNKS_PER_ITEM chunks per wanted item and at least TOPK_MIN_CHUNK columns.
TOPK_MIN_WIDTH = 2048
TOPK_CHUNK = 32
TOPK_MIN_CHUNK = 8
TOPK_CHUNKS_PER_ITEM = 16
TOPK_MAX_SELECTED = 0.25


# Dense score products run in chunks of exactly this many group rows (a multiple of every BLAS row tile).
FIXED_ROWS = 64


def fixed_shape_matmul(left: np.ndarray, right: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """float32 `left @ right`, computed in chunks of exactly FIXED_ROWS rows of `left` (the last zero-padded),
    into `out[:len(left)]` when a buffer is given (a fresh 30 MB block per call costs its page faults again).

    BLAS chooses its kernel by the shape of the product (small products take another path), so the same group
    scored with 8 others or with 8,000 could differ in the last bit and swap two near-tied items at a top-K cut.
    With one shape for every call, a group's scores do not depend on the other groups of its block; on some CPUs the
    kernel also rounds by a row's position within the chunk, so scores of another block layout agree to float32 rounding.
    """
    left = np.asarray(left, dtype=np.float32)
    right = np.asarray(right, dtype=np.float32)
    n = left.shape[0]
    out = np.empty((n, right.shape[1]), dtype=np.float32) if out is None else out[:n]
    whole = n - n % FIXED_ROWS
    for lo in range(0, whole, FIXED_ROWS):
        np.matmul(left[lo:lo + FIXED_ROWS], right, out=out[lo:lo + FIXED_ROWS])
    if whole < n:
        chunk = np.zeros((FIXED_ROWS, left.shape[1]), dtype=np.float32)
        chunk[:n - whole] = left[whole:]
        out[whole:] = np.matmul(chunk, right)[:n - whole]
    return out


def block_rows(n_items: int) -> int:
    """Rows per scoring block so a block holds about BLOCK_CELLS float32 cells (whole FIXED_ROWS chunks when it
    can: dense products then never compute padding rows)."""
    rows = int(max(1, min(8192, BLOCK_CELLS // max(n_items, 1))))
    return rows - rows % FIXED_ROWS if rows >= FIXED_ROWS else rows


def top_k_reference(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top `k` columns of each row, best first: (indices, scores), -1 / -inf where fewer are finite.

    The plain argpartition over every column; `top_k` returns exactly the same and is the one to call.
    Order: score descending, then column ascending, also for ties at the k-th place.
    """
    n, m = scores.shape
    kk = min(k, m)
    ids = np.full((n, k), -1, dtype=np.int64)
    vals = np.full((n, k), -np.inf, dtype=np.float32)
    if kk == 0 or n == 0:
        return ids, vals
    # One negated copy serves the selection; NaN (rare) is fixed in it only when present.
    neg = np.negative(scores)
    nan = np.isnan(neg)
    if nan.any():
        neg[nan] = np.inf
    if kk < m:
        part = lowest_tied_columns(neg, np.argpartition(neg, kk - 1, axis=1)[:, :kk])
    else:
        part = np.broadcast_to(np.arange(m), (n, m))
    part_vals = -np.take_along_axis(neg, part, axis=1)
    # Sort by score descending, then by item index so ties are deterministic.
    order = np.lexsort((part, -part_vals), axis=1)
    best = np.take_along_axis(part, order, axis=1)
    best_vals = np.take_along_axis(part_vals, order, axis=1)
    finite = np.isfinite(best_vals)
    ids[:, :kk] = np.where(finite, best, -1)
    vals[:, :kk] = np.where(finite, best_vals, -np.inf)
    return ids, vals


def lowest_tied_columns(neg: np.ndarray, part: np.ndarray) -> np.ndarray:
    """argpartition keeps any of the columns tied at the k-th place; keep the lowest ones instead, so ties
    always go to the lower index (`neg` holds negated scores, NaN already +inf)."""
    kk = part.shape[1]
    taken = np.take_along_axis(neg, part, axis=1)
    kth = taken.max(axis=1)
    # Ties among non-finite values do not matter: those slots come back as -1 / -inf whichever column fills them.
    tied = np.isfinite(kth) & ((neg == kth[:, None]).sum(axis=1) > (taken == kth[:, None]).sum(axis=1))
    rows = np.flatnonzero(tied)
    if rows.size:
        sub, bound = neg[rows], kth[rows, None]
        less, equal = sub < bound, sub == bound
        need = kk - less.sum(axis=1, keepdims=True)
        chosen = less | (equal & (np.cumsum(equal, axis=1) <= need))
        part[rows] = np.nonzero(chosen)[1].reshape(rows.size, kk)
    return part


def _chunk_width(m: int, kk: int) -> int:
    """Columns per chunk of the threshold top-K (0 = not worth it): enough chunks that the top `kk` fill few."""
    if m < TOPK_MIN_WIDTH or kk < 1:
        return 0
    width = min(TOPK_CHUNK, m // (TOPK_CHUNKS_PER_ITEM * kk))
    return width if width >= TOPK_MIN_CHUNK else 0


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top `k` columns of each row, best first: (indices, scores), -1 / -inf where fewer are finite.

    Ties go to the lower column index and NaN counts as -inf, exactly as `top_k_reference`. Wide rows skip
    most columns: the k-th largest of the chunk maxima is a lower bound of the row's k-th largest value,
    so only chunks reaching it are read again.
    """
    scores = np.asarray(scores)
    n, m = scores.shape
    width = _chunk_width(m, min(k, m))
    if n == 0 or width == 0 or scores.dtype.kind != "f":
        return top_k_reference(scores, k)
    ids, vals, done = threshold_top_k(scores, k, width)
    rest = np.flatnonzero(~done)
    if rest.size:
        ids[rest], vals[rest] = top_k_reference(scores[rest], k)
    return ids, vals


def threshold_top_k(scores: np.ndarray, k: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`top_k` by chunk maxima for the rows where it pays: (ids, scores, done), rows not `done` left to the caller.

    Chunk c holds columns c, c + n_chunks, c + 2·n_chunks, … (strided, so the maxima are one vectorised pass
    over the block); columns past the last full chunk are always candidates. A row is left undone when it holds
    NaN or +inf, has fewer than k chunks with a finite maximum, or when more than TOPK_MAX_SELECTED of its
    chunks reach the threshold (e.g. many ties): argpartition is then as cheap.
    """
    scores = np.ascontiguousarray(scores)
    n, m = scores.shape
    kk = min(k, m)
    ids = np.full((n, k), -1, dtype=np.int64)
    vals = np.full((n, k), -np.inf, dtype=np.float32)
    n_chunks = m // width
    body = scores[:, : n_chunks * width].reshape(n, width, n_chunks)
    tail = scores[:, n_chunks * width:]
    chunk_max = body.max(axis=1)
    tail_max = tail.max(axis=1) if tail.shape[1] else np.full(n, -np.inf, dtype=scores.dtype)
    # NaN propagates through max, so one comparison finds the rows with NaN or +inf.
    odd = ~(chunk_max < np.inf).all(axis=1) | ~(tail_max < np.inf)
    empty = ~odd & (chunk_max.max(axis=1) == -np.inf) & (tail_max == -np.inf)
    threshold = np.partition(chunk_max, n_chunks - kk, axis=1)[:, n_chunks - kk]
    selected = chunk_max >= threshold[:, None]
    fast = ~odd & (threshold > -np.inf) & (selected.sum(axis=1) <= TOPK_MAX_SELECTED * n_chunks)
    rows = np.flatnonzero(fast)
    if rows.size:
        local, chunk = np.nonzero(selected[rows])
        values = body[rows[local], :, chunk]
        cols = np.arange(width, dtype=np.int64)[None, :] * n_chunks + chunk[:, None]
        keep = values >= threshold[rows[local]][:, None]
        cand_row = np.broadcast_to(local[:, None], keep.shape)[keep]
        cand_col, cand_val = cols[keep], values[keep]
        if tail.shape[1]:
            tail_vals = tail[rows]
            tail_keep = tail_vals >= threshold[rows][:, None]
            tail_cols = np.broadcast_to(np.arange(n_chunks * width, m, dtype=np.int64), tail_keep.shape)
            cand_row = np.concatenate([cand_row, np.nonzero(tail_keep)[0]])
            cand_col = np.concatenate([cand_col, tail_cols[tail_keep]])
            cand_val = np.concatenate([cand_val, tail_vals[tail_keep]])
        # Every fast row keeps at least kk candidates (one per chunk reaching the threshold).
        order = np.lexsort((cand_col, -cand_val, cand_row))
        starts = np.searchsorted(cand_row[order], np.arange(rows.size))
        take = order[starts[:, None] + np.arange(kk)]
        ids[rows, :kk] = cand_col[take]
        vals[rows, :kk] = cand_val[take]
    return ids, vals, fast | empty


def top_k_entries(n_rows: int, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`top_k` of an n_rows-row matrix that is -inf except at the given entries (sorted by row, then column).

    Each row's entries are packed left into a narrow block, so ranks by (score, position) are ranks by (score, column).
    """
    ids = np.full((n_rows, k), -1, dtype=np.int64)
    vals = np.full((n_rows, k), -np.inf, dtype=np.float32)
    if not len(rows):
        return ids, vals
    lengths = np.bincount(rows, minlength=n_rows)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    slot = np.arange(len(rows)) - starts[rows]
    # Longest rows first, packed in blocks of rows at least half as long as the block is wide.
    by_length = np.argsort(-lengths, kind="stable")
    descending = lengths[by_length]
    lo = 0
    while lo < n_rows and descending[lo] > 0:
        width = int(descending[lo])
        half = lo + int(np.searchsorted(-descending[lo:], -(width // 2), side="right"))
        hi = min(n_rows, lo + max(1, BLOCK_CELLS // width), max(half, lo + 1))
        block = by_length[lo:hi]
        block = block[lengths[block] > 0]
        local = np.full(n_rows, -1, dtype=np.int64)
        local[block] = np.arange(len(block))
        entry = np.flatnonzero(local[rows] >= 0)
        packed = np.full((len(block), width), -np.inf, dtype=values.dtype)
        packed_cols = np.zeros((len(block), width), dtype=np.int64)
        packed[local[rows[entry]], slot[entry]] = values[entry]
        packed_cols[local[rows[entry]], slot[entry]] = cols[entry]
        pos, best = top_k(packed, k)
        ids[block] = np.where(pos >= 0, np.take_along_axis(packed_cols, np.maximum(pos, 0), axis=1), -1)
        vals[block] = best
        lo = hi
    return ids, vals


def allowed_mask(n_items: int, in_stock: np.ndarray | None, allowed_items: np.ndarray | None) -> np.ndarray:
    """Boolean mask of recommendable items: in stock and, if given, in `allowed_items` (indices or a mask)."""
    mask = np.ones(n_items, dtype=bool) if in_stock is None else in_stock.astype(bool).copy()
    if allowed_items is not None:
        allowed = np.asarray(allowed_items)
        if allowed.dtype == bool:
            if allowed.shape != (n_items,):
                raise ValueError(f"allowed_items mask has shape {allowed.shape}, expected ({n_items},)")
            mask &= allowed
        else:
            if allowed.size and (allowed.min() < 0 or allowed.max() >= n_items):
                raise ValueError(f"allowed_items holds an index outside 0..{n_items - 1}")
            keep = np.zeros(n_items, dtype=bool)
            keep[allowed.astype(np.int64)] = True
            mask &= keep
    return mask


class Recommender(ABC):
    """A candidate source: `fit(data)` then `recommend(group_idx, k, exclude, allowed_items)`.

    Subclasses implement `_fit` and `score` (dense float32 scores of a block of groups against all
    items, -inf where the source has nothing to say); they may override `_recommend` and `_pair_scores` with
    faster paths that return exactly what the dense ones do.
    """

    name: str = "source"
    # Whether `score` returns a new array that its caller may overwrite (saves a copy of every dense block).
    _fresh_scores: bool = False

    def fit(self, data: TrainData) -> "Recommender":
        """Learn from the training interactions; returns self."""
        self.n_items_ = data.n_items
        self.n_groups_ = data.n_groups
        self.in_stock_ = data.in_stock.copy()
        self._fit(data)
        self._fitted_on = weakref.ref(data)
        return self

    def __getstate__(self) -> dict[str, Any]:
        """Picklable state (a fitted source is broadcast to Dask workers): the weak link to the data stays behind."""
        state = dict(vars(self))
        state.pop("_fitted_on", None)
        return state

    def is_fitted_on(self, data: TrainData) -> bool:
        """Whether the last fit used this very TrainData object (lets a blend reuse fitted sources)."""
        ref = getattr(self, "_fitted_on", None)
        return ref is not None and ref() is data

    @abstractmethod
    def _fit(self, data: TrainData) -> None:
        """Source-specific learning."""

    @abstractmethod
    def score(self, group_idx: np.ndarray) -> np.ndarray:
        """Dense float32 scores (len(group_idx), n_items); -inf where the item is not proposed."""

    def params(self) -> dict[str, Any]:
        """Hyper-parameters, for reports and tuning (public attributes not ending in '_')."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")}

    def _score_into(self, group_idx: np.ndarray, buffer: np.ndarray) -> np.ndarray:
        """`score` written into `buffer[:len(group_idx)]`; dense matrix-product sources override this, others allocate."""
        return self.score(group_idx)

    def _block_scores(self, group_idx: np.ndarray, exclude: sp.csr_matrix | None, mask: np.ndarray,
                      buffer: np.ndarray | None = None) -> np.ndarray:
        """Scores of one block with the item mask and exclusions applied (in `buffer` when given and supported)."""
        # Row-major, so that the threshold top-K reads each row's chunks without another copy.
        raw = self._score_into(group_idx, buffer) if buffer is not None else self.score(group_idx)
        scores = np.asarray(raw, dtype=np.float32, order="C") if self._fresh_scores else np.array(raw, dtype=np.float32, copy=True, order="C")
        if not mask.all():
            # One broadcast pass; boolean column indexing of a wide block costs several times more.
            np.copyto(scores, np.float32(-np.inf), where=~mask[None, :])
        if exclude is not None and exclude.nnz:
            rows, cols = exclude.nonzero()
            scores[rows, cols] = -np.inf
        return scores

    def _checked(self, group_idx: np.ndarray, k: int, exclude: sp.csr_matrix | None,
                 allowed_items: np.ndarray | None) -> tuple[np.ndarray, sp.csr_matrix | None, np.ndarray]:
        """Validated groups, exclusions (CSR, one row per group) and the mask of recommendable items."""
        if not hasattr(self, "n_items_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(data) first")
        group_idx = np.asarray(group_idx, dtype=np.int64).ravel()
        if group_idx.size and (group_idx.min() < 0 or group_idx.max() >= self.n_groups_):
            raise ValueError(f"group index outside 0..{self.n_groups_ - 1}")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if exclude is not None:
            exclude = sp.csr_matrix(exclude)
            if exclude.shape != (len(group_idx), self.n_items_):
                raise ValueError(
                    f"exclude must have one row per requested group: shape {exclude.shape}, "
                    f"expected ({len(group_idx)}, {self.n_items_})"
                )
        return group_idx, exclude, allowed_mask(self.n_items_, self.in_stock_, allowed_items)

    def recommend(
        self,
        group_idx: np.ndarray,
        k: int,
        exclude: sp.csr_matrix | None = None,
        allowed_items: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top `k` items per group: (ids, scores) of shape (n, k), -1 / -inf padded.

        `exclude` has one row per requested group (as in implicit); its non-zeros are never returned.
        `allowed_items` restricts to these item indices (or boolean mask); out-of-stock items never come back.
        Sources with sparse or shared rows answer without densifying them; the result is `recommend_dense`'s.
        """
        group_idx, exclude, mask = self._checked(group_idx, k, exclude, allowed_items)
        return self._recommend(group_idx, k, exclude, mask)

    def recommend_dense(
        self,
        group_idx: np.ndarray,
        k: int,
        exclude: sp.csr_matrix | None = None,
        allowed_items: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The reference `recommend`: dense score blocks and argpartition top-K (`top_k_reference`)."""
        group_idx, exclude, mask = self._checked(group_idx, k, exclude, allowed_items)
        return self._recommend_blocks(group_idx, k, exclude, mask, top_k_reference)

    def _recommend(self, group_idx: np.ndarray, k: int, exclude: sp.csr_matrix | None,
                   mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top `k` of validated groups; sources with a faster exact path override this."""
        return self._recommend_blocks(group_idx, k, exclude, mask, top_k)

    def _recommend_blocks(self, group_idx: np.ndarray, k: int, exclude: sp.csr_matrix | None, mask: np.ndarray,
                          select: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """The dense path: score blocks of `block_rows` groups, filter them and `select` each row's top `k`."""
        n = len(group_idx)
        ids = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        step = block_rows(self.n_items_)
        # One scores buffer for every block of the call (sources that write into it), allocated once.
        writes_into = type(self)._score_into is not Recommender._score_into
        buffer = np.empty((min(step, n), self.n_items_), dtype=np.float32) if writes_into and n else None
        for start in range(0, n, step):
            stop = min(n, start + step)
            block = self._block_scores(group_idx[start:stop], None if exclude is None else exclude[start:stop], mask,
                                       buffer)
            ids[start:stop], scores[start:stop] = select(block, k)
        return ids, scores

    def _recommend_sparse(self, group_idx: np.ndarray, k: int, exclude: sp.csr_matrix | None, mask: np.ndarray,
                          block_scores: Callable[[np.ndarray], sp.spmatrix]) -> tuple[np.ndarray, np.ndarray]:
        """Top `k` from sparse score rows whose zeros mean "not proposed" (as `minus_inf_where_zero` in `score`)."""
        n = len(group_idx)
        ids = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        for start in range(0, n, SPARSE_BLOCK_ROWS):
            stop = min(n, start + SPARSE_BLOCK_ROWS)
            # Sorted columns: ties then go to the lower item, as in the dense path.
            block = canonical_csr(block_scores(group_idx[start:stop]))
            rows = np.repeat(np.arange(stop - start), np.diff(block.indptr))
            cols = block.indices.astype(np.int64)
            # The dense path casts to float32 before turning zeros into -inf.
            values = block.data.astype(np.float32)
            keep = (values != 0) & mask[cols] & ~np.isneginf(values) & ~np.isnan(values)
            if exclude is not None and exclude.nnz:
                keep &= ~is_in(rows * self.n_items_ + cols, exclusion_keys(exclude[start:stop], self.n_items_))
            ids[start:stop], scores[start:stop] = top_k_entries(stop - start, rows[keep], cols[keep], values[keep], k)
        return ids, scores

    def _recommend_shared(self, group_idx: np.ndarray, k: int, exclude: sp.csr_matrix | None, mask: np.ndarray,
                          table: np.ndarray, row_of: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Top `k` when group j's score row is `table[row_of[j]]`: one top list per distinct row, minus exclusions.

        Distinct rows are ranked `block_rows` at a time (bounded memory however many there are). None (use the
        dense path) if a row holds +inf, which takes a slot of the dense top list without an id.
        """
        n = len(group_idx)
        ids = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        used, inverse = np.unique(row_of, return_inverse=True)
        by_row = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[by_row], np.arange(0, len(used) + 1))
        step = block_rows(self.n_items_)
        for lo in range(0, len(used), step):
            hi = min(len(used), lo + step)
            rows = np.where(mask[None, :], np.asarray(table[used[lo:hi]], dtype=np.float32), np.float32(-np.inf))
            if np.isposinf(rows).any():
                return None
            members = by_row[bounds[lo]:bounds[hi]]
            block_ex = None if exclude is None or not exclude.nnz else exclude[members]
            ids[members], scores[members] = self._shared_top(rows, inverse[members] - lo, k, block_ex)
        return ids, scores

    def _shared_top(self, rows: np.ndarray, row_of: np.ndarray, k: int,
                    exclude: sp.csr_matrix | None) -> tuple[np.ndarray, np.ndarray]:
        """Top `k` of groups whose filtered row is `rows[row_of[j]]` and whose exclusions are row j of `exclude`.

        Each list holds k + (most exclusions of a group among its finite items) entries, so dropping a group's
        excluded items still leaves its top k.
        """
        n = len(row_of)
        ex_row = ex_col = np.zeros(0, dtype=np.int64)
        if exclude is not None:
            ex_row, ex_col = (a.astype(np.int64) for a in exclude.nonzero())
            # Only excluded items that a list could hold can push others out of it.
            live = np.isfinite(rows[row_of[ex_row], ex_col])
            ex_row, ex_col = ex_row[live], ex_col[live]
        extra = int(np.bincount(ex_row, minlength=n).max()) if ex_row.size else 0
        depth = min(k + extra, self.n_items_)
        list_ids, list_vals = top_k(rows, depth)
        ids = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        step = max(1, BLOCK_CELLS // depth)
        for start in range(0, n, step):
            stop = min(n, start + step)
            block_ids, block_vals = list_ids[row_of[start:stop]], list_vals[row_of[start:stop]]
            keep = block_ids >= 0
            if ex_row.size:
                lo, hi = np.searchsorted(ex_row, [start, stop])
                excluded = np.sort((ex_row[lo:hi] - start) * self.n_items_ + ex_col[lo:hi])
                keep &= ~is_in(np.arange(stop - start)[:, None] * self.n_items_ + block_ids, excluded)
            rank = np.cumsum(keep, axis=1) - 1
            r, c = np.nonzero(keep & (rank < k))
            ids[start + r, rank[r, c]] = block_ids[r, c]
            scores[start + r, rank[r, c]] = block_vals[r, c]
        return ids, scores

    # ------------------------------------------------------------------------------------------ pairs

    def pair_scores(self, group_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Float32 score of each (group, item) pair, -inf where the source does not propose it: `score(g)[i]`."""
        if not hasattr(self, "n_items_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(data) first")
        g = np.asarray(group_idx, dtype=np.int64).ravel()
        i = np.asarray(item_idx, dtype=np.int64).ravel()
        if g.shape != i.shape:
            raise ValueError(f"one item per group: {g.size} groups, {i.size} items")
        if g.size and (g.min() < 0 or g.max() >= self.n_groups_):
            raise ValueError(f"group index outside 0..{self.n_groups_ - 1}")
        if i.size and (i.min() < 0 or i.max() >= self.n_items_):
            raise ValueError(f"item index outside 0..{self.n_items_ - 1}")
        if not g.size:
            return np.zeros(0, dtype=np.float32)
        return np.asarray(self._pair_scores(g, i), dtype=np.float32)

    def _pair_scores(self, g: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Generic pair scores: dense `score` of blocks of distinct groups, gathered (sources override this)."""
        out = np.full(len(g), -np.inf, dtype=np.float32)
        for block, sel in groups_in_blocks(g, block_rows(self.n_items_)):
            scores = self.score(block)
            out[sel] = scores[np.searchsorted(block, g[sel]), i[sel]]
        return out


def groups_in_blocks(g: np.ndarray, step: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Blocks of at most `step` distinct groups of `g`, sorted: (the groups, the positions in `g` of their pairs)."""
    order = np.argsort(g, kind="stable")
    groups, starts = np.unique(g[order], return_index=True)
    bounds = np.append(starts, len(g))
    for lo in range(0, len(groups), step):
        hi = min(len(groups), lo + step)
        yield groups[lo:hi], order[bounds[lo]:bounds[hi]]


def canonical_csr(matrix: sp.spmatrix) -> sp.csr_matrix:
    """CSR with sorted columns and no duplicates (the input itself when it already is)."""
    # The same object keeps scipy's cached format flags (a fitted matrix is checked once, not per call).
    csr = matrix if sp.isspmatrix_csr(matrix) else sp.csr_matrix(matrix)
    if csr.has_canonical_format:
        return csr
    # Two linear passes through CSC sort the columns about twice as fast as scipy's per-row sort.
    csr = csr.tocsc().tocsr()
    csr.sum_duplicates()
    return csr


def sparse_values(matrix: sp.spmatrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """matrix[rows[p], cols[p]] for every p (0 where not stored), without densifying a row."""
    # Canonical, scipy finds each value by binary search in its row.
    return np.asarray(canonical_csr(matrix)[rows, cols]).ravel()


def exclusion_keys(exclude: sp.csr_matrix, n_items: int) -> np.ndarray:
    """Sorted keys row · n_items + item of the non-zeros of `exclude` (explicit zeros exclude nothing)."""
    rows, cols = exclude.nonzero()
    return np.unique(rows.astype(np.int64) * n_items + cols)


def is_in(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """Which of `keys` occur in `sorted_keys` (ascending)."""
    if not sorted_keys.size:
        return np.zeros(keys.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return sorted_keys[pos] == keys


def minus_inf_where_zero(scores: np.ndarray) -> np.ndarray:
    """Mark cells with no signal (exactly zero) as not proposed."""
    scores[scores == 0] = -np.inf
    return scores


def sparse_rows_dense(matrix: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """Dense float32 copy of the selected rows of a sparse matrix."""
    return np.asarray(matrix[rows].toarray(), dtype=np.float32)


class SharedRowRecommender(Recommender):
    """A source that scores every group with one shared row (popularity, trends, the platform's rule): dense
    scores broadcast it, pair scores read it, and the top list is ranked once for all groups."""

    def _row(self) -> np.ndarray:
        """The shared float32 score row (-inf where the item is not proposed)."""
        raise NotImplementedError

    def score(self, group_idx: np.ndarray) -> np.ndarray:
        """The same row for every group."""
        return np.broadcast_to(self._row(), (len(group_idx), self.n_items_))

    def _pair_scores(self, g: np.ndarray, i: np.ndarray) -> np.ndarray:
        """The item's entry of the shared row."""
        return self._row()[i]

    def _recommend(self, group_idx: np.ndarray, k: int, exclude: sp.csr_matrix | None,
                   mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One top list shared by every group."""
        shared = self._recommend_shared(group_idx, k, exclude, mask, self._row()[None, :],
                                        np.zeros(len(group_idx), dtype=np.int64))
        return shared if shared is not None else super()._recommend(group_idx, k, exclude, mask)
