"""``benchmarks.encoder_profile`` / ``posestyle bench encoder-speed``: the report's rows, and bad options."""
from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from app.cli import cli
from benchmarks.encoder_profile import POSESTYLE_STAGES, run_profile


def test_profile_report_times_every_part_and_stage(tmp_path: Path) -> None:
    report = run_profile(tmp_path / "no-cache", None, sequences=3, repeats=1, threads=1, command="test")
    assert "3 synthetic demo walks" in report
    rows = dict(re.findall(r"^\| (.+?) \| (-?[\d.]+) \| -?[\d.]+ \|$", report, flags=re.M))
    for part in ("preprocess 3 sequences", "model, eval, batch of 3", "single-query embed (1 sequence, end to end)",
                 "training step, batch of 3: backward", "training step, batch of 3: training step"):
        assert float(rows[part]) > 0, part
    # every stage of the default model is timed, and no time is counted twice (one run: the rest,
    # total minus the stages, cannot be negative unless stages overlap)
    for label in [*POSESTYLE_STAGES.values(), "pose graph (eq. 3)"]:
        assert float(rows[label]) >= 0, label
    assert float(rows["rest (window gather/scatter, eqs. 7-8, 11, glue)"]) >= -0.05


def test_profile_of_a_skeleton_map_model_times_its_rendering_in_inference_and_training(tmp_path: Path) -> None:
    report = run_profile(tmp_path / "no-cache", None, sequences=3, repeats=1, threads=1, command="test",
                         model="hstl")
    assert "freshly initialised default hstl" in report
    rows = dict(re.findall(r"^\| (.+?) \| (-?[\d.]+) \| -?[\d.]+ \|$", report, flags=re.M))
    assert 0 < float(rows["skeleton-map rendering"]) < float(rows["total (with hooks)"])
    assert 0 < float(rows["training step, batch of 3: forward: skeleton-map rendering"]) < float(
        rows["training step, batch of 3: forward + loss"])
    assert float(rows["rest (the network and glue)"]) >= -0.05
    assert "unit 1 (shallow)" not in rows                       # PoseStyle-Net's stages only on PoseStyle-Net


def test_cli_refuses_an_unknown_model_with_one_line() -> None:
    result = CliRunner().invoke(cli, ["bench", "encoder-speed", "--model", "no_such_net"])
    assert result.exit_code == 2
    assert "unknown model 'no_such_net'" in result.output and "Traceback" not in result.output


def test_cli_refuses_a_missing_checkpoint_with_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["bench", "encoder-speed", "--checkpoint", str(tmp_path / "none.safetensors")])
    assert result.exit_code == 2
    assert "checkpoint not found" in result.output and "Traceback" not in result.output
