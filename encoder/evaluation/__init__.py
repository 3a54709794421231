"""Evaluation: every BENCHMARK.md metric, the report (JSON, Markdown, figures) and cost timing."""
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
from encoder.evaluation.bench import (
    ABLATIONS,
    BENCH_SETTINGS,
    EncoderBenchConfig,
    evaluate_targets,
    run_encoder_bench,
    write_encoder_report,
)
from encoder.evaluation.cost import measure_cost
from encoder.evaluation.evaluate import Evaluation, embed_labelled, evaluate_encoder
from encoder.evaluation.report import summary_markdown, write_report

__all__ = [
    "ABLATIONS", "BENCH_SETTINGS", "EncoderBenchConfig", "Evaluation", "average_precision",
    "classification_metrics", "cluster_purity", "clustering_metrics", "compute_metrics",
    "cosine_distance_stats", "embed_labelled", "evaluate_encoder", "evaluate_targets", "flatten_metrics",
    "headline_metrics", "measure_cost", "retrieval_metrics", "run_encoder_bench", "silhouette_cosine",
    "summary_markdown", "write_encoder_report", "write_report",
]
