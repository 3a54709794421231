"""Open-set styles: how an encoder ranks walking styles it never saw in training.

Protocol (the embeddings issue): on the ``random`` split, 3 of the 7 styles are held out
entirely (no take of theirs in train or val); the encoder trains on the other 4. On the
held-out styles' test takes the embedding is judged without its classifier: leave-one-out
precision@5 (every take queries the other held-out test takes; chance is about 1/3 with three
balanced styles), k-means purity and NMI with k = 3. Two choices of held-out styles, so the
figure does not rest on one lucky triple. The hand-made-statistics floor (BENCHMARK.md) is
measured on the same takes, its features standardised on the seen styles' train+val takes.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from encoder.evaluation.results import OpenSetMetrics


def seen_parts(parts: Mapping[str, Sequence[str]], labels: Mapping[str, str],
               holdout: Sequence[str]) -> dict[str, list[str]]:
    """The split without any take of a held-out style in train/val; test keeps only held-out styles."""
    held = set(holdout)
    missing = held - set(labels.values())
    if missing:
        raise ValueError(f"open-set styles {sorted(missing)} are not in the dataset (styles: "
                         f"{sorted(set(labels.values()))})")
    return {"train": [n for n in parts["train"] if labels[n] not in held],
            "val": [n for n in parts["val"] if labels[n] not in held],
            "test": [n for n in parts["test"] if labels[n] in held]}


def open_set_metrics(embeddings: np.ndarray, labels: Sequence[str], seed: int = 0) -> OpenSetMetrics:
    """Leave-one-out P@5, k-means purity and NMI (k = number of held-out styles) of held-out takes.

    Purity and NMI are None with a single held-out style (nothing to separate).
    """
    from encoder.evaluation.metrics import clustering_metrics, retrieval_metrics

    clusters = clustering_metrics(embeddings, labels, 10, seed)
    loo = retrieval_metrics(embeddings, labels)
    return OpenSetMetrics(loo_p5=loo.p(5), purity=clusters.purity, nmi=clusters.nmi)


def handcrafted_open_set(features_fit: np.ndarray, features_test: np.ndarray,
                         test_labels: Sequence[str]) -> OpenSetMetrics:
    """The hand-made floor on the open-set takes: standardised features as the embedding."""
    from sklearn.preprocessing import StandardScaler

    scaled = StandardScaler().fit(features_fit).transform(features_test)
    return open_set_metrics(scaled, test_labels)
