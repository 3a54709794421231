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
import math
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from encoder.data.errors import PoseDataError
from encoder.data.readers._common import (
    DEFAULT_FPS,
    check_file,
    check_fps,
    check_frame_count,
    format_bytes,
    guard_errors,
    map_to_coco17,
    skeleton_for_joint_count,
)
from encoder.data.readers.limits import DEFAULT_LIMITS, ReaderLimits
from encoder.data.sequence import PoseSequence
from encoder.data.skeleton import SKELETON_MAPPINGS

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
NPZ_KEYS = ("joints", "confidence", "fps", "label", "skeleton", "meta_json")
PER_FRAME_KEYS = ("joints", "confidence")


class _Budget:
    """Inflated bytes still allowed for this file (``limits.max_inflated_bytes`` in all)."""

    def __init__(self, source: Path, limits: ReaderLimits) -> None:
        self.source, self.limits, self.left = source, limits, limits.max_inflated_bytes

    def take(self, nbytes: int, what: str) -> None:
        if nbytes > self.left:
            limit = self.limits.max_inflated_bytes
            raise PoseDataError(self.source, f"{what} would inflate to {format_bytes(nbytes)}, over the "
                                             f"{format_bytes(limit)} limit on array data")
        self.left -= nbytes


def _read_header(source: Path, handle: IO[bytes], what: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran order, dtype) from a .npy header, without reading any array data."""
    try:
        version = np.lib.format.read_magic(handle)
    except ValueError:
        raise PoseDataError(source, f"{what} is not a NumPy .npy array") from None
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(handle)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(handle)
    raise PoseDataError(source, f"{what}: .npy format version {version[0]}.{version[1]} is not supported")


def _read_array(source: Path, handle: IO[bytes], what: str, key: str, budget: _Budget) -> np.ndarray:
    """One array: header first, every limit checked from it, then exactly its bytes are read."""
    shape, fortran, dtype = _read_header(source, handle, what)
    if dtype.hasobject or dtype.fields is not None:
        raise PoseDataError(source, f"{what} holds Python objects or records; pickled data is never loaded")
    if key in PER_FRAME_KEYS and shape:
        check_frame_count(source, shape[0], budget.limits, what=f"frames in '{key}'")
        if len(shape) > 1 and shape[1] > budget.limits.max_source_joints:
            raise PoseDataError(source, f"'{key}' has {shape[1]} joints, over the limit of "
                                        f"{budget.limits.max_source_joints}")
    nbytes = math.prod(shape) * dtype.itemsize
    budget.take(nbytes, what)
    data = handle.read(nbytes)
    if len(data) != nbytes:
        raise PoseDataError(source, f"{what} is truncated: {len(data)} of {nbytes} data bytes")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def _read_npy(path: Path, budget: _Budget) -> np.ndarray:
    with path.open("rb") as handle:
        return _read_array(path, handle, "the array", "joints", budget)


def _read_npz(path: Path, budget: _Budget) -> dict[str, np.ndarray]:
    """The arrays of an .npz archive that the reader uses; zip headers and .npy headers are checked
    before anything is inflated, and each member yields at most the bytes its header declares."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise PoseDataError(path, f"not an .npz archive ({exc})") from None
    with archive:
        members = archive.infolist()
        if len(members) > budget.limits.max_archive_members:
            raise PoseDataError(path, f"{len(members)} arrays in the archive is over the limit of "
                                      f"{budget.limits.max_archive_members}")
        names = {m.filename[:-4]: m for m in members if m.filename.endswith(".npy")}
        if not names:
            raise PoseDataError(path, "not an .npz archive (a single .npy array named .npz?)"
                                if not members else "the archive holds no .npy arrays")
        if "joints" not in names:
            raise PoseDataError(path, f"no 'joints' array (found: {', '.join(sorted(names)) or 'nothing'})")
        wanted = [names[k] for k in NPZ_KEYS if k in names]
        declared = sum(m.file_size for m in wanted)
        if declared > budget.limits.max_inflated_bytes + 4096 * len(wanted):
            raise PoseDataError(path, f"the archive declares {format_bytes(declared)} of array data, over the "
                                      f"{format_bytes(budget.limits.max_inflated_bytes)} limit on array data")
        arrays = {}
        for key in NPZ_KEYS:
            if key in names:
                with archive.open(names[key]) as handle:
                    arrays[key] = _read_array(path, handle, f"array '{key}'", key, budget)
        return arrays


def _numeric(source: Path, array: np.ndarray, what: str) -> np.ndarray:
    if array.dtype.kind not in "iuf":
        raise PoseDataError(source, f"'{what}' must be numeric, got dtype {array.dtype}")
    out = array.astype(np.float64)
    if not np.isfinite(out).all():
        raise PoseDataError(source, f"'{what}' contains NaN or inf")
    return out


def _scalar(source: Path, arrays: dict[str, np.ndarray], key: str) -> Any:
    value = arrays[key]
    if value.ndim != 0 and value.size != 1:
        raise PoseDataError(source, f"'{key}' must be a single value, got shape {value.shape}")
    item = value.reshape(()).item()
    return item.decode("utf-8", errors="replace") if isinstance(item, bytes) else item


def _sequence_from(source: Path, joints: np.ndarray, confidence: np.ndarray | None, fps: Any,
                   skeleton: str | None, name: str, label: Any, metadata: dict[str, Any],
                   limits: ReaderLimits) -> PoseSequence:
    if joints.ndim != 3 or joints.shape[2] not in (2, 3):
        raise PoseDataError(source, f"joints must be (frames, joints, 2|3), got shape {joints.shape}")
    check_frame_count(source, joints.shape[0], limits)
    joints = _numeric(source, joints, "joints")
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
def read_array(path: str | Path, *, default_fps: float = DEFAULT_FPS, limits: ReaderLimits = DEFAULT_LIMITS,
               file_type: str | None = None) -> PoseSequence:
    """A ``.npy`` or ``.npz`` pose array file as a COCO-17 ``PoseSequence`` (layout in the module doc);
    ``file_type`` stands for the suffix of a path without one.

    Nothing is inflated before the zip and .npy headers pass ``limits`` (frames, joints, bytes)."""
    path = Path(path)
    check_file(path, limits)
    with path.open("rb") as handle:
        magic = handle.read(6)
    if magic != NPY_MAGIC and magic[:4] != ZIP_MAGIC:
        raise PoseDataError(path, "not a NumPy .npy/.npz file (pickled data is never loaded)")
    suffix = (file_type or path.suffix).lower()
    budget = _Budget(path, limits)
    if suffix == ".npy":
        if magic != NPY_MAGIC:
            raise PoseDataError(path, "not a single .npy array (an .npz archive named .npy?)")
        joints = _read_npy(path, budget)
        return _sequence_from(path, joints, None, default_fps, None, path.stem, None, {}, limits)
    if suffix != ".npz":
        raise PoseDataError(path, f"read_array reads .npy and .npz, not '{suffix}'")
    if magic[:4] != ZIP_MAGIC:
        raise PoseDataError(path, "not an .npz archive (a single .npy array named .npz?)")
    arrays = _read_npz(path, budget)
    meta: dict[str, Any] = {}
    if "meta_json" in arrays:
        try:
            meta = json.loads(str(_scalar(path, arrays, "meta_json")))
        except json.JSONDecodeError as exc:
            raise PoseDataError(path, f"'meta_json' is not valid JSON: {exc.msg}") from None
        if not isinstance(meta, dict):
            raise PoseDataError(path, "'meta_json' must hold a JSON object")
    fps = _scalar(path, arrays, "fps") if "fps" in arrays else meta.get("fps", default_fps)
    label = _scalar(path, arrays, "label") if "label" in arrays else meta.get("label")
    skeleton = _scalar(path, arrays, "skeleton") if "skeleton" in arrays else meta.get("skeleton")
    if skeleton is not None and not isinstance(skeleton, str):
        raise PoseDataError(path, f"skeleton must be text, got {type(skeleton).__name__}")
    extra = meta.get("metadata", {})
    if not isinstance(extra, dict):
        raise PoseDataError(path, "'metadata' in meta_json must be a JSON object")
    name = meta.get("name") or path.stem
    return _sequence_from(path, arrays["joints"], arrays.get("confidence"), fps, skeleton, str(name), label,
                          dict(extra), limits)
