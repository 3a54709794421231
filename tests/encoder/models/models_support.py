"""Helpers for the model tests: small structured pose batches built directly as arrays.

Batches are made from ``SegmentedSequence`` arrays (no preprocessing code involved): a walker
whose joints oscillate with a class-dependent rhythm and amplitude pattern, cut into windows
of 32 frames with stride 16, velocities by finite differences at 30 fps.
"""
from __future__ import annotations

import numpy as np

from encoder.data.batch import PoseBatch, SegmentedSequence, collate_segments
from encoder.data.skeleton import BODY_REGIONS, NUM_JOINTS

WINDOW, STRIDE, FPS = 32, 16, 30.0

# Tiny settings per registered model, so every test runs in well under a second.
TINY_CONFIGS: dict[str, dict] = {
    "posestyle_net": {"branch_channels": (8, 12, 16), "relation_dim": 16, "num_relation_layers": 2,
                      "embedding_dim": 16, "dropout": 0.0},
    "st_mlp": {"frame_hidden": 16, "window_hidden": 16, "embedding_dim": 16, "dropout": 0.0},
    "pose_transformer": {"d_model": 16, "num_heads": 2, "num_layers": 1, "ff_dim": 32,
                         "num_sequence_layers": 1, "embedding_dim": 16, "dropout": 0.0},
    "gait_relationnet": {"joint_channels": 8, "pair_dim": 8, "relation_dim": 16, "embedding_dim": 16, "dropout": 0.0},
    "stgcn": {"channels": (8, 12, 16), "strides": (1, 2, 1), "embedding_dim": 16, "dropout": 0.0},
    "temporal_cnn": {"channels": 16, "embedding_dim": 16, "dropout": 0.0},
    "gaitheat": {"map_height": 16, "map_width": 12, "channels": (4, 4, 8), "hpm_bins": (1, 2),
                 "embedding_dim": 12, "dropout": 0.0},
    "gaitmm": {"map_height": 16, "map_width": 12, "channels": (4, 4, 8), "parts": 2, "embedding_dim": 8,
               "dropout": 0.0},
    "hstl": {"map_height": 16, "map_width": 12, "channels": (4, 4, 8), "embedding_dim": 14, "dropout": 0.0},
}

# Per class: oscillation frequency (Hz) and which body regions swing (amplitude per region).
_CLASS_MOTION = (
    (0.9, {"left_arm": 0.5, "right_arm": 0.5, "left_leg": 0.1, "right_leg": 0.1}),
    (1.6, {"left_leg": 0.5, "right_leg": 0.5, "torso": 0.05}),
    (1.2, {"torso": 0.3, "head": 0.3, "left_arm": 0.1, "right_arm": 0.1}),
)


def make_sequence(seed: int, num_segments: int = 3, dims: int = 2, style: int = 0,
                  missing: float = 0.0, padded_frames: int = 0) -> SegmentedSequence:
    """A structured walk of class ``style`` cut into ``num_segments`` windows.

    ``missing``: fraction of joint-frames dropped (mask False, coordinates left as garbage so
    a test notices if they leak). ``padded_frames``: trailing frames of the last window that
    are padding (frame_mask False, zeros), as for a sequence shorter than its windows.
    """
    rng = np.random.default_rng(seed)
    frames = WINDOW + STRIDE * (num_segments - 1)
    t = np.arange(frames) / FPS
    freq, amplitudes = _CLASS_MOTION[style]
    freq *= rng.uniform(0.9, 1.1)
    rest = rng.normal(0.0, 0.6, (NUM_JOINTS, dims))
    joints = np.repeat(rest[None], frames, axis=0)
    for region, amp in amplitudes.items():
        for j in BODY_REGIONS[region]:
            phase = rng.uniform(0, 2 * np.pi)
            joints[:, j, :] += amp * rng.uniform(0.8, 1.2) * np.sin(2 * np.pi * freq * t + phase)[:, None]
    joints += rng.normal(0.0, 0.02, joints.shape)
    velocity = np.gradient(joints, axis=0) * FPS
    starts = np.arange(num_segments) * STRIDE
    positions = np.stack([joints[s:s + WINDOW] for s in starts]).astype(np.float32)
    vel = np.stack([velocity[s:s + WINDOW] for s in starts]).astype(np.float32)
    joint_mask = rng.random(positions.shape[:3]) >= missing
    frame_mask = np.ones(positions.shape[:2], bool)
    if padded_frames:
        frame_mask[-1, WINDOW - padded_frames:] = False
        positions[-1, WINDOW - padded_frames:] = 0.0
        vel[-1, WINDOW - padded_frames:] = 0.0
        joint_mask[-1, WINDOW - padded_frames:] = False
    garbage = rng.normal(0.0, 50.0, positions.shape).astype(np.float32)
    positions = np.where(joint_mask[..., None] | ~frame_mask[..., None, None], positions, garbage)
    phase = ((starts + WINDOW / 2) / frames).astype(np.float32)
    return SegmentedSequence(positions, vel, joint_mask, frame_mask, phase)


def make_batch(n: int, seed: int = 0, dims: int = 2, segments: tuple[int, int] = (2, 4),
               missing: float = 0.1) -> PoseBatch:
    """n sequences of the three classes in turn (labels 0, 1, 2, 0...), mixed lengths and gaps."""
    rng = np.random.default_rng(seed)
    items, labels = [], []
    for i in range(n):
        style = i % len(_CLASS_MOTION)
        items.append(make_sequence(seed * 1000 + i, int(rng.integers(segments[0], segments[1] + 1)),
                                   dims, style, missing, padded_frames=int(rng.integers(0, 8))))
        labels.append(style)
    return collate_segments(items, labels)


def tiny_config(name: str, **overrides) -> dict:
    """The tiny test config of model ``name`` with ``overrides``."""
    return {**TINY_CONFIGS[name], **overrides}
