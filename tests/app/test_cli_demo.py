"""``posestyle demo`` on the generated corpus: the shipped demo encoder is used only for the corpus it
was trained on, a changed generator or another corpus size trains one, and the shipped one fits today's
generator."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from app.cli import cli, demo_commands
from encoder.data.demo import demo_corpus_fingerprint

pytestmark = pytest.mark.slow


def test_the_shipped_demo_encoder_fits_todays_demo_corpus() -> None:
    weights, record_path = demo_commands._shipped_paths("posestyle_net")
    record = json.loads(record_path.read_text(encoding="utf-8"))
    assert weights.stat().st_size > 100_000
    assert record["corpus_fingerprint"] == demo_corpus_fingerprint(record["seed"]), \
        "the demo corpus generator changed: retrain the shipped encoder with `make demo-encoder`"


def test_a_shipped_encoder_is_used_only_for_its_own_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo_commands, "SHIPPED_ENCODERS", tmp_path / "assets")
    console = Console(record=True, width=200)
    trained = tmp_path / "trained.safetensors"
    trained.write_bytes(b"weights")
    assert demo_commands.shipped_demo_encoder("posestyle_net", 3000, 0, console) is None   # none shipped
    demo_commands.publish_demo_encoder(trained, "posestyle_net", 3000, 0, console)
    assert demo_commands.shipped_demo_encoder("posestyle_net", 3000, 0, console) == \
        tmp_path / "assets" / "demo-posestyle_net.safetensors"
    assert demo_commands.shipped_demo_encoder("posestyle_net", 600, 0, console) is None
    assert demo_commands.shipped_demo_encoder("posestyle_net", 3000, 1, console) is None
    record_path = tmp_path / "assets" / "demo-posestyle_net.json"
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps({**record, "corpus_fingerprint": "an older generator"}))
    assert demo_commands.shipped_demo_encoder("posestyle_net", 3000, 0, console) is None
    assert "generator changed" in console.export_text()


def test_demo_trains_when_no_shipped_encoder_fits_then_indexes(tmp_path: Path) -> None:
    root = tmp_path / "index_data"
    result = CliRunner().invoke(cli, ["demo", "--n", "90", "--epochs", "1", "--no-app", "--root", str(root)],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "training one for --n 90 --seed 0" in " ".join(result.output.split())
    assert (root / "models" / "demo-posestyle_net-seed0.safetensors").is_file()
    assert sorted(p.name for p in (root / "demo" / "raw").iterdir()) == ["2d"]        # the demo needs no 3d view
    again = CliRunner().invoke(cli, ["demo", "--n", "90", "--no-app", "--root", str(root)], terminal_width=200)
    assert again.exit_code == 0, again.output
    assert "training skipped" in " ".join(again.output.split())
