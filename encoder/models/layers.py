"""Mask-aware building blocks shared by every model.

Masks are honoured, never approximated by zeros: a missing joint, a padded frame or a padded
window is excluded from every mean, softmax and normalisation statistic. Inputs at masked
places are zeroed and a mask channel tells the network which values are real.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence, cast

import numpy as np
import torch
import torch.nn.functional as F
from scipy.sparse.csgraph import shortest_path
from torch import nn

from encoder.data.batch import PoseBatch
from encoder.data.skeleton import BODY_REGIONS, COCO17_EDGES, NUM_JOINTS, TORSO_JOINTS, adjacency_matrix

# Logits of eq. (12) are computed on the unit-norm embedding times this scale, so a linear
# head reaches confident probabilities without needing very large weights.
LOGIT_SCALE = 10.0
REGION_NAMES: tuple[str, ...] = tuple(BODY_REGIONS)
# Windows encoded per chunk at inference (eval mode): bounds peak memory and keeps per-joint
# activations cache-sized (faster on CPU than one huge batch).
EVAL_WINDOW_CHUNK = 128


def valid_joints(batch: PoseBatch) -> torch.Tensor:
    """(B, M, L, J) bool: the joint was observed, in a real frame of a real window."""
    return batch.joint_mask & batch.frame_mask[..., None] & batch.segment_mask[..., None, None]


def gather_windows(batch: PoseBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The batch's real windows stacked: positions, velocity (N, L, J, C), valid (N, L, J).

    Also returns ``window_mask`` (B, M): the window is real and has at least one observed
    joint. Padded windows are never encoded, so they cannot change any output.
    """
    valid = valid_joints(batch)
    window_mask = valid.flatten(2).any(-1)
    return batch.positions[window_mask], batch.velocity[window_mask], valid[window_mask], window_mask


def joint_features(positions: torch.Tensor, velocity: torch.Tensor | None,
                   valid: torch.Tensor) -> torch.Tensor:
    """Per joint-frame input [positions, velocity, mask] (..., 2C+1), zero where invalid.

    Without velocity: [positions, mask] (..., C+1). Whatever sits at invalid places (even NaN)
    is replaced, not multiplied by 0.
    """
    parts = [positions] + ([velocity] if velocity is not None else [])
    parts.append(positions.new_ones(positions.shape[:-1] + (1,)))
    return torch.cat(parts, dim=-1).masked_fill_(~valid[..., None], 0.0)


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


def group_frames(x: torch.Tensor, size: int) -> torch.Tensor:
    """(N, L, J, C) -> (N, ceil(L/size), J, size*C): ``size`` consecutive frames side by side."""
    if size == 1:
        return x
    n, l, j, c = x.shape
    pad = (-l) % size
    if pad:
        x = F.pad(x, (0, 0, 0, 0, 0, pad))
    t = (l + pad) // size
    return x.reshape(n, t, size, j, c).transpose(2, 3).reshape(n, t, j, size * c)


def pool_mask(mask: torch.Tensor, stride: int) -> torch.Tensor:
    """(N, T, J, 1) 0/1 mask -> (N, ceil(T/stride), J, 1): 1 where any merged token was valid."""
    if stride == 1:
        return mask
    pad = (-mask.shape[1]) % stride
    if pad:
        mask = F.pad(mask, (0, 0, 0, 0, 0, pad))
    n, t, j, c = mask.shape
    return mask.view(n, t // stride, stride, j, c).amax(2)


class _MaskedBatchNormFunction(torch.autograd.Function):
    """Training-mode masked batch norm with a hand-written backward (what autograd would derive,
    in a few fused passes instead of a chain of elementwise ops; the model's biggest training cost).

    Forward: mean and biased variance of ``x`` over the rows where ``mask`` is 1, then
    y = (x_hat * weight + bias) * mask with x_hat = (x - mean) / sqrt(var + eps). Backward, with
    g = dy * mask and n the number of such rows: dbias = sum g, dweight = sum g x_hat,
    dx = mask * weight / sqrt(var + eps) * (g - dbias / n - x_hat * dweight / n).
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows = mask.reshape(1, -1)                      # masked sums over rows as one matrix product
        count = float(rows.sum())
        mean = (rows @ x.reshape(-1, x.shape[-1]))[0] / count
        x_hat = x - mean
        var = (rows @ x_hat.square().view(-1, x.shape[-1]))[0] / count
        rstd = torch.rsqrt(var + eps)
        x_hat.mul_(rstd)
        ctx.save_for_backward(x_hat, mask, weight, rstd)
        ctx.count = count
        ctx.mark_non_differentiable(mean, var)
        return torch.addcmul(bias, x_hat, weight).mul_(mask), mean, var

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor, *_: Any) -> tuple[torch.Tensor | None, ...]:
        x_hat, mask, weight, rstd = ctx.saved_tensors
        g = grad * mask
        dims = tuple(range(g.dim() - 1))
        grad_bias = g.sum(dims)
        grad_weight = (g * x_hat).sum(dims)
        grad_x = g.sub_(grad_bias / ctx.count).addcmul_(x_hat, grad_weight / -ctx.count)
        grad_x.mul_(weight * rstd).mul_(mask)
        return grad_x, None, grad_weight, grad_bias, None


class MaskedBatchNorm(nn.Module):
    """Batch normalisation over the last (channel) axis whose statistics skip masked places.

    ``forward(x (..., C), mask (...))``; the output is zero where ``mask`` is False, so
    padding never leaks into the statistics nor into later layers.
    """

    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, channels: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor, mask: torch.Tensor,
                offset: torch.Tensor | None = None) -> torch.Tensor:
        """Normalise ``x + offset`` (offset broadcast, e.g. a per-joint bias; fused at inference).

        ``mask``: (...) bool, or the same as 0/1 floats shaped (..., 1).
        """
        m = mask[..., None].to(x.dtype) if mask.dtype == torch.bool else mask
        if self.training and m.sum() > 1:
            if offset is not None:
                x = x + offset
            y, mean, var = _MaskedBatchNormFunction.apply(x, m, self.weight, self.bias, self.eps)
            count = m.sum()
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * count / (count - 1), self.momentum)
            return cast(torch.Tensor, y)
        scale = self.weight * torch.rsqrt(self.running_var + self.eps)
        shift = self.bias - self.running_mean * scale
        if offset is not None:
            shift = shift + offset * scale
        return torch.addcmul(shift, x, scale).mul_(m)


class DepthwiseTemporalConv(nn.Module):
    """Per-channel convolution along time of a channels-last (N, L, J, C) tensor."""

    def __init__(self, channels: int, kernel: int, dilation: int = 1, stride: int = 1,
                 bias: bool = True) -> None:
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"temporal kernel must be odd, got {kernel}")
        self.conv = nn.Conv2d(channels, channels, (kernel, 1), stride=(stride, 1),
                              padding=(dilation * (kernel // 2), 0), dilation=(dilation, 1),
                              groups=channels, bias=bias)

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
    """Graph hop distance of every joint from the nearest of ``sources`` (inf where unreachable)."""
    return shortest_path(adjacency, unweighted=True, indices=list(sources)).min(axis=0)


def torso_partitions(neighbours_only: bool) -> torch.Tensor:
    """(3, J, J) 0/1 split of joint pairs (i, j) by hop distance from the torso (ST-GCN's spatial configuration).

    Part 0: j as far from the torso as i (includes i itself), part 1: j closer (centripetal), part 2:
    j farther (centrifugal). ``neighbours_only``: only skeleton neighbours (ST-GCN); otherwise every
    pair, as the eq. (3) graph links every pair.
    """
    adjacency = adjacency_matrix(COCO17_EDGES, NUM_JOINTS, self_loops=True)
    hops = hop_distance(adjacency, TORSO_JOINTS)
    closer = hops[None, :] < hops[:, None]
    farther = hops[None, :] > hops[:, None]
    parts = np.stack([~(closer | farther), closer, farther])
    if neighbours_only:
        parts &= adjacency[None] > 0
    return torch.from_numpy(parts.astype(np.float32))


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 when autocast left it in a half type; float32 and float64 as they are."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


class EmbeddingHead(nn.Module):
    """Pooled sequence vector -> unit-norm embedding and class logits (eq. 12)."""

    def __init__(self, in_features: int, embedding_dim: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.project = nn.Linear(in_features, embedding_dim)
        self.classifier = nn.Linear(embedding_dim, num_classes)

    def forward(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # float32 even under bfloat16 autocast: the embedding is what gets stored and compared
        with torch.autocast(pooled.device.type, enabled=False):
            embedding = F.normalize(self.project(self.dropout(at_least_float32(pooled))), dim=-1, eps=1e-8)
            return embedding, self.logits(embedding)

    def logits(self, embedding: torch.Tensor) -> torch.Tensor:
        """Class logits of unit embeddings (eq. 12, softmax left to the loss)."""
        return self.classifier(embedding * LOGIT_SCALE)


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


def encode_windows_in_chunks(encode: Callable[..., Any], windows: Sequence[torch.Tensor],
                             chunk: int | None) -> Any:
    """Run ``encode`` over the stacked windows, ``chunk`` windows at a time (None: all at once).

    ``encode`` returns a tensor or a tuple of tensors with the window axis first; the chunks'
    results are concatenated. Chunking at inference bounds memory and keeps activations
    cache-sized; windows are independent then (BN uses its running statistics).
    """
    n = windows[0].shape[0]
    step = max(n, 1) if chunk is None else chunk
    parts = [encode(*(t[s:s + step] for t in windows)) for s in range(0, max(n, 1), step)]
    if isinstance(parts[0], tuple):
        return tuple(torch.cat(p, 0) for p in zip(*parts))
    return torch.cat(parts, 0)


def mean_over_windows(window_vectors: torch.Tensor, window_mask: torch.Tensor) -> torch.Tensor:
    """Masked mean of per-window vectors (N_valid, D) into per-sequence vectors (B, D)."""
    per_seq = scatter_windows(window_vectors, window_mask)
    return masked_mean(per_seq, window_mask, dim=1)
