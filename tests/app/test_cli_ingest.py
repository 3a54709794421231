"""``posestyle ingest`` and ``posestyle demo-corpus`` through the Typer app: output and exit codes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result
from typer.testing import CliRunner

from app.cli import cli
from encoder.data.dataset import DatasetCache
from encoder.data.sequence import PoseSequence
from encoder.data.skeleton import NUM_JOINTS

runner = CliRunner()


def _write_take(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    seq = PoseSequence(joints=rng.normal(size=(10, NUM_JOINTS, 3)), confidence=np.ones((10, NUM_JOINTS)), fps=30.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **seq.to_arrays())


@pytest.fixture()
def takes(tmp_path: Path) -> Path:
    """Three good takes of two styles, one truncated JSON and one empty file."""
    folder = tmp_path / "takes"
    _write_take(folder / "runway_strut_01.npz", 1)
    _write_take(folder / "runway_strut_02.npz", 2)
    _write_take(folder / "runway_glide_03.npz", 3)
    (folder / "broken.json").write_text('{"frames": [{"frame_id": 0, "instances": [')
    (folder / "zero.npy").write_bytes(b"")
    return folder


def _ingest(*args: str) -> Result:
    return runner.invoke(cli, ["ingest", *args])


def test_ingest_prints_summary_and_every_bad_file(takes: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    result = _ingest(str(takes), "--out", str(out), "--label-pattern", r"runway_(?P<label>[a-z]+)_\d+")
    assert result.exit_code == 0, result.output
    stdout = result.stdout
    assert "sequences read" in stdout and "failed" in stdout
    lines = stdout.splitlines()
    assert any("sequences read" in ln and ln.rstrip(" │|").endswith("3") for ln in lines)
    assert any("label strut" in ln and "2" in ln for ln in lines)
    assert any("label glide" in ln and "1" in ln for ln in lines)
    broken = next(ln for ln in lines if ln.startswith(str(takes / "broken.json")))
    assert "malformed JSON" in broken
    zero = next(ln for ln in lines if ln.startswith(str(takes / "zero.npy")))
    assert "empty file" in zero
    assert "Traceback" not in result.output
    cache = DatasetCache.open(out)
    assert cache.labels() == ["glide", "strut"] and len(cache) == 3
    assert DatasetCache.open(out).version in stdout


def test_reingest_reports_reuse(takes: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    assert _ingest(str(takes), "--out", str(out)).exit_code == 0
    again = _ingest(str(takes), "--out", str(out), "--workers", "2")
    assert again.exit_code == 0
    assert any("arrays reused" in ln and ln.rstrip(" │|").endswith("3") for ln in again.stdout.splitlines())


def test_every_file_bad_exits_1_and_names_them(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("[")
    (tmp_path / "bad.bvh").write_text("HIERARCHY\nROOT Hips\n{")
    result = _ingest(str(tmp_path / "bad.json"), str(tmp_path / "bad.bvh"), "--out", str(tmp_path / "ds"))
    assert result.exit_code == 1
    assert f"{tmp_path / 'bad.json'}: malformed JSON" in result.stdout
    assert str(tmp_path / "bad.bvh") + ":" in result.stdout
    assert "nothing was ingested" in result.stdout
    assert not (tmp_path / "ds" / "manifest.json").exists()
    assert "Traceback" not in result.output


def test_csv_labels_and_csv_without_columns(takes: Path, tmp_path: Path) -> None:
    good = tmp_path / "labels.csv"
    good.write_text("name,label,tags\nrunway_strut_01,bold,a;b\nrunway_glide_03,soft,\n")
    result = _ingest(str(takes), "--out", str(tmp_path / "ds"), "--labels-csv", str(good))
    assert result.exit_code == 0, result.output
    cache = DatasetCache.open(tmp_path / "ds")
    assert cache.item("runway_strut_01").metadata["tags"] == ["a", "b"]
    assert cache.label_counts() == {"(unlabelled)": 1, "bold": 1, "soft": 1}

    bad = tmp_path / "nolabel.csv"
    bad.write_text("file,style\nrunway_strut_01,bold\n")
    result = _ingest(str(takes), "--out", str(tmp_path / "ds2"), "--labels-csv", str(bad))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {bad}: labels CSV needs columns name and label; missing name, label (found: file, style)"]
    assert not (tmp_path / "ds2").exists()


@pytest.mark.parametrize("extra, message", [
    (["--label-pattern", "(?P<label>x", "--preset", "demo"], "give at most one of"),
    (["--label-pattern", "(?P<label>[a-z"], "invalid regular expression"),
    (["--label-pattern", "runway_[a-z]+"], "no named group"),
    (["--preset", "cmu"], "'cmu' is not one of 'bandai-namco', 'demo'"),
    (["--person", "tallest"], "'tallest' is not one of 'main', 'all'"),
])
def test_usage_errors_exit_2_with_one_line(takes: Path, tmp_path: Path, extra: list[str], message: str) -> None:
    result = _ingest(str(takes), "--out", str(tmp_path / "ds"), *extra)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "ds").exists()


def test_output_into_a_non_cache_folder_is_a_usage_error(takes: Path) -> None:
    result = _ingest(str(takes), "--out", str(takes))
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: {takes}: --out is a non-empty folder that is not a dataset cache; "
                                     "choose a new or empty folder")


def test_missing_arguments_are_usage_errors(tmp_path: Path) -> None:
    assert runner.invoke(cli, ["ingest", "--out", str(tmp_path / "ds")]).exit_code == 2
    assert runner.invoke(cli, ["ingest", str(tmp_path)]).exit_code == 2
    assert runner.invoke(cli, ["ingest", str(tmp_path), "--out", str(tmp_path / "ds"), "--workers", "0"]).exit_code == 2


def test_demo_corpus_then_ingest_with_demo_preset(tmp_path: Path) -> None:
    corpus = tmp_path / "demo"
    made = runner.invoke(cli, ["demo-corpus", "--out", str(corpus), "--n", "12", "--seed", "3"])
    assert made.exit_code == 0, made.output
    assert str(corpus / "2d") in made.stdout
    result = _ingest(str(corpus / "2d"), "--out", str(tmp_path / "ds"), "--preset", "demo")
    assert result.exit_code == 0, result.output
    cache = DatasetCache.open(tmp_path / "ds")
    assert len(cache) == 12
    assert len(cache.labels()) == 6 and set(cache.label_counts().values()) == {2}
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["label_source"]["preset"] == "demo"
    first = cache.load(cache.names[0])
    assert first.dims == 2 and first.label == cache.items[0].label
    assert isinstance(cache.items[0].metadata["tags"], list)
