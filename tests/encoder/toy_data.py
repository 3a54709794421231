"""Toy style data for the training / checkpoint / inference / evaluation / benchmark tests.

Three "styles" of a COCO-17 figure walking along +Z: they differ in gait frequency, arm-swing
amplitude and lateral sway, with per-sequence random variation, so a small model separates them
after a few epochs. Sequences are short (2-3 s at 30 fps) to keep every test fast.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from encoder.data.sequence import PoseSequence
from encoder.data.skeleton import JOINT_INDEX, NUM_JOINTS

if TYPE_CHECKING:
    from encoder.training import TrainConfig

TOY_STYLES: dict[str, dict[str, float]] = {
    "slow_wide": {"freq": 0.8, "arm": 0.45, "sway": 0.02},
    "fast_tight": {"freq": 1.8, "arm": 0.12, "sway": 0.01},
    "swaying": {"freq": 1.2, "arm": 0.25, "sway": 0.12},
}

# Rest pose (x: left, y: up, z: forward; metres), before motion.
_REST = {
    "nose": (0.0, 1.65, 0.08), "left_eye": (0.03, 1.68, 0.07), "right_eye": (-0.03, 1.68, 0.07),
    "left_ear": (0.08, 1.66, 0.0), "right_ear": (-0.08, 1.66, 0.0),
    "left_shoulder": (0.2, 1.45, 0.0), "right_shoulder": (-0.2, 1.45, 0.0),
    "left_elbow": (0.23, 1.15, 0.0), "right_elbow": (-0.23, 1.15, 0.0),
    "left_wrist": (0.25, 0.88, 0.0), "right_wrist": (-0.25, 0.88, 0.0),
    "left_hip": (0.1, 0.95, 0.0), "right_hip": (-0.1, 0.95, 0.0),
    "left_knee": (0.1, 0.5, 0.0), "right_knee": (-0.1, 0.5, 0.0),
    "left_ankle": (0.1, 0.08, 0.0), "right_ankle": (-0.1, 0.08, 0.0),
}
REST_POSE = np.array([_REST[name] for name in sorted(_REST, key=JOINT_INDEX.__getitem__)], np.float64)


def toy_walk(style: str, rng: np.random.Generator, dims: int = 2, frames: int = 75, fps: float = 30.0,
             name: str = "") -> PoseSequence:
    """One toy walk of ``style``: 3D in metres (Y up), or 2D pixels (y down) of a side-ish view."""
    p = TOY_STYLES[style]
    freq = p["freq"] * rng.uniform(0.9, 1.1)
    arm = p["arm"] * rng.uniform(0.85, 1.15)
    sway = p["sway"] * rng.uniform(0.8, 1.2)
    phase0 = rng.uniform(0, 2 * np.pi)
    t = np.arange(frames) / fps
    w = 2 * np.pi * freq * t + phase0
    joints = np.repeat(REST_POSE[None], frames, axis=0).copy()
    j = JOINT_INDEX
    for side, sign in (("left", 1.0), ("right", -1.0)):
        joints[:, j[f"{side}_wrist"], 2] += sign * arm * np.sin(w)
        joints[:, j[f"{side}_elbow"], 2] += sign * 0.5 * arm * np.sin(w)
        joints[:, j[f"{side}_ankle"], 2] -= sign * 0.35 * np.sin(w)
        joints[:, j[f"{side}_knee"], 2] -= sign * 0.18 * np.sin(w)
        joints[:, j[f"{side}_ankle"], 1] += 0.06 * np.clip(np.sin(w + sign * np.pi / 2), 0, None)
    joints[:, :, 0] += sway * np.sin(w / 2)[:, None]
    joints[:, :, 1] += 0.02 * np.cos(2 * w)[:, None]
    joints[:, :, 2] += (0.6 + freq * 0.5) * t[:, None]                      # walking forward
    joints += rng.normal(scale=0.005, size=joints.shape)
    if dims == 3:
        coords = joints
    else:                                                                     # camera on the +X side
        coords = np.stack([960 + 300 * joints[..., 2] - 150, 1000 - 300 * joints[..., 1]], axis=-1)
    return PoseSequence(joints=coords.astype(np.float32), confidence=np.ones((frames, NUM_JOINTS), np.float32),
                        fps=fps, name=name, source=f"toy/{name}", label=style)


def toy_corpus(n_per_style: int, dims: int = 2, seed: int = 0, frames: int = 75) -> list[PoseSequence]:
    """``n_per_style`` walks of each toy style, names ``{style}_{i:03d}``, interleaved by style."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_per_style):
        for style in TOY_STYLES:
            out.append(toy_walk(style, rng, dims, frames + int(rng.integers(0, 16)), name=f"{style}_{i:03d}"))
    return out


TINY_MODEL_CONFIG = {"branch_channels": [8, 16, 16], "relation_dim": 32, "embedding_dim": 16,
                     "num_relation_layers": 1, "dropout": 0.0}


def tiny_train_config(**overrides) -> "TrainConfig":
    """A fast training config for the toy data (one torch thread: tests share the CPU); the model's
    embedding alone (the appended motion statistics, on by default, have their own tests)."""
    from encoder.training import TrainConfig

    base = {"model": "posestyle_net", "model_config": TINY_MODEL_CONFIG, "epochs": 25, "batch_size": 6,
            "lr": 5e-3, "warmup_epochs": 1, "patience": 25, "seed": 0, "progress": False, "num_threads": 1,
            "augment": {"variants": 1}, "motion_statistics_weight": 0.0}
    return TrainConfig.from_dict(base).with_overrides(overrides)
