"""Pose file readers: every supported format becomes COCO-17 ``PoseSequence`` objects.

Formats: ``.bvh`` (3D mocap, metres), ``.json`` (COCO / MMPose / RTMPose / YOLO-pose / OpenPose
keypoints, 2D pixels), ``.npy`` / ``.npz`` (arrays), a folder of OpenPose ``*_keypoints.json``, and
video clips (``encoder.data.video``, the ``video`` extra: pose estimated per frame).
Every problem is a one-line ``PoseDataError`` naming the file.
"""
from __future__ import annotations

from pathlib import Path

from encoder.data.errors import PoseDataError
from encoder.data.readers._common import DEFAULT_FPS, MAX_FILE_BYTES, MAX_SOURCE_JOINTS
from encoder.data.readers.arrays import read_array
from encoder.data.readers.bvh import BvhMotion, BvhSkeleton, read_bvh, read_bvh_full
from encoder.data.readers.keypoint_json import PERSON_SELECTIONS, read_coco_json, read_openpose_folder
from encoder.data.readers.limits import DEFAULT_LIMITS, ReaderLimits
from encoder.data.sequence import PoseSequence
from encoder.data.video.options import VIDEO_SUFFIXES, VideoOptions

SUPPORTED_SUFFIXES: tuple[str, ...] = (".bvh", ".json", ".npy", ".npz", *VIDEO_SUFFIXES)


def read_pose_file(path: str | Path, *, person: str = "main", default_fps: float = DEFAULT_FPS,
                   bvh_scale: float | None = None, limits: ReaderLimits = DEFAULT_LIMITS,
                   file_type: str | None = None, video: VideoOptions | None = None) -> list[PoseSequence]:
    """Read any supported pose file (or OpenPose frame folder), dispatching on its suffix (or on
    ``file_type``, e.g. ``".json"``, for a path without one).

    Keypoint JSON and video may hold several people: ``person="main"`` keeps the tracked main person,
    ``"all"`` every track (main first). Single-person formats give a one-item list. ``limits``
    bound the work one file may cause (``ReaderLimits``; checked before the work is done);
    ``video`` sets how a clip is read (stride, estimator, length limit).
    """
    path = Path(path)
    if person not in PERSON_SELECTIONS:
        raise PoseDataError(path, f"person must be one of {PERSON_SELECTIONS}, got {person!r}")
    if path.is_dir():
        return read_openpose_folder(path, person=person, default_fps=default_fps, limits=limits)
    if not path.exists():
        raise PoseDataError(path, "no such file or folder")
    suffix = (file_type or path.suffix).lower()
    if suffix == ".bvh":
        return [read_bvh(path, scale=bvh_scale, limits=limits)]
    if suffix == ".json":
        return read_coco_json(path, person=person, default_fps=default_fps, limits=limits)
    if suffix in (".npy", ".npz"):
        return [read_array(path, default_fps=default_fps, limits=limits, file_type=suffix)]
    if suffix in VIDEO_SUFFIXES:
        from encoder.data.video.reader import read_video

        return read_video(path, video, person=person)
    raise PoseDataError(path, f"unsupported file type '{suffix or path.name}'; "
                              f"supported: {', '.join(SUPPORTED_SUFFIXES)} or an OpenPose folder")


def read_pose_path(path: str | Path, *, person: str = "main", default_fps: float = DEFAULT_FPS,
                   bvh_scale: float | None = None, limits: ReaderLimits = DEFAULT_LIMITS) -> list[PoseSequence]:
    """Same as ``read_pose_file``; the name says it also takes a folder of OpenPose frame JSONs."""
    return read_pose_file(path, person=person, default_fps=default_fps, bvh_scale=bvh_scale, limits=limits)


__all__ = [
    "SUPPORTED_SUFFIXES", "VIDEO_SUFFIXES", "VideoOptions", "DEFAULT_FPS", "MAX_FILE_BYTES", "MAX_SOURCE_JOINTS",
    "PERSON_SELECTIONS", "DEFAULT_LIMITS", "ReaderLimits",
    "BvhMotion", "BvhSkeleton",
    "read_pose_file", "read_pose_path", "read_coco_json", "read_openpose_folder", "read_array",
    "read_bvh", "read_bvh_full",
]
