"""The BENCHMARK.md floor: a plain temporal CNN over the normalised keypoints.

Four dilated 1D convolutions (dilations 1, 2, 4, 8) over each window's frames, whose input
per frame is every joint's normalised position plus its mask flag (missing joints zeroed);
masked mean over the window's valid frames; embedding from the mean over windows.
About 0.28 M parameters at the default width.
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
class TemporalCNNConfig(ModelConfig):
    """Width, kernel and dilations of the four 1D convolutions."""

    channels: int = 160
    kernel: int = 3
    dilations: tuple[int, ...] = (1, 2, 4, 8)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.channels < 1 or self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError("channels must be >= 1 and kernel odd")
        if not self.dilations or min(self.dilations) < 1:
            raise ValueError(f"dilations must be non-empty and >= 1, got {self.dilations}")


@register_model("temporal_cnn", TemporalCNNConfig)
class TemporalCNN(WindowedStyleModel):
    """Dilated 1D convolutions over flattened keypoints; embedding = mean over windows."""

    config: TemporalCNNConfig

    def __init__(self, config: TemporalCNNConfig) -> None:
        super().__init__(config)
        c = config
        layers, c_in = [], c.num_joints * (c.in_dims + 1)
        for dilation in c.dilations:
            layers.append(nn.Conv1d(c_in, c.channels, c.kernel, padding=dilation * (c.kernel // 2),
                                    dilation=dilation))
            c_in = c.channels
        self.convs = nn.ModuleList(layers)
        self.head = EmbeddingHead(c.channels, c.embedding_dim, c.num_classes, c.dropout)

    def encode_windows(self, positions: torch.Tensor, velocity: torch.Tensor,
                       valid: torch.Tensor) -> torch.Tensor:
        """Positions only: the convolutions see velocity through neighbouring frames."""
        x = joint_features(positions, None, valid).flatten(2).transpose(1, 2)   # (N, J*(C+1), L)
        frame_mask = valid.any(-1).to(x.dtype)[:, None, :]                       # (N, 1, L)
        for conv in self.convs:
            x = torch.relu(conv(x)) * frame_mask   # padded frames stay zero
        return x.sum(-1) / frame_mask.sum(-1).clamp_min(1.0)
