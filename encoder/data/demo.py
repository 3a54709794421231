"""The embedded demo corpus: procedural runway walks in the paper's six style classes.

The paper's 4680-sequence runway corpus is not public, so the product ships a generator that
draws walks from six *style distributions* named after the paper's classes. Each class is a
Gaussian over gait parameters (stride, cadence, arm swing, torso lean and sway, hip sway, knee
lift, foot crossing, head bob, cycle-to-cycle variability); walkers are a fixed cast of models
whose body proportions and personal habits persist across styles; every sequence also gets
nuisance variation (heading, speed drift, start phase, duration 4-8 s, smooth joint-angle noise).

The classes are calibrated like the paper's corpus (its classifier reaches 0.946 on six styles):
with the true parameters every pair of classes is separable (standardised mean distance > 4),
and what keeps a pose encoder from being perfect is what it cannot see well in a 2D view. The
closest pairs are exactly the paper's Table 5 pairs (tests check the order):
- stable_stretching vs rhythmic_progression: same long stride and arm swing; they differ in
  cadence, torso lean and head bob (about 3 std each).
- strong_control vs rapid_transition: both cross the feet on the runway line with short strides,
  small arm swing and high knee lift; rapid_transition steps faster, leans forward rather than
  back, and swings the arms a little more.
- light_swing_linkage vs integrated_variation: both sway (torso and hips) and swing the arms;
  integrated_variation swings less, lifts the feet more and varies more from cycle to cycle.
Single parameters still overlap across pairs (rhythmic_progression and rapid_transition share the
cadence range), and each model's personal offsets (`DemoModel`) widen every class.

Kinematics (walker frame: X left, Y up, Z forward, metres): the gait phase advances with
cadence; each ankle follows a stance (flat, then heel rise about the toes) / swing (minimum-jerk
progression, knee-lift clearance) path; the pelvis bobs twice per cycle (lowest at heel strike,
as low as the legs need to reach), sways laterally, rotates and tilts; knees come from exact
two-link IK, so every bone keeps its length; arms swing opposite to the legs with elbow flexion;
the torso leans and sways; the head (nose, eyes, ears) is a rigid frame on the neck. The walk is
then turned by the heading jitter and placed on the runway. 30 fps, all 17 joints confidence 1.
"""
from __future__ import annotations

import csv
import io
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from tqdm import tqdm

from encoder.data.atomic import DurableBatchWriter, atomic_write_bytes
from encoder.data.sequence import PoseSequence
from encoder.data.skeleton import CANONICAL_SKELETON, JOINT_INDEX, NUM_JOINTS

STYLE_CLASSES: tuple[str, ...] = (
    "stable_stretching", "rhythmic_progression", "light_swing_linkage",
    "integrated_variation", "strong_control", "rapid_transition",
)
STYLE_TITLES: dict[str, str] = {
    "stable_stretching": "Stable stretching",
    "rhythmic_progression": "Rhythmic progression",
    "light_swing_linkage": "Light swing linkage",
    "integrated_variation": "Integrated variation",
    "strong_control": "Strong control",
    "rapid_transition": "Rapid transition",
}

# Style-bearing gait parameters, in the order of the distribution tables below.
GAIT_PARAMETER_NAMES: tuple[str, ...] = (
    "stride_per_height",   # stride (two steps) / body height
    "cadence",             # steps per minute
    "arm_swing_deg",       # peak shoulder flexion/extension of the arm swing
    "torso_lean_deg",      # static forward lean of the upper body (negative: backward)
    "torso_sway_deg",      # lateral roll of the upper body toward the stance leg (amplitude)
    "hip_sway_m",          # lateral pelvis excursion toward the stance leg (amplitude)
    "knee_lift_m",         # swing-foot clearance above its straight path
    "foot_crossing",       # 0: feet on the hip lines, 1: on the runway midline, >1: crossing over
    "head_bob_deg",        # head nod amplitude at step frequency
    "variability",         # depth of the smooth cycle-to-cycle modulation of the amplitudes
)
# Physical limits each sampled value is clipped to (keeps the tails plausible).
_PARAMETER_LIMITS: dict[str, tuple[float, float]] = {
    "stride_per_height": (0.60, 1.02), "cadence": (90.0, 140.0), "arm_swing_deg": (3.0, 50.0),
    "torso_lean_deg": (-8.0, 9.0), "torso_sway_deg": (0.0, 9.0), "hip_sway_m": (0.005, 0.08),
    "knee_lift_m": (0.03, 0.22), "foot_crossing": (0.0, 1.5), "head_bob_deg": (0.0, 7.0),
    "variability": (0.0, 0.25),
}


@dataclass(frozen=True)
class StyleDistribution:
    """One style class: a title, a one-line description and a Gaussian (mean, std) per parameter."""

    style: str
    title: str
    description: str
    mean: dict[str, float]
    std: dict[str, float]

    def sample(self, rng: np.random.Generator, offsets: dict[str, float] | None = None) -> dict[str, float]:
        """Draw one parameter set (plus optional per-model offsets), clipped to physical limits."""
        out: dict[str, float] = {}
        for name in GAIT_PARAMETER_NAMES:
            value = rng.normal(self.mean[name], self.std[name]) + (offsets or {}).get(name, 0.0)
            lo, hi = _PARAMETER_LIMITS[name]
            out[name] = float(min(max(value, lo), hi))
        return out


def _distribution(style: str, description: str, table: Sequence[tuple[float, float]]) -> StyleDistribution:
    return StyleDistribution(style, STYLE_TITLES[style], description,
                             mean={n: m for n, (m, _) in zip(GAIT_PARAMETER_NAMES, table)},
                             std={n: s for n, (_, s) in zip(GAIT_PARAMETER_NAMES, table)})


#   (mean, std) in the order of GAIT_PARAMETER_NAMES:
#   stride/H    cadence     arm deg     lean deg    sway deg    hip m          knee m         cross       bob deg     variab.
STYLE_DISTRIBUTIONS: dict[str, StyleDistribution] = {d.style: d for d in (
    _distribution("stable_stretching", "long, extended strides at an unhurried cadence; upright, quiet torso",
                  [(0.88, .015), (108, 2.1), (23, 2.1), (-1.5, .72), (1.8, .36), (.028, .0034), (.10, .0093), (.60, .077), (1.6, .29), (.04, .007)]),
    _distribution("rhythmic_progression", "long strides driven at a brisk beat; slight forward lean, head keeps time",
                  [(0.85, .015), (117, 2.1), (25, 2.1), (1.5, .72), (2.4, .36), (.031, .0034), (.12, .0093), (.55, .077), (2.8, .32), (.05, .007)]),
    _distribution("light_swing_linkage", "free arm swing linked with torso and hip sway; light, low foot lift",
                  [(0.80, .015), (111, 2.1), (33, 2.1), (0.0, .72), (4.6, .49), (.045, .0036), (.085, .0068), (.70, .077), (2.4, .36), (.06, .0093)]),
    _distribution("integrated_variation", "mixes the other styles' traits and changes them from cycle to cycle",
                  [(0.81, .016), (110, 2.6), (28, 2.6), (-0.3, .89), (4.0, .49), (.042, .0039), (.11, .010), (.78, .094), (2.3, .36), (.12, .010)]),
    _distribution("strong_control", "measured, controlled walk: arms held close, feet crossing on the line, high knee",
                  [(0.77, .015), (113, 2.1), (13, 1.8), (-2.0, .72), (1.8, .36), (.042, .0036), (.14, .0093), (1.08, .072), (1.2, .21), (.04, .007)]),
    _distribution("rapid_transition", "quick, short crossing steps with small arm swing; fast changes of support",
                  [(0.75, .015), (121, 2.1), (17, 2.1), (1.5, .72), (2.6, .39), (.036, .0036), (.125, .0093), (0.98, .077), (2.1, .29), (.06, .007)]),
)}

# Per-model habits: each model's personal offset is this fraction of the classes' mean std.
_PERSONAL_OFFSET_FRACTION = 0.25


@dataclass(frozen=True)
class BodyProportions:
    """A walker's segment lengths in metres (joint centre to joint centre), from height and ratios.

    Segment fractions of height follow Drillis & Contini / Winter's anthropometric table;
    the ratios (about 1) let models differ in leg, arm, shoulder, hip and torso proportions.
    """

    height: float
    leg_ratio: float = 1.0
    arm_ratio: float = 1.0
    shoulder_ratio: float = 1.0
    hip_ratio: float = 1.0
    torso_ratio: float = 1.0

    @property
    def thigh(self) -> float:
        return 0.245 * self.height * self.leg_ratio

    @property
    def shank(self) -> float:
        return 0.246 * self.height * self.leg_ratio

    @property
    def ankle_height(self) -> float:
        return 0.039 * self.height

    @property
    def foot_length(self) -> float:
        """Ankle to the ball of the foot (the heel-rise pivot)."""
        return 0.11 * self.height

    @property
    def hip_half_width(self) -> float:
        return 0.05 * self.height * self.hip_ratio

    @property
    def torso(self) -> float:
        """Mid-hip to mid-shoulder."""
        return 0.288 * self.height * self.torso_ratio

    @property
    def shoulder_half_width(self) -> float:
        return 0.105 * self.height * self.shoulder_ratio

    @property
    def upper_arm(self) -> float:
        return 0.186 * self.height * self.arm_ratio

    @property
    def forearm(self) -> float:
        return 0.146 * self.height * self.arm_ratio

    @property
    def neck(self) -> float:
        return 0.07 * self.height

    @property
    def head_scale(self) -> float:
        return self.height / 1.75

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class GaitParameters:
    """Everything one demo walk is generated from: style parameters, body, and nuisance."""

    style: str
    stride_per_height: float
    cadence: float
    arm_swing_deg: float
    torso_lean_deg: float
    torso_sway_deg: float
    hip_sway_m: float
    knee_lift_m: float
    foot_crossing: float
    head_bob_deg: float
    variability: float
    body: BodyProportions
    duration_s: float = 6.0
    start_phase: float = 0.0        # gait cycles, [0, 1)
    heading_deg: float = 0.0        # yaw of the walking direction away from +Z
    speed_drift: float = 0.0        # cadence changes linearly by this fraction over the walk
    start_offset_m: tuple[float, float] = (0.0, -4.0)   # (x, z) of the first mid-hip point

    @property
    def stride_length(self) -> float:
        """Metres per gait cycle (two steps)."""
        return self.stride_per_height * self.body.height

    @property
    def mean_speed(self) -> float:
        """Metres per second: stride x cycles per second (cadence / 120)."""
        return self.stride_length * self.cadence / 120.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable record of every parameter (stored in the sequence metadata)."""
        out = {n: float(getattr(self, n)) for n in GAIT_PARAMETER_NAMES}
        out.update(style=self.style, stride_length_m=float(self.stride_length),
                   mean_speed_mps=float(self.mean_speed), duration_s=float(self.duration_s),
                   start_phase=float(self.start_phase), heading_deg=float(self.heading_deg),
                   speed_drift=float(self.speed_drift),
                   start_offset_m=[float(v) for v in self.start_offset_m])
        return out


@dataclass(frozen=True)
class DemoWalkConfig:
    """Corpus-level settings: cast, labels of the shows, and the nuisance ranges."""

    fps: float = 30.0
    duration_range_s: tuple[float, float] = (4.0, 8.0)
    heading_jitter_deg: float = 6.0          # std of the walking-direction yaw
    speed_drift_std: float = 0.05            # std of the linear cadence drift over a walk
    n_models: int = 120
    height_range_m: tuple[float, float] = (1.55, 1.95)
    collections: tuple[str, ...] = ("Maison Verelle", "Atelier Solenne", "Casa Brevio",
                                    "Hollis & Crane", "Studio Kaito")
    seasons: tuple[str, ...] = ("SS24", "FW24", "SS25", "FW25")


@dataclass(frozen=True)
class DemoModel:
    """One model of the cast: fixed body proportions and personal gait habits (offsets)."""

    model_id: str
    body: BodyProportions
    gait_offsets: dict[str, float] = field(default_factory=dict)


def demo_cast(seed: int, config: DemoWalkConfig = DemoWalkConfig()) -> list[DemoModel]:
    """The fixed cast of models for a seed: body proportions and habits persist across styles."""
    rng = np.random.default_rng([seed, 1])
    lo, hi = config.height_range_m
    mean_std = {n: float(np.mean([d.std[n] for d in STYLE_DISTRIBUTIONS.values()])) for n in GAIT_PARAMETER_NAMES}
    cast = []
    for k in range(config.n_models):
        height = float(np.clip(rng.normal(1.76, 0.075), lo, hi))
        ratios = np.clip(rng.normal(1.0, [0.025, 0.03, 0.04, 0.05, 0.025]), 0.9, 1.1)
        body = BodyProportions(height, *(float(r) for r in ratios))
        offsets = {n: float(rng.normal(0.0, _PERSONAL_OFFSET_FRACTION * mean_std[n])) for n in GAIT_PARAMETER_NAMES}
        cast.append(DemoModel(f"M{k:03d}", body, offsets))
    return cast


def sample_gait_parameters(style: str, rng: np.random.Generator, body: BodyProportions | None = None,
                           personal_offsets: dict[str, float] | None = None,
                           config: DemoWalkConfig = DemoWalkConfig()) -> GaitParameters:
    """Draw one walk of ``style``: class parameters (+ a model's habits) and nuisance variation."""
    if style not in STYLE_DISTRIBUTIONS:
        raise ValueError(f"unknown demo style {style!r}; expected one of {', '.join(STYLE_CLASSES)}")
    values = STYLE_DISTRIBUTIONS[style].sample(rng, personal_offsets)
    if body is None:
        body = BodyProportions(float(np.clip(rng.normal(1.76, 0.075), *config.height_range_m)))
    return GaitParameters(
        style=style, body=body, **values,
        duration_s=float(rng.uniform(*config.duration_range_s)),
        start_phase=float(rng.uniform(0.0, 1.0)),
        heading_deg=float(rng.normal(0.0, config.heading_jitter_deg)),
        speed_drift=float(np.clip(rng.normal(0.0, config.speed_drift_std), -0.15, 0.15)),
        start_offset_m=(float(rng.uniform(-0.3, 0.3)), float(rng.uniform(-5.0, -3.0))),
    )


# -- kinematics ---------------------------------------------------------------------------------
_HEEL_STRIKE_LEAD = 0.22     # ankle ahead of the mid-hip at heel strike, in strides
_HEEL_OFF = 0.42             # end of flat-foot stance, fraction of the leg's cycle
_TOE_OFF = 0.60              # end of stance (stance fraction of a walk)
_MAX_HEEL_RISE = math.radians(45.0)
_MIDSTANCE = 0.25            # left mid-stance, in cycles after left heel strike
_J = JOINT_INDEX


def _rot_x(a: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations about the lateral X axis; positive tips +Y toward +Z (forward lean)."""
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def _rot_y(a: np.ndarray) -> np.ndarray:
    """(T, 3, 3) yaw rotations about the vertical Y axis; positive turns +Z toward +X."""
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rot_z(a: np.ndarray) -> np.ndarray:
    """(T, 3, 3) roll rotations about the forward Z axis; positive raises +X (the left side)."""
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def _apply(rot: np.ndarray, local: np.ndarray) -> np.ndarray:
    """Rotate per-frame local vectors: (T, 3, 3) @ (T, 3) or (3,) -> (T, 3)."""
    if local.ndim == 1:
        return rot @ local
    return np.einsum("tij,tj->ti", rot, local)


def _smooth_noise(rng: np.random.Generator, t: np.ndarray, channels: int) -> np.ndarray:
    """(channels, T) smooth unit-variance noise: sums of slow sinusoids (0.1-0.6 Hz)."""
    freq = rng.uniform(0.1, 0.6, size=(channels, 3, 1))
    phase = rng.uniform(0.0, 2 * np.pi, size=(channels, 3, 1))
    return np.sin(2 * np.pi * freq * t + phase).sum(axis=1) * math.sqrt(2.0 / 3.0)


def _ankle_path(phi: np.ndarray, offset: float, side: float, p: GaitParameters,
                lift: np.ndarray) -> np.ndarray:
    """(T, 3) ankle path of one leg in the walker frame: flat stance, heel rise, swing."""
    b = p.body
    stride = p.stride_length
    psi = phi - offset
    n = np.floor(psi)
    u = psi - n
    flat_z = stride * (n + offset + _HEEL_STRIKE_LEAD)
    w = np.clip((u - _HEEL_OFF) / (_TOE_OFF - _HEEL_OFF), 0.0, 1.0)
    rise = _MAX_HEEL_RISE * w * w * (3.0 - 2.0 * w)      # smoothstep: starts and ends at rest
    z = flat_z + b.foot_length * (1.0 - np.cos(rise))
    y = b.ankle_height + b.foot_length * np.sin(rise)
    swing = u >= _TOE_OFF
    s = np.clip((u - _TOE_OFF) / (1.0 - _TOE_OFF), 0.0, 1.0)
    minjerk = s ** 3 * (10.0 - 15.0 * s + 6.0 * s * s)
    z_off = flat_z + b.foot_length * (1.0 - math.cos(_MAX_HEEL_RISE))
    y_off = b.ankle_height + b.foot_length * math.sin(_MAX_HEEL_RISE)
    z = np.where(swing, z_off + (flat_z + stride - z_off) * minjerk, z)
    clearance = lift * s ** 2 * (1.0 - s) ** 3 / 0.03456      # peaks (= lift) at 40% of the swing
    y = np.where(swing, y_off + (b.ankle_height - y_off) * minjerk + clearance, y)
    circumduction = 0.015 * 16.0 * s ** 2 * (1.0 - s) ** 2
    x = side * ((1.0 - p.foot_crossing) * b.hip_half_width + circumduction)
    return np.stack([x, y, z], axis=-1)


def _two_link_ik(hip: np.ndarray, ankle: np.ndarray, pole: np.ndarray,
                 l1: float, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """Knee (and the reachable ankle) for a hip-knee-ankle chain bending toward ``pole``.

    An unreachable ankle is pulled toward the hip along the hip-ankle line (a natural heel rise),
    so both bone lengths are exact in every frame.
    """
    d = ankle - hip
    dist = np.linalg.norm(d, axis=-1, keepdims=True)
    unit = d / np.maximum(dist, 1e-9)
    dist = np.clip(dist, abs(l1 - l2) + 1e-4, 0.999 * (l1 + l2))
    ankle = hip + unit * dist
    a = (l1 * l1 - l2 * l2 + dist * dist) / (2.0 * dist)
    h = np.sqrt(np.maximum(l1 * l1 - a * a, 0.0))
    bend = pole - unit * np.sum(pole * unit, axis=-1, keepdims=True)
    bend /= np.maximum(np.linalg.norm(bend, axis=-1, keepdims=True), 1e-9)
    return hip + unit * a + bend * h, ankle


def generate_walk(params: GaitParameters, rng: np.random.Generator, fps: float = 30.0) -> PoseSequence:
    """One procedural runway walk as a 3D COCO-17 ``PoseSequence`` (world metres, Y up).

    ``rng`` drives only the smooth cycle-to-cycle modulation; all else comes from ``params``.
    """
    p, b = params, params.body
    n_frames = max(2, int(round(p.duration_s * fps)))
    t = np.arange(n_frames) / fps
    # Gait phase in cycles; the cadence drifts linearly (mean unchanged) over the walk.
    cadence = p.cadence * (1.0 + p.speed_drift * (t / p.duration_s - 0.5))
    phi = p.start_phase + np.concatenate([[0.0], np.cumsum(cadence[:-1] / 120.0 / fps)])
    two_pi_phi = 2.0 * np.pi * phi
    noise = _smooth_noise(rng, t, 6)
    mod = 1.0 + p.variability * noise
    arm_amp = np.radians(p.arm_swing_deg) * mod[0]
    torso_sway = np.radians(p.torso_sway_deg) * mod[1]
    hip_sway = p.hip_sway_m * mod[2]
    lift = np.maximum(p.knee_lift_m * mod[3], 0.0)
    nod_amp = np.radians(p.head_bob_deg) * mod[4]
    lean = np.radians(p.torso_lean_deg + 10.0 * p.variability * noise[5])

    # Pelvis: forward progression, lateral sway toward the stance leg, bob (lowest at heel strike).
    # Heights: at mid-stance the stance hip is raised by the pelvic tilt and shifted sideways by
    # the sway (with margin for the modulation); at heel strike the front foot is ahead.
    leg = b.thigh + b.shank
    sway_max = p.hip_sway_m * (1.0 + 3.0 * p.variability)
    tilt_lift = b.hip_half_width * math.sin(math.radians(120.0) * sway_max)
    lateral_mid = sway_max + b.hip_half_width * p.foot_crossing
    high = min(0.97 * leg, math.sqrt((0.98 * leg) ** 2 - lateral_mid ** 2)) - tilt_lift
    reach_at_strike = math.hypot(_HEEL_STRIKE_LEAD * p.stride_length, b.hip_half_width * p.foot_crossing)
    low = min(math.sqrt(max((0.985 * leg) ** 2 - reach_at_strike ** 2, (0.8 * leg) ** 2)), high)
    cos_mid = np.cos(two_pi_phi - 2.0 * np.pi * _MIDSTANCE)
    pelvis = np.stack([hip_sway * cos_mid,
                       b.ankle_height + low + (high - low) * np.sin(two_pi_phi) ** 2,
                       p.stride_length * phi], axis=-1)
    obliquity = np.radians(120.0) * hip_sway * cos_mid           # swing-side hip drops
    pelvis_yaw = -np.radians(4.0 * p.stride_per_height / 0.8) * np.cos(two_pi_phi)
    rot_pelvis = _rot_y(pelvis_yaw) @ _rot_z(obliquity)
    hip_off = _apply(rot_pelvis, np.array([b.hip_half_width, 0.0, 0.0]))
    hips = {+1.0: pelvis + hip_off, -1.0: pelvis - hip_off}
    pole_forward = _apply(rot_pelvis, np.array([0.0, 0.0, 1.0]))

    joints = np.zeros((n_frames, NUM_JOINTS, 3))
    for side, offset, prefix in ((+1.0, 0.0, "left"), (-1.0, 0.5, "right")):
        target = _ankle_path(phi, offset, side, p, lift)
        pole = pole_forward + np.array([0.1 * side, 0.0, 0.0])
        knee, ankle = _two_link_ik(hips[side], target, pole, b.thigh, b.shank)
        joints[:, _J[f"{prefix}_hip"]] = hips[side]
        joints[:, _J[f"{prefix}_knee"]] = knee
        joints[:, _J[f"{prefix}_ankle"]] = ankle

    # Upper body: lean, sway toward the stance leg, shoulders counter-rotating against the pelvis.
    shoulder_yaw = np.radians(0.25 * p.arm_swing_deg + 2.0) * np.cos(two_pi_phi)
    rot_torso = _rot_y(shoulder_yaw) @ _rot_z(-torso_sway * cos_mid) @ _rot_x(lean)
    mid_shoulder = pelvis + _apply(rot_torso, np.array([0.0, b.torso, 0.0]))
    sh_off = _apply(rot_torso, np.array([b.shoulder_half_width, 0.0, 0.0]))
    for side, prefix in ((+1.0, "left"), (-1.0, "right")):
        shoulder = mid_shoulder + side * sh_off
        # Left arm is back at left heel strike (phi = 0): arms swing opposite to the legs.
        swing = -side * arm_amp * np.cos(two_pi_phi - 0.3)
        abduction = math.radians(7.0)
        elbow_flex = np.radians(12.0) + 0.6 * np.maximum(swing, 0.0)
        upper = np.stack([side * math.sin(abduction) * np.cos(swing), -math.cos(abduction) * np.cos(swing),
                          np.sin(swing)], axis=-1)
        fore_angle = swing + elbow_flex
        lower = np.stack([side * math.sin(abduction) * np.cos(fore_angle),
                          -math.cos(abduction) * np.cos(fore_angle), np.sin(fore_angle)], axis=-1)
        elbow = shoulder + b.upper_arm * _apply(rot_torso, upper)
        joints[:, _J[f"{prefix}_shoulder"]] = shoulder
        joints[:, _J[f"{prefix}_elbow"]] = elbow
        joints[:, _J[f"{prefix}_wrist"]] = elbow + b.forearm * _apply(rot_torso, lower)

    # Head: a rigid frame on the neck, holding the gaze level against the lean, nodding per step.
    nod = nod_amp * np.sin(2.0 * two_pi_phi)
    rot_head = rot_torso @ _rot_x(nod - 0.7 * lean)
    head_centre = mid_shoulder + _apply(rot_torso, np.array([0.0, b.neck, 0.0])) \
        + _apply(rot_head, np.array([0.0, 0.06 * b.height, 0.0]))
    hs = b.head_scale
    face = {"nose": (0.0, -0.012, 0.10), "left_eye": (0.032, 0.022, 0.082), "right_eye": (-0.032, 0.022, 0.082),
            "left_ear": (0.075, 0.0, 0.0), "right_ear": (-0.075, 0.0, 0.0)}
    for name, local in face.items():
        joints[:, _J[name]] = head_centre + _apply(rot_head, hs * np.array(local))

    # Place on the runway: heading jitter about the first mid-hip point, then the start offset.
    start = joints[0, [_J["left_hip"], _J["right_hip"]]].mean(axis=0)
    heading = _rot_y(np.array(math.radians(p.heading_deg)))
    joints[..., [0, 2]] -= start[[0, 2]]
    joints = joints @ heading.T
    joints[..., 0] += p.start_offset_m[0]
    joints[..., 2] += p.start_offset_m[1]
    return PoseSequence(joints=joints.astype(np.float32),
                        confidence=np.ones((n_frames, NUM_JOINTS), dtype=np.float32),
                        fps=float(fps), skeleton=CANONICAL_SKELETON, source="demo", label=p.style)


# -- corpus -------------------------------------------------------------------------------------
DEMO_VIEWS: tuple[str, ...] = ("3d", "2d")


def demo_sequence_name(style: str, index: int) -> str:
    return f"demo-{style}-{index:05d}"


def _show_progress(progress: bool | None, n: int) -> bool:
    if progress is not None:
        return progress
    return n >= 500 and sys.stderr.isatty()


def generate_demo_corpus(n_sequences: int = 3000, seed: int = 0, views: Iterable[str] = DEMO_VIEWS,
                         config: DemoWalkConfig = DemoWalkConfig(),
                         progress: bool | None = None) -> list[PoseSequence]:
    """The demo corpus: ``n_sequences`` walks, balanced over the six styles, in each of ``views``.

    Deterministic per ``seed``; walk ``i`` depends only on (seed, i), so a smaller corpus is a
    prefix of a larger one. Walks come in index order, each followed by its other views (the
    ``2d`` view is the benchmark's virtual camera; names are shared, ``metadata["view"]`` differs).
    """
    views = tuple(views)
    unknown = [v for v in views if v not in DEMO_VIEWS]
    if unknown or not views:
        raise ValueError(f"views must be a non-empty subset of {DEMO_VIEWS}, got {views}")
    if n_sequences < 0 or seed < 0:
        raise ValueError("n_sequences and seed must be non-negative")
    benchmark_2d_view = None
    if "2d" in views:
        from encoder.data.camera import benchmark_2d_view  # the benchmark's virtual camera (BENCHMARK.md)
    cast = demo_cast(seed, config)
    out: list[PoseSequence] = []
    indices = tqdm(range(n_sequences), desc="demo corpus", unit="walk",
                   disable=not _show_progress(progress, n_sequences))
    for i in indices:
        rng = np.random.default_rng([seed, 2, i])
        style = STYLE_CLASSES[i % len(STYLE_CLASSES)]
        model = cast[int(rng.integers(len(cast)))]
        params = sample_gait_parameters(style, rng, model.body, model.gait_offsets, config)
        name = demo_sequence_name(style, i)
        meta = {"collection": config.collections[int(rng.integers(len(config.collections)))],
                "season": config.seasons[int(rng.integers(len(config.seasons)))],
                "model_id": model.model_id,
                "tags": ["runway", "indoor" if rng.random() < 0.8 else "outdoor",
                         "heels" if rng.random() < 0.7 else "flats"],
                "gait": params.to_dict(), "body": params.body.to_dict(),
                "generator": "posestyle-demo", "seed": int(seed), "index": int(i)}
        seq3d = generate_walk(params, rng, fps=config.fps)
        seq3d = seq3d.with_(name=name, source=f"demo:seed={seed}/{name}", metadata={**meta, "view": "3d"})
        for view in views:
            if view == "3d":
                out.append(seq3d)
            else:
                seq2d = benchmark_2d_view(seq3d, name)
                out.append(seq2d.with_(name=name, label=style, source=f"demo:seed={seed}/2d/{name}",
                                       metadata={**seq2d.metadata, "view": "2d"}))
    return out


@dataclass(frozen=True)
class WrittenDemoCorpus:
    """Where ``write_demo_corpus`` put things: one folder per view, each with its labels.csv."""

    root: Path
    view_dirs: dict[str, Path]
    n_sequences: int
    label_counts: dict[str, int]


LABELS_CSV_COLUMNS: tuple[str, ...] = ("name", "label", "collection", "season", "model_id", "tags")


def write_demo_corpus(out_dir: str | Path, n: int = 3000, seed: int = 0, views: Iterable[str] = DEMO_VIEWS,
                      config: DemoWalkConfig = DemoWalkConfig(),
                      progress: bool | None = None) -> WrittenDemoCorpus:
    """Write the corpus as user-like data: ``<out>/<view>/<name>.npz`` plus ``<out>/<view>/labels.csv``.

    Every walk file is durable before its view's labels.csv (written last, atomically) names it;
    tags in labels.csv are joined with ``;``.
    """
    root = Path(out_dir)
    corpus = generate_demo_corpus(n, seed, views, config, progress)
    rows: dict[str, list[list[str]]] = {}
    view_dirs: dict[str, Path] = {}
    with DurableBatchWriter() as files:
        for seq in tqdm(corpus, desc="writing demo corpus", unit="file",
                        disable=not _show_progress(progress, len(corpus))):
            view = seq.metadata["view"]
            folder = view_dirs.setdefault(view, root / view)
            buf = io.BytesIO()
            np.savez_compressed(buf, **seq.to_arrays())
            files.add(folder / f"{seq.name}.npz", buf.getvalue())
            m = seq.metadata
            rows.setdefault(view, []).append([seq.name, seq.label or "", m["collection"], m["season"],
                                              m["model_id"], ";".join(m["tags"])])
    for view, folder in view_dirs.items():
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(LABELS_CSV_COLUMNS)
        writer.writerows(rows[view])
        atomic_write_bytes(folder / "labels.csv", text.getvalue().encode("utf-8"))
    counts: dict[str, int] = {}
    for i in range(n):
        style = STYLE_CLASSES[i % len(STYLE_CLASSES)]
        counts[style] = counts.get(style, 0) + 1
    return WrittenDemoCorpus(root, view_dirs, n, counts)
