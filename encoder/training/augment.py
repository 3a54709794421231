"""Training augmentations: each returns a new ``PoseSequence`` with the same style label.

- ``mirror_sequence``: left/right mirror. Joints swap sides (``MIRROR_PERMUTATION``) and the
  x coordinate is reflected about the body centre (the mean mid-hip x over the take): for 2D
  this is a horizontally flipped video, for 3D the mirror image of the capture in the world
  plane x = centre. Mirroring twice gives the input back.
- ``change_tempo``: playback ``factor`` times faster (0.8-1.2 typical), same frame rate.
- ``random_view`` (3D source -> 2D): a random virtual camera (``camera.random_2d_view``).
- ``add_keypoint_jitter`` / ``drop_joints`` come from ``encoder.data.camera``.

``make_variants`` draws K augmented copies of one sequence. The trainer precomputes them once
(see ``AugmentConfig``) because every copy needs the full preprocessing chain.
"""
from __future__ import annotations

import hashlib

import numpy as np

from encoder.data.camera import add_keypoint_jitter, drop_joints, random_2d_view, training_view
from encoder.data.errors import PoseDataError
from encoder.data.preprocess import resample_fps
from encoder.data.sequence import PoseSequence
from encoder.data.skeleton import LEFT_HIP, MIRROR_PERMUTATION, RIGHT_HIP
from encoder.training.config import AugmentConfig


def _source(seq: PoseSequence) -> str:
    return seq.source or seq.name or "<sequence>"


def body_centre_x(seq: PoseSequence) -> float:
    """Mean x of the mid-hip over the frames where a hip is seen (all observed joints if none)."""
    obs = seq.confidence > 0
    hips = obs[:, [LEFT_HIP, RIGHT_HIP]]
    if hips.any():
        return float(seq.joints[:, [LEFT_HIP, RIGHT_HIP], 0][hips].mean())
    if obs.any():
        return float(seq.joints[..., 0][obs].mean())
    raise PoseDataError(_source(seq), "no observed joint: cannot mirror")


def mirror_sequence(seq: PoseSequence) -> PoseSequence:
    """Left/right mirror: swap joint sides and reflect x about the body centre (missing stay 0)."""
    perm = np.asarray(MIRROR_PERMUTATION)
    centre = body_centre_x(seq)
    joints = seq.joints[:, perm].astype(np.float64)
    conf = seq.confidence[:, perm]
    joints[..., 0] = 2.0 * centre - joints[..., 0]
    joints = np.where(conf[..., None] > 0, joints, 0.0)
    metadata = {**seq.metadata, "mirrored": not bool(seq.metadata.get("mirrored", False))}
    return seq.with_(joints=joints.astype(np.float32), confidence=conf.copy(), metadata=metadata)


def change_tempo(seq: PoseSequence, factor: float) -> PoseSequence:
    """Play the motion ``factor`` times faster (>1: fewer frames) at the same frame rate.

    Implemented as: pretend the take was recorded at ``factor x fps``, then resample back to
    ``fps`` (linear interpolation; a joint missing at either neighbour stays missing).
    """
    if not (np.isfinite(factor) and factor > 0):
        raise ValueError(f"tempo factor must be > 0, got {factor}")
    fps = float(seq.fps)
    faster = seq.with_(fps=fps * factor)
    out = resample_fps(faster, fps)
    return out.with_(metadata={**seq.metadata, "tempo": float(factor) * float(seq.metadata.get("tempo", 1.0))})


def variant_rng(name: str, seed: int) -> np.random.Generator:
    """Generator of a sequence's augmented copies: from the augmentation seed and its name only."""
    digest = hashlib.sha256(f"{seed}:{name}".encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


def random_clip(seq: PoseSequence, rng: np.random.Generator, min_seconds: float) -> PoseSequence:
    """A random contiguous clip lasting between ``min_seconds`` and the whole take."""
    shortest = max(2, int(round(min_seconds * seq.fps)))
    if seq.num_frames <= shortest:
        return seq
    length = int(rng.integers(shortest, seq.num_frames + 1))
    start = int(rng.integers(0, seq.num_frames - length + 1))
    return seq.with_(joints=seq.joints[start:start + length].copy(),
                     confidence=seq.confidence[start:start + length].copy())


def turn_along_arc(seq: PoseSequence, total_degrees: float) -> PoseSequence:
    """A 3D sequence (Y up) turned about the vertical axis through its first observed mid-hip by an
    angle growing linearly from 0 to ``total_degrees`` over the take: its path bends into an arc
    and the body turns with it, as in a turning walk."""
    joints = seq.joints.astype(np.float64)
    hips = (seq.confidence[:, LEFT_HIP] > 0) & (seq.confidence[:, RIGHT_HIP] > 0)
    if seq.dims != 3 or not hips.any() or seq.num_frames < 2:
        return seq
    first = int(np.argmax(hips))
    centre = (joints[first, LEFT_HIP] + joints[first, RIGHT_HIP]) / 2.0
    angle = np.radians(total_degrees) * np.arange(seq.num_frames) / (seq.num_frames - 1)
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x, z = joints[..., 0] - centre[0], joints[..., 2] - centre[2]
    turned = joints.copy()
    turned[..., 0] = centre[0] + cos * x + sin * z
    turned[..., 2] = centre[2] - sin * x + cos * z
    return seq.with_(joints=turned.astype(seq.joints.dtype))


def augment_once(seq: PoseSequence, cfg: AugmentConfig, view: str, rng: np.random.Generator) -> PoseSequence:
    """One augmented copy of an original (un-projected) sequence, in the training view.

    Order: clip, tempo, mirror, turn (in the source space), then the view (random camera for a 3D
    source seen in 2D, when enabled), then jitter and joint dropout at strengths drawn per copy.
    """
    out = seq
    if cfg.crop and rng.random() < cfg.crop_prob:
        out = random_clip(out, rng, cfg.crop_min_seconds)
    if cfg.tempo:
        out = change_tempo(out, float(rng.uniform(*cfg.tempo_range)))
    if cfg.mirror and rng.random() < cfg.mirror_prob:
        out = mirror_sequence(out)
    if cfg.turn and out.dims == 3 and rng.random() < cfg.turn_prob:
        out = turn_along_arc(out, float(rng.uniform(-cfg.turn_max_degrees, cfg.turn_max_degrees)))
    jitter_frac = float(rng.uniform(cfg.jitter_frac, cfg.jitter_max_frac)) if cfg.jitter else 0.0
    dropout = float(rng.uniform(cfg.dropout_rate, cfg.dropout_max_rate)) if cfg.joint_dropout else 0.0
    if out.dims == 3 and view == "2d":
        if cfg.random_view:
            return random_2d_view(out, rng, pitch_range=cfg.pitch_range,
                                  distance_scale=cfg.distance_scale_range,
                                  jitter_frac=jitter_frac, drop_fraction=dropout)
        return training_view(out, view)         # its fixed benchmark camera, jitter and dropout
    if jitter_frac > 0:
        out = _jitter_3d(out, rng, jitter_frac) if out.dims == 3 else add_keypoint_jitter(out, rng, jitter_frac)
    if dropout > 0:
        out = drop_joints(out, rng, dropout)
    return out


def _jitter_3d(seq: PoseSequence, rng: np.random.Generator, sigma_frac: float) -> PoseSequence:
    """Gaussian noise on 3D joints, sigma = ``sigma_frac`` x the frame's vertical extent (Y up)."""
    obs = seq.confidence > 0
    y = seq.joints[..., 1].astype(np.float64)
    height = np.where(obs.any(axis=1),
                      np.where(obs, y, -np.inf).max(axis=1) - np.where(obs, y, np.inf).min(axis=1), 0.0)
    noise = rng.standard_normal(seq.joints.shape) * (sigma_frac * height)[:, None, None] * obs[..., None]
    return seq.with_(joints=(seq.joints + noise).astype(np.float32))


def make_variants(seq: PoseSequence, cfg: AugmentConfig, view: str) -> list[PoseSequence]:
    """The K = ``cfg.variants`` augmented copies of ``seq`` (none when augmentation is off).

    Drawn from ``variant_rng(name, cfg.seed)``: the same copies for every training seed.
    """
    if not cfg.active:
        return []
    rng = variant_rng(seq.name or seq.content_hash(), cfg.seed)
    return [augment_once(seq, cfg, view, rng) for _ in range(cfg.variants)]
