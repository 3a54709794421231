"""Tests of the preprocessing chain (paper section 3.1, eq. 1-3)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from encoder.data.batch import SegmentedSequence, collate_segments
from encoder.data.errors import PoseDataError
from encoder.data.preprocess import (
    FILLED_CONFIDENCE_FACTOR,
    PreprocessConfig,
    align_heading,
    body_centre,
    clean_low_confidence,
    joint_velocities,
    normalize_center_scale,
    preprocess_many,
    preprocess_sequence,
    resample_fps,
    segment_windows,
    velocity_weighted_adjacency,
    window_starts,
)
from encoder.data.sequence import PoseSequence
from encoder.data.skeleton import JOINT_INDEX, LEFT_HIP, NUM_JOINTS, RIGHT_HIP, adjacency_matrix

FACE = [JOINT_INDEX[n] for n in ("left_eye", "right_eye", "left_ear", "right_ear")]

# Body-frame joint layout: (lateral, height, forward), lateral > 0 on the body's right.
_BODY = {
    "nose": (0.0, 1.60, 0.10), "left_eye": (-0.03, 1.65, 0.08), "right_eye": (0.03, 1.65, 0.08),
    "left_ear": (-0.08, 1.62, 0.0), "right_ear": (0.08, 1.62, 0.0),
    "left_shoulder": (-0.20, 1.40, 0.0), "right_shoulder": (0.20, 1.40, 0.0),
    "left_elbow": (-0.22, 1.10, 0.0), "right_elbow": (0.22, 1.10, 0.0),
    "left_wrist": (-0.24, 0.85, 0.0), "right_wrist": (0.24, 0.85, 0.0),
    "left_hip": (-0.10, 0.90, 0.0), "right_hip": (0.10, 0.90, 0.0),
    "left_knee": (-0.10, 0.50, 0.0), "right_knee": (0.10, 0.50, 0.0),
    "left_ankle": (-0.10, 0.10, 0.0), "right_ankle": (0.10, 0.10, 0.0),
}
_SWING = {"left_elbow": 0.1, "right_elbow": -0.1, "left_wrist": 0.2, "right_wrist": -0.2,
          "left_knee": -0.15, "right_knee": 0.15, "left_ankle": -0.3, "right_ankle": 0.3}


def walker3d(frames: int = 90, fps: float = 30.0, heading_deg: float = 0.0, speed: float = 1.3,
             start=(0.0, 0.0, 0.0), face_missing: bool = True) -> PoseSequence:
    """A stick figure walking forward along its facing direction (right-handed, Y up, metres)."""
    theta = np.radians(heading_deg)
    forward = np.array([np.sin(theta), 0.0, np.cos(theta)])
    right = np.cross(forward, [0.0, 1.0, 0.0])
    t = np.arange(frames) / fps
    phase = 2 * np.pi * 0.9 * t
    joints = np.zeros((frames, NUM_JOINTS, 3))
    for name, (lat, height, fwd) in _BODY.items():
        swing = _SWING.get(name, 0.0) * np.sin(phase)
        along = fwd + swing + speed * t
        joints[:, JOINT_INDEX[name]] = (np.asarray(start) + lat * right + height * np.array([0, 1.0, 0])
                                        + along[:, None] * forward)
    conf = np.ones((frames, NUM_JOINTS))
    if face_missing:
        conf[:, FACE] = 0.0
        joints[:, FACE] = 0.0
    return PoseSequence(joints, conf, fps=fps, name="walker", source="walker.bvh")


def linear_2d(frames: int = 40, fps: float = 30.0, seed: int = 0) -> PoseSequence:
    """Every joint moves on a straight line at its own constant velocity (pixels)."""
    rng = np.random.default_rng(seed)
    p0 = rng.uniform(100, 900, (NUM_JOINTS, 2))
    vel = rng.uniform(-5, 5, (NUM_JOINTS, 2))
    joints = p0 + np.arange(frames)[:, None, None] * vel
    return PoseSequence(joints, np.full((frames, NUM_JOINTS), 0.9), fps=fps, name="lin", source="lin.json")


# -- config ------------------------------------------------------------------------------------
def test_config_defaults_and_validation():
    cfg = PreprocessConfig()
    assert (cfg.target_fps, cfg.window_length, cfg.window_stride, cfg.max_segments) == (30.0, 32, 16, 16)
    assert (cfg.min_confidence, cfg.max_gap, cfg.align_heading) == (0.3, 10, False)
    with pytest.raises(ValueError):
        PreprocessConfig(graph_lambda=1.5)
    with pytest.raises(ValueError):
        PreprocessConfig(window_length=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.window_length = 8  # frozen


# -- cleaning ------------------------------------------------------------------------------------
def test_clean_fills_short_gap_exactly_and_leaves_long_gap():
    seq = linear_2d(frames=40)
    conf = seq.confidence.copy()
    conf[5:15, 3] = 0.1          # 10 frames below threshold: == max_gap, filled
    conf[20:31, 4] = 0.0         # 11 frames: longer than max_gap, stays missing
    noisy = seq.joints.copy()
    noisy[5:15, 3] += 50.0       # the low-confidence detections are wrong; filling must ignore them
    cleaned, report = clean_low_confidence(seq.with_(joints=noisy, confidence=conf), 0.3, 10)
    np.testing.assert_allclose(cleaned.joints[5:15, 3], seq.joints[5:15, 3], atol=1e-3)
    assert (cleaned.confidence[5:15, 3] > 0).all()
    np.testing.assert_allclose(cleaned.confidence[5:15, 3], FILLED_CONFIDENCE_FACTOR * 0.9, rtol=1e-6)
    assert (cleaned.confidence[20:31, 4] == 0).all() and (cleaned.joints[20:31, 4] == 0).all()
    assert report.filled == 10 and report.still_missing == 11
    assert report.per_joint_filled[3] == 10 and report.per_joint_missing[4] == 11
    assert sum(report.per_joint_filled) == 10
    # untouched joints are unchanged
    np.testing.assert_array_equal(cleaned.joints[:, 0], seq.joints[:, 0])


def test_clean_filled_confidence_uses_lower_endpoint():
    seq = linear_2d(frames=10)
    conf = seq.confidence.copy()
    conf[2, 0], conf[3:5, 0], conf[5, 0] = 0.8, 0.0, 0.4
    cleaned, _ = clean_low_confidence(seq.with_(confidence=conf), 0.3, 10)
    np.testing.assert_allclose(cleaned.confidence[3:5, 0], FILLED_CONFIDENCE_FACTOR * 0.4)


def test_clean_leading_and_trailing_gaps_stay_missing():
    seq = linear_2d(frames=20)
    conf = seq.confidence.copy()
    conf[:3, 1] = 0.0
    conf[-2:, 2] = 0.05
    cleaned, report = clean_low_confidence(seq.with_(confidence=conf), 0.3, 10)
    assert (cleaned.confidence[:3, 1] == 0).all() and (cleaned.joints[:3, 1] == 0).all()
    assert (cleaned.confidence[-2:, 2] == 0).all() and (cleaned.joints[-2:, 2] == 0).all()
    assert report.filled == 0 and report.still_missing == 5


def test_clean_gap_of_max_gap_plus_one_not_filled():
    seq = linear_2d(frames=30)
    conf = seq.confidence.copy()
    conf[5:9, 0] = 0.0    # 4 frames
    conf[12:17, 1] = 0.0  # 5 frames
    cleaned, _ = clean_low_confidence(seq.with_(confidence=conf), 0.3, max_gap=4)
    assert (cleaned.confidence[5:9, 0] > 0).all()
    assert (cleaned.confidence[12:17, 1] == 0).all()


# -- eq. (1) ------------------------------------------------------------------------------------
def _rms(q: np.ndarray, obs: np.ndarray) -> np.ndarray:
    return np.sqrt(((q ** 2).sum(-1) * obs).sum(1) / obs.sum(1))


def test_normalize_centre_at_origin_unit_rms():
    seq = walker3d(frames=30)
    q = normalize_center_scale(seq.joints, seq.confidence, 1e-6)
    obs = seq.confidence > 0
    np.testing.assert_allclose((q[:, LEFT_HIP] + q[:, RIGHT_HIP]) / 2, 0.0, atol=1e-6)
    np.testing.assert_allclose(_rms(q, obs), 1.0, atol=1e-5)
    assert (q[:, FACE] == 0).all()


def test_normalize_matches_eq1_by_hand():
    rng = np.random.default_rng(3)
    joints = rng.normal(size=(1, NUM_JOINTS, 2)) * 40 + 300
    conf = np.ones((1, NUM_JOINTS))
    centre = (joints[0, LEFT_HIP] + joints[0, RIGHT_HIP]) / 2
    denom = np.sqrt(np.mean([np.sum((joints[0, j] - centre) ** 2) for j in range(NUM_JOINTS)])) + 1e-6
    expected = (joints[0] - centre) / denom
    np.testing.assert_allclose(normalize_center_scale(joints, conf, 1e-6)[0], expected, rtol=1e-5)


def test_normalize_invariant_to_translation_and_scale():
    seq = walker3d(frames=20)
    q = normalize_center_scale(seq.joints, seq.confidence)
    obs = seq.confidence > 0
    moved = (seq.joints * 3.7 + np.array([12.0, -4.0, 8.0])) * obs[..., None]
    np.testing.assert_allclose(normalize_center_scale(moved, seq.confidence), q, atol=1e-5)
    per_frame = seq.joints + np.random.default_rng(0).normal(size=(20, 1, 3)) * obs[..., None]
    np.testing.assert_allclose(normalize_center_scale(per_frame, seq.confidence), q, atol=1e-5)


def test_normalize_one_hip_missing_uses_other_and_both_missing_carries_centre():
    seq = walker3d(frames=6, face_missing=False)
    joints, conf = seq.joints.copy(), seq.confidence.copy()
    conf[2, LEFT_HIP] = 0.0
    joints[2, LEFT_HIP] = 0.0
    conf[4, [LEFT_HIP, RIGHT_HIP]] = 0.0
    joints[4, [LEFT_HIP, RIGHT_HIP]] = 0.0
    conf[0, [LEFT_HIP, RIGHT_HIP]] = 0.0     # leading frame: takes the next valid centre
    joints[0, [LEFT_HIP, RIGHT_HIP]] = 0.0
    centre = body_centre(joints, conf)
    np.testing.assert_allclose(centre[2], joints[2, RIGHT_HIP])
    np.testing.assert_allclose(centre[4], centre[3])
    np.testing.assert_allclose(centre[0], centre[1])
    q = normalize_center_scale(joints, conf)
    np.testing.assert_allclose(q[2, RIGHT_HIP], 0.0, atol=1e-6)
    assert (q[4, [LEFT_HIP, RIGHT_HIP]] == 0).all()
    obs = conf > 0
    np.testing.assert_allclose(_rms(q, obs), 1.0, atol=1e-5)
    off = joints[4] - centre[3]
    expected = off / (np.sqrt(((off ** 2).sum(-1) * obs[4]).sum() / obs[4].sum()) + 1e-6)
    np.testing.assert_allclose(q[4, obs[4]], expected[obs[4]], rtol=1e-5, atol=1e-6)


# -- heading -------------------------------------------------------------------------------------
@pytest.mark.parametrize("heading", [0.0, 70.0, 180.0, -115.0])
def test_align_heading_walk_goes_along_plus_z(heading):
    seq = walker3d(frames=60, heading_deg=heading, start=(2.0, 0.0, -1.0))
    out = align_heading(seq.joints, seq.confidence)
    hip = (out[:, LEFT_HIP] + out[:, RIGHT_HIP]) / 2
    travel = hip[-1] - hip[0]
    assert travel[2] > 0 and abs(travel[0]) < 1e-4 * np.linalg.norm(travel)
    np.testing.assert_allclose(out[..., 1], seq.joints[..., 1], atol=1e-5)  # heights unchanged
    d_in = np.linalg.norm(seq.joints[:, 5] - seq.joints[:, 16], axis=-1)
    np.testing.assert_allclose(np.linalg.norm(out[:, 5] - out[:, 16], axis=-1), d_in, rtol=1e-5)
    assert (out[:, FACE] == 0).all()


def test_align_heading_identity_when_already_facing_plus_z():
    seq = walker3d(frames=10, heading_deg=0.0)
    np.testing.assert_allclose(align_heading(seq.joints, seq.confidence), seq.joints, atol=1e-5)


# -- resampling ----------------------------------------------------------------------------------
def test_resample_linear_motion_down_and_up():
    seq = linear_2d(frames=61, fps=60.0)
    down = resample_fps(seq, 30.0)
    assert down.fps == 30.0 and down.num_frames == 31
    np.testing.assert_allclose(down.joints, seq.joints[::2], atol=1e-3)
    seq25 = linear_2d(frames=26, fps=25.0)
    up = resample_fps(seq25, 30.0)
    assert up.num_frames == 31
    times = np.arange(31) / 30.0
    p0 = seq25.joints[0]
    vel_per_s = (seq25.joints[1] - seq25.joints[0]) * 25.0
    np.testing.assert_allclose(up.joints, p0 + times[:, None, None] * vel_per_s, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(up.confidence, 0.9, atol=1e-6)
    assert up.metadata["source_fps"] == 25.0


def test_resample_missing_neighbour_stays_missing():
    seq = linear_2d(frames=11, fps=20.0)
    conf = seq.confidence.copy()
    conf[4, 0] = 0.0
    out = resample_fps(seq.with_(confidence=conf), 30.0)
    src = np.arange(out.num_frames) * 20.0 / 30.0
    touches = (np.floor(src) == 4) | ((np.ceil(src) == 4) & (src % 1 > 1e-6))
    assert (out.confidence[touches, 0] == 0).all() and (out.joints[touches, 0] == 0).all()
    assert (out.confidence[~touches, 0] > 0).all()


def test_resample_exact_hit_ignores_zero_weight_neighbour():
    seq = linear_2d(frames=11, fps=20.0)
    conf = seq.confidence.copy()
    conf[3, 1] = 0.0
    out = resample_fps(seq.with_(confidence=conf), 30.0)
    # output frame 3 is input frame 2 exactly (0.1 s): input frame 3 has weight 0 there
    assert out.confidence[3, 1] > 0
    np.testing.assert_allclose(out.joints[3, 1], seq.joints[2, 1], atol=1e-4)
    assert out.confidence[4, 1] == 0 and out.confidence[5, 1] == 0


def test_resample_same_fps_is_identity():
    seq = linear_2d(frames=12)
    out = resample_fps(seq, 30.0)
    np.testing.assert_array_equal(out.joints, seq.joints)
    assert out.joints is not seq.joints


# -- eq. (2) -------------------------------------------------------------------------------------
def test_windows_cover_all_frames_with_tail_window():
    t = 100
    arr = np.arange(t, dtype=np.float32)[:, None, None] * np.ones((1, 3, 2), np.float32)
    win, fmask, phase = segment_windows(arr, 32, 16)
    assert list(window_starts(t, 32, 16)) == [0, 16, 32, 48, 64, 68]
    assert win.shape == (6, 32, 3, 2) and fmask.all()
    np.testing.assert_array_equal(win[1, :, 0, 0], np.arange(16, 48))
    np.testing.assert_array_equal(win[-1, -1, 0, 0], t - 1)
    covered = np.unique(win[..., 0, 0])
    np.testing.assert_array_equal(covered, np.arange(t))
    assert np.all(np.diff(phase) > 0) and phase.min() >= 0 and phase.max() <= 1
    np.testing.assert_allclose(phase[0], 16 / 100)
    np.testing.assert_allclose(phase[-1], (68 + 16) / 100)


def test_windows_exact_fit_adds_no_extra():
    win, fmask, _ = segment_windows(np.zeros((48, 2)), 32, 16)
    assert win.shape[0] == 2 and fmask.all()


def test_short_sequence_padded_not_dropped():
    arr = np.ones((20, 17, 2))
    win, fmask, phase = segment_windows(arr, 32, 16)
    assert win.shape == (1, 32, 17, 2)
    assert fmask[0, :20].all() and not fmask[0, 20:].any()
    assert (win[0, 20:] == 0).all() and (win[0, :20] == 1).all()
    np.testing.assert_allclose(phase, [0.5])


def test_windows_bool_and_any_trailing_dims():
    arr = np.random.default_rng(0).random((50, 2, 3, 4)) > 0.5
    win, fmask, _ = segment_windows(arr, 8, 4)
    assert win.dtype == bool and win.shape[1:] == (8, 2, 3, 4)
    np.testing.assert_array_equal(win[2], arr[8:16])


def test_max_segments_keeps_evenly_spaced_first_and_last():
    t = 400
    arr = np.arange(t)[:, None]
    all_win, _, all_phase = segment_windows(arr, 32, 16)
    assert all_win.shape[0] > 16
    win, _, phase = segment_windows(arr, 32, 16, max_segments=16)
    assert win.shape[0] == 16
    assert win[0, 0, 0] == 0 and win[-1, -1, 0] == t - 1
    assert np.all(np.diff(phase) > 0)
    gaps = np.diff(win[:, 0, 0])
    assert gaps.max() - gaps.min() <= 16   # evenly spaced up to one stride of rounding


# -- velocities ----------------------------------------------------------------------------------
def test_velocity_of_linear_motion_is_constant():
    seq = linear_2d(frames=15, fps=30.0)
    v = joint_velocities(seq.joints, 30.0)
    expected = (seq.joints[1] - seq.joints[0]) * 30.0
    np.testing.assert_allclose(v, np.broadcast_to(expected, v.shape), rtol=1e-4, atol=1e-3)


def test_velocity_central_difference_of_quadratic_exact_inside():
    t = np.arange(10) / 10.0
    x = (3.0 * t ** 2)[:, None, None] * np.ones((1, 1, 2))
    v = joint_velocities(x, 10.0)
    np.testing.assert_allclose(v[1:-1, 0, 0], 6.0 * t[1:-1], atol=1e-5)


def test_velocity_missing_neighbours():
    x = (np.arange(8, dtype=float) * 2.0)[:, None, None] * np.ones((1, 2, 2))
    mask = np.ones((8, 2), bool)
    mask[4, 0] = False           # frame 3 and 5 fall back to one-sided differences, frame 4 -> 0
    mask[[0, 2], 1] = False      # frame 1 of joint 1 has no observed neighbour -> 0
    x[~mask] = 0.0
    v = joint_velocities(x, 5.0, mask)
    np.testing.assert_allclose(v[[3, 5], 0], 10.0)
    assert (v[4, 0] == 0).all() and (v[1, 1] == 0).all()
    np.testing.assert_allclose(v[4:, 1], 10.0)


# -- eq. (3) -------------------------------------------------------------------------------------
def test_adjacency_symmetric_in_unit_range_and_limits():
    g = adjacency_matrix()
    v = np.random.default_rng(1).normal(size=(5, NUM_JOINTS, 2)) * 2
    a = velocity_weighted_adjacency(v, g, 0.5, 2.0)
    assert a.shape == (5, NUM_JOINTS, NUM_JOINTS)
    np.testing.assert_allclose(a, np.swapaxes(a, -1, -2), atol=1e-7)
    assert a.min() >= 0 and a.max() <= 1
    np.testing.assert_allclose(velocity_weighted_adjacency(v, g, 1.0, 2.0), np.broadcast_to(g, a.shape))
    a0 = velocity_weighted_adjacency(v, g, 0.0, 2.0)
    d2 = ((v[0, 3] - v[0, 7]) ** 2).sum()
    np.testing.assert_allclose(a0[0, 3, 7], np.exp(-d2 / 4.0), rtol=1e-5)
    np.testing.assert_allclose(np.diagonal(a0, axis1=-2, axis2=-1), 1.0)
    same = velocity_weighted_adjacency(np.ones((NUM_JOINTS, 2)), g, 0.3, 1.0)
    np.testing.assert_allclose(same, 0.3 * g + 0.7, rtol=1e-6)


def test_adjacency_mask_removes_missing_joints_and_rejects_bad_lambda():
    g = adjacency_matrix()
    v = np.zeros((NUM_JOINTS, 2))
    mask = np.ones(NUM_JOINTS, bool)
    mask[2] = False
    a = velocity_weighted_adjacency(v, g, 0.4, 1.0, joint_mask=mask)
    np.testing.assert_allclose(a[2], 0.0)
    np.testing.assert_allclose(a[:, 2], 0.0)
    np.testing.assert_allclose(a[0, 5], 0.4 * g[0, 5] + 0.6, rtol=1e-6)
    with pytest.raises(ValueError):
        velocity_weighted_adjacency(v, g, -0.1, 1.0)
    with pytest.raises(ValueError):
        velocity_weighted_adjacency(v, g, 0.5, 0.0)


# -- the chain -----------------------------------------------------------------------------------
def test_preprocess_sequence_shapes_masks_and_normalisation():
    seq = walker3d(frames=120, fps=60.0)
    out = preprocess_sequence(seq, PreprocessConfig())
    assert isinstance(out, SegmentedSequence)
    m = out.num_segments
    assert m == len(window_starts(60, 32, 16))  # 120 frames at 60 fps -> 60 frames at 30 fps
    assert out.positions.shape == (m, 32, NUM_JOINTS, 3) == out.velocity.shape
    assert out.joint_mask.shape == (m, 32, NUM_JOINTS) and out.frame_mask.shape == (m, 32)
    assert out.positions.dtype == np.float32 and out.joint_mask.dtype == bool
    assert not out.joint_mask[..., FACE].any() and out.joint_mask[..., 5].all()
    real = out.frame_mask[..., None] & out.joint_mask
    rms = np.sqrt(((out.positions ** 2).sum(-1) * real).sum(-1) / real.sum(-1))
    np.testing.assert_allclose(rms[out.frame_mask], 1.0, atol=1e-4)
    assert (out.positions[..., FACE, :] == 0).all()
    batch = collate_segments([out, out], labels=[1, 2])
    assert batch.positions.shape[:2] == (2, m)


def test_preprocess_velocity_matches_positions():
    out = preprocess_sequence(walker3d(frames=40), PreprocessConfig())
    p, v = out.positions[0], out.velocity[0]
    np.testing.assert_allclose(v[5:-5], (p[6:-4] - p[4:-6]) * 15.0, atol=1e-4)


def test_preprocess_align_heading_makes_output_yaw_invariant():
    cfg = PreprocessConfig(align_heading=True)
    a = preprocess_sequence(walker3d(frames=50, heading_deg=0.0), cfg)
    b = preprocess_sequence(walker3d(frames=50, heading_deg=137.0, start=(4.0, 0.0, 3.0)), cfg)
    np.testing.assert_allclose(a.positions, b.positions, atol=1e-4)
    c = preprocess_sequence(walker3d(frames=50, heading_deg=137.0), PreprocessConfig())
    assert np.abs(a.positions - c.positions).max() > 0.1


def test_preprocess_short_sequence_is_padded():
    out = preprocess_sequence(linear_2d(frames=10), PreprocessConfig())
    assert out.num_segments == 1 and out.frame_mask[0].sum() == 10
    assert not out.joint_mask[0, 10:].any()


def test_preprocess_many_keeps_good_items_and_reports_bad_one():
    good = linear_2d(frames=40)
    bad = good.with_(confidence=np.full_like(good.confidence, 0.1), source="blurry.json")
    results, errors = preprocess_many([good, bad, walker3d(frames=33)], PreprocessConfig())
    assert results[0] is not None and results[2] is not None and results[1] is None
    assert errors[0] is None and errors[2] is None
    assert isinstance(errors[1], PoseDataError)
    assert str(errors[1]).startswith("blurry.json: ") and "\n" not in str(errors[1])


@pytest.mark.parametrize("fps, align, frames", [(30.0, False, 150), (25.0, True, 150), (60.0, False, 150),
                                                (30.0, False, 20)])
def test_preprocess_sequence_equals_its_documented_steps(fps, align, frames):
    """The fused chain (arrays, one window index) gives exactly what the public steps give one by one."""
    rng = np.random.default_rng(3)
    seq = walker3d(frames=frames, fps=fps, heading_deg=30.0)
    conf = seq.confidence.copy()
    conf[rng.random(conf.shape) < 0.25] = 0.1                     # short gaps to fill, long ones to keep
    conf[5:18, 9] = 0.0
    seq = seq.with_(confidence=conf)
    cfg = PreprocessConfig(align_heading=align, max_segments=4)
    cleaned, _ = clean_low_confidence(seq, cfg.min_confidence, cfg.max_gap)
    resampled = resample_fps(cleaned, cfg.target_fps)
    joints = align_heading(resampled.joints, resampled.confidence) if align else resampled.joints
    positions = normalize_center_scale(joints, resampled.confidence, cfg.eps)
    velocity = joint_velocities(positions, resampled.fps, resampled.confidence > 0)
    expected = [segment_windows(a, cfg.window_length, cfg.window_stride, cfg.max_segments)
                for a in (positions, velocity, resampled.confidence > 0)]
    out = preprocess_sequence(seq, cfg)
    for got, (want, frame_mask, phase) in zip((out.positions, out.velocity, out.joint_mask), expected):
        assert got.dtype == want.dtype and np.array_equal(got, want)
        assert np.array_equal(out.frame_mask, frame_mask) and np.array_equal(out.phase, phase)


def test_inference_windows_default_side_by_side_and_legacy_configs_keep_their_own():
    config = PreprocessConfig(window_length=24, window_stride=8)
    assert config.for_inference().window_stride == 24
    assert PreprocessConfig(inference_window_stride=4).for_inference().window_stride == 4
    legacy = PreprocessConfig.from_dict({"window_length": 24, "window_stride": 8, "removed_setting": 1})
    assert legacy.inference_window_stride == 8 and legacy.for_inference().window_stride == 8
    assert PreprocessConfig.from_dict(dataclasses.asdict(config)) == config
    with pytest.raises(ValueError, match="inference_window_stride"):
        PreprocessConfig(inference_window_stride=0)
