"""Crash recovery of an index root: one job at a time, leftovers swept, LIVE pointer repaired.

``RootLock`` is an exclusive ``flock`` on ``<root>/indexes/.job.lock``; the kernel drops it when
the holder dies (even by ``kill -9``), and the file names the holder so a refused job can say who
runs. While holding it (at the start of every re-index job, and when the app opens the root and
no job runs) ``recover`` deletes what a killed save left (``.tmp-<version>-<uuid>/`` directories,
``.tmp-LIVE-<uuid>`` files) and rewrites the ``LIVE`` file from the store when they disagree: the
store's transaction is the commit point of a promotion, the file only mirrors it.
"""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from retrieval.index.errors import IndexBusyError
from retrieval.index.storage import TEMP_PREFIX

log = logging.getLogger(__name__)

LOCK_FILE = ".job.lock"
RECOVERY_HOLDER = "recovery at open"   # a short holder: a job waits for it instead of failing


@dataclass
class RecoveryReport:
    """What ``recover`` found and fixed."""

    removed: list[str] = field(default_factory=list)     # temp leftovers deleted
    live_file_was: str | None = None                     # what LIVE said before a repair
    live_file_now: str | None = None                     # what it says after (the store's live version)

    @property
    def repaired_pointer(self) -> bool:
        return self.live_file_was != self.live_file_now


class RootLock:
    """The job lock of one index root (``<root>/indexes/.job.lock``)."""

    def __init__(self, indexes_dir: str | Path) -> None:
        self.path = Path(indexes_dir) / LOCK_FILE
        self._handle: IO[str] | None = None

    def holder(self) -> str:
        """Who the lock file says holds it (may be stale when nobody does)."""
        try:
            return self.path.read_text(encoding="utf-8").strip() or "another process"
        except OSError:
            return "another process"

    def try_acquire(self, holder: str, wait_s: float = 0.0) -> bool:
        """Take the lock, polling up to ``wait_s`` seconds; False when another holder keeps it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.close()
                    return False
                time.sleep(0.05)
        self._handle = handle
        self.describe(holder)
        return True

    def describe(self, holder: str) -> None:
        """Write what holds the lock (shown to a job that is refused)."""
        assert self._handle is not None, "describe() needs the lock"
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(f"{holder} (pid {os.getpid()} on {socket.gethostname()})\n")
        self._handle.flush()

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()   # closing the descriptor releases the flock
            self._handle = None

    @contextmanager
    def held(self, holder: str, wait_s: float = 0.0) -> Iterator["RootLock"]:
        """Hold the lock for a block; ``IndexBusyError`` naming the holder when it stays taken."""
        if not self.try_acquire(holder, wait_s):
            raise IndexBusyError(f"another job is running on {self.path.parent.parent}: {self.holder()}; "
                                 f"wait for it to finish or stop it (lock {self.path})")
        try:
            yield self
        finally:
            self.release()


def sweep_temp_leftovers(indexes_dir: Path) -> list[str]:
    """Delete ``.tmp-*`` entries a killed save or promotion left; call only while holding ``RootLock``."""
    if not indexes_dir.is_dir():
        return []
    removed = []
    for path in sorted(indexes_dir.iterdir()):
        if not path.name.startswith(TEMP_PREFIX):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path.name)
    if removed:
        log.warning("removed %d leftovers of interrupted index saves under %s: %s", len(removed), indexes_dir,
                    ", ".join(removed[:5]))
    return removed
