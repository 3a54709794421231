"""NumPy pose arrays: ``.npy`` (T, J, C) coordinates and ``.npz`` with named arrays.

``.npy``: (T, J, C) float coordinates, C = 2 (image pixels) or 3 (world metres, Y up); every
joint has confidence 1. ``.npz``: ``joints`` (required, as .npy), optional ``confidence`` (T, J)
in [0, 1], ``fps``, ``label``, ``skeleton`` (source skeleton name), or the
``PoseSequence.to_arrays`` layout (``joints``, ``confidence``, ``meta_json``).
J must be 17, 18, 25 or 33 (coco17, body18, body25, mediapipe33); all are mapped onto COCO-17.
Nothing is unpickled: object arrays are refused.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from encoder.data.errors import PoseDataError
from encoder.data.readers._common import (
    DEFAULT_FPS,
    check_file,
    check_fps,
    check_frame_count,
    guard_errors,
    map_to_coco17,
    skeleton_for_joint_count,
)
from encoder.data.sequence import PoseSequence
from encoder.data.skeleton import SKELETON_MAPPINGS

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"


def _load_array(source: Path, loader: Any, key: str | None = None) -> np.ndarray:
    """Load one array without pickle; object arrays become a clear ``PoseDataError``."""
    try:
        return loader() if key is None else loader[key]
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            what = f"array '{key}'" if key else "the array"
            raise PoseDataError(source, f"{what} holds Python objects; pickled data is never loaded") from None
        raise


def _numeric(source: Path, array: np.ndarray, what: str) -> np.ndarray:
    if array.dtype.kind not in "iuf":
        raise PoseDataError(source, f"'{what}' must be numeric, got dtype {array.dtype}")
    out = array.astype(np.float64)
    if not np.isfinite(out).all():
        raise PoseDataError(source, f"'{what}' contains NaN or inf")
    return out


def _scalar(source: Path, arrays: Any, key: str) -> Any:
    value = _load_array(source, arrays, key)
    if value.ndim != 0 and value.size != 1:
        raise PoseDataError(source, f"'{key}' must be a single value, got shape {value.shape}")
    item = value.reshape(()).item()
    return item.decode("utf-8", errors="replace") if isinstance(item, bytes) else item


def _sequence_from(source: Path, joints: np.ndarray, confidence: np.ndarray | None, fps: Any,
                   skeleton: str | None, name: str, label: Any, metadata: dict[str, Any]) -> PoseSequence:
    joints = _numeric(source, joints, "joints")
    if joints.ndim != 3 or joints.shape[2] not in (2, 3):
        raise PoseDataError(source, f"joints must be (frames, joints, 2|3), got shape {joints.shape}")
    check_frame_count(source, joints.shape[0])
    if skeleton is None:
        skeleton = skeleton_for_joint_count(source, joints.shape[1])
    elif skeleton not in SKELETON_MAPPINGS:
        raise PoseDataError(source, f"unknown skeleton {skeleton!r}; known: {', '.join(sorted(SKELETON_MAPPINGS))}")
    if confidence is None:
        conf = np.ones(joints.shape[:2])
    else:
        conf = _numeric(source, confidence, "confidence")
        if conf.shape != joints.shape[:2]:
            raise PoseDataError(source, f"confidence shape {conf.shape} does not match joints {joints.shape[:2]}")
        if (conf < 0).any() or (conf > 1.0 + 1e-6).any():
            raise PoseDataError(source, "confidence must be within [0, 1]")
        conf = np.clip(conf, 0.0, 1.0)
    mapped, mapped_conf = map_to_coco17(source, joints, conf, skeleton)
    if label is not None and not isinstance(label, str):
        raise PoseDataError(source, f"label must be text, got {type(label).__name__}")
    meta = {"format": source.suffix.lower().lstrip("."), "source_skeleton": skeleton, **metadata}
    return PoseSequence(joints=mapped, confidence=mapped_conf, fps=check_fps(source, fps),
                        source=str(source), name=name, label=label or None, metadata=meta)


@guard_errors
def read_array(path: str | Path, *, default_fps: float = DEFAULT_FPS) -> PoseSequence:
    """A ``.npy`` or ``.npz`` pose array file as a COCO-17 ``PoseSequence`` (layout in the module doc)."""
    path = Path(path)
    check_file(path)
    with path.open("rb") as handle:
        magic = handle.read(6)
    if magic != NPY_MAGIC and magic[:4] != ZIP_MAGIC:
        raise PoseDataError(path, "not a NumPy .npy/.npz file (pickled data is never loaded)")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        joints = _load_array(path, lambda: np.load(path, allow_pickle=False))
        if not isinstance(joints, np.ndarray):
            joints.close()
            raise PoseDataError(path, "not a single .npy array (an .npz archive named .npy?)")
        return _sequence_from(path, joints, None, default_fps, None, path.stem, None, {})
    if suffix != ".npz":
        raise PoseDataError(path, f"read_array reads .npy and .npz, not '{suffix}'")
    loaded = _load_array(path, lambda: np.load(path, allow_pickle=False))
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise PoseDataError(path, "not an .npz archive (a single .npy array named .npz?)")
    with loaded as arrays:
        files = set(arrays.files)
        if "joints" not in files:
            raise PoseDataError(path, f"no 'joints' array (found: {', '.join(sorted(files)) or 'nothing'})")
        meta: dict[str, Any] = {}
        if "meta_json" in files:
            try:
                meta = json.loads(str(_scalar(path, arrays, "meta_json")))
            except json.JSONDecodeError as exc:
                raise PoseDataError(path, f"'meta_json' is not valid JSON: {exc.msg}") from None
            if not isinstance(meta, dict):
                raise PoseDataError(path, "'meta_json' must hold a JSON object")
        joints = _load_array(path, arrays, "joints")
        confidence = _load_array(path, arrays, "confidence") if "confidence" in files else None
        fps = _scalar(path, arrays, "fps") if "fps" in files else meta.get("fps", default_fps)
        label = _scalar(path, arrays, "label") if "label" in files else meta.get("label")
        skeleton = _scalar(path, arrays, "skeleton") if "skeleton" in files else meta.get("skeleton")
    if skeleton is not None and not isinstance(skeleton, str):
        raise PoseDataError(path, f"skeleton must be text, got {type(skeleton).__name__}")
    extra = meta.get("metadata", {})
    if not isinstance(extra, dict):
        raise PoseDataError(path, "'metadata' in meta_json must be a JSON object")
    name = meta.get("name") or path.stem
    return _sequence_from(path, joints, confidence, fps, skeleton, str(name), label, dict(extra))
