"""``posestyle bench encoders``: bad options fail with one line and exit code 2, before any training."""
from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli

runner = CliRunner()


@pytest.mark.parametrize(("args", "message"), [
    (["--models", "posestyle_net,no_such_model"], "--models: unknown no_such_model"),
    (["--views", "4d"], "--views: unknown 4d"),
    (["--seeds", "0,x"], "--seeds must be comma-separated integers"),
    (["--split-names", "by-actor"], "--split-names: unknown by-actor"),
    (["--teacher", "no_such_model"], "--teacher: unknown no_such_model"),
])
def test_bad_options_are_refused_with_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["bench", "encoders", "--out", str(tmp_path / "out"), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_missing_splits_folder_is_refused_before_ingesting(tmp_path: Path) -> None:
    data = tmp_path / "dataset"
    result = runner.invoke(cli, ["bench", "encoders", "--data", str(data), "--source", str(tmp_path / "raw"),
                                 "--splits", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "splits folder not found" in result.output
    assert not data.exists()
