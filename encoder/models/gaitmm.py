"""GaitMM (paper ``003_*``): multi-granularity motion learning with 3D convolutions.

GaitMM runs on silhouette sequences; this project has no silhouettes, so it runs on rendered
skeleton maps instead: per frame one channel of joint Gaussians and one of limb tubes, after
GaitHeat's crop + alignment pretreatment (encoder/data/skeleton_maps.py). Per window clip:

- FFSL blocks (section 3.2): a body-level 3x3x3 conv (BME, eq. (1)) plus part-level convs with
  separate weights per horizontal strip (PME, eq. (2)-(3)), summed (eq. (4));
- MSMA (section 3.3): a global and a per-part local motion aggregation,
  LMA = p1 Max_3x1x1 + p2 Avg_3x1x1 (eq. (5), p1 = p2 = 0.5 at start), summed; frames / 3;
- temporal pooling (max over the clip's valid frames), GeM over horizontal strips (p init 6.5),
  separate FCs + BNNeck; the sequence is the mean over its windows; triplet (margin 0.2) +
  cross-entropy, added to the project's ``StyleLoss``.

Scaled down for 2 CPU cores (paper -> here): 64x44 maps -> 32x22; widths (32, 64, 128 in
GaitGL-sized nets) -> (8, 16, 32); k = l = 8 strips -> 4 (the same 8 rows per strip); 30-frame
clips -> each window's frames every ``frame_step`` (32 / 4 = 8); one 2x2 spatial max pool after
the first FFSL (as GaitGL does) to cut the cost of the later 3D convolutions.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from encoder.models.gait_layers import (
    GeM,
    PartHead,
    SkeletonMapModelConfig,
    StripConv3d,
    WindowPartModel,
    horizontal_bins,
    masked_temporal_max,
    masked_temporal_pool,
    render_frames,
    store_convolutions_channels_last,
)
from encoder.models.registry import register_model


@dataclass(frozen=True)
class GaitMMConfig(SkeletonMapModelConfig):
    """Map canvas, frame sampling, FFSL widths, triplet margin (``SkeletonMapModelConfig``), strip
    count k (= l), GeM exponent.

    ``embedding_dim`` must be a multiple of ``parts`` (the GeM strips, one separate FC each).
    """

    embedding_dim: int = 128
    parts: int = 4
    gem_p: float = 6.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.channels) != 3:
            raise ValueError(f"channels needs 3 positive widths (one per FFSL), got {self.channels}")
        if self.parts < 1:
            raise ValueError("parts must be >= 1")
        if self.map_height % (2 * self.parts):
            raise ValueError(f"map_height {self.map_height} must be divisible by 2 x parts ({2 * self.parts})")
        if self.embedding_dim % self.parts:
            raise ValueError(f"embedding_dim must be a multiple of parts ({self.parts})")
        if self.gem_p <= 0:
            raise ValueError("gem_p must be > 0")


class FFSL(nn.Module):
    """Full-body + fine-grained sequence learning: BME + PME (eq. (1)-(4)), then LeakyReLU."""

    def __init__(self, c_in: int, c_out: int, parts: int) -> None:
        super().__init__()
        self.bme = nn.Conv3d(c_in, c_out, 3, padding=1, bias=False)    # eq. (1)
        self.pme = StripConv3d(c_in, c_out, parts)                       # eq. (2)-(3)

    def forward(self, x: torch.Tensor, frame_valid: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.bme(x) + self.pme(x), inplace=True)        # eq. (4)
        return y * frame_valid[:, None, :, None, None].to(y.dtype)       # padded frames stay 0


class MSMA(nn.Module):
    """Multi-scale motion aggregation: global LMA + per-part LMAs (eq. (5)), frames / 3."""

    def __init__(self, parts: int) -> None:
        super().__init__()
        self.parts = parts
        self.global_p = nn.Parameter(torch.full((2,), 0.5))
        self.part_p = nn.Parameter(torch.full((2, parts), 0.5))

    def forward(self, x: torch.Tensor, frame_valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mx, mean, out_valid = masked_temporal_pool(x, frame_valid, 3, 3)
        h = x.shape[3]
        row_p = self.part_p.repeat_interleave(h // self.parts, dim=1)[:, None, None, :, None]   # (2, 1, 1, H, 1)
        glob = self.global_p[0] * mx + self.global_p[1] * mean
        local = row_p[0] * mx + row_p[1] * mean
        return glob + local, out_valid


@register_model("gaitmm", GaitMMConfig)
class GaitMM(WindowPartModel):
    """Skeleton-map clips -> FFSL x2 -> MSMA -> FFSL -> TP -> GeM strips -> separate FCs + BNNeck."""

    config: GaitMMConfig

    def __init__(self, config: GaitMMConfig) -> None:
        super().__init__(config)
        c = config
        c0, c1, c2 = c.channels
        self.ffsl1 = FFSL(2, c0, c.parts)
        self.ffsl2 = FFSL(c0, c1, c.parts)
        self.msma = MSMA(c.parts)
        self.ffsl3 = FFSL(c1, c2, c.parts)
        self.gem = GeM(c.gem_p)
        self.head = PartHead(c.parts, c2, c.embedding_dim, c.num_classes, c.dropout)
        store_convolutions_channels_last(self)

    @property
    def num_parts(self) -> int:
        return self.config.parts

    def encode_window_parts(self, positions: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        c = self.config
        frame_valid = valid.any(-1)                                                    # (N, T)
        maps = render_frames(positions, valid, c.map_config, c.in_dims, limbs=True, fused=True)
        x = maps.transpose(1, 2)                                                       # (N, 2, T, H, W)
        x = self.ffsl1(x, frame_valid)
        x = F.max_pool3d(x, (1, 2, 2), ceil_mode=True)
        x = self.ffsl2(x, frame_valid)
        x, frame_valid = self.msma(x, frame_valid)
        x = self.ffsl3(x, frame_valid)
        x = masked_temporal_max(x, frame_valid)                                        # TP: (N, C, H, W)
        return horizontal_bins(x, (c.parts,), self.gem).flatten(1)                      # GeM: (N, P*C)
