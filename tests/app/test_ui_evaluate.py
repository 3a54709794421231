"""Evaluate page under AppTest: the cluster quality shown is ``encoder.evaluation.metrics`` over the
live index's embeddings, k is the user's, and the confusion matrix is the style head's."""
from __future__ import annotations

import json

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

from encoder.data.dataset import DatasetCache
from encoder.evaluation.metrics import classification_metrics, cluster_purity, compute_metrics
from encoder.inference import StyleEncoder
from retrieval.index import IndexManager
from retrieval.store import MetadataStore, default_database_url


def assert_no_traceback(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _live_embeddings(root) -> tuple[list[str], np.ndarray]:
    with MetadataStore.open(default_database_url(root)) as store:
        searcher = IndexManager(root, store).open_live()
        return searcher.sequence_ids, searcher.vectors(np.arange(searcher.count))


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_cluster_quality_and_confusion_match_the_metrics_module(app_test, small_index) -> None:
    ids, vectors = _live_embeddings(small_index.root)
    labels = [small_index.labels[s] for s in ids]
    expected = compute_metrics(vectors, None, labels).embedding

    at = app_test(small_index.root)
    at.run()
    at.switch_page("views/evaluate.py").run()
    assert_no_traceback(at)
    assert not at.error, [e.value for e in at.error]
    styles = len(set(labels))
    assert at.number_input(key="evaluate-k").value == styles
    assert _metric(at, f"purity (k={styles})") == f"{expected.purity:.3f}"
    assert _metric(at, f"NMI (k={styles})") == f"{expected.nmi:.3f}"
    assert _metric(at, "silhouette (cosine)") == f"{expected.silhouette:.3f}"

    encoder = StyleEncoder.load(small_index.checkpoint)
    dataset = DatasetCache.open(small_index.dataset)
    predicted, _ = encoder.predict([dataset.load(s) for s in ids])
    confusion = classification_metrics(labels, predicted, encoder.labels)
    assert _metric(at, "accuracy") == f"{confusion.accuracy:.3f}"
    heatmap = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]
    assert np.asarray(heatmap["text"]).tolist() == confusion.confusion
    table = at.dataframe[0].value
    assert table["support"].tolist() == [confusion.per_class[n].support for n in encoder.labels]


def test_user_chosen_k_changes_purity_and_nmi(app_test, small_index) -> None:
    ids, vectors = _live_embeddings(small_index.root)
    labels = [small_index.labels[s] for s in ids]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    clusters = KMeans(n_clusters=3, n_init=10, random_state=0).fit(unit.astype(np.float64)).labels_

    at = app_test(small_index.root)
    at.run()
    at.switch_page("views/evaluate.py").run()
    at.number_input(key="evaluate-k").set_value(3).run()
    assert_no_traceback(at)
    assert _metric(at, "purity (k=3)") == f"{cluster_purity(labels, clusters):.3f}"
    assert _metric(at, "NMI (k=3)") == f"{normalized_mutual_info_score(labels, clusters):.3f}"
