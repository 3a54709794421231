"""Hostile pose files (issue 12): each is read or refused with a one-line error naming the file and
the limit, with bounded memory (tracemalloc counts NumPy's buffers too). Timings are measured by
``tests/support/hostile_files.py`` (docs/security.md), never asserted here."""
from __future__ import annotations

import io
import json
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from encoder.data.errors import PoseDataError
from encoder.data.readers import ReaderLimits, read_pose_file

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))
from hostile_files import (  # noqa: E402
    CROWD_150,
    CROWD_1000,
    SPAN_BOMB,
    ZIP_BOMB,
    write_crowd,
    write_hostile_files,
)

MAX_EXTRA_BYTES = 200_000_000


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_hostile_files(tmp_path_factory.mktemp("hostile"))


def read_traced(path: Path, **kwargs) -> tuple[list | PoseDataError, int]:
    """``read_pose_file(path)`` (or the error it raised) and the peak memory it allocated."""
    tracemalloc.start()
    try:
        try:
            result: list | PoseDataError = read_pose_file(path, **kwargs)
        except PoseDataError as err:
            result = err
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def assert_refused(result: object, path: Path, *words: str) -> None:
    assert isinstance(result, PoseDataError), f"{path.name} was accepted"
    message = str(result)
    assert message.startswith(str(path)) and "\n" not in message
    for word in words:
        assert word in message, message


def test_frame_id_span_bomb_is_refused_from_the_ids(hostile):
    path = hostile[SPAN_BOMB]
    assert path.stat().st_size < 600
    result, peak = read_traced(path)
    assert_refused(result, path, "frame ids 0 to 999999", "limit of 100000 frames")
    assert peak < 1_000_000


def test_zip_bomb_is_refused_before_inflating(hostile):
    path = hostile[ZIP_BOMB]
    assert path.stat().st_size < 1_000_000
    result, peak = read_traced(path)
    assert_refused(result, path, "declares 755 MiB", "over the 256 MiB limit on array data")
    assert peak < 10_000_000


def test_npz_member_lying_about_its_size_is_refused_from_the_npy_header(hostile, tmp_path):
    """The zip header declares a small member; the .npy header inside says (1e6, 33, 3)."""
    with zipfile.ZipFile(hostile[ZIP_BOMB]) as src, zipfile.ZipFile(tmp_path / "liar.npz", "w") as out:
        header = src.open("joints.npy").read(128)
        out.writestr("joints.npy", header + bytes(1000))
    result, peak = read_traced(tmp_path / "liar.npz")
    assert_refused(result, tmp_path / "liar.npz", "1000000 frames in 'joints'", "limit of 100000 frames")
    assert peak < 10_000_000


def test_npz_inflated_bytes_limit_is_configurable(tmp_path):
    path = tmp_path / "take.npz"
    np.savez_compressed(path, joints=np.ones((500, 17, 3)))
    assert read_pose_file(path)[0].num_frames == 500
    result, _ = read_traced(path, limits=ReaderLimits(max_inflated_bytes=100_000))
    assert_refused(result, path, "declares 204", "over the 100000 bytes limit on array data")


def test_npy_header_is_checked_before_the_data_is_read(tmp_path):
    path = tmp_path / "long.npy"
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (5_000_000, 17, 3)})
    path.write_bytes(buffer.getvalue() + bytes(4096))
    result, peak = read_traced(path)
    assert_refused(result, path, "5000000 frames", "limit of 100000 frames")
    assert peak < 1_000_000


@pytest.mark.parametrize("name, people, frames", [(CROWD_150, 150, 40), (CROWD_1000, 1000, 5)])
def test_crowds_without_track_ids_are_linked_into_one_track_per_person(hostile, name, people, frames):
    result, peak = read_traced(hostile[name], person="all")
    assert not isinstance(result, PoseDataError), result
    assert peak < MAX_EXTRA_BYTES
    assert len(result) == people
    assert all(seq.num_frames == frames and seq.metadata["frames_with_person"] == frames for seq in result)
    assert {seq.metadata["tracked_by"] for seq in result} == {"nearest_centre"}


def test_people_per_frame_and_detection_limits_are_checked_before_parsing(tmp_path):
    crowd = write_crowd(tmp_path / "crowd.json", 40, 3)
    result, _ = read_traced(crowd, limits=ReaderLimits(max_people_per_frame=30))
    assert_refused(result, crowd, "frame 0: 40 people", "limit of 30 per frame")
    result, _ = read_traced(crowd, limits=ReaderLimits(max_detections=100))
    assert_refused(result, crowd, "120 detections", "limit of 100")


def test_flat_coco_results_count_people_per_frame_id(tmp_path):
    person = {"keypoints": [1.0, 2.0, 1.0] * 17}
    path = tmp_path / "flat.json"
    path.write_text(json.dumps([{"image_id": 7, **person}] * 5))
    result, _ = read_traced(path, limits=ReaderLimits(max_people_per_frame=4))
    assert_refused(result, path, "frame 7: 5 people", "limit of 4 per frame")


def test_frame_limit_is_configurable_and_spans_count_empty_frames(tmp_path):
    path = tmp_path / "gap.json"
    person = {"keypoints": [[10 + j, 20 + j] for j in range(17)]}
    path.write_text(json.dumps([{"frame_id": t, "instances": [person]} for t in (0, 20)]))
    assert read_pose_file(path)[0].num_frames == 21
    result, _ = read_traced(path, limits=ReaderLimits(max_frames=20))
    assert_refused(result, path, "21 frames (frame ids 0 to 20)", "limit of 20 frames")


def test_person_all_returns_at_most_the_track_frame_budget(hostile):
    sequences = read_pose_file(hostile[CROWD_150], person="all", limits=ReaderLimits(max_track_frames=400))
    assert len(sequences) == 10                                  # 400 track-frames / 40 frames
    assert all(seq.metadata["num_tracks"] == 150 for seq in sequences)


def test_bvh_frame_and_text_limits_come_before_parsing_values(tmp_path):
    hierarchy = ("HIERARCHY\nROOT Hips\n{\n OFFSET 0 0 0\n CHANNELS 3 Xposition Yposition Zposition\n"
                 " End Site\n {\n  OFFSET 0 1 0\n }\n}\nMOTION\n")
    declared = tmp_path / "declared.bvh"
    declared.write_text(hierarchy + "Frames: 3000000\nFrame Time: 0.033333\n0 0 0\n")
    result, _ = read_traced(declared)
    assert_refused(result, declared, "3000000 frames", "limit of 100000 frames")
    padded = tmp_path / "padded.bvh"
    padded.write_text(hierarchy + "Frames: 1\nFrame Time: 0.033333\n" + "0 " * 200_000)
    result, peak = read_traced(padded)
    assert_refused(result, padded, "far more than 1 frames of 3 values need")
    assert peak < 20_000_000


def test_limits_must_be_positive_integers():
    with pytest.raises(ValueError, match="max_frames"):
        ReaderLimits(max_frames=0)
