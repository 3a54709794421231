"""``PoseSequence``: the one in-memory type for a keypoint sequence, 2D or 3D.

Conventions (every reader and generator keeps them):
- ``joints``: float32 (T, J, C), C = 2 (image pixels, y down) or 3 (world metres, Y up).
- ``confidence``: float32 (T, J) in [0, 1]; 0 means the joint is missing in that frame, and
  its coordinates carry no meaning (they are stored as 0).
- ``skeleton``: "coco17" once mapped onto the canonical skeleton (all readers do this).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import numpy as np

from encoder.data.errors import PoseDataError
from encoder.data.skeleton import CANONICAL_SKELETON, NUM_JOINTS

MAX_FRAMES = 1_000_000          # anything longer is an absurd size, refused
MAX_ABS_COORD = 1e7             # pixels or metres beyond this are absurd


@dataclass
class PoseSequence:
    """A keypoint sequence with per-joint confidence, frame rate, skeleton, source and metadata."""

    joints: np.ndarray
    confidence: np.ndarray
    fps: float
    skeleton: str = CANONICAL_SKELETON
    source: str = ""
    name: str = ""
    label: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.joints = np.asarray(self.joints, dtype=np.float32)
        self.confidence = np.asarray(self.confidence, dtype=np.float32)
        self.validate()

    # -- shape --------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])

    @property
    def num_joints(self) -> int:
        return int(self.joints.shape[1])

    @property
    def dims(self) -> int:
        return int(self.joints.shape[2])

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    def validate(self) -> None:
        """Refuse malformed content with a one-line ``PoseDataError`` naming the source."""
        src = self.source or self.name or "<sequence>"
        j, c = self.joints, self.confidence
        if j.ndim != 3 or j.shape[2] not in (2, 3):
            raise PoseDataError(src, f"joints must be (frames, joints, 2|3), got shape {j.shape}")
        if j.shape[0] == 0:
            raise PoseDataError(src, "zero frames")
        if j.shape[0] > MAX_FRAMES:
            raise PoseDataError(src, f"{j.shape[0]} frames is over the limit of {MAX_FRAMES}")
        if self.skeleton == CANONICAL_SKELETON and j.shape[1] != NUM_JOINTS:
            raise PoseDataError(src, f"coco17 needs {NUM_JOINTS} joints, got {j.shape[1]}")
        if c.shape != j.shape[:2]:
            raise PoseDataError(src, f"confidence shape {c.shape} does not match joints {j.shape[:2]}")
        if not np.isfinite(j).all():
            raise PoseDataError(src, "joint coordinates contain NaN or inf")
        if not np.isfinite(c).all() or (c < 0).any() or (c > 1.0 + 1e-6).any():
            raise PoseDataError(src, "confidence must be finite and within [0, 1]")
        if np.abs(j).max(initial=0.0) > MAX_ABS_COORD:
            raise PoseDataError(src, f"coordinates beyond {MAX_ABS_COORD:g} are absurd")
        if not (np.isfinite(self.fps) and 0.0 < self.fps <= 10_000.0):
            raise PoseDataError(src, f"fps must be in (0, 10000], got {self.fps}")

    # -- identity -------------------------------------------------------------------------
    def content_hash(self) -> str:
        """SHA-256 of the motion content (joints, confidence, fps, skeleton), not of metadata."""
        h = hashlib.sha256()
        h.update(json.dumps([self.skeleton, round(float(self.fps), 6), list(self.joints.shape)]).encode())
        h.update(np.ascontiguousarray(self.joints, dtype="<f4").tobytes())
        h.update(np.ascontiguousarray(self.confidence, dtype="<f4").tobytes())
        return h.hexdigest()

    def with_(self, **changes: Any) -> "PoseSequence":
        """A copy with some fields replaced (arrays are not copied unless replaced)."""
        return replace(self, **changes)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays for an ``.npz`` (no pickled objects: metadata travels as a JSON string)."""
        meta = {"fps": float(self.fps), "skeleton": self.skeleton, "source": self.source,
                "name": self.name, "label": self.label, "metadata": self.metadata}
        return {"joints": self.joints, "confidence": self.confidence,
                "meta_json": np.array(json.dumps(meta, default=str))}

    @classmethod
    def from_arrays(cls, arrays: Any, source: str = "", overrides: Mapping[str, Any] | None = None
                    ) -> "PoseSequence":
        """Inverse of ``to_arrays`` (``arrays``: an ``np.load(..., allow_pickle=False)`` result).

        ``source`` is used when the arrays record none; ``overrides`` (name, source, label, metadata)
        replace what they recorded, so the sequence is built and validated once."""
        meta = json.loads(str(arrays["meta_json"])) if "meta_json" in arrays else {}
        recorded = dict(fps=float(meta.get("fps", 30.0)), skeleton=meta.get("skeleton", CANONICAL_SKELETON),
                        source=meta.get("source", source), name=meta.get("name", ""),
                        label=meta.get("label"), metadata=meta.get("metadata", {}))
        return cls(joints=arrays["joints"], confidence=arrays["confidence"], **{**recorded, **(overrides or {})})
