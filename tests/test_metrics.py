"""Ranking metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recsys import metrics as M


def rel(rows: list[list[int]], n_items: int = 10) -> sp.csr_matrix:
    """Relevance matrix from per-group item lists."""
    r = [i for i, items in enumerate(rows) for _ in items]
    c = [x for items in rows for x in items]
    return sp.csr_matrix((np.ones(len(c)), (r, c)), shape=(len(rows), n_items))


# Group 0: relevant {1, 4, 7}; list [1, 2, 4, 5] → hits at ranks 1 and 3.
# Group 1: relevant {9};       list [3, 9, -1, -1] → hit at rank 2, padded list.
RECS = np.array([[1, 2, 4, 5], [3, 9, -1, -1]])
REL = rel([[1, 4, 7], [9]])


def test_recall_precision_hit_rate():
    assert M.recall_at_k(RECS, REL, 4).tolist() == pytest.approx([2 / 3, 1.0])
    assert M.recall_at_k(RECS, REL, 1).tolist() == pytest.approx([1 / 3, 0.0])
    assert M.precision_at_k(RECS, REL, 4).tolist() == pytest.approx([0.5, 0.25])
    assert M.hit_rate_at_k(RECS, REL, 1).tolist() == [1.0, 0.0]
    assert M.hit_rate_at_k(RECS, REL, 2).tolist() == [1.0, 1.0]


def test_ndcg_by_hand():
    dcg0 = 1 / math.log2(2) + 1 / math.log2(4)
    idcg0 = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)  # min(3, 4) = 3 ideal hits
    dcg1 = 1 / math.log2(3)
    assert M.ndcg_at_k(RECS, REL, 4).tolist() == pytest.approx([dcg0 / idcg0, dcg1 / 1.0])
    # At k = 2 the ideal DCG counts min(3, 2) = 2 hits.
    assert M.ndcg_at_k(RECS, REL, 2)[0] == pytest.approx(1.0 / (1 + 1 / math.log2(3)))


def test_map_normalised_by_min_relevant_and_k():
    # Group 0: precision 1/1 at rank 1, 2/3 at rank 3 → (1 + 2/3) / min(3, 4).
    assert M.average_precision_at_k(RECS, REL, 4).tolist() == pytest.approx([(1 + 2 / 3) / 3, (1 / 2) / 1])
    assert M.average_precision_at_k(RECS, REL, 2)[0] == pytest.approx(1 / 2)


def test_perfect_and_empty_lists():
    perfect = np.array([[4, 1, 7, 0]])
    assert M.ndcg_at_k(perfect, rel([[1, 4, 7]]), 4)[0] == pytest.approx(1.0)
    assert M.average_precision_at_k(perfect, rel([[1, 4, 7]]), 4)[0] == pytest.approx(1.0)
    empty = np.full((1, 4), -1)
    assert M.ndcg_at_k(empty, rel([[1]]), 4)[0] == 0.0


def test_inputs_are_checked():
    with pytest.raises(ValueError, match="no relevant item"):
        M.recall_at_k(RECS, rel([[1], []]), 2)
    with pytest.raises(ValueError, match="fewer than k"):
        M.recall_at_k(RECS, REL, 5)
    with pytest.raises(ValueError, match="twice"):
        M.recall_at_k(np.array([[1, 1], [9, 3]]), REL, 2)
    with pytest.raises(ValueError, match="rows"):
        M.recall_at_k(RECS, rel([[1]]), 2)
    with pytest.raises(ValueError, match="integer"):
        M.recall_at_k(RECS.astype(float), REL, 2)
    with pytest.raises(ValueError, match="outside"):
        M.recall_at_k(np.array([[1, 12], [9, 3]]), REL, 2)


def test_coverage_and_category_diversity():
    assert M.catalogue_coverage(RECS, 10, 4) == pytest.approx(6 / 10)  # {1, 2, 4, 5, 3, 9}
    cats = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    # List [1, 2, 4, 5]: categories 0, 0, 1, 1 → 2 same-category pairs of 6 → 4/6 differ.
    div = M.intra_list_diversity_category(RECS, cats, 4)
    assert div[0] == pytest.approx(4 / 6)
    assert div[1] == pytest.approx(1.0)  # [3, 9]: categories 1 and 2


def test_embedding_diversity():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # Pairs: (0,1) cos 0, (0,2) cos 1/√2, (1,2) cos 1/√2 → mean 1 − (√2)/3.
    assert M.intra_list_diversity_embedding(np.array([[0, 1, 2]]), vectors, 3)[0] == pytest.approx(1 - math.sqrt(2) / 3)
    assert np.isnan(M.intra_list_diversity_embedding(np.array([[0, -1, -1]]), vectors, 3)[0])


def test_commission_realised_and_potential():
    commission = np.arange(10, dtype=float)  # item i earns i yuan
    assert M.realised_commission_at_k(RECS, REL, commission, 4).tolist() == pytest.approx([1 + 4, 9])
    assert M.potential_commission_at_k(RECS, commission, 4).tolist() == pytest.approx([(1 + 2 + 4 + 5) / 4, (3 + 9) / 2])


def test_mean_spearman():
    pred = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [1.0, 1.0, 1.0]])
    truth = np.array([[0.1, 0.2, 0.7], [0.1, 0.2, 0.7], [0.3, 0.3, 0.4]])
    # +1 and −1 average to 0; the constant row is skipped.
    assert M.mean_spearman(pred, truth) == pytest.approx(0.0)
    assert M.mean_spearman(pred[:1], truth[:1]) == pytest.approx(1.0)
