"""Skeleton maps: keypoints rendered as per-joint (and per-limb) Gaussian heatmaps.

GaitHeat (paper ``004_*``) feeds a gait network with pose-estimator heatmaps. This project
has keypoints, so the heatmaps are re-rendered: one Gaussian per joint with the joint's
confidence as its peak (missing joints: confidence 0, an empty map), optionally one Gaussian
"tube" per limb (PoseC3D/SkeletonGait-style, peak = the lower confidence of its two joints).

Before rendering every frame goes through GaitHeat's pretreatment, done on the keypoints
(exact, and cheaper than resampling rendered maps; the affine is the same):

1. crop (section 3.2, "Resize in RGB space"): the box of the observed joints, padded by
   ``box_padding`` (x1.25), is scaled to fit the H x W canvas with the body ratio kept;
2. Pose-Guided Heatmap Alignment (section 3.2, eq. (1)-(4)): the neck-hip line is rotated to
   vertical about its midpoint when its tilt exceeds ``tilt_threshold_deg`` (gamma), and the
   neck is moved to the fixed point ``P_align``. COCO-17 has no neck joint: the mid-shoulder is
   used (as GPGait does), the mid-hip for the hip.

Everything is batched tensor arithmetic (no per-pixel or per-frame Python loop); the maps are a
pure function of (positions, weights, config), so callers may cache them by those keys.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from encoder.data.skeleton import COCO17_EDGES, JOINT_INDEX, NUM_JOINTS

NECK_JOINTS = (JOINT_INDEX["left_shoulder"], JOINT_INDEX["right_shoulder"])
HIP_JOINTS = (JOINT_INDEX["left_hip"], JOINT_INDEX["right_hip"])


@dataclass(frozen=True)
class SkeletonMapConfig:
    """Canvas and Gaussian settings (pixels of the H x W canvas).

    The paper's heatmaps are 64 x 48 (HRNet, sigma 2 px); the defaults here are 32 x 22 with
    sigma 1 px (half the resolution, same relative blob size), so a CNN over every sampled frame
    trains on 2 CPU cores. ``neck_row``/``neck_col``: P_align as fractions of H and W.
    """

    height: int = 32
    width: int = 22
    sigma: float = 1.0
    limb_sigma: float = 1.0
    box_padding: float = 1.25
    tilt_threshold_deg: float = 5.0
    neck_row: float = 0.22
    neck_col: float = 0.5

    def __post_init__(self) -> None:
        if self.height < 4 or self.width < 4:
            raise ValueError(f"map size must be at least 4 x 4, got {self.height} x {self.width}")
        if not (self.sigma > 0 and self.limb_sigma > 0):
            raise ValueError("sigma and limb_sigma must be > 0")
        if not self.box_padding >= 1.0:
            raise ValueError(f"box_padding must be >= 1, got {self.box_padding}")
        if not 0.0 <= self.tilt_threshold_deg < 180.0:
            raise ValueError(f"tilt_threshold_deg must be in [0, 180), got {self.tilt_threshold_deg}")
        if not (0.0 <= self.neck_row <= 1.0 and 0.0 <= self.neck_col <= 1.0):
            raise ValueError("neck_row and neck_col must be in [0, 1]")


def image_plane(positions: torch.Tensor, in_dims: int) -> torch.Tensor:
    """(..., J, C) normalised keypoints -> (..., J, 2) (column, row) with rows growing downwards.

    2D keypoints are image coordinates already (y down). 3D joints (Y up) are seen by an
    orthographic camera along Z: (x, -y).
    """
    if in_dims == 2:
        return positions[..., :2]
    return torch.stack([positions[..., 0], -positions[..., 1]], dim=-1)


def _masked_point(xy: torch.Tensor, observed: torch.Tensor, joints: tuple[int, ...],
                  fallback: torch.Tensor) -> torch.Tensor:
    """Mean of the observed ``joints`` per frame; ``fallback`` where none is observed."""
    w = observed[:, list(joints)].to(xy.dtype)                                  # (N, k)
    total = (xy[:, list(joints)] * w[..., None]).sum(1)
    count = w.sum(1, keepdim=True)
    return torch.where(count > 0, total / count.clamp_min(1.0), fallback)


def align_keypoints(xy: torch.Tensor, weight: torch.Tensor, config: SkeletonMapConfig) -> torch.Tensor:
    """Crop + PGHA: (N, J, 2) image-plane keypoints -> canvas pixel coordinates (N, J, 2).

    ``weight`` (N, J) > 0 marks observed joints; the others (whatever their coordinates, even
    NaN) take no part and come back as 0.
    """
    c = config
    observed = weight > 0
    xy = torch.where(observed[..., None], xy, torch.zeros_like(xy))
    big = torch.finfo(xy.dtype).max
    lo = torch.where(observed[..., None], xy, torch.full_like(xy, big)).amin(1)     # (N, 2)
    hi = torch.where(observed[..., None], xy, torch.full_like(xy, -big)).amax(1)
    any_obs = observed.any(1, keepdim=True)
    lo, hi = torch.where(any_obs, lo, 0.0), torch.where(any_obs, hi, 0.0)
    centre = (lo + hi) / 2
    size = (hi - lo).clamp_min(1e-3) * c.box_padding
    # crop: the padded box, body ratio kept, scaled to fit the canvas (section 3.2)
    scale = torch.minimum(c.height / size[:, 1], c.width / size[:, 0])               # (N,)
    canvas_centre = xy.new_tensor([(c.width - 1) / 2, (c.height - 1) / 2])
    pix = (xy - centre[:, None]) * scale[:, None, None] + canvas_centre

    neck = _masked_point(pix, observed, NECK_JOINTS, canvas_centre.expand_as(centre))
    hip = _masked_point(pix, observed, HIP_JOINTS, neck + xy.new_tensor([0.0, 1.0]))
    spine = neck - hip
    theta = torch.atan2(spine[:, 0], -spine[:, 1])        # eq. (1), 0 when the neck is straight above the hip
    theta = torch.where(theta.abs() > math.radians(c.tilt_threshold_deg), theta, torch.zeros_like(theta))
    mid = (neck + hip) / 2
    cos, sin = torch.cos(-theta), torch.sin(-theta)
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)   # (N, 2, 2)

    def rotate(points: torch.Tensor) -> torch.Tensor:                      # eq. (2): M_R about P_mid
        return torch.einsum("nij,nkj->nki", rot, points - mid[:, None]) + mid[:, None]

    neck_rot = rotate(neck[:, None])[:, 0]
    p_align = xy.new_tensor([c.neck_col * (c.width - 1), c.neck_row * (c.height - 1)])
    bias = p_align - neck_rot                                                        # eq. (3)
    out = rotate(pix) + bias[:, None]                     # eq. (4), applied to the points
    return torch.where(observed[..., None], out, torch.zeros_like(out))


EXP_FLOOR = -30.0
LIMB_SAMPLES = 8   # points per limb: spacing <= 2 sigma (ripple < 2 %) for limbs up to 16 sigma long


def _grids(config: SkeletonMapConfig, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    cols = torch.arange(config.width, dtype=like.dtype, device=like.device)
    rows = torch.arange(config.height, dtype=like.dtype, device=like.device)
    return cols, rows


def _profiles(points: torch.Tensor, config: SkeletonMapConfig, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Separable Gaussian profiles of (..., 2) points: rows (..., H) and columns (..., W).

    The exponent is floored at ``EXP_FLOOR`` (exp = 1e-13): far-off pixels would otherwise send
    exp into its slow underflow path (20x slower on CPU), for values that are 0 anyway.
    """
    cols, rows = _grids(config, points)
    inv = -0.5 / sigma ** 2
    return (torch.exp((rows - points[..., 1:2]).square_().mul_(inv).clamp_(min=EXP_FLOOR)),
            torch.exp((cols - points[..., 0:1]).square_().mul_(inv).clamp_(min=EXP_FLOOR)))


def _limb_samples(pix: torch.Tensor, weight: torch.Tensor, config: SkeletonMapConfig,
                  edges: tuple[tuple[int, int], ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Points along each limb and their weights: profiles (N, E, S, H), (N, E, S, W), weights (N, E, S).

    A limb is rendered as the sum of Gaussians at ``LIMB_SAMPLES`` evenly spaced points, each
    weighted by spacing / (sqrt(2 pi) sigma): the sum approximates the line integral, so the
    middle of a limb longer than a few sigma peaks at its confidence.
    """
    a_idx, b_idx = [a for a, _ in edges], [b for _, b in edges]
    a, b = pix[:, a_idx], pix[:, b_idx]                                      # (N, E, 2)
    frac = (torch.arange(LIMB_SAMPLES, dtype=pix.dtype, device=pix.device) + 0.5) / LIMB_SAMPLES
    points = a[:, :, None] + frac[:, None] * (b - a)[:, :, None]             # (N, E, S, 2)
    spacing = (b - a).norm(dim=-1) / LIMB_SAMPLES
    w = torch.minimum(weight[:, a_idx], weight[:, b_idx]) * spacing / (math.sqrt(2 * math.pi) * config.limb_sigma)
    gy, gx = _profiles(points, config, config.limb_sigma)
    return gy, gx, w[..., None].expand(-1, -1, LIMB_SAMPLES)


def render_joint_maps(pix: torch.Tensor, weight: torch.Tensor, config: SkeletonMapConfig) -> torch.Tensor:
    """(N, J, 2) canvas points, (N, J) confidences -> (N, J, H, W) Gaussians (separable product)."""
    gy, gx = _profiles(pix, config, config.sigma)
    return (gy * weight[..., None])[..., :, None] * gx[..., None, :]


def render_limb_maps(pix: torch.Tensor, weight: torch.Tensor, config: SkeletonMapConfig,
                     edges: tuple[tuple[int, int], ...] = COCO17_EDGES) -> torch.Tensor:
    """(N, J, 2), (N, J) -> (N, E, H, W): a Gaussian tube along each limb (peak: its lower confidence)."""
    gy, gx, w = _limb_samples(pix, weight, config, edges)
    n, e, k, h = gy.shape
    maps = torch.bmm((gy * w[..., None]).reshape(n * e, k, h).transpose(1, 2), gx.reshape(n * e, k, -1))
    a_idx, b_idx = [a for a, _ in edges], [b for _, b in edges]
    cap = torch.minimum(weight[:, a_idx], weight[:, b_idx])[..., None, None]
    return torch.minimum(maps.reshape(n, e, h, -1), cap)


def render_skeleton_maps(positions: torch.Tensor, weight: torch.Tensor, config: SkeletonMapConfig,
                         in_dims: int, limbs: bool = True, fused: bool = False) -> torch.Tensor:
    """Pretreat and render frames: (N, J, C) keypoints, (N, J) confidence -> maps.

    ``weight`` is the joint's confidence (0: missing); a model with only the observed/missing
    mask passes the mask as 0/1. Channels: the J joint maps, then (``limbs``) the E limb maps;
    ``fused``: one joint channel (sum of the joint Gaussians, capped at 1) and (``limbs``) one
    limb channel, computed as matrix products without materialising per-joint maps.
    """
    if positions.shape[-2] != NUM_JOINTS:
        raise ValueError(f"skeleton maps need the {NUM_JOINTS}-joint COCO skeleton, got {positions.shape[-2]}")
    weight = weight.to(positions.dtype)
    pix = align_keypoints(image_plane(positions, in_dims), weight, config)
    if not fused:
        maps = render_joint_maps(pix, weight, config)
        if limbs:
            maps = torch.cat([maps, render_limb_maps(pix, weight, config)], dim=1)
        return maps
    gy, gx = _profiles(pix, config, config.sigma)
    channels = [torch.bmm((gy * weight[..., None]).transpose(1, 2), gx)]          # (N, H, W)
    if limbs:
        ly, lx, w = _limb_samples(pix, weight, config, COCO17_EDGES)
        n = ly.shape[0]
        channels.append(torch.bmm((ly * w[..., None]).reshape(n, -1, ly.shape[-1]).transpose(1, 2),
                                  lx.reshape(n, -1, lx.shape[-1])))
    return torch.stack(channels, 1).clamp_(max=1.0)


def group_max(maps: torch.Tensor, groups: tuple[tuple[int, ...], ...]) -> torch.Tensor:
    """(N, V, H, W) -> (N, G, H, W): per group the max over its channels (GaitHeat eq. (5))."""
    return torch.stack([maps[:, list(g)].amax(1) for g in groups], dim=1)


def limb_groups(joint_groups: tuple[tuple[int, ...], ...],
                edges: tuple[tuple[int, int], ...] = COCO17_EDGES) -> tuple[tuple[int, ...], ...]:
    """Per joint group, the channel indices of its joints plus (offset by J) the limbs inside it."""
    out = []
    for group in joint_groups:
        members = set(group)
        limbs = [NUM_JOINTS + e for e, (a, b) in enumerate(edges) if a in members and b in members]
        out.append(tuple(sorted(members)) + tuple(limbs))
    return tuple(out)
