"""Every metric of BENCHMARK.md, computed from test embeddings, predictions and true styles, returned as
the typed results of ``encoder.evaluation.results`` (sklearn does the arithmetic).

- classification: accuracy, macro-F1, per-class F1, confusion matrix (rows: true, columns:
  predicted, in ``label_names`` order).
- embedding space, on L2-normalised embeddings (the encoder's cosine geometry):
  k-means purity and NMI (k = number of styles in the test labels, ``k_means_restarts``
  restarts, best inertia kept); cosine silhouette with the true styles as clusters; mean
  intra-class and inter-class cosine distance (1 - cos), averaged over all pairs i < j.
- retrieval, ranked by cosine similarity (ties broken by gallery order): every query against
  the gallery (train+val) and leave-one-out inside the test split; a hit is the same style.
  precision@k = hits in the top k / k (k capped at the gallery size); AP = mean of precision@rank
  over the ranks of all hits in the gallery; mAP = mean AP over the queries that have at least one hit.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    normalized_mutual_info_score,
    precision_recall_fscore_support,
    silhouette_score,
)
from sklearn.preprocessing import normalize

from encoder.evaluation.results import (
    RETRIEVAL_KS,
    ClassificationMetrics,
    ClassScores,
    EmbeddingSpaceMetrics,
    RetrievalMetrics,
    StyleMetrics,
)

# Styles (or cluster ids): any sequence, numpy arrays included.
Labels = Sequence[Any] | np.ndarray


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    """Unit rows in float64 (zero rows stay zero)."""
    return normalize(np.asarray(x, dtype=np.float64))


def _as_label_array(labels: Labels) -> np.ndarray:
    return np.asarray([str(x) for x in labels], dtype=object)


# -- classification ----------------------------------------------------------------------------
def classification_metrics(true: Labels, pred: Labels,
                           label_names: Sequence[str] | None = None) -> ClassificationMetrics:
    """Accuracy, macro-F1 (over the classes in ``label_names``), per-class F1/precision/recall, confusion."""
    y, p = _as_label_array(true), _as_label_array(pred)
    if len(y) != len(p) or len(y) == 0:
        raise ValueError(f"need equally many (> 0) true and predicted labels, got {len(y)} and {len(p)}")
    names = list(label_names) if label_names is not None else sorted(set(y) | set(p))
    names += sorted((set(y) | set(p)) - set(names))   # a style the encoder does not know
    precision, recall, f1, support = precision_recall_fscore_support(y, p, labels=names, zero_division=0)
    per_class = {name: ClassScores(float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]))
                 for i, name in enumerate(names)}
    return ClassificationMetrics(
        accuracy=float(accuracy_score(y, p)),
        # macro over the classes that occur as truth or prediction (sklearn's convention)
        macro_f1=float(f1_score(y, p, labels=sorted(set(y) | set(p)), average="macro", zero_division=0)),
        per_class=per_class, labels=names, confusion=confusion_matrix(y, p, labels=names).tolist())


# -- embedding space ---------------------------------------------------------------------------
def cluster_purity(true: Labels, clusters: Labels) -> float:
    """Purity: each cluster counts its most frequent true style; the sum over clusters / N."""
    y = _as_label_array(true)
    c = np.asarray(clusters)
    total = 0
    for k in np.unique(c):
        _, counts = np.unique(y[c == k], return_counts=True)
        total += int(counts.max())
    return total / len(y)


def kmeans_labels(embeddings: np.ndarray, k: int, restarts: int = 10, seed: int = 0) -> np.ndarray:
    """k-means cluster of each L2-normalised embedding (``restarts`` runs, best inertia kept)."""
    x = _l2_normalise(embeddings)
    if not 1 <= k <= len(x):
        raise ValueError(f"k must be between 1 and the number of embeddings ({len(x)}), got {k}")
    return KMeans(n_clusters=k, n_init=restarts, random_state=seed).fit(x).labels_.astype(np.int64)


def clustering_metrics(embeddings: np.ndarray, true: Labels, restarts: int = 10,
                       seed: int = 0) -> EmbeddingSpaceMetrics:
    """k-means (k = number of true styles) purity and NMI on the L2-normalised embeddings (the
    silhouette and distance fields are left None; ``compute_metrics`` fills them)."""
    y = _as_label_array(true)
    k = len(set(y))
    n = len(y)
    if k < 2 or n <= k:
        return EmbeddingSpaceMetrics(k=k, purity=None, nmi=None,
                                     note="needs at least 2 styles and more points than styles")
    clusters = kmeans_labels(embeddings, k, restarts, seed)
    return EmbeddingSpaceMetrics(k=k, restarts=restarts, purity=float(cluster_purity(y, clusters)),
                                 nmi=float(normalized_mutual_info_score(y, clusters)))


def cosine_distance_stats(embeddings: np.ndarray, true: Labels) -> tuple[float | None, float | None]:
    """Mean cosine distance over same-style pairs and over different-style pairs (i < j); None: no such pair."""
    x = _l2_normalise(embeddings)
    y = _as_label_array(true)
    dist = 1.0 - x @ x.T
    iu = np.triu_indices(len(y), k=1)
    same = (y[:, None] == y[None, :])[iu]
    d = dist[iu]
    intra = float(d[same].mean()) if same.any() else None
    inter = float(d[~same].mean()) if (~same).any() else None
    return intra, inter


def silhouette_cosine(embeddings: np.ndarray, true: Labels) -> float | None:
    """Silhouette coefficient (cosine) with the true styles as clusters; None if undefined."""
    y = _as_label_array(true)
    k = len(set(y))
    if k < 2 or k >= len(y):
        return None
    return float(silhouette_score(_l2_normalise(embeddings), y, metric="cosine"))


# -- retrieval ---------------------------------------------------------------------------------
def _rank_hits(sim: np.ndarray, query_labels: np.ndarray, gallery_labels: np.ndarray,
               exclude_self: bool) -> list[np.ndarray]:
    """Per query: the hit indicator along the gallery ranked by similarity (stable on ties)."""
    hits = []
    for i in range(sim.shape[0]):
        order = np.argsort(-sim[i], kind="stable")
        if exclude_self:
            order = order[order != i]
        hits.append(gallery_labels[order] == query_labels[i])
    return hits


def average_precision(hits: np.ndarray) -> float | None:
    """AP of one ranked list: mean precision@rank over the ranks of the hits (None: no hit)."""
    hits = np.asarray(hits, bool)
    if not hits.any():
        return None
    ranks = np.flatnonzero(hits) + 1
    return float(np.mean(np.arange(1, len(ranks) + 1) / ranks))


def retrieval_metrics(query_embeddings: np.ndarray, query_labels: Labels,
                      gallery_embeddings: np.ndarray | None = None,
                      gallery_labels: Labels | None = None,
                      ks: Sequence[int] = RETRIEVAL_KS) -> RetrievalMetrics:
    """precision@k and mAP by cosine similarity; without a gallery: leave-one-out in the queries."""
    q = _l2_normalise(query_embeddings)
    ql = _as_label_array(query_labels)
    loo = gallery_embeddings is None
    g = q if gallery_embeddings is None else _l2_normalise(gallery_embeddings)
    gl = ql if loo else _as_label_array(gallery_labels if gallery_labels is not None else [])
    if len(gl) != len(g):
        raise ValueError(f"gallery has {len(g)} embeddings but {len(gl)} labels")
    gallery_size = len(g) - (1 if loo else 0)
    if len(q) == 0 or gallery_size < 1:
        return RetrievalMetrics(queries=len(q), gallery_size=max(gallery_size, 0),
                                precision_at={k: None for k in ks}, map=None)
    hits = _rank_hits(q @ g.T, ql, gl, exclude_self=loo)
    precision: dict[int, float | None] = {}
    for k in ks:
        kk = min(k, gallery_size)
        precision[k] = float(np.mean([h[:kk].sum() / kk for h in hits]))
    aps = [average_precision(h) for h in hits]
    valid = [a for a in aps if a is not None]
    return RetrievalMetrics(queries=len(q), gallery_size=gallery_size, precision_at=precision,
                            map=float(np.mean(valid)) if valid else None, queries_without_hit=len(aps) - len(valid))


# -- all together ------------------------------------------------------------------------------
def embedding_space_metrics(embeddings: np.ndarray, true: Labels, restarts: int = 10,
                            seed: int = 0) -> EmbeddingSpaceMetrics:
    """k-means purity/NMI, cosine silhouette and intra/inter-class cosine distance of the embeddings."""
    intra, inter = cosine_distance_stats(embeddings, true)
    return replace(clustering_metrics(embeddings, true, restarts, seed),
                   silhouette=silhouette_cosine(embeddings, true), intra_cos_dist=intra, inter_cos_dist=inter)


def compute_metrics(embeddings: np.ndarray, logits_or_preds: np.ndarray | Sequence[Any] | None,
                    labels: Labels, gallery_embeddings: np.ndarray | None = None,
                    gallery_labels: Labels | None = None, k_means_restarts: int = 10,
                    seed: int = 0, label_names: Sequence[str] | None = None) -> StyleMetrics:
    """Every BENCHMARK.md metric for one set of test embeddings.

    ``logits_or_preds``: (N, K) logits (column k is ``label_names[k]``; without names the
    columns are the sorted test labels), or N predicted labels, or None (no classification).
    ``labels``: the true styles. The gallery (train+val) is optional; leave-one-out inside the
    test split is always computed.
    """
    emb = np.asarray(embeddings, dtype=np.float64)
    true = _as_label_array(labels)
    if emb.ndim != 2 or emb.shape[0] != len(true):
        raise ValueError(f"embeddings must be (N, D) with N = {len(true)} labels, got {emb.shape}")
    classification = None
    if logits_or_preds is not None:
        arr = np.asarray(logits_or_preds)
        names: list[str] | None
        if arr.ndim == 2 and arr.dtype.kind in "fc":
            names = list(label_names) if label_names is not None else sorted(set(true))
            if arr.shape[1] != len(names):
                raise ValueError(f"logits have {arr.shape[1]} columns but there are {len(names)} label names")
            pred = np.asarray(names, dtype=object)[arr.argmax(axis=1)]
        else:
            pred = _as_label_array(arr.tolist())
            names = list(label_names) if label_names is not None else None
        classification = classification_metrics(true, pred, names)
    gallery = None
    if gallery_embeddings is not None:
        if gallery_labels is None:
            raise ValueError("gallery_embeddings given without gallery_labels")
        gallery = retrieval_metrics(emb, true, np.asarray(gallery_embeddings), gallery_labels)
    return StyleMetrics(
        n=int(len(true)), dim=int(emb.shape[1]),
        label_counts={str(k): int(v) for k, v in zip(*np.unique(true, return_counts=True))},
        embedding=embedding_space_metrics(emb, true, k_means_restarts, seed),
        leave_one_out=retrieval_metrics(emb, true), classification=classification, gallery=gallery)
