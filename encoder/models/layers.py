"""Mask-aware building blocks shared by every model.

Masks are honoured, never approximated by zeros: a missing joint, a padded frame or a padded
window is excluded from every mean, softmax and normalisation statistic. Inputs at masked
places are zeroed and a mask channel tells the network which values are real.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from encoder.data.batch import PoseBatch
from encoder.data.skeleton import BODY_REGIONS, COCO17_EDGES, NUM_JOINTS, adjacency_matrix

# Logits of eq. (12) are computed on the unit-norm embedding times this scale, so a linear
# head reaches confident probabilities without needing very large weights.
LOGIT_SCALE = 10.0
REGION_NAMES: tuple[str, ...] = tuple(BODY_REGIONS)


def valid_joints(batch: PoseBatch) -> torch.Tensor:
    """(B, M, L, J) bool: the joint was observed, in a real frame of a real window."""
    return batch.joint_mask & batch.frame_mask[..., None] & batch.segment_mask[..., None, None]


def input_features(batch: PoseBatch, use_velocity: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Per joint-frame input [positions, velocity, mask] zeroed where invalid, and the mask.

    Returns ``x`` (B, M, L, J, 2C+1) (or C+1 without velocity) and ``valid`` (B, M, L, J).
    """
    valid = valid_joints(batch)
    m = valid[..., None].to(batch.positions.dtype)
    parts = [batch.positions * m]
    if use_velocity:
        parts.append(batch.velocity * m)
    parts.append(m)
    return torch.cat(parts, dim=-1), valid


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | tuple[int, ...]) -> torch.Tensor:
    """Mean of ``x`` over ``dim`` counting only places where ``mask`` is True (0 if none).

    ``mask`` has the shape of ``x`` without its last (feature) axis.
    """
    m = mask[..., None].to(x.dtype)
    dims = (dim,) if isinstance(dim, int) else dim
    total = (x * m).sum(dim=dims)
    count = m.sum(dim=dims).clamp_min(1.0)
    return total / count


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax over ``dim`` with masked places at -inf; an all-masked row gives all zeros."""
    any_valid = mask.any(dim=dim, keepdim=True)
    filled = scores.masked_fill(~mask, float("-inf"))
    filled = torch.where(any_valid, filled, torch.zeros_like(filled))
    return torch.softmax(filled, dim=dim) * mask.to(scores.dtype)


def uniform_weights(mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Weights 1/n over the valid places along ``dim`` (a masked mean as weights)."""
    m = mask.to(torch.get_default_dtype())
    return m / m.sum(dim=dim, keepdim=True).clamp_min(1.0)


def pool_time(x: torch.Tensor, mask: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked mean over groups of ``stride`` consecutive frames (axis 1).

    ``x`` (N, L, J, C), ``mask`` (N, L, J) -> (N, ceil(L/stride), J, C) and the pooled mask
    (True where any frame of the group was valid).
    """
    if stride == 1:
        return x, mask
    n, l, j, c = x.shape
    pad = (-l) % stride
    if pad:
        x = F.pad(x, (0, 0, 0, 0, 0, pad))
        mask = F.pad(mask, (0, 0, 0, pad))
    m = mask.to(x.dtype).reshape(n, -1, stride, j)
    total = (x.reshape(n, -1, stride, j, c) * m[..., None]).sum(2)
    count = m.sum(2)
    return total / count.clamp_min(1.0)[..., None], count > 0


def pool_mask_time(mask: torch.Tensor, stride: int) -> torch.Tensor:
    """The pooled mask of ``pool_time`` alone: (N, L, J) -> (N, ceil(L/stride), J)."""
    if stride == 1:
        return mask
    n, l, j = mask.shape
    pad = (-l) % stride
    if pad:
        mask = F.pad(mask, (0, 0, 0, pad))
    return mask.reshape(n, -1, stride, j).any(2)


class MaskedBatchNorm(nn.Module):
    """Batch normalisation over the last (channel) axis whose statistics skip masked places.

    ``forward(x (..., C), mask (...))``; the output is zero where ``mask`` is False, so
    padding never leaks into the statistics nor into later layers.
    """

    def __init__(self, channels: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask[..., None].to(x.dtype)
        dims = tuple(range(x.dim() - 1))
        count = m.sum()
        if self.training and count > 1:
            mean = (x * m).sum(dims) / count
            var = (((x - mean) * m) ** 2).sum(dims) / count
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(var.detach() * count / (count - 1), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        scale = self.weight * torch.rsqrt(var + self.eps)
        shift = self.bias - mean * scale
        return torch.addcmul(shift, x, scale) * m


class DepthwiseTemporalConv(nn.Module):
    """Per-channel convolution along time of a channels-last (N, L, J, C) tensor."""

    def __init__(self, channels: int, kernel: int, dilation: int = 1, stride: int = 1) -> None:
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"temporal kernel must be odd, got {kernel}")
        self.conv = nn.Conv2d(channels, channels, (kernel, 1), stride=(stride, 1),
                              padding=(dilation * (kernel // 2), 0), dilation=(dilation, 1),
                              groups=channels)
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (N, L, J, C) viewed as a channels-last (N, C, L, J) tensor: no copy.
        y = self.conv(x.permute(0, 3, 1, 2))
        return y.permute(0, 2, 3, 1)


def skeleton_adjacency(self_loops: bool = True) -> torch.Tensor:
    """COCO-17 bone adjacency G of eq. (3) as a float tensor (J, J)."""
    return torch.from_numpy(adjacency_matrix(COCO17_EDGES, NUM_JOINTS, self_loops=self_loops))


def region_membership() -> torch.Tensor:
    """(J, R) 0/1 matrix: joint j belongs to ``BODY_REGIONS`` region r."""
    member = np.zeros((NUM_JOINTS, len(BODY_REGIONS)), np.float32)
    for r, joints in enumerate(BODY_REGIONS.values()):
        member[list(joints), r] = 1.0
    return torch.from_numpy(member)


def hop_distance(adjacency: np.ndarray, sources: tuple[int, ...]) -> np.ndarray:
    """Graph hop distance of every joint from the nearest of ``sources`` (BFS)."""
    n = adjacency.shape[0]
    dist = np.full(n, np.inf)
    frontier = list(sources)
    for s in sources:
        dist[s] = 0
    while frontier:
        nxt = []
        for i in frontier:
            for j in np.flatnonzero(adjacency[i]):
                if dist[j] == np.inf:
                    dist[j] = dist[i] + 1
                    nxt.append(int(j))
        frontier = nxt
    return dist


class EmbeddingHead(nn.Module):
    """Pooled sequence vector -> unit-norm embedding and class logits (eq. 12)."""

    def __init__(self, in_features: int, embedding_dim: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.project = nn.Linear(in_features, embedding_dim)
        self.classifier = nn.Linear(embedding_dim, num_classes)

    def forward(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = F.normalize(self.project(self.dropout(pooled)), dim=-1, eps=1e-8)
        logits = self.classifier(embedding * LOGIT_SCALE)  # eq. (12), softmax left to the loss
        return embedding, logits


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """Fixed sinusoidal position codes (length, dim)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    codes = torch.zeros(length, dim)
    codes[:, 0::2] = torch.sin(pos * freq)
    codes[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return codes


def scatter_windows(values: torch.Tensor, segment_mask: torch.Tensor) -> torch.Tensor:
    """Put per-window rows (N_valid, ...) back into a zero-padded (B, M, ...) tensor."""
    out = values.new_zeros(segment_mask.shape + values.shape[1:])
    out[segment_mask] = values
    return out
