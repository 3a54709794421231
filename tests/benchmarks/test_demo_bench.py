"""``posestyle bench demo``'s report and its guard: it never deletes a folder it did not make."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.demo_bench import DemoBenchReport, DemoQuality, PhaseTimes, run_demo_bench, write_demo_report


def _report() -> DemoBenchReport:
    cold = PhaseTimes(demo_steps={"demo-corpus": 10.0, "ingest": 8.0, "train": 110.0, "index": 40.0},
                      demo_total_s=170.0, app_start_s=4.0, pages_s={"search": 3.0, "explore": 2.0, "evaluate": 1.0})
    warm = PhaseTimes(demo_steps={"train": 0.1, "index": 2.0, "reindex": 0.4}, demo_total_s=5.0, app_start_s=3.0,
                      pages_s={"search": 2.0, "explore": 1.0, "evaluate": 1.0})
    quality = DemoQuality(held_out_walks=450, accuracy=0.95, macro_f1=0.95, loo_p_at_5=0.92, gallery_p_at_5=0.93,
                          purity=0.9, closest_confusions=[("strong_control", "rapid_transition", 7)],
                          readme_query="demo-strong_control-00004",
                          readme_query_top5=["strong_control"] * 4 + ["rapid_transition"],
                          training="16 epochs (best 16) of 2-window crops on 2100 walks; 110 s")
    return DemoBenchReport(command="posestyle bench demo", machine={"cpu": "x", "cores": 2, "load_before": [1.0],
                                                                    "load_after": [1.0]},
                           n_walks=3000, cold=cold, warm=warm, quality=quality, encoder="demo.safetensors")


def test_report_states_the_first_screen_times_and_the_query(tmp_path: Path) -> None:
    write_demo_report(_report(), tmp_path)
    text = (tmp_path / "demo.md").read_text()
    assert "| **first screen (command to Search drawn)** | **177.0** | **10.0** |" in text
    # every step of either pass has a row, cold's first, even one only the warm pass ran
    assert [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| demo step:")] == [
        "demo step: demo-corpus", "demo step: ingest", "demo step: train", "demo step: index", "demo step: reindex"]
    assert "trained by the cold run: 16 epochs (best 16)" in text
    assert "4 of 5 its own style" in text
    assert "strong_control -> rapid_transition (7)" in text
    document = json.loads((tmp_path / "demo.json").read_text())
    assert document["cold_first_screen_s"] == 177.0 and document["quality"]["loo_p_at_5"] == 0.92


def test_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("keep")
    with pytest.raises(ValueError, match="not a demo-bench folder"):
        run_demo_bench(tmp_path / "mine", tmp_path / "out", 60, "posestyle bench demo")
    assert (tmp_path / "mine" / "precious.txt").read_text() == "keep"
