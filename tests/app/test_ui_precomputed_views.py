"""The map and the evaluation are computed when a version is built (``posestyle index``), stored under
``cache/``, and the Explore and Evaluate pages only load them: nothing is laid out or clustered
while a page renders."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import app.services.analysis as analysis
import encoder.evaluation.plots as plots
from app.cli import cli


def _forbid(*_args, **_kwargs):
    raise AssertionError("computed while the page rendered")


def test_index_command_stores_the_views_and_pages_only_load_them(app_test, index_copy, small_index,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(cli, ["reindex", "-c", str(small_index.checkpoint), "--root", str(index_copy),
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    with analysis.AppService(index_copy) as service:
        version = service.open_live().version
        quality_file = service.cache_path("quality", version).with_suffix(".json")
        assert service.cache_path("umap", version).is_file()
        assert service.cache_path("predictions", version).is_file()
    stored = json.loads(quality_file.read_text())
    assert stored["version"] == version and stored["n"] == len(small_index.sequence_ids)

    monkeypatch.setattr(analysis, "compute_metrics", _forbid)
    monkeypatch.setattr(analysis, "kmeans_labels", _forbid)
    monkeypatch.setattr(plots, "embedding_map", _forbid)
    monkeypatch.setattr(analysis.AppService, "_predict", _forbid)
    at = app_test(index_copy)
    at.run()
    for page in ("views/explore.py", "views/evaluate.py"):
        at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]
    assert at.metric and any(m.label.startswith("purity") for m in at.metric)
