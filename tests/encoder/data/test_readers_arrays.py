"""Array readers (.npy / .npz) and the format dispatch of ``read_pose_file``."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from encoder.data.errors import PoseDataError
from encoder.data.readers import SUPPORTED_SUFFIXES, read_array, read_pose_file
from encoder.data.sequence import PoseSequence
from encoder.data.skeleton import JOINT_INDEX, NUM_JOINTS


def random_joints(frames: int = 6, joints: int = 17, dims: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-2, 2, size=(frames, joints, dims)).astype(np.float32)


def test_npy_2d_coco17_keeps_coordinates(tmp_path):
    joints = random_joints()
    np.save(tmp_path / "clip.npy", joints)
    seq = read_array(tmp_path / "clip.npy")
    np.testing.assert_array_equal(seq.joints, joints)
    assert (seq.confidence == 1).all() and seq.fps == 30.0 and seq.name == "clip"


def test_npy_3d_body25_is_mapped(tmp_path):
    joints = random_joints(joints=25, dims=3)
    np.save(tmp_path / "clip.npy", joints)
    [seq] = read_pose_file(tmp_path / "clip.npy", default_fps=60)
    assert seq.dims == 3 and seq.num_joints == NUM_JOINTS and seq.fps == 60.0
    np.testing.assert_array_equal(seq.joints[:, JOINT_INDEX["left_knee"]], joints[:, 13])   # BODY_25 13 LKnee


def test_npy_integer_array_is_accepted(tmp_path):
    np.save(tmp_path / "ints.npy", np.arange(4 * 17 * 2).reshape(4, 17, 2))
    assert read_array(tmp_path / "ints.npy").joints[3, 16, 1] == 4 * 17 * 2 - 1


def test_npz_with_named_arrays(tmp_path):
    joints = random_joints(joints=33)
    conf = np.random.default_rng(1).uniform(0, 1, size=joints.shape[:2])
    np.savez(tmp_path / "take.npz", joints=joints, confidence=conf, fps=np.float64(50.0),
             label=np.array("feminine"), skeleton=np.array("mediapipe33"))
    seq = read_array(tmp_path / "take.npz")
    assert seq.fps == 50.0 and seq.label == "feminine" and seq.metadata["source_skeleton"] == "mediapipe33"
    np.testing.assert_allclose(seq.confidence[:, JOINT_INDEX["right_hip"]], conf[:, 24], atol=1e-6)


def test_npz_round_trips_pose_sequence_to_arrays(tmp_path):
    conf = np.ones((8, 17), np.float32)
    conf[2, 4] = 0.0
    joints = random_joints(frames=8, dims=3)
    joints[2, 4] = 0.0
    original = PoseSequence(joints=joints, confidence=conf, fps=25.0, name="walk_01", label="elderly",
                            metadata={"take": 3})
    np.savez(tmp_path / "seq.npz", **original.to_arrays())
    seq = read_array(tmp_path / "seq.npz")
    assert seq.content_hash() == original.content_hash()
    assert (seq.name, seq.label, seq.fps, seq.metadata["take"]) == ("walk_01", "elderly", 25.0, 3)


def test_pickled_objects_are_never_loaded(tmp_path):
    marker = tmp_path / "unpickled.txt"

    class Payload:
        def __reduce__(self):
            return (Path.write_text, (marker, "ran"))

    np.save(tmp_path / "evil.npy", np.array([Payload()], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "evil.npz", joints=np.array([Payload()], dtype=object))
    for name in ("evil.npy", "evil.npz"):
        with pytest.raises(PoseDataError, match=name):
            read_array(tmp_path / name)
    assert not marker.exists()


BAD_ARRAYS = {
    "wrong_joint_count.npy": (lambda p: np.save(p, random_joints(joints=20)), "20 joints"),
    "four_channels.npy": (lambda p: np.save(p, random_joints(dims=4)), "2|3"),
    "flat.npy": (lambda p: np.save(p, np.zeros((5, 17))), "2|3"),
    "zero_frames.npy": (lambda p: np.save(p, np.zeros((0, 17, 2))), "zero frames"),
    "nan.npy": (lambda p: np.save(p, np.full((3, 17, 2), np.nan)), "NaN"),
    "text.npy": (lambda p: np.save(p, np.full((3, 17, 2), "a")), "numeric"),
    "garbage.npy": (lambda p: p.write_bytes(b"not numpy at all" * 10), "not a NumPy"),
    "archive.npy": (lambda p: np.savez(open(p, "wb"), joints=random_joints()), "not a single .npy"),
    "array.npz": (lambda p: np.save(open(p, "wb"), random_joints()), "not an .npz"),
    "no_joints.npz": (lambda p: np.savez(p, points=random_joints()), "no 'joints'"),
    "bad_conf_shape.npz": (lambda p: np.savez(p, joints=random_joints(), confidence=np.ones((6, 16))), "shape"),
    "conf_range.npz": (lambda p: np.savez(p, joints=random_joints(), confidence=np.full((6, 17), 2.0)), "[0, 1]"),
    "bad_fps.npz": (lambda p: np.savez(p, joints=random_joints(), fps=np.float64(-1)), "fps"),
    "fps_vector.npz": (lambda p: np.savez(p, joints=random_joints(), fps=np.ones(3)), "single value"),
    "unknown_skeleton.npz": (lambda p: np.savez(p, joints=random_joints(), skeleton=np.array("smpl")), "smpl"),
    "skeleton_mismatch.npz": (lambda p: np.savez(p, joints=random_joints(), skeleton=np.array("body25")), "25"),
    "bad_meta.npz": (lambda p: np.savez(p, joints=random_joints(), meta_json=np.array("{oops")), "meta_json"),
    "label_number.npz": (lambda p: np.savez(p, joints=random_joints(), label=np.int64(3)), "label"),
}


@pytest.mark.parametrize("name", sorted(BAD_ARRAYS))
def test_bad_arrays_give_one_line_pose_data_error(tmp_path, name):
    write, fragment = BAD_ARRAYS[name]
    write(tmp_path / name)
    with pytest.raises(PoseDataError) as info:
        read_pose_file(tmp_path / name)
    message = str(info.value)
    assert name in message and fragment in message and "\n" not in message


# --- dispatch ------------------------------------------------------------------------------------

def test_supported_suffixes_are_declared():
    assert set(SUPPORTED_SUFFIXES) == {".bvh", ".json", ".npy", ".npz", ".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm"}


def test_each_suffix_dispatches_to_its_reader(tmp_path):
    joints = random_joints()
    np.save(tmp_path / "a.npy", joints)
    np.savez(tmp_path / "b.npz", joints=joints)
    (tmp_path / "c.json").write_text(json.dumps([{"frame_id": t, "instances": [{"keypoints": joints[t].tolist()}]}
                                                 for t in range(len(joints))]))
    for name in ("a.npy", "b.npz", "c.json"):
        [seq] = read_pose_file(tmp_path / name)
        np.testing.assert_allclose(seq.joints, joints, atol=1e-5)


def test_unsupported_and_missing_paths(tmp_path):
    (tmp_path / "poses.csv").write_text("1,2,3")
    with pytest.raises(PoseDataError, match=r"poses\.csv.*unsupported file type '\.csv'"):
        read_pose_file(tmp_path / "poses.csv")
    with pytest.raises(PoseDataError, match="missing.json.*no such file"):
        read_pose_file(tmp_path / "missing.json")
