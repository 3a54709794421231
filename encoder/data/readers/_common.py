"""Shared pieces of the pose readers: size limits, safe file reading, error wrapping, mapping."""
from __future__ import annotations

import functools
import gc
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np
import orjson

from encoder.data.errors import PoseDataError
from encoder.data.readers.limits import DEFAULT_LIMITS, ReaderLimits
from encoder.data.skeleton import SKELETON_MAPPINGS, SOURCE_JOINT_COUNTS

MAX_FILE_BYTES = DEFAULT_LIMITS.max_file_bytes        # the defaults, for callers that only read them
MAX_SOURCE_JOINTS = DEFAULT_LIMITS.max_source_joints
DEFAULT_FPS = 30.0
SOURCE_JOINT_COUNTS_BY_NAME: dict[str, int] = {name: n for n, name in SOURCE_JOINT_COUNTS.items()}

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a parser allocates many small objects.

    A keypoint JSON of a few seconds is tens of thousands of lists and floats; each allocation burst
    lets the collector start passes that walk every tracked object (in a serving process, several
    ms to tens of ms: the p99 of a query). Parsed documents hold no reference cycles, so reference
    counting frees them; the collector's state is restored on the way out, errors included.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def guard_errors(func: F) -> F:
    """Turn any unexpected exception of a reader into a one-line ``PoseDataError`` naming the file.

    The reader's first positional argument is the path. A ``PoseDataError`` passes unchanged.
    """
    @functools.wraps(func)
    def wrapper(path: str | Path, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(path, *args, **kwargs)
        except PoseDataError:
            raise
        except RecursionError:
            raise PoseDataError(path, "nesting too deep to parse") from None
        except MemoryError:
            raise PoseDataError(path, "too large to load into memory") from None
        except Exception as exc:  # noqa: BLE001 - every parser failure must become a PoseDataError
            detail = str(exc)[:200] or "no detail"
            raise PoseDataError(path, f"could not be parsed ({type(exc).__name__}: {detail})") from exc
    return wrapper  # type: ignore[return-value]


def format_bytes(n: int) -> str:
    """``n`` bytes for a message: whole MiB from 1 MiB up, else bytes."""
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n} bytes"


def check_file(path: Path, limits: ReaderLimits = DEFAULT_LIMITS, max_bytes: int | None = None) -> int:
    """Refuse a missing path, a non-file or a file over ``max_bytes`` (default
    ``limits.max_file_bytes``); return its size."""
    if not path.exists():
        raise PoseDataError(path, "no such file")
    if not path.is_file():
        raise PoseDataError(path, "not a regular file")
    size = path.stat().st_size
    limit = min(limits.max_file_bytes, max_bytes or limits.max_file_bytes)
    if size > limit:
        raise PoseDataError(path, f"file is {format_bytes(size)}, over the {format_bytes(limit)} limit")
    if size == 0:
        raise PoseDataError(path, "empty file")
    return size


def read_text(path: Path, limits: ReaderLimits = DEFAULT_LIMITS) -> str:
    """Read a text file after the size check (``limits.max_text_bytes``); undecodable bytes become
    U+FFFD (then fail parsing)."""
    check_file(path, limits, limits.max_text_bytes)
    return path.read_bytes().decode("utf-8", errors="replace").lstrip("\ufeff")


def parse_json(text: str, source: str | Path) -> Any:
    """A JSON document: orjson (about 3x faster on keypoint files), else the standard library, which
    also takes what orjson refuses (NaN / Infinity literals, integers past 64 bits); malformed JSON is a
    ``PoseDataError`` naming the line and column."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PoseDataError(source, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None


def check_frame_count(source: str | Path, frames: int, limits: ReaderLimits = DEFAULT_LIMITS,
                      what: str = "frames") -> None:
    """Refuse zero frames and frame counts over ``limits.max_frames``."""
    if frames <= 0:
        raise PoseDataError(source, "zero frames")
    if frames > limits.max_frames:
        raise PoseDataError(source, f"{frames} {what} is over the limit of {limits.max_frames} frames")


def check_fps(source: str | Path, fps: Any) -> float:
    """A usable frame rate as float, or a ``PoseDataError``."""
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)):
        raise PoseDataError(source, f"fps must be a number, got {fps!r:.40}")
    value = float(fps)
    if not (np.isfinite(value) and 0.0 < value <= 10_000.0):
        raise PoseDataError(source, f"fps must be in (0, 10000], got {value}")
    return value


def skeleton_for_joint_count(source: str | Path, num_joints: int) -> str:
    """Source skeleton name for a joint count (17 coco17, 18 body18, 25 body25, 33 mediapipe33)."""
    name = SOURCE_JOINT_COUNTS.get(int(num_joints))
    if name is None:
        known = ", ".join(f"{n} ({s})" for n, s in sorted(SOURCE_JOINT_COUNTS.items()))
        raise PoseDataError(source, f"{num_joints} joints per person is not a known skeleton; expected {known}")
    return name


def map_to_coco17(source: str | Path, joints: np.ndarray, confidence: np.ndarray,
                  skeleton: str) -> tuple[np.ndarray, np.ndarray]:
    """Map (T, S, C) source joints onto COCO-17; coordinates of zero-confidence joints become 0."""
    mapping = SKELETON_MAPPINGS.get(skeleton)
    if mapping is None:
        raise PoseDataError(source, f"unknown skeleton {skeleton!r}; known: {', '.join(sorted(SKELETON_MAPPINGS))}")
    expected = SOURCE_JOINT_COUNTS_BY_NAME[skeleton]
    if joints.shape[1] != expected:
        raise PoseDataError(source, f"skeleton {skeleton} has {expected} joints, got {joints.shape[1]}")
    if not np.isfinite(joints).all():
        raise PoseDataError(source, "joint coordinates contain NaN or inf")
    if not np.isfinite(confidence).all():
        raise PoseDataError(source, "confidence contains NaN or inf")
    out, conf = mapping.apply(joints, confidence)
    out[conf <= 0.0] = 0.0
    return out, conf

_NUMBER = re.compile(r"\d+")


def natural_key(text: str) -> tuple[Any, ...]:
    """Sort key that orders ``frame2`` before ``frame10``."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for part in re.split(r"(\d+)", text) if part)


def last_number(text: str) -> int | None:
    """The last run of digits in ``text`` as int, or None."""
    found = _NUMBER.findall(text)
    return int(found[-1]) if found else None
