"""Pose-Transformer baseline (paper section 4.1): long-range attention over time.

Per window: each token (``frames_per_token`` frames of flattened joints [positions, velocity,
mask], missing joints zeroed) is embedded, given a sinusoidal time code, and a transformer
encoder runs over the window's tokens with padded tokens masked out of attention; the CLS
token is the window vector. Per sequence: one more transformer layer over the windows (with
their phase, padded windows masked), then a masked mean.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from encoder.data.batch import PoseBatch
from encoder.models.base import ModelConfig, WindowedStyleModel
from encoder.models.layers import (
    EmbeddingHead,
    group_frames,
    joint_features,
    masked_mean,
    scatter_windows,
    sinusoidal_positions,
)
from encoder.models.registry import register_model


@dataclass(frozen=True)
class PoseTransformerConfig(ModelConfig):
    """Token grouping, width and depth of the window and sequence transformers."""

    frames_per_token: int = 2
    d_model: int = 96
    num_heads: int = 4
    num_layers: int = 2
    ff_dim: int = 192
    num_sequence_layers: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.frames_per_token < 1 or self.num_layers < 1 or self.num_sequence_layers < 0:
            raise ValueError("frames_per_token and num_layers must be >= 1, num_sequence_layers >= 0")
        if self.d_model < 1 or self.num_heads < 1 or self.d_model % self.num_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a positive multiple of num_heads "
                             f"({self.num_heads})")


def _encoder(c: PoseTransformerConfig, layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(c.d_model, c.num_heads, c.ff_dim, c.dropout,
                                       activation="gelu", batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(c.d_model),
                                 enable_nested_tensor=False)


@register_model("pose_transformer", PoseTransformerConfig)
class PoseTransformer(WindowedStyleModel):
    """Frame-token transformer per window (CLS pooling), then a transformer over windows."""

    config: PoseTransformerConfig

    def __init__(self, config: PoseTransformerConfig) -> None:
        super().__init__(config)
        c = config
        self.embed = nn.Linear(c.num_joints * (2 * c.in_dims + 1) * c.frames_per_token, c.d_model)
        self.cls = nn.Parameter(torch.zeros(1, 1, c.d_model))
        self.window_encoder = _encoder(c, c.num_layers)
        if c.num_sequence_layers:
            self.phase_embed = nn.Linear(1, c.d_model)
            self.sequence_encoder = _encoder(c, c.num_sequence_layers)
        self.head = EmbeddingHead(c.d_model, c.embedding_dim, c.num_classes, c.dropout)

    def encode_windows(self, positions: torch.Tensor, velocity: torch.Tensor,
                       valid: torch.Tensor) -> torch.Tensor:
        size = self.config.frames_per_token
        tokens = group_frames(joint_features(positions, velocity, valid), size).flatten(2)  # (N, T, F)
        token_valid = group_frames(valid[..., None], size).flatten(2).any(-1)              # (N, T)
        n, t, _ = tokens.shape
        h = self.embed(tokens) + sinusoidal_positions(t, self.config.d_model).to(tokens)
        h = torch.cat([self.cls.expand(n, -1, -1), h], dim=1)
        padding = torch.cat([token_valid.new_zeros(n, 1), ~token_valid], dim=1)  # CLS always attends
        return self.window_encoder(h, src_key_padding_mask=padding)[:, 0]

    def combine_windows(self, vectors: torch.Tensor, window_mask: torch.Tensor, batch: PoseBatch) -> torch.Tensor:
        per_seq = scatter_windows(vectors, window_mask)                               # (B, M, D)
        if self.config.num_sequence_layers:
            per_seq = per_seq + self.phase_embed(batch.phase[..., None].to(per_seq.dtype))
            padding = ~window_mask
            padding[:, 0] &= window_mask.any(1)   # a sequence without windows: avoid all-masked rows
            per_seq = self.sequence_encoder(per_seq, src_key_padding_mask=padding)
        return masked_mean(per_seq, window_mask, dim=1)
