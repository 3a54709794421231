"""BVH motion capture: parser, vectorised forward kinematics, mapping onto COCO-17 in metres.

Conventions: rotation channels are Euler angles in degrees, applied intrinsically in the order
listed (``Zrotation Xrotation Yrotation`` gives R = Rz @ Rx @ Ry); a joint's position channels
replace the matching components of its OFFSET (exporters write the rest offset into them);
world position of a joint = parent position + parent world rotation @ local translation.
Output is Y up, as the BVH files themselves are.
"""
from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy.spatial.transform import Rotation

from encoder.data.errors import PoseDataError
from encoder.data.readers._common import (
    check_fps,
    check_frame_count,
    guard_errors,
    read_text,
)
from encoder.data.readers.limits import DEFAULT_LIMITS, ReaderLimits
from encoder.data.sequence import PoseSequence
from encoder.data.skeleton import (
    BVH_DERIVED,
    COCO17_JOINTS,
    JOINT_INDEX,
    NUM_JOINTS,
    bvh_joint_lookup,
    normalize_joint_name,
)

CHANNEL_NAMES = ("Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation")
_CHANNEL_BY_LOWER = {c.lower(): c for c in CHANNEL_NAMES}
MAX_VALUE_CHARS = 64                # written characters per MOTION value, whitespace included, at most
CENTIMETRE_EXTENT = 3.0             # a skeleton extent above this (in file units) means centimetres
REQUIRED_BODY_JOINTS = ("left_shoulder", "right_shoulder", "left_hip", "right_hip")
_AXIS = {"X": 0, "Y": 1, "Z": 2}


@dataclass
class BvhSkeleton:
    """The HIERARCHY section: joints (End Sites included) in file order, parents first."""

    names: list[str]
    parents: list[int]            # -1 for a root
    offsets: np.ndarray           # (N, 3) in file units
    channels: list[tuple[str, ...]]
    end_site: list[bool]

    @property
    def channel_starts(self) -> list[int]:
        starts, total = [], 0
        for ch in self.channels:
            starts.append(total)
            total += len(ch)
        return starts

    @property
    def num_channels(self) -> int:
        return sum(len(ch) for ch in self.channels)


class BvhMotion(NamedTuple):
    """Every BVH joint (End Sites as ``<parent>_End``) in world metres, Y up."""

    names: list[str]
    parents: list[int]
    positions: np.ndarray        # (T, N, 3) float64 metres
    fps: float


class _Tokens:
    """Whitespace tokens of the HIERARCHY text with one-line error reporting."""

    def __init__(self, text: str, source: Path) -> None:
        self.items = text.replace("{", " { ").replace("}", " } ").split()
        self.pos = 0
        self.source = source

    def peek(self) -> str | None:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def take(self, what: str) -> str:
        if self.pos >= len(self.items):
            raise PoseDataError(self.source, f"HIERARCHY ends early (truncated file?) while reading {what}")
        tok = self.items[self.pos]
        self.pos += 1
        return tok

    def expect(self, word: str, context: str) -> None:
        tok = self.take(f"'{word}' of {context}")
        if tok.lower() != word.lower():
            raise PoseDataError(self.source, f"expected '{word}' in {context}, got '{tok[:40]}'")

    def floats(self, n: int, context: str) -> list[float]:
        values = []
        for _ in range(n):
            tok = self.take(context)
            try:
                value = float(tok)
            except ValueError:
                raise PoseDataError(self.source, f"{context} has non-numeric value '{tok[:40]}'") from None
            if not np.isfinite(value):
                raise PoseDataError(self.source, f"{context} contains NaN or inf")
            values.append(value)
        return values

    def name_until_brace(self, context: str) -> str:
        parts = []
        while self.peek() not in (None, "{"):
            parts.append(self.take(context))
            if len(parts) > 8:
                raise PoseDataError(self.source, f"{context}: expected '{{' after the joint name")
        return " ".join(parts)


def parse_hierarchy(text: str, source: Path, limits: ReaderLimits = DEFAULT_LIMITS) -> BvhSkeleton:
    """Parse the HIERARCHY text (without the MOTION part) into a ``BvhSkeleton``."""
    tokens = _Tokens(text, source)
    first = tokens.peek()
    if first is None or first.upper() != "HIERARCHY":
        raise PoseDataError(source, "not a BVH file: it does not start with HIERARCHY")
    tokens.take("HIERARCHY")
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[tuple[str, ...]] = []
    end_site: list[bool] = []
    stack: list[int] = []

    def add(name: str, parent: int, offset: list[float], chans: tuple[str, ...], is_end: bool) -> int:
        if len(names) >= limits.max_source_joints:
            raise PoseDataError(source, f"more than {limits.max_source_joints} joints in HIERARCHY, the limit")
        names.append(name)
        parents.append(parent)
        offsets.append(offset)
        channels.append(chans)
        end_site.append(is_end)
        return len(names) - 1

    while (tok := tokens.peek()) is not None:
        keyword = tok.upper()
        if keyword in ("ROOT", "JOINT"):
            tokens.take(keyword)
            if keyword == "ROOT" and stack:
                raise PoseDataError(source, "ROOT found inside another joint")
            name = tokens.name_until_brace(f"{keyword} name")
            if not name:
                raise PoseDataError(source, f"{keyword} without a name")
            if name in names:
                raise PoseDataError(source, f"duplicate joint name '{name[:40]}'")
            tokens.expect("{", f"joint '{name}'")
            tokens.expect("OFFSET", f"joint '{name}'")
            offset = tokens.floats(3, f"OFFSET of joint '{name}'")
            chans: tuple[str, ...] = ()
            if (tokens.peek() or "").upper() == "CHANNELS":
                chans = _parse_channels(tokens, name, source)
            stack.append(add(name, stack[-1] if stack else -1, offset, chans, False))
        elif keyword == "END":
            tokens.take("End")
            if not stack:
                raise PoseDataError(source, "End Site outside any joint")
            if (tokens.peek() or "").upper() == "SITE":
                tokens.take("Site")
            tokens.name_until_brace("End Site")
            parent = stack[-1]
            tokens.expect("{", f"End Site of '{names[parent]}'")
            tokens.expect("OFFSET", f"End Site of '{names[parent]}'")
            offset = tokens.floats(3, f"OFFSET of End Site of '{names[parent]}'")
            tokens.expect("}", f"End Site of '{names[parent]}'")
            site_name = f"{names[parent]}_End"
            while site_name in names:
                site_name += "_"
            add(site_name, parent, offset, (), True)
        elif tok == "}":
            tokens.take("}")
            if not stack:
                raise PoseDataError(source, "unbalanced '}' in HIERARCHY")
            stack.pop()
        else:
            raise PoseDataError(source, f"unexpected '{tok[:40]}' in HIERARCHY")
    if stack:
        raise PoseDataError(source, f"joint '{names[stack[-1]]}' is never closed (truncated file?)")
    if not names:
        raise PoseDataError(source, "HIERARCHY has no joints")
    return BvhSkeleton(names, parents, np.asarray(offsets, dtype=np.float64), channels, end_site)


def _parse_channels(tokens: _Tokens, joint: str, source: Path) -> tuple[str, ...]:
    tokens.take("CHANNELS")
    count_tok = tokens.take(f"CHANNELS count of joint '{joint}'")
    if not _is_whole_number(count_tok) or int(count_tok) > 6:
        raise PoseDataError(source, f"joint '{joint}': CHANNELS count must be 0..6, got '{count_tok[:40]}'")
    chans = []
    for _ in range(int(count_tok)):
        tok = tokens.take(f"CHANNELS of joint '{joint}'")
        canonical = _CHANNEL_BY_LOWER.get(tok.lower())
        if canonical is None:
            raise PoseDataError(source, f"joint '{joint}': unknown channel name '{tok[:40]}'")
        if canonical in chans:
            raise PoseDataError(source, f"joint '{joint}': channel {canonical} listed twice")
        chans.append(canonical)
    return tuple(chans)


_FRAMES_LINE = re.compile(r"^\s*Frames\s*:\s*(\S+)\s*$", re.IGNORECASE)
_FRAME_TIME_LINE = re.compile(r"^\s*Frame\s*Time\s*:\s*(\S+)\s*$", re.IGNORECASE)
_MOTION_LINE = re.compile(r"^[ \t]*MOTION[ \t]*\r?$", re.MULTILINE)


def parse_motion(text: str, num_channels: int, source: Path, limits: ReaderLimits = DEFAULT_LIMITS,
                 num_joints: int = 1) -> tuple[np.ndarray, float, float]:
    """Parse the MOTION section (starting after the MOTION line): (T, channels) values, fps, frame time.

    The declared frame count is checked against ``limits`` (frames, frames x joints) and the text
    length against it before any value is parsed."""
    header: list[str] = []
    pos = 0
    while len(header) < 2 and pos < len(text):
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        if text[pos:end].strip():
            header.append(text[pos:end])
        pos = end + 1
    if len(header) < 2:
        raise PoseDataError(source, "MOTION section lacks 'Frames:' and 'Frame Time:' lines (truncated file?)")
    frames_match, time_match = _FRAMES_LINE.match(header[0]), _FRAME_TIME_LINE.match(header[1])
    if frames_match is None:
        raise PoseDataError(source, f"expected 'Frames: <count>' after MOTION, got '{header[0].strip()[:40]}'")
    if time_match is None:
        raise PoseDataError(source, f"expected 'Frame Time: <seconds>', got '{header[1].strip()[:40]}'")
    if not _is_whole_number(frames_match.group(1)):
        raise PoseDataError(source, f"frame count '{frames_match.group(1)[:40]}' is not a whole number")
    num_frames = int(frames_match.group(1))
    check_frame_count(source, num_frames, limits)
    if num_frames * num_joints > limits.max_joint_frames:
        raise PoseDataError(source, f"{num_frames} frames x {num_joints} joints is over the limit of "
                                    f"{limits.max_joint_frames} joint-frames")
    fps, frame_time = _fps_from_frame_time(time_match.group(1), source)
    if num_channels == 0:
        raise PoseDataError(source, "HIERARCHY declares no channels, so there is no motion")

    body = text[pos:]
    if len(body) > MAX_VALUE_CHARS * num_frames * num_channels + 4096:
        raise PoseDataError(source, f"MOTION text is {len(body)} characters, far more than {num_frames} frames of "
                                    f"{num_channels} values need (over {MAX_VALUE_CHARS} per value)")
    try:
        with warnings.catch_warnings():   # a blank line between frames is skipped, as exporters leave them
            warnings.filterwarnings("ignore", message="Input line .* contained no data", category=UserWarning)
            values = np.loadtxt(io.StringIO(body), dtype=np.float64, comments=None, ndmin=2,
                                max_rows=num_frames + 1)
    except ValueError:
        values = None
    if values is None or values.shape != (num_frames, num_channels):
        _explain_value_count(body, num_frames, num_channels, source)
        bad = next(tok for line in io.StringIO(body) for tok in line.split() if not _is_float(tok))
        raise PoseDataError(source, f"MOTION has non-numeric value '{bad[:40]}'")
    finite = np.isfinite(values)
    if not finite.all():
        bad_frame = int(np.argwhere(~finite.all(axis=1))[0, 0])
        raise PoseDataError(source, f"frame {bad_frame} contains NaN or inf")
    return values, fps, frame_time


def _explain_value_count(body: str, num_frames: int, num_channels: int, source: Path) -> None:
    """Raise the one-line reason why the MOTION value count is not frames x channels (returns when
    the counts are right, so the problem is a value)."""
    lines = 0
    for line in io.StringIO(body):
        n = len(line.split())
        if not n:
            continue
        if lines < num_frames and n != num_channels:
            raise PoseDataError(source, f"frame {lines} has {n} values, expected {num_channels}")
        lines += 1
    if lines < num_frames:
        raise PoseDataError(source, f"truncated: Frames says {num_frames}, found {lines} frames")
    if lines > num_frames:
        raise PoseDataError(source, f"Frames says {num_frames} but there are {lines} lines of values")


def _is_whole_number(tok: str) -> bool:
    return tok.isascii() and tok.isdigit() and len(tok) < 12


def _is_float(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def _fps_from_frame_time(token: str, source: Path) -> tuple[float, float]:
    """fps = 1 / Frame Time, snapped to a whole number when the written digits cannot tell them apart."""
    try:
        frame_time = float(token)
    except ValueError:
        raise PoseDataError(source, f"Frame Time '{token[:40]}' is not a number") from None
    if not (np.isfinite(frame_time) and frame_time > 0):
        raise PoseDataError(source, f"Frame Time must be a positive number of seconds, got {token[:40]}")
    fps = 1.0 / frame_time
    whole = round(fps)
    if whole > 0:
        decimals = len(token.split(".", 1)[1]) if "." in token and "e" not in token.lower() else None
        if decimals is not None and round(1.0 / whole, decimals) == round(frame_time, decimals):
            fps = float(whole)
        elif abs(fps - whole) < 1e-6 * fps:
            fps = float(whole)
    return check_fps(source, fps), frame_time


def forward_kinematics(skeleton: BvhSkeleton, motion: np.ndarray) -> np.ndarray:
    """World positions (T, N, 3) in file units for every joint, vectorised over frames."""
    num_frames, n = motion.shape[0], len(skeleton.names)
    has_children = np.zeros(n, dtype=bool)
    for p in skeleton.parents:
        if p >= 0:
            has_children[p] = True
    positions = np.empty((num_frames, n, 3), dtype=np.float64)
    world_rot: dict[int, Rotation | None] = {}     # None = identity (no rotation up the chain)
    for j, (parent, chans, start) in enumerate(zip(skeleton.parents, skeleton.channels,
                                                   skeleton.channel_starts)):
        translation = np.repeat(skeleton.offsets[j][None, :], num_frames, axis=0)
        local: Rotation | None = None
        for k, chan in enumerate(chans):
            column = motion[:, start + k]
            if chan.endswith("position"):
                translation[:, _AXIS[chan[0]]] = column
            else:
                rot = Rotation.from_euler(chan[0].upper(), column[:, None], degrees=True)   # T turns, one axis
                local = rot if local is None else local * rot   # intrinsic: R = R1 R2 ... in the order listed
        if parent < 0:
            positions[:, j] = translation
            rot_world = local
        else:
            parent_rot = world_rot[parent]
            if parent_rot is None:
                positions[:, j] = positions[:, parent] + translation
                rot_world = local
            else:
                positions[:, j] = positions[:, parent] + parent_rot.apply(translation)
                rot_world = parent_rot if local is None else parent_rot * local
        if has_children[j]:
            world_rot[j] = rot_world
    return positions


def skeleton_extent(skeleton: BvhSkeleton) -> float:
    """Longest leaf-to-leaf path along the bones (rest offsets), about a human's standing height.

    Paths between two leaves never use a root's own offset (a world placement, not a bone).
    """
    n = len(skeleton.names)
    lengths = np.linalg.norm(skeleton.offsets, axis=1)
    children: list[list[int]] = [[] for _ in range(n)]
    for j, p in enumerate(skeleton.parents):
        if p >= 0:
            children[p].append(j)
    reach = np.zeros(n)                       # longest path from a joint down to a leaf
    best_pair = 0.0
    for j in reversed(range(n)):              # children come after their parent in file order
        branches = sorted((reach[c] + lengths[c] for c in children[j]), reverse=True)
        reach[j] = branches[0] if branches else 0.0
        if len(branches) >= 2:
            best_pair = max(best_pair, branches[0] + branches[1])
    if best_pair > 0:
        return float(best_pair)
    return float(max(reach[j] for j in range(n) if skeleton.parents[j] < 0))


def _load(path: Path, scale: float | None,
          limits: ReaderLimits) -> tuple[BvhSkeleton, np.ndarray, float, float, float]:
    """Parse and run FK: (skeleton, positions (T,N,3) metres, fps, units_scale, frame_time)."""
    text = read_text(path, limits)
    motion_at = _MOTION_LINE.search(text)
    if motion_at is None:
        if text.lstrip()[:9].upper() != "HIERARCHY":
            raise PoseDataError(path, "not a BVH file: it does not start with HIERARCHY")
        raise PoseDataError(path, "missing MOTION section (truncated file?)")
    skeleton = parse_hierarchy(text[:motion_at.start()], path, limits)
    motion, fps, frame_time = parse_motion(text[motion_at.end():], skeleton.num_channels, path, limits,
                                           len(skeleton.names))
    if scale is None:
        units_scale = 0.01 if skeleton_extent(skeleton) > CENTIMETRE_EXTENT else 1.0
    else:
        if not (np.isfinite(scale) and scale > 0):
            raise PoseDataError(path, f"scale must be a positive number, got {scale}")
        units_scale = float(scale)
    positions = forward_kinematics(skeleton, motion) * units_scale
    return skeleton, positions, fps, units_scale, frame_time


@guard_errors
def read_bvh_full(path: str | Path, *, scale: float | None = None,
                  limits: ReaderLimits = DEFAULT_LIMITS) -> BvhMotion:
    """Every joint of a BVH file (End Sites as ``<parent>_End``) in world metres, with its fps.

    ``scale`` multiplies file units into metres; None picks 0.01 (centimetres) or 1 from the
    skeleton's size (see ``read_bvh``).
    """
    path = Path(path)
    skeleton, positions, fps, _, _ = _load(path, scale, limits)
    return BvhMotion(list(skeleton.names), list(skeleton.parents), positions, fps)


@guard_errors
def read_bvh(path: str | Path, *, scale: float | None = None,
             limits: ReaderLimits = DEFAULT_LIMITS) -> PoseSequence:
    """A BVH take as a 3D COCO-17 ``PoseSequence`` in metres (Y up), fps = 1 / Frame Time.

    ``scale=None``: if the skeleton extent from the offsets (longest leaf-to-leaf bone path, about
    standing height) is over 3 file units the file is taken as centimetres (x0.01), else metres.
    The nose is the head joint (metadata ``derived_joints``); eyes and ears are missing
    (confidence 0, metadata ``missing_joints``).
    """
    path = Path(path)
    skeleton, positions, fps, units_scale, frame_time = _load(path, scale, limits)
    lookup = bvh_joint_lookup(skeleton.names)
    absent = [j for j in REQUIRED_BODY_JOINTS if j not in lookup]
    if absent:
        raise PoseDataError(path, f"no BVH joint found for {', '.join(absent)} "
                                  f"(joints: {', '.join(skeleton.names[:30])})")
    num_frames = positions.shape[0]
    joints = np.zeros((num_frames, NUM_JOINTS, 3), dtype=np.float32)
    confidence = np.zeros((num_frames, NUM_JOINTS), dtype=np.float32)
    for canon, idx in lookup.items():
        joints[:, JOINT_INDEX[canon]] = positions[:, idx]
        confidence[:, JOINT_INDEX[canon]] = 1.0
    derived = [c for c in COCO17_JOINTS if c in BVH_DERIVED and c in lookup
               and normalize_joint_name(skeleton.names[lookup[c]]).replace("_", "") != c]
    metadata = {
        "format": "bvh",
        "units_scale": units_scale,
        "frame_time": frame_time,
        "bvh_joint_count": sum(not e for e in skeleton.end_site),
        "joint_sources": {c: skeleton.names[lookup[c]] for c in COCO17_JOINTS if c in lookup},
        "derived_joints": derived,
        "missing_joints": [c for c in COCO17_JOINTS if c not in lookup],
    }
    return PoseSequence(joints=joints, confidence=confidence, fps=fps, source=str(path),
                        name=path.stem, metadata=metadata)
