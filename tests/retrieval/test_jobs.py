"""Re-indexing jobs on SQLite and PostgreSQL: build + promote, incremental skips, bad sequences,
encoder switches, resume after a simulated crash at each step, stale/foreign running jobs."""
from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from encoder.data.dataset import DatasetCache
from encoder.inference import StyleEncoder
from retrieval.index import IndexManager
from retrieval.jobs import JOB_KIND, JobError, LocalBackend, ReindexJob, ReindexSummary, ShardStore, register_dataset
from retrieval.store import MetadataStore
from tests.retrieval.jobs_support import (  # noqa: F401 (single_torch_thread: autouse fixture)
    demo_sequences,
    one_torch_thread,
    single_torch_thread,
    tiny_checkpoint,
    write_dataset,
)

N_SEQUENCES = 60
BATCH = 16


class SimulatedKill(BaseException):
    """Stands in for ``kill -9``: no handler in the job catches it, so the job row stays ``running``."""


@dataclass(frozen=True)
class Corpus:
    dataset_dir: Path
    checkpoint_a: Path
    checkpoint_b: Path
    version_a: str
    version_b: str
    reference_a: dict[str, np.ndarray]     # id -> embedding computed directly with the encoder
    reference_b: dict[str, np.ndarray]


def _reference(checkpoint: Path, dataset: DatasetCache) -> dict[str, np.ndarray]:
    encoder = StyleEncoder.load(checkpoint)
    return dict(zip(dataset.names, encoder.embed(list(dataset.iter_sequences()))))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    base = tmp_path_factory.mktemp("jobs-corpus")
    version_a = tiny_checkpoint(base / "a.safetensors", seed=0)
    version_b = tiny_checkpoint(base / "b.safetensors", seed=1)
    dataset = write_dataset(base / "dataset", demo_sequences(N_SEQUENCES), base / "raw")
    with one_torch_thread():
        reference_a = _reference(base / "a.safetensors", dataset)
        reference_b = _reference(base / "b.safetensors", dataset)
    return Corpus(base / "dataset", base / "a.safetensors", base / "b.safetensors", version_a, version_b,
                  reference_a, reference_b)


@pytest.fixture
def dataset(corpus: Corpus, tmp_path: Path) -> DatasetCache:
    """A private copy of the corpus dataset (tests may damage or change it)."""
    copy = tmp_path / "dataset"
    shutil.copytree(corpus.dataset_dir, copy)
    return DatasetCache.open(copy)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "index_data"


def reindex(store: MetadataStore, root: Path, dataset: DatasetCache | None, checkpoint: Path,
            **options: object) -> ReindexSummary:
    options.setdefault("batch_size", BATCH)
    return ReindexJob(store, IndexManager(root, store), dataset, checkpoint, progress=False, **options).run()


def live_vectors(store: MetadataStore, root: Path) -> dict[str, np.ndarray]:
    """id -> stored vector of the live index."""
    searcher = IndexManager(root, store).open_live()
    vectors = searcher.vectors(np.arange(searcher.count))
    return dict(zip(searcher.sequence_ids, vectors))


def assert_index_matches(store: MetadataStore, root: Path, reference: dict[str, np.ndarray],
                         ids: set[str]) -> None:
    held = live_vectors(store, root)
    assert set(held) == ids
    for sequence_id in ids:
        np.testing.assert_allclose(held[sequence_id], reference[sequence_id], atol=1e-5, err_msg=sequence_id)


def assert_shards_consistent(store: MetadataStore, root: Path, encoder_version: str) -> None:
    """Every recorded row lies in an existing shard, each sequence once, and no shard is an orphan."""
    shards = ShardStore(root / "embeddings", encoder_version)
    records = store.get_embeddings(encoder_version)
    assert len({r.sequence_id for r in records}) == len(records)
    assert shards.check(records, 16) == {}
    assert set(shards.shard_keys()) == {r.shard for r in records}


# -- building, incremental, bad input ---------------------------------------------------------------
def test_reindex_embeds_everything_and_promotes_a_verified_index(store, root, dataset, corpus):
    register_dataset(store, dataset)
    summary = reindex(store, root, dataset, corpus.checkpoint_a)

    assert (summary.embedded, summary.skipped, summary.failed) == (N_SEQUENCES, 0, 0)
    assert summary.embedded_this_run == N_SEQUENCES and not summary.resumed
    assert summary.encoder_version == corpus.version_a
    assert summary.live_version == summary.index_version == store.live_version()
    assert store.get_index_version(summary.index_version).status == "live"
    assert store.get_job(summary.job_id).status == "completed"
    assert_index_matches(store, root, corpus.reference_a, set(dataset.names))
    assert_shards_consistent(store, root, corpus.version_a)
    assert store.get_encoder(corpus.version_a).embedding_dim == 16


def test_second_reindex_embeds_nothing_and_keeps_the_live_version(store, root, dataset, corpus):
    register_dataset(store, dataset)
    first = reindex(store, root, dataset, corpus.checkpoint_a)
    shards_before = ShardStore(root / "embeddings", corpus.version_a).shard_keys()

    second = reindex(store, root, None, corpus.checkpoint_a)   # datasets come from the registration

    assert (second.embedded, second.skipped, second.failed) == (0, N_SEQUENCES, 0)
    assert second.index_version is None and second.live_version == first.index_version
    assert len(store.list_index_versions()) == 1
    assert ShardStore(root / "embeddings", corpus.version_a).shard_keys() == shards_before


def test_changing_one_sequence_re_embeds_just_that_one(store, root, dataset, corpus, tmp_path):
    register_dataset(store, dataset)
    first = reindex(store, root, dataset, corpus.checkpoint_a)
    sequences = list(dataset.iter_sequences())
    changed_name = sequences[7].name
    other_walk = demo_sequences(1, seed=99)[0]
    sequences[7] = sequences[7].with_(joints=other_walk.joints, confidence=other_walk.confidence)
    changed = write_dataset(dataset.root, sequences, tmp_path / "raw-changed")
    hashes_before = {r.id: r.content_hash for r in store.list_sequences()}
    register_dataset(store, changed)
    hashes_after = {r.id: r.content_hash for r in store.list_sequences()}
    assert [s for s in hashes_before if hashes_before[s] != hashes_after[s]] == [changed_name]

    second = reindex(store, root, changed, corpus.checkpoint_a)

    assert (second.embedded, second.skipped, second.failed) == (1, N_SEQUENCES - 1, 0)
    assert second.index_version not in (None, first.index_version)
    assert store.get_index_version(first.index_version).status == "retired"
    expected = dict(corpus.reference_a)
    expected[changed_name] = StyleEncoder.load(corpus.checkpoint_a).embed([changed.load(changed_name)])[0]
    assert not np.allclose(expected[changed_name], corpus.reference_a[changed_name], atol=1e-4)
    assert_index_matches(store, root, expected, set(dataset.names))
    assert_shards_consistent(store, root, corpus.version_a)


def test_bad_sequences_are_recorded_and_skipped(store, root, dataset, corpus, tmp_path):
    sequences = list(dataset.iter_sequences())
    unobserved = sequences[3].with_(confidence=np.zeros_like(sequences[3].confidence))   # preprocessing fails
    sequences[3] = unobserved
    dataset = write_dataset(dataset.root, sequences, tmp_path / "raw-bad")
    unreadable = dataset.names[10]
    dataset.array_path(dataset.item(unreadable).content_hash).write_bytes(b"not a zip archive")
    register_dataset(store, dataset)

    summary = reindex(store, root, dataset, corpus.checkpoint_a)

    assert (summary.embedded, summary.failed) == (N_SEQUENCES - 2, 2)
    assert set(summary.errors) == {unobserved.name, unreadable}
    assert "confidence" in summary.errors[unobserved.name]
    assert "unreadable array file" in summary.errors[unreadable]
    assert all("\n" not in line for line in summary.errors.values())
    assert store.job_item_errors(summary.job_id) == summary.errors
    assert store.get_job(summary.job_id).status == "completed"
    good = set(dataset.names) - {unobserved.name, unreadable}
    assert_index_matches(store, root, corpus.reference_a, good)


def test_sequence_without_a_known_dataset_fails_alone(store, root, dataset, corpus):
    register_dataset(store, dataset)
    known = store.get_sequence(dataset.names[0])
    store.upsert_sequences([replace(known, id="elsewhere-0", extra={})])

    summary = reindex(store, root, None, corpus.checkpoint_a)

    assert summary.failed == 1 and "no known dataset" in summary.errors["elsewhere-0"]
    assert summary.embedded == N_SEQUENCES and summary.indexed == N_SEQUENCES


def test_new_encoder_builds_a_new_version_and_retires_the_old(store, root, dataset, corpus):
    register_dataset(store, dataset)
    old = reindex(store, root, dataset, corpus.checkpoint_a)
    new = reindex(store, root, dataset, corpus.checkpoint_b, index_type="HNSW")

    assert new.embedded == N_SEQUENCES and new.previous_live_version == old.index_version
    assert new.index_spec.startswith("HNSW")
    assert store.get_index_version(old.index_version).status == "retired"
    assert store.get_index_version(new.index_version).encoder_version == corpus.version_b
    assert_index_matches(store, root, corpus.reference_b, set(dataset.names))
    assert store.count_embeddings(corpus.version_a) == store.count_embeddings(corpus.version_b) == N_SEQUENCES


def test_missing_shard_file_is_embedded_again(store, root, dataset, corpus):
    register_dataset(store, dataset)
    reindex(store, root, dataset, corpus.checkpoint_a)
    shards = ShardStore(root / "embeddings", corpus.version_a)
    lost = shards.shard_keys()[1]
    lost_ids = {r.sequence_id for r in store.get_embeddings(corpus.version_a) if r.shard == lost}
    shards.path(lost).unlink()

    summary = reindex(store, root, None, corpus.checkpoint_a)

    assert summary.embedded_this_run == len(lost_ids) == BATCH
    assert summary.index_version is not None
    assert_index_matches(store, root, corpus.reference_a, set(dataset.names))
    assert_shards_consistent(store, root, corpus.version_a)


# -- crashes and resumption -------------------------------------------------------------------------
class _InterruptAfter(LocalBackend):
    """A local backend that raises ``error`` after yielding ``batches`` batches."""

    def __init__(self, checkpoint: Path, batches: int, error: BaseException) -> None:
        super().__init__(checkpoint, batch_size=BATCH)
        self.batches, self.error = batches, error

    def embed_batches(self, requests):
        for i, batch in enumerate(super().embed_batches(requests)):
            if i == self.batches:
                raise self.error
            yield batch


def _running_job(store: MetadataStore) -> str:
    jobs = store.list_jobs(kind=JOB_KIND, status="running")
    assert len(jobs) == 1
    return jobs[0].id


def test_ctrl_c_marks_the_job_interrupted_and_the_next_run_resumes_it(store, root, dataset, corpus):
    register_dataset(store, dataset)
    with pytest.raises(KeyboardInterrupt):
        reindex(store, root, dataset, corpus.checkpoint_a,
                backend=_InterruptAfter(corpus.checkpoint_a, 2, KeyboardInterrupt()))
    (job,) = store.list_jobs(kind=JOB_KIND)
    assert job.status == "interrupted" and job.done == 2 * BATCH
    assert store.live_version() is None

    summary = reindex(store, root, dataset, corpus.checkpoint_a)

    assert summary.resumed and summary.job_id == job.id
    assert summary.embedded_this_run == N_SEQUENCES - 2 * BATCH
    assert (summary.embedded, summary.skipped, summary.failed) == (N_SEQUENCES, 0, 0)
    assert_index_matches(store, root, corpus.reference_a, set(dataset.names))
    assert_shards_consistent(store, root, corpus.version_a)


def test_error_in_backend_fails_the_job_and_a_new_run_continues_incrementally(store, root, dataset, corpus):
    register_dataset(store, dataset)
    with pytest.raises(RuntimeError, match="worker lost"):
        reindex(store, root, dataset, corpus.checkpoint_a,
                backend=_InterruptAfter(corpus.checkpoint_a, 1, RuntimeError("worker lost")))
    (failed,) = store.list_jobs(kind=JOB_KIND)
    assert failed.status == "failed" and "worker lost" in failed.message

    summary = reindex(store, root, dataset, corpus.checkpoint_a)

    assert not summary.resumed and summary.job_id != failed.id
    assert (summary.embedded, summary.skipped) == (N_SEQUENCES - BATCH, BATCH)
    assert_index_matches(store, root, corpus.reference_a, set(dataset.names))


def test_crash_after_shard_write_leaves_an_orphan_that_resume_ignores_and_removes(
        store, root, dataset, corpus, monkeypatch):
    register_dataset(store, dataset)
    calls = {"n": 0}
    original = store.record_embedded_batch

    def dies_on_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise SimulatedKill()
        return original(*args, **kwargs)

    monkeypatch.setattr(store, "record_embedded_batch", dies_on_third)
    with pytest.raises(SimulatedKill):
        reindex(store, root, dataset, corpus.checkpoint_a)
    monkeypatch.setattr(store, "record_embedded_batch", original)
    shards = ShardStore(root / "embeddings", corpus.version_a)
    recorded = {r.shard for r in store.get_embeddings(corpus.version_a)}
    assert len(recorded) == 2 and len(shards.shard_keys()) == 3          # one orphan
    job_id = _running_job(store)

    summary = reindex(store, root, dataset, corpus.checkpoint_a)

    assert summary.resumed and summary.job_id == job_id
    assert summary.embedded_this_run == N_SEQUENCES - 2 * BATCH
    assert summary.shards_removed == 1
    assert_index_matches(store, root, corpus.reference_a, set(dataset.names))
    assert_shards_consistent(store, root, corpus.version_a)


def test_failure_while_marking_items_rolls_back_the_batch_rows_too(
        store, root, dataset, corpus, monkeypatch):
    register_dataset(store, dataset)
    calls = {"n": 0}
    original = store._write_job_progress

    def dies_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise SimulatedKill()
        return original(*args, **kwargs)

    monkeypatch.setattr(store, "_write_job_progress", dies_on_second)
    with pytest.raises(SimulatedKill):
        reindex(store, root, dataset, corpus.checkpoint_a)
    monkeypatch.setattr(store, "_write_job_progress", original)
    job_id = _running_job(store)
    # rows and item marks share one transaction: the second batch left neither behind
    assert store.get_job(job_id).done == BATCH and store.count_embeddings(corpus.version_a) == BATCH

    summary = reindex(store, root, dataset, corpus.checkpoint_a)

    assert summary.job_id == job_id
    assert summary.embedded_this_run == N_SEQUENCES - BATCH
    assert (summary.embedded, summary.skipped) == (N_SEQUENCES, 0)
    assert_index_matches(store, root, corpus.reference_a, set(dataset.names))
    assert_shards_consistent(store, root, corpus.version_a)


def test_crash_during_index_build_marks_that_version_failed_on_resume(store, root, dataset, corpus, monkeypatch):
    register_dataset(store, dataset)
    old = reindex(store, root, dataset, corpus.checkpoint_a)

    original = store.create_index_version

    def registers_then_dies(*args, **kwargs):
        original(*args, **kwargs)
        raise SimulatedKill()

    monkeypatch.setattr(store, "create_index_version", registers_then_dies)
    with pytest.raises(SimulatedKill):
        reindex(store, root, dataset, corpus.checkpoint_b)
    monkeypatch.undo()
    job = store.get_job(_running_job(store))
    assert store.get_index_version(job.index_version).status == "building"
    assert store.live_version() == old.index_version

    summary = reindex(store, root, dataset, corpus.checkpoint_b)

    assert summary.resumed and summary.embedded_this_run == 0
    assert store.get_index_version(job.index_version).status == "failed"
    assert summary.live_version == summary.index_version != job.index_version
    assert_index_matches(store, root, corpus.reference_b, set(dataset.names))


def test_crash_after_promotion_resumes_to_completion_without_rebuilding(store, root, dataset, corpus, monkeypatch):
    register_dataset(store, dataset)
    original = IndexManager.promote

    def promote_then_die(self, version):
        original(self, version)
        raise SimulatedKill()

    monkeypatch.setattr(IndexManager, "promote", promote_then_die)
    with pytest.raises(SimulatedKill):
        reindex(store, root, dataset, corpus.checkpoint_a)
    monkeypatch.undo()
    job_id = _running_job(store)
    promoted = store.live_version()

    summary = reindex(store, root, dataset, corpus.checkpoint_a)

    assert summary.job_id == job_id and summary.index_version is None and summary.live_version == promoted
    assert store.get_job(job_id).status == "completed"
    assert len(store.list_index_versions()) == 1


# -- other jobs ------------------------------------------------------------------------------------
def test_a_live_job_elsewhere_blocks_and_a_silent_one_is_taken_over(store, root, dataset, corpus):
    register_dataset(store, dataset)
    reindex(store, root, dataset, corpus.checkpoint_a)          # registers encoder a
    other = store.create_job(JOB_KIND, encoder_version=corpus.version_a, sequence_ids=dataset.names,
                             params={"host": "another-host", "pid": 1})

    with pytest.raises(JobError, match="running on another-host"):
        reindex(store, root, dataset, corpus.checkpoint_a, stale_after_s=3600)
    assert store.get_job(other.id).status == "running"

    store.update_job(other.id)   # a heartbeat, then silence longer than stale_after_s
    summary = reindex(store, root, dataset, corpus.checkpoint_a, stale_after_s=1e-3)
    assert summary.resumed and summary.job_id == other.id
    assert (summary.embedded, summary.skipped) == (0, N_SEQUENCES)
    assert store.get_job(other.id).status == "completed"


def test_the_shard_lock_refuses_a_second_writer(root, corpus):
    shards = ShardStore(root / "embeddings", corpus.version_a)
    with shards.lock():
        with pytest.raises(JobError, match="being written by pid"):
            with ShardStore(root / "embeddings", corpus.version_a).lock():
                pass
    with ShardStore(root / "embeddings", corpus.version_a).lock():
        pass  # released when the holder lets go


def test_empty_store_is_refused_with_a_clear_error(store, root, corpus):
    with pytest.raises(JobError, match="no sequences"):
        reindex(store, root, None, corpus.checkpoint_a)
    (job,) = store.list_jobs(kind=JOB_KIND)
    assert job.status == "failed"
