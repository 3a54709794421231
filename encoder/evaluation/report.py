"""Evaluation report: ``metrics.json``, ``summary.md`` (Markdown tables), ``confusion.png``, ``umap.png``."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from encoder.data.atomic import atomic_write_text
from encoder.evaluation.plots import plot_confusion, plot_embedding_map
from encoder.evaluation.results import CostMetrics, HeadlineMetrics, StyleMetrics


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def headline_rows(metrics: StyleMetrics, cost: CostMetrics | None = None) -> list[tuple[str, float]]:
    """The measured headline figures (benchmark names), then the cost figures when timed."""
    rows = [(k, v) for k, v in HeadlineMetrics.from_metrics(metrics).figures().items() if v is not None]
    if cost is not None:
        rows += [("params", cost.parameters), ("emb_per_s", cost.embeddings_per_second),
                 ("latency_ms", cost.single_query_latency_ms)]
    return rows


def summary_markdown(metrics: StyleMetrics, title: str = "Evaluation", cost: CostMetrics | None = None,
                     context: Mapping[str, Any] | None = None) -> str:
    """The human-readable report: headline figures, per-class F1, confusion matrix, retrieval."""
    parts = [f"# {title}", ""]
    if context:
        parts += ["## Run", "", _table(["item", "value"], [[k, v] for k, v in context.items()]), ""]
    parts += ["## Headline", "", _table(["metric", "value"], headline_rows(metrics, cost)), ""]

    cls = metrics.classification
    if cls is not None:
        rows = [[name, pc.precision, pc.recall, pc.f1, pc.support] for name, pc in cls.per_class.items()]
        parts += ["## Per-class (style head)", "", _table(["style", "precision", "recall", "F1", "support"], rows), ""]
        parts += ["## Confusion matrix (rows: true, columns: predicted)", "",
                  _table(["true \\ predicted", *cls.labels],
                         [[lab, *row] for lab, row in zip(cls.labels, cls.confusion)]), ""]

    emb = metrics.embedding
    rows = [[k, v] for k, v in emb.to_dict().items() if k != "note"]
    parts += ["## Embedding space", "", _table(["metric", "value"], rows), ""]

    modes = [("gallery", metrics.gallery), ("leave-one-out", metrics.leave_one_out)]
    blocks = [(name, r.to_dict()) for name, r in modes if r is not None]
    keys = ["queries", "gallery_size", "precision_at_5", "precision_at_10", "map", "queries_without_hit"]
    rows = [[k, *[b.get(k) for _, b in blocks]] for k in keys]
    parts += ["## Retrieval (hit = same style)", "", _table(["metric", *[name for name, _ in blocks]], rows), ""]

    if cost is not None:
        parts += ["## Cost", "", _table(["metric", "value"], [[k, v] for k, v in cost.to_dict().items()]), ""]
    return "\n".join(parts)


def write_report(metrics: StyleMetrics, out_dir: str | Path, embeddings: np.ndarray | None = None,
                 labels: Sequence[str] | None = None, title: str = "Evaluation", cost: CostMetrics | None = None,
                 context: Mapping[str, Any] | None = None, skipped: int | None = None) -> dict[str, Path]:
    """Write the report files into ``out_dir``; returns their paths by name.

    ``metrics.json`` is ``metrics.to_dict()`` with ``skipped`` (sequences left out), ``cost``,
    ``context`` and ``embedding_map_method`` added when given. ``confusion.png`` needs the
    classification metrics; ``umap.png`` needs the test ``embeddings`` and their ``labels``.
    Files that cannot be drawn are simply not written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    document = metrics.to_dict()
    if skipped is not None:
        document["skipped"] = skipped
    if cost is not None:
        document["cost"] = cost.to_dict()
    if context is not None:
        document["context"] = dict(context)
    cls = metrics.classification
    if cls is not None:
        written["confusion"] = plot_confusion(cls.confusion, cls.labels, out / "confusion.png")
    if embeddings is not None and labels is not None:
        path, method = plot_embedding_map(np.asarray(embeddings), list(labels), out / "umap.png", title=title)
        written["umap"] = path
        document["embedding_map_method"] = method
    metrics_path = out / "metrics.json"
    atomic_write_text(metrics_path, json.dumps(document, indent=2, sort_keys=False) + "\n")
    written["metrics"] = metrics_path
    summary_path = out / "summary.md"
    atomic_write_text(summary_path, summary_markdown(metrics, title, cost, context) + "\n")
    written["summary"] = summary_path
    return written

