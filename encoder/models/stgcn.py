"""ST-GCN baseline (Yan et al. 2018 style) on the COCO-17 skeleton.

Spatial graph convolution with the *spatial configuration* partitions (the joint itself,
neighbours closer to the torso, neighbours farther from it), a temporal convolution, batch
norm and residual connections per block; masked mean pooling over tokens and joints; mean over
windows. Missing joints: each partition's aggregation is a mean over the *observed* neighbours
(renormalised per token), features are zero at masked places and the statistics skip them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from encoder.data.skeleton import NUM_JOINTS
from encoder.models.base import ModelConfig, WindowedStyleModel
from encoder.models.layers import (
    EmbeddingHead,
    MaskedBatchNorm,
    at_least_float32,
    group_frames,
    joint_features,
    pool_mask,
    torso_partitions,
)
from encoder.models.registry import register_model


@dataclass(frozen=True)
class STGCNConfig(ModelConfig):
    """Token grouping, then per block: output channels and temporal stride."""

    frames_per_token: int = 4
    # 48/64/96 rather than 64/96/128: half the multiply-adds, the same quality over 5 seeds on every
    # suite but one open-set holdout (docs/benchmarks/encoder_experiments.md, session 20)
    channels: tuple[int, ...] = (48, 64, 96)
    strides: tuple[int, ...] = (1, 2, 1)
    temporal_kernel: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_joints != NUM_JOINTS:
            raise ValueError(f"stgcn needs the {NUM_JOINTS}-joint COCO skeleton, got {self.num_joints}")
        if not self.channels or len(self.strides) != len(self.channels):
            raise ValueError("channels and strides need one entry per block")
        if min(self.channels + self.strides) < 1 or self.frames_per_token < 1:
            raise ValueError("channels, strides and frames_per_token must be >= 1")
        if self.temporal_kernel < 1 or self.temporal_kernel % 2 == 0:
            raise ValueError(f"temporal_kernel must be odd, got {self.temporal_kernel}")


class STGCNBlock(nn.Module):
    """Partitioned graph conv -> BN -> ReLU -> temporal conv -> BN, + residual -> ReLU.

    The graph convolution sum_k A_k X W_k is computed as: aggregate per partition (a mean over
    the observed neighbours in it), then one linear map of the K aggregates side by side.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, num_parts: int) -> None:
        super().__init__()
        self.stride = stride
        self.spatial = nn.Linear(num_parts * c_in, c_out, bias=False)
        self.spatial_norm = MaskedBatchNorm(c_out)
        self.temporal = nn.Conv2d(c_out, c_out, (kernel, 1), stride=(stride, 1),
                                  padding=(kernel // 2, 0), bias=False)
        self.temporal_norm = MaskedBatchNorm(c_out)
        self.residual = (nn.Identity() if c_in == c_out and stride == 1
                         else nn.Linear(c_in, c_out, bias=False))

    def forward(self, x: torch.Tensor, parts: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (N, T, J, C_in) zero where masked; ``parts`` (J*K, J), rows ordered (joint, partition);
        ``mask`` (N, T, J, 1) 0/1."""
        n, t, j, c = x.shape
        # each token's adjacency, rows divided by its observed-neighbour counts, in one batched GEMM;
        # the (joint, partition) row order makes the result the (J, K*C) layout the linear map reads
        inverse_count = (mask.reshape(n * t, j) @ parts.T).clamp_min_(1.0).reciprocal_()   # (NT, J*K)
        adjacency = parts * inverse_count[..., None]                                         # (NT, J*K, J)
        agg = torch.bmm(adjacency, x.reshape(n * t, j, c)).view(n, t, j, -1)
        h = torch.relu_(self.spatial_norm(self.spatial(agg), mask))
        out_mask = pool_mask(mask, self.stride)
        h = self.temporal(h.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        h = self.temporal_norm(h, out_mask)
        return torch.relu_(h + self.residual(x[:, ::self.stride]) * out_mask), out_mask


@register_model("stgcn", STGCNConfig)
class STGCN(WindowedStyleModel):
    """ST-GCN blocks over token-grouped joints; masked global pooling; mean over windows."""

    config: STGCNConfig
    parts: torch.Tensor

    def __init__(self, config: STGCNConfig) -> None:
        super().__init__(config)
        c = config
        parts = torso_partitions(neighbours_only=True)   # the skeleton neighbourhood: root, closer, farther
        self.register_buffer("parts", parts.transpose(0, 1).reshape(-1, NUM_JOINTS), persistent=False)   # (J*K, J)
        self.input_norm = MaskedBatchNorm((2 * c.in_dims + 1) * c.frames_per_token)
        blocks, c_prev = [], (2 * c.in_dims + 1) * c.frames_per_token
        for ch, stride in zip(c.channels, c.strides):
            blocks.append(STGCNBlock(c_prev, ch, c.temporal_kernel, stride, parts.shape[0]))
            c_prev = ch
        self.blocks = nn.ModuleList(blocks)
        self.head = EmbeddingHead(c_prev, c.embedding_dim, c.num_classes, c.dropout)

    def encode_windows(self, positions: torch.Tensor, velocity: torch.Tensor,
                       valid: torch.Tensor) -> torch.Tensor:
        size = self.config.frames_per_token
        h = group_frames(joint_features(positions, velocity, valid), size)           # (N, T, J, F)
        mask = group_frames(valid[..., None], size).any(-1, keepdim=True).to(h.dtype)
        h = self.input_norm(h, mask)
        for block in self.blocks:
            h, mask = block(h, self.parts, mask)
        return at_least_float32(h).sum((1, 2)) / mask.sum((1, 2)).clamp_min(1.0)   # float32 under autocast
