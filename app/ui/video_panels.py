"""Video on the search page: the query clip beside the skeleton extracted from it (and the pose drawn
over a few of its frames, to see it was read right), and a hit's source clip when it came from video."""
from __future__ import annotations

import io
import mimetypes
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
from PIL import Image, ImageDraw

from app.ui.figures import skeleton_gif
from encoder.data.sequence import PoseSequence
from encoder.data.skeleton import COCO17_EDGES, LEFT_RIGHT_PAIRS
from encoder.data.video import is_video
from retrieval.analysis import motion_view, safe_upload_name

OVERLAY_FRAMES = 4
OVERLAY_WIDTH = 320
_LEFT = {a for a, _ in LEFT_RIGHT_PAIRS}
_RIGHT = {b for _, b in LEFT_RIGHT_PAIRS}


@dataclass(frozen=True)
class QueryVideo:
    """An uploaded query clip with what was extracted from it, ready to show."""

    name: str
    data: bytes
    mime: str
    skeleton_gif: bytes
    overlays: list[bytes]        # PNG frames with the extracted pose drawn on
    overlay_frames: list[int]    # their frame numbers


def _mime(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "video/mp4"


def draw_pose(frame: np.ndarray, joints: np.ndarray, confidence: np.ndarray, width: int = OVERLAY_WIDTH) -> bytes:
    """A PNG of ``frame`` with the COCO-17 pose (pixels) drawn on: left side blue, right red."""
    image = Image.fromarray(frame)
    scale = width / image.width
    image = image.resize((width, max(1, round(image.height * scale))))
    pen = ImageDraw.Draw(image)
    points = joints * scale
    seen = confidence > 0
    for i, j in COCO17_EDGES:
        if seen[i] and seen[j]:
            colour = (31, 119, 180) if {i, j} <= _LEFT else (214, 39, 40) if {i, j} <= _RIGHT else (250, 200, 0)
            pen.line([tuple(points[i]), tuple(points[j])], fill=colour, width=3)
    for x, y in points[seen]:
        pen.ellipse([x - 3, y - 3, x + 3, y + 3], fill=(255, 255, 255), outline=(0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def query_video(name: str, data: bytes, seq: PoseSequence, count: int = OVERLAY_FRAMES) -> QueryVideo | None:
    """The clip, skeleton GIF and pose overlays of an uploaded video query; None for a pose file."""
    from encoder.data.video.decode import iter_frames

    display = safe_upload_name(name)
    if not is_video(display):
        return None
    seen_frames = np.flatnonzero((seq.confidence > 0).any(axis=1))
    picks = np.linspace(0, len(seen_frames) - 1, count).round().astype(int) if len(seen_frames) else []
    wanted = sorted({int(seen_frames[i]) for i in picks})
    overlays: list[bytes] = []
    with tempfile.TemporaryDirectory(prefix="posestyle-query-") as folder:
        path = Path(folder) / display
        path.write_bytes(data)
        for index, frame in enumerate(iter_frames(path)):
            if index in wanted:
                overlays.append(draw_pose(frame, seq.joints[index], seq.confidence[index]))
            if not wanted or index >= wanted[-1]:
                break
    return QueryVideo(name=display, data=data, mime=_mime(display), skeleton_gif=skeleton_gif(motion_view(seq)),
                      overlays=overlays, overlay_frames=wanted[:len(overlays)])


def show_query_video(query: QueryVideo) -> None:
    """The query clip beside its extracted skeleton, then the pose drawn over a few frames."""
    st.subheader(f"Query clip: {query.name}")
    clip, skeleton = st.columns([2, 1])
    with clip:
        st.video(query.data, format=query.mime)
    with skeleton:
        st.image(query.skeleton_gif, caption="skeleton extracted from the clip", width="stretch")
    if query.overlays:
        st.image(query.overlays, caption=[f"frame {i}: pose as read" for i in query.overlay_frames], width=200)


def show_hit_clip(metadata: dict[str, Any]) -> None:
    """A hit's source clip under its skeleton, when it was ingested from a video that is still there."""
    source = str(metadata.get("source") or "")
    if is_video(source) and Path(source).is_file():
        st.video(source, format=_mime(source))
        st.caption("source clip")
