"""Typed metric results: ``to_dict`` writes the JSON layout the project always wrote, ``from_dict`` reads
it back (committed runs file, metrics.json reports, the app's stored views)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from encoder.evaluation.metrics import compute_metrics
from encoder.evaluation.results import (
    HEADLINE_NAMES,
    ClassificationMetrics,
    HeadlineMetrics,
    MeanStd,
    OpenSetMetrics,
    StyleMetrics,
)

RUNS_FILE = Path(__file__).resolve().parents[3] / "docs" / "benchmarks" / "encoder-bench-runs.jsonl"

# What ``compute_metrics`` returned as a nested dict before the typed results (same inputs as below).
OLD_LAYOUT = {
    "n": 4, "dim": 2, "label_counts": {"a": 2, "b": 2},
    "classification": {"accuracy": 0.75, "macro_f1": 0.7333333333333334, "per_class": {
        "a": {"precision": 0.6666666666666666, "recall": 1.0, "f1": 0.8, "support": 2},
        "b": {"precision": 1.0, "recall": 0.5, "f1": 0.6666666666666666, "support": 2}},
        "confusion": {"labels": ["a", "b"], "matrix": [[2, 0], [1, 1]]}},
    "embedding": {"k": 2, "restarts": 10, "purity": 1.0, "nmi": 1.0, "silhouette_cosine": 0.9993906414732527,
                  "intra_class_cosine_distance": 0.0006091729809042379,
                  "inter_class_cosine_distance": 0.9999999999999999, "inter_minus_intra": 0.9993908270190957},
    "retrieval": {
        "leave_one_out": {"queries": 4, "gallery_size": 3, "precision_at_5": 0.3333333333333333,
                          "precision_at_10": 0.3333333333333333, "map": 1.0, "queries_without_hit": 0},
        "gallery": {"queries": 4, "gallery_size": 4, "precision_at_5": 0.5, "precision_at_10": 0.5, "map": 1.0,
                    "queries_without_hit": 0}},
}


def _angles(deg):
    rad = np.radians(np.asarray(deg, dtype=np.float64))
    return np.stack([np.cos(rad), np.sin(rad)], axis=1)


def _metrics() -> StyleMetrics:
    return compute_metrics(_angles([0, 2, 90, 92]), ["a", "a", "b", "a"], ["a", "a", "b", "b"],
                           gallery_embeddings=_angles([1, 3, 89, 45]), gallery_labels=["a", "a", "b", "b"])


def _close(a, b):
    """Equal JSON trees, floats to 1e-9 (k-means and BLAS may differ in the last bits)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, abs=1e-9)
    return a == b and type(a) is type(b)


def test_to_dict_is_the_old_nested_layout_and_reads_back():
    metrics = _metrics()
    assert _close(metrics.to_dict(), OLD_LAYOUT)
    assert StyleMetrics.from_dict(OLD_LAYOUT).to_dict() == OLD_LAYOUT
    assert StyleMetrics.from_dict(json.loads(json.dumps(metrics.to_dict()))) == metrics


def test_without_predictions_gallery_or_enough_styles():
    m = compute_metrics(_angles([0, 1, 2]), None, ["a", "a", "a"])
    d = m.to_dict()
    assert "classification" not in d and set(d["retrieval"]) == {"leave_one_out"}
    assert d["embedding"]["purity"] is None and "note" in d["embedding"] and "restarts" not in d["embedding"]
    assert d["embedding"]["inter_class_cosine_distance"] is None and d["embedding"]["inter_minus_intra"] is None
    assert StyleMetrics.from_dict(d) == m
    head = HeadlineMetrics.from_metrics(m)
    assert head.accuracy is None and head.gallery_p5 is None and head.loo_p5 == pytest.approx(1.0)


def test_metrics_json_extra_keys_are_ignored_when_reading():
    report = {**OLD_LAYOUT, "skipped": 0, "context": {"model": "st_mlp"}, "embedding_map_method": "pca"}
    assert StyleMetrics.from_dict(report).to_dict() == OLD_LAYOUT


def test_headline_row_names_match_the_benchmark_rows():
    head = HeadlineMetrics.from_metrics(_metrics())
    row = head.to_dict()
    assert list(row)[:len(HEADLINE_NAMES)] == list(HEADLINE_NAMES.values())
    assert row["gallery_p@5"] == pytest.approx(0.5) and row["loo_map"] == pytest.approx(1.0)
    assert row["f1/a"] == pytest.approx(0.8) and row["accuracy"] == pytest.approx(0.75)
    assert HeadlineMetrics.from_dict(row) == head


@pytest.mark.skipif(not RUNS_FILE.is_file(), reason="committed runs file not in this checkout")
def test_committed_runs_file_rows_round_trip():
    records = [json.loads(line) for line in RUNS_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert records
    checked = 0
    for rec in records:
        for key in ("metrics", "metrics_mirror_tta"):
            if key in rec:
                head = HeadlineMetrics.from_dict(rec[key])
                assert head.to_dict() == rec[key]
                assert head.accuracy == rec[key]["accuracy"] and head.gallery_p5 == rec[key]["gallery_p@5"]
                checked += 1
        if "open_set" in rec:
            assert OpenSetMetrics.from_dict(rec["open_set"]).to_dict() == rec["open_set"]
            checked += 1
    assert checked >= len(records)


def test_mean_std_over_seeds_and_summaries():
    cell = MeanStd.of([0.9, 0.8, None, float("nan"), 1.0])
    assert cell.mean == pytest.approx(0.9) and cell.std == pytest.approx(0.1) and cell.n == 3
    assert MeanStd.of([0.5]).std == 0.0
    assert MeanStd.of([None]).to_dict() == {"mean": None, "std": None, "n": 0}
    assert MeanStd.from_dict(cell.to_dict()) == cell
    runs = [HeadlineMetrics(accuracy=0.5, f1_per_class={"a": 0.4}), HeadlineMetrics(accuracy=0.7, loo_p5=0.9)]
    summary = HeadlineMetrics.summarize(runs)
    assert list(summary)[:len(HEADLINE_NAMES)] == list(HEADLINE_NAMES.values())
    assert summary["accuracy"].std == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert summary["loo_p@5"].n == 1 and summary["gallery_p@5"].mean is None
    assert summary["f1/a"].values == (0.4,)
    open_summary = OpenSetMetrics.summarize([OpenSetMetrics(0.8, 0.6, None), OpenSetMetrics(0.6, 0.8, None)])
    assert open_summary["loo_p@5"].mean == pytest.approx(0.7) and open_summary["nmi"].n == 0


def test_classification_round_trip():
    cls = _metrics().classification
    assert isinstance(cls, ClassificationMetrics)
    assert ClassificationMetrics.from_dict(json.loads(json.dumps(cls.to_dict()))) == cls
