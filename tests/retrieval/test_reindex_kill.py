"""``kill -9`` of a running ``posestyle reindex`` at any point: the next run resumes the job and ends
with every sequence indexed exactly once, while a reader querying the live index never fails and
sees the old version until the new one is promoted."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from encoder.data.dataset import DatasetCache
from encoder.inference import StyleEncoder
from retrieval.index import IndexManager
from retrieval.jobs import JOB_KIND, ReindexJob, ShardStore, register_dataset
from retrieval.store import MetadataStore
from tests.retrieval.jobs_support import (  # noqa: F401 (single_torch_thread: autouse fixture)
    EMBEDDING_DIM,
    demo_sequences,
    one_torch_thread,
    single_torch_thread,
    tiny_checkpoint,
    write_dataset,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
N_SEQUENCES = 60
BATCH = 4
START_TIMEOUT_S = 180.0

# Runs the real CLI (``posestyle reindex ...``) with two test-only changes: each embedded batch is
# followed by a pause (so the test can kill it mid-way), and with KILL_AT the process SIGKILLs
# itself right after the named step.
WORKER = textwrap.dedent('''
    import os, signal, sys, time

    from retrieval.index import IndexManager
    from retrieval.jobs import backends
    from retrieval.jobs.shards import ShardStore
    from retrieval.store import MetadataStore

    pause_s, kill_at, argv = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
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
    if kill_at in steps:
        die_after(*steps[kill_at])

    from app.cli import main

    sys.argv = ["posestyle", *argv]
    main()
''')


@dataclass(frozen=True)
class Setup:
    dataset_dir: Path
    checkpoint_b: Path
    version_b: str
    reference_b: dict[str, np.ndarray]
    root: Path              # index_data with encoder a's index live
    old_version: str


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    base = tmp_path_factory.mktemp("kill")
    tiny_checkpoint(base / "a.safetensors", seed=0)
    version_b = tiny_checkpoint(base / "b.safetensors", seed=1)
    dataset = write_dataset(base / "dataset", demo_sequences(N_SEQUENCES), base / "raw")
    root = base / "index_data"
    with one_torch_thread(), MetadataStore.open(root / "metadata.db") as store:
        register_dataset(store, dataset)
        old = ReindexJob(store, IndexManager(root, store), dataset, base / "a.safetensors", batch_size=32,
                         progress=False).run()
    with one_torch_thread():
        encoder_b = StyleEncoder.load(base / "b.safetensors")
        reference_b = dict(zip(dataset.names, encoder_b.embed(list(dataset.iter_sequences()))))
    return Setup(base / "dataset", base / "b.safetensors", version_b, reference_b, root, old.index_version)


@dataclass
class Reader:
    """Queries the live index in a loop from its own thread and store connection."""

    root: Path
    probe: str
    observations: list[tuple[float, float, str]] = field(default_factory=list)   # (start, end, version)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with MetadataStore.open(self.root / "metadata.db") as store:
            manager = IndexManager(self.root, store)
            while not self._stop.is_set():
                start = time.time()
                try:
                    searcher = manager.open_live()
                    position = searcher.position_of(self.probe)
                    hits = searcher.search(searcher.vectors([position]), 1)
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

    def versions(self) -> list[str]:
        """Observed versions with consecutive repeats collapsed."""
        out: list[str] = []
        for _, _, version in self.observations:
            if not out or out[-1] != version:
                out.append(version)
        return out


def _start_worker(tmp_path: Path, root: Path, setup: Setup, kill_at: str, pause_s: float) -> subprocess.Popen:
    script = tmp_path / "reindex_worker.py"
    script.write_text(WORKER)
    log = open(tmp_path / "worker.log", "wb")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(script), str(pause_s), kill_at, "reindex", "--checkpoint", str(setup.checkpoint_b),
         "--data", str(setup.dataset_dir), "--root", str(root), "--batch-size", str(BATCH), "--no-progress"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)


def _worker_output(tmp_path: Path) -> str:
    return (tmp_path / "worker.log").read_text(errors="replace")[-3000:]


def _wait_for_progress(store: MetadataStore, proc: subprocess.Popen, tmp_path: Path, version: str) -> None:
    """Until the worker's job has finished at least one item."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        jobs = [j for j in store.list_jobs(kind=JOB_KIND, status="running") if j.encoder_version == version]
        if jobs and jobs[0].done > 0:
            return
        if proc.poll() is not None:
            pytest.fail(f"worker exited {proc.returncode} before any progress:\n{_worker_output(tmp_path)}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"worker made no progress in {START_TIMEOUT_S} s:\n{_worker_output(tmp_path)}")


def _kill_and_resume(tmp_path: Path, setup: Setup, kill_at: str) -> None:
    root = tmp_path / "index_data"
    shutil.copytree(setup.root, root)
    store = MetadataStore.open(root / "metadata.db")
    dataset = DatasetCache.open(setup.dataset_dir)
    probe = dataset.names[0]
    try:
        with Reader(root, probe) as reader:
            proc = _start_worker(tmp_path, root, setup, kill_at, pause_s=0.2 if kill_at == "external" else 0.0)
            if kill_at == "external":
                _wait_for_progress(store, proc, tmp_path, setup.version_b)
                os.kill(proc.pid, signal.SIGKILL)
            try:
                proc.wait(timeout=START_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                pytest.fail(f"worker did not stop:\n{_worker_output(tmp_path)}")
            assert proc.returncode == -signal.SIGKILL, _worker_output(tmp_path)

            (killed,) = [j for j in store.list_jobs(kind=JOB_KIND) if j.encoder_version == setup.version_b]
            assert killed.status == "running"                   # nobody recorded the death
            shards = ShardStore(root / "embeddings", setup.version_b)
            assert shards.check(store.get_embeddings(setup.version_b), EMBEDDING_DIM) == {}   # no row without file
            if kill_at in ("external", "shard-written", "batch-recorded"):   # killed while embedding
                assert 0 < killed.done < killed.total
                assert store.live_version() == setup.old_version
            if kill_at == "shard-written":                              # the file exists, its rows do not
                recorded = {r.shard for r in store.get_embeddings(setup.version_b)}
                assert len(shards.shard_keys()) == len(recorded) + 1
            time.sleep(0.2)                                     # the reader keeps serving meanwhile
            assert reader.observations and reader.observations[-1][2] == store.live_version()

            summary = ReindexJob(store, IndexManager(root, store), dataset, setup.checkpoint_b, batch_size=BATCH,
                                 progress=False).run()
            time.sleep(0.2)

        assert summary.resumed and summary.job_id == killed.id
        assert store.get_job(killed.id).status == "completed"
        assert (summary.embedded, summary.failed) == (N_SEQUENCES, 0)
        assert store.embedded_sequence_ids(setup.version_b) == sorted(dataset.names)

        searcher = IndexManager(root, store).open_live()
        assert searcher.encoder_version == setup.version_b
        assert sorted(searcher.sequence_ids) == sorted(dataset.names)          # no duplicate, none missing
        held = dict(zip(searcher.sequence_ids, searcher.vectors(np.arange(searcher.count))))
        for sequence_id, vector in setup.reference_b.items():
            np.testing.assert_allclose(held[sequence_id], vector, atol=1e-5, err_msg=sequence_id)

        records = store.get_embeddings(setup.version_b)
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
def test_kill_9_mid_reindex_resumes_without_duplicates_while_old_version_serves(tmp_path, setup):
    _kill_and_resume(tmp_path, setup, "external")


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", ["shard-written", "batch-recorded", "index-registered", "verified", "promoted"])
def test_kill_9_right_after_each_step_resumes_cleanly(tmp_path, setup, kill_at):
    _kill_and_resume(tmp_path, setup, kill_at)
