"""``kill -9`` of a running ``posestyle reindex`` at any point: the next run resumes the job and ends
with every sequence indexed exactly once, while a reader querying the live index never fails and
sees the old version until the new one is promoted."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from encoder.data.dataset import DatasetCache
from encoder.inference import StyleEncoder
from retrieval.index import IndexManager
from retrieval.jobs import JOB_KIND, ReindexJob, ShardStore
from retrieval.store import MetadataStore
from tests.retrieval.crash_support import (
    BATCH,
    WAIT_S,
    Reader,
    Setup,
    make_setup,
    start_worker,
    wait,
    worker_output,
)
from tests.retrieval.jobs_support import (  # noqa: F401 (single_torch_thread: autouse fixture)
    EMBEDDING_DIM,
    one_torch_thread,
    single_torch_thread,
)

N_SEQUENCES = 60


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    """60 walks, encoder "a"'s index live; the worker re-indexes with encoder "b"."""
    return make_setup(tmp_path_factory.mktemp("kill"), N_SEQUENCES)


@pytest.fixture(scope="module")
def reference_b(setup: Setup) -> dict[str, np.ndarray]:
    """Encoder "b"'s embedding of every sequence, computed in this process."""
    dataset = DatasetCache.open(setup.dataset_dir)
    with one_torch_thread():
        encoder_b = StyleEncoder.load(setup.checkpoints["b"])
        return dict(zip(dataset.names, encoder_b.embed(list(dataset.iter_sequences()))))


def _wait_for_progress(store: MetadataStore, proc: subprocess.Popen, tmp_path: Path, version: str) -> None:
    """Until the worker's job has finished at least one item."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        jobs = [j for j in store.list_jobs(kind=JOB_KIND, status="running") if j.encoder_version == version]
        if jobs and jobs[0].done > 0:
            return
        if proc.poll() is not None:
            pytest.fail(f"worker exited {proc.returncode} before any progress:\n{worker_output(tmp_path)}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"worker made no progress in {WAIT_S} s:\n{worker_output(tmp_path)}")


def _kill_and_resume(tmp_path: Path, setup: Setup, reference_b: dict[str, np.ndarray], kill_at: str) -> None:
    root = tmp_path / "index_data"
    shutil.copytree(setup.root, root)
    store = MetadataStore.open(root / "metadata.db")
    dataset = DatasetCache.open(setup.dataset_dir)
    probe = dataset.names[0]
    try:
        with Reader(root, probe) as reader:
            external = kill_at == "external"
            proc = start_worker(tmp_path, root, setup, "b", kill_after=None if external else kill_at,
                                pause_s=0.2 if external else 0.0)
            if external:
                _wait_for_progress(store, proc, tmp_path, setup.versions["b"])
                os.kill(proc.pid, signal.SIGKILL)
            assert wait(proc, tmp_path) == -signal.SIGKILL, worker_output(tmp_path)

            (killed,) = [j for j in store.list_jobs(kind=JOB_KIND) if j.encoder_version == setup.versions["b"]]
            assert killed.status == "running"                   # nobody recorded the death
            shards = ShardStore(root / "embeddings", setup.versions["b"])
            assert shards.check(store.get_embeddings(setup.versions["b"]), EMBEDDING_DIM) == {}   # no row without file
            if kill_at in ("external", "shard-written", "batch-recorded"):   # killed while embedding
                assert 0 < killed.done < killed.total
                assert store.live_version() == setup.old_version
            if kill_at == "shard-written":                              # the file exists, its rows do not
                recorded = {r.shard for r in store.get_embeddings(setup.versions["b"])}
                assert len(shards.shard_keys()) == len(recorded) + 1
            time.sleep(0.2)                                     # the reader keeps serving meanwhile
            assert reader.observations and reader.observations[-1][2] == store.live_version()

            summary = ReindexJob(store, IndexManager(root, store), dataset, setup.checkpoints["b"], batch_size=BATCH,
                                 progress=False).run()
            time.sleep(0.2)

        assert summary.resumed and summary.job_id == killed.id
        assert store.get_job(killed.id).status == "completed"
        assert (summary.embedded, summary.failed) == (N_SEQUENCES, 0)
        assert store.embedded_sequence_ids(setup.versions["b"]) == sorted(dataset.names)

        searcher = IndexManager(root, store).open_live()
        assert searcher.encoder_version == setup.versions["b"]
        assert sorted(searcher.sequence_ids) == sorted(dataset.names)          # no duplicate, none missing
        held = dict(zip(searcher.sequence_ids, searcher.vectors(np.arange(searcher.count))))
        for sequence_id, vector in reference_b.items():
            np.testing.assert_allclose(held[sequence_id], vector, atol=1e-5, err_msg=sequence_id)

        records = store.get_embeddings(setup.versions["b"])
        assert shards.check(records, EMBEDDING_DIM) == {}
        assert set(shards.shard_keys()) == {r.shard for r in records}          # orphans cleaned
        assert not [p for p in shards.directory.iterdir() if p.name.endswith(".tmp")]
        statuses = {r.version: r.status for r in store.list_index_versions()}
        assert statuses[setup.old_version] == "retired"
        assert [v for v, s in statuses.items() if s == "live"] == [searcher.version]

        assert reader.failures == []
        assert reader.versions() == [setup.old_version, searcher.version]
        promoted_at = store.get_index_version(searcher.version).promoted_at.timestamp()
        first_new = min(end for _, end, v in reader.observations if v == searcher.version)
        assert first_new >= promoted_at
        assert all(start <= first_new for start, _, v in reader.observations if v == setup.old_version)
    finally:
        store.close()


@pytest.mark.slow   # a real subprocess killed mid-run, then resumed: about a minute
def test_kill_9_mid_reindex_resumes_without_duplicates_while_old_version_serves(tmp_path, setup, reference_b):
    _kill_and_resume(tmp_path, setup, reference_b, "external")


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", ["shard-written", "batch-recorded", "index-registered", "verified", "promoted"])
def test_kill_9_right_after_each_step_resumes_cleanly(tmp_path, setup, reference_b, kill_at):
    _kill_and_resume(tmp_path, setup, reference_b, kill_at)
