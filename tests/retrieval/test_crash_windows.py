"""Failure injection at each narrow crash window of saving and promoting an index version: a real
``posestyle reindex`` process SIGKILLs itself at the named point (``POSESTYLE_CRASH_AT``); the test
checks the damage is there, restarts (an app-like open, then the job), and checks ids, LIVE against
the store, and leftovers. Also: one re-index per index root at a time, whatever the encoder."""
from __future__ import annotations

import shutil
import signal
import time

import pytest

from encoder.data.dataset import DatasetCache
from retrieval.index import IndexManager
from retrieval.index.crashpoints import CRASH_POINTS
from retrieval.index.recovery import LOCK_FILE
from retrieval.index.storage import TEMP_PREFIX
from retrieval.jobs import JOB_KIND, JobError, ReindexJob
from retrieval.search import SearchService
from retrieval.store import MetadataStore
from tests.retrieval.crash_support import (
    BATCH,
    WAIT_S,
    Setup,
    assert_consistent,
    leftovers,
    make_setup,
    pointer_file,
    start_worker,
    wait,
    worker_output,
)
from tests.retrieval.jobs_support import single_torch_thread, tiny_checkpoint  # noqa: F401 (autouse fixture)

N_SEQUENCES = 16


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    return make_setup(tmp_path_factory.mktemp("windows"), N_SEQUENCES)


@pytest.mark.slow
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


@pytest.mark.slow
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
