"""Evaluation: every BENCHMARK.md metric, the report (JSON, Markdown, figures) and cost timing."""
from encoder.evaluation.cost import measure_cost
from encoder.evaluation.evaluate import Evaluation, embed_labelled, evaluate_encoder
from encoder.evaluation.metrics import (
    average_precision,
    classification_metrics,
    cluster_purity,
    clustering_metrics,
    compute_metrics,
    cosine_distance_stats,
    flatten_metrics,
    headline_metrics,
    retrieval_metrics,
    silhouette_cosine,
)
from encoder.evaluation.report import summary_markdown, write_report

__all__ = [
    "Evaluation", "average_precision",
    "classification_metrics", "cluster_purity", "clustering_metrics", "compute_metrics",
    "cosine_distance_stats", "embed_labelled", "evaluate_encoder", "flatten_metrics",
    "headline_metrics", "measure_cost", "retrieval_metrics", "silhouette_cosine",
    "summary_markdown", "write_report",
]
