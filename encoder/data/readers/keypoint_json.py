"""2D keypoint JSON as written by MMPose / RTMPose / YOLO-pose / OpenPose / MediaPipe tools.

Layouts understood (all give one frame list, then one tracked main person):
(a) a list of frames ``{"frame_id"|"image_id": k, "instances"|"people"|"persons": [person, ...]}``
    (a frame may also be a bare list of persons);
(b) COCO results: a flat list of persons ``{"image_id": k, "keypoints": [x, y, v] * J, "score"}``;
(c) a dict holding such a list under "frames" (or "instance_info", "annotations", "results",
    "predictions"), with an optional "fps"; a single OpenPose frame ``{"people": [...]}``.
A person's "keypoints" is flat ``[x, y, s, ...]`` / ``[x, y, ...]``, nested ``[[x, y(, s)], ...]``
(MediaPipe ``[x, y, z, visibility]`` rows: z is dropped) or ``[{"x", "y", "score"}, ...]``;
"keypoint_scores" overrides in-row scores. Scores are clipped to [0, 1] (COCO visibility 2 -> 1).
Integer frame ids keep the timeline: a frame id with no file entry is a frame with nobody in it.
Main person: with track ids in the file ("track_id", "person_id", per-frame "id"), the id seen in
most frames, ties going to the larger mean box (the extent of the confident keypoints, since tools
disagree on xywh vs xyxy "bbox") and then the higher mean score; without them, people are linked
frame to frame by nearest centre first (each person against its ``link_candidates`` nearest live
tracks, found with a KD-tree: O(people log people) per frame). Frames without the main person have
confidence 0. Counts (people per frame, detections, frame-id span) are checked against
``ReaderLimits`` before any person is parsed or any timeline is allocated.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Hashable

import numpy as np
from scipy.spatial import cKDTree

from encoder.data.errors import PoseDataError
from encoder.data.readers._common import (
    DEFAULT_FPS,
    check_fps,
    check_frame_count,
    collector_paused,
    guard_errors,
    last_number,
    map_to_coco17,
    natural_key,
    parse_json,
    read_text,
    skeleton_for_joint_count,
)
from encoder.data.readers.limits import DEFAULT_LIMITS, ReaderLimits
from encoder.data.sequence import PoseSequence
from encoder.data.skeleton import SOURCE_JOINT_COUNTS

FRAME_LIST_KEYS = ("frames", "instance_info", "annotations", "results", "predictions")
PERSONS_KEYS = ("instances", "people", "persons", "predictions", "detections")
FRAME_ID_KEYS = ("frame_id", "image_id", "frame", "frame_idx", "frame_index")
KEYPOINT_KEYS = ("keypoints", "pose_keypoints_2d", "landmarks", "pose_landmarks", "keypoints_2d")
SCORE_KEYS = ("keypoint_scores", "keypoints_scores", "keypoint_score", "scores")
TRACK_KEYS_IN_FRAME = ("track_id", "track", "person_id", "instance_id", "id", "idx")
TRACK_KEYS_IN_RECORD = ("track_id", "track", "person_id", "instance_id")  # "id" there is the annotation id
POINT_SCORE_KEYS = ("score", "confidence", "visibility", "c", "v")
FPS_KEYS = ("fps", "frame_rate", "video_fps")
MAX_LINK_GAP = 30          # frames a person may vanish and still be linked by centre
LINK_DISTANCE = 1.0        # link when centres are within this many person-box diagonals
PERSON_SELECTIONS = ("main", "all")


@dataclass
class Detection:
    """One person in one frame: (J, 2) keypoints, (J,) scores, optional track id, and where it was read
    (for error messages). ``describe_detections`` checks and fills the rest for a whole table at once:
    scores clipped to [0, 1], the mean score, and the centre, area and diagonal of the confident
    keypoints' extent (None / 0 when no keypoint is confident)."""

    keypoints: np.ndarray
    scores: np.ndarray
    track_id: Hashable | None = None
    where: str = ""
    centre: np.ndarray | None = field(default=None, init=False)
    area: float = field(default=0.0, init=False)
    diagonal: float = field(default=0.0, init=False)
    mean_score: float = field(default=0.0, init=False)


def describe_detections(frames: list[list[Detection]], source: Path, chunk: int = 65536) -> None:
    """Check and describe every detection of a table, ``chunk`` at a time in vectorised passes (a file
    has one detection per person and frame, so per-detection NumPy calls would dominate reading); all
    share J joints."""
    dets = [d for frame in frames for d in frame]
    for start in range(0, len(dets), chunk):
        _describe_chunk(dets[start:start + chunk], start, source)


def _describe_chunk(dets: list[Detection], first: int, source: Path) -> None:
    keypoints = np.stack([d.keypoints for d in dets]).astype(np.float64, copy=False)   # (N, J, 2)
    scores = np.stack([d.scores for d in dets]).astype(np.float64, copy=False)         # (N, J)
    for values, what in ((keypoints, "keypoint coordinates"), (scores, "keypoint scores")):
        finite = np.isfinite(values).reshape(len(dets), -1).all(axis=1)
        if not finite.all():
            bad = int(np.argmin(finite))
            raise PoseDataError(source, f"{dets[bad].where or f'detection {first + bad}'}: {what} contain NaN or inf")
    scores = np.clip(scores, 0.0, 1.0)
    mean_score = scores.sum(axis=1) / scores.shape[1]
    seen = scores > 0
    any_seen = seen.any(axis=1)
    lo = np.where(any_seen[:, None], np.where(seen[..., None], keypoints, np.inf).min(axis=1), 0.0)
    hi = np.where(any_seen[:, None], np.where(seen[..., None], keypoints, -np.inf).max(axis=1), 0.0)
    centre, extent = (lo + hi) / 2.0, hi - lo
    area = (extent[:, 0] * extent[:, 1]).tolist()
    diagonal = np.hypot(extent[:, 0], extent[:, 1]).tolist()
    for i, (det, score_mean, has_seen) in enumerate(zip(dets, mean_score.tolist(), any_seen.tolist())):
        det.keypoints, det.scores, det.mean_score = keypoints[i], scores[i], score_mean
        if has_seen:
            det.centre, det.area, det.diagonal = centre[i], area[i], diagonal[i]


@dataclass
class FrameTable:
    """Detections per timeline frame, plus what the file said about itself."""

    frames: list[list[Detection]]
    fps: float | None
    layout: str
    frame_ids: list[Any] = field(default_factory=list)


# --- person parsing -----------------------------------------------------------------------------

def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _track_id(obj: dict[str, Any], keys: tuple[str, ...]) -> Hashable | None:
    for key in keys:
        if key not in obj:
            continue
        value = obj[key]
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return None if value < 0 else value
        if isinstance(value, str) and value:
            return value
        return None
    return None


def _first(obj: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((obj[k] for k in keys if k in obj), None)


def parse_person(obj: Any, where: str, source: Path, track_keys: tuple[str, ...]) -> Detection | None:
    """One person object as a ``Detection``; None for a person with an empty keypoint list."""
    if not isinstance(obj, dict):
        raise PoseDataError(source, f"{where}: a person must be a JSON object, got {type(obj).__name__}")
    raw = _first(obj, KEYPOINT_KEYS)
    if raw is None:
        raise PoseDataError(source, f"{where}: person has no 'keypoints'")
    if not isinstance(raw, list):
        raise PoseDataError(source, f"{where}: 'keypoints' must be a list")
    if not raw:
        return None
    scores_raw = _first(obj, SCORE_KEYS)
    if scores_raw is not None and not (isinstance(scores_raw, list) and scores_raw):
        raise PoseDataError(source, f"{where}: keypoint scores must be a list of numbers")
    xy, scores = _keypoint_array(raw, scores_raw, where, source)
    return Detection(xy, scores, _track_id(obj, track_keys), where)   # checked by describe_detections


def _numeric_array(values: list[Any]) -> np.ndarray | None:
    """``values`` as a float64 array if it is a regular nest of numbers, else None."""
    try:
        array = np.array(values)
    except (ValueError, TypeError, OverflowError):
        return None                                  # ragged rows
    if array.dtype.kind not in "iuf":               # text, null, bool-only or mixed objects
        return None
    return array.astype(np.float64, copy=False)


def _keypoint_array(raw: list[Any], scores_raw: list[Any] | None, where: str,
                    source: Path) -> tuple[np.ndarray, np.ndarray]:
    first = raw[0]
    if isinstance(first, dict):
        if not all(isinstance(p, dict) and _is_number(p.get("x")) and _is_number(p.get("y")) for p in raw):
            raise PoseDataError(source, f"{where}: every keypoint object needs numeric 'x' and 'y'")
        xy = np.array([[p["x"], p["y"]] for p in raw], dtype=np.float64)
        in_row = [next((p[k] for k in POINT_SCORE_KEYS if _is_number(p.get(k))), 1.0) for p in raw]
        row_scores = np.array(in_row, dtype=np.float64)
    elif isinstance(first, list):
        rows = _numeric_array(raw)
        if rows is None or rows.ndim != 2 or not 2 <= rows.shape[1] <= 4:
            raise PoseDataError(source, f"{where}: nested keypoints must be rows of 2 to 4 numbers, all alike")
        xy = rows[:, :2]
        row_scores = rows[:, -1] if rows.shape[1] >= 3 else np.ones(len(rows))
    else:
        flat = _numeric_array(raw)
        if flat is None or flat.ndim != 1:
            raise PoseDataError(source, f"{where}: keypoints must be numbers")
        n = flat.size
        if scores_raw is not None and n == 2 * len(scores_raw):
            stride = 2
        elif n % 3 == 0 and n // 3 in SOURCE_JOINT_COUNTS:
            stride = 3
        elif n % 2 == 0 and n // 2 in SOURCE_JOINT_COUNTS:
            stride = 2
        else:
            raise PoseDataError(source, f"{where}: {n} keypoint values is not [x, y] or [x, y, score] "
                                        f"for {'/'.join(map(str, sorted(SOURCE_JOINT_COUNTS)))} joints")
        rows = flat.reshape(-1, stride)
        xy = rows[:, :2]
        row_scores = rows[:, 2] if stride == 3 else np.ones(len(rows))
    if scores_raw is not None:
        scores = _numeric_array(scores_raw)
        if scores is None or scores.ndim != 1:
            raise PoseDataError(source, f"{where}: keypoint scores must be a list of numbers")
        if len(scores) != len(xy):
            raise PoseDataError(source, f"{where}: {len(scores)} keypoint scores for {len(xy)} keypoints")
        row_scores = scores
    skeleton_for_joint_count(source, len(xy))
    return xy, row_scores


# --- document layouts ---------------------------------------------------------------------------

def _persons(value: Any, where: str, source: Path, limits: ReaderLimits = DEFAULT_LIMITS) -> list[Detection]:
    if not isinstance(value, list):
        raise PoseDataError(source, f"{where}: the people list must be a JSON list")
    if len(value) > limits.max_people_per_frame:
        raise PoseDataError(source, f"{where}: {len(value)} people is over the limit of "
                                    f"{limits.max_people_per_frame} per frame")
    found = (parse_person(p, f"{where} person {i}", source, TRACK_KEYS_IN_FRAME) for i, p in enumerate(value))
    return [d for d in found if d is not None]


def _frame_key(obj: dict[str, Any], default: int) -> Any:
    key = _first(obj, FRAME_ID_KEYS)
    if isinstance(key, float) and key.is_integer():
        key = int(key)
    if isinstance(key, bool) or not isinstance(key, (int, str)):
        return default
    return key


def _check_counts(items: list[Any], source: Path, limits: ReaderLimits) -> None:
    """Refuse, before any person is parsed, a document whose people per frame, detections in all or
    frame-id span (integer ids keep their spacing on the timeline) is over ``limits``."""
    per_frame: dict[Any, int] = {}
    for i, item in enumerate(items):
        if isinstance(item, list):
            key, people = i, len(item)
        elif isinstance(item, dict) and any(k in item for k in PERSONS_KEYS):
            persons = _first(item, PERSONS_KEYS)
            key, people = _frame_key(item, i), len(persons) if isinstance(persons, list) else 0
        else:
            key, people = (_frame_key(item, i), 1) if isinstance(item, dict) else (i, 0)
        count = per_frame[key] = per_frame.get(key, 0) + people
        if count > limits.max_people_per_frame:
            raise PoseDataError(source, f"frame {str(key)[:40]}: {count} people is over the limit of "
                                        f"{limits.max_people_per_frame} per frame")
    total = sum(per_frame.values())
    if total > limits.max_detections:
        raise PoseDataError(source, f"{total} detections is over the limit of {limits.max_detections}")
    ints = [k for k in per_frame if isinstance(k, int)]
    if ints and len(ints) == len(per_frame):
        check_frame_count(source, max(ints) - min(ints) + 1, limits,
                          what=f"frames (frame ids {min(ints)} to {max(ints)})")
    else:
        check_frame_count(source, len(per_frame), limits)


def frame_table_from_document(doc: Any, source: Path, limits: ReaderLimits = DEFAULT_LIMITS) -> FrameTable:
    """Group a parsed JSON document's people by frame, whatever the layout."""
    fps: float | None = None
    layout = "coco_json"
    if isinstance(doc, dict):
        fps_value = _first(doc, FPS_KEYS)
        meta = doc.get("meta_info")
        if fps_value is None and isinstance(meta, dict):
            fps_value = _first(meta, FPS_KEYS)
        if fps_value is not None:
            fps = check_fps(source, fps_value)
        if "people" in doc and not any(isinstance(doc.get(k), list) for k in FRAME_LIST_KEYS):
            return FrameTable([_persons(doc["people"], "frame 0", source, limits)], fps, "openpose_json", [0])
        items = next((doc[k] for k in FRAME_LIST_KEYS if isinstance(doc.get(k), list)), None)
        if items is None:
            raise PoseDataError(source, "JSON object has no frame list (expected one of: "
                                        f"{', '.join(FRAME_LIST_KEYS + ('people',))})")
    elif isinstance(doc, list):
        items = doc
    else:
        raise PoseDataError(source, f"expected a JSON list or object, got {type(doc).__name__}")
    _check_counts(items, source, limits)

    grouped: dict[Any, list[Detection]] = {}
    for i, item in enumerate(items):
        if isinstance(item, list):
            grouped.setdefault(i, []).extend(_persons(item, f"frame {i}", source, limits))
        elif isinstance(item, dict) and any(k in item for k in PERSONS_KEYS):
            key = _frame_key(item, i)
            persons = _first(item, PERSONS_KEYS)
            grouped.setdefault(key, []).extend(_persons(persons, f"frame {key}", source, limits))
        elif isinstance(item, dict) and any(k in item for k in KEYPOINT_KEYS):
            key = _frame_key(item, i)
            det = parse_person(item, f"entry {i} (frame {key})", source, TRACK_KEYS_IN_RECORD)
            bucket = grouped.setdefault(key, [])
            if det is not None:
                bucket.append(det)
        else:
            raise PoseDataError(source, f"entry {i} is neither a frame (with 'instances'/'people') "
                                        "nor a person (with 'keypoints')")
    return _timeline(grouped, fps, layout, source, limits)


def _timeline(grouped: dict[Any, list[Detection]], fps: float | None, layout: str, source: Path,
              limits: ReaderLimits = DEFAULT_LIMITS) -> FrameTable:
    """Order frames: integer ids keep their spacing; other ids are sorted naturally, one frame each."""
    if not grouped:
        raise PoseDataError(source, "zero frames")
    keys = list(grouped)
    if all(isinstance(k, int) for k in keys):
        first, last = min(keys), max(keys)
        check_frame_count(source, last - first + 1, limits, what=f"frames (frame ids {first} to {last})")
        frames: list[list[Detection]] = [[] for _ in range(last - first + 1)]
        for k, dets in grouped.items():
            frames[k - first] = dets
        return FrameTable(frames, fps, layout, list(range(first, last + 1)))
    merged: dict[str, list[Detection]] = {}
    for k, dets in grouped.items():
        merged.setdefault(str(k), []).extend(dets)
    ordered = sorted(merged, key=natural_key)
    check_frame_count(source, len(ordered), limits)
    return FrameTable([merged[k] for k in ordered], fps, layout, ordered)


# --- tracking and the main person --------------------------------------------------------------

def assign_tracks(frames: list[list[Detection]],
                  link_candidates: int = DEFAULT_LIMITS.link_candidates) -> tuple[list[list[Hashable | None]], str]:
    """A track key per detection: the file's track ids when it has usable ones, else centre linking.

    Track ids that each appear in one frame only (annotation ids, not tracks) are ignored.
    """
    ids = [[d.track_id for d in dets] for dets in frames]
    frames_per_id: dict[Hashable, int] = {}
    for frame_ids in ids:
        for tid in set(frame_ids) - {None}:
            frames_per_id[tid] = frames_per_id.get(tid, 0) + 1
    frames_with_people = sum(1 for dets in frames if dets)
    if frames_per_id and (frames_with_people <= 1 or max(frames_per_id.values()) > 1):
        return [[("file", t) if t is not None else None for t in fi] for fi in ids], "file"
    return _link_by_centre(frames, link_candidates), "nearest_centre"


def _link_by_centre(frames: list[list[Detection]], candidates: int) -> list[list[Hashable | None]]:
    """Greedy frame-to-frame linking, nearest pair first: each person joins the track whose last
    centre is nearest, among its ``candidates`` nearest live tracks (a KD-tree query).

    A track links only within ``LINK_DISTANCE`` person diagonals and ``MAX_LINK_GAP`` frames.
    """
    last_centre: list[np.ndarray] = []
    last_frame: list[int] = []
    last_diag: list[float] = []
    active: list[int] = []
    out: list[list[Hashable | None]] = []
    for t, dets in enumerate(frames):
        keys: list[Hashable | None] = [None] * len(dets)
        if not dets:
            out.append(keys)
            continue
        active = [k for k in active if t - last_frame[k] <= MAX_LINK_GAP]
        seen = [di for di, det in enumerate(dets) if det.centre is not None]
        used_tracks: set[int] = set()
        if len(active) == 1 and len(seen) == 1:    # one person, one live track: the common case, no tree
            det, k = dets[seen[0]], active[0]
            distance = float(np.sqrt(np.sum((det.centre - last_centre[k]) ** 2)))  # type: ignore[operator]
            if distance <= LINK_DISTANCE * max(det.diagonal, last_diag[k], 1e-9):
                keys[seen[0]] = ("linked", k)
        elif active and seen:
            for _, di, k in _candidate_pairs(dets, seen, active, last_centre, last_diag, candidates):
                if keys[di] is None and k not in used_tracks:
                    keys[di] = ("linked", k)
                    used_tracks.add(k)
        for di in seen:
            det = dets[di]
            if keys[di] is None:
                k = len(last_centre)
                last_centre.append(det.centre)  # type: ignore[arg-type]
                last_frame.append(t)
                last_diag.append(det.diagonal)
                active.append(k)
                keys[di] = ("linked", k)
            else:
                k = keys[di][1]  # type: ignore[index]
                last_centre[k], last_frame[k], last_diag[k] = det.centre, t, det.diagonal  # type: ignore[call-overload]
        out.append(keys)
    return out


def _candidate_pairs(dets: list[Detection], seen: list[int], active: list[int], last_centre: list[np.ndarray],
                     last_diag: list[float], candidates: int) -> list[tuple[float, int, int]]:
    """(distance, detection, track) pairs close enough to link, nearest first (ties: detection, then
    track order): each detection against its ``candidates`` nearest active tracks."""
    tree = cKDTree(np.array([last_centre[k] for k in active]))
    centres = np.array([dets[di].centre for di in seen])
    diags = np.array([dets[di].diagonal for di in seen])
    track_diags = np.array([last_diag[k] for k in active])
    bound = LINK_DISTANCE * max(float(diags.max()), float(track_diags.max()), 1e-9)
    n = min(candidates, len(active))
    dist, pos = tree.query(centres, k=n, distance_upper_bound=bound * (1 + 1e-9))
    dist, pos = dist.reshape(len(seen), n), pos.reshape(len(seen), n)
    pairs = []
    for row, col in zip(*np.nonzero(np.isfinite(dist))):
        d, a = float(dist[row, col]), int(pos[row, col])
        if d <= LINK_DISTANCE * max(float(diags[row]), float(track_diags[a]), 1e-9):
            pairs.append((d, seen[row], a))
    pairs.sort()
    return [(d, di, active[a]) for d, di, a in pairs]


def _best_per_track(dets: list[Detection], frame_keys: list[Hashable | None]) -> dict[Hashable, Detection]:
    """Each track's detection in one frame (the most confident if the file repeats an id), in
    order of first appearance."""
    best: dict[Hashable, Detection] = {}
    for det, key in zip(dets, frame_keys):
        if key is not None and (key not in best or det.mean_score > best[key].mean_score):
            best[key] = det
    return best


def rank_tracks(frames: list[list[Detection]], keys: list[list[Hashable | None]]) -> list[Hashable]:
    """Track keys, main person first: most frames, then larger mean box area, then mean score."""
    stats: dict[Hashable, list[float]] = {}
    for dets, frame_keys in zip(frames, keys):
        for key, det in _best_per_track(dets, frame_keys).items():
            s = stats.setdefault(key, [0.0, 0.0, 0.0, float(len(stats))])
            s[0] += 1
            s[1] += det.area
            s[2] += det.mean_score
    return sorted(stats, key=lambda k: (-stats[k][0], -stats[k][1] / stats[k][0],
                                        -stats[k][2] / stats[k][0], stats[k][3]))


def build_sequences(table: FrameTable, source: Path, name: str, default_fps: float,
                    person: str, limits: ReaderLimits = DEFAULT_LIMITS) -> list[PoseSequence]:
    """One COCO-17 ``PoseSequence`` for the main person, or with ``person="all"`` one per track
    (main first; the others are named ``<name>_person<rank>``), each spanning the whole timeline.

    ``person="all"`` returns at most ``limits.max_track_frames // frames`` tracks (the top-ranked);
    metadata ``num_tracks`` still counts every track."""
    if person not in PERSON_SELECTIONS:
        raise PoseDataError(source, f"person must be one of {PERSON_SELECTIONS}, got {person!r}")
    counts = {len(d.scores) for dets in table.frames for d in dets}
    if not counts:
        raise PoseDataError(source, "no people with keypoints in any frame")
    if len(counts) > 1:
        raise PoseDataError(source, f"people have different keypoint counts ({sorted(counts)})")
    num_source_joints = counts.pop()
    skeleton = skeleton_for_joint_count(source, num_source_joints)
    describe_detections(table.frames, source)
    keys, tracked_by = assign_tracks(table.frames, limits.link_candidates)
    ranked = rank_tracks(table.frames, keys)
    if not ranked:
        raise PoseDataError(source, "no person with any confident keypoint")
    fps = table.fps if table.fps is not None else check_fps(source, default_fps)
    num_frames = len(table.frames)
    chosen = ranked[:1] if person == "main" else ranked[:max(1, limits.max_track_frames // num_frames)]
    best = [_best_per_track(dets, frame_keys) for dets, frame_keys in zip(table.frames, keys)]
    sequences = []
    for rank, track in enumerate(chosen):
        joints = np.zeros((num_frames, num_source_joints, 2), dtype=np.float64)
        conf = np.zeros((num_frames, num_source_joints), dtype=np.float64)
        for t, frame_best in enumerate(best):
            det = frame_best.get(track)
            if det is not None:
                joints[t], conf[t] = det.keypoints, det.scores
        mapped, mapped_conf = map_to_coco17(source, joints, conf, skeleton)
        track_id = track[1] if track[0] == "file" else None  # type: ignore[index]
        metadata = {
            "format": table.layout,
            "source_skeleton": skeleton,
            "tracked_by": tracked_by,
            "track_id": track_id,
            "track_rank": rank,
            "num_tracks": len(ranked),
            "frames_with_person": int((conf.max(axis=1) > 0).sum()),
            "max_people_per_frame": max(len(d) for d in table.frames),
            "fps_from_file": table.fps is not None,
        }
        sequences.append(PoseSequence(joints=mapped, confidence=mapped_conf, fps=fps, source=str(source),
                                      name=name if rank == 0 else f"{name}_person{rank}", metadata=metadata))
    return sequences


# --- public readers -----------------------------------------------------------------------------

@guard_errors
def read_coco_json(path: str | Path, *, person: str = "main", default_fps: float = DEFAULT_FPS,
                   limits: ReaderLimits = DEFAULT_LIMITS) -> list[PoseSequence]:
    """Keypoint JSON (MMPose, RTMPose, YOLO-pose, OpenPose, COCO results) as 2D COCO-17 sequences.

    ``person="main"``: the tracked main person only (frames without them have confidence 0);
    ``"all"``: every track, main first. fps comes from the file, else ``default_fps``.
    """
    path = Path(path)
    text = read_text(path, limits)
    with collector_paused():
        doc = parse_json(text, path)
        table = frame_table_from_document(doc, path, limits)
        del doc
        return build_sequences(table, path, path.stem, default_fps, person, limits)


@guard_errors
def read_openpose_folder(path: str | Path, *, person: str = "main", default_fps: float = DEFAULT_FPS,
                         limits: ReaderLimits = DEFAULT_LIMITS) -> list[PoseSequence]:
    """A folder of OpenPose ``*_keypoints.json`` (one per frame) as 2D COCO-17 sequences.

    Frames are ordered by the last number in each file name; a missing number is an empty frame.
    """
    path = Path(path)
    if not path.is_dir():
        raise PoseDataError(path, "not a folder")
    files = sorted(p for p in path.iterdir() if p.name.endswith("_keypoints.json") and p.is_file())
    if not files:
        raise PoseDataError(path, "folder has no OpenPose *_keypoints.json files")
    check_frame_count(path, len(files), limits)
    numbers = [last_number(file.name[: -len("_keypoints.json")]) for file in files]
    known = [n for n in numbers if n is not None]
    if known:
        check_frame_count(path, max(known) - min(known) + 1, limits,
                          what=f"frames (frame numbers {min(known)} to {max(known)})")
    detections = 0
    grouped: dict[Any, list[Detection]] = {}
    for file in files:
        number = last_number(file.name[: -len("_keypoints.json")])
        if number is None:
            raise PoseDataError(file, "no frame number in the file name")
        if number in grouped:
            raise PoseDataError(file, f"frame number {number} appears in two files")
        doc = parse_json(read_text(file, limits), file)
        if not isinstance(doc, dict) or not isinstance(doc.get("people"), list):
            raise PoseDataError(file, "expected an OpenPose object with a 'people' list")
        grouped[number] = _persons(doc["people"], f"{file.name}", file, limits)
        detections += len(grouped[number])
        if detections > limits.max_detections:
            raise PoseDataError(path, f"over {limits.max_detections} detections, the limit")
    table = _timeline(grouped, None, "openpose_folder", path, limits)
    return build_sequences(table, path, path.name, default_fps, person, limits)

