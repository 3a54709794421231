"""Append-only embedding shards: ``<embeddings_dir>/<encoder_version>/shard-NNNNN.npy``.

Each shard is one float32 ``(rows, dim)`` ``.npy`` file, written once and never changed: the
vectors go to a hidden temp file in the same folder, are fsynced, then hard-linked to the next
free shard name (a link never replaces an existing file) and the folder is fsynced. The store's
``embeddings`` table says which sequence lies at which (shard, row); a shard is recorded only
after its file is complete, so a crash can leave an *orphan* shard (a file no row points to,
removed by ``remove_unreferenced``) but never a recorded row without its file.

One job at a time may write an encoder's shards: ``lock()`` takes an exclusive ``flock`` on the
folder's ``.lock`` file, which the kernel releases when the holder dies (even by ``kill -9``).
"""
from __future__ import annotations

import fcntl
import os
import re
import tempfile
from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from encoder.data.atomic import fsync_dir
from encoder.data.errors import one_line
from retrieval.jobs.errors import JobError, ShardError
from retrieval.store import EmbeddingRecord

SHARD_PREFIX = "shard-"
SHARD_SUFFIX = ".npy"
TEMP_PREFIX = ".shard-"
TEMP_SUFFIX = ".tmp"
LOCK_FILE = ".lock"
_SHARD_NAME = re.compile(r"^shard-(\d{5,})\.npy$")
_ENCODER_DIR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ShardStore:
    """The shard folder of one encoder version; shard keys (what the store records) are
    ``"<encoder_version>/shard-NNNNN.npy"``, relative to ``embeddings_dir``."""

    def __init__(self, embeddings_dir: str | Path, encoder_version: str) -> None:
        if not _ENCODER_DIR.match(encoder_version):
            raise JobError(f"encoder version {encoder_version!r} is not a safe folder name")
        self.embeddings_dir = Path(embeddings_dir)
        self.encoder_version = encoder_version
        self.directory = self.embeddings_dir / encoder_version
        self._next_number: int | None = None

    # -- names ----------------------------------------------------------------------------------
    def key(self, file_name: str) -> str:
        """The store's shard key of a file in this folder."""
        return f"{self.encoder_version}/{file_name}"

    def path(self, key: str) -> Path:
        """The file a shard key names (keys of other encoders are refused)."""
        folder, _, name = key.partition("/")
        if folder != self.encoder_version or not _SHARD_NAME.match(name):
            raise ShardError(self.embeddings_dir / key, f"not a shard of encoder {self.encoder_version}")
        return self.directory / name

    def shard_keys(self) -> list[str]:
        """Keys of the complete shard files on disk, in write order."""
        if not self.directory.is_dir():
            return []
        names = [p.name for p in self.directory.iterdir() if _SHARD_NAME.match(p.name)]
        return [self.key(n) for n in sorted(names, key=lambda n: int(_SHARD_NAME.match(n).group(1)))]

    # -- writing ----------------------------------------------------------------------------------
    def write(self, vectors: np.ndarray) -> str:
        """Write ``vectors`` (rows, dim) as a new shard, durably and atomically; returns its key."""
        array = np.ascontiguousarray(vectors, dtype=np.float32)
        if array.ndim != 2 or array.shape[0] == 0:
            raise JobError(f"a shard needs a non-empty (rows, dim) array, got shape {array.shape}")
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.directory, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.save(handle, array, allow_pickle=False)
                handle.flush()
                os.fsync(handle.fileno())
            number = self._first_free_number()
            while True:
                final = self.directory / f"{SHARD_PREFIX}{number:05d}{SHARD_SUFFIX}"
                try:
                    os.link(tmp, final)  # unlike os.replace, never clobbers an existing shard
                    break
                except FileExistsError:
                    number += 1
            self._next_number = number + 1
            fsync_dir(self.directory)
        finally:
            tmp.unlink(missing_ok=True)
        return self.key(final.name)

    def _first_free_number(self) -> int:
        if self._next_number is None:
            numbers = [int(_SHARD_NAME.match(k.rpartition("/")[2]).group(1)) for k in self.shard_keys()]
            self._next_number = max(numbers, default=-1) + 1
        return self._next_number

    # -- reading ----------------------------------------------------------------------------------
    def read(self, key: str, *, memory_map: bool = True) -> np.ndarray:
        """The (rows, dim) float32 array of a shard; ``ShardError`` if missing or malformed."""
        path = self.path(key)
        try:
            array = np.load(path, mmap_mode="r" if memory_map else None, allow_pickle=False)
        except FileNotFoundError:
            raise ShardError(path, "shard file is missing") from None
        except (OSError, ValueError, EOFError) as err:
            raise ShardError(path, f"unreadable shard ({one_line(err)})") from None
        if array.ndim != 2 or array.dtype != np.float32:
            raise ShardError(path, f"shard must be a float32 (rows, dim) array, got {array.dtype} {array.shape}")
        return array

    def check(self, records: Sequence[EmbeddingRecord], dim: int) -> dict[str, str]:
        """Sequences whose recorded (shard, row) cannot be read back with dimension ``dim``, with the
        reason. Reads only the shard headers."""
        broken: dict[str, str] = {}
        for key, members in _by_shard(records).items():
            try:
                rows = self.read(key).shape
                problem = None if rows[1] == dim else f"{self.path(key)}: has dimension {rows[1]}, expected {dim}"
            except ShardError as err:
                rows, problem = (0, dim), str(err)
            for i in members:
                record = records[i]
                if problem is not None:
                    broken[record.sequence_id] = problem
                elif not 0 <= record.row < rows[0]:
                    broken[record.sequence_id] = f"{self.path(key)}: row {record.row} beyond its {rows[0]} rows"
        return broken

    def gather(self, records: Sequence[EmbeddingRecord], dim: int) -> np.ndarray:
        """The vectors of ``records`` as one (n, dim) float32 array, in the order given."""
        out = np.empty((len(records), dim), dtype=np.float32)
        for key, members in _by_shard(records).items():
            array = self.read(key)
            if array.shape[1] != dim:
                raise ShardError(self.path(key), f"has dimension {array.shape[1]}, expected {dim}")
            wanted = np.asarray([records[i].row for i in members], dtype=np.int64)
            if wanted.min() < 0 or wanted.max() >= array.shape[0]:
                raise ShardError(self.path(key), f"the store records row {int(wanted.max())} but the shard has "
                                                 f"{array.shape[0]} rows")
            out[members] = array[wanted]
        return out

    # -- housekeeping -----------------------------------------------------------------------------
    def remove_unreferenced(self, referenced: Collection[str]) -> list[str]:
        """Delete shard files no recorded embedding points to (crash orphans, fully superseded
        shards); returns their keys. Call only while holding ``lock()``."""
        keep = set(referenced)
        removed = [key for key in self.shard_keys() if key not in keep]
        for key in removed:
            self.path(key).unlink(missing_ok=True)
        if removed:
            fsync_dir(self.directory)
        return removed

    def remove_temp_files(self) -> int:
        """Delete half-written temp files left by a crash; returns how many. Call only while holding ``lock()``."""
        if not self.directory.is_dir():
            return 0
        stale = [p for p in self.directory.iterdir()
                 if p.name.startswith(TEMP_PREFIX) and p.name.endswith(TEMP_SUFFIX)]
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold this encoder's shard folder exclusively (non-blocking; ``JobError`` if taken)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / LOCK_FILE
        handle = open(path, "a+", encoding="utf-8")
        try:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise JobError(f"embeddings of encoder {self.encoder_version} are being written by {holder} "
                               f"(lock {path}); wait for that job or stop it") from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}\n")
            handle.flush()
            yield
        finally:
            handle.close()  # closing the descriptor releases the flock


def _by_shard(records: Sequence[EmbeddingRecord]) -> dict[str, list[int]]:
    """Positions in ``records`` grouped by shard key."""
    grouped: dict[str, list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        grouped[record.shard].append(i)
    return grouped
