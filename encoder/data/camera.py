"""Virtual pinhole cameras: the benchmark's ``2d`` view of 3D takes, and 2D augmentation.

Conventions: world points in metres, Y up, right-handed; image pixels with y down and the
principal point at the image centre. A camera looks at ``target`` from
``target + distance * direction(yaw, pitch)``: yaw turns about the vertical axis (yaw 0: the
camera sits on the +Z side of the target), pitch > 0 puts the camera above the target looking down.

The ``2d`` view (BENCHMARK.md) is drawn from one generator seeded by the take's name, in this
order: yaw, pitch, the keypoint jitter (T, J, 2 standard normals), the dropout (T, J uniforms).
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from typing import Any, Sequence

import numpy as np

from encoder.data.errors import PoseDataError
from encoder.data.sequence import PoseSequence
from encoder.data.skeleton import BODY_REGIONS, JOINT_INDEX, LEFT_HIP, RIGHT_HIP

LEFT_SHOULDER, RIGHT_SHOULDER = JOINT_INDEX["left_shoulder"], JOINT_INDEX["right_shoulder"]

# Points nearer than this to the camera plane (metres along the view axis) cannot be imaged.
NEAR_PLANE_M = 0.1

# BENCHMARK.md `2d` view.
BENCHMARK_YAW_RANGE_DEG = (0.0, 360.0)
BENCHMARK_PITCH_RANGE_DEG = (-5.0, 15.0)
BENCHMARK_MIN_DISTANCE_M = 6.0
BENCHMARK_DISTANCE_FACTOR = 1.5
BENCHMARK_JITTER_FRAC = 0.01
BENCHMARK_DROP_FRACTION = 0.05


@dataclass(frozen=True)
class CameraParams:
    """A pinhole camera looking at ``target`` (metres, Y up) from ``distance`` metres away."""

    yaw_deg: float
    pitch_deg: float
    distance: float
    focal: float = 1000.0
    width: int = 1920
    height: int = 1080
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if not (np.isfinite(self.distance) and self.distance > 0):
            raise ValueError(f"camera distance must be > 0, got {self.distance}")
        if not abs(self.pitch_deg) < 89.0:
            raise ValueError(f"camera pitch must be within (-89, 89) degrees, got {self.pitch_deg}")
        if not (self.focal > 0 and self.width > 0 and self.height > 0):
            raise ValueError("focal, width and height must be > 0")
        object.__setattr__(self, "target", tuple(float(x) for x in self.target))

    @property
    def direction(self) -> np.ndarray:
        """Unit vector from the target to the camera."""
        yaw, pitch = np.radians(self.yaw_deg), np.radians(self.pitch_deg)
        return np.array([np.cos(pitch) * np.sin(yaw), np.sin(pitch), np.cos(pitch) * np.cos(yaw)])

    @property
    def position(self) -> np.ndarray:
        return np.asarray(self.target) + self.distance * self.direction

    def basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Camera axes in world coordinates: right, up, forward (forward points at the target)."""
        forward = -self.direction
        right = np.cross(forward, np.array([0.0, 1.0, 0.0]))
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        return right, up, forward

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values, for sequence metadata."""
        d = asdict(self)
        d["target"] = list(self.target)
        return d


def camera_depth(points3d: np.ndarray, params: CameraParams) -> np.ndarray:
    """Depth of each point along the camera's viewing axis, in metres: (..., 3) -> (...)."""
    _, _, forward = params.basis()
    return (np.asarray(points3d, np.float64) - params.position) @ forward


def visible_mask(points3d: np.ndarray, params: CameraParams) -> np.ndarray:
    """True where a point lies in front of the camera's near plane (``NEAR_PLANE_M``)."""
    return camera_depth(points3d, params) >= NEAR_PLANE_M


def project_points(points3d: np.ndarray, params: CameraParams,
                   valid: np.ndarray | None = None) -> np.ndarray:
    """Pinhole projection of (T, J, 3) world points to (T, J, 2) pixels (y down).

    ``valid`` (T, J) marks the points that matter (default all); the others come out as 0.
    A valid point at or behind the near plane raises ``PoseDataError``: it has no image, and
    callers that prefer to drop such points mask them first with ``visible_mask``.
    """
    pts = np.asarray(points3d, np.float64)
    if pts.shape[-1] != 3:
        raise ValueError(f"project_points needs (..., 3) points, got {pts.shape}")
    use = np.ones(pts.shape[:-1], bool) if valid is None else np.asarray(valid, bool)
    right, up, forward = params.basis()
    rel = pts - params.position
    depth = rel @ forward
    behind = use & (depth < NEAR_PLANE_M)
    if behind.any():
        raise PoseDataError("camera", f"{int(behind.sum())} points are behind the camera "
                                      f"(yaw {params.yaw_deg:.1f}, distance {params.distance:.2f} m)")
    safe_depth = np.where(use, depth, 1.0)
    u = params.width / 2.0 + params.focal * (rel @ right) / safe_depth
    v = params.height / 2.0 - params.focal * (rel @ up) / safe_depth    # image y grows downwards
    pixels = np.stack([u, v], axis=-1)
    return np.where(use[..., None], pixels, 0.0).astype(np.float32)


# -- 3D helpers ------------------------------------------------------------------------------
def _require_3d(seq: PoseSequence) -> None:
    if seq.dims != 3:
        raise PoseDataError(seq.source or seq.name or "<sequence>",
                            f"a camera view needs a 3D sequence, got {seq.dims}D")


def _mid_hip(seq: PoseSequence) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame mid-hip (one hip where the other is missing) and the frames that have one."""
    obs = seq.confidence > 0
    left, right = obs[:, LEFT_HIP], obs[:, RIGHT_HIP]
    total = seq.joints[:, LEFT_HIP] * left[:, None] + seq.joints[:, RIGHT_HIP] * right[:, None]
    count = left.astype(np.float64) + right
    return total / np.maximum(count, 1)[:, None], count > 0


def _walk_target_and_reach(seq3d: PoseSequence) -> tuple[np.ndarray, float]:
    """Mean mid-hip over frames, and the largest horizontal distance of the mid-hip from it."""
    mid, valid = _mid_hip(seq3d)
    if not valid.any():
        raise PoseDataError(seq3d.source or seq3d.name or "<sequence>",
                            "no frame has a hip joint: cannot place the camera")
    mid = mid[valid].astype(np.float64)
    target = mid.mean(axis=0)
    horizontal = mid[:, [0, 2]] - target[[0, 2]]
    return target, float(np.sqrt((horizontal ** 2).sum(axis=1)).max())


def take_rng(take_name: str) -> np.random.Generator:
    """The generator of a take's benchmark view: seeded by the SHA-256 of its name (UTF-8)."""
    return np.random.default_rng(int.from_bytes(hashlib.sha256(take_name.encode("utf-8")).digest(), "big"))


def _draw_benchmark_camera(seq3d: PoseSequence, rng: np.random.Generator) -> CameraParams:
    _require_3d(seq3d)
    target, reach = _walk_target_and_reach(seq3d)
    yaw = float(rng.uniform(*BENCHMARK_YAW_RANGE_DEG))
    pitch = float(rng.uniform(*BENCHMARK_PITCH_RANGE_DEG))
    distance = max(BENCHMARK_MIN_DISTANCE_M, BENCHMARK_DISTANCE_FACTOR * reach)
    return CameraParams(yaw_deg=yaw, pitch_deg=pitch, distance=distance, focal=1000.0,
                        width=1920, height=1080, target=tuple(target))


def benchmark_camera(seq3d: PoseSequence, take_name: str) -> CameraParams:
    """The BENCHMARK.md ``2d`` camera of one take (same name -> same camera, on every run).

    target = mean mid-hip; yaw ~ U[0, 360), pitch ~ U[-5, 15] degrees (drawn in that order from
    ``take_rng(take_name)``); distance = max(6 m, 1.5 x the largest horizontal mid-hip distance
    from the target); focal 1000 px; 1920x1080.
    """
    return _draw_benchmark_camera(seq3d, take_rng(take_name))


# -- 2D corruption ---------------------------------------------------------------------------
def bbox_heights(joints2d: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Per-frame height (pixels) of the box around the observed joints; 0 with none observed."""
    obs = confidence > 0
    y = joints2d[..., 1].astype(np.float64)
    top = np.where(obs, y, np.inf).min(axis=1)
    bottom = np.where(obs, y, -np.inf).max(axis=1)
    return np.where(obs.any(axis=1), bottom - top, 0.0)


def add_keypoint_jitter(seq2d: PoseSequence, rng: np.random.Generator,
                        sigma_frac: float = BENCHMARK_JITTER_FRAC) -> PoseSequence:
    """Gaussian keypoint noise, sigma = ``sigma_frac`` x the frame's bounding-box height.

    Draws (T, J, 2) standard normals whatever is observed (a fixed stream for a given shape);
    missing joints stay at 0.
    """
    if seq2d.dims != 2:
        raise ValueError("add_keypoint_jitter needs a 2D sequence")
    noise = rng.standard_normal(seq2d.joints.shape)
    sigma = sigma_frac * bbox_heights(seq2d.joints, seq2d.confidence)
    obs = seq2d.confidence > 0
    joints = seq2d.joints + noise * sigma[:, None, None] * obs[..., None]
    return seq2d.with_(joints=joints.astype(np.float32))


def drop_joints(seq: PoseSequence, rng: np.random.Generator,
                fraction: float = BENCHMARK_DROP_FRACTION) -> PoseSequence:
    """Drop each joint-frame independently with probability ``fraction`` (confidence 0, coords 0)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    drop = rng.random(seq.confidence.shape) < fraction
    return seq.with_(joints=np.where(drop[..., None], 0.0, seq.joints).astype(np.float32),
                     confidence=np.where(drop, 0.0, seq.confidence).astype(np.float32))


def _view_2d(seq3d: PoseSequence, params: CameraParams, extra_metadata: dict[str, Any]) -> PoseSequence:
    """Project the observed joints; ones the camera cannot see get confidence 0."""
    valid = (seq3d.confidence > 0) & visible_mask(seq3d.joints, params)
    pixels = project_points(seq3d.joints, params, valid)
    metadata = {**seq3d.metadata, **extra_metadata, "camera": params.to_dict()}
    return seq3d.with_(joints=pixels, confidence=np.where(valid, seq3d.confidence, 0.0).astype(np.float32),
                       metadata=metadata)


def benchmark_2d_view(seq3d: PoseSequence, take_name: str) -> PoseSequence:
    """The BENCHMARK.md ``2d`` view of a take: camera, projection, 1% jitter, 5% dropout.

    Everything comes from ``take_rng(take_name)``, so the view is identical on every run.
    Joints the 3D lacks keep confidence 0. Metadata records the view, the take and the camera.
    """
    rng = take_rng(take_name)
    params = _draw_benchmark_camera(seq3d, rng)
    view = _view_2d(seq3d, params, {"view": "2d", "take_name": take_name})
    view = add_keypoint_jitter(view, rng, BENCHMARK_JITTER_FRAC)
    return drop_joints(view, rng, BENCHMARK_DROP_FRACTION)



def training_view(seq: PoseSequence, view: str) -> PoseSequence:
    """The un-augmented model input in ``view``: a 3D take seen in ``2d`` goes through its benchmark camera.

    Training, evaluation and the benchmarks all call this, so a model sees one view the same way everywhere.
    """
    source = seq.source or seq.name or "<sequence>"
    if view == "2d" and seq.dims == 3:
        return benchmark_2d_view(seq, seq.name or source)
    if view == "3d" and seq.dims == 2:
        raise PoseDataError(source, "is 2D; the 3d view needs 3D sequences (use --view 2d)")
    return seq


# -- augmentation and robustness -------------------------------------------------------------
def random_camera(rng: np.random.Generator, target: Sequence[float] = (0.0, 0.0, 0.0),
                  yaw_range: tuple[float, float] = BENCHMARK_YAW_RANGE_DEG,
                  pitch_range: tuple[float, float] = BENCHMARK_PITCH_RANGE_DEG,
                  distance_range: tuple[float, float] = (6.0, 9.0),
                  focal: float = 1000.0, width: int = 1920, height: int = 1080) -> CameraParams:
    """A camera with yaw, pitch and distance drawn uniformly from the given ranges."""
    return CameraParams(yaw_deg=float(rng.uniform(*yaw_range)), pitch_deg=float(rng.uniform(*pitch_range)),
                        distance=float(rng.uniform(*distance_range)), focal=focal, width=width,
                        height=height, target=tuple(float(x) for x in target))


def random_2d_view(seq3d: PoseSequence, rng: np.random.Generator,
                   yaw_range: tuple[float, float] = BENCHMARK_YAW_RANGE_DEG,
                   pitch_range: tuple[float, float] = BENCHMARK_PITCH_RANGE_DEG,
                   distance_scale: tuple[float, float] = (1.0, 1.5),
                   jitter_frac: float = BENCHMARK_JITTER_FRAC,
                   drop_fraction: float = BENCHMARK_DROP_FRACTION) -> PoseSequence:
    """A random 2D view for training augmentation, built like the benchmark view.

    The camera aims at the mean mid-hip from the benchmark distance times a factor drawn
    log-uniformly from ``distance_scale`` (a longer lens from farther away: less perspective);
    then jitter and dropout. Points the camera cannot see get confidence 0.
    """
    _require_3d(seq3d)
    target, reach = _walk_target_and_reach(seq3d)
    base = max(BENCHMARK_MIN_DISTANCE_M, BENCHMARK_DISTANCE_FACTOR * reach)
    yaw = float(rng.uniform(*yaw_range))
    pitch = float(rng.uniform(*pitch_range))
    scale = float(np.exp(rng.uniform(np.log(distance_scale[0]), np.log(distance_scale[1]))))
    params = CameraParams(yaw_deg=yaw, pitch_deg=pitch, distance=base * scale, focal=1000.0 * scale,
                          target=tuple(float(x) for x in target))
    view = _view_2d(seq3d, params, {"view": "2d-random"})
    view = add_keypoint_jitter(view, rng, jitter_frac)
    return drop_joints(view, rng, drop_fraction)


def walker_yaw(seq3d: PoseSequence) -> float:
    """Camera yaw (degrees) that puts a camera in front of the walker: their mean facing direction.

    Facing = up x (right - left) over the hip and shoulder pairs, summed over frames (Y up,
    right-handed); 0 when no pair is ever seen.
    """
    _require_3d(seq3d)
    obs = seq3d.confidence > 0
    joints = seq3d.joints.astype(np.float64)
    facing = np.zeros(2)
    for left, right in ((LEFT_HIP, RIGHT_HIP), (LEFT_SHOULDER, RIGHT_SHOULDER)):
        seen = obs[:, left] & obs[:, right]
        across = joints[seen, right] - joints[seen, left]
        facing += np.stack([across[:, 2], -across[:, 0]], axis=-1).sum(axis=0)
    if np.hypot(*facing) <= 1e-9:
        return 0.0
    return float(np.degrees(np.arctan2(facing[0], facing[1])) % 360.0)


def placed_camera(seq3d: PoseSequence, azimuth_deg: float, pitch_deg: float,
                  focal: float = 1000.0) -> CameraParams:
    """A camera placed relative to the walker: ``azimuth_deg`` 0 in front, 90 beside, 180 behind.

    It aims at the mean mid-hip from the benchmark distance, moved back in proportion to the
    focal length beyond 1000 px (a longer lens from farther away keeps the person's size).
    """
    target, reach = _walk_target_and_reach(seq3d)
    base = max(BENCHMARK_MIN_DISTANCE_M, BENCHMARK_DISTANCE_FACTOR * reach)
    return CameraParams(yaw_deg=(walker_yaw(seq3d) + azimuth_deg) % 360.0, pitch_deg=pitch_deg,
                        distance=base * max(1.0, focal / 1000.0), focal=focal,
                        target=tuple(float(x) for x in target))


def camera_2d_view(seq3d: PoseSequence, params: CameraParams, rng: np.random.Generator,
                   jitter_frac: float = BENCHMARK_JITTER_FRAC,
                   drop_fraction: float = BENCHMARK_DROP_FRACTION) -> PoseSequence:
    """A 3D take seen through ``params``, with the benchmark's jitter and dropout drawn from ``rng``."""
    _require_3d(seq3d)
    view = _view_2d(seq3d, params, {"view": "2d-placed"})
    view = add_keypoint_jitter(view, rng, jitter_frac)
    return drop_joints(view, rng, drop_fraction)


def shift_camera(params: CameraParams, yaw_deg: float = 0.0, pitch_deg: float = 0.0,
                 distance_scale: float = 1.0,
                 target_offset: Sequence[float] = (0.0, 0.0, 0.0)) -> CameraParams:
    """The same camera moved: yaw/pitch added (degrees), distance scaled, target shifted (m)."""
    target = tuple(float(a) + float(b) for a, b in zip(params.target, target_offset))
    return replace(params, yaw_deg=(params.yaw_deg + yaw_deg) % 360.0, pitch_deg=params.pitch_deg + pitch_deg,
                   distance=params.distance * distance_scale, target=target)


def occlude(seq: PoseSequence, rng: np.random.Generator, joints: str | Sequence[int] = "left_arm",
            frame_fraction: float = 0.3) -> PoseSequence:
    """Hide some joints over one contiguous run of frames (an occluder passing by).

    ``joints`` is a ``BODY_REGIONS`` name or joint indices; the run covers ``frame_fraction``
    of the frames at a random start. Hidden joints get confidence 0 and coordinates 0.
    """
    if not 0.0 <= frame_fraction <= 1.0:
        raise ValueError(f"frame_fraction must be in [0, 1], got {frame_fraction}")
    if isinstance(joints, str):
        if joints not in BODY_REGIONS:
            raise ValueError(f"unknown body region {joints!r}; known: {sorted(BODY_REGIONS)}")
        idx = np.asarray(BODY_REGIONS[joints], np.int64)
    else:
        idx = np.asarray(list(joints), np.int64)
    t = seq.num_frames
    run = int(round(frame_fraction * t))
    start = int(rng.integers(0, t - run + 1))
    hidden = np.zeros(seq.confidence.shape, bool)
    hidden[start:start + run, idx] = True
    return seq.with_(joints=np.where(hidden[..., None], 0.0, seq.joints).astype(np.float32),
                     confidence=np.where(hidden, 0.0, seq.confidence).astype(np.float32))
