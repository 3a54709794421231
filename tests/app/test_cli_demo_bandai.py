"""``posestyle demo --source bandai`` end to end on a few real Bandai-Namco takes: the app's index holds
every take in its benchmark ``2d`` view (what BENCHMARK.md fixes), labelled by the preset."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from app.cli import cli
from tests.conftest import require_shared_data

pytestmark = [pytest.mark.realdata, pytest.mark.slow]
TAKES_PER_PART = {"train": 12, "val": 3, "test": 3}


def _mini_bandai(real: Path, out: Path) -> Path:
    """A small copy of the dataset's layout: a few takes of each part (links), with their split lists."""
    (out / "data").mkdir(parents=True)
    (out / "splits").mkdir()
    for part, count in TAKES_PER_PART.items():
        names = (real / "splits" / f"random-{part}.txt").read_text().split()[::40][:count]
        (out / "splits" / f"random-{part}.txt").write_text("\n".join(names) + "\n")
        for name in names:
            (out / "data" / f"{name}.bvh").symlink_to(real / "data" / f"{name}.bvh")
    return out


def test_bandai_demo_indexes_the_benchmark_2d_views(tmp_path: Path) -> None:
    from app.services.analysis import AppService
    from encoder.data.camera import benchmark_2d_view
    from encoder.data.dataset import DatasetCache

    bandai = _mini_bandai(require_shared_data("bandai-namco-motion-2"), tmp_path / "bn2")
    root = tmp_path / "index_data"
    result = CliRunner().invoke(cli, ["demo", "--source", "bandai", "--bandai-dir", str(bandai), "--root", str(root),
                                      "--epochs", "1", "--no-app"])
    assert result.exit_code == 0, result.output
    takes = DatasetCache.open(root / "bandai" / "takes")
    with AppService(root / "bandai") as service:
        live = service.open_live()
        indexed = {r.id: r for r in service.indexed_sequences(live)}
        assert sorted(indexed) == sorted(takes.names) and len(indexed) == sum(TAKES_PER_PART.values())
        name = takes.names[0]
        stored = service.load_sequence(name)
    expected = benchmark_2d_view(takes.load(name), name)
    assert stored.dims == 2 and np.allclose(stored.joints, expected.joints, atol=1e-3)
    assert indexed[name].label == takes.load(name).label
    again = CliRunner().invoke(cli, ["demo", "--source", "bandai", "--bandai-dir", str(bandai), "--root", str(root),
                                     "--no-app"])
    assert again.exit_code == 0 and "training skipped" in again.output
