"""HSTL (paper ``002_*``): hierarchical spatio-temporal representation learning, on skeleton maps.

The seed holds only HSTL's abstract and results, so the architecture is read from the abstract
and the details are this project's choices. Input: the same rendered skeleton maps as GaitMM
(joint + limb channels after GaitHeat's crop + alignment; the project has no silhouettes).

Read from the abstract:
- a multi-level body hierarchy from the whole body down to local details;
- adaptive region-based motion extractors (ARME), one per level, stacked top-down, each learning
  region-independent motion features for its level's partition;
- adaptive spatio-temporal pooling (ASTP) of every level's output, giving features at several
  levels of detail (hierarchical feature mapping);
- frame-level temporal aggregation (FTA): multi-scale temporal downsampling that removes
  redundant frames.

Chosen here (not in the abstract):
- the hierarchy is ``levels`` = (1, 2, 4) horizontal strips: the paper recovers it by
  hierarchical clustering of body parts; after the alignment pretreatment the body sits at fixed
  rows, so halving strips gives the whole body, upper/lower body, then four bands;
- an ARME is a 3x3x3 convolution with separate weights per region (strip) plus LeakyReLU;
- ASTP: per region, a learnable mix of temporal max and mean over valid frames, then GeM over
  the region's rows and columns; a separate FC per region maps it to the part dimension;
- FTA sits after the first level: a softmax-weighted sum of masked temporal max pools with
  kernels 3 and 5 at stride 2 (halves the frames);
- training loss: triplet + cross-entropy per region (as the other gait models), added to
  ``StyleLoss``.

Scaled down for 2 CPU cores (paper -> here; the seed gives no layer sizes, so they follow GaitMM's):
64x44 silhouettes -> 32x22 skeleton maps; widths (8, 16, 32), one per level; one 2x2 spatial max
pool after the first level; each window's frames every ``frame_step`` (32 / 4 = 8) instead of the
paper's 30-frame clips.
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
    masked_temporal_pool,
    render_frames,
)
from encoder.models.registry import register_model

FTA_KERNELS = (3, 5)


@dataclass(frozen=True)
class HSTLConfig(SkeletonMapModelConfig):
    """Map canvas, frame sampling, ARME widths (one per level), triplet margin
    (``SkeletonMapModelConfig``), regions per level (top-down).

    ``embedding_dim`` must be a multiple of sum(levels) (one part per region of every level).
    """

    embedding_dim: int = 112
    levels: tuple[int, ...] = (1, 2, 4)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.levels or len(self.channels) != len(self.levels):
            raise ValueError("levels and channels need one entry per hierarchy level")
        if min(self.levels) < 1:
            raise ValueError("levels must be >= 1")
        rows = (self.map_height + 1) // 2                     # after the 2x2 pool
        if self.map_height % self.levels[0] or any(rows % r for r in self.levels[1:]):
            raise ValueError(f"every level's region count must divide the map rows ({self.map_height}, "
                             f"then {rows}), got {self.levels}")
        if self.embedding_dim % sum(self.levels):
            raise ValueError(f"embedding_dim must be a multiple of sum(levels) = {sum(self.levels)}")


class ARME(nn.Module):
    """Adaptive region-based motion extractor: region-independent 3D convolution + LeakyReLU."""

    def __init__(self, c_in: int, c_out: int, regions: int) -> None:
        super().__init__()
        self.conv = StripConv3d(c_in, c_out, regions)

    def forward(self, x: torch.Tensor, frame_valid: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.conv(x), inplace=True)
        return y * frame_valid[:, None, :, None, None].to(y.dtype)


class ASTP(nn.Module):
    """Adaptive spatio-temporal pooling of one level: per region a learnt max/mean mix over time,
    GeM over the region, a separate FC per region -> (N, regions, part_dim)."""

    def __init__(self, channels: int, regions: int, part_dim: int) -> None:
        super().__init__()
        self.regions = regions
        self.mix = nn.Parameter(torch.zeros(regions))           # sigmoid: 0.5 max + 0.5 mean at start
        self.gem = GeM()
        self.fc = nn.Parameter(torch.empty(regions, channels, part_dim))
        nn.init.xavier_uniform_(self.fc)

    def forward(self, x: torch.Tensor, frame_valid: torch.Tensor) -> torch.Tensor:
        t = x.shape[2]
        mx, mean, _ = masked_temporal_pool(x, frame_valid, t, t)                # whole clip
        n, c, _, h, w = mx.shape
        k = self.regions
        mx, mean = mx.reshape(n, c, k, h // k * w), mean.reshape(n, c, k, h // k * w)
        a = torch.sigmoid(self.mix)[None, None, :, None]
        pooled = self.gem(a * mx + (1 - a) * mean, dim=(3,))                     # (N, C, k)
        return torch.einsum("nck,kcd->nkd", pooled, self.fc)


class FTA(nn.Module):
    """Frame-level temporal aggregation: weighted masked max pools of several sizes, stride 2."""

    def __init__(self) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(len(FTA_KERNELS)))

    def forward(self, x: torch.Tensor, frame_valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = torch.softmax(self.weights, 0)
        out, valid = None, None
        for i, k in enumerate(FTA_KERNELS):
            # centre each kernel on the output frame: pad k // 2 invalid frames in front
            pad = k // 2
            xp = F.pad(x, (0, 0, 0, 0, pad, 0))
            mp = torch.cat([frame_valid.new_zeros(frame_valid.shape[0], pad), frame_valid], 1)
            mx, _, v = masked_temporal_pool(xp, mp, k, 2)
            t_out = -(-x.shape[2] // 2)
            mx, v = mx[:, :, :t_out], v[:, :t_out]
            out = w[i] * mx if out is None else out + w[i] * mx
            valid = v if valid is None else valid | v
        assert out is not None and valid is not None           # at least one pooling scale
        return out, valid


@register_model("hstl", HSTLConfig)
class HSTL(WindowPartModel):
    """Skeleton-map clips -> ARME per level (coarse to fine) with FTA -> ASTP per level -> BNNeck."""

    config: HSTLConfig

    def __init__(self, config: HSTLConfig) -> None:
        super().__init__(config)
        c = config
        part_dim = c.embedding_dim // sum(c.levels)
        c_prev = 2
        self.arme, self.astp = nn.ModuleList(), nn.ModuleList()
        for regions, ch in zip(c.levels, c.channels):
            self.arme.append(ARME(c_prev, ch, regions))
            self.astp.append(ASTP(ch, regions, part_dim))
            c_prev = ch
        self.fta = FTA()
        self.head = PartHead(sum(c.levels), None, c.embedding_dim, c.num_classes, c.dropout)

    @property
    def num_parts(self) -> int:
        return sum(self.config.levels)

    def encode_window_parts(self, positions: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        c = self.config
        frame_valid = valid.any(-1)
        maps = render_frames(positions, valid, c.map_config, c.in_dims, limbs=True, fused=True)
        x = maps.transpose(1, 2)                                                       # (N, 2, T, H, W)
        parts = []
        for level, (arme, astp) in enumerate(zip(self.arme, self.astp)):
            x = arme(x, frame_valid)
            parts.append(astp(x, frame_valid))
            if level == 0:
                x = F.max_pool3d(x, (1, 2, 2), ceil_mode=True)
                x, frame_valid = self.fta(x, frame_valid)
        return torch.cat(parts, 1).flatten(1)                                          # (N, sum(levels)*d)
