"""Report files: metrics.json, summary.md tables, confusion.png, umap.png (UMAP or fallback)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from encoder.evaluation.metrics import compute_metrics
from encoder.evaluation.plots import embedding_map
from encoder.evaluation.report import write_report


def _metrics(n_per=3, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(["walk", "strut", "glide"], n_per)
    emb = np.eye(3)[np.repeat([0, 1, 2], n_per)] + rng.normal(scale=0.05, size=(3 * n_per, 3))
    logits = emb * 5
    return compute_metrics(emb, logits, labels, label_names=["walk", "strut", "glide"]), emb, labels


def test_write_report_files(tmp_path):
    metrics, emb, labels = _metrics()
    written = write_report(metrics, tmp_path / "report", embeddings=emb, labels=labels, title="toy")
    for name in ("metrics.json", "summary.md", "confusion.png", "umap.png"):
        path = tmp_path / "report" / name
        assert path.is_file() and path.stat().st_size > 0, name
    assert set(written) == {"metrics", "summary", "confusion", "umap"}
    saved = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert saved["classification"]["accuracy"] == pytest.approx(metrics.classification.accuracy)
    assert {k: v for k, v in saved.items() if k != "embedding_map_method"} == json.loads(json.dumps(metrics.to_dict()))
    assert saved["embedding_map_method"] == "pca"                # 9 points: below UMAP's minimum
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "| style | precision | recall | F1 | support |" in summary
    assert "| strut |" in summary
    assert "leave-one-out" in summary
    assert not list((tmp_path / "report").glob("*.tmp"))


def test_too_few_points_fall_back():
    coords, method = embedding_map(np.ones((2, 4)))
    assert method == "none" and coords.shape == (2, 2)
    coords, method = embedding_map(np.random.default_rng(0).normal(size=(5, 4)))
    assert method == "pca" and coords.shape == (5, 2)


@pytest.mark.slow
def test_umap_map_with_enough_points():
    # three well separated groups must stay apart in the 2D map
    rng = np.random.default_rng(1)
    emb = np.repeat(np.eye(8)[:3], 5, axis=0) + rng.normal(scale=0.02, size=(15, 8))
    coords, method = embedding_map(emb)
    assert method == "umap" and coords.shape == (15, 2) and np.isfinite(coords).all()
    centres = np.stack([coords[i * 5:(i + 1) * 5].mean(axis=0) for i in range(3)])
    spread = max(np.linalg.norm(coords[i * 5:(i + 1) * 5] - centres[i], axis=1).max() for i in range(3))
    gaps = [np.linalg.norm(centres[i] - centres[j]) for i in range(3) for j in range(i + 1, 3)]
    assert min(gaps) > spread
