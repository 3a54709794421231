"""``benchmarks.seed_systems``: where a seed system or student beats PoseStyle-Net and the default, with spread."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.encoder_bench import render_markdown
from benchmarks.seed_systems import (
    SEED_SYSTEMS,
    compare_seed_systems,
    comparison_lines,
    load_robustness_rows,
    scaled_down_notes,
)


def _cell(*values: float) -> dict[str, Any]:
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
    return {"mean": mean, "std": std, "n": len(values), "values": list(values)}


def _row(model: str, accuracy: tuple[float, ...], split: str = "random", eps: float | None = None,
         **extra: Any) -> dict[str, Any]:
    row = {"model": model, "split": split, "view": "2d", "seeds": list(range(len(accuracy))),
           "accuracy": _cell(*accuracy), **extra}
    if eps is not None:
        row["cost"] = {"embeddings_per_second": eps, "single_query_latency_ms": 1000.0 / eps}
    return row


def _robustness_row(model: str, condition: str, delta: tuple[float, ...], in_target: bool = True) -> dict[str, Any]:
    return {"model": model, "condition": condition, "in_target": in_target, "delta_accuracy": _cell(*delta)}


ROWS = [
    _row("posestyle_net", (0.88, 0.90, 0.92), eps=1000.0),          # std 0.02
    _row("stgcn", (0.94, 0.95, 0.96), eps=1200.0),                  # std 0.01
    _row("gaitmm", (0.925, 0.93, 0.935), eps=200.0),                # +0.03 / -0.02: better / worse
    _row("hstl", (0.88, 0.93, 0.91)),                               # +0.007, std 0.025: within spread
    _row("gaitmm", (0.91,), split="cross-content"),                 # no reference row: not in the table
    _row("st_mlp distilled from stgcn", (0.90, 0.91, 0.92), eps=1100.0, architecture="st_mlp"),
    _row("posestyle_net", (0.90, 0.90, 0.90), eps=50.0, ablation="w/o stage gating"),
]
OPEN = [{"model": m, "held_out_styles": ["a", "b", "c"], "loo_p@5": _cell(*v)}
        for m, v in (("posestyle_net", (0.50, 0.55)), ("stgcn", (0.60, 0.62)), ("gaitmm", (0.80,)))]
ROBUSTNESS = {
    "posestyle_net": [_robustness_row("posestyle_net", "benchmark view", (0.0,)),
                      _robustness_row("posestyle_net", "pitch 30°", (-0.01, -0.02)),
                      _robustness_row("posestyle_net", "noise 5%", (-0.5, -0.5), in_target=False)],
    "gaitmm": [_robustness_row("gaitmm", "pitch 30°", (-0.08, -0.09))],
}


def _by_suite(comparisons: list[Any], model: str) -> dict[str, Any]:
    return {c.suite: c for c in comparisons if c.model == model}


def test_verdicts_count_a_difference_only_beyond_the_larger_seed_spread() -> None:
    out = compare_seed_systems(ROWS, OPEN, ROBUSTNESS, ("posestyle_net", "stgcn"))
    gaitmm, hstl = _by_suite(out, "gaitmm"), _by_suite(out, "hstl")
    psn, default = gaitmm["2d/random accuracy"].against
    assert (psn.verdict, round(psn.difference, 3)) == ("better", 0.03)
    assert (default.verdict, round(default.difference, 3)) == ("worse", -0.02)
    assert [v.verdict for v in hstl["2d/random accuracy"].against] == ["within seed spread", "worse"]
    assert "2d/cross-content accuracy" in gaitmm            # measured for the model, the references not
    assert all(v.verdict == "not measured" for v in gaitmm["2d/cross-content accuracy"].against)
    unseen = gaitmm["unseen styles (a, b, c) leave-one-out P@5"]
    assert [v.verdict for v in unseen.against] == ["better", "better"] and unseen.seeds == 1
    # cameras: the worst in-target condition (the out-of-target noise row is ignored), higher is better
    cameras = gaitmm["cameras: worst accuracy change over the robustness conditions"]
    assert cameras.value.endswith("pitch 30°") and cameras.against[0].verdict == "worse"
    assert cameras.against[1].verdict == "not measured"      # no robustness rows for stgcn
    # cost: a ratio, with the 30 % noise band; latency is better when lower
    speed = gaitmm["embeddings/s end to end"].against
    assert (speed[0].verdict, speed[0].amount) == ("worse", "x0.20")
    student = _by_suite(out, "st_mlp distilled from stgcn")
    assert [v.verdict for v in student["embeddings/s end to end"].against] == ["within measurement noise"] * 2
    assert "ablation" not in json.dumps([c.model for c in out]) and "posestyle_net" not in {c.model for c in out}


def test_report_section_names_each_win_with_its_size_and_seeds() -> None:
    out = compare_seed_systems(ROWS, OPEN, ROBUSTNESS, ("posestyle_net", "stgcn"))
    lines = comparison_lines(out, {"posestyle_net": "PoseStyle-Net", "stgcn": "ST-GCN"})
    assert lines[0].startswith("| model | suite | value | PoseStyle-Net | vs PoseStyle-Net | ST-GCN | vs ST-GCN |")
    assert ("- **gaitmm** beats PoseStyle-Net on 2d/random accuracy (+0.030, 3 seeds); unseen styles (a, b, c) "
            "leave-one-out P@5 (+0.275, 1 seed).") in lines
    assert "- **gaitmm** beats ST-GCN on unseen styles (a, b, c) leave-one-out P@5 (+0.190, 1 seed)." in lines
    assert "- **hstl** beats ST-GCN on no suite measured so far." in lines
    markdown = render_markdown({"rows": [], "open_set": [], "seed_systems": out,
                                "meta": {"ablation_split": "random", "ablation_view": "2d"}})
    assert "## The seed systems and the distilled students against PoseStyle-Net and the default" in markdown
    assert "- **gaitheat**: Scaled down for 2 CPU cores" in markdown
    assert comparison_lines([], {}) == []


def test_robustness_rows_come_from_the_default_precision_reports_first_file_first(tmp_path: Path) -> None:
    def write(name: str, models: list[str], **meta: Any) -> None:
        rows = [_robustness_row(m, "pitch 30°", (-0.01,)) | {"source": name} for m in models]
        (tmp_path / name).write_text(json.dumps({"rows": rows, "meta": meta}), encoding="utf-8")

    write("robustness.json", ["posestyle_net"], precision="float32")
    write("robustness-a.json", ["posestyle_net", "gaitmm"], precision="float32")
    write("robustness-b.json", ["gaitheat"], precision="bfloat16")
    write("robustness-c.json", ["hstl"], inference_window_stride=32)
    (tmp_path / "robustness-d.json").write_text("not json", encoding="utf-8")
    loaded = load_robustness_rows(tmp_path)
    assert sorted(loaded) == ["gaitmm", "posestyle_net"]
    assert loaded["posestyle_net"][0]["source"] == "robustness.json"
    assert load_robustness_rows(tmp_path / "missing") == {}


def test_each_seed_system_says_what_it_scaled_down_from_its_paper() -> None:
    notes = scaled_down_notes([*SEED_SYSTEMS, "stgcn", "no_such_model"])
    assert sorted(notes) == sorted(SEED_SYSTEMS)
    assert all(note.startswith("Scaled down for 2 CPU cores") and "32x22" in note and "\n" not in note
               for note in notes.values())
