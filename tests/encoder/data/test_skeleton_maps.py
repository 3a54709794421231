"""Skeleton-map rendering: Gaussians, confidence as intensity, missing joints, crop + PGHA alignment."""
from __future__ import annotations

import math

import pytest
import torch

from encoder.data.skeleton import COCO17_EDGES, JOINT_INDEX, NUM_JOINTS
from encoder.data.skeleton_maps import (
    HIP_JOINTS,
    NECK_JOINTS,
    SkeletonMapConfig,
    align_keypoints,
    group_max,
    image_plane,
    limb_groups,
    render_joint_maps,
    render_limb_maps,
    render_skeleton_maps,
)

CFG = SkeletonMapConfig()


def standing_pose(tilt_deg: float = 0.0) -> torch.Tensor:
    """A rough upright COCO-17 figure in image coordinates (y down), tilted about the mid-hip."""
    j = JOINT_INDEX
    pts = torch.zeros(NUM_JOINTS, 2)
    for name, (x, y) in {
        "nose": (0.0, -1.6), "left_eye": (0.05, -1.65), "right_eye": (-0.05, -1.65),
        "left_ear": (0.1, -1.6), "right_ear": (-0.1, -1.6),
        "left_shoulder": (0.2, -1.3), "right_shoulder": (-0.2, -1.3), "left_elbow": (0.25, -0.9),
        "right_elbow": (-0.25, -0.9), "left_wrist": (0.27, -0.5), "right_wrist": (-0.27, -0.5),
        "left_hip": (0.12, 0.0), "right_hip": (-0.12, 0.0), "left_knee": (0.13, 0.8),
        "right_knee": (-0.13, 0.8), "left_ankle": (0.14, 1.6), "right_ankle": (-0.14, 1.6),
    }.items():
        pts[j[name]] = torch.tensor([x, y])
    a = math.radians(tilt_deg)
    rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return pts @ rot.T


def _mid(p: torch.Tensor, joints: tuple[int, ...]) -> torch.Tensor:
    return p[..., list(joints), :].mean(-2)


def test_joint_gaussian_peaks_at_the_joint_with_its_confidence():
    pix = torch.tensor([[[5.0, 7.0], [10.0, 20.0]]])
    maps = render_joint_maps(pix, torch.tensor([[0.6, 1.0]]), CFG)
    assert maps.shape == (1, 2, CFG.height, CFG.width)
    assert maps[0, 0, 7, 5] == pytest.approx(0.6) and maps[0, 0].max() == pytest.approx(0.6)
    assert maps[0, 1, 20, 10] == pytest.approx(1.0)
    # a Gaussian of sigma 1 px: total mass 2 pi sigma^2 x confidence, one pixel off is e^-0.5
    assert maps[0, 0].sum() == pytest.approx(0.6 * 2 * math.pi, rel=1e-3)
    assert maps[0, 0, 7, 6] == pytest.approx(0.6 * math.exp(-0.5))


def test_missing_joints_render_nothing_and_their_coordinates_never_leak():
    pose = standing_pose()[None].repeat(2, 1, 1)
    weight = torch.ones(2, NUM_JOINTS)
    weight[:, JOINT_INDEX["left_wrist"]] = 0.0
    pose[1, JOINT_INDEX["left_wrist"]] = float("nan")
    maps = render_skeleton_maps(pose, weight, CFG, in_dims=2, limbs=True)
    assert torch.isfinite(maps).all()
    assert maps[:, JOINT_INDEX["left_wrist"]].abs().max() == 0
    wrist_limb = NUM_JOINTS + COCO17_EDGES.index((7, 9))
    assert maps[:, wrist_limb].abs().max() == 0                          # a limb needs both ends
    torch.testing.assert_close(maps[0], maps[1])                        # NaN at the missing joint changed nothing
    empty = render_skeleton_maps(pose[:1], torch.zeros(1, NUM_JOINTS), CFG, in_dims=2)
    assert empty.abs().max() == 0


def test_alignment_puts_the_neck_at_p_align_whatever_the_position_and_size():
    pose = standing_pose()
    w = torch.ones(1, NUM_JOINTS)
    a = align_keypoints(pose[None], w, CFG)
    b = align_keypoints((pose * 3.7 + torch.tensor([120.0, -40.0]))[None], w, CFG)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)                   # crop: scale and shift free
    p_align = torch.tensor([CFG.neck_col * (CFG.width - 1), CFG.neck_row * (CFG.height - 1)])
    torch.testing.assert_close(_mid(a[0], NECK_JOINTS), p_align, atol=1e-4, rtol=0)
    # the padded box fits the canvas: the body spans at most 1 / 1.25 of its height
    span = a[0, :, 1].max() - a[0, :, 1].min()
    assert span <= CFG.height / CFG.box_padding + 1e-4
    assert span > 0.6 * CFG.height


def test_pgha_rotates_a_tilted_spine_upright_above_the_threshold_only():
    w = torch.ones(2, NUM_JOINTS)
    tilted = torch.stack([standing_pose(30.0), standing_pose(3.0)])
    out = align_keypoints(tilted, w, CFG)
    spine = _mid(out, NECK_JOINTS) - _mid(out, HIP_JOINTS)
    assert spine[0, 0].abs() < 1e-4 and spine[0, 1] < 0                      # 30 deg: now vertical, neck up
    assert spine[1, 0].abs() > 0.02 * spine[1, 1].abs()                      # 3 deg < gamma = 5: left alone
    upright = align_keypoints(standing_pose()[None], w[:1], CFG)
    # the same figure once aligned, up to the crop's scale (the tilted box is wider: a smaller body)
    def shape(p: torch.Tensor) -> torch.Tensor:
        spine = _mid(p, NECK_JOINTS) - _mid(p, HIP_JOINTS)
        return (p - _mid(p, NECK_JOINTS)[None]) / spine.norm()
    torch.testing.assert_close(shape(out[0]), shape(upright[0]), atol=1e-4, rtol=0)


def test_limb_tube_runs_along_the_segment_with_the_lower_confidence():
    pix = torch.zeros(1, NUM_JOINTS, 2)
    weight = torch.zeros(1, NUM_JOINTS)
    hip, knee = JOINT_INDEX["left_hip"], JOINT_INDEX["left_knee"]
    pix[0, hip], pix[0, knee] = torch.tensor([10.0, 8.0]), torch.tensor([10.0, 24.0])
    weight[0, hip], weight[0, knee] = 0.9, 0.5
    maps = render_limb_maps(pix, weight, CFG)
    limb = maps[0, COCO17_EDGES.index((11, 13))]
    assert limb[16, 10] == pytest.approx(0.5, rel=0.05)                       # middle of the tube
    assert limb[16, 10] > limb[16, 12] > limb[16, 14]                         # falls off sideways
    assert limb[:, 0].max() < 1e-6 and limb.max() <= 0.5 + 1e-6
    others = torch.cat([maps[0, :COCO17_EDGES.index((11, 13))], maps[0, COCO17_EDGES.index((11, 13)) + 1:]])
    assert others.abs().max() == 0


def test_fused_channels_match_the_per_joint_and_per_limb_maps():
    pose = torch.stack([standing_pose(), standing_pose(12.0)])
    weight = torch.rand(2, NUM_JOINTS, generator=torch.Generator().manual_seed(0))
    full = render_skeleton_maps(pose, weight, CFG, in_dims=2, limbs=True)
    fused = render_skeleton_maps(pose, weight, CFG, in_dims=2, limbs=True, fused=True)
    assert fused.shape == (2, 2, CFG.height, CFG.width)
    torch.testing.assert_close(fused[:, 0], full[:, :NUM_JOINTS].sum(1).clamp(max=1.0), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(fused[:, 1], full[:, NUM_JOINTS:].sum(1).clamp(max=1.0), atol=1e-5, rtol=1e-4)


def test_batched_rendering_equals_one_frame_at_a_time():
    pose = torch.stack([standing_pose(t) for t in (0.0, 10.0, -25.0)]) + torch.randn(3, NUM_JOINTS, 2) * 0.05
    weight = torch.ones(3, NUM_JOINTS)
    weight[1, :5] = 0.0
    batched = render_skeleton_maps(pose, weight, CFG, in_dims=2)
    single = torch.cat([render_skeleton_maps(pose[i:i + 1], weight[i:i + 1], CFG, in_dims=2) for i in range(3)])
    torch.testing.assert_close(batched, single)


def test_3d_joints_are_seen_upright_and_groups_take_the_max():
    xyz = torch.zeros(1, NUM_JOINTS, 3)
    xyz[..., :2] = standing_pose()[None] * torch.tensor([1.0, -1.0])          # Y up
    assert torch.equal(image_plane(xyz, 3), standing_pose()[None])
    maps = render_joint_maps(torch.tensor([[[3.0, 3.0], [9.0, 9.0], [3.0, 3.0]]]), torch.tensor([[0.2, 1.0, 0.7]]), CFG)
    grouped = group_max(maps, ((0, 2), (1,)))
    assert grouped.shape == (1, 2, CFG.height, CFG.width)
    assert grouped[0, 0, 3, 3] == pytest.approx(0.7) and grouped[0, 1, 9, 9] == pytest.approx(1.0)
    legs = limb_groups(((11, 13, 15),))[0]
    assert legs[:3] == (11, 13, 15)
    assert set(legs[3:]) == {NUM_JOINTS + COCO17_EDGES.index(e) for e in ((11, 13), (13, 15))}


def test_bad_canvas_settings_are_refused():
    with pytest.raises(ValueError, match="at least 4 x 4"):
        SkeletonMapConfig(height=2)
    with pytest.raises(ValueError, match="box_padding"):
        SkeletonMapConfig(box_padding=0.5)
    with pytest.raises(ValueError, match="17-joint"):
        render_skeleton_maps(torch.zeros(1, 5, 2), torch.ones(1, 5), CFG, in_dims=2)
