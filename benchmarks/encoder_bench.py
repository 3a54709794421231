"""``posestyle bench encoders``: every model x split x view x seed of BENCHMARK.md, one report.

The grid: each model of ``EncoderBenchConfig.models`` is trained on each split (``random``,
``cross-content``) in each view (``2d``, ``3d``) once per seed (the seed changes
initialisation and batch order, never the split), evaluated on the split's test part with every
BENCHMARK.md metric, and the seeds are summarised as mean and sample standard deviation. Then
PoseStyle-Net's ablations (the paper's Table 6) on ``2d``/``random``, the hand-made-statistics
+ logistic-regression floor, and the cost of each model (parameters, embeddings per second at
batch 64 on 2 CPU threads, single-query latency) measured once, after all training, when the
bench's own workers are idle.

Speed (the whole grid runs on a 2-core CPU): runs go to ``workers`` processes with
``threads_per_worker`` torch threads each; inside a worker the takes are loaded once and
preprocessed once per view (the trainer's ``PREPARED_CACHE`` for the training versions, an
in-process cache here for the unaugmented test/gallery inputs), so a run pays for training and
embedding only. Finished runs are appended to a JSON-lines file so an interrupted bench resumes, and
a run stopped mid-training continues from its last finished epoch (``resume_file``).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from benchmarks.machine import cpu_model, load_average
from benchmarks.seed_systems import (
    COST_NOISE,
    REFERENCE_MODEL,
    SEED_SYSTEMS,
    compare_seed_systems,
    comparison_lines,
    load_robustness_rows,
    scaled_down_notes,
)
from encoder.data.atomic import atomic_write_text
from encoder.data.dataset import process_pool_context
from encoder.data.errors import PoseDataError
from encoder.data.motion_statistics import DEFAULT_WEIGHT as DEFAULT_STATISTICS_WEIGHT
from encoder.data.motion_statistics import PREPROCESSED
from encoder.data.sequence import PoseSequence
from encoder.evaluation.results import (
    HEADLINE_NAMES,
    PER_CLASS_F1_PREFIX,
    CostMetrics,
    HeadlineMetrics,
    MeanStd,
    OpenSetMetrics,
)
from encoder.training.config import DEFAULT_MODEL, check_device

SPLITS: tuple[str, ...] = ("random", "cross-content")
VIEWS: tuple[str, ...] = ("2d", "3d")
# The grid's suites in report order, each with its section title.
SUITE_TITLES = (("random", "2d", "Main table: `2d` view, `random` split (the headline)"),
                ("cross-content", "2d", "Cross-content: `2d` view (train on straight walks and runs, test on "
                                        "turning walks)"),
                ("random", "3d", "`3d` view, `random` split"),
                ("cross-content", "3d", "`3d` view, `cross-content` split"))
BENCH_MODELS: tuple[str, ...] = ("posestyle_net", "st_mlp", "pose_transformer", "gait_relationnet", "stgcn",
                                 "temporal_cnn", "gaitheat", "gaitmm", "hstl")
HANDCRAFTED = "handcrafted_stats_logreg"

# Bump when a change to the models, preprocessing, augmentation or training changes what a run
# gives: runs recorded under another recipe are then retrained instead of resumed.
RECIPE_VERSION = "2026-12-02.2"
# A change to one model's defaults retrains that model's runs only: its revision joins their keys.
MODEL_REVISIONS: dict[str, str] = {"stgcn": "2026-12-03 channels 48/64/96"}

# The paper's Table 6 rows (the complete model is the main posestyle_net row), then the pieces this
# project adds to it: TrainConfig overrides.
ABLATIONS: dict[str, dict[str, Any]] = {
    "w/o temporal relation encoding": {"model_config.use_temporal_relation": False},
    "w/o spatial collaborative propagation": {"model_config.use_spatial_synergy": False},
    "w/o stage gating": {"model_config.use_stage_gating": False},
    "w/o structural constraint term": {"loss.use_compactness": False, "loss.use_margin": False},
    "w/o supervised contrastive term": {"loss.use_supcon": False},
    "w/o raised-camera training views": {"augment.pitch_range": [-5.0, 15.0],
                                         "augment.distance_scale_range": [1.0, 1.5]},
}
# An evaluation-only row of the ablation table: the complete model's runs with test-time mirror averaging.
MIRROR_TTA_ROW = "+ test-time mirror averaging"
# The learned embedding with the hand-made motion statistics appended (encoder.data.motion_statistics),
# as `posestyle train` checkpoints serve it by default, measured beside every run's plain embedding.
STATISTICS_WEIGHT = DEFAULT_STATISTICS_WEIGHT
# What those statistics are computed from (encoder.data.motion_statistics); figures measured from any
# other kind are left out of the report (the runs of session 20 computed them from the raw take).
STATISTICS_INPUTS = PREPROCESSED
STATISTICS_ROW = f"+ motion statistics (weight {STATISTICS_WEIGHT:g})"
# Open-set protocol: two choices of 3 held-out Bandai-Namco styles (see benchmarks/open_set.py).
OPEN_SET_HOLDOUTS: tuple[tuple[str, ...], ...] = (("elderly", "feminine", "youthful"),
                                                  ("active", "exhausted", "masculine"))

# The figures of a row, by report name (the runs file's ``metrics`` keys, ``HeadlineMetrics.to_dict``).
METRICS: tuple[str, ...] = tuple(HEADLINE_NAMES.values())

# Targets of the embeddings issue (PoseStyle-Net, 2d), all "at least" except parameters and spread.
TARGETS: dict[str, float] = {"accuracy": 0.98, "macro_f1": 0.98, "purity": 0.98, "nmi": 0.96,
                             "silhouette": 0.85, "gallery_p@5": 0.98}
CROSS_CONTENT_TARGETS: dict[str, float] = {"accuracy": 0.93, "gallery_p@5": 0.93}
MAX_SEED_STD = 0.01
OPEN_SET_MIN_LOO_P5 = 0.75
MAX_PARAMETERS = 8.1e6
COST_PASSES = 2
MIN_EMBEDDINGS_PER_SECOND = 1000.0

# BENCHMARK.md floors measured on the 2d view (mean of the runs it lists).
BENCHMARK_FLOORS: dict[str, dict[str, dict[str, float]]] = {
    "temporal CNN (BENCHMARK.md)": {
        "random": {"accuracy": 0.89, "macro_f1": 0.885, "purity": 0.84, "nmi": 0.835, "silhouette": 0.49,
                   "gallery_p@5": 0.965},
        "cross-content": {"accuracy": 0.56, "macro_f1": 0.50, "purity": 0.86, "nmi": 0.77, "silhouette": 0.44,
                          "gallery_p@5": 0.79},
    },
    "hand-made statistics (BENCHMARK.md)": {
        "random": {"accuracy": 0.92, "macro_f1": 0.92, "purity": 0.33, "nmi": 0.23, "silhouette": -0.02,
                   "loo_p@5": 0.37},
        "cross-content": {"accuracy": 0.63, "macro_f1": 0.64},
    },
}


# GaitKD (seed paper 001): the best model of the bench distilled into the fastest architecture, one
# student per teacher run in every suite (grid cell, seed, held-out styles; ``--student``, ``--teacher``).
# The best model of the main table is ST-GCN, the product's default encoder.
TEACHER_MODEL = DEFAULT_MODEL
# Report names of the models whose targets the report checks.
MODEL_TITLES: dict[str, str] = {"posestyle_net": "PoseStyle-Net", "stgcn": "ST-GCN"}
STUDENT_MODEL = "st_mlp"


def student_label(student: str, teacher: str = TEACHER_MODEL) -> str:
    """The bench's name of a distilled student's row (the model column of every table)."""
    return f"{student} distilled from {teacher}"


# The settings every run of the committed report used: none beyond the product's defaults, so a
# model in the report is the model `posestyle train` gives (one recipe for every model).
BENCH_SETTINGS: dict[str, Any] = {
    "train": {},
    "model_train": {},
    "ablations": list(ABLATIONS),
}


def load_bench_settings(path: str | Path | None) -> dict[str, Any]:
    """``BENCH_SETTINGS``, or a YAML file ``{train: {...}, model_train: {name: {...}}, ablations: [...]}``."""
    import yaml

    settings = json.loads(json.dumps(BENCH_SETTINGS))
    if path is None:
        return settings
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as err:
        raise PoseDataError(path, f"cannot read bench settings: {err.strerror or err}") from None
    except yaml.YAMLError as err:
        raise PoseDataError(path, f"invalid YAML: {err}") from None
    if not isinstance(data, dict) or set(data) - set(settings):
        raise PoseDataError(path, f"bench settings must be a mapping with keys {sorted(settings)}")
    settings.update(data)
    return settings


@dataclass(frozen=True)
class EncoderBenchConfig:
    """What the bench runs and how.

    - ``train``: TrainConfig overrides (dotted keys) for every run; ``model_train``: extra
      overrides per model name (applied after ``train``).
    - ``ablation_seeds``: seeds of the ablation rows (default: ``seeds``); ``ablations``: which
      rows of ``ABLATIONS`` to run (empty: none).
    - ``workers`` processes, each with ``threads_per_worker`` torch threads, training on ``device``
      (``cpu``, ``auto`` or ``cuda[:n]``; not part of a run's key: the recipe is the same, the figures
      differ by the order of sums and cuDNN's TF32 convolutions, and each record names its device).
    - ``runs_file``: JSON-lines record of finished runs (resume); None keeps nothing on disk.
    - ``time_budget_minutes``: no new run starts after this much training time (runs go seed by
      seed, so a cut leaves every row with its first seeds); the report lists what was skipped.
    - ``student``: the architecture distilled from each ``teacher`` run, suite by suite and seed by seed
      (None: no students); students are planned when the teacher is among ``models``.
    - ``cost``: measure parameters / throughput / latency once per model (and ablation) after
      training, on ``cost_threads`` threads, batch 64, over ``cost_sequences`` test takes.
    """

    data: Path
    splits_dir: Path
    models: tuple[str, ...] = BENCH_MODELS
    splits: tuple[str, ...] = SPLITS
    views: tuple[str, ...] = VIEWS
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    seeds_by_view: dict[str, tuple[int, ...]] = field(default_factory=dict)
    ablations: tuple[str, ...] = tuple(ABLATIONS)
    ablation_seeds: tuple[int, ...] | None = None
    ablation_split: str = "random"
    ablation_view: str = "2d"
    open_set: tuple[tuple[str, ...], ...] = OPEN_SET_HOLDOUTS
    student: str | None = STUDENT_MODEL
    teacher: str = TEACHER_MODEL
    train: dict[str, Any] = field(default_factory=dict)
    model_train: dict[str, dict[str, Any]] = field(default_factory=dict)
    handcrafted: bool = True
    cost: bool = True
    cost_threads: int = 2
    cost_sequences: int = 128
    cost_batch_size: int = 64
    workers: int = 2
    threads_per_worker: int = 1
    device: str = "cpu"
    runs_file: Path | None = None
    eval_batch_size: int = 64
    time_budget_minutes: float | None = None

    def __post_init__(self) -> None:
        bad = [s for s in self.splits if s not in SPLITS] + [v for v in self.views if v not in VIEWS]
        if bad:
            raise ValueError(f"unknown split(s)/view(s) {bad}; splits: {SPLITS}, views: {VIEWS}")
        unknown = [a for a in self.ablations if a not in ABLATIONS]
        if unknown:
            raise ValueError(f"unknown ablation(s) {unknown}; known: {list(ABLATIONS)}")
        if not self.seeds or self.workers < 1 or self.threads_per_worker < 1:
            raise ValueError("need at least one seed, workers >= 1 and threads_per_worker >= 1")
        check_device(self.device)

    def settings_for(self, model: str, ablation: str | None = None) -> dict[str, Any]:
        """The TrainConfig overrides of one run (common, per model, ablation)."""
        settings = {**self.train, **self.model_train.get(model, {})}
        if ablation is not None:
            settings.update(ABLATIONS[ablation])
        return settings

    def view_seeds(self, view: str) -> tuple[int, ...]:
        return tuple(self.seeds_by_view.get(view, self.seeds))


@dataclass(frozen=True)
class BenchJob:
    """One training run of the grid."""

    model: str
    split: str
    view: str
    seed: int
    ablation: str | None
    settings: dict[str, Any]
    keep_model: bool = False
    holdout: tuple[str, ...] | None = None      # open-set run: the styles it never trains on
    teacher: str | None = None                  # distilled student: the key of its teacher's kept run
    teacher_model: str = TEACHER_MODEL          # distilled student: its teacher's model name

    @property
    def label(self) -> str:
        """The row this run belongs to: the model, or the student's name."""
        return self.model if self.teacher is None else student_label(self.model, self.teacher_model)

    @property
    def group(self) -> tuple[str, str, str, str | None]:
        return (self.label, self.split, self.view, self.ablation)

    def key(self) -> str:
        """Identity of the run's result: everything that changes it (for resuming)."""
        fields: list[Any] = [RECIPE_VERSION, self.model, self.split, self.view, self.seed, self.ablation,
                             self.settings, self.holdout]
        if self.teacher is not None:   # appended only here, so the keys of earlier runs stay as they were
            fields.append(self.teacher)
        if self.model in MODEL_REVISIONS:   # likewise: only a revised model's runs change key
            fields.append(MODEL_REVISIONS[self.model])
        text = json.dumps(fields, sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:16]


def resume_file(keep_dir: Path, key: str) -> Path:
    """Where run ``key`` keeps its training state between epochs (``fit``'s ``resume_file``), beside the
    kept checkpoints; removed once the run is in the runs file. Students start afresh: their state
    would also depend on the teacher."""
    return Path(keep_dir) / f"{key}.resume.pt"


def teacher_checkpoint(job: BenchJob, keep_dir: Path) -> Path:
    """Where a student's teacher is kept (``keep_dir``: beside the runs file)."""
    return Path(keep_dir) / f"{job.teacher}.safetensors"


def plan_jobs(config: EncoderBenchConfig) -> list[BenchJob]:
    """Every run of the bench: the grid, the ablations, the open-set runs.

    Every ``2d``/``random`` model is kept (the robustness bench evaluates each seed's checkpoint), and
    so is every teacher run that has a student; the cost is measured on the first seed's.
    """
    jobs: list[BenchJob] = []
    cost_seed = config.seeds[0]
    for model in config.models:
        for split in config.splits:
            for view in config.views:
                for seed in config.view_seeds(view):
                    keep = split == config.ablation_split and view == config.ablation_view
                    jobs.append(BenchJob(model, split, view, seed, None, config.settings_for(model), keep))
        for holdout in config.open_set:
            for seed in config.seeds:
                jobs.append(BenchJob(model, "random", "2d", seed, None, config.settings_for(model),
                                     holdout=holdout))
    if "posestyle_net" in config.models or config.ablations:
        for ablation in config.ablations:
            for seed in config.ablation_seeds or config.seeds:
                jobs.append(BenchJob("posestyle_net", config.ablation_split, config.ablation_view, seed, ablation,
                                     config.settings_for("posestyle_net", ablation), seed == cost_seed))
    if config.student is not None and config.teacher in config.models:
        # GaitKD in every suite: a student per teacher run of the grid and the open set, on that run's split
        # (and seen styles), from that run's checkpoint, which is therefore kept
        for i, teacher in enumerate(list(jobs)):
            if teacher.model != config.teacher or teacher.ablation is not None:
                continue
            jobs[i] = replace(teacher, keep_model=True)
            jobs.append(BenchJob(config.student, teacher.split, teacher.view, teacher.seed, None,
                                 config.settings_for(config.student), teacher.holdout is None and (
                                     teacher.split, teacher.view) == (config.ablation_split, config.ablation_view),
                                 holdout=teacher.holdout, teacher=teacher.key(), teacher_model=config.teacher))
    return jobs


def job_priority(job: BenchJob, models: Sequence[str]) -> tuple:
    """Order of the runs: the headline rows first (PoseStyle-Net 2d random, then its cross-content,
    open-set and ablation rows), model by model in bench order, seed by seed inside each row."""
    kind = (0 if (job.split, job.view) == ("random", "2d") and job.holdout is None and job.ablation is None
            else 1 if (job.split, job.view) == ("cross-content", "2d") else 2 if job.holdout is not None
            else 3 if job.ablation is not None else 4)
    rank = models.index(job.model) if job.model in models else len(models)
    return (rank > 0, kind, rank, job.view, job.split, job.holdout or (), job.ablation or "",
            job.teacher is not None, job.seed)


def next_runnable(queue: list[BenchJob], keep_dir: Path, unfinished: set[str] = frozenset()) -> BenchJob | None:
    """Take the first job of ``queue`` that can start now: a student waits for its teacher's checkpoint
    and, when the teacher is being retrained (its key in ``unfinished``), for that run to end."""
    for i, job in enumerate(queue):
        if job.teacher is None or (job.teacher not in unfinished and teacher_checkpoint(job, keep_dir).is_file()):
            return queue.pop(i)
    return None


def job_train_config(job: BenchJob, threads: int = 1, device: str = "cpu") -> Any:
    """The ``TrainConfig`` a bench run trains with (on ``device``, which no setting of the run changes)."""
    from encoder.training import TrainConfig

    return TrainConfig(model=job.model, view=job.view, seed=job.seed, device=device, progress=False,
                       num_threads=threads).with_overrides(job.settings, source=f"bench {job.model}")


def stopped_before_min_epochs(record: Mapping[str, Any], job: BenchJob) -> bool:
    """True when a recorded run stopped earlier than today's recipe lets a run stop (``min_epochs`` was
    raised): it is retrained. A run that trained its whole schedule is what today's recipe gives, since
    training is deterministic and the stopping rule never fired in it."""
    epochs_run = record.get("epochs_run")
    if epochs_run is None:          # the floor and other untrained rows
        return False
    cfg = job_train_config(job)
    return int(epochs_run) < min(cfg.min_epochs, cfg.epochs)


# -- data ----------------------------------------------------------------------------------------
def split_prefix(splits_dir: Path, split: str) -> str:
    return str(Path(splits_dir) / split)


class _WorkerState:
    """Per-process data: the takes, the split parts and the prepared test/gallery inputs."""

    def __init__(self, data: Path, splits_dir: Path, splits: Sequence[str], threads: int,
                 device: str = "cpu") -> None:
        import torch

        from encoder.data.dataset import DatasetCache
        from encoder.training.splits import resolve_split

        torch.set_num_threads(threads)
        self.threads = threads
        self.device = device
        cache = DatasetCache.open(data)
        self.dataset_version = cache.dataset_version
        self.seqs: dict[str, PoseSequence] = {n: cache.load(n) for n in cache.names}
        labels = [self.seqs[n].label for n in cache.names]
        self.parts = {s: resolve_split(split_prefix(splits_dir, s), cache.names, labels) for s in splits}
        self._prepared: dict[tuple, Any] = {}
        self._statistics: dict[tuple[str, str], np.ndarray] = {}

    def statistics(self, names: Sequence[str], view: str) -> np.ndarray:
        """The hand-made motion statistics of takes in a view, (N, F) (cached for the process)."""
        from encoder.data.motion_statistics import motion_statistics
        from encoder.training.augment import training_view

        for name in names:
            if (name, view) not in self._statistics:
                self._statistics[(name, view)] = motion_statistics(training_view(self.seqs[name], view))
        return np.stack([self._statistics[(n, view)] for n in names])

    def prepared(self, name: str, view: str, preprocess: Any) -> Any:
        """The unaugmented preprocessed input of a take in a view, with its motion statistics (what
        ``StyleEncoder.prepare`` gives an encoder that appends them; cached for the process)."""
        from encoder.data.preprocess import preprocess_sequence
        from encoder.training.augment import training_view

        key = (name, view, preprocess)
        item = self._prepared.get(key)
        if item is None:
            item = preprocess_sequence(training_view(self.seqs[name], view), preprocess, with_statistics=True)
            self._prepared[key] = item
        return item


_STATE: _WorkerState | None = None


def _init_worker(data: Path, splits_dir: Path, splits: Sequence[str], threads: int, device: str = "cpu") -> None:
    global _STATE
    _STATE = _WorkerState(data, splits_dir, splits, threads, device)


def run_job(job: BenchJob, keep_dir: Path | None = None) -> dict[str, Any]:
    """Train and evaluate one run in this worker; returns its record (``metrics``: ``HeadlineMetrics.to_dict``)."""
    from benchmarks.open_set import seen_parts
    from encoder.inference import StyleEncoder
    from encoder.training import fit
    from encoder.training.distill import distill

    state = _STATE
    if state is None:
        raise RuntimeError("run_job needs _init_worker first")
    start = time.perf_counter()
    parts = state.parts[job.split]
    if job.holdout is not None:
        parts = seen_parts(parts, {n: s.label for n, s in state.seqs.items()}, job.holdout)
    cfg = job_train_config(job, state.threads, state.device)
    train = [state.seqs[n] for n in parts["train"]]
    val = [state.seqs[n] for n in parts["val"]]
    summary = {"split": job.split, "bench": True}
    if job.teacher is None:   # a run stopped mid-training continues from its last epoch
        result = fit(train, val, cfg, summary=summary,
                     resume_file=None if keep_dir is None else resume_file(keep_dir, job.key()))
    else:   # GaitKD: the student takes the teacher's labels and preprocessing
        if keep_dir is None:
            raise RuntimeError("a distilled student needs keep_dir, where its teacher is kept")
        result = distill(train, val, cfg, teacher_checkpoint(job, keep_dir), summary=summary)
    encoder = StyleEncoder(result.model, result.checkpoint)
    training = result.checkpoint.training
    record: dict[str, Any] = {
        "key": job.key(), "recipe": RECIPE_VERSION, "model": job.label, "split": job.split, "view": job.view,
        "seed": job.seed, "ablation": job.ablation, "holdout": job.holdout, "settings": job.settings,
        **({} if job.teacher is None else {"architecture": job.model, "teacher": job.teacher,
                                            "teacher_model": job.teacher_model}),
        "n_test": len(parts["test"]), "epochs_run": training["epochs_run"],
        "best_epoch": training["best_epoch"], "max_epochs": cfg.epochs, "parameters": encoder.num_parameters(),
        "dataset_version": state.dataset_version, "device": training.get("device", state.device)}
    kept = None
    if job.keep_model and keep_dir is not None:
        kept = str(Path(keep_dir) / f"{job.key()}.safetensors")
        result.save(kept)
    if job.holdout is not None:                  # open set: the embedding of styles never trained on
        return {**record, **measure_open_set(encoder, state, parts, job.view, job.seed),
                "checkpoint": kept, "run_seconds": time.perf_counter() - start, "finished_unix": time.time()}
    measured = measure_run(encoder, state, parts, job.view, job.seed)
    return {**record, **measured, "run_seconds": time.perf_counter() - start,
            "finished_unix": time.time(), "checkpoint": kept}


def _statistics_scaler(encoder: Any, state: _WorkerState, gallery_names: Sequence[str], view: str) -> Any:
    """The encoder's own motion-statistics scaler when it is today's kind, else one fitted as training
    fits it: on the train+val takes' statistics (``gallery_names``, from the encoder's preprocessing)."""
    from encoder.data.motion_statistics import MotionStatisticsScaler

    if encoder.statistics is not None and encoder.statistics.inputs == STATISTICS_INPUTS:
        return encoder.statistics
    return MotionStatisticsScaler.fit(_stacked_statistics(
        [state.prepared(n, view, encoder.preprocess_config) for n in gallery_names]), STATISTICS_WEIGHT)


def _stacked_statistics(items: Sequence[Any]) -> np.ndarray:
    """(N, F) motion statistics that ``_WorkerState.prepared`` items carry."""
    return np.stack([item.statistics for item in items])


def measure_open_set(encoder: Any, state: _WorkerState, parts: Mapping[str, list[str]], view: str,
                     seed: int) -> dict[str, Any]:
    """``open_set`` (the model's embedding alone) and ``open_set_with_statistics`` on the test takes."""
    from benchmarks.open_set import open_set_metrics

    plain = encoder.without_statistics()
    labels = [state.seqs[n].label for n in parts["test"]]
    items = [state.prepared(n, view, plain.preprocess_config) for n in parts["test"]]
    emb, _ = plain.encode_prepared(items, 64)
    scaler = _statistics_scaler(encoder, state, parts["train"] + parts["val"], view)
    appended = scaler.append(emb, _stacked_statistics(items))
    return {"open_set": open_set_metrics(emb, labels, seed).to_dict(),
            "open_set_with_statistics": open_set_metrics(appended, labels, seed).to_dict(),
            "statistics_inputs": STATISTICS_INPUTS}


def measure_run(encoder: Any, state: _WorkerState, parts: Mapping[str, list[str]], view: str,
                seed: int) -> dict[str, Any]:
    """A run's figures on its split's test takes against the train+val gallery: ``metrics`` (the model's
    embedding alone), ``metrics_mirror_tta`` and ``metrics_with_statistics`` (the statistics appended)."""
    from encoder.evaluation.metrics import compute_metrics

    plain = encoder.without_statistics()
    test_names, gallery_names = parts["test"], parts["train"] + parts["val"]
    test_labels = [state.seqs[n].label for n in test_names]
    gallery_labels = [state.seqs[n].label for n in gallery_names]
    items = [state.prepared(n, view, plain.preprocess_config) for n in test_names]
    gal_items = [state.prepared(n, view, plain.preprocess_config) for n in gallery_names]
    scaler = _statistics_scaler(encoder, state, gallery_names, view)
    out: dict[str, Any] = {}
    for tta in (False, True):
        plain.mirror_tta = tta
        emb, logits = plain.encode_prepared(items, 64)
        gal_emb, _ = plain.encode_prepared(gal_items, 64)
        out["metrics_mirror_tta" if tta else "metrics"] = HeadlineMetrics.from_metrics(compute_metrics(
            emb, logits, test_labels, gallery_embeddings=gal_emb, gallery_labels=gallery_labels, seed=seed,
            label_names=plain.labels)).to_dict()
        if not tta:
            out["metrics_with_statistics"] = HeadlineMetrics.from_metrics(compute_metrics(
                scaler.append(emb, _stacked_statistics(items)), logits, test_labels,
                gallery_embeddings=scaler.append(gal_emb, _stacked_statistics(gal_items)),
                gallery_labels=gallery_labels, seed=seed, label_names=plain.labels)).to_dict()
    return {**out, "statistics_inputs": STATISTICS_INPUTS}


def add_statistics_to_kept_runs(records: list[dict[str, Any]], state: _WorkerState, runs_file: Path | None,
                                progress: bool = True) -> int:
    """Bring kept runs whose checkpoints do not append today's motion statistics (``STATISTICS_INPUTS``)
    up to the default: trained before checkpoints appended them, or appending an older kind.

    Training does not depend on the statistics, so fitting their scaler on the run's train+val takes (as
    training now does) and re-saving the kept checkpoint gives the checkpoint training writes today; the run
    is then measured both ways (``measure_run``) and its record, marked ``statistics_added_after_training``,
    appended to the runs file. Returns how many runs were brought up to date.
    """
    from tqdm import tqdm

    from encoder.checkpoint import load_checkpoint, save_checkpoint
    from encoder.inference import StyleEncoder

    todo = [i for i, r in enumerate(records)
            if r.get("holdout") is None and r.get("ablation") is None and r.get("checkpoint")
            and r.get("statistics_inputs") != STATISTICS_INPUTS and runs_file is not None
            and kept_checkpoint(r, runs_file).is_file()]
    for i in tqdm(todo, desc="statistics", unit="run", disable=not progress, dynamic_ncols=True):
        rec = records[i]
        path = kept_checkpoint(rec, runs_file)
        model, meta = load_checkpoint(path)
        parts = state.parts[rec["split"]]
        encoder = StyleEncoder(model, meta)
        scaler = _statistics_scaler(encoder, state, parts["train"] + parts["val"], rec["view"])
        if scaler is not encoder.statistics:     # not today's kind: the checkpoint training writes now
            meta = save_checkpoint(path, model, replace(meta, motion_statistics=scaler.to_dict()))
            encoder = StyleEncoder(model, meta)
        measured = measure_run(encoder, state, parts, rec["view"], rec["seed"])
        drift = max(abs((measured["metrics"][k] or 0.0) - (v or 0.0)) for k, v in rec["metrics"].items())
        records[i] = {**rec, "metrics_with_statistics": measured["metrics_with_statistics"],
                      "statistics_inputs": STATISTICS_INPUTS, "statistics_added_after_training": True,
                      "remeasured_metrics_max_abs_change": drift}
        _append_run(runs_file, records[i])
    return len(todo)


def run_summary(record: Mapping[str, Any]) -> str:
    """One line for the progress bar: which run finished and its headline figure."""
    where = f"{record['model']} {record['split']} {record['view']} s{record['seed']}"
    if record.get("holdout"):
        loo_p5 = OpenSetMetrics.from_dict(record["open_set"]).loo_p5
        return f"{where} open set ({', '.join(record['holdout'])}) loo P@5 {_fmt(loo_p5)}"
    return f"{where} acc {_fmt(HeadlineMetrics.from_dict(record['metrics']).accuracy)}"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


# -- the hand-made floor -------------------------------------------------------------------------
def handcrafted_run(state: _WorkerState, split: str, view: str) -> dict[str, Any]:
    """The BENCHMARK.md floor: standardised hand-made statistics, logistic regression; embedding = features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from encoder.evaluation.metrics import compute_metrics

    start = time.perf_counter()
    parts = state.parts[split]
    fit_names, test_names = parts["train"] + parts["val"], parts["test"]
    x_fit, x_test = state.statistics(fit_names, view), state.statistics(test_names, view)
    scaler = StandardScaler().fit(x_fit)
    x_fit, x_test = scaler.transform(x_fit), scaler.transform(x_test)
    y_fit = [state.seqs[n].label for n in fit_names]
    y_test = [state.seqs[n].label for n in test_names]
    clf = LogisticRegression(max_iter=2000, C=1.0).fit(x_fit, y_fit)
    metrics = compute_metrics(x_test, clf.predict(x_test).tolist(), y_test, gallery_embeddings=x_fit,
                              gallery_labels=y_fit, seed=0, label_names=sorted(set(y_fit)))
    return {"key": f"{HANDCRAFTED}/{split}/{view}", "model": HANDCRAFTED, "split": split, "view": view, "seed": 0,
            "ablation": None, "settings": {"C": 1.0, "features": x_fit.shape[1]},
            "metrics": HeadlineMetrics.from_metrics(metrics).to_dict(),
            "n_test": len(test_names), "epochs_run": None, "best_epoch": None, "parameters": int(clf.coef_.size +
                                                                                              clf.intercept_.size),
            "run_seconds": time.perf_counter() - start, "checkpoint": None, "dataset_version": state.dataset_version}


def handcrafted_open_set_run(state: _WorkerState, holdout: tuple[str, ...]) -> dict[str, Any]:
    """The hand-made floor on the open-set protocol (2d view, ``random`` split)."""
    from benchmarks.open_set import handcrafted_open_set, seen_parts

    parts = seen_parts(state.parts["random"], {n: s.label for n, s in state.seqs.items()}, holdout)
    metrics = handcrafted_open_set(state.statistics(parts["train"] + parts["val"], "2d"),
                                   state.statistics(parts["test"], "2d"),
                                   [state.seqs[n].label for n in parts["test"]])
    return {"key": f"{HANDCRAFTED}/open-set/{'+'.join(holdout)}", "model": HANDCRAFTED, "split": "random",
            "view": "2d", "seed": 0, "ablation": None, "holdout": list(holdout), "open_set": metrics.to_dict(),
            "n_test": len(parts["test"]), "epochs_run": None, "best_epoch": None, "run_seconds": 0.0,
            "checkpoint": None}


def schedule_text(config: EncoderBenchConfig) -> str:
    """The training schedule every run of the bench used, in words (from ``TrainConfig``)."""
    from encoder.training import TrainConfig

    cfg = TrainConfig().with_overrides(config.train, source="bench")
    stopping = (f"all {cfg.epochs} epochs (no early stopping), the epoch with the best validation macro-F1 "
                "(ties broken by validation loss) restored" if cfg.min_epochs >= cfg.epochs else
                f"up to {cfg.epochs} epochs, early stopping after {cfg.patience} epochs without a better validation "
                f"macro-F1 (ties broken by validation loss), never before epoch {cfg.min_epochs}, best epoch restored")
    return (f"{stopping}; batch {cfg.batch_size}, AdamW lr {cfg.lr:g} (weight decay "
            f"{cfg.weight_decay:g}), {cfg.warmup_epochs:g} warm-up epochs then cosine decay to "
            f"{cfg.min_lr_ratio:g} x lr; "
            f"{cfg.augment.variants} augmented "
            f"copies of each training take (camera pitch {cfg.augment.pitch_range[0]:g} to "
            f"{cfg.augment.pitch_range[1]:g} degrees, lens x{cfg.augment.distance_scale_range[0]:g}-"
            f"{cfg.augment.distance_scale_range[1]:g}, tempo, mirror, jitter, joint dropout, clips)")


# -- summarising ---------------------------------------------------------------------------------
def _current_statistics(record: Mapping[str, Any]) -> bool:
    """Whether a record's with-statistics figures used today's statistics (``STATISTICS_INPUTS``)."""
    return record.get("statistics_inputs") == STATISTICS_INPUTS


def aggregate(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (model, split, view, ablation): ``seeds`` and per metric ``{mean, std, n, values}``.

    Open-set runs are left out (``aggregate_open_set``); PoseStyle-Net's runs evaluated with test-time
    mirror averaging give one more ablation row, ``MIRROR_TTA_ROW``, and any run measured with the motion
    statistics appended gives a ``STATISTICS_ROW`` row.
    """
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for rec in records:
        if rec.get("holdout") is not None:
            continue
        groups.setdefault((rec["model"], rec["split"], rec["view"], rec["ablation"]), []).append(rec)
        if rec["model"] == "posestyle_net" and rec["ablation"] is None and rec.get("metrics_mirror_tta"):
            tta = {**rec, "metrics": rec["metrics_mirror_tta"], "ablation": MIRROR_TTA_ROW}
            groups.setdefault((rec["model"], rec["split"], rec["view"], MIRROR_TTA_ROW), []).append(tta)
        if rec["ablation"] is None and rec.get("metrics_with_statistics") and _current_statistics(rec):
            stats = {**rec, "metrics": rec["metrics_with_statistics"], "ablation": STATISTICS_ROW}
            groups.setdefault((rec["model"], rec["split"], rec["view"], STATISTICS_ROW), []).append(stats)
    rows = []
    for (model, split, view, ablation), recs in groups.items():
        recs = sorted(recs, key=lambda r: r["seed"])
        row: dict[str, Any] = {"model": model, "split": split, "view": view}
        if ablation is not None:
            row["ablation"] = ablation
        row["seeds"] = [r["seed"] for r in recs]
        summary = HeadlineMetrics.summarize([HeadlineMetrics.from_dict(r["metrics"]) for r in recs])
        row.update({name: cell.to_dict() for name, cell in summary.items()})
        row["epochs_run"] = MeanStd.of(r["epochs_run"] for r in recs).to_dict()
        row["best_epoch"] = MeanStd.of(r.get("best_epoch") for r in recs).to_dict()
        # a run that used every epoch and kept the last one may still have been improving
        row["stopped_at_cap_improving"] = sum(1 for r in recs if r.get("max_epochs")
                                              and r["epochs_run"] == r["max_epochs"] == r.get("best_epoch"))
        if recs[0].get("teacher"):
            row["architecture"] = recs[0]["architecture"]
            row["teacher_model"] = recs[0].get("teacher_model", "posestyle_net")   # the only teacher before
        row["parameters"] = recs[0]["parameters"]
        row["n_test"] = recs[0]["n_test"]
        row["train_seconds"] = MeanStd.of(r["run_seconds"] for r in recs).to_dict()
        row["settings"] = recs[0]["settings"]
        rows.append(row)
    return rows


def aggregate_open_set(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (model, held-out styles): leave-one-out P@5, purity and NMI over seeds.

    Runs also measured with the motion statistics appended give a row named ``model + STATISTICS_ROW``.
    """
    groups: dict[tuple[str, tuple[str, ...]], list[Mapping[str, Any]]] = {}
    for rec in records:
        if rec.get("holdout") is not None:
            groups.setdefault((rec["model"], tuple(rec["holdout"])), []).append(rec)
            if rec.get("open_set_with_statistics") and _current_statistics(rec):
                stats = {**rec, "open_set": rec["open_set_with_statistics"]}
                groups.setdefault((f"{rec['model']} {STATISTICS_ROW}", tuple(rec["holdout"])), []).append(stats)
    rows = []
    for (model, holdout), recs in groups.items():
        recs = sorted(recs, key=lambda r: r["seed"])
        row: dict[str, Any] = {"model": model, "held_out_styles": list(holdout),
                               "seeds": [r["seed"] for r in recs], "n_test": recs[0]["n_test"]}
        summary = OpenSetMetrics.summarize([OpenSetMetrics.from_dict(r["open_set"]) for r in recs])
        row.update({name: cell.to_dict() for name, cell in summary.items()})
        rows.append(row)
    return rows


def _order(rows: list[dict[str, Any]], models: Sequence[str]) -> list[dict[str, Any]]:
    """Bench order: the models as listed, then distilled students, then the hand-made floor."""
    rank = {m: i for i, m in enumerate(models)}
    rank[HANDCRAFTED] = len(models) + 1
    abl = {a: i for i, a in enumerate([*ABLATIONS, MIRROR_TTA_ROW, STATISTICS_ROW])}
    return sorted(rows, key=lambda r: (r.get("ablation") is not None, SPLITS.index(r["split"]),
                                       VIEWS.index(r["view"]), rank.get(r["model"], len(models)),
                                       abl.get(r.get("ablation"), -1)))


# -- cost --------------------------------------------------------------------------------------
def untrained_encoder(record: Mapping[str, Any], state: _WorkerState) -> Any:
    """A kept run's architecture, freshly initialised: what its cost is measured on when its checkpoint is
    not on this machine (time does not depend on the weights' values). It appends motion statistics fitted
    on the split's train+val takes, as the kept checkpoints do."""
    from encoder.inference import StyleEncoder
    from encoder.training import untrained

    job = BenchJob(record.get("architecture", record["model"]), record["split"], record["view"], record["seed"],
                   record["ablation"], record["settings"])
    parts = state.parts[record["split"]]
    labels = sorted({state.seqs[n].label for n in parts["train"]})
    result = untrained(job_train_config(job, state.threads), labels,
                       note="untrained: the architecture of a kept run, for its cost")
    encoder = StyleEncoder(result.model, result.checkpoint)
    encoder.statistics = _statistics_scaler(encoder, state, parts["train"] + parts["val"], record["view"])
    return encoder


def measure_costs(records: Sequence[Mapping[str, Any]], state: _WorkerState, config: EncoderBenchConfig,
                  progress: bool = True) -> dict[tuple[str, str | None], dict[str, Any]]:
    """Cost of each kept model (one per model and ablation), timed one after the other.

    Each is timed on its first kept checkpoint of the ablation split and view that is on this machine (a
    checkpoint of another suite where it has none there), or, where none is (a runs file trained elsewhere),
    on ``untrained_encoder``, so one report times every model on one machine.
    """
    from tqdm import tqdm

    from encoder.evaluation.cost import measure_cost
    from encoder.inference import StyleEncoder
    from encoder.training.augment import training_view

    chosen: dict[tuple[str, str | None], tuple[Mapping[str, Any], Path | None]] = {}
    rank: dict[tuple[str, str | None], tuple[bool, bool]] = {}     # lower is preferred
    for rec in records:
        if not rec.get("checkpoint") or rec.get("holdout") is not None:
            continue
        key = (rec["model"], rec["ablation"])
        path = kept_checkpoint(rec, config.runs_file)
        on_disk = path if path.is_file() else None
        rec_rank = ((rec["split"], rec["view"]) != (config.ablation_split, config.ablation_view), on_disk is None)
        if key not in chosen or rec_rank < rank[key]:
            chosen[key], rank[key] = (rec, on_disk), rec_rank
    costs: dict[tuple[str, str | None], CostMetrics] = {}
    # COST_PASSES passes over the models, best figures kept: a model timed while the machine was busy
    # (or first, while the process warms up) gets a second chance
    for key, (rec, path) in tqdm([item for _ in range(COST_PASSES) for item in chosen.items()], desc="cost",
                                 unit="model", disable=not progress, dynamic_ncols=True):
        encoder = StyleEncoder.load(path) if path is not None else untrained_encoder(rec, state)
        names = state.parts[rec["split"]]["test"][:config.cost_sequences]
        seqs = [training_view(state.seqs[n], rec["view"]) for n in names]
        block = measure_cost(encoder, seqs, batch_size=config.cost_batch_size, threads=config.cost_threads)
        if key in costs:
            old = costs[key]
            block = replace(
                block, embeddings_per_second=max(block.embeddings_per_second, old.embeddings_per_second),
                model_embeddings_per_second=max(block.model_embeddings_per_second, old.model_embeddings_per_second),
                single_query_latency_ms=min(block.single_query_latency_ms, old.single_query_latency_ms))
        costs[key] = block
    measured_on = {key: f"{rec['view']}/{rec['split']} seed {rec['seed']}" if path is not None
                   else f"{rec['view']}/{rec['split']}, untrained (checkpoint not on this machine)"
                   for key, (rec, path) in chosen.items()}
    return {key: {**cost.to_dict(), "measured_on": measured_on[key], "passes": COST_PASSES}
            for key, cost in costs.items()}


# -- targets -------------------------------------------------------------------------------------
def _mean(row: Mapping[str, Any] | None, metric: str) -> float | None:
    if row is None or not isinstance(row.get(metric), Mapping):
        return None
    return row[metric]["mean"]


def _std(row: Mapping[str, Any] | None, metric: str) -> float | None:
    if row is None or not isinstance(row.get(metric), Mapping):
        return None
    return row[metric]["std"]


def evaluate_targets(rows: Sequence[Mapping[str, Any]], open_rows: Sequence[Mapping[str, Any]] = (),
                     model: str = "posestyle_net") -> list[dict[str, Any]]:
    """The embeddings issue's targets for ``model`` (the issue names PoseStyle-Net; the report also
    checks the default encoder): measured value, met or not, and the gap; every other model is a baseline."""
    def find(name: str, split: str = "random", view: str = "2d") -> Mapping[str, Any] | None:
        return next((r for r in rows if r["model"] == name and r["split"] == split and r["view"] == view
                     and "ablation" not in r), None)

    title = MODEL_TITLES.get(model, model)
    head = find(model)
    out: list[dict[str, Any]] = []

    def add(name: str, measured: float | None, threshold: float, higher: bool, detail: str = "") -> None:
        if measured is None:                  # e.g. the split was not part of this bench
            out.append({"target": name, "measured": None, "threshold": threshold, "met": None,
                        "gap": None, "detail": detail or "not measured"})
            return
        gap = measured - threshold if higher else threshold - measured
        out.append({"target": name, "measured": measured, "threshold": threshold, "met": gap >= 0,
                    "gap": gap, "detail": detail})

    for metric, threshold in TARGETS.items():
        add(f"{title} 2d/random {metric} >= {threshold}", _mean(head, metric), threshold, True)
        add(f"{title} 2d/random {metric} seed std <= {MAX_SEED_STD}", _std(head, metric), MAX_SEED_STD, False)
    cross = find(model, "cross-content")
    for metric, threshold in CROSS_CONTENT_TARGETS.items():
        add(f"{title} 2d/cross-content {metric} >= {threshold}", _mean(cross, metric), threshold, True)
    baselines = [r for r in rows if r["split"] == "random" and r["view"] == "2d" and "ablation" not in r
                 and r["model"] not in (model, HANDCRAFTED) and "architecture" not in r]
    for metric in TARGETS:
        best = max(baselines, key=lambda r: _mean(r, metric) if _mean(r, metric) is not None else -9, default=None)
        best_value, head_value = _mean(best, metric), _mean(head, metric)
        if best is None or best_value is None or head_value is None:
            continue
        noise = max(_std(head, metric) or 0.0, _std(best, metric) or 0.0)
        # "at least as good within seed noise": the margin may be negative by at most one seed std
        add(f"{title} at least as good as every other model on {metric} (2d/random, within one seed std)",
            head_value - best_value, -noise, True,
            f"best other model {best['model']} {best_value:.3f}; measured = margin; threshold = -(larger std)")
    for row in open_rows:
        if row["model"] == model:
            add(f"open set ({', '.join(row['held_out_styles'])} held out) leave-one-out P@5 >= "
                f"{OPEN_SET_MIN_LOO_P5}", row["loo_p@5"]["mean"], OPEN_SET_MIN_LOO_P5, True)
    cost = (head or {}).get("cost") or {}
    params = cost.get("parameters", (head or {}).get("parameters"))
    add(f"parameters <= {MAX_PARAMETERS / 1e6:.1f} M", None if params is None else float(params), MAX_PARAMETERS,
        False)
    add(f"embeddings/s (2 CPU threads, batch 64) >= {MIN_EMBEDDINGS_PER_SECOND:.0f}",
        cost.get("embeddings_per_second"), MIN_EMBEDDINGS_PER_SECOND, True, "end to end: preprocessing + model")
    add(f"embeddings/s, model only (2 CPU threads, batch 64) >= {MIN_EMBEDDINGS_PER_SECOND:.0f}",
        cost.get("model_embeddings_per_second"), MIN_EMBEDDINGS_PER_SECOND, True, "on preprocessed inputs")
    return out


def as_served(rows: Sequence[Mapping[str, Any]], open_rows: Sequence[Mapping[str, Any]]
              ) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """The rows with every model's figures as `posestyle train` checkpoints serve it: while the training
    default appends the motion statistics, a model's ``STATISTICS_ROW`` figures stand in for its plain ones
    (cost and parameters kept: the kept checkpoints append them); a model without them stays as measured.
    The default encoder is judged on these rows, against the other models served the same way."""
    from encoder.training.config import TrainConfig

    if TrainConfig().motion_statistics_weight <= 0:
        return list(rows), list(open_rows)
    served = {(r["model"], r["split"], r["view"]): r for r in rows if r.get("ablation") == STATISTICS_ROW}
    out_rows: list[Mapping[str, Any]] = []
    for row in rows:
        key = (row["model"], row["split"], row["view"])
        if "ablation" not in row and key in served:
            out_rows.append({**{k: v for k, v in served[key].items() if k != "ablation"},
                             **{k: row[k] for k in ("cost",) if k in row}})
        elif row.get("ablation") != STATISTICS_ROW:
            out_rows.append(row)
    suffix = f" {STATISTICS_ROW}"
    served_open = {(r["model"][:-len(suffix)], tuple(r["held_out_styles"])) for r in open_rows
                   if r["model"].endswith(suffix)}
    out_open = [({**r, "model": r["model"][:-len(suffix)]} if r["model"].endswith(suffix) else r) for r in open_rows
                if (r["model"], tuple(r["held_out_styles"])) not in served_open]
    return out_rows, out_open


# -- report --------------------------------------------------------------------------------------
def _ms(cell: Any, digits: int = 3) -> str:
    if not isinstance(cell, Mapping) or cell.get("mean") is None:
        return "n/a"
    if cell.get("n", 0) > 1:
        return f"{cell['mean']:.{digits}f} ± {cell['std']:.{digits}f}"
    return f"{cell['mean']:.{digits}f}"


def _metric_table(rows: Sequence[Mapping[str, Any]], first: str, label: Callable[[Mapping[str, Any]], str]) -> str:
    header = [first, "seeds", *METRICS, "epochs run", "best epoch", "at cap, improving"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        epochs = [_ms(r.get("epochs_run"), 1), _ms(r.get("best_epoch"), 1),
                  str(r.get("stopped_at_cap_improving", "n/a"))]
        lines.append("| " + " | ".join([label(r), str(len(r["seeds"])), *[_ms(r.get(c)) for c in METRICS],
                                        *epochs]) + " |")
    return "\n".join(lines)


def _target_lines(targets: Sequence[Mapping[str, Any]]) -> list[str]:
    """The target table: measured, threshold, met, and by how much."""
    lines = ["| target | measured | threshold | met | by how much |", "|---|---|---|---|---|"]
    for t in targets:
        large = abs(t["threshold"]) >= 100
        measured = "n/a" if t["measured"] is None else (f"{t['measured']:,.0f}" if large else f"{t['measured']:.3f}")
        threshold = f"{t['threshold']:,.0f}" if large else f"{t['threshold']:.3f}"
        gap = "n/a" if t["gap"] is None else (f"{t['gap']:+,.0f}" if large else f"{t['gap']:+.3f}")
        detail = f" ({t['detail']})" if t.get("detail") else ""
        verdict = "not measured" if t["met"] is None else ("met" if t["met"] else "MISSED")
        lines.append(f"| {t['target']}{detail} | {measured} | {threshold} | {verdict} | {gap} |")
    return lines


def _student_lines(main: Sequence[Mapping[str, Any]]) -> list[str]:
    """The student table: each student's teacher, its architecture alone, then the student; none if no student."""
    def cell(row: Mapping[str, Any], metric: str) -> str:
        return _ms(row.get(metric))

    header = ["suite", "model", "seeds", "accuracy", "gallery_p@5", "loo_p@5", "parameters",
              "embeddings/s (end to end)", "single-query latency ms"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for student in (r for r in main if "architecture" in r):
        same = [r for r in main if r["split"] == student["split"] and r["view"] == student["view"]]
        for row in (next((r for r in same if r["model"] == student["teacher_model"]), None),
                    next((r for r in same if r["model"] == student["architecture"]), None), student):
            if row is None:
                continue
            cost = row.get("cost") or {}
            speed = (f"{cost['embeddings_per_second']:.0f} | {cost['single_query_latency_ms']:.1f}" if cost
                     else "n/a | n/a")
            lines.append(f"| {row['view']}/{row['split']} | {row['model']} | {len(row['seeds'])} | "
                         f"{cell(row, 'accuracy')} | "
                         f"{cell(row, 'gallery_p@5')} | {cell(row, 'loo_p@5')} | {row['parameters']:,} | {speed} |")
    return lines if len(lines) > 2 else []


def _per_class_table(rows: Sequence[Mapping[str, Any]]) -> str:
    styles = sorted({k[len(PER_CLASS_F1_PREFIX):] for r in rows for k in r if k.startswith(PER_CLASS_F1_PREFIX)})
    header = ["model", *styles]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        lines.append("| " + " | ".join([r["model"], *[_ms(r.get(PER_CLASS_F1_PREFIX + s), 2) for s in styles]]) + " |")
    return "\n".join(lines)


def how_it_was_run(meta: Mapping[str, Any]) -> list[str]:
    """Plain-language bullets: training settings, seeds per view, what a time budget cut."""
    train = meta.get("train_settings", {})
    seeds_by_view = meta.get("seeds_by_view") or {}
    devices = meta.get("runs_by_training_device") or {}
    lines = [
        f"- Schedule of every run of every model (the product's `posestyle train` defaults, recipe "
        f"{meta.get('recipe_version')}): {meta.get('schedule')}.",
        f"- Every model, every run: {_describe_train(train)}; the best validation epoch (macro-F1, ties "
        "broken by validation loss) is kept. Per-model overrides: "
        f"{json.dumps(meta.get('model_train_settings') or {}, sort_keys=True) or 'none'} "
        "(other settings: the `TrainConfig` and model defaults).",
        f"- Seeds: {meta.get('seeds')} for every view"
        + "".join(f", except `{v}`: {list(s)}" for v, s in seeds_by_view.items()) + ".",
        f"- Runs: {meta.get('runs')} of {meta.get('runs_planned')} planned"
        + ("" if not meta.get("runs_skipped_for_time_budget")
           else f"; {meta['runs_skipped_for_time_budget']} not run yet (the report was written with `--report-only`)"
           if meta.get("time_budget_minutes") == 0 else f"; {meta['runs_skipped_for_time_budget']} not started "
           f"because the time budget ({meta.get('time_budget_minutes')} min) ran out")
        + (f"; {meta['runs_resumed_from_file']} taken from the runs file written by an earlier invocation with "
           "the same settings (this invocation re-measured the floor and the cost and rewrote the report)"
           if meta.get("runs_resumed_from_file") else "") + ".",
        f"- Wall time of the training grid (first run's start to last run's end): "
        f"{meta.get('grid_wall_minutes_first_to_last_run')} min; this invocation: "
        f"{meta.get('total_wall_minutes')} min.",
        *([f"- Runs by training device: {', '.join(f'{d} {n}' for d, n in devices.items())} (the same recipe; "
           "on a GPU sums run in another order and cuDNN convolutions in TF32, PyTorch's default, so a run "
           "differs from its CPU twin, by about the seed spread; evaluation and cost always ran on the CPU)."]
          if set(devices) - {"cpu"} else []),
        f"- {meta.get('workers')} training processes with {meta.get('threads_per_worker')} torch thread(s) each, "
        f"on {meta.get('machine')}; load average (1/5/15 min) {meta.get('load_average_1_5_15_at_start')} at "
        f"the start and {meta.get('load_average_1_5_15_at_end')} at the end (other sessions' jobs ran "
        "at the same time, so timings are pessimistic).",
    ]
    return lines


def _describe_train(train: Mapping[str, Any]) -> str:
    if not train:
        return "the `TrainConfig` defaults"
    parts = [f"`{k}={v}`" for k, v in sorted(train.items())]
    text = ", ".join(parts)
    if train.get("train_windows"):
        text += (f" (each training step sees a random run of {train['train_windows']} consecutive windows of "
                 "each take; validation, test and gallery always see every window)")
    return text


def render_markdown(report: Mapping[str, Any]) -> str:
    """``encoders.md``: main, cross-content, 3d, ablation, per-class, cost and target tables, and the run facts."""
    rows = report["rows"]
    meta = report["meta"]
    main = [r for r in rows if "ablation" not in r]

    def name(r: Mapping[str, Any]) -> str:
        return r["model"]

    parts = ["# Encoder benchmark", "",
             "Every figure is the mean ± sample standard deviation (ddof = 1) over the seeds listed "
             "(the seed changes initialisation and batch order, never the split), on the split's test "
             "takes, following `BENCHMARK.md`. Retrieval: `gallery_*` queries the train+val gallery, "
             "`loo_*` is leave-one-out inside the test split; a hit is a take of the same style. "
             f"`{HANDCRAFTED}` is the BENCHMARK.md hand-made-statistics floor (deterministic: one run). "
             "`temporal_cnn` is the BENCHMARK.md temporal-CNN floor, retrained here with this bench's settings.", ""]
    for split, view, title in SUITE_TITLES:
        sel = [r for r in main if r["split"] == split and r["view"] == view]
        if sel:
            parts += [f"## {title}", "", _metric_table(sel, "model", name), ""]
    abl = [r for r in rows if r["model"] == "posestyle_net" and r["split"] == meta["ablation_split"]
           and r["view"] == meta["ablation_view"]]
    if any("ablation" in r for r in abl):
        parts += [f"## PoseStyle-Net ablation (paper Table 6), `{meta['ablation_view']}` / "
                  f"`{meta['ablation_split']}`", "",
                  _metric_table(abl, "configuration", lambda r: r.get("ablation", "complete model")), ""]
    with_stats = [r for r in rows if r.get("ablation") == STATISTICS_ROW]
    if with_stats:
        pairs = [r for s_row in with_stats for r in rows if r["model"] == s_row["model"] and r["split"] ==
                 s_row["split"] and r["view"] == s_row["view"] and r.get("ablation") in (None, STATISTICS_ROW)]
        parts += ["## Learned embedding with the motion statistics appended", "",
                  f"The same runs, their embedding measured plain and with the hand-made statistics appended "
                  f"(`encoder.data.motion_statistics`: L2-normalised embedding beside {STATISTICS_WEIGHT:g} x the "
                  "statistics z-scored on the train+val takes / sqrt(F)), as `posestyle train` checkpoints "
                  "append them by default, computed from the encoder's own preprocessing (gaps filled, "
                  "resampled). Accuracy and macro-F1 come from the classifier and do not change.", ""]
        for split, view, _ in SUITE_TITLES:
            suite = [r for r in pairs if r["split"] == split and r["view"] == view]
            if suite:
                parts += [f"### `{view}` / `{split}`", "",
                          _metric_table(suite, "model",
                                        lambda r: r["model"] + (f" {r['ablation']}" if r.get("ablation") else "")),
                          ""]
    if report.get("open_set"):
        lines = ["| model | held-out styles | seeds | leave-one-out P@5 | purity | NMI |", "|---|---|---|---|---|---|"]
        for r in sorted(report["open_set"], key=lambda r: (r["held_out_styles"], r["model"] != "posestyle_net")):
            lines.append(f"| {r['model']} | {', '.join(r['held_out_styles'])} | {len(r['seeds'])} | "
                         f"{_ms(r['loo_p@5'])} | {_ms(r['purity'])} | {_ms(r['nmi'])} |")
        parts += ["## Open-set styles (`2d`, `random` split)", "",
                  "Each model trains with 3 of the 7 styles held out entirely (two choices of 3); the held-out "
                  "styles' test takes are then ranked by the embedding alone: leave-one-out "
                  "P@5 among them (chance about 0.33), k-means (k = 3) purity and NMI. "
                  f"`{HANDCRAFTED}` is the hand-made-statistics floor on the same takes (standardised on the "
                  "seen styles).", "", *lines, ""]
    head_rows = [r for r in main if r["split"] == "random" and r["view"] == "2d"]
    if head_rows:
        parts += ["## Per-class F1 (`2d` / `random`)", "", _per_class_table(head_rows), ""]
    cost_rows = [r for r in rows if r.get("cost")]
    if cost_rows:
        header = ["model", "parameters", "embeddings/s (end to end)", "embeddings/s (model only)",
                  "single-query latency ms", "measured on"]
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        for r in cost_rows:
            c = r["cost"]
            lines.append(f"| {r.get('ablation') or r['model']} | {c['parameters']:,} | "
                         f"{c['embeddings_per_second']:.0f} | {c['model_embeddings_per_second']:.0f} | "
                         f"{c['single_query_latency_ms']:.1f} | {c['measured_on']} |")
        parts += ["## Cost (CPU, {} threads, batch {}, {} test takes; measured once per model after all "
                  "training)".format(meta["cost_threads"], meta["cost_batch_size"], meta["cost_sequences"]), "",
                  "Throughput is the best of 5 timings in each of 2 passes over the models; end to end = "
                  "preprocessing (eq. 1-3, windows) + model, plus the motion statistics a checkpoint appends "
                  "(the kept checkpoints append them, as `posestyle train` writes them by default), "
                  "from pose sequences already in the model's view. On this shared 2-core machine repeated "
                  f"measurements of one model differ by up to about {COST_NOISE * 100:.0f} %, so read "
                  "differences below that as noise (the `w/o structural constraint term` model has exactly the "
                  "complete model's architecture). "
                  "A model whose kept checkpoints are not on the machine that wrote the report is timed on its "
                  "architecture freshly initialised (time does not depend on the weights' values).",
                  "", *lines, ""]
    students = _student_lines(main)
    if students:
        parts += ["## Distilled student (GaitKD, seed paper 001): quality against speed", "",
                  "Each student is trained with the teacher's logits and neighbourhoods as extra targets "
                  "(`posestyle train --teacher`, `encoder/training/distill.py`), suite by suite and seed for seed "
                  "from the teacher run of the same split, view, seed and (open set, in that table) held-out "
                  "styles. Beside it: the teacher, and the student's architecture trained alone with the same "
                  f"recipe where the bench ran it. Speed as in the cost table (measured on "
                  f"`{meta['ablation_view']}` / `{meta['ablation_split']}`).", "", *students, ""]
    seed_lines = comparison_lines(report.get("seed_systems") or [], MODEL_TITLES)
    if seed_lines:
        parts += ["## The seed systems and the distilled students against PoseStyle-Net and the default", "",
                  "Each seed system (GaitHeat, GaitMM, HSTL on rendered skeleton maps) and each distilled student, "
                  "suite by suite, beside PoseStyle-Net and the default encoder, all on their plain embedding. "
                  "A difference counts as better or worse only when it is larger than the larger of the two seed "
                  "standard deviations (one seed: its spread is unknown and counts as 0); cost is measured once "
                  f"per model, and a ratio within {COST_NOISE:.0%} is measurement noise on this shared machine. "
                  "Cameras: the worst in-target condition of `posestyle bench robustness` (reports in this "
                  "folder, on the seeds each report lists).", "", *seed_lines, ""]
        notes = scaled_down_notes(SEED_SYSTEMS)
        if notes:
            parts += ["What the seed systems scale down from their papers, and why (from each model's module "
                      "docstring):", "", *[f"- **{name}**: {note}" for name, note in notes.items()], ""]
    if report.get("targets"):
        parts += ["## Targets (measured, 2d / random unless stated)", "",
                  "`by how much`: measured minus threshold (for parameters: threshold minus measured); "
                  "negative means missed.", "", *_target_lines(report["targets"]), ""]
    if report.get("default_model_targets"):
        default = meta.get("default_model", "")
        weight = meta.get("default_motion_statistics_weight") or 0.0
        served = f" {STATISTICS_ROW}" if weight > 0 else ""
        parts += [f"## The same targets for the default encoder ({MODEL_TITLES.get(default, default)}{served})", "",
                  "`posestyle train` builds this model when none is named (`encoder/training/config.py`, "
                  "`DEFAULT_MODEL`); every other model, PoseStyle-Net included, is its baseline here."
                  + (" Every checkpoint `posestyle train` writes appends the motion statistics by default "
                     f"(`motion_statistics_weight` {weight:g}), so the figures here are the `{STATISTICS_ROW}` "
                     "ones, the default's cost included, and each other model is compared as it is served "
                     "too (its own appended row where the bench has one). The plain embeddings are compared in "
                     "the tables above." if weight > 0 else ""), "",
                  *_target_lines(report["default_model_targets"]), ""]
    parts += ["## How this was run", "", *how_it_was_run(meta), ""]
    parts += ["## Run", "", "| item | value |", "|---|---|"]
    for key, value in meta.items():
        if isinstance(value, (dict, list)):
            value = "`" + json.dumps(value, sort_keys=True) + "`"
        parts.append(f"| {key} | {value} |")
    parts.append("")
    return "\n".join(parts)


def write_encoder_report(report: Mapping[str, Any], out: str | Path, stem: str = "encoders") -> dict[str, Path]:
    """``<stem>.json`` (the list of rows) and ``<stem>.md`` in ``out``, written atomically."""
    out = Path(out)
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    atomic_write_text(json_path, json.dumps(report["rows"], indent=1) + "\n")
    atomic_write_text(md_path, render_markdown(report))
    return {"json": json_path, "markdown": md_path}


# -- the whole bench -----------------------------------------------------------------------------
def load_runs(path: Path | None) -> dict[str, dict[str, Any]]:
    """The runs file as {key: record}, the latest record of a key winning (a retrained run)."""
    if path is None or not path.is_file():
        return {}
    runs = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue                      # a line cut short by an interruption
            runs[rec["key"]] = rec
    return runs


def _append_run(path: Path | None, record: Mapping[str, Any]) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _record_run(runs_file: Path | None, keep_dir: Path, record: Mapping[str, Any]) -> None:
    """Append a finished run to the runs file, then drop the training state it no longer needs."""
    _append_run(runs_file, record)
    resume_file(keep_dir, record["key"]).unlink(missing_ok=True)


def kept_checkpoint(record: Mapping[str, Any], runs_file: str | Path | None) -> Path:
    """Where a run's kept checkpoint is: its recorded path, else beside the runs file (``<stem>.models/``),
    so a runs file moved or copied with its models folder still finds them (a bench without a runs file
    keeps its checkpoints at their recorded paths only)."""
    recorded = Path(record["checkpoint"])
    if recorded.is_file() or runs_file is None:
        return recorded
    return Path(runs_file).with_suffix(".models") / recorded.name


def run_encoder_bench(config: EncoderBenchConfig, out: str | Path | None = None, progress: bool = True,
                      command: str = "posestyle bench encoders", stem: str = "encoders") -> dict[str, Any]:
    """Run the grid, the floor and the cost, summarise, and write ``<stem>.md/.json`` into ``out`` (if given)."""
    from tqdm import tqdm

    from encoder.models import model_names

    unknown = [m for m in config.models if m not in model_names()]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; known: {', '.join(model_names())}")
    if not Path(config.data).exists():
        raise PoseDataError(config.data, "dataset cache not found (run `posestyle ingest` first)")
    wall_start = time.perf_counter()
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    load_start = load_average()
    jobs = plan_jobs(config)
    done = load_runs(config.runs_file)
    if config.runs_file is not None:          # kept next to the runs file, so a resumed bench finds them
        keep_dir = Path(config.runs_file).with_suffix(".models")
        keep_dir.mkdir(parents=True, exist_ok=True)
    else:
        keep_dir = Path(tempfile.mkdtemp(prefix="posestyle-bench-"))
    records: list[dict[str, Any]] = []
    todo: list[BenchJob] = []
    # A kept run whose checkpoint is missing is retrained when the bench trains (the robustness bench and
    # the students need it); a report (zero budget) takes the recorded run as it is.
    report_only = config.time_budget_minutes == 0
    for job in jobs:
        rec = done.get(job.key())
        if rec is not None and not stopped_before_min_epochs(rec, job) and (
                not job.keep_model or report_only
                or (rec.get("checkpoint") and kept_checkpoint(rec, config.runs_file).is_file())):
            records.append(rec)
        else:
            todo.append(job)
    retrained = {job.key() for job in todo}          # a student of a retrained teacher is retrained after it
    for job in jobs:
        if job.teacher in retrained and job not in todo:
            records.remove(done[job.key()])
            todo.append(job)
    todo.sort(key=lambda j: job_priority(j, list(config.models)))
    deadline = None if config.time_budget_minutes is None else wall_start + 60.0 * config.time_budget_minutes
    skipped_for_time = 0
    # every split a planned run uses: open-set runs and students train on theirs whatever ``splits`` names
    used_splits = tuple(s for s in SPLITS if s in config.splits or any(job.split == s for job in jobs))
    init_args = (Path(config.data), Path(config.splits_dir), used_splits, config.threads_per_worker, config.device)
    bar = tqdm(total=len(jobs), initial=len(records), desc="bench runs", unit="run", disable=not progress,
               dynamic_ncols=True)
    if todo and deadline is not None and time.perf_counter() >= deadline:     # a zero budget: report only
        skipped_for_time = len(todo)
    elif todo:
        if config.workers > 1:
            with ProcessPoolExecutor(config.workers, mp_context=process_pool_context(), initializer=_init_worker,
                                     initargs=init_args) as pool:
                queue = list(todo)
                pending: dict[Any, str] = {}                  # future -> key of the run
                while True:
                    while len(pending) < config.workers and (deadline is None or time.perf_counter() < deadline):
                        unfinished = {j.key() for j in queue} | set(pending.values())
                        runnable = next_runnable(queue, keep_dir, unfinished)   # a student waits for its teacher
                        if runnable is None:
                            break
                        pending[pool.submit(run_job, runnable, keep_dir)] = runnable.key()
                    if not pending:
                        break
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        del pending[future]
                        rec = future.result()
                        records.append(rec)
                        _record_run(config.runs_file, keep_dir, rec)
                        bar.update(1)
                        bar.set_postfix_str(run_summary(rec))
                skipped_for_time = len(queue)
        else:
            _init_worker(*init_args)
            queue = list(todo)
            while queue and (deadline is None or time.perf_counter() < deadline):
                runnable = next_runnable(queue, keep_dir, {j.key() for j in queue})
                if runnable is None:
                    break
                rec = run_job(runnable, keep_dir)
                records.append(rec)
                _record_run(config.runs_file, keep_dir, rec)
                bar.update(1)
            skipped_for_time = len(queue)
    bar.close()
    training_seconds = time.perf_counter() - wall_start

    state = _WorkerState(*init_args[:3], threads=config.cost_threads)
    given_statistics = add_statistics_to_kept_runs(records, state, config.runs_file, progress)
    if config.handcrafted:
        for split in config.splits:
            for view in config.views:
                records.append(handcrafted_run(state, split, view))
        for holdout in config.open_set:
            records.append(handcrafted_open_set_run(state, holdout))
    costs = measure_costs(records, state, config, progress) if config.cost else {}
    rows = _order(aggregate(records), config.models)
    open_rows = aggregate_open_set(records)
    for row in rows:
        cost = costs.get((row["model"], row.get("ablation")))
        if cost is not None and row["split"] == config.ablation_split and row["view"] == config.ablation_view:
            row["cost"] = cost
    from encoder.training.config import DEFAULT_MODEL, TrainConfig

    targets = evaluate_targets(rows, open_rows)
    default_targets = (evaluate_targets(*as_served(rows, open_rows), DEFAULT_MODEL)
                       if DEFAULT_MODEL != "posestyle_net" else [])
    total = time.perf_counter() - wall_start
    runs_seconds = [r["run_seconds"] for r in records if r["model"] != HANDCRAFTED and r.get("epochs_run")]
    stamped = [r for r in records if r.get("finished_unix")]
    span = (max(r["finished_unix"] for r in stamped) - min(r["finished_unix"] - r["run_seconds"] for r in stamped)
            if stamped else None)
    meta = {
        "command": command, "started": started, "total_wall_minutes": round(total / 60, 1),
        "training_wall_minutes": round(training_seconds / 60, 1),
        "grid_wall_minutes_first_to_last_run": None if span is None else round(span / 60, 1),
        "load_average_1_5_15_at_start": load_start, "load_average_1_5_15_at_end": load_average(),
        "runs": len(runs_seconds), "runs_resumed_from_file": len(jobs) - len(todo),
        "runs_planned": len(jobs), "runs_skipped_for_time_budget": skipped_for_time,
        "time_budget_minutes": config.time_budget_minutes,
        "mean_run_seconds_per_worker": round(float(np.mean(runs_seconds)), 1) if runs_seconds else None,
        "machine": f"{os.cpu_count()} CPU cores ({cpu_model()}), shared with other work",
        "workers": config.workers, "threads_per_worker": config.threads_per_worker,
        "runs_by_training_device": dict(sorted(Counter(
            str(r.get("device", "cpu")).split(":")[0] for r in records
            if r["model"] != HANDCRAFTED and r.get("epochs_run")).items())),
        "dataset": str(config.data), "dataset_version": records[0]["dataset_version"] if records else None,
        "splits_dir": str(config.splits_dir), "seeds": list(config.seeds),
        "seeds_by_view": {k: list(v) for k, v in config.seeds_by_view.items()},
        "ablation_split": config.ablation_split, "ablation_view": config.ablation_view,
        "train_settings": config.train, "model_train_settings": config.model_train,
        "recipe_version": RECIPE_VERSION, "schedule": schedule_text(config),
        "cost_threads": config.cost_threads, "cost_batch_size": config.cost_batch_size,
        "cost_sequences": config.cost_sequences, "default_model": DEFAULT_MODEL,
        "default_motion_statistics_weight": TrainConfig().motion_statistics_weight,
        "runs_given_statistics_after_training": given_statistics,
    }
    robustness = load_robustness_rows(out) if out is not None else {}
    report = {"rows": rows, "open_set": open_rows, "targets": targets, "default_model_targets": default_targets,
              "seed_systems": compare_seed_systems(rows, open_rows, robustness, (REFERENCE_MODEL, DEFAULT_MODEL)),
              "meta": meta}
    if out is not None:
        report["files"] = {k: str(v) for k, v in write_encoder_report(report, out, stem).items()}
    return report

