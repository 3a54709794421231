"""Failure injection at each narrow crash window of saving and promoting an index version: a real
``posestyle reindex`` process SIGKILLs itself at the named point (``POSESTYLE_CRASH_AT``); the test
checks the damage is there, restarts (an app-like open, then the job), and checks ids, LIVE against
the store, and leftovers. Also: one re-index per index root at a time, whatever the encoder."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from encoder.data.dataset import DatasetCache
from retrieval.index import IndexManager
from retrieval.index.crashpoints import CRASH_ENV, CRASH_POINTS
from retrieval.index.recovery import LOCK_FILE
from retrieval.index.storage import TEMP_PREFIX
from retrieval.jobs import JOB_KIND, JobError, ReindexJob, register_dataset
from retrieval.search import SearchService
from retrieval.store import MetadataStore

from jobs_support import (  # noqa: F401 (single_torch_thread: autouse fixture)
    demo_sequences, one_torch_thread, single_torch_thread, tiny_checkpoint, write_dataset)

REPO_ROOT = Path(__file__).resolve().parents[2]
N_SEQUENCES = 16
BATCH = 4
WAIT_S = 240.0

# The real CLI; with PAUSE_S > 0 each embedded batch is followed by a pause (so a test can act while
# the job runs).
WORKER = textwrap.dedent('''
    import sys, time
    from retrieval.jobs import backends

    pause_s, argv = float(sys.argv[1]), sys.argv[2:]
    original = backends.LocalBackend.embed_batches

    def paused(self, requests):
        for batch in original(self, requests):
            yield batch
            time.sleep(pause_s)

    backends.LocalBackend.embed_batches = paused
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


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    return make_setup(tmp_path_factory.mktemp("windows"), N_SEQUENCES)


def start_worker(workdir: Path, root: Path, setup: Setup, checkpoint: str, *, crash_at: str | None = None,
                 pause_s: float = 0.0) -> subprocess.Popen:
    """``posestyle reindex`` over ``root`` with ``checkpoint`` in a new process (log: worker.log)."""
    script = workdir / "reindex_worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    env.pop(CRASH_ENV, None)
    if crash_at:
        env[CRASH_ENV] = crash_at
    log = open(workdir / "worker.log", "ab")
    return subprocess.Popen(
        [sys.executable, str(script), str(pause_s), "reindex", "--checkpoint", str(setup.checkpoints[checkpoint]),
         "--data", str(setup.dataset_dir), "--root", str(root), "--batch-size", str(BATCH), "--no-progress"],
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


@pytest.mark.parametrize("crash_at", CRASH_POINTS)
def test_kill_in_each_crash_window_is_repaired_at_the_next_open_and_job(tmp_path, setup, crash_at):
    root = tmp_path / "index_data"
    shutil.copytree(setup.root, root)
    names = DatasetCache.open(setup.dataset_dir).names
    proc = start_worker(tmp_path, root, setup, "b", crash_at=crash_at)
    assert wait(proc, tmp_path) == -signal.SIGKILL, worker_output(tmp_path)

    with MetadataStore.open(root / "metadata.db") as store:
        # the damage of this window is there
        assert store.live_version() == setup.old_version
        if crash_at == "save-temp-written":
            assert [n for n in leftovers(root) if not n.startswith(f"{TEMP_PREFIX}LIVE")]
        if crash_at == "pointer-temp-written":
            assert [n for n in leftovers(root) if n.startswith(f"{TEMP_PREFIX}LIVE-")]
        if crash_at == "pointer-swapped":
            assert pointer_file(root) not in (None, setup.old_version)    # LIVE names B, the store A
        assert IndexManager(root, store).live_version() == setup.old_version   # the store decides

        # restart 1: an app-like open (no job running) sweeps and repairs
        searcher = SearchService(store, IndexManager(root, store)).searcher()
        assert searcher.version == setup.old_version
        assert leftovers(root) == [] and pointer_file(root) == setup.old_version
        assert_consistent(root, store, names)

        # restart 2: the job resumes and publishes encoder b
        summary = ReindexJob(store, IndexManager(root, store), DatasetCache.open(setup.dataset_dir),
                             setup.checkpoints["b"], batch_size=BATCH, progress=False).run()
        assert summary.resumed and summary.failed == 0
        live = assert_consistent(root, store, names)
        assert live == summary.live_version != setup.old_version
        assert store.get_index_version(live).encoder_version == setup.versions["b"]
        assert store.embedded_sequence_ids(setup.versions["b"]) == sorted(names)


def test_the_job_itself_repairs_a_swapped_pointer_and_sweeps_leftovers(tmp_path, setup):
    root = tmp_path / "index_data"
    shutil.copytree(setup.root, root)
    names = DatasetCache.open(setup.dataset_dir).names
    proc = start_worker(tmp_path, root, setup, "b", crash_at="pointer-swapped")
    assert wait(proc, tmp_path) == -signal.SIGKILL, worker_output(tmp_path)
    (root / "indexes" / f"{TEMP_PREFIX}v-deadbeef").mkdir()             # and an old half-saved version
    with MetadataStore.open(root / "metadata.db") as store:
        manager = IndexManager(root, store)
        with manager.root_lock().held("test"):
            report = manager.recover()
        assert report.repaired_pointer and report.live_file_now == setup.old_version
        assert f"{TEMP_PREFIX}v-deadbeef" in report.removed
        summary = ReindexJob(store, manager, None, setup.checkpoints["b"], batch_size=BATCH, progress=False).run()
        assert assert_consistent(root, store, names) == summary.live_version


def test_one_reindex_per_root_whatever_the_encoder(tmp_path, setup):
    root = tmp_path / "index_data"
    shutil.copytree(setup.root, root)
    third = tmp_path / "c.safetensors"
    tiny_checkpoint(third, seed=7)
    with MetadataStore.open(root / "metadata.db") as store:
        proc = start_worker(tmp_path, root, setup, "b", pause_s=2.0)
        try:
            deadline = time.monotonic() + WAIT_S
            while not (running := store.list_jobs(kind=JOB_KIND, status="running")):
                assert proc.poll() is None and time.monotonic() < deadline, worker_output(tmp_path)
                time.sleep(0.05)
            time.sleep(0.5)                                     # the lock file names the claimed job
            with pytest.raises(JobError) as refused:
                ReindexJob(store, IndexManager(root, store), None, third, batch_size=BATCH, progress=False).run()
            message = str(refused.value)
            assert "\n" not in message and "another re-index is running" in message
            assert f"reindex job {running[0].id}" in message and setup.versions["b"] in message
            assert LOCK_FILE not in leftovers(root)
        finally:
            assert wait(proc, tmp_path) == 0, worker_output(tmp_path)
        jobs = store.list_jobs(kind=JOB_KIND)
        assert [j.encoder_version for j in jobs if j.status == "running"] == []
        assert store.get_index_version(store.live_version()).encoder_version == setup.versions["b"]
        # once it is done, the other encoder may run
        summary = ReindexJob(store, IndexManager(root, store), None, third, batch_size=BATCH, progress=False).run()
        assert summary.live_version == store.live_version() == pointer_file(root)
