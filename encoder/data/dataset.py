"""The versioned on-disk dataset cache that ``posestyle ingest`` writes and everything else reads.

Layout of a dataset directory::

    manifest.json               the current version: items, labels, metadata, errors
    arrays/<content_hash>.npz   one file per distinct motion (content-addressed, no pickle)
    manifests/<version>.json    every version ever written (history; arrays are never deleted)

The version id is a hash over the sorted (name, content_hash, label) triples, so it changes
exactly when motion content or labels change, and re-ingesting the same files reproduces it.
"""
from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import re
import time
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from encoder.data.atomic import DurableBatchWriter, atomic_write_bytes
from encoder.data.errors import PoseDataError, one_line
from encoder.data.labels import LabelSource
from encoder.data.readers import PERSON_SELECTIONS, SUPPORTED_SUFFIXES, read_pose_file
from encoder.data.sequence import PoseSequence
from encoder.data.video.options import VideoOptions

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
ARRAYS_DIR = "arrays"
HISTORY_DIR = "manifests"
OPENPOSE_FRAME_SUFFIX = "_keypoints.json"
FILE_LIST_SUFFIX = ".txt"
UNLABELLED = "(unlabelled)"


# -- atomic writes ----------------------------------------------------------------------------
def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def to_json_value(value: Any) -> Any:
    """``value`` as plain JSON types (numpy scalars/arrays -> numbers/lists, anything else -> str)."""
    return json.loads(json.dumps(value, default=_json_default))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, default=_json_default) + "\n").encode("utf-8"))


# -- manifest items ---------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetItem:
    """One sequence in a dataset: its name, where it came from, its content hash and labels."""

    name: str
    source: str
    content_hash: str
    label: str | None
    metadata: dict[str, Any]
    frames: int
    fps: float
    dims: int
    skeleton: str

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "DatasetItem":
        return cls(name=str(obj["name"]), source=str(obj["source"]), content_hash=str(obj["content_hash"]),
                   label=obj.get("label"), metadata=dict(obj.get("metadata") or {}),
                   frames=int(obj["frames"]), fps=float(obj["fps"]), dims=int(obj["dims"]),
                   skeleton=str(obj["skeleton"]))


def dataset_version(items: Iterable[DatasetItem]) -> str:
    """Version id: sha256 over the sorted (name, content_hash, label) triples (first 16 hex digits)."""
    triples = sorted((it.name, it.content_hash, it.label or "") for it in items)
    return hashlib.sha256(json.dumps(triples).encode("utf-8")).hexdigest()[:16]


# -- the cache --------------------------------------------------------------------------------
# What np.save writes for a plain array (format 1.0): the one header read_npz parses itself.
_NPY_HEADER = re.compile(r"\{'descr': '([<>|=][biufcUS]\d*)', 'fortran_order': False, 'shape': \(([\d, ]*)\), \}")


def read_npz(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` held in memory, as ``np.load(..., allow_pickle=False)`` gives them.

    A cache file holds three small arrays, and ``np.load`` spends most of a load parsing their
    headers (``ast.literal_eval``), a third of the re-index's read stage: plain headers are parsed
    here with one regular expression; anything else (other format versions, Fortran order, structured
    or object dtypes) goes through ``np.load``, which also raises for what it refuses."""
    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            raw = archive.read(info)
            offset = 10 + int.from_bytes(raw[8:10], "little")          # magic, version, header length
            header = _NPY_HEADER.fullmatch(raw[10:offset].decode("latin1").rstrip())
            if not (raw[:8] == b"\x93NUMPY\x01\x00" and info.filename.endswith(".npy") and header):
                with np.load(io.BytesIO(data), allow_pickle=False) as loaded:
                    return {name: loaded[name] for name in loaded.files}
            shape = tuple(int(v) for v in header.group(2).split(",") if v.strip())
            count = int(np.prod(shape, dtype=np.int64))
            values = np.frombuffer(raw, np.dtype(header.group(1)), count, offset)
            arrays[info.filename[:-4]] = values.reshape(shape).copy()
    return arrays


class DatasetCache:
    """A read-only view of a dataset directory (all items, or a subset from ``select``/``split``)."""

    def __init__(self, root: Path, manifest: dict[str, Any], items: list[DatasetItem]) -> None:
        self.root = Path(root)
        self.manifest = manifest
        self._items = tuple(items)
        self._by_name = {it.name: it for it in self._items}
        self._version = dataset_version(self._items)

    @classmethod
    def open(cls, path: str | Path, version: str | None = None) -> "DatasetCache":
        """Open the current version of a dataset directory, or an earlier one from its history."""
        root = Path(path)
        manifest_path = root / MANIFEST_NAME if version is None else root / HISTORY_DIR / f"{version}.json"
        if not manifest_path.is_file():
            if version is not None:
                raise PoseDataError(root, f"no version {version} in this dataset's history")
            raise PoseDataError(root, f"not a dataset cache (no {MANIFEST_NAME}); create it with posestyle ingest")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            items = [DatasetItem.from_json(obj) for obj in manifest["items"]]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise PoseDataError(manifest_path, f"unreadable manifest: {err}") from None
        if manifest.get("format_version") != FORMAT_VERSION:
            raise PoseDataError(manifest_path, f"format_version {manifest.get('format_version')!r} is not "
                                f"{FORMAT_VERSION}; re-run posestyle ingest")
        cache = cls(root, manifest, items)
        if cache.version != manifest.get("version"):
            raise PoseDataError(manifest_path, f"items hash to version {cache.version}, but the manifest says "
                                f"{manifest.get('version')!r} (edited by hand?); re-run posestyle ingest")
        return cache

    # -- identity and contents ----------------------------------------------------------------
    @property
    def version(self) -> str:
        """Version id of exactly these items (for a subset, differs from ``dataset_version``)."""
        return self._version

    @property
    def dataset_version(self) -> str:
        """Version id of the whole dataset this view was opened from."""
        return str(self.manifest["version"])

    @property
    def items(self) -> tuple[DatasetItem, ...]:
        return self._items

    @property
    def names(self) -> list[str]:
        return [it.name for it in self._items]

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def item(self, name: str) -> DatasetItem:
        try:
            return self._by_name[name]
        except KeyError:
            raise PoseDataError(self.root, f"no sequence named {name!r} in dataset {self.version}") from None

    def labels(self) -> list[str]:
        """The sorted set of labels (unlabelled items excluded)."""
        return sorted({it.label for it in self._items if it.label is not None})

    def label_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(it.label or UNLABELLED for it in self._items).items()))

    def history(self) -> list[str]:
        """Versions kept under ``manifests/``, oldest first."""
        files = sorted((self.root / HISTORY_DIR).glob("*.json"), key=lambda p: p.stat().st_mtime)
        return [p.stem for p in files]

    # -- loading --------------------------------------------------------------------------------
    def array_path(self, content_hash: str) -> Path:
        return self.root / ARRAYS_DIR / f"{content_hash}.npz"

    def prefetch(self, names: Iterable[str]) -> None:
        """Ask the OS to start reading these items' array files now (``posix_fadvise`` WILLNEED).

        A batch's files then come off the disk together, while the first ones are parsed, instead
        of each ``load`` waiting for its own read (on a cold page cache that wait was a quarter of a
        re-index worker's time). A hint only: unknown names and unreadable files are left for
        ``load`` to report, and where the OS has no such call this does nothing."""
        self._advise(names, "POSIX_FADV_WILLNEED")

    def evict(self, names: Iterable[str]) -> bool:
        """Drop these items' array files from the OS page cache (sync, then ``posix_fadvise``
        DONTNEED), so the next reads go to the disk, as for an archive nobody has just read (the
        re-index bench's cold start); False where the OS has no such call."""
        if not hasattr(os, "posix_fadvise"):
            return False
        os.sync()
        self._advise(names, "POSIX_FADV_DONTNEED")
        return True

    def _advise(self, names: Iterable[str], advice: str) -> None:
        """``posix_fadvise(advice)`` on each named item's array file; unknown names and files that
        cannot be opened are skipped (a hint never fails a read); nothing where the OS lacks the call."""
        if not hasattr(os, "posix_fadvise"):
            return
        for name in names:
            item = self._by_name.get(name)
            if item is None:
                continue
            try:
                fd = os.open(self.array_path(item.content_hash), os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, getattr(os, advice))
            except OSError:
                pass
            finally:
                os.close(fd)

    def load(self, name: str) -> PoseSequence:
        """The sequence ``name`` with its label and metadata; the content hash is checked."""
        item = self.item(name)
        path = self.array_path(item.content_hash)
        try:
            seq = PoseSequence.from_arrays(read_npz(path.read_bytes()), overrides=dict(
                name=item.name, source=item.source, label=item.label, metadata=dict(item.metadata)))
        except FileNotFoundError:
            raise PoseDataError(path, f"array file of {name!r} is missing; re-run posestyle ingest") from None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
            raise PoseDataError(path, f"unreadable array file of {name!r}: {err}") from None
        if seq.content_hash() != item.content_hash:
            raise PoseDataError(path, f"array file of {name!r} is corrupt (content hash mismatch)")
        return seq

    def iter_sequences(self, names: Iterable[str] | None = None) -> Iterator[PoseSequence]:
        """Load sequences one at a time, in item order (or in the order of ``names``)."""
        for name in (self.names if names is None else names):
            yield self.load(name)

    # -- subsets --------------------------------------------------------------------------------
    def select(self, names: Iterable[str]) -> "DatasetCache":
        """A view of just ``names`` (in that order); every name must be in the dataset."""
        wanted = list(dict.fromkeys(names))
        missing = [n for n in wanted if n not in self._by_name]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise PoseDataError(self.root, f"{len(missing)} name(s) not in dataset {self.version}: {shown}")
        return DatasetCache(self.root, self.manifest, [self._by_name[n] for n in wanted])

    def split(self, names_file: str | Path) -> "DatasetCache":
        """A view of the names listed in a split file (``read_split_file``)."""
        path = Path(names_file)
        names = read_split_file(path)
        try:
            return self.select(names)
        except PoseDataError as err:
            raise PoseDataError(path, err.problem) from None


def read_split_file(path: str | Path) -> list[str]:
    """Names listed in a split file, in order, duplicates removed: one per line, blank lines and ``#``
    comments ignored."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise PoseDataError(path, f"cannot read split file: {err.strerror or err}") from None
    return list(dict.fromkeys(ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")))


# -- ingest -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class IngestError:
    """One input that could not be ingested, with its one-line reason."""

    source: str
    error: str

    def __str__(self) -> str:
        return f"{self.source}: {self.error}"


@dataclass
class IngestReport:
    """What an ingest did: counts, per-label counts, time, the resulting version and the bad inputs."""

    out: str
    read: int = 0                 # sequences read and kept
    written: int = 0              # new array files written
    reused: int = 0               # array files already in the cache (identical content)
    failed: int = 0               # inputs that could not be ingested
    skipped: int = 0              # annotation sidecars next to pose files, not pose data
    label_counts: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    version: str | None = None    # None when nothing was ingested (the cache is left untouched)
    previous_version: str | None = None
    errors: list[IngestError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.read > 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _error_of(source: str | Path, err: BaseException) -> IngestError:
    if isinstance(err, PoseDataError):
        return IngestError(err.source, err.problem)
    if isinstance(err, OSError):
        return IngestError(str(source), err.strerror or str(err))
    return IngestError(str(source), f"unexpected {type(err).__name__}: {one_line(err)}")


def _walk_folder(folder: Path, exclude: Path | None = None) -> tuple[list[Path], int]:
    """Pose inputs under ``folder`` (recursive, sorted) and the number of annotation sidecars skipped.

    A folder of ``*_keypoints.json`` files is one OpenPose sequence. A ``.json`` whose stem matches
    a sibling pose file of another format (``take.bvh`` + ``take.json``) is an annotation sidecar.
    """
    found: list[Path] = []
    skipped = 0
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and (exclude is None or (here / d).resolve() != exclude))
        files = sorted(here / f for f in filenames if not f.startswith("."))
        openpose = any(f.name.endswith(OPENPOSE_FRAME_SUFFIX) for f in files)
        if openpose:
            found.append(here)
        pose_files = [f for f in files if f.suffix.lower() in SUPPORTED_SUFFIXES]
        other_stems = {f.stem for f in pose_files if f.suffix.lower() != ".json"}
        for f in pose_files:
            if openpose and f.name.endswith(OPENPOSE_FRAME_SUFFIX):
                continue
            if f.suffix.lower() == ".json" and f.stem in other_stems:
                skipped += 1
                continue
            found.append(f)
    return found, skipped


def discover_inputs(paths: Iterable[str | Path], exclude: str | Path | None = None
                    ) -> tuple[list[Path], list[IngestError], int]:
    """Expand folders (recursively) and ``.txt`` file lists into pose inputs, without duplicates.

    Returns (inputs, errors for paths that do not exist or are not pose files, sidecars skipped).
    Relative paths in a file list are relative to the list's folder. The ``exclude`` folder (the
    dataset being written, if it lies inside an input folder) is not searched.
    """
    excluded = Path(exclude).expanduser().resolve() if exclude is not None else None
    inputs: list[Path] = []
    errors: list[IngestError] = []
    skipped = 0

    def expand(path: Path, from_list: bool) -> None:
        nonlocal skipped
        if path.is_dir():
            found, n_skipped = _walk_folder(path, excluded)
            inputs.extend(found)
            skipped += n_skipped
        elif not path.exists():
            errors.append(IngestError(str(path), "no such file or directory"))
        elif path.suffix.lower() == FILE_LIST_SUFFIX and not from_list:
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as err:
                errors.append(_error_of(path, err))
                return
            for line in lines:
                entry = line.strip()
                if entry and not entry.startswith("#"):
                    target = Path(entry).expanduser()
                    expand(target if target.is_absolute() else path.parent / target, from_list=True)
        elif path.suffix.lower() in SUPPORTED_SUFFIXES:
            inputs.append(path)
        else:
            errors.append(IngestError(str(path), f"unsupported file type {path.suffix or '(none)'!r}; "
                                      f"supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}, a .txt file list "
                                      "or a folder"))

    for p in paths:
        expand(Path(p).expanduser(), from_list=False)
    unique = list(dict.fromkeys(p.resolve() for p in inputs))
    return unique, errors, skipped


def check_output_dir(out: str | Path) -> None:
    """Refuse an ``--out`` that is a file, or a non-empty folder that is not a dataset cache."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PoseDataError(out, "--out must be a folder, not a file")
    if out.is_dir() and not (out / MANIFEST_NAME).is_file() and any(out.iterdir()):
        raise PoseDataError(out, "--out is a non-empty folder that is not a dataset cache; "
                            "choose a new or empty folder")


def check_person(person: str) -> None:
    """Refuse a ``person`` choice the readers do not offer (``main`` or ``all``)."""
    if person not in PERSON_SELECTIONS:
        raise PoseDataError("--person", f"must be one of {', '.join(PERSON_SELECTIONS)}, got {person!r}")


def _read_input(job: tuple[str, str, VideoOptions | None]) -> tuple[list[PoseSequence], IngestError | None]:
    """Worker: read one pose input, never raising (a bad file becomes an ``IngestError``)."""
    path_str, person, video = job
    path = Path(path_str)
    try:
        seqs = read_pose_file(path, person=person, video=video)
        if not seqs:
            raise PoseDataError(path, "no pose sequence found")
        return list(seqs), None
    except Exception as err:  # any failure of one input is recorded; the batch goes on
        return [], _error_of(path, err)


def process_pool_context() -> multiprocessing.context.BaseContext:
    """fork where available: workers inherit the imported modules instead of re-importing torch
    (seconds per worker); spawn elsewhere."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _read_all(jobs: list[tuple[str, str, VideoOptions | None]], workers: int, progress: bool
              ) -> Iterator[tuple[list[PoseSequence], IngestError | None]]:
    bar = tqdm(total=len(jobs), desc="ingest", unit="file", disable=not progress, dynamic_ncols=True)
    try:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                result = _read_input(job)
                bar.update()
                yield result
            return
        chunksize = max(1, min(16, len(jobs) // (workers * 8)))
        with ProcessPoolExecutor(max_workers=workers, mp_context=process_pool_context()) as pool:
            for result in pool.map(_read_input, jobs, chunksize=chunksize):
                bar.update()
                yield result
    finally:
        bar.close()


def _labelled(seq: PoseSequence, source: Path, label_source: LabelSource | None) -> PoseSequence:
    """Attach the label source's label and metadata (a sequence it does not know keeps its own)."""
    name = seq.name or source.stem
    info = label_source.lookup(name, source) if label_source is not None else None
    if info is None:
        return seq.with_(name=name, source=str(source))
    return seq.with_(name=name, source=str(source), label=info.label,
                     metadata={**seq.metadata, **info.metadata})


def ingest(paths: Iterable[str | Path], out: str | Path, label_source: LabelSource | None = None, *,
           person: str = "main", workers: int = 1, progress: bool = True,
           video: VideoOptions | None = None) -> IngestReport:
    """Read pose files/folders/file lists, label them, and write a new version of the dataset at ``out``.

    Bad inputs are recorded with their one-line reason and skipped. When nothing could be read the
    cache is left as it was (``report.version`` is None). ``video`` sets how clips are read; with one
    worker and ``progress`` each clip shows its own frame bar.
    """
    check_person(person)
    check_output_dir(out)
    start = time.perf_counter()
    out = Path(out)
    paths = [Path(p).expanduser() for p in paths]
    report = IngestReport(out=str(out))
    inputs, errors, report.skipped = discover_inputs(paths, exclude=out)
    report.errors.extend(errors)

    arrays_dir = out / ARRAYS_DIR
    items: list[DatasetItem] = []
    seen_names: dict[str, str] = {}
    video = replace(video or VideoOptions(), progress=progress and workers <= 1)
    jobs = [(str(p), person, video) for p in inputs]
    # arrays are content-addressed and made durable in batches before the manifest names them
    with DurableBatchWriter() as arrays:
        for path, (seqs, error) in zip(inputs, _read_all(jobs, workers, progress), strict=True):
            if error is not None:
                report.errors.append(error)
                continue
            for raw in seqs:     # several only for --person all; the reader names each person apart
                seq = _labelled(raw, path, label_source)
                if seq.name in seen_names:
                    report.errors.append(IngestError(str(path), f"duplicate sequence name {seq.name!r} "
                                                     f"(already read from {seen_names[seq.name]}); rename one"))
                    continue
                seen_names[seq.name] = str(path)
                content_hash = seq.content_hash()
                array_path = arrays_dir / f"{content_hash}.npz"
                if array_path.is_file() or array_path in arrays:
                    report.reused += 1
                else:
                    content_only = seq.with_(name="", source="", label=None, metadata={})
                    arrays.add_npz(array_path, content_only.to_arrays())
                    report.written += 1
                items.append(DatasetItem(name=seq.name, source=str(path), content_hash=content_hash,
                                         label=seq.label, metadata=to_json_value(seq.metadata),
                                         frames=seq.num_frames,
                                         fps=float(seq.fps), dims=seq.dims, skeleton=seq.skeleton))
    report.read = len(items)
    report.failed = len({e.source for e in report.errors})
    report.label_counts = dict(sorted(Counter(it.label or UNLABELLED for it in items).items()))

    if items:
        report.previous_version = _current_version(out)
        report.version = dataset_version(items)
        manifest = {
            "format_version": FORMAT_VERSION,
            "version": report.version,
            "previous_version": report.previous_version,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "source_paths": [str(p.resolve()) for p in paths],
            "label_source": label_source.describe() if label_source is not None else {"kind": "none"},
            "person": person,
            "items": [asdict(it) for it in items],
            "errors": [asdict(e) for e in report.errors],
        }
        atomic_write_json(out / HISTORY_DIR / f"{report.version}.json", manifest)
        atomic_write_json(out / MANIFEST_NAME, manifest)
    report.elapsed_s = time.perf_counter() - start
    return report


def _current_version(out: Path) -> str | None:
    """The version of the manifest at ``out`` (archiving it into the history if it is not there)."""
    path = out / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        version = str(manifest["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    archived = out / HISTORY_DIR / f"{version}.json"
    if not archived.is_file():
        atomic_write_json(archived, manifest)
    return version
