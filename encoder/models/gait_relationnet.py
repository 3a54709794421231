"""Gait-RelationNet baseline (paper section 4.1): relation propagation over joints and windows.

Unlike PoseStyle-Net there is no attention, no gating and no learned pooling weights: every
relation is a pairwise relation module (a relation network) averaged over all valid pairs.

Per window: each joint's tokens (``frames_per_token`` frames of [positions, velocity, mask])
are embedded, mixed over time by a depthwise temporal convolution and mean-pooled over the
observed tokens; a joint relation module g([h_i; h_j]) averaged over the observed joint pairs
gives the window vector. Per sequence: one window relation step s_m + f(mean_n r([s_m; s_n]))
over the valid windows, then a mean over windows.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from encoder.data.batch import PoseBatch
from encoder.models.base import ModelConfig, WindowedStyleModel
from encoder.models.layers import (
    DepthwiseTemporalConv,
    EmbeddingHead,
    group_frames,
    joint_features,
    masked_mean,
    scatter_windows,
)
from encoder.models.registry import register_model


@dataclass(frozen=True)
class GaitRelationNetConfig(ModelConfig):
    """Token grouping, joint feature width, joint-pair width and relation width."""

    frames_per_token: int = 4
    joint_channels: int = 64
    pair_dim: int = 64
    relation_dim: int = 192

    def __post_init__(self) -> None:
        super().__post_init__()
        if min(self.frames_per_token, self.joint_channels, self.pair_dim, self.relation_dim) < 1:
            raise ValueError("frames_per_token, joint_channels, pair_dim and relation_dim must be >= 1")


class PairRelation(nn.Module):
    """Relation module: mean over valid pairs (i, j) of GELU(A x_i + B x_j + b), then a linear map.

    The first layer is split into A and B, so the pair tensor is a broadcast sum of width
    ``pair_dim``.
    """

    def __init__(self, c_in: int, c_out: int, pair_dim: int) -> None:
        super().__init__()
        self.left = nn.Linear(c_in, pair_dim)
        self.right = nn.Linear(c_in, pair_dim, bias=False)
        self.out = nn.Linear(pair_dim, c_out)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, per_item: bool) -> torch.Tensor:
        """``x`` (..., K, C), ``mask`` (..., K) bool.

        ``per_item``: (..., K, C_out), item i's mean relation to the valid j; else (..., C_out),
        the mean over all valid pairs.
        """
        pair = F.gelu(self.left(x)[..., :, None, :] + self.right(x)[..., None, :, :])  # (..., K, K, C)
        m = mask.to(x.dtype)
        pair = pair * m[..., None, :, None]
        if per_item:
            return self.out(pair.sum(-2) / m.sum(-1)[..., None, None].clamp_min(1.0))
        pair = pair * m[..., :, None, None]
        count = (m.sum(-1) ** 2).clamp_min(1.0)[..., None]
        return self.out(pair.sum((-3, -2)) / count)


@register_model("gait_relationnet", GaitRelationNetConfig)
class GaitRelationNet(WindowedStyleModel):
    """Joint-pair relations inside each window, window-pair relation propagation across them."""

    config: GaitRelationNetConfig

    def __init__(self, config: GaitRelationNetConfig) -> None:
        super().__init__(config)
        c = config
        self.embed = nn.Linear((2 * c.in_dims + 1) * c.frames_per_token, c.joint_channels)
        self.joint_embedding = nn.Parameter(torch.zeros(c.num_joints, c.joint_channels))
        self.temporal = DepthwiseTemporalConv(c.joint_channels, 3)
        self.joint_relation = PairRelation(c.joint_channels, c.relation_dim, c.pair_dim)
        self.window_norm = nn.LayerNorm(c.relation_dim)
        self.window_relation = PairRelation(c.relation_dim, c.relation_dim, c.relation_dim)
        self.head = EmbeddingHead(c.relation_dim, c.embedding_dim, c.num_classes, c.dropout)

    def encode_windows(self, positions: torch.Tensor, velocity: torch.Tensor,
                       valid: torch.Tensor) -> torch.Tensor:
        size = self.config.frames_per_token
        tokens = group_frames(joint_features(positions, velocity, valid), size)       # (N, T, J, F)
        token_mask = group_frames(valid[..., None], size).any(-1)                    # (N, T, J)
        m = token_mask[..., None].to(tokens.dtype)
        h = F.gelu(self.embed(tokens) + self.joint_embedding) * m
        h = F.gelu(self.temporal(h)) * m
        joints = h.sum(1) / m.sum(1).clamp_min(1.0)                                  # (N, J, C)
        return self.joint_relation(joints, token_mask.any(1), per_item=False)

    def combine_windows(self, vectors: torch.Tensor, window_mask: torch.Tensor, batch: PoseBatch) -> torch.Tensor:
        states = self.window_norm(scatter_windows(vectors, window_mask))             # (B, M, D)
        states = states + self.window_relation(states, window_mask, per_item=True)  # propagation
        return masked_mean(states, window_mask, dim=1)
