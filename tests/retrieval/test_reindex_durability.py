"""Durability: ``kill -9`` at 20 random points of chained re-indexes (three encoders, each resumed
until it completes), with a reader querying the live index throughout.

Store settings under test: SQLite in WAL mode with ``PRAGMA synchronous=NORMAL`` (checked below).
In WAL mode NORMAL loses no committed transaction when a *process* dies (the WAL is in the OS page
cache); only an OS crash or power cut could drop the last transactions, which this test does not
simulate. After every completed job and at the end: 0 lost or duplicated ids, the LIVE file equals
the store, no leftovers; every query the reader issued was answered."""
from __future__ import annotations

import os
import random
import signal
import sys
import time

import pytest

from encoder.data.dataset import DatasetCache
from retrieval.index import IndexManager
from retrieval.jobs import JOB_KIND, ReindexJob, ShardStore
from retrieval.store import MetadataStore
from tests.retrieval.crash_support import (
    BATCH,
    WAIT_S,
    Reader,
    assert_consistent,
    leftovers,
    make_setup,
    start_worker,
    wait,
    worker_output,
)
from tests.retrieval.jobs_support import single_torch_thread  # noqa: F401 (autouse fixture)

KILLS = 20
N_SEQUENCES = 24
PAUSE_S = 0.1          # after each embedded batch: 6 batches, so a job runs for about a second
MAX_DELAY_S = 2.0      # a kill lands uniformly within this long after the worker claimed its job


def _wait_until_claimed(store: MetadataStore, proc, workdir, encoder_version: str) -> bool:
    """True once the worker's process has claimed (or resumed) a job; False if it already exited."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for job in store.list_jobs(kind=JOB_KIND, status="running"):
            if job.encoder_version == encoder_version and job.params.get("pid") == proc.pid:
                return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"worker claimed no job in {WAIT_S} s:\n{worker_output(workdir)}")


@pytest.mark.slow
@pytest.mark.timeout(2400)     # about 25 worker start-ups (torch import each): minutes on 2 idle cores
def test_twenty_kill_9s_at_random_points_lose_nothing(tmp_path):
    setup = make_setup(tmp_path / "base", N_SEQUENCES, names=("a", "b", "c"))
    root, rng = setup.root, random.Random(12)
    names = DatasetCache.open(setup.dataset_dir).names
    encoders = ["b", "c", "a"]
    kills = completed = rounds = 0
    finished: set[str] = set()          # encoders whose job ran to the end at least once
    with MetadataStore.open(root / "metadata.db") as store:
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1       # NORMAL
        with Reader(root, names[0]) as reader:
            while kills < KILLS:
                rounds += 1
                assert rounds <= 3 * KILLS, f"only {kills} kills landed in {rounds} rounds"
                target = encoders[completed % len(encoders)]
                proc = start_worker(tmp_path, root, setup, target, pause_s=PAUSE_S)
                if _wait_until_claimed(store, proc, tmp_path, setup.versions[target]):
                    time.sleep(rng.uniform(0.0, MAX_DELAY_S))
                    if proc.poll() is None:
                        os.kill(proc.pid, signal.SIGKILL)
                code = wait(proc, tmp_path)
                print(f"round {rounds}: encoder {target}, exit {code}", file=sys.stderr, flush=True)
                if code == -signal.SIGKILL:
                    kills += 1
                    continue
                assert code == 0, worker_output(tmp_path)
                finished.add(target)
                completed += 1
                live = assert_consistent(root, store, names)
                assert store.get_index_version(live).encoder_version == setup.versions[target]
            target = encoders[completed % len(encoders)]
            summary = ReindexJob(store, IndexManager(root, store), None, setup.checkpoints[target],
                                 batch_size=BATCH, progress=False).run()
            assert summary.failed == 0
            finished.add(target)
        live = assert_consistent(root, store, names)
        assert live == summary.live_version
        for name, version in setup.versions.items():
            records = store.get_embeddings(version)
            ids = [r.sequence_id for r in records]
            assert len(ids) == len(set(ids)), name                                   # none doubled
            if name not in finished:      # only ever killed: its resumable job may hold a part so far
                continue
            assert sorted(ids) == sorted(names), name                                # none lost
            shards = ShardStore(root / "embeddings", version)
            assert shards.check(records, 16) == {}
            assert not [p for p in shards.directory.iterdir() if p.name.endswith(".tmp")]
        assert [j.status for j in store.list_jobs(kind=JOB_KIND) if j.status == "running"] == []
        assert leftovers(root) == []
    assert reader.failures == [] and reader.answered > 0
    print(f"{kills} kills, {completed} jobs completed between them, {rounds} rounds, "
          f"{reader.answered} queries answered")
