"""Video input (the ``video`` extra): clips -> 2D COCO-17 pose sequences through a pluggable estimator.

Light to import: ``read_video`` and the decoder load PyAV / the estimator's library only when called.
"""
from __future__ import annotations

from typing import Any

from encoder.data.video.options import MAX_VIDEO_SECONDS, VIDEO_SUFFIXES, VideoOptions


def is_video(path: Any) -> bool:
    """Whether ``path`` (str or Path) names a video file by its suffix."""
    return str(path).lower().endswith(VIDEO_SUFFIXES)


def read_video(*args: Any, **kwargs: Any) -> Any:
    """See ``encoder.data.video.reader.read_video``."""
    from encoder.data.video.reader import read_video as _read_video

    return _read_video(*args, **kwargs)


__all__ = ["MAX_VIDEO_SECONDS", "VIDEO_SUFFIXES", "VideoOptions", "is_video", "read_video"]
