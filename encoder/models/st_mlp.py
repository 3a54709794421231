"""ST-MLP baseline (paper section 4.1): a per-frame MLP and a temporal MLP over pooled frames.

Per frame, the flattened joints [positions, velocity, mask] (missing joints zeroed) go through
an MLP; each window pools its valid frames (masked mean and masked max) and a temporal MLP maps
the pooled statistics to a window vector; the sequence is the mean over its windows.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from encoder.models.base import ModelConfig, WindowedStyleModel
from encoder.models.layers import (
    EmbeddingHead,
    joint_features,
)
from encoder.models.registry import register_model


@dataclass(frozen=True)
class STMLPConfig(ModelConfig):
    """Hidden widths of the per-frame and the temporal MLP."""

    frame_hidden: int = 256
    window_hidden: int = 256

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.frame_hidden < 1 or self.window_hidden < 1:
            raise ValueError("frame_hidden and window_hidden must be >= 1")


@register_model("st_mlp", STMLPConfig)
class STMLP(WindowedStyleModel):
    """Per-frame MLP over flattened joints, masked mean+max over time, temporal MLP."""

    config: STMLPConfig

    def __init__(self, config: STMLPConfig) -> None:
        super().__init__(config)
        c = config
        self.frame_mlp = nn.Sequential(
            nn.Linear(c.num_joints * (2 * c.in_dims + 1), c.frame_hidden), nn.LayerNorm(c.frame_hidden),
            nn.GELU(), nn.Linear(c.frame_hidden, c.frame_hidden), nn.GELU())
        self.window_mlp = nn.Sequential(
            nn.Linear(2 * c.frame_hidden, c.window_hidden), nn.LayerNorm(c.window_hidden), nn.GELU(),
            nn.Dropout(c.dropout), nn.Linear(c.window_hidden, c.window_hidden), nn.GELU())
        self.head = EmbeddingHead(c.window_hidden, c.embedding_dim, c.num_classes, c.dropout)

    def encode_windows(self, positions: torch.Tensor, velocity: torch.Tensor,
                       valid: torch.Tensor) -> torch.Tensor:
        frames = self.frame_mlp(joint_features(positions, velocity, valid).flatten(2))  # (N, L, H)
        frame_valid = valid.any(-1)[..., None]                                         # (N, L, 1)
        mean = (frames * frame_valid).sum(1) / frame_valid.sum(1).clamp_min(1)
        peak = frames.masked_fill(~frame_valid, float("-inf")).amax(1)
        peak = torch.where(frame_valid.any(1), peak, torch.zeros_like(peak))
        return self.window_mlp(torch.cat([mean, peak], dim=-1))
