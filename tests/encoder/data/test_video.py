"""Video input: a clip made from scikit-image's photo of a person (moved sideways frame by frame) read
through the real decoder and MediaPipe; the estimator interface with a stand-in estimator; stride
interpolation; and the one-line errors for bad clips, in a batch that goes on."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))
from video_clips import (  # noqa: E402
    CANVAS_HW, PHOTO_LEFT, empty_clip, person_clip, unknown_codec_clip, write_clip,
)
from video_requirements import require_video  # noqa: E402

from encoder.data.dataset import DatasetCache, ingest
from encoder.data.errors import PoseDataError
from encoder.data.readers import SUPPORTED_SUFFIXES, read_pose_file
from encoder.data.skeleton import JOINT_INDEX
from encoder.data.video import VideoOptions
from encoder.data.video.estimators import PoseEstimator, register_estimator
from encoder.data.video.reader import interpolate_frames

FRAMES, FPS, STEP = 24, 24, 6
PHOTO_WIDTH = 512
# What the cameraman's photo shows clearly (his left arm is hidden behind the camera).
VISIBLE = [JOINT_INDEX[j] for j in ("nose", "left_shoulder", "right_shoulder", "right_elbow", "left_hip", "right_hip")]
SHOULDERS = [JOINT_INDEX["left_shoulder"], JOINT_INDEX["right_shoulder"]]


@pytest.fixture(scope="module")
def person_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_video()
    return person_clip(tmp_path_factory.mktemp("clips") / "walker.mp4", frames=FRAMES, fps=FPS, step=STEP)


@pytest.fixture(scope="module")
def person_sequence(person_mp4: Path):
    (seq,) = read_pose_file(person_mp4)
    return seq


def test_video_suffixes_are_pose_inputs() -> None:
    assert {".mp4", ".mov", ".avi", ".mkv", ".webm"} <= set(SUPPORTED_SUFFIXES)


def test_interpolation_fills_skipped_frames_linearly_and_drops_half_seen_joints() -> None:
    joints = np.array([[[0.0, 0.0], [10.0, 10.0]], [[30.0, 3.0], [40.0, 40.0]]])
    conf = np.array([[1.0, 1.0], [0.4, 0.0]])
    out, out_conf = interpolate_frames(joints, conf, np.array([0, 3]), 4)
    np.testing.assert_allclose(out[:, 0, 0], [0.0, 10.0, 20.0, 30.0])
    np.testing.assert_allclose(out_conf[:, 0], [1.0, 0.8, 0.6, 0.4], atol=1e-6)
    np.testing.assert_allclose(out_conf[:, 1], [1.0, 0.0, 0.0, 0.0])     # unseen at frame 3
    assert (out[1:, 1] == 0).all() and (out[0, 1] == 10.0).all()


def test_a_clip_of_a_person_gives_a_well_formed_coco17_sequence(person_mp4: Path, person_sequence) -> None:
    seq = person_sequence
    assert (seq.num_frames, seq.num_joints, seq.dims, seq.skeleton) == (FRAMES, 17, 2, "coco17")
    assert seq.fps == FPS and seq.metadata["video_fps"] == FPS            # the clip's real frame rate
    assert seq.metadata["video_path"] == str(person_mp4.resolve()) and seq.name == "walker"
    assert seq.metadata["source_skeleton"] == "mediapipe33" and seq.metadata["stride"] == 1
    assert seq.metadata["video_size"] == [CANVAS_HW[1], CANVAS_HW[0]]
    seen = seq.confidence > 0
    assert (seq.joints[~seen] == 0).all()
    found = (seq.confidence[:, VISIBLE] > 0.5).all(axis=1)
    assert found.mean() >= 0.6, seq.confidence[:, VISIBLE]                 # landmarks found in most frames
    height, width = CANVAS_HW
    pts = seq.joints[seq.confidence > 0.5]
    assert (pts[:, 0] > -5).all() and (pts[:, 0] < width + 5).all() and (pts[:, 1] > -5).all()
    assert (pts[:, 1] < height + 5).all()


def test_the_pose_follows_the_person_across_the_frame(person_sequence) -> None:
    seq = person_sequence
    frames = np.flatnonzero((seq.confidence[:, SHOULDERS] > 0.5).all(axis=1))
    centre = seq.joints[frames][:, SHOULDERS, 0].mean(axis=1)
    left = PHOTO_LEFT + STEP * frames
    assert ((centre > left) & (centre < left + PHOTO_WIDTH)).all()        # on the photo in every frame
    slope = np.polyfit(frames, centre, 1)[0]
    assert abs(slope - STEP) < 1.5, slope                                 # moves with it, STEP px a frame


def test_stride_estimates_every_nth_frame_and_interpolates_between(person_mp4: Path) -> None:
    (seq,) = read_pose_file(person_mp4, video=VideoOptions(stride=3))
    assert seq.num_frames == FRAMES and seq.metadata["stride"] == 3
    assert seq.metadata["frames_estimated"] == len(range(0, FRAMES, 3)) + 1      # and the last frame
    x = seq.joints[:, SHOULDERS[0], 0]
    c = seq.confidence[:, SHOULDERS[0]]
    for a in range(0, FRAMES - 3, 3):
        if c[a] > 0 and c[a + 3] > 0:
            np.testing.assert_allclose(x[a + 1], (2 * x[a] + x[a + 3]) / 3, rtol=1e-4)


def _moving_coco_person(frames):
    """A stand-in estimator: one COCO-17 person whose x is the frame's mean brightness."""
    for frame in frames:
        base = np.stack([np.linspace(100, 140, 17), np.linspace(50, 250, 17)], axis=1)
        base[:, 0] += float(frame.mean())
        yield [(base, np.full(17, 0.9))]


def test_another_estimator_plugs_in_without_touching_ingest(tmp_path: Path) -> None:
    require_video("av")
    register_estimator("test-stand-in", lambda: PoseEstimator("stand-in", _moving_coco_person))
    frames = [np.full((64, 96, 3), 20 * t, dtype=np.uint8) for t in range(6)]
    clip = write_clip(tmp_path / "grey.mp4", frames, fps=12)
    report = ingest([clip], tmp_path / "ds", progress=False, video=VideoOptions(estimator="test-stand-in", stride=2))
    assert report.read == 1 and not report.errors
    seq = DatasetCache.open(tmp_path / "ds").load("grey")
    assert seq.fps == 12 and seq.metadata["estimator"] == "stand-in" and seq.metadata["source_skeleton"] == "coco17"
    x = seq.joints[:, 0, 0] - 100
    assert np.all(np.diff(x) > 5), x                           # brighter frames, further right
    np.testing.assert_allclose(seq.confidence, 0.9, rtol=1e-6)


def test_bad_clips_get_one_line_errors_and_the_batch_goes_on(person_mp4: Path, tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "good.mp4").write_bytes(person_mp4.read_bytes())
    empty_clip(folder / "nobody.mp4")
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    (folder / "truncated.mp4").write_bytes(person_mp4.read_bytes()[: person_mp4.stat().st_size // 3])
    unknown_codec_clip(folder / "codec.avi")
    report = ingest([folder], tmp_path / "ds", progress=False)
    assert report.read == 1 and DatasetCache.open(tmp_path / "ds").names == ["good"]
    problems = {Path(e.source).name: e.error for e in report.errors}
    assert set(problems) == {"nobody.mp4", "corrupt.mp4", "truncated.mp4", "codec.avi"}, problems
    assert problems["nobody.mp4"].startswith("no person found in the video")
    assert "corrupt" in problems["corrupt.mp4"] and "corrupt" in problems["truncated.mp4"]
    assert problems["codec.avi"].startswith("unsupported video codec")
    assert all("\n" not in e for e in problems.values())


def test_a_clip_over_the_length_limit_is_refused(person_mp4: Path) -> None:
    with pytest.raises(PoseDataError, match=r"walker\.mp4: video is 1 s long, over the limit of 0\.5 s$"):
        read_pose_file(person_mp4, video=VideoOptions(max_seconds=0.5))


def test_without_the_video_extra_a_clip_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "av", None)             # import av now fails, as without the extra
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not looked at")
    with pytest.raises(PoseDataError, match=r"clip\.mp4: video input needs the video extra: pip install"):
        read_pose_file(clip)
