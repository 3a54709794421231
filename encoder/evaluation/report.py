"""Evaluation report: ``metrics.json``, ``summary.md`` (Markdown tables), ``confusion.png``, ``umap.png``."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from encoder.data.atomic import atomic_write_text
from encoder.evaluation.metrics import headline_metrics
from encoder.evaluation.plots import plot_confusion, plot_embedding_map


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


def summary_markdown(metrics: dict[str, Any], title: str = "Evaluation") -> str:
    """The human-readable report: headline figures, per-class F1, confusion matrix, retrieval."""
    parts = [f"# {title}", ""]
    context = metrics.get("context", {})
    if context:
        parts += ["## Run", "", _table(["item", "value"], [[k, v] for k, v in context.items()]), ""]
    head = headline_metrics(metrics)
    parts += ["## Headline", "", _table(["metric", "value"], [[k, v] for k, v in head.items() if v is not None]), ""]

    cls = metrics.get("classification")
    if cls:
        rows = [[name, pc["precision"], pc["recall"], pc["f1"], pc["support"]]
                for name, pc in cls["per_class"].items()]
        parts += ["## Per-class (style head)", "", _table(["style", "precision", "recall", "F1", "support"], rows), ""]
        labels, matrix = cls["confusion"]["labels"], cls["confusion"]["matrix"]
        parts += ["## Confusion matrix (rows: true, columns: predicted)", "",
                  _table(["true \\ predicted", *labels], [[lab, *row] for lab, row in zip(labels, matrix)]), ""]

    emb = metrics.get("embedding", {})
    if emb:
        keys = ["k", "restarts", "purity", "nmi", "silhouette_cosine", "intra_class_cosine_distance",
                "inter_class_cosine_distance", "inter_minus_intra"]
        rows = [[k, emb.get(k)] for k in keys if k in emb]
        parts += ["## Embedding space", "", _table(["metric", "value"], rows), ""]

    ret = metrics.get("retrieval", {})
    if ret:
        modes = [m for m in ("gallery", "leave_one_out") if m in ret]
        keys = ["queries", "gallery_size", "precision_at_5", "precision_at_10", "map", "queries_without_hit"]
        rows = [[k, *[ret[m].get(k) for m in modes]] for k in keys]
        parts += ["## Retrieval (hit = same style)", "",
                  _table(["metric", *[m.replace("_", "-") for m in modes]], rows), ""]

    cost = metrics.get("cost")
    if cost:
        parts += ["## Cost", "", _table(["metric", "value"], [[k, v] for k, v in cost.items()]), ""]
    return "\n".join(parts)


def write_report(metrics: dict[str, Any], out_dir: str | Path, embeddings: np.ndarray | None = None,
                 labels: Sequence[str] | None = None, title: str = "Evaluation") -> dict[str, Path]:
    """Write the report files into ``out_dir``; returns their paths by name.

    ``confusion.png`` needs the classification metrics; ``umap.png`` needs the test
    ``embeddings`` and their ``labels``. Files that cannot be drawn are simply not written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    cls = metrics.get("classification")
    if cls:
        written["confusion"] = plot_confusion(cls["confusion"]["matrix"], cls["confusion"]["labels"],
                                              out / "confusion.png")
    if embeddings is not None and labels is not None:
        path, method = plot_embedding_map(np.asarray(embeddings), list(labels), out / "umap.png", title=title)
        written["umap"] = path
        metrics = {**metrics, "embedding_map_method": method}
    metrics_path = out / "metrics.json"
    atomic_write_text(metrics_path, json.dumps(metrics, indent=2, sort_keys=False, default=_json_default) + "\n")
    written["metrics"] = metrics_path
    summary_path = out / "summary.md"
    atomic_write_text(summary_path, summary_markdown(metrics, title) + "\n")
    written["summary"] = summary_path
    return written


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
