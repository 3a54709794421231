"""``run_encoder_bench`` on a tiny toy dataset: row structure, aggregation, targets, report files.

One seed, one or two epochs, tiny models: checks what the bench writes, never how fast it ran.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.encoder_bench import (
    METRICS,
    MIRROR_TTA_ROW,
    MODEL_REVISIONS,
    RECIPE_VERSION,
    STATISTICS_ROW,
    BenchJob,
    EncoderBenchConfig,
    aggregate,
    as_served,
    evaluate_targets,
    how_it_was_run,
    job_priority,
    job_train_config,
    kept_checkpoint,
    plan_jobs,
    run_encoder_bench,
    run_summary,
    student_label,
)
from benchmarks.open_set import open_set_metrics, seen_parts
from encoder.data.dataset import ingest
from encoder.training.config import DEFAULT_MODEL
from tests.support.interrupted_training import count_trained_epochs, interrupt_training_at_epoch

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
                    model_train=TINY_MODELS, cost=False, workers=1, threads_per_worker=1, open_set=(),
                    student=None, teacher="posestyle_net")
    defaults.update(kw)
    return EncoderBenchConfig(**defaults)


def _plain_row(report: dict) -> dict:
    """The report's only row of a model's embedding alone (no ablation, no statistics appended)."""
    (row,) = [r for r in report["rows"] if "ablation" not in r]
    return row


def test_bench_writes_one_row_per_model_split_view_with_mean_and_std(toy_dataset, tmp_path, one_torch_thread):
    dataset, splits = toy_dataset
    report = run_encoder_bench(_config(dataset, splits, views=("2d", "3d")), tmp_path / "out", progress=False)
    rows = json.loads((tmp_path / "out" / "encoders.json").read_text())
    assert rows == json.loads(json.dumps(report["rows"]))
    groups = {(r["model"], r["split"], r["view"], r.get("ablation")) for r in rows}
    expected = {(m, "random", v, None) for m in ("posestyle_net", "st_mlp", "handcrafted_stats_logreg")
                for v in ("2d", "3d")} | {("posestyle_net", "random", "2d", "w/o stage gating")} | {
                ("posestyle_net", "random", v, MIRROR_TTA_ROW) for v in ("2d", "3d")} | {
                (m, "random", v, STATISTICS_ROW) for m in ("posestyle_net", "st_mlp") for v in ("2d", "3d")}
    assert groups == expected and len(rows) == len(expected)
    plain, appended = ({r["view"]: r for r in rows if r["model"] == "st_mlp" and r.get("ablation") == a}
                       for a in (None, STATISTICS_ROW))
    for view in ("2d", "3d"):   # the classifier is untouched; the embedding is not
        assert appended[view]["accuracy"] == plain[view]["accuracy"]
        assert appended[view]["silhouette"] != plain[view]["silhouette"]
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
    assert "Schedule of every run" in markdown and "all 1 epochs (no early stopping)" in markdown
    assert "with the motion statistics appended" in markdown and f"st_mlp {STATISTICS_ROW}" in markdown
    section = markdown.split("with the motion statistics appended", 1)[1].split("\n## ", 1)[0]
    for view, next_view in (("2d", "3d"), ("3d", None)):   # one table per suite, plain row then appended
        table = section.split(f"### `{view}` / `random`", 1)[1]
        table = table.split(f"### `{next_view}`", 1)[0] if next_view else table
        labels = [line.split(" | ")[0].removeprefix("| ") for line in table.splitlines() if line.startswith("| ")]
        assert labels[1:] == ["posestyle_net", f"posestyle_net {STATISTICS_ROW}", "st_mlp", f"st_mlp {STATISTICS_ROW}"]


def test_open_set_runs_train_without_the_held_out_styles(toy_dataset, tmp_path, one_torch_thread):
    dataset, splits = toy_dataset
    config = _config(dataset, splits, models=("st_mlp",), ablations=(), handcrafted=False,
                     open_set=(("swaying",),), runs_file=tmp_path / "runs.jsonl")
    report = run_encoder_bench(config, tmp_path / "out", progress=False)
    row, appended = report["open_set"]
    assert row["model"] == "st_mlp" and row["held_out_styles"] == ["swaying"] and row["seeds"] == [0]
    assert appended["model"] == f"st_mlp {STATISTICS_ROW}" and appended["seeds"] == [0]
    records = [json.loads(x) for x in (tmp_path / "runs.jsonl").read_text().splitlines()]
    open_run = next(r for r in records if r["holdout"])
    assert open_run["n_test"] == 2                       # only the held-out style's test takes
    assert "open set (swaying) loo P@5" in run_summary(open_run)
    assert "Open-set styles" in (tmp_path / "out" / "encoders.md").read_text()


def test_open_set_runs_go_with_any_split_choice(toy_dataset, tmp_path, one_torch_thread):
    """Open-set runs train on the random split even when the grid asks for cross-content only."""
    dataset, splits = toy_dataset
    config = _config(dataset, splits, models=("st_mlp",), ablations=(), splits=("cross-content",),
                     open_set=(("swaying",),), runs_file=tmp_path / "runs.jsonl")
    report = run_encoder_bench(config, None, progress=False)
    assert {r["held_out_styles"][0] for r in report["open_set"]} == {"swaying"}
    assert {(r["model"], r["split"]) for r in report["rows"] if "ablation" not in r} == {
        ("st_mlp", "cross-content"), ("handcrafted_stats_logreg", "cross-content")}


def test_seen_parts_and_open_set_metrics():
    parts = {"train": ["a1", "b1", "c1"], "val": ["a2", "c2"], "test": ["a3", "b3", "c3", "b4"]}
    labels = {"a1": "a", "a2": "a", "a3": "a", "b1": "b", "b3": "b", "b4": "b", "c1": "c", "c2": "c", "c3": "c"}
    seen = seen_parts(parts, labels, ("b", "c"))
    assert seen == {"train": ["a1"], "val": ["a2"], "test": ["b3", "c3", "b4"]}
    with pytest.raises(ValueError, match="not in the dataset"):
        seen_parts(parts, labels, ("zz",))
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8)) * 5
    labs = [k for k in range(3) for _ in range(8)]
    separated = centres[labs] + rng.normal(size=(24, 8)) * 0.1
    good = open_set_metrics(separated, [str(k) for k in labs])
    assert good.loo_p5 == pytest.approx(1.0) and good.purity == pytest.approx(1.0)
    noise = open_set_metrics(rng.normal(size=(24, 8)), [str(k) for k in labs])
    assert noise.loo_p5 < 0.6 and noise.nmi < good.nmi


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
    # a zero budget (--report-only) reports what the runs file holds and trains nothing new
    more = replace(config, seeds=(0, 1), time_budget_minutes=0.0)
    third = run_encoder_bench(more, None, progress=False)
    assert (tmp_path / "runs.jsonl").read_text().splitlines() == lines
    assert third["meta"]["runs_skipped_for_time_budget"] == 1 and third["meta"]["runs"] == 1


def test_a_report_keeps_runs_whose_checkpoints_are_elsewhere_and_times_their_architecture(
        toy_dataset, tmp_path, one_torch_thread):
    """A runs file carried to another machine without its checkpoints: a report (zero budget) keeps every
    recorded run and times each model on its architecture, freshly initialised; a bench that trains
    retrains the kept run instead, since the robustness bench needs its checkpoint."""
    dataset, splits = toy_dataset
    runs = tmp_path / "runs.jsonl"
    config = _config(dataset, splits, models=("st_mlp",), ablations=(), runs_file=runs, handcrafted=False,
                     cost=True, cost_threads=1, cost_sequences=3)
    trained = run_encoder_bench(config, None, progress=False)
    row = _plain_row(trained)
    assert row["cost"]["measured_on"] == "2d/random seed 0"
    record = json.loads(runs.read_text())
    kept_checkpoint(record, runs).unlink()

    report = run_encoder_bench(replace(config, time_budget_minutes=0.0), None, progress=False)
    row = _plain_row(report)
    assert row["accuracy"] == _plain_row(trained)["accuracy"] and report["meta"]["runs_resumed_from_file"] == 1
    assert "untrained" in row["cost"]["measured_on"]
    assert row["cost"]["parameters"] == record["parameters"] and row["cost"]["embeddings_per_second"] > 0
    assert len(runs.read_text().splitlines()) == 1

    run_encoder_bench(replace(config, cost=False), None, progress=False)
    assert len(runs.read_text().splitlines()) == 2 and kept_checkpoint(record, runs).is_file()

    without_file = run_encoder_bench(replace(config, runs_file=None), None, progress=False)
    assert _plain_row(without_file)["cost"]["measured_on"] == "2d/random seed 0"   # its own kept checkpoint


def test_a_run_stopped_mid_training_continues_from_its_last_epoch(toy_dataset, tmp_path, one_torch_thread,
                                                                 monkeypatch):
    """Killed in its third epoch, a run leaves its training state beside the runs file; the rerun
    continues from it, records the same run as an uninterrupted bench, and removes the state."""
    dataset, splits = toy_dataset
    plain = _config(dataset, splits, models=("st_mlp",), ablations=(), handcrafted=False,
                    train={**TINY_SETTINGS, "epochs": 4, "patience": 10}, runs_file=tmp_path / "plain.jsonl")
    uninterrupted = run_encoder_bench(plain, None, progress=False)
    config = replace(plain, runs_file=tmp_path / "runs.jsonl")
    interrupt_training_at_epoch(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        run_encoder_bench(config, None, progress=False)
    (state,) = (tmp_path / "runs.models").glob("*.resume.pt")
    assert torch.load(state, weights_only=True)["history"][-1]["epoch"] == 2
    epochs_trained = count_trained_epochs(monkeypatch)
    resumed = run_encoder_bench(config, None, progress=False)
    assert len(epochs_trained) == 2                                   # epochs 3 and 4 only
    assert not list((tmp_path / "runs.models").glob("*.resume.pt"))
    assert resumed["rows"][0]["accuracy"] == uninterrupted["rows"][0]["accuracy"]
    (record,) = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    (plain_record,) = [json.loads(line) for line in (tmp_path / "plain.jsonl").read_text().splitlines()]
    assert {k: record[k] for k in ("epochs_run", "best_epoch", "metrics")} == {
        k: plain_record[k] for k in ("epochs_run", "best_epoch", "metrics")}


def test_a_kept_run_trained_without_statistics_is_brought_up_to_the_default(toy_dataset, tmp_path,
                                                                             one_torch_thread):
    from encoder.inference import StyleEncoder

    dataset, splits = toy_dataset
    runs = tmp_path / "runs.jsonl"
    config = _config(dataset, splits, models=("st_mlp",), ablations=(), runs_file=runs, handcrafted=False,
                     train={**TINY_SETTINGS, "motion_statistics_weight": 0.0})
    run_encoder_bench(config, None, progress=False)
    (fresh,) = [json.loads(x) for x in runs.read_text().splitlines()]
    path = kept_checkpoint(fresh, runs)
    assert StyleEncoder.load(path).statistics is None
    # a record written before runs were measured with the statistics appended
    assert fresh["statistics_inputs"] == "preprocessed"
    old = {k: v for k, v in fresh.items() if k not in ("metrics_with_statistics", "statistics_inputs")}
    runs.write_text(json.dumps(old) + "\n")
    report = run_encoder_bench(config, None, progress=False)
    assert report["meta"]["runs_given_statistics_after_training"] == 1
    latest = json.loads(runs.read_text().splitlines()[-1])
    assert latest["key"] == fresh["key"] and latest["statistics_added_after_training"]
    assert latest["remeasured_metrics_max_abs_change"] < 1e-9          # the same model, measured again
    assert latest["metrics_with_statistics"] == pytest.approx(fresh["metrics_with_statistics"])
    upgraded = StyleEncoder.load(path)
    assert upgraded.statistics is not None and upgraded.dim > upgraded.model_dim
    again = run_encoder_bench(config, None, progress=False)              # nothing left to bring up to date
    assert again["meta"]["runs_given_statistics_after_training"] == 0


def test_the_default_encoder_is_judged_as_served_with_its_statistics():
    def row(model, ablation=None, split="random", **values):
        r = {"model": model, "split": split, "view": "2d", "seeds": [0, 1],
             **{k: {"mean": v, "std": 0.0} for k, v in values.items()}}
        return r if ablation is None else {**r, "ablation": ablation}

    plain = {**row("stgcn", silhouette=0.9), "cost": {"embeddings_per_second": 1200.0}}
    rows = [plain, row("stgcn", STATISTICS_ROW, silhouette=0.85), row("stgcn", split="cross-content", accuracy=0.9),
            row("st_mlp", silhouette=0.88), row("st_mlp", STATISTICS_ROW, silhouette=0.84),
            row("temporal_cnn", silhouette=0.7)]
    open_rows = [{"model": "stgcn", "held_out_styles": ["a"], "loo_p@5": {"mean": 0.6}},
                 {"model": f"stgcn {STATISTICS_ROW}", "held_out_styles": ["a"], "loo_p@5": {"mean": 0.76}},
                 {"model": "stgcn", "held_out_styles": ["b"], "loo_p@5": {"mean": 0.8}}]
    served_rows, served_open = as_served(rows, open_rows)
    head = next(r for r in served_rows if r["model"] == "stgcn" and r["split"] == "random")
    assert "ablation" not in head and head["silhouette"]["mean"] == 0.85 and head["cost"] == plain["cost"]
    # every other model is compared as served too; one without an appended row stays as measured
    assert {r["model"]: r["silhouette"]["mean"] for r in served_rows
            if r["split"] == "random" and r["model"] != "stgcn"} == {"st_mlp": 0.84, "temporal_cnn": 0.7}
    assert not any(r.get("ablation") == STATISTICS_ROW for r in served_rows)
    assert any(r["split"] == "cross-content" for r in served_rows)      # no appended row: kept as measured
    assert {(tuple(r["held_out_styles"]), r["loo_p@5"]["mean"]) for r in served_open} == {(("a",), 0.76),
                                                                                         (("b",), 0.8)}
    targets = {t["target"]: t for t in evaluate_targets(served_rows, served_open, "stgcn")}
    assert targets["open set (a held out) leave-one-out P@5 >= 0.75"]["met"]
    margin = next(t for t in targets.values() if "at least as good" in t["target"] and "silhouette" in t["target"])
    assert margin["measured"] == pytest.approx(0.85 - 0.84)


def test_a_model_revision_changes_only_that_models_run_keys(monkeypatch):
    import hashlib
    import json as json_

    def old_key(job: BenchJob) -> str:     # the key before revisions existed
        fields = [RECIPE_VERSION, job.model, job.split, job.view, job.seed, job.ablation, job.settings, job.holdout]
        return hashlib.sha1(json_.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]

    monkeypatch.setattr("benchmarks.encoder_bench.MODEL_REVISIONS", {**MODEL_REVISIONS, "stgcn": "r2"})
    revised, kept = (BenchJob(m, "random", "2d", 0, None, {}) for m in ("stgcn", "st_mlp"))
    assert kept.key() == old_key(kept) and revised.key() != old_key(revised)
    first = revised.key()
    monkeypatch.setattr("benchmarks.encoder_bench.MODEL_REVISIONS", {**MODEL_REVISIONS, "stgcn": "r3"})
    assert revised.key() != first


def test_plan_covers_the_grid_and_the_ablations(toy_dataset):
    dataset, splits = toy_dataset
    config = _config(dataset, splits, splits=("random", "cross-content"), views=("2d", "3d"), seeds=(0, 1, 2),
                     seeds_by_view={"3d": (0,)}, ablations=("w/o stage gating", "w/o structural constraint term"))
    jobs = plan_jobs(config)
    grid = [j for j in jobs if j.ablation is None and j.holdout is None]
    assert len(grid) == 2 * 2 * (3 + 1)
    assert not [j for j in jobs if j.holdout is not None]           # open_set=() in these tests
    kept = {(j.split, j.view, j.seed) for j in grid if j.keep_model}
    assert kept == {("random", "2d", s) for s in (0, 1, 2)}       # every seed's checkpoint, for robustness
    assert {j.seed for j in grid if j.view == "3d"} == {0}
    ablation = [j for j in jobs if j.ablation is not None]
    assert len(ablation) == 2 * 3 and all(j.model == "posestyle_net" and j.split == "random" for j in ablation)
    loss_off = next(j for j in ablation if j.ablation == "w/o structural constraint term")
    assert loss_off.settings["loss.use_compactness"] is False and loss_off.settings["loss.use_margin"] is False
    assert len({j.key() for j in jobs}) == len(jobs)


def test_each_student_is_planned_after_the_teacher_run_of_its_suite_and_seed(toy_dataset):
    """A student per teacher run in every suite: grid cell, seed and held-out styles; each teacher it
    learns from is kept, and the student only where the robustness bench reads checkpoints (2d / random)."""
    dataset, splits = toy_dataset
    jobs = plan_jobs(_config(dataset, splits, splits=("random", "cross-content"), seeds=(0, 1), ablations=(),
                             student="st_mlp", open_set=(("swaying",),)))
    students = [j for j in jobs if j.teacher is not None]
    label = student_label("st_mlp", "posestyle_net")
    suites = {(split, seed, holdout) for split in ("random", "cross-content") for seed in (0, 1)
              for holdout in ((None, ("swaying",)) if split == "random" else (None,))}
    assert sorted((j.split, j.seed, j.holdout or ()) for j in students) == sorted(
        (split, seed, holdout or ()) for split, seed, holdout in suites)
    assert {(j.model, j.label, j.view) for j in students} == {("st_mlp", label, "2d")}
    order = sorted(jobs, key=lambda j: job_priority(j, ["posestyle_net", "st_mlp"]))
    for student in students:
        (teacher,) = [j for j in jobs if j.key() == student.teacher]
        assert (teacher.model, teacher.split, teacher.view, teacher.seed, teacher.holdout) == (
            "posestyle_net", student.split, student.view, student.seed, student.holdout)
        assert teacher.keep_model
        assert student.keep_model == (student.split == "random" and student.holdout is None)
        assert order.index(teacher) < order.index(student)
    alone = [j for j in jobs if j.model == "st_mlp" and j.teacher is None]
    assert len(alone) == len(students) and not {j.key() for j in alone} & {j.key() for j in students}
    assert not [j for j in jobs if j.model == "st_mlp" and j.teacher is None and j.keep_model and j.split != "random"]


def test_students_learn_from_the_product_default_encoder_unless_told_otherwise(toy_dataset):
    dataset, splits = toy_dataset
    config = EncoderBenchConfig(data=dataset, splits_dir=splits, models=(DEFAULT_MODEL, "st_mlp"), splits=("random",),
                                views=("2d",), seeds=(0,), ablations=(), open_set=())
    (student,) = [j for j in plan_jobs(config) if j.teacher is not None]
    (teacher,) = [j for j in plan_jobs(config) if j.key() == student.teacher]
    assert teacher.model == DEFAULT_MODEL and student.label == student_label("st_mlp", DEFAULT_MODEL)
    assert not [j for j in plan_jobs(replace(config, teacher="posestyle_net")) if j.teacher is not None]


def test_a_distilled_student_gets_its_own_row_beside_its_teacher(toy_dataset, tmp_path, one_torch_thread):
    dataset, splits = toy_dataset
    config = _config(dataset, splits, models=("posestyle_net",), ablations=(), handcrafted=False, student="st_mlp",
                     open_set=(("swaying",),), runs_file=tmp_path / "runs.jsonl")
    report = run_encoder_bench(config, tmp_path / "out", progress=False)
    label = student_label("st_mlp", "posestyle_net")
    main = [r for r in report["rows"] if "ablation" not in r]
    assert [r["model"] for r in main] == ["posestyle_net", label]
    assert main[1]["architecture"] == "st_mlp" and main[1]["teacher_model"] == "posestyle_net"
    records = [json.loads(x) for x in (tmp_path / "runs.jsonl").read_text().splitlines()]
    for holdout in (None, ["swaying"]):       # the grid's student, and the open set's on the seen styles
        student, teacher = (next(r for r in records if r["model"] == m and r["holdout"] == holdout)
                            for m in (label, "posestyle_net"))
        assert student["teacher"] == teacher["key"] and Path(teacher["checkpoint"]).is_file()
        assert student["n_test"] == teacher["n_test"]
    assert {r["model"] for r in report["open_set"]} >= {"posestyle_net", label}
    markdown = (tmp_path / "out" / "encoders.md").read_text()
    assert "Distilled student" in markdown and f"| 2d/random | {label} | 1 |" in markdown


def test_a_run_stopped_before_min_epochs_is_retrained_and_so_is_its_student(toy_dataset, tmp_path,
                                                                            one_torch_thread):
    """Raising ``min_epochs`` changes only the runs that stopped earlier: those are retrained (a student
    of a retrained teacher after it); runs that trained their whole schedule are kept."""
    dataset, splits = toy_dataset
    runs = tmp_path / "runs.jsonl"
    config = _config(dataset, splits, ablations=(), handcrafted=False, student="st_mlp", runs_file=runs)
    run_encoder_bench(config, None, progress=False)
    records = [json.loads(x) for x in runs.read_text().splitlines()]
    teacher = next(r for r in records if r["model"] == "posestyle_net")
    runs.write_text("".join(json.dumps({**r, "epochs_run": 0} if r is teacher else r) + "\n" for r in records))
    report = run_encoder_bench(config, None, progress=False)
    again = [json.loads(x) for x in runs.read_text().splitlines()][len(records):]
    assert sorted(r["model"] for r in again) == sorted(["posestyle_net", student_label("st_mlp", "posestyle_net")])
    assert report["meta"]["runs_resumed_from_file"] == 1          # st_mlp alone trained its whole schedule


def test_aggregate_is_mean_and_std_over_seeds():
    records = [{"model": "m", "split": "random", "view": "2d", "ablation": None, "seed": s,
                "metrics": {"accuracy": a}, "epochs_run": 3, "parameters": 10, "n_test": 5, "run_seconds": 1.0,
                "settings": {}} for s, a in ((1, 0.5), (0, 0.7))]
    (row,) = aggregate(records)
    assert row["seeds"] == [0, 1] and row["accuracy"]["mean"] == pytest.approx(0.6)
    assert row["accuracy"]["std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))


def test_targets_report_met_missed_and_the_gap():
    def row(model, split="random", std=0.0, **values):
        return {"model": model, "split": split, "view": "2d", "seeds": [0, 1],
                **{k: {"mean": v, "std": std} for k, v in values.items()}}

    head = row("posestyle_net", std=0.02, accuracy=0.99, macro_f1=0.90, purity=0.80, nmi=0.9, silhouette=0.6)
    head["cost"] = {"parameters": 400_000, "embeddings_per_second": 800.0}
    cross = row("posestyle_net", "cross-content", accuracy=0.95, **{"gallery_p@5": 0.90})
    base = row("st_mlp", std=0.01, purity=0.85, nmi=0.5, silhouette=0.1)
    open_rows = [{"model": "posestyle_net", "held_out_styles": ["a", "b", "c"], "loo_p@5": {"mean": 0.8}}]
    targets = {t["target"]: t for t in evaluate_targets([head, cross, base], open_rows)}
    acc = targets["PoseStyle-Net 2d/random accuracy >= 0.98"]
    assert acc["met"] and acc["gap"] == pytest.approx(0.01)
    f1 = targets["PoseStyle-Net 2d/random macro_f1 >= 0.98"]
    assert not f1["met"] and f1["gap"] == pytest.approx(-0.08)
    spread = targets["PoseStyle-Net 2d/random accuracy seed std <= 0.01"]
    assert not spread["met"] and spread["gap"] == pytest.approx(-0.01)
    assert targets["PoseStyle-Net 2d/cross-content accuracy >= 0.93"]["met"]
    assert not targets["PoseStyle-Net 2d/cross-content gallery_p@5 >= 0.93"]["met"]
    purity = next(t for k, t in targets.items() if k.startswith("PoseStyle-Net at least as good") and "purity" in k)
    assert not purity["met"] and purity["measured"] == pytest.approx(-0.05) and purity["threshold"] == -0.02
    nmi = next(t for k, t in targets.items() if k.startswith("PoseStyle-Net at least as good") and "nmi" in k)
    assert nmi["met"]
    assert targets["open set (a, b, c held out) leave-one-out P@5 >= 0.75"]["met"]
    assert targets["parameters <= 8.1 M"]["met"]
    speed = next(t for k, t in targets.items() if k.startswith("embeddings/s"))
    assert not speed["met"] and speed["gap"] == pytest.approx(-200.0)
    unmeasured = targets["PoseStyle-Net 2d/random gallery_p@5 >= 0.98"]
    assert unmeasured["measured"] is None and unmeasured["met"] is None
    # the same targets for another model: PoseStyle-Net becomes one of its baselines
    other = {t["target"]: t for t in evaluate_targets([head, cross, base], open_rows, model="st_mlp")}
    margin = next(t for k, t in other.items() if k.startswith("st_mlp at least as good") and "purity" in k)
    assert margin["met"] and margin["measured"] == pytest.approx(0.05) and "posestyle_net" in margin["detail"]
    assert other["st_mlp 2d/cross-content accuracy >= 0.93"]["measured"] is None
    assert not any(k.startswith("open set") for k in other)



def test_the_training_device_is_recorded_but_not_part_of_a_runs_key(toy_dataset, tmp_path, one_torch_thread):
    dataset, splits = toy_dataset
    config = _config(dataset, splits, models=("st_mlp",), ablations=(), handcrafted=False, device="auto",
                     runs_file=tmp_path / "runs.jsonl")
    (job,) = plan_jobs(config)
    assert job.key() == plan_jobs(replace(config, device="cpu"))[0].key()     # a run may start on a GPU, end on a CPU
    assert job_train_config(job, 1, "cuda:1").device == "cuda:1" and job_train_config(job).device == "cpu"
    with pytest.raises(ValueError, match="device"):
        replace(config, device="tpu")
    run_encoder_bench(config, tmp_path / "out", progress=False)
    (record,) = [json.loads(x) for x in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert record["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    meta = {"runs_by_training_device": {"cpu": 3, "cuda": 2}}
    assert any("Runs by training device: cpu 3, cuda 2" in line for line in how_it_was_run(meta))
    assert not any("training device" in line for line in how_it_was_run({"runs_by_training_device": {"cpu": 5}}))
