"""``posestyle train`` and ``posestyle evaluate`` end to end on a tiny ingested dataset."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from app.cli import cli
from encoder.checkpoint import read_checkpoint
from encoder.data.dataset import DatasetCache, ingest
from encoder.data.demo import generate_demo_corpus
from tests.support.interrupted_training import count_trained_epochs, interrupt_training_at_epoch

runner = CliRunner()
TINY = '{"branch_channels": [8, 16, 16], "relation_dim": 32, "embedding_dim": 16, "num_relation_layers": 1}'


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """30 short demo walks (5 per style, 2D view) ingested into a dataset cache."""
    root = tmp_path_factory.mktemp("cli_model")
    raw = root / "raw"
    raw.mkdir()
    for seq in generate_demo_corpus(30, seed=3, views=("2d",)):
        short = seq.with_(joints=seq.joints[:80], confidence=seq.confidence[:80])
        np.savez(raw / f"{seq.name}.npz", **short.to_arrays())
    report = ingest([raw], root / "data", progress=False)
    assert report.ok and report.read == 30
    return root / "data"


def _train(dataset: Path, out: Path, *extra: str):
    config = out.parent / "cfg.yaml"
    config.write_text(f"model_config: {TINY}\nbatch_size: 8\nprogress: false\naugment: {{variants: 1}}\n")
    return runner.invoke(cli, ["train", "--model", "posestyle_net", "--data", str(dataset), "--seed", "0",
                               "--config", str(config), "--out", str(out), "--epochs", "3", "--threads", "1",
                               *extra])


def test_train_auto_split_then_evaluate(dataset, tmp_path):
    ckpt = tmp_path / "enc.safetensors"
    result = _train(dataset, ckpt, "--split", "auto", "--set", "lr=0.004")
    assert result.exit_code == 0, result.output
    assert "encoder version" in result.output
    _, meta = read_checkpoint(ckpt)
    assert meta.training["split"] == {"spec": "auto", "seed": 0, "train": 18, "val": 6, "test": 6}
    assert meta.training["config"]["lr"] == pytest.approx(0.004) and meta.training["epochs_run"] == 3
    assert len(meta.labels) == 6

    out = tmp_path / "report"
    result = runner.invoke(cli, ["evaluate", str(ckpt), "--data", str(dataset), "--split", "auto",
                                 "--out", str(out), "--no-cost"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 6 and metrics["retrieval"]["gallery"]["gallery_size"] == 24
    assert metrics["context"]["encoder_version"] == meta.encoder_version
    for name in ("summary.md", "confusion.png", "umap.png"):
        assert (out / name).is_file()


def test_split_files_by_prefix(dataset, tmp_path):
    cache = DatasetCache.open(dataset)
    by_style: dict[str, list[str]] = {}
    for item in cache.items:
        by_style.setdefault(item.label, []).append(item.name)
    train = [n for names in by_style.values() for n in names[:3]]
    val = [names[3] for names in by_style.values()]
    test = [names[4] for names in by_style.values()]
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "mine-train.txt").write_text("\n".join(train) + "\n")
    (splits / "mine-val.txt").write_text("# validation\n" + "\n".join(val) + "\n")
    (splits / "mine-test.txt").write_text("\n".join(test) + "\n")
    ckpt = tmp_path / "enc.safetensors"
    result = _train(dataset, ckpt, "--split", str(splits / "mine"))
    assert result.exit_code == 0, result.output
    _, meta = read_checkpoint(ckpt)
    assert meta.training["n_train"] == 18 and meta.training["n_val"] == 6

    out = tmp_path / "report"
    result = runner.invoke(cli, ["evaluate", str(ckpt), "--data", str(dataset), "--split",
                                 str(splits / "mine-test.txt"), "--gallery-split", str(splits / "mine"),
                                 "--out", str(out), "--no-cost"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 6 and metrics["retrieval"]["gallery"]["gallery_size"] == 24


def test_bad_arguments_give_one_line_errors(dataset, tmp_path):
    result = _train(dataset, tmp_path / "enc.pt", "--split", "auto")
    assert result.exit_code == 2 and ".safetensors" in result.output
    result = _train(dataset, tmp_path / "enc.safetensors", "--split", str(tmp_path / "nothing"))
    assert result.exit_code == 1 and "no split files" in result.output
    result = _train(dataset, tmp_path / "enc.safetensors", "--split", "auto", "--set", "augment.nope=1")
    assert result.exit_code == 2 and "unknown setting" in result.output
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(b"\x80\x04K\x01.")
    result = runner.invoke(cli, ["evaluate", str(evil), "--data", str(dataset), "--split", "auto",
                                 "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "unsupported checkpoint type" in result.output


def test_an_interrupted_train_command_resumes_from_its_last_epoch(dataset, tmp_path, monkeypatch):
    """Stopped in epoch 3, the same command continues there (epochs 3 and 4 only) and writes the model an
    uninterrupted run writes; the state file is gone afterwards; --no-resume keeps no state at all."""
    whole = tmp_path / "whole.safetensors"
    assert _train(dataset, whole, "--epochs", "4").exit_code == 0
    ckpt = tmp_path / "enc.safetensors"
    interrupt_training_at_epoch(monkeypatch, 3)
    stopped = _train(dataset, ckpt, "--epochs", "4")
    assert stopped.exit_code != 0 and not ckpt.exists()
    assert ckpt.with_suffix(".resume.pt").is_file()
    epochs = count_trained_epochs(monkeypatch)
    resumed = _train(dataset, ckpt, "--epochs", "4")
    assert resumed.exit_code == 0, resumed.output
    assert len(epochs) == 2 and not ckpt.with_suffix(".resume.pt").exists()
    (a, meta), (b, _) = read_checkpoint(ckpt), read_checkpoint(whole)
    assert meta.training["resumed_after_epoch"] == 2
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    fresh = tmp_path / "fresh.safetensors"
    assert _train(dataset, fresh, "--epochs", "1", "--no-resume").exit_code == 0
    assert not list(tmp_path.glob("fresh*.resume.pt"))


def test_train_a_student_from_a_teacher_checkpoint(dataset, tmp_path):
    teacher = tmp_path / "teacher.safetensors"
    assert _train(dataset, teacher, "--split", "auto").exit_code == 0
    student = tmp_path / "student.safetensors"
    args = ["train", "--model", "st_mlp", "--data", str(dataset), "--split", "auto", "--seed", "0",
            "--out", str(student), "--epochs", "2", "--threads", "1", "--set", "progress=false",
            "--set", "model_config.frame_hidden=16", "--set", "model_config.window_hidden=16"]
    result = runner.invoke(cli, [*args, "--teacher", str(teacher)])
    assert result.exit_code == 0, result.output
    _, meta = read_checkpoint(student)
    _, teacher_meta = read_checkpoint(teacher)
    assert meta.model_name == "st_mlp" and meta.labels == teacher_meta.labels
    assert meta.training["teacher"]["encoder_version"] == teacher_meta.encoder_version
    missing = runner.invoke(cli, [*args, "--teacher", str(tmp_path / "nope.safetensors")])
    assert missing.exit_code == 1
    assert "nope.safetensors: checkpoint file not found" in missing.output
