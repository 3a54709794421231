"""Pieces shared by the skeleton-map gait models (GaitHeat, GaitMM, HSTL).

- ``SkeletonMapModelConfig``: the config fields the three share (map canvas, frame sampling,
  CNN widths, triplet margin); ``WindowPartModel``: GaitMM's and HSTL's forward (each window's
  clip -> part vectors, mean over the windows, ``PartHead``) and their triplet + CE loss terms;
- ``window_frames`` / ``render_frames``: the batch's real windows, every ``frame_step``-th
  frame, rendered as skeleton maps (encoder/data/skeleton_maps.py) with the observed/missing
  mask as confidence;
- ``StripConv3d``: 3D convolutions with separate weights per horizontal strip (body part);
- ``store_convolutions_channels_last``: the models' conv weights in the layout CPU convolutions run fastest on;
- ``masked_temporal_pool`` / ``masked_temporal_max``: temporal pooling over valid frames only;
- ``horizontal_bins`` / ``GeM``: horizontal pyramid pooling of a feature map;
- ``PartHead`` (with ``NeckNorm``): per-part FC (HPM's mapping) + BNNeck + per-part classifier;
- ``part_triplet_loss`` / ``part_ce_loss``: batch-all triplet and cross-entropy per part.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from encoder.data.batch import PoseBatch
from encoder.data.skeleton_maps import SkeletonMapConfig, render_skeleton_maps
from encoder.models.base import ModelConfig, StyleModel, StyleOutput
from encoder.models.layers import (
    EVAL_WINDOW_CHUNK,
    LOGIT_SCALE,
    MaskedBatchNorm,
    at_least_float32,
    encode_windows_in_chunks,
    gather_windows,
    mean_over_windows,
)


@dataclass(frozen=True)
class SkeletonMapModelConfig(ModelConfig):
    """Fields every skeleton-map gait model has: the map canvas (``map_config``), every
    ``frame_step``-th frame of a window, the CNN ``channels`` and the triplet margin."""

    map_height: int = 32
    map_width: int = 22
    sigma: float = 1.0
    frame_step: int = 4
    channels: tuple[int, ...] = (8, 16, 32)
    triplet_margin: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"channels must be positive widths, got {self.channels}")
        if self.frame_step < 1:
            raise ValueError(f"frame_step must be >= 1, got {self.frame_step}")
        if self.triplet_margin < 0:
            raise ValueError("triplet_margin must be >= 0")
        SkeletonMapConfig(self.map_height, self.map_width, self.sigma)     # validates the canvas

    @property
    def map_config(self) -> SkeletonMapConfig:
        return SkeletonMapConfig(self.map_height, self.map_width, self.sigma)


def store_convolutions_channels_last(model: nn.Module) -> None:
    """Keep every 2D/3D convolution's weight channels-last, so oneDNN runs the convolutions (and the batch norms
    after them) channels-last: on CPU a training step of GaitHeat or GaitMM takes about 1.3x less CPU time and
    an eval batch 1.15-1.25x less (``posestyle bench encoder-speed``, docs/benchmarks/encoder-speed-*.md);
    HSTL, almost all grouped strip convolutions, gained nothing measurable and keeps the default layout. Values
    and checkpoints are unchanged (checkpoints store contiguous copies; loading copies into these weights)."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Conv3d)):
            layout = torch.channels_last if isinstance(module, nn.Conv2d) else torch.channels_last_3d
            # ``to`` restrides even a 1-channel or 1x1 weight, which ``contiguous`` would leave as it is
            module.weight.data = module.weight.data.to(memory_format=layout)


def window_frames(batch: PoseBatch, frame_step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Real windows, every ``frame_step``-th frame: positions (N, T, J, C), valid (N, T, J), window_mask (B, M)."""
    positions, _, valid, window_mask = gather_windows(batch)
    return positions[:, ::frame_step], valid[:, ::frame_step], window_mask


def render_frames(positions: torch.Tensor, valid: torch.Tensor, map_config: SkeletonMapConfig,
                  in_dims: int, limbs: bool, fused: bool = False) -> torch.Tensor:
    """(..., J, C) frames -> (..., V, H, W) skeleton maps; missing joints render empty."""
    lead = positions.shape[:-2]
    flat = render_skeleton_maps(positions.reshape(-1, *positions.shape[-2:]),
                                valid.reshape(-1, valid.shape[-1]), map_config, in_dims, limbs, fused)
    return flat.reshape(*lead, *flat.shape[1:])


class GeM(nn.Module):
    """Generalised-mean pooling with a learnable exponent p (GaitMM/GaitGL; p init 6.5)."""

    def __init__(self, p: float = 6.5, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor, dim: tuple[int, ...]) -> torch.Tensor:
        return x.clamp_min(self.eps).pow(self.p).mean(dim=dim).pow(1.0 / self.p)


def horizontal_bins(x: torch.Tensor, bins: tuple[int, ...], gem: GeM | None = None) -> torch.Tensor:
    """Horizontal pyramid pooling of (N, C, H, W) -> (N, P, C), P = sum(bins).

    Each scale cuts the height into ``b`` strips; a strip is pooled by max + mean (GaitSet's
    HPM) or, with ``gem``, by generalised mean (GaitMM). H must be divisible by every bin count
    (strips then never straddle rows).
    """
    n, c, h, w = x.shape
    parts = []
    for b in bins:
        strips = x.reshape(n, c, b, (h // b) * w)
        parts.append(gem(strips, dim=(3,)) if gem is not None else strips.amax(3) + strips.mean(3))
    return torch.cat(parts, dim=2).transpose(1, 2)


# Running-statistics momentum of the gait models' batch norms. The papers train for ~80k steps,
# where torch's 0.1 is fine; a CPU run here has a few hundred, the features still move fast, and
# 0.1 lags so far behind that eval-mode embeddings collapse for epochs (measured on the toy walks:
# validation accuracy 0.33 for 6 epochs at 0.1, 1.0 from epoch 2 with current statistics).
RUNNING_MOMENTUM = 0.3


class NeckNorm(MaskedBatchNorm):
    """BNNeck's batch norm: running statistics average the first batches equally, then follow
    a ``RUNNING_MOMENTUM`` moving average (see there)."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels)
        self.register_buffer("batches_seen", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor, mask: torch.Tensor,
                offset: torch.Tensor | None = None) -> torch.Tensor:
        if self.training and mask.sum() > 1:
            seen = self.get_buffer("batches_seen")
            self.momentum = max(RUNNING_MOMENTUM, 1.0 / float(seen + 1))
            seen += 1
        return super().forward(x, mask, offset)


class PartHead(nn.Module):
    """Per-part FC (the mapping of HPM), BNNeck and per-part classifier.

    Input (B, P, C) part features (``in_channels`` None: already mapped, C = embedding_dim / P,
    no FC). Returns ``features`` (B, P, d) before the BN (the triplet
    loss's space, BNNeck), the unit-norm retrieval ``embedding`` (B, P*d) of the BN'd features,
    and ``part_logits`` (B, P, K) from the BN'd features (the cross-entropy's space).
    """

    def __init__(self, num_parts: int, in_channels: int | None, embedding_dim: int, num_classes: int,
                 dropout: float) -> None:
        super().__init__()
        if embedding_dim % num_parts:
            raise ValueError(f"embedding_dim {embedding_dim} must be a multiple of the {num_parts} parts")
        part_dim = embedding_dim // num_parts
        self.fc = None if in_channels is None else nn.Parameter(torch.empty(num_parts, in_channels, part_dim))
        self.bn = NeckNorm(embedding_dim)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Parameter(torch.empty(num_parts, part_dim, num_classes))
        if self.fc is not None:
            nn.init.xavier_uniform_(self.fc)
        nn.init.xavier_uniform_(self.classifier)

    def forward(self, parts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with torch.autocast(parts.device.type, enabled=False):   # float32 under bfloat16 autocast (EmbeddingHead)
            return self._forward(at_least_float32(parts))

    def _forward(self, parts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = parts if self.fc is None else torch.einsum("bpc,pcd->bpd", parts, self.fc)  # separate FCs
        b, p, d = features.shape
        normed = self.bn(features.reshape(b, p * d), torch.ones(b, dtype=torch.bool, device=parts.device))
        embedding = F.normalize(normed, dim=-1, eps=1e-8)
        unit_parts = F.normalize(self.dropout(normed).reshape(b, p, d), dim=-1, eps=1e-8)
        part_logits = torch.einsum("bpd,pdk->bpk", unit_parts * LOGIT_SCALE, self.classifier)
        return features, embedding, part_logits


def part_triplet_loss(features: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Batch-all triplet loss per part, mean over the triplets with a non-zero hinge.

    ``features`` (B, P, d); labels -1 (unknown) take no part. Distances are Euclidean per part.
    """
    known = labels >= 0
    f, y = features[known].transpose(0, 1), labels[known]                     # (P, B', d)
    zero = features.sum() * 0.0
    if y.numel() < 3:
        return zero
    dist = torch.cdist(f, f)                                                  # (P, B', B')
    same = y[:, None] == y[None, :]
    eye = torch.eye(len(y), dtype=torch.bool, device=y.device)
    pos, neg = same & ~eye, ~same
    valid = pos[:, :, None] & neg[:, None, :]                                 # anchor, positive, negative
    if not valid.any():
        return zero
    hinge = torch.relu(dist[:, :, :, None] - dist[:, :, None, :] + margin)[:, valid]   # (P, n)
    active = hinge > 0
    return hinge.sum() / active.sum().clamp_min(1)


def part_ce_loss(part_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every part's logits (mean over parts), unknown labels left out."""
    known = labels >= 0
    if not known.any():
        return part_logits.sum() * 0.0
    logits = part_logits[known]
    b, p, k = logits.shape
    return F.cross_entropy(logits.reshape(b * p, k), labels[known].repeat_interleave(p))


def masked_temporal_max(x: torch.Tensor, frame_valid: torch.Tensor, dim: int = 2) -> torch.Tensor:
    """Max over time of (N, C, T, ...) features counting only valid frames (temporal pooling)."""
    shape = [1] * x.dim()
    shape[0], shape[dim] = frame_valid.shape
    mask = frame_valid.reshape(shape)
    return torch.where(mask, x, torch.full_like(x, float("-inf"))).amax(dim).nan_to_num(0.0, neginf=0.0)


def _pad_time(frame_valid: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """(N, T) bool padded with invalid frames at the end so windows of ``kernel``/``stride`` cover T."""
    t = frame_valid.shape[1]
    t_out = -(-max(t - kernel, 0) // stride) + 1
    pad = (t_out - 1) * stride + kernel - t
    return torch.cat([frame_valid, frame_valid.new_zeros(frame_valid.shape[0], pad)], 1)


def pool_frame_mask(frame_valid: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """(N, T) bool -> (N, T') bool: an output frame is valid when any frame under it was."""
    return _pad_time(frame_valid, kernel, stride).unfold(1, kernel, stride).any(-1)


def masked_temporal_pool(x: torch.Tensor, frame_valid: torch.Tensor, kernel: int,
                         stride: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Windowed max and mean over time of (N, C, T, H, W), counting only valid frames.

    Returns (max, mean, out_valid); invalid frames are padded at the end so every frame falls
    under a window; output frames with no valid input are 0.
    """
    m = _pad_time(frame_valid, kernel, stride)
    xp = F.pad(x, (0, 0, 0, 0, 0, m.shape[1] - x.shape[2]))
    win = xp.unfold(2, kernel, stride)                                         # (N, C, T', H, W, k)
    mw = m.unfold(1, kernel, stride)                                           # (N, T', k)
    out_valid = mw.any(-1)
    mwb = mw[:, None, :, None, None, :]
    mx = torch.where(mwb, win, torch.full_like(win, float("-inf"))).amax(-1)
    mx = torch.where(out_valid[:, None, :, None, None], mx, torch.zeros_like(mx))
    mean = (win * mwb).sum(-1) / mwb.sum(-1).clamp_min(1)
    return mx, mean, out_valid


class StripConv3d(nn.Module):
    """3x3x3 convolutions with separate weights per horizontal strip (``parts`` strips).

    Each strip is convolved on its own (zero padding at strip borders), as GaitMM's PME
    (eq. (2)-(3)) and HSTL's region-based extractor do; computed as one grouped convolution.
    """

    def __init__(self, c_in: int, c_out: int, parts: int) -> None:
        super().__init__()
        self.parts, self.c_out = parts, c_out
        self.conv = nn.Conv3d(c_in * parts, c_out * parts, 3, padding=1, groups=parts, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, h, w = x.shape
        k = self.parts
        if h % k:
            raise ValueError(f"feature height {h} is not divisible into {k} strips")
        strips = x.reshape(n, c, t, k, h // k, w).permute(0, 3, 1, 2, 4, 5).reshape(n, k * c, t, h // k, w)
        y = self.conv(strips).reshape(n, k, self.c_out, t, h // k, w)
        return y.permute(0, 2, 3, 1, 4, 5).reshape(n, self.c_out, t, h, w)


class WindowPartModel(StyleModel):
    """A gait model that encodes each window's frames to ``num_parts`` part vectors
    (``encode_window_parts``), averages them over the sequence's real windows and ends in one
    ``PartHead`` (``self.head``); its own training terms are triplet + cross-entropy per part."""

    config: SkeletonMapModelConfig
    head: PartHead

    @property
    def num_parts(self) -> int:
        raise NotImplementedError

    def encode_window_parts(self, positions: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(N, T, J, C) sampled frames and (N, T, J) valid joints -> (N, num_parts * d) window vectors."""
        raise NotImplementedError

    def forward(self, batch: PoseBatch) -> StyleOutput:
        self.check_batch(batch)
        positions, valid, window_mask = window_frames(batch, self.config.frame_step)
        vectors = encode_windows_in_chunks(self.encode_window_parts, (positions, valid),
                                           None if self.training else EVAL_WINDOW_CHUNK)
        parts = mean_over_windows(vectors, window_mask).reshape(len(batch), self.num_parts, -1)
        features, embedding, part_logits = self.head(parts)
        return StyleOutput(embedding=embedding, logits=part_logits.mean(1), window_mask=window_mask,
                           aux={"features": features, "part_logits": part_logits})

    def extra_losses(self, output: StyleOutput, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Triplet + cross-entropy on every part."""
        aux = output.aux or {}
        labels = labels.to(output.embedding.device)
        return {"triplet": part_triplet_loss(aux["features"], labels, self.config.triplet_margin),
                "part_ce": part_ce_loss(aux["part_logits"], labels)}
