"""Every metric of BENCHMARK.md, computed from test embeddings, predictions and true styles.

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

from typing import Any, Sequence

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score, silhouette_score
from sklearn.preprocessing import normalize

RETRIEVAL_KS: tuple[int, ...] = (5, 10)


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    """Unit rows in float64 (zero rows stay zero)."""
    return normalize(np.asarray(x, dtype=np.float64))


def _as_label_array(labels: Sequence[Any]) -> np.ndarray:
    return np.asarray([str(x) for x in labels], dtype=object)


# -- classification ----------------------------------------------------------------------------
def classification_metrics(true: Sequence[str], pred: Sequence[str],
                           label_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Accuracy, macro-F1 (over the classes in ``label_names``), per-class F1/precision/recall, confusion."""
    y, p = _as_label_array(true), _as_label_array(pred)
    if len(y) != len(p) or len(y) == 0:
        raise ValueError(f"need equally many (> 0) true and predicted labels, got {len(y)} and {len(p)}")
    names = list(label_names) if label_names is not None else sorted(set(y) | set(p))
    names += sorted((set(y) | set(p)) - set(names))   # a style the encoder does not know
    index = {n: i for i, n in enumerate(names)}
    confusion = np.zeros((len(names), len(names)), np.int64)
    for a, b in zip(y, p):
        confusion[index[a], index[b]] += 1
    per_class: dict[str, dict[str, float]] = {}
    for i, name in enumerate(names):
        tp = confusion[i, i]
        support = int(confusion[i].sum())
        predicted = int(confusion[:, i].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": float(precision), "recall": float(recall), "f1": float(f1),
                           "support": support}
    # macro over the classes that occur as truth or prediction (sklearn's convention)
    present = [n for n in names if per_class[n]["support"] > 0 or confusion[:, index[n]].sum() > 0]
    return {
        "accuracy": float(np.mean(y == p)),
        "macro_f1": float(np.mean([per_class[n]["f1"] for n in present])) if present else 0.0,
        "per_class": per_class,
        "confusion": {"labels": names, "matrix": confusion.tolist()},
    }


# -- embedding space ---------------------------------------------------------------------------
def cluster_purity(true: Sequence[str], clusters: Sequence[int]) -> float:
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


def clustering_metrics(embeddings: np.ndarray, true: Sequence[str], restarts: int = 10,
                       seed: int = 0) -> dict[str, Any]:
    """k-means (k = number of true styles) purity and NMI on the L2-normalised embeddings."""
    y = _as_label_array(true)
    k = len(set(y))
    n = len(y)
    if k < 2 or n <= k:
        return {"k": k, "purity": None, "nmi": None, "note": "needs at least 2 styles and more points than styles"}
    clusters = kmeans_labels(embeddings, k, restarts, seed)
    return {"k": k, "restarts": restarts,
            "purity": float(cluster_purity(y, clusters)),
            "nmi": float(normalized_mutual_info_score(y, clusters))}


def cosine_distance_stats(embeddings: np.ndarray, true: Sequence[str]) -> dict[str, Any]:
    """Mean cosine distance over same-style pairs and over different-style pairs (i < j)."""
    x = _l2_normalise(embeddings)
    y = _as_label_array(true)
    dist = 1.0 - x @ x.T
    iu = np.triu_indices(len(y), k=1)
    same = (y[:, None] == y[None, :])[iu]
    d = dist[iu]
    intra = float(d[same].mean()) if same.any() else None
    inter = float(d[~same].mean()) if (~same).any() else None
    return {"intra_class_cosine_distance": intra, "inter_class_cosine_distance": inter,
            "inter_minus_intra": (inter - intra) if intra is not None and inter is not None else None}


def silhouette_cosine(embeddings: np.ndarray, true: Sequence[str]) -> float | None:
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


def retrieval_metrics(query_embeddings: np.ndarray, query_labels: Sequence[str],
                      gallery_embeddings: np.ndarray | None = None,
                      gallery_labels: Sequence[str] | None = None,
                      ks: Sequence[int] = RETRIEVAL_KS) -> dict[str, Any]:
    """precision@k and mAP by cosine similarity; without a gallery: leave-one-out in the queries."""
    q = _l2_normalise(query_embeddings)
    ql = _as_label_array(query_labels)
    loo = gallery_embeddings is None
    g = q if loo else _l2_normalise(gallery_embeddings)
    gl = ql if loo else _as_label_array(gallery_labels if gallery_labels is not None else [])
    if len(gl) != len(g):
        raise ValueError(f"gallery has {len(g)} embeddings but {len(gl)} labels")
    gallery_size = len(g) - (1 if loo else 0)
    if len(q) == 0 or gallery_size < 1:
        return {"queries": len(q), "gallery_size": max(gallery_size, 0), "map": None,
                **{f"precision_at_{k}": None for k in ks}}
    hits = _rank_hits(q @ g.T, ql, gl, exclude_self=loo)
    out: dict[str, Any] = {"queries": len(q), "gallery_size": gallery_size}
    for k in ks:
        kk = min(k, gallery_size)
        out[f"precision_at_{k}"] = float(np.mean([h[:kk].sum() / kk for h in hits]))
    aps = [average_precision(h) for h in hits]
    valid = [a for a in aps if a is not None]
    out["map"] = float(np.mean(valid)) if valid else None
    out["queries_without_hit"] = len(aps) - len(valid)
    return out


# -- all together ------------------------------------------------------------------------------
def compute_metrics(embeddings: np.ndarray, logits_or_preds: np.ndarray | Sequence[Any] | None,
                    labels: Sequence[Any], gallery_embeddings: np.ndarray | None = None,
                    gallery_labels: Sequence[Any] | None = None, k_means_restarts: int = 10,
                    seed: int = 0, label_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Every BENCHMARK.md metric for one set of test embeddings (JSON-able nested dict).

    ``logits_or_preds``: (N, K) logits (column k is ``label_names[k]``; without names the
    columns are the sorted test labels), or N predicted labels, or None (no classification).
    ``labels``: the true styles. The gallery (train+val) is optional; leave-one-out inside the
    test split is always computed.
    """
    emb = np.asarray(embeddings, dtype=np.float64)
    true = _as_label_array(labels)
    if emb.ndim != 2 or emb.shape[0] != len(true):
        raise ValueError(f"embeddings must be (N, D) with N = {len(true)} labels, got {emb.shape}")
    result: dict[str, Any] = {"n": int(len(true)), "dim": int(emb.shape[1]),
                              "label_counts": {k: int(v) for k, v in zip(*np.unique(true, return_counts=True))}}
    if logits_or_preds is not None:
        arr = np.asarray(logits_or_preds)
        if arr.ndim == 2 and arr.dtype.kind in "fc":
            names = list(label_names) if label_names is not None else sorted(set(true))
            if arr.shape[1] != len(names):
                raise ValueError(f"logits have {arr.shape[1]} columns but there are {len(names)} label names")
            pred = np.asarray(names, dtype=object)[arr.argmax(axis=1)]
        else:
            pred = _as_label_array(arr.tolist())
            names = list(label_names) if label_names is not None else None
        result["classification"] = classification_metrics(true, pred, names)
    clustering = clustering_metrics(emb, true, k_means_restarts, seed)
    clustering["silhouette_cosine"] = silhouette_cosine(emb, true)
    clustering.update(cosine_distance_stats(emb, true))
    result["embedding"] = clustering
    retrieval: dict[str, Any] = {"leave_one_out": retrieval_metrics(emb, true)}
    if gallery_embeddings is not None:
        if gallery_labels is None:
            raise ValueError("gallery_embeddings given without gallery_labels")
        retrieval["gallery"] = retrieval_metrics(emb, true, np.asarray(gallery_embeddings), gallery_labels)
    result["retrieval"] = retrieval
    return result


def headline_metrics(metrics: dict[str, Any]) -> dict[str, float | None]:
    """The figures a benchmark row reports, flat (missing ones are None)."""
    cls = metrics.get("classification", {})
    emb = metrics.get("embedding", {})
    ret = metrics.get("retrieval", {})
    gal, loo = ret.get("gallery", {}), ret.get("leave_one_out", {})
    cost = metrics.get("cost", {})
    return {
        "accuracy": cls.get("accuracy"), "macro_f1": cls.get("macro_f1"),
        "purity": emb.get("purity"), "nmi": emb.get("nmi"), "silhouette": emb.get("silhouette_cosine"),
        "intra_cos_dist": emb.get("intra_class_cosine_distance"),
        "inter_cos_dist": emb.get("inter_class_cosine_distance"),
        "gallery_p@5": gal.get("precision_at_5"), "gallery_p@10": gal.get("precision_at_10"),
        "gallery_map": gal.get("map"),
        "loo_p@5": loo.get("precision_at_5"), "loo_p@10": loo.get("precision_at_10"), "loo_map": loo.get("map"),
        "params": cost.get("parameters"), "emb_per_s": cost.get("embeddings_per_second"),
        "latency_ms": cost.get("single_query_latency_ms"),
    }


def flatten_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Every numeric leaf as ``a.b.c -> value`` (for mean/std over seeds)."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_metrics(value, name + "."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat
