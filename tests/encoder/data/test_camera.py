"""Tests of the virtual cameras: projection geometry, the benchmark `2d` view, corruption helpers."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from encoder.data.camera import (
    CameraParams,
    add_keypoint_jitter,
    bbox_heights,
    benchmark_2d_view,
    benchmark_camera,
    camera_depth,
    drop_joints,
    occlude,
    project_points,
    random_2d_view,
    random_camera,
    shift_camera,
    take_rng,
    visible_mask,
)
from encoder.data.errors import PoseDataError
from encoder.data.sequence import PoseSequence
from encoder.data.skeleton import BODY_REGIONS, JOINT_INDEX, LEFT_HIP, NUM_JOINTS, RIGHT_HIP

FACE = [JOINT_INDEX[n] for n in ("left_eye", "right_eye", "left_ear", "right_ear")]


def walker3d(frames: int = 60, speed: float = 1.3, heading_deg: float = 30.0,
             start=(1.0, 0.0, -2.0)) -> PoseSequence:
    """A 1.7 m figure walking straight; face joints missing as in mocap (metres, Y up)."""
    rng = np.random.default_rng(0)
    theta = np.radians(heading_deg)
    forward = np.array([np.sin(theta), 0.0, np.cos(theta)])
    right = np.cross(forward, [0.0, 1.0, 0.0])
    lateral = np.array([0, 0, 0, 0, 0, -.2, .2, -.22, .22, -.24, .24, -.1, .1, -.1, .1, -.1, .1])
    height = np.array([1.6, 1.65, 1.65, 1.62, 1.62, 1.4, 1.4, 1.1, 1.1, .85, .85, .9, .9, .5, .5, .1, .1])
    t = np.arange(frames) / 30.0
    along = speed * t[:, None] + 0.05 * rng.normal(size=(frames, NUM_JOINTS))
    joints = (np.asarray(start) + lateral[None, :, None] * right + height[None, :, None] * np.array([0, 1.0, 0])
              + along[..., None] * forward)
    conf = np.ones((frames, NUM_JOINTS))
    conf[:, FACE] = 0.0
    joints[:, FACE] = 0.0
    return PoseSequence(joints, conf, fps=30.0, name="take", source="take.bvh")


def flat_2d(frames: int, heights: np.ndarray) -> PoseSequence:
    """2D joints spread vertically over a known per-frame box height (pixels)."""
    frac = np.linspace(0.0, 1.0, NUM_JOINTS)
    joints = np.zeros((frames, NUM_JOINTS, 2))
    joints[..., 0] = 900.0 + 10 * np.arange(NUM_JOINTS)
    joints[..., 1] = 200.0 + heights[:, None] * frac[None, :]
    return PoseSequence(joints, np.ones((frames, NUM_JOINTS)), fps=30.0, name="flat")


# -- projection geometry -------------------------------------------------------------------------
@pytest.mark.parametrize("yaw,pitch", [(0, 0), (73, 10), (200, -5), (359, 15)])
def test_target_projects_to_image_centre(yaw, pitch):
    cam = CameraParams(yaw_deg=yaw, pitch_deg=pitch, distance=7.0, target=(1.0, 0.9, -3.0))
    px = project_points(np.array([[[1.0, 0.9, -3.0]]]), cam)
    np.testing.assert_allclose(px[0, 0], [960.0, 540.0], atol=1e-3)
    np.testing.assert_allclose(camera_depth(np.array([1.0, 0.9, -3.0]), cam), 7.0, atol=1e-9)


@pytest.mark.parametrize("yaw,pitch", [(0, 0), (120, 12), (250, -4)])
def test_point_above_target_projects_above_centre(yaw, pitch):
    cam = CameraParams(yaw_deg=yaw, pitch_deg=pitch, distance=6.0)
    px = project_points(np.array([[[0.0, 0.0, 0.0], [0.0, 0.5, 0.0]]]), cam)
    assert px[0, 1, 1] < px[0, 0, 1]          # image y grows downwards
    np.testing.assert_allclose(px[0, 1, 0], 960.0, atol=1e-3)


def test_known_geometry_front_camera():
    # yaw 0, pitch 0: camera on +Z looking towards -Z, so world +X is image right.
    cam = CameraParams(yaw_deg=0.0, pitch_deg=0.0, distance=5.0)
    np.testing.assert_allclose(cam.position, [0.0, 0.0, 5.0], atol=1e-12)
    px = project_points(np.array([[[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [1.0, 0.0, -5.0]]]), cam)
    np.testing.assert_allclose(px[0, 0], [960.0 + 1000.0 / 5.0, 540.0], atol=1e-3)
    np.testing.assert_allclose(px[0, 1], [960.0, 540.0 + 1000.0 / 5.0], atol=1e-3)
    np.testing.assert_allclose(px[0, 2], [960.0 + 1000.0 / 10.0, 540.0], atol=1e-3)  # twice as deep


def test_positive_pitch_camera_is_above():
    cam = CameraParams(yaw_deg=40.0, pitch_deg=10.0, distance=6.0, target=(0.0, 1.0, 0.0))
    assert cam.position[1] > 1.0
    np.testing.assert_allclose(np.linalg.norm(cam.position - np.array([0, 1.0, 0])), 6.0)


def test_doubling_distance_halves_offsets():
    base = CameraParams(yaw_deg=33.0, pitch_deg=8.0, distance=6.0, target=(0.5, 1.0, 2.0))
    right, up, _ = base.basis()
    pts = np.array([[base.target + 0.4 * right - 0.3 * up, base.target + 0.2 * up]])
    near = project_points(pts, base) - np.array([960.0, 540.0])
    far = project_points(pts, shift_camera(base, distance_scale=2.0)) - np.array([960.0, 540.0])
    np.testing.assert_allclose(far, near / 2.0, atol=1e-3)
    assert np.linalg.norm(near, axis=-1).min() > 10


def test_behind_camera_raises_unless_masked():
    cam = CameraParams(yaw_deg=0.0, pitch_deg=0.0, distance=5.0)
    pts = np.array([[[0.0, 0.0, 0.0], [0.0, 0.0, 6.0]]])   # second point is behind the camera
    with pytest.raises(PoseDataError, match="behind the camera"):
        project_points(pts, cam)
    vis = visible_mask(pts, cam)
    assert vis.tolist() == [[True, False]]
    px = project_points(pts, cam, valid=vis)
    assert (px[0, 1] == 0).all()


def test_camera_params_validation():
    with pytest.raises(ValueError):
        CameraParams(yaw_deg=0.0, pitch_deg=0.0, distance=0.0)
    with pytest.raises(ValueError):
        CameraParams(yaw_deg=0.0, pitch_deg=90.0, distance=5.0)


# -- the benchmark view --------------------------------------------------------------------------
def test_benchmark_camera_follows_protocol():
    seq = walker3d(frames=60)
    cam = benchmark_camera(seq, "dataset-2_walk_normal_001")
    rng = np.random.default_rng(int(hashlib.sha256(b"dataset-2_walk_normal_001").hexdigest(), 16))
    assert cam.yaw_deg == rng.uniform(0.0, 360.0)
    assert cam.pitch_deg == rng.uniform(-5.0, 15.0)
    mid = (seq.joints[:, LEFT_HIP] + seq.joints[:, RIGHT_HIP]) / 2
    np.testing.assert_allclose(cam.target, mid.mean(axis=0), atol=1e-5)
    assert (cam.focal, cam.width, cam.height) == (1000.0, 1920, 1080)
    assert cam.distance == 6.0   # a 2.6 m walk: the 6 m floor applies


def test_benchmark_distance_grows_with_long_walk():
    seq = walker3d(frames=300, speed=2.0)   # ~20 m straight: reach ~10 m from the middle
    cam = benchmark_camera(seq, "long")
    mid = (seq.joints[:, LEFT_HIP] + seq.joints[:, RIGHT_HIP]) / 2
    reach = np.linalg.norm((mid - mid.mean(0))[:, [0, 2]], axis=1).max()
    assert reach > 4.5
    np.testing.assert_allclose(cam.distance, 1.5 * reach, rtol=1e-5)
    assert visible_mask(seq.joints[:, [0, 5, 11, 15]], cam).all()


def test_benchmark_parameter_ranges_over_many_names():
    seq = walker3d(frames=20)
    cams = [benchmark_camera(seq, f"dataset-2_walk_style_{i:03d}") for i in range(300)]
    yaw = np.array([c.yaw_deg for c in cams])
    pitch = np.array([c.pitch_deg for c in cams])
    assert yaw.min() >= 0 and yaw.max() < 360 and pitch.min() >= -5 and pitch.max() <= 15
    assert abs(yaw.mean() - 180) < 30 and abs(pitch.mean() - 5) < 1.5   # uniform: sd of mean ~6 and ~0.33
    assert np.histogram(yaw, bins=4, range=(0, 360))[0].min() > 40
    assert len(set(np.round(yaw, 6))) == 300


def test_benchmark_view_is_deterministic_per_take():
    seq = walker3d(frames=45)
    a = benchmark_2d_view(seq, "dataset-2_walk_active_003")
    b = benchmark_2d_view(seq, "dataset-2_walk_active_003")
    np.testing.assert_array_equal(a.joints, b.joints)
    np.testing.assert_array_equal(a.confidence, b.confidence)
    c = benchmark_2d_view(seq, "dataset-2_walk_active_004")
    assert a.metadata["camera"] != c.metadata["camera"]
    assert np.abs(a.joints - c.joints).max() > 1.0
    assert a.metadata["camera"] == benchmark_camera(seq, "dataset-2_walk_active_003").to_dict()
    assert a.metadata["view"] == "2d" and a.metadata["take_name"] == "dataset-2_walk_active_003"


def test_take_rng_is_name_seeded():
    x = take_rng("abc").random(3)
    np.testing.assert_array_equal(x, take_rng("abc").random(3))
    assert not np.array_equal(x, take_rng("abd").random(3))


def test_benchmark_view_contents():
    seq = walker3d(frames=600, speed=0.2)   # a 4 m walk: camera at the 6 m floor
    view = benchmark_2d_view(seq, "dataset-2_run_feminine_010")
    assert view.dims == 2 and view.num_frames == 600 and view.fps == 30.0
    assert view.name == seq.name and view.source == seq.source
    assert (view.confidence[:, FACE] == 0).all() and (view.joints[:, FACE] == 0).all()
    observed = seq.confidence > 0
    dropped = (view.confidence == 0) & observed
    frac = dropped.sum() / observed.sum()
    assert abs(frac - 0.05) < 0.01            # 7800 joint-frames: sd of the fraction ~0.0025
    # kept points sit near their clean projection (jitter ~1% of a ~250 px person)
    cam = benchmark_camera(seq, "dataset-2_run_feminine_010")
    clean = project_points(seq.joints, cam, valid=observed)
    kept = view.confidence > 0
    err = np.linalg.norm(view.joints[kept] - clean[kept], axis=-1)
    height = bbox_heights(clean, seq.confidence)
    assert 100 < height.mean() < 400
    assert 0 < np.median(err) < 0.03 * height.mean()


def test_benchmark_view_refuses_2d_input():
    seq2d = flat_2d(5, np.full(5, 100.0))
    with pytest.raises(PoseDataError, match="3D"):
        benchmark_2d_view(seq2d, "x")


def test_projected_person_height_matches_pinhole_scale():
    seq = walker3d(frames=2, speed=0.0)
    cam = CameraParams(yaw_deg=90.0, pitch_deg=0.0, distance=8.5,
                       target=tuple((seq.joints[0, LEFT_HIP] + seq.joints[0, RIGHT_HIP]) / 2))
    px = project_points(seq.joints, cam, valid=seq.confidence > 0)
    height = bbox_heights(px, seq.confidence)
    np.testing.assert_allclose(height, 1000.0 * 1.5 / 8.5, rtol=0.05)   # nose 1.6 m to ankle 0.1 m


# -- corruption helpers --------------------------------------------------------------------------
def test_jitter_std_is_one_percent_of_box_height():
    heights = np.linspace(100.0, 500.0, 400)
    seq = flat_2d(400, heights)
    out = add_keypoint_jitter(seq, np.random.default_rng(5), sigma_frac=0.01)
    z = (out.joints - seq.joints) / (0.01 * heights)[:, None, None]
    assert abs(z.std() - 1.0) < 0.03 and abs(z.mean()) < 0.03   # 13600 samples
    tall = (out.joints - seq.joints)[heights > 400].std()
    short = (out.joints - seq.joints)[heights < 200].std()
    assert tall > 2.0 * short


def test_jitter_ignores_missing_joints():
    seq = flat_2d(10, np.full(10, 200.0))
    conf = seq.confidence.copy()
    conf[:, 3] = 0.0
    joints = seq.joints.copy()
    joints[:, 3] = 0.0
    out = add_keypoint_jitter(seq.with_(joints=joints, confidence=conf), np.random.default_rng(0))
    assert (out.joints[:, 3] == 0).all()
    assert np.abs(out.joints[:, 4] - joints[:, 4]).max() > 0


def test_drop_joints_fraction():
    seq = flat_2d(500, np.full(500, 200.0))
    out = drop_joints(seq, np.random.default_rng(1), fraction=0.05)
    dropped = out.confidence == 0
    assert abs(dropped.mean() - 0.05) < 0.01
    assert (out.joints[dropped] == 0).all()
    np.testing.assert_array_equal(out.joints[~dropped], seq.joints[~dropped])


def test_random_camera_and_view():
    rng = np.random.default_rng(2)
    cams = [random_camera(rng, yaw_range=(10, 20), pitch_range=(0, 5), distance_range=(7, 8))
            for _ in range(50)]
    assert all(10 <= c.yaw_deg <= 20 and 0 <= c.pitch_deg <= 5 and 7 <= c.distance <= 8 for c in cams)
    seq = walker3d(frames=30)
    v1 = random_2d_view(seq, np.random.default_rng(3))
    v2 = random_2d_view(seq, np.random.default_rng(4))
    assert v1.dims == 2 and v1.metadata["camera"] != v2.metadata["camera"]
    assert (v1.confidence[:, FACE] == 0).all()
    assert v1.metadata["camera"]["distance"] >= 6.0


def test_shift_camera():
    cam = CameraParams(yaw_deg=350.0, pitch_deg=5.0, distance=6.0, target=(1.0, 1.0, 1.0))
    moved = shift_camera(cam, yaw_deg=20.0, pitch_deg=-3.0, distance_scale=1.5, target_offset=(0, 0.5, 0))
    assert moved.yaw_deg == pytest.approx(10.0) and moved.pitch_deg == pytest.approx(2.0)
    assert moved.distance == pytest.approx(9.0) and moved.target == (1.0, 1.5, 1.0)
    assert cam.distance == 6.0


def test_occlude_hides_region_over_contiguous_run():
    seq = flat_2d(100, np.full(100, 200.0))
    out = occlude(seq, np.random.default_rng(7), joints="right_arm", frame_fraction=0.3)
    hidden = out.confidence == 0
    region = list(BODY_REGIONS["right_arm"])
    assert not hidden[:, [j for j in range(NUM_JOINTS) if j not in region]].any()
    frames = np.flatnonzero(hidden[:, region[0]])
    assert len(frames) == 30 and np.all(np.diff(frames) == 1)
    assert (hidden[frames][:, region]).all() and (out.joints[hidden] == 0).all()
    with pytest.raises(ValueError):
        occlude(seq, np.random.default_rng(0), joints="tail")


# -- real data -----------------------------------------------------------------------------------
DATA_DIR = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "bandai-namco-motion-2"


@pytest.mark.slow
@pytest.mark.realdata
def test_benchmark_view_of_real_takes_keeps_walker_in_frame():
    if not (DATA_DIR / "data").is_dir():
        pytest.skip("shared data absent")
    from encoder.data import readers
    from encoder.data.preprocess import PreprocessConfig, preprocess_sequence
    paths = sorted((DATA_DIR / "data").glob("dataset-2_*.bvh"))[::120][:8]
    assert paths
    for path in paths:
        seq = readers.read_bvh(path)
        view = benchmark_2d_view(seq, path.stem)
        assert view.metadata["camera"]["distance"] >= 6.0
        kept = view.confidence > 0
        assert abs(1 - kept.sum() / (seq.confidence > 0).sum() - 0.05) < 0.03
        x, y = view.joints[..., 0][kept], view.joints[..., 1][kept]
        assert ((x >= 0) & (x <= 1920) & (y >= 0) & (y <= 1080)).mean() > 0.99
        assert 80 < bbox_heights(view.joints, view.confidence).mean() < 500
        assert preprocess_sequence(view, PreprocessConfig()).num_segments >= 1
