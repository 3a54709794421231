"""Test clips made on the spot: a photograph of a person that scikit-image ships (the cameraman, a
man standing at his camera) pasted on a plain canvas and moved sideways frame by frame, encoded
with PyAV. Nothing is downloaded. Also the broken files the error-path tests need."""
from __future__ import annotations

from pathlib import Path

import numpy as np

CANVAS_HW = (600, 800)     # height, width of every frame
PHOTO_TOP = 60             # the photo's row on the canvas
PHOTO_LEFT = 40            # its column in the first frame


def person_photo() -> np.ndarray:
    """The cameraman (512 x 512) as RGB uint8."""
    from skimage import data

    gray = data.camera()
    return np.repeat(gray[..., None], 3, axis=2)


def person_frames(frames: int, step: int) -> list[np.ndarray]:
    """``frames`` canvases with the photo moved ``step`` pixels right each frame."""
    photo = person_photo()
    h, w = photo.shape[:2]
    out = []
    for t in range(frames):
        canvas = np.full((*CANVAS_HW, 3), 235, dtype=np.uint8)
        left = PHOTO_LEFT + step * t
        canvas[PHOTO_TOP:PHOTO_TOP + h, left:left + w] = photo
        out.append(canvas)
    return out


def write_clip(path: Path, frames: list[np.ndarray], fps: int, codec: str = "libx264") -> Path:
    """Encode RGB frames into ``path`` (the container follows the suffix); H.264 by default, which
    browsers play."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def person_clip(path: Path, frames: int = 24, fps: int = 24, step: int = 6) -> Path:
    """A clip of the person moving right by ``step`` pixels per frame."""
    return write_clip(path, person_frames(frames, step), fps)


def empty_clip(path: Path, frames: int = 8, fps: int = 24) -> Path:
    """A clip of a plain grey canvas: no person in it."""
    return write_clip(path, [np.full((*CANVAS_HW, 3), 128, dtype=np.uint8)] * frames, fps)


def unknown_codec_clip(path: Path) -> Path:
    """An AVI whose codec tag no decoder knows (an MPEG-4 AVI with its tag rewritten)."""
    good = write_clip(path.with_name(path.stem + "-src.avi"), [np.zeros((48, 64, 3), np.uint8)] * 4, 24, "mpeg4")
    data = good.read_bytes()
    assert b"FMP4" in data
    path.write_bytes(data.replace(b"FMP4", b"QQQQ"))
    good.unlink()
    return path
