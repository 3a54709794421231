"""Evaluation: every BENCHMARK.md metric (``metrics``) as typed results (``results``),
``evaluate_encoder`` (``evaluate``), the report of ``posestyle evaluate`` (``report``, ``plots``)
and cost timing (``cost``).

The names below load from their submodule on first use, so the metrics import without torch or matplotlib.
"""
from __future__ import annotations

from encoder.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "ClassificationMetrics": "encoder.evaluation.results",
    "ClassScores": "encoder.evaluation.results",
    "CostMetrics": "encoder.evaluation.results",
    "EmbeddingSpaceMetrics": "encoder.evaluation.results",
    "Evaluation": "encoder.evaluation.evaluate",
    "HeadlineMetrics": "encoder.evaluation.results",
    "MeanStd": "encoder.evaluation.results",
    "OpenSetMetrics": "encoder.evaluation.results",
    "RetrievalMetrics": "encoder.evaluation.results",
    "StyleMetrics": "encoder.evaluation.results",
    "average_precision": "encoder.evaluation.metrics",
    "classification_metrics": "encoder.evaluation.metrics",
    "cluster_purity": "encoder.evaluation.metrics",
    "clustering_metrics": "encoder.evaluation.metrics",
    "compute_metrics": "encoder.evaluation.metrics",
    "cosine_distance_stats": "encoder.evaluation.metrics",
    "embed_labelled": "encoder.evaluation.evaluate",
    "embedding_space_metrics": "encoder.evaluation.metrics",
    "evaluate_encoder": "encoder.evaluation.evaluate",
    "headline_rows": "encoder.evaluation.report",
    "kmeans_labels": "encoder.evaluation.metrics",
    "measure_cost": "encoder.evaluation.cost",
    "retrieval_metrics": "encoder.evaluation.metrics",
    "silhouette_cosine": "encoder.evaluation.metrics",
    "summary_markdown": "encoder.evaluation.report",
    "write_report": "encoder.evaluation.report",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
