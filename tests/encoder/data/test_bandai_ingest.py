"""Ingest of the real Bandai-Namco-Research-Motiondataset-2 takes with the ``bandai-namco`` preset."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from encoder.data.dataset import DatasetCache, ingest
from encoder.data.labels import preset_labels
from encoder.data.skeleton import JOINT_INDEX

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

STYLES = ["active", "elderly", "exhausted", "feminine", "masculine", "normal", "youthful"]
CONTENTS = {"walk", "walk-turn-left", "walk-turn-right", "run"}


def test_ingest_all_bandai_takes(shared_data_dir: Path, tmp_path: Path) -> None:
    root = shared_data_dir / "bandai-namco-motion-2"
    data = root / "data"
    if not data.is_dir():
        pytest.skip(f"real data not available: {data}")
    report = ingest([data], tmp_path / "bandai", preset_labels("bandai-namco", [data]), workers=2, progress=False)
    print(f"\nBandai-Namco ingest of {report.read} takes with workers=2: {report.elapsed_s:.1f} s")

    assert report.errors == [] and report.failed == 0
    assert report.skipped == 962                      # the per-take annotation .json sidecars
    cache = DatasetCache.open(tmp_path / "bandai")
    assert len(cache) == 962
    assert cache.labels() == STYLES
    assert {it.metadata["content"] for it in cache.items} == CONTENTS
    assert {it.metadata["style"] for it in cache.items} == set(STYLES)
    assert {it.fps for it in cache.items} == {30.0}
    assert {(it.dims, it.skeleton) for it in cache.items} == {(3, "coco17")}

    # the benchmark splits name exactly these takes
    for split, size in (("random-train", 677), ("random-val", 95), ("random-test", 190)):
        assert len(cache.split(root / "splits" / f"{split}.txt")) == size

    # forward kinematics in metres, Y up: rigid bones, and the head joint (the nose is derived from
    # it) stands a plausible human height above the ankles
    heights = []
    for seq in cache.iter_sequences(cache.names[::25]):
        j = seq.joints
        thigh = np.linalg.norm(j[:, JOINT_INDEX["left_hip"]] - j[:, JOINT_INDEX["left_knee"]], axis=-1)
        assert 0.3 < thigh.mean() < 0.6 and thigh.std() < 1e-3, (seq.name, thigh.mean(), thigh.std())
        ankles = j[:, [JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"]], 1].min(axis=1)
        heights.append(float(np.median(j[:, JOINT_INDEX["nose"], 1] - ankles)))
    assert 1.0 < min(heights) and max(heights) < 1.6, heights
