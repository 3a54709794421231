"""GaitHeat (paper ``004_*``, "Cut out the Middleman") on keypoints rendered as heatmaps.

The paper feeds the pose estimator's heatmaps; this project has keypoints, so every sampled
frame is rendered as per-joint Gaussian heatmaps (optionally per-limb too) after the paper's
pretreatment, crop + Pose-Guided Heatmap Alignment (section 3.2, eq. (1)-(4); see
encoder/data/skeleton_maps.py). Then, as in Fig. 3:

- multi-channel integration (eq. (5)): the global map is the max over all heatmaps, each local
  map the max over one body partition's heatmaps;
- a parameter-sharing per-frame CNN F_share (eq. (6)) over the global and local maps; the
  local branch's features are merged by Max Response (eq. (7));
- a multi-stage fusion branch (eq. (8)): MR of the global and local features at each stage
  plus an independent CNN stage F_fusion over the previous fusion features;
- set pooling (max over the sequence's distinct frames, order-free as in GaitSet), horizontal pyramid
  mapping and BNNeck for each branch; training loss eq. (9): triplet + cross-entropy on the
  global, local and fusion branches (added to the project's ``StyleLoss``); the fusion
  embedding is the retrieval vector, as in the paper's testing phase.

Scaled down for 2 CPU cores (paper -> here): heatmaps 64x48 -> 32x22 (sigma 2 -> 1 px);
ResNet9 backbone (a stem and four residual stages, 64-512 channels) -> a stem and two residual
stages of (8, 16, 32) channels; 30 random frames
of a sequence -> every ``frame_step``-th frame of each window (training also crops windows);
PGHA always on above the tilt threshold (no random 0.2 application).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from encoder.data.batch import PoseBatch
from encoder.data.skeleton import BODY_REGIONS
from encoder.data.skeleton_maps import group_max, limb_groups
from encoder.models.base import StyleModel, StyleOutput
from encoder.models.gait_layers import (
    RUNNING_MOMENTUM,
    PartHead,
    SkeletonMapModelConfig,
    horizontal_bins,
    part_ce_loss,
    part_triplet_loss,
    render_frames,
    store_convolutions_channels_last,
    window_frames,
)
from encoder.models.registry import register_model

# Frames encoded per chunk at inference (bounds the memory of rendered maps and activations).
EVAL_FRAME_CHUNK = 512
BRANCHES = ("global", "local", "fusion")


@dataclass(frozen=True)
class GaitHeatConfig(SkeletonMapModelConfig):
    """Heatmap canvas, frame sampling, CNN widths, triplet margin (``SkeletonMapModelConfig``),
    per-limb maps or not, body partitions, HPM bins.

    ``embedding_dim`` is the fusion branch's BNNeck output: sum(hpm_bins) parts x (dim / parts).
    """

    embedding_dim: int = 112
    frame_step: int = 8
    limbs: bool = False
    partitions: tuple[tuple[str, ...], ...] = (("head", "torso"), ("left_arm", "right_arm"),
                                                ("left_leg", "right_leg"))
    hpm_bins: tuple[int, ...] = (1, 2, 4)

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.channels) != 3:
            raise ValueError(f"channels needs 3 positive widths (one per stage), got {self.channels}")
        if not self.partitions or any(r not in BODY_REGIONS for p in self.partitions for r in p):
            raise ValueError(f"partitions must name regions of {sorted(BODY_REGIONS)}, got {self.partitions}")
        rows = (self.map_height + 3) // 4                     # after two stride-2 stages
        if not self.hpm_bins or any(b < 1 or rows % b for b in self.hpm_bins):
            raise ValueError(f"hpm_bins must divide the final feature height {rows}, got {self.hpm_bins}")
        if self.embedding_dim % sum(self.hpm_bins):
            raise ValueError(f"embedding_dim must be a multiple of sum(hpm_bins) = {sum(self.hpm_bins)}")


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs with BN, identity or 1x1 shortcut)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out, momentum=RUNNING_MOMENTUM)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out, momentum=RUNNING_MOMENTUM)
        self.shortcut = (nn.Identity() if stride == 1 and c_in == c_out else
                         nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                       nn.BatchNorm2d(c_out, momentum=RUNNING_MOMENTUM)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


def _stages(channels: tuple[int, ...], c_in: int) -> nn.ModuleList:
    """Stem conv, then two residual stages of stride 2: GaitBase's ResNet9, scaled down."""
    c0, c1, c2 = channels
    return nn.ModuleList([
        nn.Sequential(nn.Conv2d(c_in, c0, 3, 1, 1, bias=False), nn.BatchNorm2d(c0, momentum=RUNNING_MOMENTUM),
                      nn.ReLU()),
        BasicBlock(c0, c1, 2),
        BasicBlock(c1, c2, 2),
    ])


def distinct_frames(frames: torch.Tensor, valid: torch.Tensor, seq: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each sequence's distinct frames, (F, J, C), (F, J), (F,) -> the same with repeats left out, in order.

    Training windows overlap (stride 16 of 32) and every ``frame_step``-th frame is sampled, so half of a
    sequence's sampled frames are the same keypoints twice (eq. (1) normalises per frame, before the
    windows). Set pooling takes the max over the frames, which repeats do not change, so each distinct frame
    is encoded once: about half the CNN work of a training step.
    """
    if frames.shape[0] < 2:
        return frames, valid, seq
    rows = torch.cat([seq[:, None].to(frames.dtype), frames.flatten(1), valid.to(frames.dtype)], 1)
    _, inverse = torch.unique(rows, dim=0, return_inverse=True)
    order = torch.arange(rows.shape[0], device=rows.device)
    first = torch.full((int(inverse.max()) + 1,), rows.shape[0], device=rows.device, dtype=order.dtype)
    keep = first.scatter_reduce(0, inverse, order, "amin").sort().values
    return frames[keep], valid[keep], seq[keep]


@register_model("gaitheat", GaitHeatConfig)
class GaitHeat(StyleModel):
    """Heatmaps -> global/local/fusion CNN branches -> set pooling -> HPM -> BNNeck heads."""

    config: GaitHeatConfig

    def __init__(self, config: GaitHeatConfig) -> None:
        super().__init__(config)
        c = config
        joint_sets = tuple(tuple(j for r in p for j in BODY_REGIONS[r]) for p in c.partitions)
        self.groups = limb_groups(joint_sets) if c.limbs else joint_sets
        self.shared = _stages(c.channels, 1)                     # F_share, eq. (6)
        self.fusion = _stages(c.channels, 1)[1:]                 # F_fusion^i for i >= 2, eq. (8)
        parts = sum(c.hpm_bins)
        self.heads = nn.ModuleDict({b: PartHead(parts, c.channels[-1], c.embedding_dim, c.num_classes, c.dropout)
                                    for b in BRANCHES})
        store_convolutions_channels_last(self)

    def _frame_features(self, positions: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(F, J, C) observed frames -> (F, 3, D, h, w): global, local (MR) and fusion features."""
        c = self.config
        maps = render_frames(positions, valid, c.map_config, c.in_dims, c.limbs)    # (F, V, H, W)
        n = maps.shape[0]
        k = len(self.groups)
        x = torch.cat([maps.amax(1, keepdim=True), group_max(maps, self.groups)], 1)  # eq. (5): (F, 1+K, H, W)
        x = x.reshape(n * (1 + k), 1, *x.shape[2:])       # global and local maps share F_share
        fused = None
        for i, stage in enumerate(self.shared):
            x = stage(x)
            per = x.reshape(n, 1 + k, *x.shape[1:])
            mr = torch.maximum(per[:, 0], per[:, 1:].amax(1))           # MR(f_local, f_global)
            fused = mr if fused is None else mr + self.fusion[i - 1](fused)  # eq. (8)
        per = x.reshape(n, 1 + k, *x.shape[1:])
        assert fused is not None                                  # at least one stage
        return torch.stack([per[:, 0], per[:, 1:].amax(1), fused], 1)  # eq. (7): MR of the local parts

    def forward(self, batch: PoseBatch) -> StyleOutput:
        self.check_batch(batch)
        c = self.config
        positions, valid, window_mask = window_frames(batch, c.frame_step)
        frame_valid = valid.any(-1)                                                   # (N, T)
        seq_of_window = window_mask.nonzero()[:, 0]
        frame_seq = seq_of_window[:, None].expand_as(frame_valid)[frame_valid]       # (F,)
        frames, frames_valid = positions[frame_valid], valid[frame_valid]
        frames, frames_valid, frame_seq = distinct_frames(frames, frames_valid, frame_seq)
        step = frames.shape[0] if self.training else EVAL_FRAME_CHUNK
        feats = torch.cat([self._frame_features(frames[s:s + step], frames_valid[s:s + step])
                           for s in range(0, max(frames.shape[0], 1), step)], 0)     # (F, 3, D, h, w)
        # set pooling: max over each sequence's frames (order-free), the features are >= 0
        flat = feats.flatten(1)
        pooled = flat.new_zeros(len(batch), flat.shape[1]).scatter_reduce(
            0, frame_seq[:, None].expand_as(flat), flat, "amax", include_self=False)
        pooled = pooled.reshape(len(batch), *feats.shape[1:])
        aux: dict[str, torch.Tensor] = {}
        for i, branch in enumerate(BRANCHES):
            parts = horizontal_bins(pooled[:, i], c.hpm_bins)                         # HPM
            features, embedding, part_logits = self.heads[branch](parts)              # BNNeck
            aux[f"{branch}_features"], aux[f"{branch}_logits"] = features, part_logits
        return StyleOutput(embedding=embedding, logits=part_logits.mean(1), window_mask=window_mask, aux=aux)

    def extra_losses(self, output: StyleOutput, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eq. (9): triplet + cross-entropy for the global, local and fusion branches."""
        aux = output.aux or {}
        labels = labels.to(output.embedding.device)
        triplet = torch.stack([part_triplet_loss(aux[f"{b}_features"], labels, self.config.triplet_margin)
                               for b in BRANCHES]).sum()
        ce = torch.stack([part_ce_loss(aux[f"{b}_logits"], labels) for b in BRANCHES]).sum()
        return {"triplet": triplet, "part_ce": ce}
