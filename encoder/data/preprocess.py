"""Pose sequence construction (paper section 3.1): cleaning, resampling, eq. (1)-(3), windows.

The chain ``preprocess_sequence`` runs, each step its own function:

1. ``clean_low_confidence``: low-confidence joints become missing; short gaps are filled by
   linear interpolation through time.
2. ``resample_fps``: one common frame rate, so windows of L frames cover the same duration.
3. ``align_heading`` (3D only, optional): one rotation about the vertical axis so the walker
   faces +Z on average.
4. ``normalize_center_scale``: eq. (1), centre on the mid-hip and divide by the RMS joint radius.
5. ``joint_velocities``: finite differences per second of the normalised joints (the V of eq. 3).
6. ``segment_windows``: eq. (2), windows of L frames every Δ frames, with masks and phase.

``velocity_weighted_adjacency`` (eq. 3) is the NumPy reference of the pose graph the models build.
Missing joints carry confidence 0 and coordinates 0 throughout (``PoseSequence`` convention).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Iterable, Mapping

import numpy as np
from tqdm import tqdm

from encoder.data.batch import SegmentedSequence
from encoder.data.errors import PoseDataError
from encoder.data.motion_statistics import statistics_of
from encoder.data.sequence import PoseSequence
from encoder.data.skeleton import JOINT_INDEX, LEFT_HIP, MIRROR_PERMUTATION, RIGHT_HIP

LEFT_SHOULDER, RIGHT_SHOULDER = JOINT_INDEX["left_shoulder"], JOINT_INDEX["right_shoulder"]

# Confidence given to an interpolated point: this factor times the lower of the two observed
# endpoints. It stays > 0 (the point counts as observed) but marks the point as less certain
# than either measurement it came from.
FILLED_CONFIDENCE_FACTOR = 0.5


@dataclass(frozen=True)
class PreprocessConfig:
    """Settings of the preprocessing chain (defaults: the paper's setting on 30 fps runway video).

    - ``max_segments``: a long sequence keeps this many evenly spaced windows, so the cost of
      one sequence (memory of a batch, encoder time) is bounded whatever its length, while the
      kept windows still cover the whole walk from first to last frame.
    - ``graph_sigma`` (normalised units per second): the velocity scale of eq. (3). On the
      Bandai-Namco walks the median pairwise joint-velocity difference after eq. (1) is about
      1.7 units/s (2.6 for runs; quartiles about 0.8 and 3.1 for walks), so sigma = 2 spreads
      the dynamic term over (0, 1) for typical joint pairs (0.5 at a 1.7 units/s difference)
      instead of saturating it near 0 (sigma = 1 gives 0.05 at the median).
    - ``max_gap`` is counted in frames of the input, before resampling.
    - ``window_stride``: the eq. (2) step between training (and validation) windows.
      ``inference_window_stride``: the step when an encoder embeds (search, indexing, evaluation);
      None is ``window_length``, windows side by side. Overlapping windows at inference cost twice
      the model time for the same ranking (docs/benchmarks/encoder_experiments.md: 5 seeds each of
      ST-GCN and PoseStyle-Net, accuracy and gallery P@5 within seed noise).
    """

    target_fps: float = 30.0
    window_length: int = 32
    window_stride: int = 16
    inference_window_stride: int | None = None
    max_segments: int = 16
    min_confidence: float = 0.3
    max_gap: int = 10
    align_heading: bool = False
    graph_lambda: float = 0.5
    graph_sigma: float = 2.0
    eps: float = 1e-6

    def __post_init__(self) -> None:
        if not (np.isfinite(self.target_fps) and self.target_fps > 0):
            raise ValueError(f"target_fps must be > 0, got {self.target_fps}")
        if self.window_length < 1 or self.window_stride < 1 or self.max_segments < 1:
            raise ValueError("window_length, window_stride and max_segments must be >= 1")
        if self.inference_window_stride is not None and self.inference_window_stride < 1:
            raise ValueError(f"inference_window_stride must be >= 1, got {self.inference_window_stride}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence}")
        if self.max_gap < 0:
            raise ValueError(f"max_gap must be >= 0, got {self.max_gap}")
        if not 0.0 <= self.graph_lambda <= 1.0:
            raise ValueError(f"graph_lambda must be in [0, 1], got {self.graph_lambda}")
        if not self.graph_sigma > 0 or not self.eps > 0:
            raise ValueError("graph_sigma and eps must be > 0")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> PreprocessConfig:
        """The config a checkpoint recorded (unknown keys ignored). A checkpoint written before
        ``inference_window_stride`` existed embedded with its training windows, and still does."""
        known = {f.name for f in fields(cls)}
        kept = {k: v for k, v in values.items() if k in known}
        if "inference_window_stride" not in values:
            kept["inference_window_stride"] = kept.get("window_stride", cls.window_stride)
        return cls(**kept)

    def for_inference(self) -> PreprocessConfig:
        """This config with the inference windows as ``window_stride`` (what an encoder embeds with)."""
        stride = self.window_length if self.inference_window_stride is None else self.inference_window_stride
        return replace(self, window_stride=stride)


@dataclass(frozen=True)
class CleaningReport:
    """What ``clean_low_confidence`` did: counts of joint-frames filled and still missing."""

    filled: int
    still_missing: int
    per_joint_filled: tuple[int, ...] = field(default_factory=tuple)
    per_joint_missing: tuple[int, ...] = field(default_factory=tuple)


# -- 1. cleaning ---------------------------------------------------------------------------
def _neighbour_observed(observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each (t, j): index of the last observed frame <= t (-1 if none) and the next >= t (T if none)."""
    t = observed.shape[0]
    frames = np.arange(t)[:, None]
    prev_idx = np.maximum.accumulate(np.where(observed, frames, -1), axis=0)
    next_idx = np.minimum.accumulate(np.where(observed, frames, t)[::-1], axis=0)[::-1]
    return prev_idx, next_idx


def clean_low_confidence(seq: PoseSequence, min_confidence: float,
                         max_gap: int) -> tuple[PoseSequence, CleaningReport]:
    """Treat joints below ``min_confidence`` as missing and fill short gaps by linear interpolation.

    A gap of at most ``max_gap`` consecutive missing frames with an observed frame on both sides
    is filled linearly between those two frames; the filled confidence is
    ``FILLED_CONFIDENCE_FACTOR`` x the lower endpoint confidence. Longer gaps and gaps at the
    start or end stay missing (confidence 0, coordinates 0).
    """
    joints, conf, observed, fill = _fill_short_gaps(seq.joints, seq.confidence, min_confidence, max_gap)
    missing = ~observed & ~fill
    report = CleaningReport(
        filled=int(fill.sum()), still_missing=int(missing.sum()),
        per_joint_filled=tuple(int(x) for x in fill.sum(axis=0)),
        per_joint_missing=tuple(int(x) for x in missing.sum(axis=0)),
    )
    return seq.with_(joints=joints, confidence=conf), report


def _fill_short_gaps(joints: np.ndarray, conf: np.ndarray, min_confidence: float,
                     max_gap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``clean_low_confidence`` on arrays: cleaned joints and confidence (float32), observed and filled masks."""
    observed = (conf >= min_confidence) & (conf > 0)
    if observed.all():                      # nothing to fill (motion capture, most clean tracks)
        return (joints.astype(np.float32), conf.astype(np.float32), observed, np.zeros_like(observed))
    prev_idx, next_idx = _neighbour_observed(observed)
    t_count = observed.shape[0]
    gap = next_idx - prev_idx - 1
    fill = ~observed & (prev_idx >= 0) & (next_idx < t_count) & (gap <= max_gap)

    cleaned = np.where(observed[..., None], joints, np.float32(0.0))
    new_conf = np.where(observed, conf, np.float32(0.0))
    frame, joint = np.nonzero(fill)                               # only the filled points are computed
    if frame.size:
        before, after = prev_idx[frame, joint], next_idx[frame, joint]
        weight = ((frame - before) / (after - before))[:, None]   # in (0, 1)
        p0 = joints[before, joint].astype(np.float64)
        p1 = joints[after, joint].astype(np.float64)
        cleaned[frame, joint] = (1.0 - weight) * p0 + weight * p1
        new_conf[frame, joint] = FILLED_CONFIDENCE_FACTOR * np.minimum(conf[before, joint], conf[after, joint])
    return cleaned.astype(np.float32, copy=False), new_conf.astype(np.float32, copy=False), observed, fill


# -- 2. resampling -------------------------------------------------------------------------
def resample_fps(seq: PoseSequence, target_fps: float) -> PoseSequence:
    """Linearly resample coordinates and confidence in time to ``target_fps``.

    Output frame k is at time k / target_fps, up to the last input frame's time. A joint
    missing at either of the two input frames it is interpolated from stays missing (a
    neighbour with interpolation weight 0 does not count).
    """
    if not (np.isfinite(target_fps) and target_fps > 0):
        raise ValueError(f"target_fps must be > 0, got {target_fps}")
    if abs(seq.fps - target_fps) <= 1e-9 * target_fps:
        return seq.with_(joints=seq.joints.copy(), confidence=seq.confidence.copy())
    t_in = seq.num_frames
    t_out = int(np.floor((t_in - 1) * target_fps / seq.fps + 1e-9)) + 1
    src = np.arange(t_out, dtype=np.float64) * (seq.fps / target_fps)
    near = np.round(src)
    src = np.where(np.abs(src - near) < 1e-6, near, src)          # exact hits stay exact
    i0 = np.clip(np.floor(src).astype(np.int64), 0, t_in - 1)
    i1 = np.minimum(i0 + 1, t_in - 1)
    w = (src - i0)[:, None]                                        # (T_out, 1)

    j0, j1 = seq.joints[i0].astype(np.float64), seq.joints[i1].astype(np.float64)
    c0, c1 = seq.confidence[i0].astype(np.float64), seq.confidence[i1].astype(np.float64)
    missing = (c0 <= 0) | ((c1 <= 0) & (w > 0))
    joints = (1.0 - w[..., None]) * j0 + w[..., None] * j1
    conf = (1.0 - w) * c0 + w * c1
    joints = np.where(missing[..., None], 0.0, joints)
    conf = np.where(missing, 0.0, conf)
    metadata = {**seq.metadata, "source_fps": float(seq.metadata.get("source_fps", seq.fps))}
    return seq.with_(joints=joints.astype(np.float32), confidence=conf.astype(np.float32),
                     fps=float(target_fps), metadata=metadata)


# -- 3. heading (3D) -------------------------------------------------------------------------
def _mean_facing(joints3d: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Mean horizontal facing direction (x, z): up x (right - left) of hips and shoulders."""
    total = np.zeros(2)
    for left, right in ((LEFT_HIP, RIGHT_HIP), (LEFT_SHOULDER, RIGHT_SHOULDER)):
        both = observed[:, left] & observed[:, right]
        across = joints3d[both, right] - joints3d[both, left]      # left -> right vector
        # up x v with up = (0, 1, 0): (v_z, 0, -v_x) in a right-handed, Y-up frame
        facing = np.stack([across[:, 2], -across[:, 0]], axis=-1)
        total += facing.sum(axis=0)
    return total


def align_heading(joints3d: np.ndarray, confidence: np.ndarray | None = None) -> np.ndarray:
    """Rotate a 3D sequence about the vertical (Y) axis so its mean facing direction is +Z.

    Facing = up x (right - left) from the hip and shoulder pairs (right-handed, Y up), averaged
    over frames and both pairs, horizontal part only. One rotation for the whole sequence, about
    the world Y axis through the origin; nothing is translated (eq. (1) centres afterwards).
    Missing joints (coordinates 0) stay 0. Without any usable pair the input is returned as is.
    """
    joints3d = np.asarray(joints3d, dtype=np.float64)
    if joints3d.ndim != 3 or joints3d.shape[-1] != 3:
        raise ValueError(f"align_heading needs (T, J, 3) joints, got {joints3d.shape}")
    observed = np.ones(joints3d.shape[:2], bool) if confidence is None else np.asarray(confidence) > 0
    fx, fz = _mean_facing(joints3d, observed)
    if np.hypot(fx, fz) < 1e-12:
        return joints3d.astype(np.float32)
    heading = np.arctan2(fx, fz)                                  # angle of facing from +Z
    c, s = np.cos(-heading), np.sin(-heading)
    rotation = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])   # about Y by -heading
    return (joints3d @ rotation.T).astype(np.float32)


# -- 4. eq. (1) ------------------------------------------------------------------------------
def _fill_missing_rows(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Carry the last valid row forward (and the first valid row backward over a leading gap)."""
    t = values.shape[0]
    idx = np.where(valid, np.arange(t), -1)
    idx = np.maximum.accumulate(idx)
    first = int(np.argmax(valid))
    idx = np.where(idx < 0, first, idx)
    return values[idx]


def body_centre(joints: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Per-frame centre C_t of eq. (1): the mid-hip, from one hip if the other is missing.

    Frames without either hip carry the last (or, before the first, the next) valid centre. A
    sequence with no hip at all uses the mean of the observed joints per frame instead.
    """
    observed = confidence > 0
    left, right = observed[:, LEFT_HIP], observed[:, RIGHT_HIP]
    hip_sum = (joints[:, LEFT_HIP] * left[:, None] + joints[:, RIGHT_HIP] * right[:, None])
    hip_count = left.astype(np.float64) + right
    valid = hip_count > 0
    if valid.any():
        centre = hip_sum / np.maximum(hip_count, 1)[:, None]
    else:
        count = observed.sum(axis=1)
        centre = (joints * observed[..., None]).sum(axis=1) / np.maximum(count, 1)[:, None]
        valid = count > 0
        if not valid.any():
            return np.zeros((joints.shape[0], joints.shape[2]))
    return _fill_missing_rows(centre, valid)


def normalize_center_scale(joints: np.ndarray, confidence: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Eq. (1): centre each frame on the mid-hip and divide by the RMS joint distance from it.

    The RMS runs over the joints observed in that frame (confidence > 0); missing joints stay 0.
    """
    joints = np.asarray(joints, dtype=np.float64)
    observed = np.asarray(confidence) > 0
    centre = body_centre(joints, confidence)[:, None, :]                      # C_t
    offset = joints - centre                                                  # P_t - C_t
    sq = (offset ** 2).sum(axis=-1) * observed
    rms = np.sqrt(sq.sum(axis=1) / np.maximum(observed.sum(axis=1), 1))
    normalised = offset / (rms + eps)[:, None, None]                          # eq. (1)
    return np.where(observed[..., None], normalised, 0.0).astype(np.float32)


# -- 5. velocities ---------------------------------------------------------------------------
def joint_velocities(joints: np.ndarray, fps: float, mask: np.ndarray | None = None) -> np.ndarray:
    """Per-joint velocity in units per second: central differences, one-sided at the ends.

    Where a joint is missing in a neighbour a central difference would use, the one-sided
    difference with the other (observed) neighbour is used, as at a sequence end; with no
    observed neighbour, or where the joint itself is missing, the velocity is 0.
    """
    joints = np.asarray(joints, dtype=np.float64)
    t = joints.shape[0]
    obs = np.ones(joints.shape[:2], bool) if mask is None else np.asarray(mask, bool)
    velocity = np.zeros_like(joints)
    if t < 2:
        return velocity.astype(np.float32)
    back = np.zeros_like(joints)
    back[1:] = (joints[1:] - joints[:-1]) * fps
    back_ok = np.zeros_like(obs)
    back_ok[1:] = obs[1:] & obs[:-1]
    fwd = np.zeros_like(joints)
    fwd[:-1] = (joints[1:] - joints[:-1]) * fps
    fwd_ok = np.zeros_like(obs)
    fwd_ok[:-1] = obs[:-1] & obs[1:]
    central_ok = back_ok & fwd_ok
    velocity = np.where(fwd_ok[..., None], fwd, velocity)
    velocity = np.where(back_ok[..., None], back, velocity)
    velocity = np.where(central_ok[..., None], 0.5 * (back + fwd), velocity)
    return velocity.astype(np.float32)


# -- eq. (3) ---------------------------------------------------------------------------------
def velocity_weighted_adjacency(velocity: np.ndarray, skeleton_adjacency: np.ndarray,
                                lam: float, sigma: float,
                                joint_mask: np.ndarray | None = None) -> np.ndarray:
    """Eq. (3): per-frame pose graph mixing the skeleton prior G with velocity similarity.

    ``velocity`` (..., J, C) -> (..., J, J). With ``joint_mask`` (..., J), a pair involving a
    missing joint gets no edge (A = 0): a missing joint has nothing to pass on. This is the
    reference of ``posestyle_net.pose_graph``, which row-normalises it over the observed joints.
    """
    if not 0.0 <= lam <= 1.0 or not sigma > 0:
        raise ValueError(f"need 0 <= lam <= 1 and sigma > 0, got lam={lam}, sigma={sigma}")
    v = np.asarray(velocity, dtype=np.float64)
    g = np.asarray(skeleton_adjacency, dtype=np.float64)
    diff_sq = ((v[..., :, None, :] - v[..., None, :, :]) ** 2).sum(axis=-1)
    graph = lam * g + (1.0 - lam) * np.exp(-diff_sq / sigma ** 2)               # eq. (3)
    if joint_mask is not None:
        m = np.asarray(joint_mask, bool)
        graph = graph * (m[..., :, None] & m[..., None, :])
    return graph.astype(np.float32)


# -- 6. eq. (2) ------------------------------------------------------------------------------
def window_starts(num_frames: int, length: int, stride: int) -> np.ndarray:
    """Start frames of eq. (2) windows: 0, Δ, 2Δ, ... plus one aligned to the end for the tail."""
    if num_frames <= length:
        return np.zeros(1, np.int64)
    starts = np.arange(0, num_frames - length + 1, stride, dtype=np.int64)
    if starts[-1] + length < num_frames:
        starts = np.append(starts, num_frames - length)
    return starts


def segment_windows(array: np.ndarray, length: int, stride: int,
                    max_segments: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eq. (2): cut (T, ...) into windows (M, L, ...), with frame_mask (M, L) and phase (M,).

    S_m = [Q_{(m-1)Δ+1} ... Q_{(m-1)Δ+L}] (0-based starts 0, Δ, 2Δ, ...). When the last full
    window stops before the end, one more window aligned to the last frame is added so no frame
    is lost. A sequence shorter than L gives one window, zero-padded, with frame_mask False on
    the padding. phase = window centre / T in [0, 1]. With ``max_segments``, a longer list is
    thinned to that many evenly spaced windows (first and last kept).
    """
    array = np.asarray(array)
    frame_idx, frame_mask, phase = _window_frames(array.shape[0], length, stride, max_segments)
    return _gather_windows(array, frame_idx, frame_mask), frame_mask, phase


def _window_frames(t: int, length: int, stride: int,
                   max_segments: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eq. (2) windows of a ``t``-frame sequence: frame index (M, L), frame_mask (M, L), phase (M,)."""
    if length < 1 or stride < 1:
        raise ValueError(f"window length and stride must be >= 1, got {length}, {stride}")
    if t < 1:
        raise ValueError("segment_windows: empty sequence")
    starts = window_starts(t, length, stride)
    if max_segments is not None and len(starts) > max_segments:
        keep = np.round(np.linspace(0, len(starts) - 1, max_segments)).astype(np.int64)
        starts = starts[keep]
    frame_idx = starts[:, None] + np.arange(length)[None, :]                  # eq. (2), (M, L)
    frame_mask = frame_idx < t
    real = np.minimum(length, t)
    phase = ((starts + real / 2.0) / t).astype(np.float32)
    return np.minimum(frame_idx, t - 1), frame_mask, phase


def _gather_windows(array: np.ndarray, frame_idx: np.ndarray, frame_mask: np.ndarray) -> np.ndarray:
    """(T, ...) -> (M, L, ...) at ``frame_idx``, zero where ``frame_mask`` is False."""
    windows = array[frame_idx]
    if not frame_mask.all():
        windows[~frame_mask] = 0
    return windows


# -- the chain -------------------------------------------------------------------------------
def preprocess_sequence(seq: PoseSequence, cfg: PreprocessConfig = PreprocessConfig(),
                        with_statistics: bool = False) -> SegmentedSequence:
    """Clean -> resample -> (heading, 3D) -> eq. (1) -> velocities -> eq. (2) windows; with
    ``with_statistics``, also the motion statistics of the whole normalised take (``statistics_of``).

    Raises ``PoseDataError`` when no joint survives cleaning.
    """
    source = seq.source or seq.name or "<sequence>"
    joints, confidence, _, _ = _fill_short_gaps(seq.joints, seq.confidence, cfg.min_confidence, cfg.max_gap)
    if not (confidence > 0).any():
        raise PoseDataError(source, f"no joint observed with confidence >= {cfg.min_confidence}")
    fps = seq.fps
    if abs(fps - cfg.target_fps) > 1e-9 * cfg.target_fps:       # resample_fps would copy at the same rate
        resampled = resample_fps(seq.with_(joints=joints, confidence=confidence), cfg.target_fps)
        joints, confidence, fps = resampled.joints, resampled.confidence, resampled.fps
    joint_mask = confidence > 0
    if not joint_mask.any():
        raise PoseDataError(source, "no joint left observed after resampling to "
                                    f"{cfg.target_fps:g} fps")
    if cfg.align_heading and seq.dims == 3:
        joints = align_heading(joints, confidence)
    positions = normalize_center_scale(joints, confidence, cfg.eps)
    velocity = joint_velocities(positions, fps, joint_mask)
    frame_idx, frame_mask, phase = _window_frames(positions.shape[0], cfg.window_length, cfg.window_stride,
                                                  cfg.max_segments)
    return SegmentedSequence(positions=_gather_windows(positions, frame_idx, frame_mask),
                             velocity=_gather_windows(velocity, frame_idx, frame_mask),
                             joint_mask=_gather_windows(joint_mask, frame_idx, frame_mask),
                             frame_mask=frame_mask, phase=phase,
                             statistics=statistics_of(positions, velocity, joint_mask) if with_statistics else None)


def mirror_segments(item: SegmentedSequence) -> SegmentedSequence:
    """The left/right mirror of a preprocessed sequence (test-time mirror averaging).

    After eq. (1) the joints are centred on the mid-hip, which a mirror maps onto itself, so
    mirroring the input and preprocessing equals swapping joint sides and negating x here.
    """
    perm = np.asarray(MIRROR_PERMUTATION)
    flip = np.ones(item.positions.shape[-1], np.float32)
    flip[0] = -1.0
    return SegmentedSequence(positions=item.positions[..., perm, :] * flip,
                             velocity=item.velocity[..., perm, :] * flip,
                             joint_mask=item.joint_mask[..., perm], frame_mask=item.frame_mask,
                             phase=item.phase)


def preprocess_many(seqs: Iterable[PoseSequence], cfg: PreprocessConfig = PreprocessConfig(),
                    progress: bool = False,
                    ) -> tuple[list[SegmentedSequence | None], list[PoseDataError | None]]:
    """Preprocess each sequence; a bad one does not lose the others.

    Returns two lists aligned with the input: the result (None where it failed) and the error
    (None where it succeeded), each error a one-line ``PoseDataError`` naming the sequence.
    """
    items = list(seqs)
    results: list[SegmentedSequence | None] = []
    errors: list[PoseDataError | None] = []
    iterator: Iterable[PoseSequence] = items
    if progress:
        iterator = tqdm(items, desc="preprocess", unit="seq")
    for seq in iterator:
        try:
            results.append(preprocess_sequence(seq, cfg))
            errors.append(None)
        except PoseDataError as err:
            results.append(None)
            errors.append(err)
        except Exception as err:  # one bad item must not lose the batch; reported, not hidden
            results.append(None)
            errors.append(PoseDataError(seq.source or seq.name or "<sequence>",
                                        f"{type(err).__name__}: {err}"))
    if progress:
        failed = sum(e is not None for e in errors)
        tqdm.write(f"preprocessed {len(items) - failed}/{len(items)} sequences, {failed} failed")
    return results, errors
