"""Fuzzing: random, mutated and truncated input either parses or raises PoseDataError, nothing else."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from encoder.data.errors import PoseDataError
from encoder.data.readers import read_bvh, read_pose_file
from encoder.data.skeleton import NUM_JOINTS

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

VALID_BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT UpperLeg_L
  {
    OFFSET 9 -5 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT LowerLeg_L
    {
      OFFSET 0 -42 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      End Site
      {
        OFFSET 0 -40 0
      }
    }
  }
  JOINT UpperLeg_R
  {
    OFFSET -9 -5 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 -82 0
    }
  }
  JOINT Spine
  {
    OFFSET 0 10 0
    CHANNELS 3 Xrotation Yrotation Zrotation
    JOINT UpperArm_L
    {
      OFFSET 17 35 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      End Site
      {
        OFFSET 28 0 0
      }
    }
    JOINT UpperArm_R
    {
      OFFSET -17 35 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      End Site
      {
        OFFSET -28 0 0
      }
    }
  }
}
MOTION
Frames: 3
Frame Time: 0.0333333
0 95 0 0 0 0 10 0 0 -20 0 0 5 0 0 0 0 0 30 0 0 -30 0 0
0 95 1 0 0 0 12 0 0 -18 0 0 4 0 0 1 2 3 31 0 0 -29 0 0
0 95 2 0 0 0 14 0 0 -16 0 0 3 0 0 2 4 6 32 0 0 -28 0 0
"""

VALID_JSON = json.dumps({"fps": 30, "frames": [
    {"frame_id": t, "instances": [
        {"track_id": 1, "keypoints": [[100.0 + t + j, 200.0 + 3 * j] for j in range(17)],
         "keypoint_scores": [0.9] * 17},
        {"track_id": 2, "keypoints": [[600.0 + j, 200.0 + 2 * j] for j in range(17)],
         "keypoint_scores": [0.5] * 17}]}
    for t in range(3)]}, indent=1)

BVH_WORDS = ["HIERARCHY", "ROOT", "JOINT", "End", "Site", "{", "}", "OFFSET", "CHANNELS", "3", "6", "0", "-1",
             "1e309", "nan", "Xrotation", "Zposition", "Wrotation", "MOTION", "Frames:", "Frame Time:", "\n"]
JSON_WORDS = ['"keypoints"', '"instances"', '"people"', '"frame_id"', '"fps"', '"track_id"', "[", "]", "{", "}",
              ",", ":", "null", "NaN", "-Infinity", "1e400", "17", "-1", '"x"', "true"]


def mutations(base: str, words: list[str]) -> st.SearchStrategy[str]:
    """Truncations, deleted slices, inserted words/characters and replaced spans of a valid text."""
    n = len(base)
    truncate = st.integers(0, n).map(lambda k: base[:k])
    delete = st.tuples(st.integers(0, n), st.integers(1, 40)).map(lambda a: base[:a[0]] + base[a[0] + a[1]:])
    insert = st.tuples(st.integers(0, n), st.sampled_from(words) | st.text(max_size=5)).map(
        lambda a: base[:a[0]] + " " + a[1] + " " + base[a[0]:])
    replace = st.tuples(st.integers(0, n), st.integers(1, 8), st.text(max_size=8)).map(
        lambda a: base[:a[0]] + a[2] + base[a[0] + a[1]:])
    several = st.lists(st.tuples(st.integers(0, n), st.sampled_from(words)), min_size=1, max_size=6).map(
        lambda edits: _apply_all(base, edits))
    return truncate | delete | insert | replace | several


def _apply_all(base: str, edits: list[tuple[int, str]]) -> str:
    for position, word in sorted(edits, reverse=True):
        base = base[:position] + word + base[position:]
    return base


def check_result_or_error(path: Path) -> None:
    try:
        sequences = read_pose_file(path)
    except PoseDataError as err:
        assert path.name in str(err) and "\n" not in str(err)
        return
    for seq in sequences:
        assert seq.num_joints == NUM_JOINTS
        assert np.isfinite(seq.joints).all() and np.isfinite(seq.confidence).all()


@FUZZ
@given(text=mutations(VALID_BVH, BVH_WORDS))
def test_mutated_bvh_parses_or_raises_pose_data_error(tmp_path, text):
    path = tmp_path / "fuzz.bvh"
    path.write_text(text)
    check_result_or_error(path)


@FUZZ
@given(text=st.lists(st.sampled_from(BVH_WORDS) | st.text(max_size=6), max_size=60).map(" ".join))
def test_random_bvh_token_soup_raises_pose_data_error(tmp_path, text):
    path = tmp_path / "soup.bvh"
    path.write_text("HIERARCHY " + text)
    check_result_or_error(path)


@FUZZ
@given(text=mutations(VALID_JSON, JSON_WORDS))
def test_mutated_json_parses_or_raises_pose_data_error(tmp_path, text):
    path = tmp_path / "fuzz.json"
    path.write_text(text)
    check_result_or_error(path)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(
        st.sampled_from(["keypoints", "instances", "people", "frame_id", "image_id", "fps", "frames",
                         "track_id", "keypoint_scores", "x", "y", "score", "pose_keypoints_2d"]) | st.text(max_size=4),
        inner, max_size=5),
    max_leaves=20)
keypoint_lists = st.sampled_from([0, 7, 34, 51, 54, 75, 99]).flatmap(
    lambda n: st.lists(st.floats(-1e3, 1e3) | st.integers(0, 2), min_size=n, max_size=n))
person = st.fixed_dictionaries({"keypoints": keypoint_lists},
                               optional={"track_id": st.integers(-2, 3) | st.text(max_size=2),
                                         "keypoint_scores": st.lists(st.floats(-1, 3), max_size=34)})
structured = st.lists(st.fixed_dictionaries({"frame_id": st.integers(0, 50) | st.text(max_size=3),
                                             "instances": st.lists(person, max_size=2)}), max_size=4)


@settings(FUZZ, max_examples=100)
@given(doc=json_values | structured)
def test_random_json_documents_parse_or_raise_pose_data_error(tmp_path, doc):
    path = tmp_path / "random.json"
    path.write_text(json.dumps(doc))
    check_result_or_error(path)


@settings(FUZZ, max_examples=100)
@given(data=st.binary(max_size=300))
def test_random_bytes_raise_pose_data_error(tmp_path, data):
    for suffix in (".bvh", ".json", ".npy", ".npz"):
        path = tmp_path / f"bytes{suffix}"
        path.write_bytes(data)
        check_result_or_error(path)


def test_valid_fuzz_seeds_parse(tmp_path):
    """The fuzzers start from texts that are themselves valid."""
    bvh = tmp_path / "seed.bvh"
    bvh.write_text(VALID_BVH)
    assert read_bvh(bvh).num_frames == 3
    js = tmp_path / "seed.json"
    js.write_text(VALID_JSON)
    assert read_pose_file(js)[0].metadata["track_id"] == 1
