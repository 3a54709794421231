"""Keypoint JSON and OpenPose folder readers: layouts, skeleton mapping, main-person tracking, errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from encoder.data.errors import PoseDataError
from encoder.data.readers import read_coco_json, read_openpose_folder, read_pose_file, read_pose_path
from encoder.data.skeleton import JOINT_INDEX, NUM_JOINTS


def body(centre: tuple[float, float], num_joints: int = 17, size: float = 100.0) -> np.ndarray:
    """(J, 2) keypoints spread over a box of ``size`` pixels around ``centre``; joint i is unique."""
    i = np.arange(num_joints, dtype=float)
    offsets = np.stack([np.sin(i) * size / 2, (i / max(num_joints - 1, 1) - 0.5) * size], axis=1)
    return np.asarray(centre, dtype=float) + offsets


def flat_xys(kp: np.ndarray, score: float = 0.9) -> list[float]:
    return np.concatenate([kp, np.full((len(kp), 1), score)], axis=1).ravel().tolist()


def dump(tmp_path: Path, doc, name: str = "poses.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


# --- layouts -------------------------------------------------------------------------------------

def test_mmpose_frames_with_nested_keypoints_and_scores(tmp_path):
    frames = []
    for t in range(4):
        kp = body((300 + 10 * t, 400))
        frames.append({"frame_id": t, "instances": [{
            "keypoints": kp.tolist(), "keypoint_scores": [0.8] * 17,
            "bbox": [[200.0, 300.0, 400.0, 500.0]], "bbox_score": 0.99}]})
    [seq] = read_coco_json(dump(tmp_path, frames))
    assert seq.joints.shape == (4, NUM_JOINTS, 2) and seq.fps == 30.0
    np.testing.assert_allclose(seq.joints[2], body((320, 400)), atol=1e-4)
    np.testing.assert_allclose(seq.confidence, 0.8, atol=1e-6)
    assert seq.metadata["source_skeleton"] == "coco17" and seq.name == "poses"


def test_mmpose_instance_info_layout_with_meta_fps(tmp_path):
    doc = {"meta_info": {"dataset_name": "coco", "fps": 25},
           "instance_info": [{"frame_id": t, "instances": [{"keypoints": body((100, 100)).tolist(),
                                                              "keypoint_scores": [1.0] * 17}]} for t in range(3)]}
    [seq] = read_coco_json(dump(tmp_path, doc))
    assert seq.fps == 25.0 and seq.num_frames == 3


def test_dict_with_fps_and_frames(tmp_path):
    doc = {"fps": 24, "frames": [{"image_id": t, "people": [{"keypoints": flat_xys(body((50, 60)))}]}
                                 for t in range(5)]}
    [seq] = read_coco_json(dump(tmp_path, doc))
    assert seq.fps == 24.0 and seq.num_frames == 5
    assert seq.metadata["fps_from_file"] is True


def test_default_fps_used_when_file_has_none(tmp_path):
    path = dump(tmp_path, [{"frame_id": 0, "persons": [{"keypoints": flat_xys(body((5, 5)))}]}])
    assert read_coco_json(path)[0].fps == 30.0
    assert read_coco_json(path, default_fps=50)[0].fps == 50.0


def test_coco_results_layout_visibility_flags(tmp_path):
    kp = body((500, 500))
    triples = np.concatenate([kp, np.full((17, 1), 2.0)], axis=1)
    triples[3, 2] = 0.0          # not labelled
    triples[4, 2] = 1.0          # labelled, occluded
    records = [{"image_id": t, "category_id": 1, "keypoints": triples.ravel().tolist(), "score": 0.95}
               for t in range(3)]
    [seq] = read_coco_json(dump(tmp_path, records))
    assert seq.num_frames == 3
    assert seq.confidence[0, 3] == 0.0 and (seq.joints[:, 3] == 0).all()
    assert seq.confidence[0, 4] == 1.0 and seq.confidence[0, 0] == 1.0
    np.testing.assert_allclose(seq.joints[1, 0], kp[0], atol=1e-4)


def test_scores_above_one_are_clipped(tmp_path):
    doc = [{"frame_id": 0, "instances": [{"keypoints": body((10, 10)).tolist(), "keypoint_scores": [7.5] * 17}]}]
    [seq] = read_coco_json(dump(tmp_path, doc))
    assert seq.confidence.max() == 1.0


def test_frames_as_bare_person_lists_and_flat_xy(tmp_path):
    doc = [[{"keypoints": body((10 * t, 0)).ravel().tolist()}] for t in range(3)]   # 34 values: x, y only
    [seq] = read_coco_json(dump(tmp_path, doc))
    np.testing.assert_allclose(seq.joints[2], body((20, 0)), atol=1e-4)
    assert (seq.confidence == 1.0).all()


def test_integer_frame_ids_keep_gaps_as_empty_frames(tmp_path):
    doc = [{"frame_id": t, "instances": [{"keypoints": body((0, 0)).tolist()}]} for t in (10, 11, 14)]
    [seq] = read_coco_json(dump(tmp_path, doc))
    assert seq.num_frames == 5
    np.testing.assert_array_equal(seq.confidence.max(axis=1), [1, 1, 0, 0, 1])


def test_string_image_ids_sort_naturally(tmp_path):
    doc = [{"image_id": f"frame_{t}.jpg", "keypoints": flat_xys(body((float(t), 0.0)))} for t in (10, 2, 1)]
    [seq] = read_coco_json(dump(tmp_path, doc))
    np.testing.assert_allclose(seq.joints[:, 0, 0], body((0, 0))[0, 0] + np.array([1, 2, 10]), atol=1e-4)


def test_single_openpose_frame_json(tmp_path):
    doc = {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": flat_xys(body((9, 9), 25))}]}
    [seq] = read_pose_file(dump(tmp_path, doc, "one_keypoints.json"))
    assert seq.num_frames == 1 and seq.metadata["source_skeleton"] == "body25"


# --- skeleton mapping ----------------------------------------------------------------------------

def test_body25_is_mapped_by_openpose_joint_meaning(tmp_path):
    kp = body((100, 100), 25)
    [seq] = read_coco_json(dump(tmp_path, [{"frame_id": 0, "people": [{"pose_keypoints_2d": flat_xys(kp)}]}]))
    # OpenPose BODY_25: 0 Nose, 2 RShoulder, 5 LShoulder, 11 RAnkle, 14 LAnkle, 16 LEye, 17 REar
    for openpose_index, coco_name in ((0, "nose"), (2, "right_shoulder"), (5, "left_shoulder"),
                                      (11, "right_ankle"), (14, "left_ankle"), (16, "left_eye"), (17, "right_ear")):
        np.testing.assert_allclose(seq.joints[0, JOINT_INDEX[coco_name]], kp[openpose_index], atol=1e-4)


def test_body18_flat_keypoints(tmp_path):
    kp = body((100, 100), 18)
    [seq] = read_coco_json(dump(tmp_path, [{"frame_id": 0, "people": [{"pose_keypoints_2d": flat_xys(kp)}]}]))
    # OpenPose COCO-18: 8 RHip, 11 LHip, 15 LEye
    np.testing.assert_allclose(seq.joints[0, JOINT_INDEX["right_hip"]], kp[8], atol=1e-4)
    np.testing.assert_allclose(seq.joints[0, JOINT_INDEX["left_hip"]], kp[11], atol=1e-4)
    np.testing.assert_allclose(seq.joints[0, JOINT_INDEX["left_eye"]], kp[15], atol=1e-4)


def test_mediapipe33_landmark_objects(tmp_path):
    kp = body((0.5, 0.5), 33, size=0.5)
    landmarks = [{"x": x, "y": y, "z": -0.1, "visibility": 0.7} for x, y in kp]
    [seq] = read_coco_json(dump(tmp_path, {"fps": 30, "frames": [{"frame_id": 0, "persons": [
        {"landmarks": landmarks}]}]}))
    assert seq.metadata["source_skeleton"] == "mediapipe33"
    # MediaPipe Pose: 0 nose, 2 left eye, 23 left hip, 28 right ankle
    for mp_index, coco_name in ((0, "nose"), (2, "left_eye"), (23, "left_hip"), (28, "right_ankle")):
        np.testing.assert_allclose(seq.joints[0, JOINT_INDEX[coco_name]], kp[mp_index], atol=1e-6)
    np.testing.assert_allclose(seq.confidence[0], 0.7, atol=1e-6)


def test_mediapipe_rows_with_depth_drop_z(tmp_path):
    kp = body((0.5, 0.5), 33, size=0.5)
    rows = np.concatenate([kp, np.full((33, 1), 9.0), np.full((33, 1), 0.6)], axis=1)
    [seq] = read_coco_json(dump(tmp_path, [{"frame_id": 0, "persons": [{"keypoints": rows.tolist()}]}]))
    np.testing.assert_allclose(seq.joints[0, JOINT_INDEX["left_hip"]], kp[23], atol=1e-6)
    np.testing.assert_allclose(seq.confidence[0], 0.6, atol=1e-6)


# --- main person ---------------------------------------------------------------------------------

def test_tracked_main_person_is_the_longest_track(tmp_path):
    records = []
    for t in range(10):
        records.append({"image_id": t, "category_id": 1, "track_id": 7,
                        "keypoints": flat_xys(body((100 + 5 * t, 300))), "score": 0.9})
        if t % 3 == 0:   # a bigger passer-by seen in 4 frames only
            records.append({"image_id": t, "category_id": 1, "track_id": 2,
                            "keypoints": flat_xys(body((900, 300), size=400)), "score": 0.99})
    [seq] = read_coco_json(dump(tmp_path, records))
    assert seq.metadata["track_id"] == 7 and seq.metadata["tracked_by"] == "file"
    np.testing.assert_allclose(seq.joints[:, 0], [body((100 + 5 * t, 300))[0] for t in range(10)], atol=1e-4)
    everyone = read_coco_json(dump(tmp_path, records), person="all")
    assert [s.metadata["track_id"] for s in everyone] == [7, 2]
    assert everyone[1].metadata["frames_with_person"] == 4


def test_equal_track_lengths_prefer_the_larger_person(tmp_path):
    frames = [{"frame_id": t, "instances": [
        {"track_id": "small", "keypoints": body((100, 100), size=50).tolist()},
        {"track_id": "large", "keypoints": body((600, 100), size=300).tolist()}]} for t in range(4)]
    [seq] = read_coco_json(dump(tmp_path, frames))
    assert seq.metadata["track_id"] == "large"


def test_main_person_absent_frames_have_zero_confidence(tmp_path):
    frames = []
    for t in range(6):
        people = [{"id": 1, "keypoints": body((200, 200)).tolist()}] if t not in (2, 3) else []
        if t % 2:
            people.append({"id": 5, "keypoints": body((800, 200)).tolist()})
        frames.append({"frame_id": t, "instances": people})
    [seq] = read_coco_json(dump(tmp_path, frames))
    assert seq.metadata["track_id"] == 1
    np.testing.assert_array_equal(seq.confidence.max(axis=1), [1, 1, 0, 0, 1, 1])
    assert (seq.joints[2:4] == 0).all()


def test_untracked_people_are_linked_by_nearest_centre(tmp_path):
    rng = np.random.default_rng(3)
    frames = []
    for t in range(20):
        walker = {"keypoints": flat_xys(body((100 + 8 * t, 500)), 0.9)}
        people = [walker]
        if t < 12:   # a second person, nearby, standing, leaves after 12 frames
            people.append({"keypoints": flat_xys(body((420, 480)), 0.95)})
        rng.shuffle(people)   # detector order changes from frame to frame
        frames.append({"frame_id": t, "people": people})
    [seq] = read_coco_json(dump(tmp_path, frames))
    assert seq.metadata["tracked_by"] == "nearest_centre"
    np.testing.assert_allclose(seq.joints[:, 0], [body((100 + 8 * t, 500))[0] for t in range(20)], atol=1e-4)
    assert seq.metadata["num_tracks"] == 2


def test_annotation_ids_unique_per_record_are_not_tracks(tmp_path):
    # COCO ground-truth style: "id" is the annotation id, different for every record
    records = [{"id": 1000 + t, "image_id": t, "category_id": 1, "keypoints": flat_xys(body((10 + t, 10)))}
               for t in range(5)]
    [seq] = read_coco_json(dump(tmp_path, {"images": [], "annotations": records}))
    assert (seq.confidence.max(axis=1) > 0).all()


# --- OpenPose folder -----------------------------------------------------------------------------

def write_openpose_folder(folder: Path, frames: list[int]) -> None:
    folder.mkdir()
    for t in frames:
        doc = {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": flat_xys(body((t, 0), 25))}]}
        (folder / f"clip_{t}_keypoints.json").write_text(json.dumps(doc))


def test_openpose_folder_orders_frames_by_number(tmp_path):
    folder = tmp_path / "clip"
    write_openpose_folder(folder, [0, 1, 2, 9, 10, 11])   # "10" sorts before "2" as text
    (folder / "notes.txt").write_text("ignored")
    [seq] = read_openpose_folder(folder)
    nose_x = seq.joints[:, 0, 0] - body((0, 0), 25)[0, 0]
    present = seq.confidence[:, 0] > 0
    np.testing.assert_allclose(nose_x[present], [0, 1, 2, 9, 10, 11], atol=1e-4)
    assert seq.num_frames == 12 and present.sum() == 6           # frames 3..8 have no file
    assert seq.name == "clip" and seq.metadata["format"] == "openpose_folder"
    [again] = read_pose_path(folder)
    np.testing.assert_array_equal(again.joints, seq.joints)


def test_openpose_folder_errors_name_the_bad_file(tmp_path):
    folder = tmp_path / "clip"
    write_openpose_folder(folder, [0, 1, 2])
    (folder / "clip_1_keypoints.json").write_text('{"people": [{"pose_keypoints_2d": [1, 2')
    with pytest.raises(PoseDataError, match="clip_1_keypoints.json"):
        read_openpose_folder(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PoseDataError, match="empty"):
        read_pose_file(empty)


# --- bad input ----------------------------------------------------------------------------------

GOOD_PERSON = {"keypoints": body((1, 1)).tolist()}
BAD_JSON = {
    "malformed": ('{"frames": [1, 2,, 3]}', "malformed JSON"),
    "truncated": (json.dumps([{"frame_id": 0, "instances": [GOOD_PERSON]}])[:40], "malformed JSON"),
    "nan_keypoint": (json.dumps([{"frame_id": 0, "instances": [{"keypoints": [[float("nan"), 1]] * 17}]}]), "NaN"),
    "inf_score": (json.dumps([{"frame_id": 0, "instances": [{**GOOD_PERSON, "keypoint_scores": [float("inf")] * 17}]}]),
                  "NaN or inf"),
    "joint_count": (json.dumps([{"frame_id": 0, "instances": [{"keypoints": [[1, 2]] * 20}]}]), "20 joints"),
    "flat_count": (json.dumps([{"frame_id": 0, "instances": [{"keypoints": [1.0] * 40}]}]), "40 keypoint values"),
    "mixed_counts": (json.dumps([{"frame_id": 0, "instances": [GOOD_PERSON, {"keypoints": [[1, 2]] * 25}]}]),
                     "different keypoint counts"),
    "empty_list": ("[]", "zero frames"),
    "nobody": (json.dumps([{"frame_id": 0, "instances": []}]), "no people"),
    "scalar": ("42", "expected a JSON list or object"),
    "no_frame_list": ('{"hello": 1}', "no frame list"),
    "keypoints_not_list": (json.dumps([{"frame_id": 0, "instances": [{"keypoints": "1 2 3"}]}]), "must be a list"),
    "person_not_object": (json.dumps([{"frame_id": 0, "instances": [[1, 2, 3]]}]), "JSON object"),
    "string_values": (json.dumps([{"frame_id": 0, "instances": [{"keypoints": ["a"] * 51}]}]), "numbers"),
    "ragged_rows": (json.dumps([{"frame_id": 0, "instances": [{"keypoints": [[1, 2]] * 16 + [[1, 2, 3]]}]}]),
                    "rows of 2 to 4 numbers"),
    "score_count": (json.dumps([{"frame_id": 0, "instances": [{**GOOD_PERSON, "keypoint_scores": [1] * 3}]}]),
                    "3 keypoint scores for 17"),
    "bad_fps": (json.dumps({"fps": -5, "frames": [{"frame_id": 0, "instances": [GOOD_PERSON]}]}), "fps"),
    "text_fps": (json.dumps({"fps": "fast", "frames": [{"frame_id": 0, "instances": [GOOD_PERSON]}]}), "fps"),
    "unknown_entry": (json.dumps([{"frame_id": 0}]), "neither a frame"),
    "huge_frame_ids": (json.dumps([{"frame_id": t, "instances": [GOOD_PERSON]} for t in (0, 10**9)]), "over the limit"),
    "deep_nesting": ("[" * 100_000 + "]" * 100_000, "nesting"),
    "binary": (bytes(range(256)).decode("latin-1"), "malformed JSON"),
}


@pytest.mark.parametrize("case", sorted(BAD_JSON))
def test_bad_json_gives_one_line_pose_data_error(tmp_path, case):
    text, fragment = BAD_JSON[case]
    path = tmp_path / f"bad_{case}.json"
    path.write_text(text)
    with pytest.raises(PoseDataError) as info:
        read_pose_file(path)
    message = str(info.value)
    assert f"bad_{case}.json" in message
    assert fragment in message
    assert "\n" not in message


def test_the_garbage_collector_is_paused_only_while_a_file_is_parsed(tmp_path, monkeypatch):
    import gc

    import encoder.data.readers.keypoint_json as keypoint_json

    seen = []
    real = keypoint_json.frame_table_from_document
    monkeypatch.setattr(keypoint_json, "frame_table_from_document",
                        lambda *a, **kw: (seen.append(gc.isenabled()), real(*a, **kw))[1])
    good = tmp_path / "walk.json"
    good.write_text(json.dumps([{"frame_id": t, "instances": [GOOD_PERSON]} for t in range(5)]))
    bad = tmp_path / "bad.json"
    bad.write_text('{"frames": [1, 2,, 3]}')
    assert gc.isenabled()
    assert read_coco_json(good)[0].num_frames == 5 and seen == [False] and gc.isenabled()
    with pytest.raises(PoseDataError, match="malformed JSON"):
        read_coco_json(bad)
    assert gc.isenabled()                         # restored on the error path too
    gc.disable()
    try:                                          # a caller that paused it keeps it paused
        read_coco_json(good)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_invalid_person_selection(tmp_path):
    path = dump(tmp_path, [{"frame_id": 0, "instances": [GOOD_PERSON]}])
    with pytest.raises(PoseDataError, match="person must be one of"):
        read_pose_file(path, person="loudest")
