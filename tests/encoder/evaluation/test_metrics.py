"""Metrics against hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from encoder.evaluation.metrics import (
    average_precision,
    classification_metrics,
    cluster_purity,
    compute_metrics,
    cosine_distance_stats,
    retrieval_metrics,
)
from encoder.evaluation.results import HeadlineMetrics


def _angles(deg):
    rad = np.radians(np.asarray(deg, dtype=np.float64))
    return np.stack([np.cos(rad), np.sin(rad)], axis=1)


def test_classification_by_hand():
    true = ["a", "a", "b", "b", "c", "c"]
    pred = ["a", "b", "b", "b", "c", "a"]
    m = classification_metrics(true, pred, ["a", "b", "c"])
    assert m.accuracy == pytest.approx(4 / 6)
    # a: P 1/2 R 1/2 -> 0.5; b: P 2/3 R 1 -> 0.8; c: P 1 R 1/2 -> 2/3
    assert m.per_class["a"].f1 == pytest.approx(0.5)
    assert m.per_class["b"].f1 == pytest.approx(0.8)
    assert m.per_class["c"].f1 == pytest.approx(2 / 3)
    assert m.macro_f1 == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m.macro_f1 == pytest.approx(f1_score(true, pred, average="macro"))
    assert m.labels == ["a", "b", "c"]
    assert m.confusion == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_logits_map_to_label_names():
    emb = np.eye(3)[[0, 0, 1, 1, 2, 2]]
    logits = np.array([[5, 0, 0], [0, 5, 0], [0, 5, 0], [0, 5, 0], [0, 0, 5], [0, 0, 5]], np.float32)
    m = compute_metrics(emb, logits, ["x", "x", "y", "y", "z", "z"], label_names=["x", "y", "z"])
    assert m.classification is not None and m.classification.accuracy == pytest.approx(5 / 6)
    assert m.classification.confusion[0] == [1, 1, 0]


def test_perfect_clusters_give_purity_and_nmi_one():
    rng = np.random.default_rng(0)
    centres = np.eye(4)[:3] * 10
    labels = np.repeat(["p", "q", "r"], 8)
    emb = centres[np.repeat([0, 1, 2], 8)] + rng.normal(scale=0.01, size=(24, 4))
    m = compute_metrics(emb, None, labels, seed=3)
    assert m.embedding.purity == pytest.approx(1.0)
    assert m.embedding.nmi == pytest.approx(1.0)
    assert m.embedding.silhouette > 0.99
    assert m.embedding.intra_cos_dist < 1e-3
    assert m.embedding.inter_cos_dist == pytest.approx(1.0, abs=1e-3)
    assert m.leave_one_out.p(5) == pytest.approx(1.0)
    assert m.leave_one_out.map == pytest.approx(1.0)
    assert m.classification is None and "classification" not in m.to_dict()


def test_mixed_clusters_purity_below_one():
    # Two styles on the same direction cannot be separated: purity must drop.
    emb = _angles([0, 1, 2, 3, 90, 91])
    labels = ["a", "b", "a", "b", "c", "c"]
    m = compute_metrics(emb, None, labels)
    assert m.embedding.purity < 1.0
    assert m.embedding.nmi < 1.0


def test_cluster_purity_by_hand():
    assert cluster_purity(["a", "a", "b", "b", "b", "c"], [0, 0, 0, 1, 1, 1]) == pytest.approx(4 / 6)


def test_cosine_distance_stats_by_hand():
    emb = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    intra, inter = cosine_distance_stats(emb, ["a", "a", "b"])
    assert intra == pytest.approx(0.0)
    assert inter == pytest.approx(1.0)


def test_gallery_precision_at_k_and_map_by_hand():
    # Query at 0 degrees, style A. Gallery ranked by angle: A, B, A, A, B, B.
    query = _angles([0])
    gallery = _angles([50, 10, 40, 20, 30, 60])
    gallery_labels = ["B", "A", "A", "B", "A", "B"]      # by rank: 10 A, 20 B, 30 A, 40 A, 50 B, 60 B
    r = retrieval_metrics(query, ["A"], gallery, gallery_labels)
    assert r.p(5) == pytest.approx(3 / 5)
    assert r.p(10) == pytest.approx(3 / 6)                # capped at the gallery size
    assert r.map == pytest.approx((1 / 1 + 2 / 3 + 3 / 4) / 3)
    assert r.gallery_size == 6


def test_average_precision_by_hand():
    assert average_precision([0, 1, 0, 1]) == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert average_precision([0, 0]) is None


def test_leave_one_out_excludes_the_query():
    emb = _angles([0, 1, 90, 91])
    r = retrieval_metrics(emb, ["a", "a", "b", "b"])
    # each query's nearest other item is its twin (a hit); the query itself is never returned
    assert r.gallery_size == 3
    assert r.map == pytest.approx(1.0)
    assert r.p(5) == pytest.approx(1 / 3)


def test_compute_metrics_with_gallery_and_headline():
    emb = _angles([0, 2, 90, 92])
    gal = _angles([1, 3, 89, 45])
    m = compute_metrics(emb, ["a", "a", "b", "a"], ["a", "a", "b", "b"], gallery_embeddings=gal,
                        gallery_labels=["a", "a", "b", "b"])
    g = m.gallery
    assert g is not None and g.queries == 4 and g.gallery_size == 4
    # query at 0: ranks 1 (a), 3 (a), 45 (b), 89 (b) -> AP 1; query at 90: 89 (b), 45 (b) -> AP 1
    assert g.map == pytest.approx(1.0)
    head = HeadlineMetrics.from_metrics(m)
    assert head.gallery_map == pytest.approx(1.0) and head.accuracy == pytest.approx(0.75)
    assert head.to_dict()["gallery_map"] == pytest.approx(1.0)
    assert head.f1_per_class["b"] == pytest.approx(m.classification.per_class["b"].f1)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        compute_metrics(np.zeros((3, 2)), None, ["a", "b"])
