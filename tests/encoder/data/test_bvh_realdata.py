"""The BVH importer on real Bandai-Namco takes: frame rate, units, body proportions, motion."""
from __future__ import annotations

import numpy as np
import pytest

from encoder.data.readers import read_bvh, read_bvh_full
from encoder.data.skeleton import JOINT_INDEX, NUM_JOINTS

pytestmark = pytest.mark.realdata

TAKES = ["dataset-2_walk_normal_001", "dataset-2_walk_feminine_001", "dataset-2_walk_elderly_002",
         "dataset-2_run_active_001", "dataset-2_walk-turn-left_elderly_001"]


@pytest.fixture(scope="module")
def takes(shared_data_dir):
    folder = shared_data_dir / "bandai-namco-motion-2" / "data"
    return {name: read_bvh(folder / f"{name}.bvh") for name in TAKES}


def bone(seq, a: str, b: str) -> np.ndarray:
    return np.linalg.norm(seq.joints[:, JOINT_INDEX[a]] - seq.joints[:, JOINT_INDEX[b]], axis=-1)


@pytest.mark.parametrize("name", TAKES)
def test_frame_rate_shape_and_units(takes, name):
    seq = takes[name]
    assert seq.fps == 30.0
    assert seq.joints.shape[1:] == (NUM_JOINTS, 3) and seq.num_frames > 30
    assert seq.metadata["units_scale"] == 0.01
    assert seq.metadata["derived_joints"] == ["nose"]
    assert set(seq.metadata["missing_joints"]) == {"left_eye", "right_eye", "left_ear", "right_ear"}


@pytest.mark.parametrize("name", TAKES)
def test_body_is_upright_and_human_sized(takes, name):
    seq = takes[name]
    y = seq.joints[..., 1]
    head, hips = y[:, JOINT_INDEX["nose"]], (y[:, JOINT_INDEX["left_hip"]] + y[:, JOINT_INDEX["right_hip"]]) / 2
    ankles = np.minimum(y[:, JOINT_INDEX["left_ankle"]], y[:, JOINT_INDEX["right_ankle"]])
    assert (head > hips + 0.3).all() and (hips > ankles + 0.5).all()           # Y is up
    # The floor is y = 0 in this data; the BVH head joint sits at the base of the skull,
    # ~0.1-0.25 m below the top of the head, so a 1.45-2.0 m person puts it at 1.2-1.9 m.
    assert 1.2 < np.median(head) < 1.9
    assert -0.05 < np.median(ankles) < 0.25                                     # ankles near the floor


@pytest.mark.parametrize("name", TAKES)
def test_leg_bones_are_plausible_rigid_and_symmetric(takes, name):
    seq = takes[name]
    for upper, lower in (("hip", "knee"), ("knee", "ankle")):
        left, right = bone(seq, f"left_{upper}", f"left_{lower}"), bone(seq, f"right_{upper}", f"right_{lower}")
        for length in (left, right):
            assert 0.3 < length.mean() < 0.6
            assert length.std() < 0.01 * length.mean()                          # FK keeps bones rigid
        assert abs(left.mean() - right.mean()) < 0.05 * left.mean()


@pytest.mark.parametrize("name", [t for t in TAKES if "_walk" in t or "_run" in t])
def test_walker_travels(takes, name):
    seq = takes[name]
    mid_hip = (seq.joints[:, JOINT_INDEX["left_hip"]] + seq.joints[:, JOINT_INDEX["right_hip"]]) / 2
    path = np.linalg.norm(np.diff(mid_hip[:, [0, 2]], axis=0), axis=1).sum()
    assert path > 1.0
    assert np.abs(np.diff(seq.joints, axis=0)).max() < 0.5                      # no teleporting joints


def test_full_skeleton_agrees_with_mapped_joints(shared_data_dir):
    path = shared_data_dir / "bandai-namco-motion-2" / "data" / f"{TAKES[0]}.bvh"
    names, parents, positions, fps = read_bvh_full(path)
    seq = read_bvh(path)
    assert names[0] == "joint_Root" and parents[names.index("Hips")] == names.index("joint_Root")
    for canon, bvh_name in seq.metadata["joint_sources"].items():
        np.testing.assert_allclose(seq.joints[:, JOINT_INDEX[canon]], positions[:, names.index(bvh_name)], atol=1e-5)
    toes = positions[:, names.index("Toes_L")]
    feet = positions[:, names.index("Foot_L")]
    assert 0.08 < np.linalg.norm(toes - feet, axis=1).mean() < 0.2             # foot length
