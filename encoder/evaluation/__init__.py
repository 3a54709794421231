"""Evaluation: every BENCHMARK.md metric (``metrics``), ``evaluate_encoder`` (``evaluate``), the
report of ``posestyle evaluate`` (``report``, ``plots``) and cost timing (``cost``).

The names below load from their submodule on first use, so the metrics import without torch or matplotlib.
"""
from __future__ import annotations

from encoder.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "Evaluation": "encoder.evaluation.evaluate",
    "average_precision": "encoder.evaluation.metrics",
    "classification_metrics": "encoder.evaluation.metrics",
    "cluster_purity": "encoder.evaluation.metrics",
    "clustering_metrics": "encoder.evaluation.metrics",
    "compute_metrics": "encoder.evaluation.metrics",
    "cosine_distance_stats": "encoder.evaluation.metrics",
    "embed_labelled": "encoder.evaluation.evaluate",
    "evaluate_encoder": "encoder.evaluation.evaluate",
    "flatten_metrics": "encoder.evaluation.metrics",
    "headline_metrics": "encoder.evaluation.metrics",
    "kmeans_labels": "encoder.evaluation.metrics",
    "measure_cost": "encoder.evaluation.cost",
    "retrieval_metrics": "encoder.evaluation.metrics",
    "silhouette_cosine": "encoder.evaluation.metrics",
    "summary_markdown": "encoder.evaluation.report",
    "write_report": "encoder.evaluation.report",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
