"""``run_encoder_bench`` on a tiny toy dataset: row structure, aggregation, targets, report files.

One seed, one or two epochs, tiny models: checks what the bench writes, never how fast it ran.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.encoder_bench import (
    METRICS,
    EncoderBenchConfig,
    aggregate,
    evaluate_targets,
    handcrafted_features,
    mean_std,
    plan_jobs,
    run_encoder_bench,
)
from encoder.data.dataset import ingest

pytestmark = pytest.mark.slow   # trains and evaluates real (tiny) models end to end

TINY_SETTINGS = {"epochs": 1, "batch_size": 6, "warmup_epochs": 0, "augment.variants": 1, "patience": 1}
TINY_MODELS = {
    "posestyle_net": {"model_config": {"branch_channels": [8, 8, 8], "relation_dim": 16, "embedding_dim": 8,
                                       "num_relation_layers": 1}},
    "st_mlp": {"model_config": {"frame_hidden": 16, "window_hidden": 16, "embedding_dim": 8}},
}


@pytest.fixture(scope="module")
def toy_dataset(tmp_path_factory, make_toy_corpus) -> tuple[Path, Path]:
    """Toy 3D walks ingested into a dataset cache, with random-* and cross-content-* split files."""
    base = tmp_path_factory.mktemp("bench")
    raw = base / "raw"
    raw.mkdir()
    walks = make_toy_corpus(6, dims=3, seed=3, frames=50)
    for seq in walks:
        np.savez(raw / f"{seq.name}.npz", **seq.to_arrays())
    report = ingest([raw], base / "dataset", progress=False)
    assert report.failed == 0, report.errors
    splits = base / "splits"
    splits.mkdir()
    names = [s.name for s in walks]            # interleaved by style: every part gets every style
    for prefix in ("random", "cross-content"):
        for part, chosen in (("train", names[:9]), ("val", names[9:12]), ("test", names[12:])):
            (splits / f"{prefix}-{part}.txt").write_text("\n".join(chosen) + "\n")
    return base / "dataset", splits


def _config(dataset: Path, splits_dir: Path, **kw) -> EncoderBenchConfig:
    defaults = dict(data=dataset, splits_dir=splits_dir, models=("posestyle_net", "st_mlp"), splits=("random",),
                    views=("2d",), seeds=(0,), ablations=("w/o stage gating",), train=TINY_SETTINGS,
                    model_train=TINY_MODELS, cost=False, workers=1, threads_per_worker=1)
    defaults.update(kw)
    return EncoderBenchConfig(**defaults)


def test_bench_writes_one_row_per_model_split_view_with_mean_and_std(toy_dataset, tmp_path, one_torch_thread):
    dataset, splits = toy_dataset
    report = run_encoder_bench(_config(dataset, splits, views=("2d", "3d")), tmp_path / "out", progress=False)
    rows = json.loads((tmp_path / "out" / "encoders.json").read_text())
    assert rows == json.loads(json.dumps(report["rows"]))
    groups = {(r["model"], r["split"], r["view"], r.get("ablation")) for r in rows}
    expected = {(m, "random", v, None) for m in ("posestyle_net", "st_mlp", "handcrafted_stats_logreg")
                for v in ("2d", "3d")} | {("posestyle_net", "random", "2d", "w/o stage gating")}
    assert groups == expected and len(rows) == len(expected)
    for row in rows:
        assert row["seeds"] == [0]
        for metric in METRICS:
            cell = row[metric]
            assert set(cell) >= {"mean", "std"}
            assert cell["std"] == 0.0                                  # one seed
        assert 0.0 <= row["accuracy"]["mean"] <= 1.0 and -1.0 <= row["silhouette"]["mean"] <= 1.0
        assert {k for k in row if k.startswith("f1/")} == {f"f1/{s}" for s in ("fast_tight", "slow_wide", "swaying")}
    markdown = (tmp_path / "out" / "encoders.md").read_text()
    assert "PoseStyle-Net ablation" in markdown and "w/o stage gating" in markdown and "Targets" in markdown


def test_runs_file_resumes_without_retraining(toy_dataset, tmp_path, one_torch_thread):
    dataset, splits = toy_dataset
    config = _config(dataset, splits, models=("st_mlp",), ablations=(), runs_file=tmp_path / "runs.jsonl",
                     handcrafted=False)
    first = run_encoder_bench(config, None, progress=False)
    lines = (tmp_path / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 1
    second = run_encoder_bench(config, None, progress=False)
    assert (tmp_path / "runs.jsonl").read_text().splitlines() == lines          # nothing retrained
    assert second["meta"]["runs_resumed_from_file"] == 1
    assert second["rows"][0]["accuracy"] == first["rows"][0]["accuracy"]


def test_plan_covers_the_grid_and_the_ablations(toy_dataset):
    dataset, splits = toy_dataset
    config = _config(dataset, splits, splits=("random", "cross-content"), views=("2d", "3d"), seeds=(0, 1, 2),
                     seeds_by_view={"3d": (0,)}, ablations=("w/o stage gating", "w/o structural constraint term"))
    jobs = plan_jobs(config)
    grid = [j for j in jobs if j.ablation is None]
    assert len(grid) == 2 * 2 * (3 + 1)
    assert {j.seed for j in grid if j.view == "3d"} == {0}
    ablation = [j for j in jobs if j.ablation is not None]
    assert len(ablation) == 2 * 3 and all(j.model == "posestyle_net" and j.split == "random" for j in ablation)
    loss_off = next(j for j in ablation if j.ablation == "w/o structural constraint term")
    assert loss_off.settings["loss.use_compactness"] is False and loss_off.settings["loss.use_margin"] is False
    assert len({j.key() for j in jobs}) == len(jobs)


def test_mean_std_and_aggregate():
    cell = mean_std([0.9, 0.8, None, 1.0])
    assert cell["mean"] == pytest.approx(0.9) and cell["std"] == pytest.approx(0.1) and cell["n"] == 3
    records = [{"model": "m", "split": "random", "view": "2d", "ablation": None, "seed": s,
                "metrics": {"accuracy": a}, "epochs_run": 3, "parameters": 10, "n_test": 5, "run_seconds": 1.0,
                "settings": {}} for s, a in ((1, 0.5), (0, 0.7))]
    (row,) = aggregate(records)
    assert row["seeds"] == [0, 1] and row["accuracy"]["mean"] == pytest.approx(0.6)
    assert row["accuracy"]["std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))


def test_targets_report_met_missed_and_the_gap():
    def row(model, **values):
        return {"model": model, "split": "random", "view": "2d", "seeds": [0],
                **{k: {"mean": v, "std": 0.0} for k, v in values.items()}}

    head = row("posestyle_net", accuracy=0.95, macro_f1=0.90, purity=0.80, nmi=0.9, silhouette=0.6)
    head["cost"] = {"parameters": 400_000, "embeddings_per_second": 800.0}
    targets = {t["target"]: t for t in evaluate_targets([head, row("st_mlp", purity=0.85, nmi=0.5, silhouette=0.1)])}
    acc = targets["PoseStyle-Net 2d/random accuracy >= 0.946"]
    assert acc["met"] and acc["gap"] == pytest.approx(0.004)
    f1 = targets["PoseStyle-Net 2d/random macro_f1 >= 0.934"]
    assert not f1["met"] and f1["gap"] == pytest.approx(-0.034)
    purity = targets["PoseStyle-Net above every baseline on purity (2d/random)"]
    assert not purity["met"] and purity["gap"] == pytest.approx(-0.05)
    assert targets["parameters <= 8.1 M"]["met"]
    speed = next(t for k, t in targets.items() if k.startswith("embeddings/s"))
    assert not speed["met"] and speed["gap"] == pytest.approx(-200.0)
    unmeasured = targets["PoseStyle-Net 2d/random gallery_p@5 >= 0.95"]
    assert unmeasured["measured"] is None and unmeasured["met"] is None


def test_handcrafted_features_are_per_joint_statistics(make_toy_corpus):
    seq = make_toy_corpus(1, dims=2, seed=0)[0]
    feats = handcrafted_features(seq)
    assert feats.shape == (4 * 17 * 2,) and np.isfinite(feats).all()
    still = seq.with_(joints=np.repeat(seq.joints[:1], len(seq.joints), axis=0))
    moving = handcrafted_features(still)
    assert np.allclose(moving[2 * 34:], 0.0)             # no motion: velocity statistics vanish
