"""A video clip as a COCO-17 ``PoseSequence``: decode, estimate 2D pose on every ``stride``-th frame,
follow the main walker, map to COCO-17 with per-joint confidence, interpolate the skipped frames.

Tracking and skeleton mapping are the keypoint-JSON reader's (``build_sequences``), so a video and
that estimator's JSON output give the same sequence. The clip's real frame rate becomes the
sequence's fps; its path, size, codec, estimator and stride go into the metadata.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from encoder.data.errors import PoseDataError
from encoder.data.readers.keypoint_json import Detection, FrameTable, build_sequences
from encoder.data.sequence import PoseSequence
from encoder.data.video.decode import iter_frames, probe_video
from encoder.data.video.estimators import get_estimator
from encoder.data.video.options import VideoOptions


def interpolate_frames(joints: np.ndarray, confidence: np.ndarray, estimated: np.ndarray,
                       total: int) -> tuple[np.ndarray, np.ndarray]:
    """Fill a ``total``-frame timeline from poses at the sorted frame indices ``estimated``.

    A joint between two estimated frames is linearly interpolated (position and confidence) when both
    saw it; otherwise it is missing (confidence 0). Estimated frames keep their values.
    """
    estimated = np.asarray(estimated, dtype=np.int64)
    t = np.arange(total)
    left = np.clip(np.searchsorted(estimated, t, side="right") - 1, 0, len(estimated) - 1)
    right = np.minimum(left + 1, len(estimated) - 1)
    span = np.maximum(estimated[right] - estimated[left], 1)
    w = np.clip((t - estimated[left]) / span, 0.0, 1.0)
    exact = w == 0.0
    both = (confidence[left] > 0) & (confidence[right] > 0)
    out_conf = np.where(exact[:, None], confidence[left],
                        np.where(both, (1 - w[:, None]) * confidence[left] + w[:, None] * confidence[right], 0.0))
    out = (1 - w[:, None, None]) * joints[left] + w[:, None, None] * joints[right]
    out = np.where(exact[:, None, None], joints[left], out)
    out[out_conf <= 0] = 0.0
    return out.astype(np.float32), out_conf.astype(np.float32)


def read_video(path: str | Path, options: VideoOptions | None = None, *, person: str = "main") -> list[PoseSequence]:
    """The main walker of a clip (``person="all"``: every tracked person, main first) as 2D COCO-17.

    Problems (no person, corrupt file, unsupported codec, over the length limit, extra not installed)
    are one-line ``PoseDataError``s naming the file."""
    path = Path(path)
    options = options or VideoOptions()
    try:
        info = probe_video(path, options.max_seconds)
        estimator = get_estimator(options.estimator)
    except ImportError as err:
        raise PoseDataError(path, str(err)) from None
    except KeyError as err:
        raise PoseDataError(path, str(err.args[0])) from None
    estimated: list[int] = []
    total = 0

    def chosen_frames() -> Iterator[np.ndarray]:
        nonlocal total
        held: tuple[int, np.ndarray] | None = None
        with tqdm(total=info.frames or None, desc=path.name, unit="frame", leave=False,
                  disable=not options.progress, dynamic_ncols=True) as bar:
            for index, frame in enumerate(iter_frames(path, options.max_seconds)):
                total = index + 1
                bar.update()
                if index % options.stride == 0:
                    held = None
                    estimated.append(index)
                    yield frame
                else:
                    held = (index, frame)
            if held is not None:            # the last frame is always estimated: nothing is extrapolated
                estimated.append(held[0])
                yield held[1]

    start = time.perf_counter()
    people = [[Detection(np.asarray(k, np.float64), np.asarray(s, np.float64)) for k, s in found]
              for found in estimator.estimate(chosen_frames())]
    elapsed = time.perf_counter() - start
    if len(people) != len(estimated):
        raise PoseDataError(path, f"estimator {estimator.name} returned {len(people)} results for "
                                  f"{len(estimated)} frames")
    if not any(people):
        raise PoseDataError(path, f"no person found in the video ({len(estimated)} frames looked at)")
    table = FrameTable(frames=people, fps=info.fps, layout=f"video:{estimator.name}", frame_ids=estimated)
    video_meta = {
        "video_path": str(path.resolve()), "video_fps": info.fps, "video_frames": total,
        "video_size": [info.width, info.height], "video_codec": info.codec, "estimator": estimator.name,
        "stride": options.stride, "frames_estimated": len(estimated),
        "extraction_fps": round(total / elapsed, 2) if elapsed > 0 else None,
    }
    sequences = []
    for seq in build_sequences(table, path, path.stem, info.fps, person):
        joints, conf = interpolate_frames(seq.joints, seq.confidence, np.asarray(estimated), total)
        sequences.append(seq.with_(joints=joints, confidence=conf, metadata={**seq.metadata, **video_meta}))
    return sequences
