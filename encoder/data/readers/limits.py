"""How much work one pose file may cause: every reader checks these from sizes, headers and counts
before it allocates or computes, and refuses a file over a limit with a one-line ``PoseDataError``
naming the file and the limit.

The defaults admit any real take (an hour of 30 fps video is 108,000 frames; a crowded frame a few
dozen people) and keep a hostile file (a frame-id span bomb, a zip bomb, a quadratic crowd) to well
under a second and 200 MB. Pass ``limits=ReaderLimits(...)`` to a reader to change them.
"""
from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class ReaderLimits:
    """Bounds on one pose file; all are checked before the work they bound is done."""

    max_file_bytes: int = 256 * MIB      # bytes on disk, any format (checked from the file size)
    max_text_bytes: int = 64 * MIB       # JSON / BVH text (parsed Python objects are ~10x larger)
    max_inflated_bytes: int = 256 * MIB  # .npy / .npz arrays once decompressed (from zip and npy headers)
    max_archive_members: int = 64        # arrays in one .npz
    max_frames: int = 100_000            # timeline length; for keypoint JSON the frame-id span
    max_source_joints: int = 500         # joints of one source skeleton (BVH hierarchy, array width)
    max_people_per_frame: int = 1000     # detections in one frame of keypoint JSON
    max_detections: int = 500_000        # detections summed over all frames of keypoint JSON
    max_track_frames: int = 500_000      # tracks returned x timeline frames (``person="all"``)
    max_joint_frames: int = 4_000_000    # BVH frames x joints (forward-kinematics memory)
    link_candidates: int = 8             # nearest active tracks considered per detection when linking

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ReaderLimits.{name} must be a positive integer, got {value!r}")


DEFAULT_LIMITS = ReaderLimits()
