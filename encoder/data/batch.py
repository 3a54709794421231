"""``SegmentedSequence`` and ``PoseBatch``: what preprocessing hands to every model.

A sequence is cut into M windows of L frames (eq. 2). Models see a padded batch:

- ``positions``  (B, M, L, J, C) float: centre/scale-normalised coordinates (eq. 1)
- ``velocity``   (B, M, L, J, C) float: per-frame joint velocity (finite differences, per second)
- ``joint_mask`` (B, M, L, J) bool: the joint was observed (confidence > 0 after cleaning)
- ``frame_mask`` (B, M, L) bool: real frame, not padding of a short sequence
- ``segment_mask`` (B, M) bool: real window, not padding of the batch
- ``phase``      (B, M) float in [0, 1]: window centre as a fraction of the sequence (eq. 7 p_m)
- ``labels``     (B,) long, -1 where unknown
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class SegmentedSequence:
    """One preprocessed sequence as numpy arrays (shapes as in PoseBatch, without B); ``statistics``:
    the take's motion statistics (F,), set only by an encoder that appends them to its embedding."""

    positions: np.ndarray
    velocity: np.ndarray
    joint_mask: np.ndarray
    frame_mask: np.ndarray
    phase: np.ndarray
    statistics: np.ndarray | None = None

    @property
    def num_segments(self) -> int:
        return int(self.positions.shape[0])


@dataclass
class PoseBatch:
    positions: torch.Tensor
    velocity: torch.Tensor
    joint_mask: torch.Tensor
    frame_mask: torch.Tensor
    segment_mask: torch.Tensor
    phase: torch.Tensor
    labels: torch.Tensor

    def to(self, device: torch.device | str) -> "PoseBatch":
        return PoseBatch(**{k: v.to(device) for k, v in self.__dict__.items()})

    def __len__(self) -> int:
        return int(self.positions.shape[0])


def collate_segments(items: list[SegmentedSequence], labels: list[int] | None = None,
                     max_segments: int | None = None) -> PoseBatch:
    """Pad a list of segmented sequences to the batch's largest window count."""
    if not items:
        raise ValueError("collate_segments: empty batch")
    m = max(it.num_segments for it in items)
    if max_segments is not None:
        m = min(m, max_segments)
    _, l, j, c = items[0].positions.shape
    b = len(items)
    pos = np.zeros((b, m, l, j, c), np.float32)
    vel = np.zeros((b, m, l, j, c), np.float32)
    jm = np.zeros((b, m, l, j), bool)
    fm = np.zeros((b, m, l), bool)
    sm = np.zeros((b, m), bool)
    ph = np.zeros((b, m), np.float32)
    for i, it in enumerate(items):
        k = min(it.num_segments, m)
        pos[i, :k], vel[i, :k] = it.positions[:k], it.velocity[:k]
        jm[i, :k], fm[i, :k], sm[i, :k], ph[i, :k] = it.joint_mask[:k], it.frame_mask[:k], True, it.phase[:k]
    lab = np.full(b, -1, np.int64) if labels is None else np.asarray(labels, np.int64)
    return PoseBatch(*(torch.from_numpy(a) for a in (pos, vel, jm, fm, sm, ph, lab)))
