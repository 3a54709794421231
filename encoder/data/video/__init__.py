"""Video input (the ``video`` extra): clips -> 2D COCO-17 pose sequences through a pluggable estimator.

Light to import: ``reader.read_video`` (what ``read_pose_file`` calls for a clip), the decoder and the
estimators load PyAV and the estimator's library only when used.
"""
from __future__ import annotations

from typing import Any

from encoder.data.video.options import MAX_VIDEO_SECONDS, VIDEO_SUFFIXES, VideoOptions


def is_video(path: Any) -> bool:
    """Whether ``path`` (str or Path) names a video file by its suffix."""
    return str(path).lower().endswith(VIDEO_SUFFIXES)


__all__ = ["MAX_VIDEO_SECONDS", "VIDEO_SUFFIXES", "VideoOptions", "is_video"]
