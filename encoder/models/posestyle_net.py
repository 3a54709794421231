"""PoseStyle-Net (paper sections 3.1-3.3, eqs. 3-12), every part switchable for ablation.

Per window (all windows of the batch encoded together, (N, L, J, C)):
  input [positions, velocity, joint mask] per joint, ``frames_per_token`` (4) consecutive
  frames side by side form a token, batch-normalised per input channel -> velocity-weighted
  pose graph per token (eq. 3) -> three stacked graph + temporal convolution units, the
  shallow / mid / deep branches with growing receptive fields (eq. 4) -> per branch, temporal and
  joint attention (eq. 5) pool the branch into a window vector U_m and body-region vectors H_m,a.
Per sequence (over its M windows):
  gated segment fusion Z (eq. 6); ``num_relation_layers`` relation layers, each: temporal
  relation R^t (eq. 7), spatial synergy R^s (eq. 8), joint propagation (eq. 9), stage gating
  (eq. 10); cross-stage aggregation E (eq. 11); embedding = L2-normalised projection of
  [E; Z]; logits (eq. 12).

Readings of the paper where it leaves shapes open (documented, tested):
- eq. (3) is built per token (the token's mean velocity over its 4 frames; 8 frames for the
  deep unit, after its stride) rather than per frame: the graph costs J x J per entry, and per
  frame it would dominate the encoder's cost. G has self-loops (a joint keeps its own
  feature); pairs with a missing joint are removed (not zero-filled) and each row is
  normalised to sum to 1, so a graph convolution is a weighted mean over observed neighbours.
- eq. (4): W_r * X_r is a partitioned graph convolution over the eq. (3) graph: the graph is
  split, as in ST-GCN's spatial configuration, into pairs at the same hop distance from the
  torso, pairs closer to it and pairs farther from it, each part row-normalised over the
  observed joints; the three aggregates side by side get one linear channel map, b_r is a bias
  per joint and channel, then BN (masked statistics) and ReLU (phi). Each unit follows this
  with a full temporal convolution (optionally strided / dilated) and BN, plus a residual
  connection and ReLU: with these the units train much faster under a short budget than a
  depthwise-only temporal convolution. The branches are the taps of three stacked units with
  receptive fields of 12 frames (shallow), 20 frames (mid, temporal stride 2) and the whole
  window (deep, dilation 2).
- eq. (5): "Pool" is a masked mean; temporal attention is a softmax over the window's tokens,
  joint attention a softmax over its joints; the weighted sums give U_m, and the
  attention-weighted mean over each region's joints gives the region feature H_m,a of eq. (8).
  The branches meet (cross-layer fusion) as a sum of per-branch linear maps into one space.
- eq. (6) and eq. (11): Z (attention over the pre-relation states U) and E (over the gated
  relation states) are two views of the sequence; the embedding projects their concatenation.
- eq. (7): the feature distance is the mean squared difference of layer-normalised states (so
  tau1 does not depend on the width or scale); rows of R^t are normalised over the valid
  windows so the update does not grow with the sequence length.
- eq. (9): the spatial term is per window: the region features H_m,b are propagated over the
  region synergy matrix R^s_m (eq. 8), sum_b R^s_ab W_s H_b, and averaged over the valid
  regions a (both sums normalised by the number of valid regions), which gives one vector per
  window added to the temporal term before rho (GELU).
- Missing data: padded windows are never encoded; padded frames and missing joints are zero
  inputs flagged by the mask channel and excluded from every statistic, softmax and mean.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from encoder.data.batch import PoseBatch
from encoder.data.skeleton import NUM_JOINTS
from encoder.models.base import ModelConfig, StyleModel, StyleOutput
from encoder.models.layers import (
    EVAL_WINDOW_CHUNK,
    EmbeddingHead,
    MaskedBatchNorm,
    encode_windows_in_chunks,
    gather_windows,
    group_frames,
    joint_features,
    masked_softmax,
    region_membership,
    scatter_windows,
    skeleton_adjacency,
    torso_partitions,
    uniform_weights,
)
from encoder.models.registry import register_model


@dataclass(frozen=True)
class PoseStyleNetConfig(ModelConfig):
    """PoseStyle-Net settings.

    ``frames_per_token`` consecutive frames form one token (their features side by side);
    ``branch_*`` give the shallow, mid and deep units of eq. (4): output channels, temporal
    stride and dilation of each unit's temporal convolution (kernel ``temporal_kernel``).
    """

    frames_per_token: int = 4
    branch_channels: tuple[int, ...] = (32, 48, 64)
    branch_strides: tuple[int, ...] = (1, 2, 1)
    branch_dilations: tuple[int, ...] = (1, 1, 2)
    temporal_kernel: int = 3
    relation_dim: int = 192
    num_relation_layers: int = 2
    graph_lambda: float = 0.5   # eq. (3) lambda
    graph_sigma: float = 2.0    # eq. (3) sigma, normalised units per second
    tau1: float = 1.0           # eq. (7) feature-distance decay
    tau2: float = 0.25          # eq. (7) phase-distance decay (phase in [0, 1])
    use_velocity_graph: bool = True
    use_multi_branch: bool = True
    use_attention: bool = True
    use_segment_fusion: bool = True
    use_temporal_relation: bool = True
    use_spatial_synergy: bool = True
    use_stage_gating: bool = True
    use_cross_stage_aggregation: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_joints != NUM_JOINTS:
            raise ValueError(f"posestyle_net needs the {NUM_JOINTS}-joint COCO skeleton, "
                             f"got num_joints={self.num_joints}")
        if self.frames_per_token < 1:
            raise ValueError(f"frames_per_token must be >= 1, got {self.frames_per_token}")
        n = len(self.branch_channels)
        if n < 1 or len(self.branch_strides) != n or len(self.branch_dilations) != n:
            raise ValueError("branch_channels, branch_strides and branch_dilations need one entry "
                             f"per unit, got {self.branch_channels}, {self.branch_strides}, "
                             f"{self.branch_dilations}")
        if min(self.branch_channels + self.branch_strides + self.branch_dilations) < 1:
            raise ValueError("branch channels, strides and dilations must be >= 1")
        if self.temporal_kernel < 1 or self.temporal_kernel % 2 == 0:
            raise ValueError(f"temporal_kernel must be odd and >= 1, got {self.temporal_kernel}")
        if self.relation_dim < 2 or self.num_relation_layers < 1:
            raise ValueError("relation_dim must be >= 2 and num_relation_layers >= 1")
        if not 0.0 <= self.graph_lambda <= 1.0:
            raise ValueError(f"graph_lambda must be in [0, 1], got {self.graph_lambda}")
        if not (self.graph_sigma > 0 and self.tau1 > 0 and self.tau2 > 0):
            raise ValueError("graph_sigma, tau1 and tau2 must be > 0")


@torch.no_grad()
def pose_graph(velocity: torch.Tensor, mask: torch.Tensor, skeleton: torch.Tensor,
               lam: float, sigma: float, use_velocity: bool) -> torch.Tensor:
    """Per-token pose graph (N, T, J, J); row i is a weighted mean over the observed joints j.

    With ``use_velocity``: eq. (3) A = lam G + (1 - lam) exp(-||V_i - V_j||^2 / sigma^2);
    otherwise the plain skeleton G. Columns of missing joints are removed, then rows are
    normalised to sum to 1 (rows of missing joints are masked downstream). Built from the
    data alone (no parameters), so it carries no gradient.
    """
    col = mask[..., None, :].to(velocity.dtype)
    if use_velocity:
        # exponent -||V_i - V_j||^2 / sigma^2 + log(1 - lam), from one batched product
        sq = (velocity * velocity).sum(-1)
        flat = velocity.flatten(0, -3)
        offset = math.log(1.0 - lam) if lam < 1.0 else float("-inf")
        base = ((sq[..., :, None] + sq[..., None, :]) * (-1.0 / sigma ** 2) + offset).flatten(0, -3)
        exponent = torch.baddbmm(base, flat, flat.transpose(1, 2), alpha=2.0 / sigma ** 2)
        graph = exponent.clamp_max_(offset).exp_().view(sq.shape + sq.shape[-1:])
        graph.add_(lam * skeleton).mul_(col)                                    # eq. (3)
    else:
        graph = skeleton * col
    return graph.div_(graph.sum(-1, keepdim=True).clamp_min_(1e-6))


def pool_tokens(velocity_sum: torch.Tensor, count: torch.Tensor,
                size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge ``size`` consecutive tokens: summed velocity (N, T, J, C) and counts (N, T, J, 1)."""
    if size == 1:
        return velocity_sum, count
    pad = (-velocity_sum.shape[1]) % size
    if pad:
        velocity_sum = F.pad(velocity_sum, (0, 0, 0, 0, 0, pad))
        count = F.pad(count, (0, 0, 0, 0, 0, pad))
    n, t, j, c = velocity_sum.shape
    return (velocity_sum.view(n, t // size, size, j, c).sum(2),
            count.view(n, t // size, size, j, 1).sum(2))


def split_graph(graph: torch.Tensor, parts: torch.Tensor) -> torch.Tensor:
    """Eq. (4) parts of the eq. (3) graph: (N, T, J, J) -> (N, T, J, K, J), each part of each row
    a weighted mean over its observed joints.

    ``parts`` (J, K, J) is ``torso_partitions`` with the part axis in the middle, so one batched
    product of the result with (N, T, J, C) features gives every joint's K aggregates side by side.
    """
    split = graph[..., :, None, :] * parts
    return split.div_(split.sum(-1, keepdim=True).clamp_min_(1e-6))


class GraphTemporalUnit(nn.Module):
    """Eq. (4) F_r = phi(BN(W_r * X_r + b_r)), then a temporal convolution with a residual.

    W_r * X_r: graph convolution over the eq. (3) graph of each token split into the
    ``torso_partitions`` over every pair (``split_graph``: each part a weighted mean over observed
    joints), one linear map of the parts side by side; b_r a learned bias per joint and channel.
    Then a full temporal convolution (optionally strided), BN, the residual input added, ReLU.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int, stride: int, num_parts: int) -> None:
        super().__init__()
        self.spatial = nn.Linear(num_parts * c_in, c_out, bias=False)
        self.joint_bias = nn.Parameter(torch.zeros(NUM_JOINTS, c_out))
        self.spatial_norm = MaskedBatchNorm(c_out)
        self.temporal = nn.Conv2d(c_out, c_out, (kernel, 1), stride=(stride, 1),
                                  padding=(dilation * (kernel // 2), 0), dilation=(dilation, 1), bias=False)
        self.temporal_norm = MaskedBatchNorm(c_out)
        self.residual = (nn.Identity() if c_in == c_out and stride == 1
                         else nn.Linear(c_in, c_out, bias=False))
        self.stride = stride

    def forward(self, x: torch.Tensor, split: torch.Tensor, in_mask: torch.Tensor,
                out_mask: torch.Tensor) -> torch.Tensor:
        """``x`` (N, T, J, C_in) and its ``split_graph`` (N, T, J, K, J) -> (N, T/stride, J, C_out).

        ``in_mask`` (N, T, J, 1) and ``out_mask`` (N, T/stride, J, 1) 0/1 floats: the output is
        zero where ``out_mask`` is 0.
        """
        n, t, j, c = x.shape
        agg = torch.bmm(split.flatten(0, 1).flatten(1, 2), x.reshape(n * t, j, c)).view(n, t, j, -1)
        h = torch.relu_(self.spatial_norm(self.spatial(agg), in_mask, offset=self.joint_bias))  # eq. (4)
        h = self.temporal(h.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        h = self.temporal_norm(h, out_mask)
        return torch.relu_(h.addcmul_(self.residual(x[:, ::self.stride]), out_mask))


class BranchAttention(nn.Module):
    """Eq. (5): temporal and joint attention over one branch's features (masked mean if off)."""

    def __init__(self, channels: int, use_attention: bool) -> None:
        super().__init__()
        self.use_attention = use_attention
        if use_attention:
            self.time_score = nn.Linear(channels, 1)
            self.joint_score = nn.Linear(channels, 1)

    def forward(self, f: torch.Tensor, mask: torch.Tensor,
                joint_valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pool one branch.

        ``f`` (N, T, J, C), zero where masked; ``mask`` (N, T, J, 1) 0/1 floats;
        ``joint_valid`` (N, J) bool. Returns each joint's time-pooled features (N, J, C) and
        the joint weights (N, J).
        """
        token_valid = mask.amax(2)[..., 0] > 0
        if self.use_attention:
            # Pool(F): masked means (f is zero at masked places, so sums over valid suffice)
            token_mean = f.sum(2) / mask.sum(2).clamp_min(1.0)
            joint_mean = f.sum(1) / mask.sum(1).clamp_min(1.0)
            # eq. (5): alpha = Softmax(W_a . Pool(F)), over tokens and over joints
            alpha_time = masked_softmax(self.time_score(token_mean).squeeze(-1), token_valid, dim=1)
            alpha_joint = masked_softmax(self.joint_score(joint_mean).squeeze(-1), joint_valid, dim=1)
        else:
            alpha_time = uniform_weights(token_valid, dim=1).to(f.dtype)
            alpha_joint = uniform_weights(joint_valid, dim=1).to(f.dtype)
        # U = alpha (.) F, pooled: each joint's tokens weighted by alpha_time, renormalised over
        # the tokens where that joint was observed.
        w = alpha_time[:, :, None, None] * mask                                 # (N, T, J, 1)
        pooled = (f * w).sum(1) / w.sum(1).clamp_min(1e-12)
        return pooled, alpha_joint


class RelationLayer(nn.Module):
    """Eqs. (9)-(10): joint temporal/spatial propagation and stage gating of window states."""

    def __init__(self, dim: int, use_spatial: bool, use_gating: bool) -> None:
        super().__init__()
        self.w_t = nn.Linear(dim, dim)
        self.w_s = nn.Linear(dim, dim, bias=False) if use_spatial else None
        self.gate = nn.Linear(2 * dim, dim) if use_gating else None

    def forward(self, state: torch.Tensor, relation: torch.Tensor,
                spatial: torch.Tensor | None, seg_mask: torch.Tensor) -> torch.Tensor:
        update = torch.matmul(relation, self.w_t(state))                  # sum_n R^t_mn W_t U_n
        if self.w_s is not None and spatial is not None:
            update = update + self.w_s(spatial)                           # sum_b R^s_ab W_s H_b
        y = F.gelu(update)                                                # eq. (9), rho
        if self.gate is not None:
            g = torch.sigmoid(self.gate(torch.cat([y, state], dim=-1)))   # eq. (10)
            y = g * y + (1.0 - g) * state
        return y * seg_mask[..., None].to(y.dtype)


@register_model("posestyle_net", PoseStyleNetConfig)
class PoseStyleNet(StyleModel):
    """PoseStyle-Net: multi-branch pose-graph encoder + spatio-temporal relation encoding."""

    config: PoseStyleNetConfig
    skeleton: torch.Tensor
    membership: torch.Tensor
    parts: torch.Tensor

    def __init__(self, config: PoseStyleNetConfig) -> None:
        super().__init__(config)
        c = config
        self.register_buffer("skeleton", skeleton_adjacency(self_loops=True), persistent=False)
        self.register_buffer("membership", region_membership(), persistent=False)
        parts = torso_partitions(neighbours_only=False)
        self.register_buffer("parts", parts.permute(1, 0, 2).contiguous(), persistent=False)   # (J, K, J)
        units, c_prev = [], (2 * c.in_dims + 1) * c.frames_per_token
        self.input_norm = MaskedBatchNorm(c_prev)
        for ch, stride, dil in zip(c.branch_channels, c.branch_strides, c.branch_dilations):
            units.append(GraphTemporalUnit(c_prev, ch, c.temporal_kernel, dil, stride, parts.shape[0]))
            c_prev = ch
        self.units = nn.ModuleList(units)
        # single branch: only the deepest unit feeds the window features
        self.tapped = list(range(len(units))) if c.use_multi_branch else [len(units) - 1]
        self.attention = nn.ModuleList(BranchAttention(c.branch_channels[i], c.use_attention)
                                       for i in self.tapped)
        # cross-layer fusion: one linear map of the branches side by side (= a sum of per-branch maps)
        self.branch_fusion = nn.Linear(sum(c.branch_channels[i] for i in self.tapped), c.relation_dim)
        d = c.relation_dim
        self.norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(c.dropout)
        if c.use_segment_fusion:
            self.fusion_score = nn.Sequential(nn.Linear(d, d // 2), nn.Tanh(), nn.Linear(d // 2, 1))
        self.relations = nn.ModuleList(RelationLayer(d, c.use_spatial_synergy, c.use_stage_gating)
                                       for _ in range(c.num_relation_layers))
        if c.use_cross_stage_aggregation:
            self.eta = nn.Linear(d, 1, bias=False)
        self.head = EmbeddingHead(d * (2 if c.use_segment_fusion else 1), c.embedding_dim,
                                  c.num_classes, c.dropout)

    # -- per window ------------------------------------------------------------------------
    def _encode_windows(self, positions: torch.Tensor, velocity: torch.Tensor,
                        valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, L, J, C) windows -> U (N, D'), H (N, R, D'), joint weights (N, J), joint valid (N, J)."""
        c = self.config
        size = c.frames_per_token
        h = group_frames(joint_features(positions, velocity, valid), size)     # (N, T, J, size*(2C+1))
        per_frame = h.unflatten(-1, (size, -1))
        count = per_frame[..., -1].sum(-1, keepdim=True)                         # observed frames
        velocity_sum = per_frame[..., c.in_dims:2 * c.in_dims].sum(-2)          # (N, T, J, C)
        joint_valid = valid.any(1)                                              # (N, J)
        member = self.membership.to(h.dtype)
        in_mask = (count > 0).to(h.dtype)
        h = self.input_norm(h, in_mask)
        u_parts: list[torch.Tensor] = []
        region_parts: list[torch.Tensor] = []
        alphas: list[torch.Tensor] = []
        split = None
        for i, unit in enumerate(cast("list[GraphTemporalUnit]", self.units)):
            if split is None:
                # eq. (3) graph at this unit's token rate: token velocity = mean over its frames
                graph = pose_graph(velocity_sum / count.clamp_min(1.0), count[..., 0] > 0,
                                   self.skeleton, c.graph_lambda, c.graph_sigma, c.use_velocity_graph)
                split = split_graph(graph, self.parts)
            if unit.stride > 1:
                velocity_sum, count = pool_tokens(velocity_sum, count, unit.stride)
            mask = (count > 0).to(h.dtype)
            h = unit(h, split, in_mask, mask)                                   # eq. (4)
            in_mask = mask
            if unit.stride > 1:
                split = None                # the next unit works at the coarser token rate
            if i not in self.tapped:
                continue
            pooled, alpha = self.attention[len(alphas)](h, mask, joint_valid)   # eq. (5)
            weighted = alpha[..., None] * pooled                                # alpha_j F_j
            u_parts.append(weighted.sum(1))                                     # U = sum_j alpha_j F_j
            region_sum = (weighted.transpose(1, 2) @ member).transpose(1, 2)    # (N, R, C)
            region_parts.append(region_sum / (alpha @ member).clamp_min(1e-12)[..., None])
            alphas.append(alpha)
        u = self.branch_fusion(torch.cat(u_parts, dim=-1))
        regions = self.branch_fusion(torch.cat(region_parts, dim=-1))
        return u, regions, torch.stack(alphas).mean(0), joint_valid

    # -- per sequence ----------------------------------------------------------------------
    def forward(self, batch: PoseBatch) -> StyleOutput:
        self.check_batch(batch)
        c = self.config
        *windows, seg_mask = gather_windows(batch)
        u_w, h_w, alpha_w, jvalid_w = encode_windows_in_chunks(
            self._encode_windows, windows, None if self.training else EVAL_WINDOW_CHUNK)
        dtype = u_w.dtype
        member = self.membership.to(dtype)
        seg_f = seg_mask.to(dtype)
        # layer norm per real window, then padded (padded rows are zeroed after dropout)
        u = self.dropout(scatter_windows(self.norm(u_w), seg_mask)) * seg_f[..., None]   # (B, M, D')

        if c.use_segment_fusion:
            beta = masked_softmax(self.fusion_score(u).squeeze(-1), seg_mask, dim=1)   # eq. (6)
            z = torch.einsum("bm,bmd->bd", beta, u)

        spatial = None
        if c.use_spatial_synergy:
            # per real window (a padded window's term is 0), then padded to (B, M, D')
            region_valid = (jvalid_w.to(dtype) @ member) > 0                            # (N, R)
            regions = self.norm(h_w) * region_valid[..., None].to(dtype)
            spatial = scatter_windows(self._spatial_synergy(regions, region_valid), seg_mask)
        state = u
        for layer in self.relations:
            relation = self._temporal_relation(state, batch.phase.to(dtype), seg_mask)
            state = layer(state, relation, spatial, seg_mask)                 # eqs. (9)-(10)

        if c.use_cross_stage_aggregation:
            omega = masked_softmax(self.eta(state).squeeze(-1), seg_mask, dim=1)  # eq. (11)
        else:
            omega = uniform_weights(seg_mask, dim=1).to(dtype)
        e = torch.einsum("bm,bmd->bd", omega, state)                           # eq. (11), E
        pooled = torch.cat([e, z], dim=-1) if c.use_segment_fusion else e
        embedding, logits = self.head(pooled)                                  # eq. (12)

        region_weights = None
        if c.use_attention:
            per_joint = scatter_windows(alpha_w, seg_mask)                     # (B, M, J)
            counts = scatter_windows(jvalid_w.to(dtype) @ member, seg_mask)
            mass = (per_joint @ member) / counts.clamp_min(1.0)                # mean weight per joint
            mass = mass / mass.sum(-1, keepdim=True).clamp_min(1e-12)
            region_weights = torch.einsum("bm,bmr->br", omega, mass)
        return StyleOutput(embedding=embedding, logits=logits, window_mask=seg_mask,
                           segment_weights=omega, region_weights=region_weights, stage_states=state)

    def _temporal_relation(self, state: torch.Tensor, phase: torch.Tensor,
                           seg_mask: torch.Tensor) -> torch.Tensor:
        """Eq. (7) R^t (B, M, M), or the identity when switched off; rows sum to 1 over valid windows."""
        c = self.config
        pair = (seg_mask[:, :, None] & seg_mask[:, None, :]).to(state.dtype)
        if c.use_temporal_relation:
            z = F.layer_norm(state, state.shape[-1:])
            sq = (z * z).sum(-1)
            dist2 = (sq[:, :, None] + sq[:, None, :] - 2.0 * z @ z.transpose(1, 2)).clamp_min(0.0)
            dist2 = dist2 / state.shape[-1]
            phase_gap = (phase[:, :, None] - phase[:, None, :]).abs()
            relation = torch.exp(-dist2 / c.tau1) * torch.exp(-phase_gap / c.tau2)  # eq. (7)
        else:
            relation = torch.eye(state.shape[1], dtype=state.dtype, device=state.device).expand_as(pair)
        relation = relation * pair
        return relation / relation.sum(-1, keepdim=True).clamp_min(1e-12)

    @staticmethod
    def _spatial_synergy(regions: torch.Tensor, region_valid: torch.Tensor) -> torch.Tensor:
        """Eq. (8) R^s per window, propagated over regions and pooled: (..., R, D') -> (..., D')."""
        norms = regions.norm(dim=-1)
        cosine = ((regions @ regions.transpose(-1, -2))
                  / (norms[..., :, None] * norms[..., None, :] + 1e-6))              # eq. (8)
        pair = (region_valid[..., :, None] & region_valid[..., None, :]).to(regions.dtype)
        count = region_valid.to(regions.dtype).sum(-1).clamp_min(1.0)
        # mean over valid a of (1/|valid|) sum_b R^s_ab H_b; W_s is applied after (it is linear)
        column = (cosine * pair).sum(-2) / (count * count)[..., None]      # (..., R)
        return torch.einsum("...r,...rd->...d", column, regions)

