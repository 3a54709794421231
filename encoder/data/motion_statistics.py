"""Hand-made motion statistics of a take, and a learned embedding with them appended.

The statistics (per joint and coordinate: mean and std of the eq. (1) centre/scale-normalised
joints, mean |velocity| and velocity std) are BENCHMARK.md's hand-made floor. A learned encoder
trained on 4 styles ranks the 3 it never saw worse than these statistics do on some choices of
styles; the two together rank them better than either (docs/benchmarks/encoder_experiments.md),
so the encoder bench measures the learned embedding with the statistics appended as well.
"""
from __future__ import annotations

import numpy as np

from encoder.data.sequence import PoseSequence


def motion_statistics(seq: PoseSequence) -> np.ndarray:
    """Per joint and coordinate: mean, std, mean |velocity| and velocity std (observed frames only)."""
    from encoder.data.preprocess import joint_velocities, normalize_center_scale

    observed = seq.confidence > 0
    joints = normalize_center_scale(seq.joints, seq.confidence)
    vel = joint_velocities(joints, seq.fps, observed)
    mask = observed[..., None].astype(np.float64)
    count = np.maximum(mask.sum(0), 1.0)
    feats = []
    for values in (joints, vel):
        mean = (values * mask).sum(0) / count
        std = np.sqrt(((values - mean) ** 2 * mask).sum(0) / count)
        if values is vel:
            mean = (np.abs(values) * mask).sum(0) / count
        feats += [mean, std]
    return np.concatenate([f.ravel() for f in feats]).astype(np.float64)


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
