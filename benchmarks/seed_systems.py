"""The seed systems (GaitHeat, GaitMM, HSTL) and the distilled students against PoseStyle-Net and the default.

Issue 14 asks the encoder report to say plainly where any of them beats PoseStyle-Net (camera
robustness, unseen styles, speed) and by how much, with seed spread. ``compare_seed_systems``
reads it off the bench's aggregated rows, its open-set rows and the robustness reports in the
same folder (``load_robustness_rows``), suite by suite:

- a difference is "better" or "worse" only when it is larger than the larger of the two seed
  standard deviations; otherwise it is "within seed spread" (with one seed on a side, that side's
  spread is unknown and counts as 0: the seeds column says so);
- cost is measured once per model, and on this shared machine repeated measurements differ by up
  to ``COST_NOISE`` (the cost table's note), so a smaller ratio is "within measurement noise".
"""
from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from encoder.evaluation.results import MeanStd

SEED_SYSTEMS: tuple[str, ...] = ("gaitheat", "gaitmm", "hstl")
REFERENCE_MODEL = "posestyle_net"
COST_NOISE = 0.30
# (split, view, metric) of the closed-set suites compared
CLOSED_SET_SUITES: tuple[tuple[str, str, str], ...] = (
    ("random", "2d", "accuracy"), ("random", "2d", "silhouette"), ("random", "2d", "gallery_p@5"),
    ("cross-content", "2d", "accuracy"), ("cross-content", "2d", "gallery_p@5"),
    ("random", "3d", "accuracy"), ("cross-content", "3d", "accuracy"),
)


@dataclass(frozen=True)
class Versus:
    """One model's figure against one reference model's figure in the same suite."""

    reference: str
    reference_value: str            # "mean ± std (n)" as measured for the reference
    difference: float | None        # signed so that > 0 means the compared model is better
    verdict: str                    # better / worse / within seed spread / within measurement noise / not measured
    amount: str = ""                # the difference ("+0.050") or, for cost, the speed ratio ("x1.94")

    @property
    def text(self) -> str:
        return f"{self.verdict} ({self.amount})" if self.amount else self.verdict


@dataclass(frozen=True)
class SuiteComparison:
    """A seed system's (or student's) figure in one suite, against each reference."""

    model: str
    suite: str
    value: str
    against: tuple[Versus, ...]
    seeds: int | None = None        # the model's seeds in this suite (None: cost, measured once)


def _cell(stat: MeanStd) -> str:
    if stat.mean is None:
        return "n/a"
    spread = f" ± {stat.std:.3f}" if stat.n > 1 else ""
    return f"{stat.mean:.3f}{spread} ({stat.n} seed{'s' if stat.n != 1 else ''})"


def _versus_seeds(value: MeanStd, reference: MeanStd, name: str) -> Versus:
    """Higher is better for every seeded figure compared (accuracy, P@5, silhouette, accuracy change)."""
    if value.mean is None or reference.mean is None:
        return Versus(name, _cell(reference), None, "not measured")
    diff = value.mean - reference.mean
    noise = max(value.std or 0.0, reference.std or 0.0)
    verdict = "within seed spread" if abs(diff) <= noise else ("better" if diff > 0 else "worse")
    return Versus(name, _cell(reference), diff, verdict, f"{diff:+.3f}")


def _versus_cost(value: float | None, reference: float | None, name: str, unit: str,
                 higher_is_better: bool) -> Versus:
    if value is None or reference is None:
        return Versus(name, "n/a", None, "not measured")
    ratio = value / reference if higher_is_better else reference / value
    verdict = "within measurement noise" if abs(ratio - 1) <= COST_NOISE else ("better" if ratio > 1 else "worse")
    return Versus(name, f"{reference:,.1f} {unit}", value - reference if higher_is_better else reference - value,
                  verdict, f"x{ratio:.2f}")


def _stat(row: Mapping[str, Any] | None, metric: str) -> MeanStd:
    cell = None if row is None else row.get(metric)
    return MeanStd.from_dict(cell) if isinstance(cell, Mapping) else MeanStd(None, None)


def _open_stat(open_rows: Sequence[Mapping[str, Any]], model: str, held: tuple[str, ...]) -> MeanStd:
    """``model``'s open-set leave-one-out P@5 with ``held`` styles held out (embedding alone)."""
    row = next((r for r in open_rows if r["model"] == model and tuple(r["held_out_styles"]) == held), None)
    return _stat(row, "loo_p@5")


def load_robustness_rows(folder: str | Path) -> dict[str, list[Mapping[str, Any]]]:
    """Each model's rows of ``posestyle bench robustness`` reports in ``folder`` (default precision and
    windows only): ``robustness.json`` first, then the others by name; the first report of a model wins."""
    folder = Path(folder)
    files = [folder / "robustness.json", *sorted(p for p in folder.glob("robustness-*.json"))]
    out: dict[str, list[Mapping[str, Any]]] = {}
    for path in files:
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        meta = report.get("meta") or {}
        if meta.get("precision", "float32") != "float32" or meta.get("inference_window_stride") is not None:
            continue
        found: dict[str, list[Mapping[str, Any]]] = {}
        for row in report.get("rows", []):
            found.setdefault(row["model"], []).append(row)
        for model, rows in found.items():
            out.setdefault(model, rows)
    return out


def _worst_camera_change(rows: Sequence[Mapping[str, Any]]) -> tuple[MeanStd, str]:
    """The in-target condition with the largest mean accuracy drop, and its name."""
    scored = [r for r in rows if r.get("in_target") and r["condition"] != "benchmark view"]
    if not scored:
        return MeanStd(None, None), ""
    worst = min(scored, key=lambda r: r["delta_accuracy"]["mean"])
    return MeanStd.from_dict(worst["delta_accuracy"]), worst["condition"]


def compare_seed_systems(rows: Sequence[Mapping[str, Any]], open_rows: Sequence[Mapping[str, Any]],
                         robustness: Mapping[str, Sequence[Mapping[str, Any]]],
                         references: Sequence[str]) -> list[SuiteComparison]:
    """Every suite's figure of each seed system and student present in ``rows``, against ``references``."""
    def row_of(model: str, split: str = "random", view: str = "2d") -> Mapping[str, Any] | None:
        return next((r for r in rows if r["model"] == model and r["split"] == split and r["view"] == view
                     and "ablation" not in r), None)

    students = list(dict.fromkeys(r["model"] for r in rows if "architecture" in r and "ablation" not in r))
    models = [m for m in SEED_SYSTEMS if any(r["model"] == m for r in rows)] + students
    holdouts = list(dict.fromkeys(tuple(r["held_out_styles"]) for r in open_rows))
    out: list[SuiteComparison] = []
    for model in models:
        for split, view, metric in CLOSED_SET_SUITES:
            value = _stat(row_of(model, split, view), metric)
            if value.mean is None:
                continue
            out.append(SuiteComparison(model, f"{view}/{split} {metric}", _cell(value), tuple(
                _versus_seeds(value, _stat(row_of(ref, split, view), metric), ref) for ref in references), value.n))
        for held in holdouts:
            value = _open_stat(open_rows, model, held)
            if value.mean is not None:
                out.append(SuiteComparison(
                    model, f"unseen styles ({', '.join(held)}) leave-one-out P@5", _cell(value),
                    tuple(_versus_seeds(value, _open_stat(open_rows, ref, held), ref) for ref in references), value.n))
        if model in robustness:
            worst, condition = _worst_camera_change(robustness[model])
            versus = []
            for ref in references:
                ref_worst, ref_condition = _worst_camera_change(robustness.get(ref, ()))
                v = _versus_seeds(worst, ref_worst, ref)
                versus.append(Versus(ref, v.reference_value + (f", {ref_condition}" if ref_condition else ""),
                                     v.difference, v.verdict, v.amount))
            out.append(SuiteComparison(model, "cameras: worst accuracy change over the robustness conditions",
                                       f"{_cell(worst)}, {condition}", tuple(versus), worst.n))
        cost = (row_of(model) or {}).get("cost") or {}
        if cost:
            ref_costs = [(ref, (row_of(ref) or {}).get("cost") or {}) for ref in references]
            out.append(SuiteComparison(model, "embeddings/s end to end", f"{cost['embeddings_per_second']:,.1f}",
                                       tuple(_versus_cost(cost["embeddings_per_second"],
                                                          c.get("embeddings_per_second"), ref, "/s", True)
                                             for ref, c in ref_costs)))
            out.append(SuiteComparison(model, "single-query latency ms", f"{cost['single_query_latency_ms']:.1f}",
                                       tuple(_versus_cost(cost["single_query_latency_ms"],
                                                          c.get("single_query_latency_ms"), ref, "ms", False)
                                             for ref, c in ref_costs)))
    return out


def scaled_down_notes(models: Sequence[str]) -> dict[str, str]:
    """Per registered model, the "Scaled down ..." paragraph of its module's docstring (what was cut from the
    paper to train on 2 CPU cores, and why), joined into one line; models without one are left out."""
    from encoder.models import MODEL_REGISTRY

    notes = {}
    for name in models:
        spec = MODEL_REGISTRY.get(name)
        doc = None if spec is None else importlib.import_module(spec.model_cls.__module__).__doc__
        for paragraph in (doc or "").split("\n\n"):
            if paragraph.startswith("Scaled down"):
                notes[name] = " ".join(paragraph.split())
    return notes


def comparison_lines(comparisons: Sequence[SuiteComparison], titles: Mapping[str, str]) -> list[str]:
    """The markdown table, then one sentence per model naming the suites where it is better than each reference."""
    if not comparisons:
        return []
    references = [v.reference for v in comparisons[0].against]
    header = ["model", "suite", "value", *[h for ref in references
                                          for h in (titles.get(ref, ref), f"vs {titles.get(ref, ref)}")]]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for c in comparisons:
        cells = [cell for v in c.against for cell in (v.reference_value, v.text)]
        lines.append("| " + " | ".join([c.model, c.suite, c.value, *cells]) + " |")
    lines.append("")
    for model in dict.fromkeys(c.model for c in comparisons):
        mine = [c for c in comparisons if c.model == model]
        for i, ref in enumerate(references):
            wins = [f"{c.suite} ({c.against[i].amount}" + (f", {c.seeds} seed{'s' if c.seeds != 1 else ''})"
                                                           if c.seeds else ")")
                    for c in mine if c.against[i].verdict == "better"]
            lines.append(f"- **{model}** beats {titles.get(ref, ref)} on "
                         + ("; ".join(wins) if wins else "no suite measured so far") + ".")
    return lines
