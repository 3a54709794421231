"""Helpers of the crash tests: a dataset with a live index, a real ``posestyle reindex`` process
(optionally paused per batch, killed at a named crash point or right after a named step), a reader
querying the live index meanwhile, and the consistency checks."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from retrieval.index import IndexManager
from retrieval.index.crashpoints import CRASH_ENV
from retrieval.index.storage import TEMP_PREFIX
from retrieval.jobs import ReindexJob, register_dataset
from retrieval.store import MetadataStore
from tests.retrieval.jobs_support import demo_sequences, one_torch_thread, tiny_checkpoint, write_dataset

REPO_ROOT = Path(__file__).resolve().parents[2]
BATCH = 4
WAIT_S = 240.0

# The real CLI with two test-only changes: with PAUSE_S > 0 each embedded batch is followed by a pause
# (so a test can act while the job runs), and with KILL_AFTER (a key of ``steps``) the process SIGKILLs
# itself right after that step's call ("-": never).
WORKER = textwrap.dedent('''
    if __name__ == "__main__":          # the re-index may spawn worker processes, which import this file
        import os, signal, sys, time

        from retrieval.index import IndexManager
        from retrieval.jobs import backends
        from retrieval.jobs.shards import ShardStore
        from retrieval.store import MetadataStore

        pause_s, kill_after, argv = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
        original_batches = backends.LocalBackend.embed_batches

        def paused_batches(self, requests):
            for batch in original_batches(self, requests):
                yield batch
                time.sleep(pause_s)

        backends.LocalBackend.embed_batches = paused_batches

        def die_after(owner, name, calls):
            original = getattr(owner, name)
            seen = [0]

            def wrapper(*args, **kwargs):
                result = original(*args, **kwargs)
                seen[0] += 1
                if seen[0] == calls:
                    os.kill(os.getpid(), signal.SIGKILL)
                return result

            setattr(owner, name, wrapper)

        steps = {"shard-written": (ShardStore, "write", 2),
                 "batch-recorded": (MetadataStore, "record_embedded_batch", 2),
                 "index-registered": (MetadataStore, "create_index_version", 1),
                 "verified": (IndexManager, "verify", 1),
                 "promoted": (IndexManager, "promote", 1)}
        if kill_after in steps:
            die_after(*steps[kill_after])

        from app.cli import main

        sys.argv = ["posestyle", *argv]
        main()
''')


@dataclass(frozen=True)
class Setup:
    dataset_dir: Path
    checkpoints: dict[str, Path]       # name -> checkpoint; "a" is live in ``root``
    versions: dict[str, str]           # name -> encoder version
    root: Path
    old_version: str


def make_setup(base: Path, n: int, names: tuple[str, ...] = ("a", "b")) -> Setup:
    """A dataset of ``n`` walks and a root whose live index is encoder "a"'s."""
    checkpoints = {name: base / f"{name}.safetensors" for name in names}
    versions = {name: tiny_checkpoint(path, seed=i) for i, (name, path) in enumerate(checkpoints.items())}
    dataset = write_dataset(base / "dataset", demo_sequences(n), base / "raw")
    root = base / "index_data"
    with one_torch_thread(), MetadataStore.open(root / "metadata.db") as store:
        register_dataset(store, dataset)
        old = ReindexJob(store, IndexManager(root, store), dataset, checkpoints["a"], batch_size=32,
                         progress=False).run()
    return Setup(base / "dataset", checkpoints, versions, root, old.index_version)


def start_worker(workdir: Path, root: Path, setup: Setup, checkpoint: str, *, crash_at: str | None = None,
                 kill_after: str | None = None, pause_s: float = 0.0) -> subprocess.Popen:
    """``posestyle reindex`` over ``root`` with ``checkpoint`` in a new process (log: worker.log), killed
    at the library's crash point ``crash_at`` or right after the worker's step ``kill_after``."""
    script = workdir / "reindex_worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    env.pop(CRASH_ENV, None)
    if crash_at:
        env[CRASH_ENV] = crash_at
    log = open(workdir / "worker.log", "ab")
    return subprocess.Popen(
        [sys.executable, str(script), str(pause_s), kill_after or "-", "reindex",
         "--checkpoint", str(setup.checkpoints[checkpoint]), "--data", str(setup.dataset_dir), "--root", str(root),
         "--batch-size", str(BATCH), "--no-progress"],
        cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)


def worker_output(workdir: Path) -> str:
    return (workdir / "worker.log").read_text(errors="replace")[-3000:]


def wait(proc: subprocess.Popen, workdir: Path) -> int:
    try:
        return proc.wait(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"worker did not stop:\n{worker_output(workdir)}")


def leftovers(root: Path) -> list[str]:
    """Temp files and directories a killed save or promotion left under indexes/."""
    return sorted(p.name for p in (root / "indexes").iterdir() if p.name.startswith(TEMP_PREFIX))


def pointer_file(root: Path) -> str | None:
    path = root / "indexes" / "LIVE"
    return path.read_text().strip() if path.exists() else None


def assert_consistent(root: Path, store: MetadataStore, names: list[str]) -> str:
    """LIVE equals the store, no leftovers, and the live index holds every sequence exactly once."""
    live = store.live_version()
    assert live is not None and pointer_file(root) == live
    assert leftovers(root) == []
    searcher = IndexManager(root, store).open_live()
    assert searcher.version == live and searcher.fallback_from is None
    assert sorted(searcher.sequence_ids) == sorted(names)          # none lost, none duplicated
    assert [r.version for r in store.list_index_versions(status="live")] == [live]
    return live


@dataclass
class Reader:
    """Queries the live index in a loop from its own thread and store connection, recording each
    answered query (start, end, version served) and every failure."""

    root: Path
    probe: str
    observations: list[tuple[float, float, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def answered(self) -> int:
        return len(self.observations)

    def versions(self) -> list[str]:
        """Served versions in order, consecutive repeats collapsed."""
        out: list[str] = []
        for _, _, version in self.observations:
            if not out or out[-1] != version:
                out.append(version)
        return out

    def run(self) -> None:
        with MetadataStore.open(self.root / "metadata.db") as store:
            manager = IndexManager(self.root, store)
            while not self._stop.is_set():
                start = time.time()
                try:
                    searcher = manager.open_live()
                    hits = searcher.search(searcher.vectors([searcher.position_of(self.probe)]), 1)
                    if searcher.sequence_ids[int(hits.positions[0, 0])] != self.probe:
                        self.failures.append(f"{searcher.version}: {self.probe} does not find itself")
                    self.observations.append((start, time.time(), searcher.version))
                except Exception as exc:  # every failure of the reader is what the test reports
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.02)

    def __enter__(self) -> "Reader":
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
