"""Hand-made motion statistics of a take, and a learned embedding with them appended.

The statistics (per joint and coordinate: mean and std of the eq. (1) centre/scale-normalised
joints, mean |velocity| and velocity std) are BENCHMARK.md's hand-made floor. A learned encoder
trained on 4 styles ranks the 3 it never saw worse than these statistics do on some choices of
styles; the two together rank them better than either (docs/benchmarks/encoder_experiments.md),
so an encoder appends them (``TrainConfig.motion_statistics_weight``, ``DEFAULT_WEIGHT`` unless
set; the encoder bench measures every run both ways). The floor computes them from the take as
given (``motion_statistics``); an encoder from its own preprocessing output, which already holds
the normalised joints and their velocities (``preprocess_sequence(..., with_statistics=True)``), so
appending them costs a few reductions, not a second pass over the take.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from encoder.data.sequence import PoseSequence

# The statistics' share of the appended embedding: probed on one open-set checkpoint's held-out
# takes (docs/benchmarks/encoder_experiments.md, session 20); the training default.
DEFAULT_WEIGHT = 0.25
# What an encoder's statistics are computed from: its preprocessing output (gaps filled, resampled),
# or the take as given (``RAW``, how checkpoints of 2026-12-03 session 20 computed them).
PREPROCESSED, RAW = "preprocessed", "raw"
INPUT_KINDS = (PREPROCESSED, RAW)


def statistics_of(positions: np.ndarray, velocity: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Per joint and coordinate: mean, std, mean |velocity| and velocity std over the observed frames
    of (T, J, C) eq. (1)-normalised positions and their velocities; (4 * J * C,) float64."""
    mask = np.asarray(observed)[..., None].astype(np.float64)
    count = np.maximum(mask.sum(0), 1.0)
    feats = []
    for values in (np.asarray(positions, np.float64), np.asarray(velocity, np.float64)):
        mean = (values * mask).sum(0) / count
        std = np.sqrt(((values - mean) ** 2 * mask).sum(0) / count)
        if len(feats):
            mean = (np.abs(values) * mask).sum(0) / count
        feats += [mean, std]
    return np.concatenate([f.ravel() for f in feats])


def motion_statistics(seq: PoseSequence) -> np.ndarray:
    """``statistics_of`` the take as given (observed frames only): BENCHMARK.md's hand-made features."""
    from encoder.data.preprocess import joint_velocities, normalize_center_scale

    observed = seq.confidence > 0
    joints = normalize_center_scale(seq.joints, seq.confidence)
    return statistics_of(joints, joint_velocities(joints, seq.fps, observed), observed)


def append_motion_statistics(embeddings: np.ndarray, standardised: np.ndarray, weight: float) -> np.ndarray:
    """Rows of L2-normalised embeddings followed by ``weight`` x standardised statistics / sqrt(F).

    ``standardised``: the statistics already z-scored on a reference set (the training takes).
    Dividing by sqrt(F) gives the statistics part an expected squared norm of 1, the embedding's, so
    ``weight`` alone sets how much of a distance each part contributes.
    """
    from sklearn.preprocessing import normalize

    emb = np.asarray(embeddings, dtype=np.float64)
    stats = np.asarray(standardised, dtype=np.float64)
    if emb.ndim != 2 or stats.ndim != 2 or emb.shape[0] != stats.shape[0]:
        raise ValueError(f"embeddings {emb.shape} and statistics {stats.shape} must be (N, D) and (N, F)")
    return np.hstack([normalize(emb), weight * stats / np.sqrt(stats.shape[1])])


@dataclass(frozen=True)
class MotionStatisticsScaler:
    """How an encoder appends the statistics: the z-scoring fitted on its training takes and the weight."""

    weight: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    inputs: str = PREPROCESSED          # one of INPUT_KINDS

    def __post_init__(self) -> None:
        if self.inputs not in INPUT_KINDS:
            raise ValueError(f"motion statistics inputs must be one of {INPUT_KINDS}, got {self.inputs!r}")

    @classmethod
    def fit(cls, statistics: np.ndarray, weight: float, inputs: str = PREPROCESSED) -> "MotionStatisticsScaler":
        """Fit the z-scoring on (N, F) statistics of reference takes (a constant feature keeps scale 1)."""
        from sklearn.preprocessing import StandardScaler

        if weight < 0:
            raise ValueError(f"motion statistics weight must be >= 0, got {weight}")
        scaler = StandardScaler().fit(np.asarray(statistics, dtype=np.float64))
        return cls(float(weight), tuple(float(v) for v in scaler.mean_), tuple(float(v) for v in scaler.scale_),
                   inputs)

    @property
    def num_features(self) -> int:
        return len(self.mean)

    def append(self, embeddings: np.ndarray, statistics: np.ndarray) -> np.ndarray:
        """``append_motion_statistics`` of (N, D) embeddings and the (N, F) raw statistics of the same takes."""
        stats = np.asarray(statistics, dtype=np.float64)
        if stats.ndim != 2 or stats.shape[1] != self.num_features:
            raise ValueError(f"statistics must be (N, {self.num_features}), got {stats.shape}")
        standardised = (stats - np.asarray(self.mean)) / np.asarray(self.scale)
        return append_motion_statistics(embeddings, standardised, self.weight)

    def to_dict(self) -> dict[str, Any]:
        return {"weight": self.weight, "mean": list(self.mean), "scale": list(self.scale), "inputs": self.inputs}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "MotionStatisticsScaler":
        """The scaler a checkpoint stored (one written before ``inputs`` existed computed them ``RAW``)."""
        mean, scale = tuple(float(v) for v in values["mean"]), tuple(float(v) for v in values["scale"])
        if len(mean) != len(scale) or not all(v > 0 for v in scale):
            raise ValueError("motion statistics need as many positive scales as means")
        return cls(float(values["weight"]), mean, scale, values.get("inputs", RAW))
