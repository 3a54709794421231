"""The robustness suite: every condition renders a valid 2D query, deterministically; the summary and target."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.encoder_bench import STATISTICS_ROW
from benchmarks.robustness import (
    TARGET_GAP,
    condition_view,
    conditions,
    merge_runs,
    render_markdown,
    runs_of_report,
    served_variants,
    summarise,
    target_check,
)
from encoder.evaluation.results import HeadlineMetrics


def test_every_condition_gives_a_deterministic_2d_view(make_toy_corpus):
    take = make_toy_corpus(1, dims=3, seed=5, frames=120)[0]
    chosen = conditions()
    names = [c.name for c in chosen]
    assert len(names) == len(set(names)) and names[0] == "benchmark view"
    assert {"pitch 30°", "pitch 45°", "missing 15%", "clip 1 s", "60 fps input", "camera behind"} <= set(names)
    for cond in chosen:
        view = condition_view(cond, take, take.name)
        again = condition_view(cond, take, take.name)
        assert view.dims == 2 and view.num_joints == 17 and view.label == take.label, cond.name
        np.testing.assert_array_equal(view.joints, again.joints)
        assert (view.confidence > 0).any(), cond.name
    by_name = {c.name: c for c in chosen}
    assert condition_view(by_name["clip 1 s"], take, take.name).num_frames == round(take.fps)
    assert condition_view(by_name["60 fps input"], take, take.name).fps == 60.0
    raised = condition_view(by_name["pitch 45°"], take, take.name)
    assert raised.metadata["camera"]["pitch_deg"] == 45.0
    assert not by_name["pitch 45°"].in_target and by_name["pitch 35° front, focal 600"].in_target
    missing = condition_view(by_name["missing 30%"], take, take.name)
    assert (missing.confidence == 0).mean() > (condition_view(chosen[0], take, take.name).confidence == 0).mean()


def test_summary_is_per_seed_change_and_target_uses_the_gap():
    chosen = [c for c in conditions() if c.name in ("benchmark view", "pitch 30°", "pitch 45°")]
    def run(seed, bench, raised):
        res = {"benchmark view": bench, "pitch 30°": raised, "pitch 45°": raised}
        return {"model": "posestyle_net", "seed": seed,
                "results": {k: HeadlineMetrics(accuracy=v, macro_f1=v, gallery_p5=v) for k, v in res.items()}}
    rows = summarise([run(0, 0.98, 0.97), run(1, 0.96, 0.92)], chosen)
    pitch30 = next(r for r in rows if r["condition"] == "pitch 30°")
    assert pitch30["delta_accuracy"]["mean"] == pytest.approx(-0.025)
    assert pitch30["accuracy"]["std"] == pytest.approx(np.std([0.97, 0.92], ddof=1))
    checks = target_check(rows, "posestyle_net")
    assert {c["condition"] for c in checks} == {"pitch 30°"}              # 45° is outside the target
    assert all(not c["met"] for c in checks) and TARGET_GAP == 0.02


def test_report_checks_the_target_per_model_and_states_the_windows_and_cost():
    chosen = [c for c in conditions() if c.name in ("benchmark view", "pitch 30°")]
    def run(model, seed, raised):
        res = {"benchmark view": 0.99, "pitch 30°": raised}
        return {"model": model, "seed": seed,
                "results": {k: HeadlineMetrics(accuracy=v, macro_f1=v, gallery_p5=v) for k, v in res.items()}}
    rows = summarise([run("stgcn", 0, 0.985), run("posestyle_net", 0, 0.95)], chosen)
    targets = {m: target_check(rows, m) for m in ("stgcn", "posestyle_net")}
    assert all(c["met"] for c in targets["stgcn"]) and not any(c["met"] for c in targets["posestyle_net"])
    cost = {"embeddings_per_second": 1234.0, "model_embeddings_per_second": 2345.0, "single_query_latency_ms": 2.5}
    meta = {"command": "posestyle bench robustness --inference-window-stride 32", "runs_file": "runs.jsonl",
            "checkpoints": 2, "inference_window_stride": 32, "wall_minutes": 1.0, "load_start": [0], "load_end": [0]}
    text = render_markdown({"rows": rows, "targets": targets, "costs": {"stgcn": cost}, "meta": meta})
    assert "## Target (stgcn)" in text and "## Target (posestyle_net)" in text
    assert "windows 32 frames apart" in text
    cost_line = next(line for line in text.splitlines() if line.startswith("| stgcn"))
    assert [cell.strip() for cell in cost_line.strip("|").split("|")] == ["stgcn", "1234", "2345", "2.5"]


def test_a_checkpoint_appending_statistics_is_measured_alone_and_as_served(make_toy_corpus):
    from dataclasses import asdict, replace

    from encoder.checkpoint import CheckpointMeta
    from encoder.data.motion_statistics import MotionStatisticsScaler, motion_statistics
    from encoder.data.preprocess import PreprocessConfig
    from encoder.inference import StyleEncoder
    from encoder.models import build_model, config_to_dict

    model = build_model("st_mlp", {"frame_hidden": 16, "window_hidden": 16, "embedding_dim": 8, "num_classes": 3})
    meta = CheckpointMeta(model_name="st_mlp", model_config=config_to_dict(model.config),
                          preprocess_config=asdict(PreprocessConfig()), labels=("a", "b", "c"), input_dims=2)
    plain = StyleEncoder(model, meta)
    assert [label for label, _ in served_variants("st_mlp", plain)] == ["st_mlp"]
    seqs = make_toy_corpus(2, dims=2, seed=4)
    scaler = MotionStatisticsScaler.fit(np.stack([motion_statistics(s) for s in make_toy_corpus(3, seed=6)]), 0.25)
    served = StyleEncoder(model, replace(meta, motion_statistics=scaler.to_dict()))
    (alone_label, alone), (served_label, as_served) = served_variants("st_mlp", served)
    assert alone_label == "st_mlp" and served_label == f"st_mlp {STATISTICS_ROW}" and as_served is served
    assert alone.embed(seqs).shape[1] == 8 and as_served.embed(seqs).shape[1] == served.dim > 8


def test_an_earlier_report_merges_seed_by_seed_with_new_measurements():
    chosen = [c for c in conditions() if c.name in ("benchmark view", "pitch 30°")]
    def run(model, seed, bench, raised):
        res = {"benchmark view": bench, "pitch 30°": raised}
        return {"model": model, "seed": seed,
                "results": {k: HeadlineMetrics(accuracy=v, macro_f1=v, gallery_p5=v) for k, v in res.items()}}
    earlier_rows = summarise([run("gaitmm", 3, 0.98, 0.90), run("gaitmm", 4, 0.96, 0.88)], chosen)
    earlier = runs_of_report({"rows": earlier_rows})
    assert sorted((r["model"], r["seed"]) for r in earlier) == [("gaitmm", 3), ("gaitmm", 4)]
    assert earlier[0]["results"]["pitch 30°"].accuracy == pytest.approx(0.90)
    # seed 4 measured again: the new figure wins; seed 3 joins from the report
    merged, joined = merge_runs([run("gaitmm", 0, 0.97, 0.95), run("gaitmm", 4, 0.99, 0.99)], earlier, chosen)
    assert [r["seed"] for r in merged] == [0, 3, 4] and [r["seed"] for r in joined] == [3]
    row = next(r for r in summarise(merged, chosen) if r["condition"] == "pitch 30°")
    assert row["seeds"] == [0, 3, 4] and row["accuracy"]["values"] == pytest.approx([0.95, 0.90, 0.99])
    assert row["delta_accuracy"]["mean"] == pytest.approx(np.mean([-0.02, -0.08, 0.0]))
    with pytest.raises(ValueError, match="lacks conditions"):      # another suite cannot be merged
        merge_runs([], earlier, conditions())
    broken = [{**earlier_rows[0], "accuracy": {**earlier_rows[0]["accuracy"], "values": [0.98]}}]
    with pytest.raises(ValueError, match="one value per seed"):
        runs_of_report({"rows": broken})
