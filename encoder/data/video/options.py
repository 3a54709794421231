"""Video input settings and limits (no heavy imports: the readers and the CLI import this)."""
from __future__ import annotations

from dataclasses import dataclass

VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm")
MAX_VIDEO_SECONDS = 600.0          # a runway clip is seconds to minutes; ten minutes is the ceiling
MAX_VIDEO_PIXELS = 4096 * 4096     # larger frames are refused before decoding
DEFAULT_ESTIMATOR = "mediapipe"


@dataclass(frozen=True)
class VideoOptions:
    """How to read a clip: estimate pose on every ``stride``-th frame (the rest interpolated), with
    which registered estimator, up to ``max_seconds`` long; ``progress`` shows a bar per video."""

    stride: int = 1
    estimator: str = DEFAULT_ESTIMATOR
    max_seconds: float = MAX_VIDEO_SECONDS
    progress: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.stride, int) or isinstance(self.stride, bool) or self.stride < 1:
            raise ValueError(f"stride must be a positive integer, got {self.stride!r}")
        if not self.max_seconds > 0:
            raise ValueError(f"max_seconds must be positive, got {self.max_seconds!r}")
