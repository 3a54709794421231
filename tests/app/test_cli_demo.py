"""``posestyle demo`` on the generated corpus: corpus (2d view only), ingest, training and index, each
skipped on a second run."""
from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.cli.demo_commands import DEMO_TRAIN_WINDOWS
from encoder.checkpoint import load_checkpoint
from encoder.training import DEFAULT_MODEL

pytestmark = pytest.mark.slow


def test_demo_trains_then_indexes_and_skips_done_steps(tmp_path: Path) -> None:
    root = tmp_path / "index_data"
    result = CliRunner().invoke(cli, ["demo", "--n", "90", "--epochs", "1", "--no-app", "--root", str(root)],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    checkpoint = root / "models" / f"demo-{DEFAULT_MODEL}-seed0.safetensors"      # the default encoder
    meta = load_checkpoint(checkpoint)[1]
    trained = meta.training["config"]
    assert meta.model_name == DEFAULT_MODEL
    # --epochs wins; the rest is the demo schedule
    assert (trained["epochs"], trained["train_windows"]) == (1, DEMO_TRAIN_WINDOWS)
    assert trained["augment"]["enabled"] is False and trained["model_config"]["dropout"] == 0.0
    assert trained["validate_from"] == 9
    assert sorted(p.name for p in (root / "demo" / "raw").iterdir()) == ["2d"]        # the demo needs no 3d view
    again = CliRunner().invoke(cli, ["demo", "--n", "90", "--no-app", "--root", str(root)], terminal_width=200)
    assert again.exit_code == 0, again.output
    assert "training skipped" in " ".join(again.output.split())
