"""Video decoding with PyAV (the ``video`` extra): probe a clip, then yield its frames as RGB arrays.

Every problem is a one-line ``PoseDataError`` naming the file: not a video or corrupt, no video
stream, a codec this build cannot decode, a frame size or a length over the limits.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from encoder.data.errors import PoseDataError
from encoder.data.readers._common import check_file, check_fps
from encoder.data.video.options import MAX_VIDEO_PIXELS, MAX_VIDEO_SECONDS


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a clip's video stream (``frames`` 0 when it does not say)."""

    fps: float
    frames: int
    width: int
    height: int
    codec: str
    duration_s: float | None


def _import_av() -> Any:
    try:
        import av
    except ImportError:
        raise ImportError("video input needs the video extra: pip install 'posestyle[video]'") from None
    return av


def _open(path: Path) -> Any:
    av = _import_av()
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as err:
        raise PoseDataError(path, "not a readable video (corrupt or not a video file: "
                                  f"{err.strerror or err})") from None


def _info(path: Path, container: Any, stream: Any, max_seconds: float) -> VideoInfo:
    if stream.codec_context is None:
        raise PoseDataError(path, "unsupported video codec: no decoder for this stream")
    width, height = int(stream.width or 0), int(stream.height or 0)
    if width <= 0 or height <= 0:
        raise PoseDataError(path, "video stream has no frame size")
    if width * height > MAX_VIDEO_PIXELS:
        raise PoseDataError(path, f"frame size {width}x{height} is over the limit of {MAX_VIDEO_PIXELS} pixels")
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate:
        raise PoseDataError(path, "video stream has no frame rate")
    fps = check_fps(path, float(rate))
    duration = None
    if stream.duration is not None and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = float(container.duration) / 1_000_000.0
    if duration is not None and duration > max_seconds:
        raise PoseDataError(path, f"video is {duration:.4g} s long, over the limit of {max_seconds:g} s")
    return VideoInfo(fps=fps, frames=int(stream.frames or 0), width=width, height=height,
                     codec=str(stream.codec_context.name), duration_s=duration)


def probe_video(path: str | Path, max_seconds: float = MAX_VIDEO_SECONDS) -> VideoInfo:
    """The clip's frame rate, frame count, size and codec, checked against the limits."""
    path = Path(path)
    check_file(path)
    with _open(path) as container:
        if not container.streams.video:
            raise PoseDataError(path, "no video stream in the file")
        return _info(path, container, container.streams.video[0], max_seconds)


def iter_frames(path: str | Path, max_seconds: float = MAX_VIDEO_SECONDS) -> Iterator[np.ndarray]:
    """The clip's frames in order as (H, W, 3) uint8 RGB; stops with an error past ``max_seconds``
    (also when the container does not state its length) or at data that cannot be decoded."""
    av = _import_av()
    path = Path(path)
    check_file(path)
    with _open(path) as container:
        if not container.streams.video:
            raise PoseDataError(path, "no video stream in the file")
        stream = container.streams.video[0]
        info = _info(path, container, stream, max_seconds)
        # One thread: decoder and colour-conversion threads each reserve address space, and under the
        # upload sandbox's RLIMIT_AS their creation failed at random (EAGAIN) on a busy machine; the
        # pose estimator, not decoding, is what a clip costs.
        stream.thread_type = "NONE"
        stream.codec_context.thread_count = 1
        limit = int(np.ceil(max_seconds * info.fps))
        count = 0
        try:
            for frame in container.decode(stream):
                count += 1
                if count > limit:
                    raise PoseDataError(path, f"video is over the limit of {max_seconds:g} s")
                yield frame.to_ndarray(format="rgb24", threads=1)
        except av.error.FFmpegError as err:
            raise PoseDataError(path, f"corrupt video: decoding failed after {count} frame(s) "
                                      f"({err.strerror or err})") from None
    if count == 0:
        raise PoseDataError(path, "the video has no decodable frames")
