"""``posestyle bench robustness``: the encoders under other cameras and captures (after the paper's Table 3).

Every checkpoint the encoder bench kept for the ``2d`` view and the ``random`` split (one per
model and seed) embeds the split's test takes seen in each ``CONDITIONS`` entry; queries are
ranked against the train+val gallery in the benchmark view (the archive a designer searches),
so a condition measures how far a query taken from another camera, or with worse keypoints,
lands from the archived takes of its style. Per condition: accuracy, macro-F1 and gallery P@5,
mean ± std over seeds, and the change from the benchmark view.

Each condition is built from the 3D take and is the same on every run: its random draws come
from a generator seeded by the take's name and the condition's name.

Target (the embeddings issue): for every camera with pitch <= 35 degrees (any side, any focal
length 600-3000 px) and for 15 % missing joints, accuracy and gallery P@5 within 0.02 of the
benchmark view; checked for every model.

``inference_window_stride`` re-runs the suite with the checkpoints embedding through windows that
step by that many frames (their recorded setting otherwise), so one setting's quality can be set
against another's on every condition; each model's cost (BENCHMARK.md protocol) is measured with
the same windows on its first checkpoint.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from benchmarks.encoder_bench import RECIPE_VERSION, STATISTICS_ROW, kept_checkpoint, load_runs
from encoder.data.camera import (
    BENCHMARK_DROP_FRACTION,
    BENCHMARK_JITTER_FRAC,
    benchmark_2d_view,
    benchmark_camera,
    camera_2d_view,
    placed_camera,
    take_rng,
)
from encoder.data.preprocess import resample_fps
from encoder.data.sequence import PoseSequence
from encoder.evaluation.results import HeadlineMetrics, MeanStd
from encoder.training.augment import change_tempo

if TYPE_CHECKING:
    from encoder.inference import StyleEncoder

TARGET_GAP = 0.02
COST_SEQUENCES = 128     # the cost protocol's test takes (as in the encoder bench)
# azimuth of the camera around the walker: 0 in front of them, 180 behind (degrees, +- spread)
SIDES: dict[str, tuple[tuple[float, ...], float]] = {
    "front": ((0.0,), 20.0), "behind": ((180.0,), 20.0), "beside": ((90.0, 270.0), 20.0),
    "oblique": ((45.0, 135.0, 225.0, 315.0), 10.0),
}


@dataclass(frozen=True)
class Condition:
    """One way of seeing the test takes: ``make(take_3d, take_name, rng)`` -> the 2D query.

    ``in_target``: the condition is one the issue's robustness target covers.
    """

    name: str
    group: str
    make: Callable[[PoseSequence, str, np.random.Generator], PoseSequence]
    in_target: bool


def _placed(pitch: float | None, side: str | None, focal: float) -> Callable[..., PoseSequence]:
    """A camera at ``pitch`` (None: the benchmark's U[-5, 15]) on ``side`` (None: anywhere)."""
    def make(seq: PoseSequence, name: str, rng: np.random.Generator) -> PoseSequence:
        if side is None:
            azimuth = float(rng.uniform(0.0, 360.0))
        else:
            centres, spread = SIDES[side]
            azimuth = float(rng.choice(centres)) + float(rng.uniform(-spread, spread))
        p = float(rng.uniform(-5.0, 15.0)) if pitch is None else pitch
        return camera_2d_view(seq, placed_camera(seq, azimuth, p, focal), rng)
    return make


def _bench_camera(jitter: float = BENCHMARK_JITTER_FRAC, drop: float = BENCHMARK_DROP_FRACTION,
                  before: Callable[[PoseSequence, np.random.Generator], PoseSequence] | None = None
                  ) -> Callable[..., PoseSequence]:
    """The take's benchmark camera, with other jitter/dropout, or after changing the 3D take."""
    def make(seq: PoseSequence, name: str, rng: np.random.Generator) -> PoseSequence:
        params = benchmark_camera(seq, name)
        shown = before(seq, rng) if before is not None else seq
        return camera_2d_view(shown, params, rng, jitter_frac=jitter, drop_fraction=drop)
    return make


def _low_confidence(fraction: float) -> Callable[..., PoseSequence]:
    """Benchmark view, then ``fraction`` of the joint-frames scored near 0 (0.01-0.1), coordinates kept."""
    def make(seq: PoseSequence, name: str, rng: np.random.Generator) -> PoseSequence:
        view = benchmark_2d_view(seq, name)
        low = (rng.random(view.confidence.shape) < fraction) & (view.confidence > 0)
        conf = np.where(low, rng.uniform(0.01, 0.1, view.confidence.shape), view.confidence)
        return view.with_(confidence=conf.astype(np.float32))
    return make


def conditions() -> list[Condition]:
    """Every condition of the report, in its order."""
    out = [Condition("benchmark view", "reference", lambda s, n, r: benchmark_2d_view(s, n), True)]
    for pitch in (0.0, 15.0, 30.0, 45.0):
        out.append(Condition(f"pitch {pitch:.0f}°", "camera height", _placed(pitch, None, 1000.0), pitch <= 35))
    for focal in (600.0, 1500.0, 3000.0):
        out.append(Condition(f"focal {focal:.0f} px", "lens", _placed(None, None, focal), True))
    for side in SIDES:
        out.append(Condition(f"camera {side}", "camera side", _placed(None, side, 1000.0), True))
    for side in SIDES:
        for focal in (600.0, 3000.0):
            out.append(Condition(f"pitch 35° {side}, focal {focal:.0f}", "raised corners",
                                 _placed(35.0, side, focal), True))
    for frac in (0.01, 0.02, 0.03, 0.05):
        out.append(Condition(f"noise {frac:.0%}", "keypoint noise", _bench_camera(jitter=frac), False))
    for frac in (0.05, 0.15, 0.30):
        out.append(Condition(f"missing {frac:.0%}", "missing joints", _bench_camera(drop=frac), frac == 0.15))
    out.append(Condition("low confidence 15%", "missing joints", _low_confidence(0.15), False))
    for factor in (0.8, 1.25):
        out.append(Condition(f"tempo {factor:g}x", "time", _bench_camera(
            before=lambda s, r, f=factor: change_tempo(s, f)), False))
    for seconds in (1.0, 2.0):
        out.append(Condition(f"clip {seconds:.0f} s", "time", _bench_camera(
            before=lambda s, r, sec=seconds: _fixed_clip(s, r, sec)), False))
    for fps in (25.0, 60.0):
        out.append(Condition(f"{fps:.0f} fps input", "time", _bench_camera(
            before=lambda s, r, f=fps: resample_fps(s, f)), False))
    return out


def _fixed_clip(seq: PoseSequence, rng: np.random.Generator, seconds: float) -> PoseSequence:
    """A clip of exactly ``seconds`` (the whole take when shorter) at a random start."""
    length = int(round(seconds * seq.fps))
    if seq.num_frames <= length:
        return seq
    start = int(rng.integers(0, seq.num_frames - length + 1))
    return seq.with_(joints=seq.joints[start:start + length].copy(),
                     confidence=seq.confidence[start:start + length].copy())


def condition_view(condition: Condition, seq3d: PoseSequence, name: str) -> PoseSequence:
    """The 2D query of one take under one condition (deterministic per take and condition)."""
    return condition.make(seq3d, name, take_rng(f"{name}|{condition.name}"))


def served_variants(model: str, encoder: StyleEncoder) -> list[tuple[str, StyleEncoder]]:
    """(row label, encoder): the model's embedding alone, then, when the checkpoint appends the motion
    statistics (the training default), the embedding as the checkpoint serves it."""
    variants = [(model, encoder.without_statistics())]
    if encoder.statistics is not None:
        variants.append((f"{model} {STATISTICS_ROW}", encoder))
    return variants


def evaluate_encoder(encoder: StyleEncoder, takes: Mapping[str, PoseSequence], test: Sequence[str],
                     gallery: Sequence[str], chosen: Sequence[Condition]) -> dict[str, HeadlineMetrics]:
    """Accuracy, macro-F1 and gallery P@5 of one encoder under each condition (other figures None)."""
    from encoder.evaluation.metrics import classification_metrics, retrieval_metrics

    gal_emb = encoder.embed([benchmark_2d_view(takes[n], n) for n in gallery])
    gal_labels = [str(takes[n].label) for n in gallery]
    labels = [str(takes[n].label) for n in test]
    out: dict[str, HeadlineMetrics] = {}
    for cond in chosen:
        emb, logits = encoder.embed_and_logits([condition_view(cond, takes[n], n) for n in test])
        pred = [encoder.labels[int(k)] for k in logits.argmax(axis=1)]
        cls = classification_metrics(labels, pred, encoder.labels)
        ret = retrieval_metrics(emb, labels, gal_emb, gal_labels)
        out[cond.name] = HeadlineMetrics(accuracy=cls.accuracy, macro_f1=cls.macro_f1, gallery_p5=ret.p(5))
    return out


# The figures of the report: HeadlineMetrics field -> report name.
METRICS: dict[str, str] = {"accuracy": "accuracy", "macro_f1": "macro_f1", "gallery_p5": "gallery_p@5"}


def summarise(per_run: Sequence[Mapping[str, Any]], chosen: Sequence[Condition]) -> list[dict[str, Any]]:
    """One row per (model, condition): mean ± std over seeds of each metric and of its change."""
    rows = []
    models = list(dict.fromkeys(r["model"] for r in per_run))
    for model in models:
        runs = [r for r in per_run if r["model"] == model]
        for cond in chosen:
            row: dict[str, Any] = {"model": model, "condition": cond.name, "group": cond.group,
                                   "in_target": cond.in_target, "seeds": [r["seed"] for r in runs]}
            for attr, name in METRICS.items():
                values = [getattr(r["results"][cond.name], attr) for r in runs]
                reference = [getattr(r["results"]["benchmark view"], attr) for r in runs]
                row[name] = MeanStd.of(values).to_dict()
                row[f"delta_{name}"] = MeanStd.of(
                    None if v is None or ref is None else v - ref for v, ref in zip(values, reference)).to_dict()
            rows.append(row)
    return rows


def runs_of_report(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The per-seed results an earlier report's rows hold (``summarise`` inverted), so a suite whose
    checkpoints are gone can be joined with newly measured seeds. Raises ValueError on a report whose
    rows do not carry one value per seed."""
    runs: dict[tuple[str, int], dict[str, Any]] = {}
    try:
        for row in report.get("rows", []):
            values = {attr: row[name]["values"] for attr, name in METRICS.items()}
            if any(len(v) != len(row["seeds"]) for v in values.values()):
                raise ValueError(f"{row['model']} / {row['condition']}: not one value per seed; cannot merge")
            for i, seed in enumerate(row["seeds"]):
                run = runs.setdefault((row["model"], seed), {"model": row["model"], "seed": seed, "results": {}})
                run["results"][row["condition"]] = HeadlineMetrics(**{attr: v[i] for attr, v in values.items()})
    except (KeyError, TypeError) as err:
        raise ValueError(f"not a robustness report (missing {err}); cannot merge") from None
    return list(runs.values())


def merge_runs(measured: Sequence[Mapping[str, Any]], earlier: Sequence[Mapping[str, Any]],
               chosen: Sequence[Condition]) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """``measured`` plus the ``earlier`` runs of seeds not measured now, model by model and seed by seed,
    and those earlier runs that joined; an earlier run must hold every condition of ``chosen`` (the same
    suite)."""
    names = {c.name for c in chosen}
    have = {(r["model"], r["seed"]) for r in measured}
    kept = [r for r in earlier if (r["model"], r["seed"]) not in have]
    for run in kept:
        if names - set(run["results"]):
            raise ValueError(f"{run['model']} seed {run['seed']}: the earlier report lacks conditions "
                             f"{sorted(names - set(run['results']))}; cannot merge")
    order = list(dict.fromkeys([r["model"] for r in measured] + [r["model"] for r in kept]))
    return sorted([*measured, *kept], key=lambda r: (order.index(r["model"]), r["seed"])), kept


def target_check(rows: Sequence[Mapping[str, Any]], model: str) -> list[dict[str, Any]]:
    """The issue's target for ``model``: every in-target condition within ``TARGET_GAP`` (mean change)."""
    out = []
    for row in rows:
        if row["model"] != model or not row["in_target"] or row["condition"] == "benchmark view":
            continue
        for metric in ("accuracy", "gallery_p@5"):
            delta = row[f"delta_{metric}"]["mean"]
            out.append({"condition": row["condition"], "metric": metric, "delta": delta,
                        "met": delta >= -TARGET_GAP})
    return out


def render_markdown(report: Mapping[str, Any]) -> str:
    """``robustness.md``: per model, a table of conditions; then the target check."""
    from benchmarks.tables import markdown_table

    meta = report["meta"]
    parts = ["# Robustness to cameras and captures", "",
             "After the paper's Table 3, on the `random` split's test takes, `2d`. Each condition re-renders "
             "the test takes from their 3D capture; the gallery (train + val) stays in the benchmark view. "
             "Figures: mean ± std over the seeds listed (one checkpoint per seed, from the encoder bench's "
             "runs file); Δ is the change from the benchmark view, seed by seed. Conditions marked † are "
             f"covered by the target (Δ within -{TARGET_GAP} on accuracy and gallery P@5).",
             "", f"Inference windows: {_windows_text(meta.get('inference_window_stride'))}; arithmetic: "
             f"{meta.get('precision', 'float32')}. A `{STATISTICS_ROW}` "
             "section is the same checkpoints with the hand-made motion statistics appended, as "
             "`posestyle train` writes them by default; the plain section is the model's embedding alone.", ""]
    for model in dict.fromkeys(r["model"] for r in report["rows"]):
        sel = [r for r in report["rows"] if r["model"] == model]
        body = [[r["condition"] + (" †" if r["in_target"] and r["condition"] != "benchmark view" else ""),
                 *(_ms(r[m]) for m in METRICS.values()), _ms(r["delta_accuracy"], signed=True),
                 _ms(r["delta_gallery_p@5"], signed=True)] for r in sel]
        parts += [f"## {model} ({len(sel[0]['seeds'])} seeds)", "",
                  markdown_table(["condition", "accuracy", "macro-F1", "gallery P@5", "Δ accuracy",
                                  "Δ P@5"], body), ""]
    for model, checks in (report.get("targets") or {}).items():
        if not checks:
            continue
        missed = [c for c in checks if not c["met"]]
        worst = min(checks, key=lambda c: c["delta"])
        parts += [f"## Target ({model})", "",
                  f"{len(checks) - len(missed)} of {len(checks)} checks met; worst: {worst['condition']} "
                  f"{worst['metric']} Δ {worst['delta']:+.3f}.", ""]
        if missed:
            parts += [markdown_table(["condition", "metric", "Δ"],
                                     [[c["condition"], c["metric"], f"{c['delta']:+.3f}"] for c in missed]), ""]
    costs = report.get("costs") or {}
    if costs:
        parts += ["## Cost with these windows and this arithmetic", "",
                  "BENCHMARK.md protocol (CPU, 2 threads, batch 64, 128 test takes in the benchmark view), "
                  "measured on each model's first checkpoint.", "",
                  markdown_table(["model", "embeddings/s (end to end)", "embeddings/s (model only)",
                                  "single-query latency ms"],
                                 [[m, f"{c['embeddings_per_second']:.0f}", f"{c['model_embeddings_per_second']:.0f}",
                                   f"{c['single_query_latency_ms']:.1f}"] for m, c in costs.items()]), ""]
    parts += ["## How this was run", "", f"- Command: `{meta['command']}`",
              f"- Checkpoints: {meta['checkpoints']} from `{meta['runs_file']}`; wall time {meta['wall_minutes']} min; "
              f"load average at start/end {meta['load_start']} / {meta['load_end']}."]
    if meta.get("merged_seeds"):
        parts += [f"- Merged from `{meta['merged_from']}` (the same suite, its checkpoints no longer on disk): "
                  + "; ".join(f"{m} seeds {', '.join(map(str, seeds))}" for m, seeds in meta["merged_seeds"].items())
                  + ", taken from its per-seed figures; the cost is this run's where it measured one."]
    parts += [""]
    return "\n".join(parts)


def _windows_text(stride: int | None) -> str:
    if stride is None:
        return "each checkpoint's own setting"
    return f"every checkpoint embeds through windows {stride} frames apart (`--inference-window-stride {stride}`)"


def _ms(cell: Mapping[str, float], signed: bool = False) -> str:
    fmt = "+.3f" if signed else ".3f"
    return f"{cell['mean']:{fmt}} ± {cell['std']:.3f}"


def run_robustness_bench(runs_file: str | Path, data: str | Path, splits_dir: str | Path,
                         out: str | Path | None = None, models: Sequence[str] | None = None,
                         progress: bool = True, command: str = "posestyle bench robustness",
                         inference_window_stride: int | None = None, stem: str = "robustness",
                         precision: str = "float32", merge_report: str | Path | None = None) -> dict[str, Any]:
    """Evaluate every kept ``2d``/``random`` checkpoint of ``runs_file`` under every condition; write
    ``<stem>.md/.json`` into ``out``. ``precision``: the encoders' arithmetic (``StyleEncoder``), for
    the whole suite and the cost. ``merge_report``: an earlier report of the same suite (its checkpoints
    gone); the seeds it holds that are not measured now join this report's rows."""
    import os
    from dataclasses import replace

    from tqdm import tqdm

    from encoder.data.atomic import atomic_write_bytes
    from encoder.data.dataset import DatasetCache
    from encoder.evaluation.cost import measure_cost
    from encoder.inference import StyleEncoder
    from encoder.training.splits import resolve_split

    start, load_start = time.perf_counter(), [round(x, 2) for x in os.getloadavg()]
    records = list(load_runs(Path(runs_file)).values())     # the latest run of each key
    kept = [{**r, "checkpoint": str(kept_checkpoint(r, runs_file))} for r in records
            if r.get("recipe") == RECIPE_VERSION
            and r.get("checkpoint") and kept_checkpoint(r, runs_file).is_file() and r.get("holdout") is None
            and r["split"] == "random" and r["view"] == "2d" and r.get("ablation") is None
            and (models is None or r["model"] in models)]
    if not kept:
        raise ValueError(f"{runs_file}: no kept 2d/random checkpoint of recipe {RECIPE_VERSION}; "
                         "run `posestyle bench encoders` first")
    cache = DatasetCache.open(data)
    takes = {n: cache.load(n) for n in cache.names}
    parts = resolve_split(str(Path(splits_dir) / "random"), cache.names, [takes[n].label for n in cache.names])
    chosen = conditions()
    per_run, costs = [], {}
    cost_takes = [benchmark_2d_view(takes[n], n) for n in parts["test"][:COST_SEQUENCES]]
    for rec in tqdm(kept, desc="robustness", unit="checkpoint", disable=not progress, dynamic_ncols=True):
        encoder = StyleEncoder.load(rec["checkpoint"], precision=precision)
        if inference_window_stride is not None:
            encoder.preprocess_config = replace(encoder.preprocess_config, window_stride=inference_window_stride)
        for label, variant in served_variants(rec["model"], encoder):
            per_run.append({"model": label, "seed": rec["seed"], "results": evaluate_encoder(
                variant, takes, parts["test"], parts["train"] + parts["val"], chosen)})
            if label not in costs:
                costs[label] = measure_cost(variant, cost_takes).to_dict()
    merged: dict[str, list[int]] = {}
    if merge_report is not None:
        earlier = json.loads(Path(merge_report).read_text(encoding="utf-8"))
        earlier_meta = earlier.get("meta") or {}
        if (earlier_meta.get("precision", "float32") != precision
                or earlier_meta.get("inference_window_stride") != inference_window_stride):
            raise ValueError(f"{merge_report}: measured with another precision or windows; cannot merge")
        earlier_runs = [r for r in runs_of_report(earlier)
                        if models is None or r["model"].split(" + ")[0] in models]
        per_run, joined = merge_runs(per_run, earlier_runs, chosen)
        for r in joined:
            merged.setdefault(r["model"], []).append(r["seed"])
        for label, cost in (earlier.get("costs") or {}).items():
            costs.setdefault(label, cost)
    rows = summarise(per_run, chosen)
    meta = {"command": command, "runs_file": str(runs_file), "checkpoints": len(kept),
            "merged_from": None if merge_report is None else str(merge_report), "merged_seeds": merged,
            "inference_window_stride": inference_window_stride, "precision": precision,
            "wall_minutes": round((time.perf_counter() - start) / 60, 1), "load_start": load_start,
            "load_end": [round(x, 2) for x in os.getloadavg()]}
    targets = {model: target_check(rows, model) for model in dict.fromkeys(r["model"] for r in rows)}
    report = {"rows": rows, "targets": targets, "costs": costs, "per_run": per_run, "meta": meta}
    if out is not None:
        out = Path(out)
        atomic_write_bytes(out / f"{stem}.json", (json.dumps(
            {k: report[k] for k in ("rows", "targets", "costs", "meta")}, indent=1) + "\n").encode())
        atomic_write_bytes(out / f"{stem}.md", render_markdown(report).encode())
    return report
