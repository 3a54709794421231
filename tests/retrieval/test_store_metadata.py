"""MetadataStore on SQLite and PostgreSQL: migrations, sequences + filters, encoders, embeddings,
index-version lifecycle, jobs."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from encoder.data.sequence import PoseSequence
from retrieval.migrations import head_revision
from retrieval.store import (
    EmbeddingRecord,
    MetadataStore,
    SequenceFilters,
    SequenceRecord,
    StoreError,
    UnknownRecordError,
    UpsertReport,
)
from retrieval.store.models import Base
from tests.retrieval.retrieval_support import LABELS, TAGS, catalogue, register_encoder

TABLES = {"sequences", "sequence_tags", "encoders", "embeddings", "index_versions", "jobs", "job_items",
          "alembic_version"}


# -- migrations ---------------------------------------------------------------------------------
def test_fresh_database_is_upgraded_to_head_with_all_tables(db_url: str) -> None:
    store = MetadataStore.open(db_url)
    try:
        assert store.schema_revision() == head_revision()
        assert TABLES <= set(inspect(store.engine).get_table_names())
    finally:
        store.close()
    again = MetadataStore.open(db_url)  # a second open finds the schema current and changes nothing
    try:
        assert again.schema_revision() == head_revision()
        assert again.count_sequences() == 0
    finally:
        again.close()


def test_migrated_schema_matches_the_orm_models(store: MetadataStore) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_downgrade_to_base_and_upgrade_again(store: MetadataStore) -> None:
    from alembic import command

    from retrieval.migrations import alembic_config

    store.upsert_sequences(catalogue(2))
    with store.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert not (TABLES - {"alembic_version"}) & set(inspect(store.engine).get_table_names())
    store.migrate()
    assert store.schema_revision() == head_revision() and store.count_sequences() == 0


def test_opening_without_migration_leaves_an_empty_database(db_url: str) -> None:
    store = MetadataStore.open(db_url, migrate=False)
    try:
        assert store.schema_revision() is None
        assert not TABLES & set(inspect(store.engine).get_table_names())
    finally:
        store.close()


def test_default_store_lives_in_index_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with MetadataStore.open() as store:
        store.upsert_sequences(catalogue(2))
    assert (tmp_path / "index_data" / "metadata.db").is_file()


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(sqlite_store: MetadataStore) -> None:
    with sqlite_store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000


def test_many_openers_of_a_new_sqlite_file_all_get_in_and_write(tmp_path: Path) -> None:
    """Threads that open one fresh file at the same moment (the app's page and the re-index it starts)
    all migrate, switch to WAL and write; none waits out the busy timeout or fails with 'locked'."""
    import threading

    path, n = tmp_path / "metadata.db", 6
    start, errors = threading.Barrier(n), []

    def open_and_write(i: int) -> None:
        start.wait()
        try:
            with MetadataStore.open(path) as store:
                store.upsert_sequences([replace(r, id=f"{r.id}-{i}") for r in catalogue(3)])
        except Exception as err:  # noqa: BLE001 (collected and reported below)
            errors.append(err)

    threads = [threading.Thread(target=open_and_write, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    with MetadataStore.open(path) as store, store.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM sequences").scalar() == 3 * n
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


# -- sequences ----------------------------------------------------------------------------------
def test_upsert_inserts_updates_and_skips_unchanged(store: MetadataStore) -> None:
    records = catalogue(5)
    assert store.upsert_sequences(records) == UpsertReport(inserted=5, updated=0, unchanged=0)
    first = store.get_sequence("seq-00002")
    assert first is not None and first.same_content(records[2]) and first.created is not None
    changed = replace(records[2], label="new-label", tags=("only",))
    report = store.upsert_sequences([records[0], changed])
    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 1)
    after = store.get_sequence("seq-00002")
    assert after is not None
    assert after.label == "new-label" and after.tags == ("only",)
    assert after.created == first.created and after.updated is not None and after.updated > first.updated
    assert store.get_sequence("seq-00000") == store.get_sequences(["seq-00000"])["seq-00000"]
    assert store.count_sequences() == 5


def test_upsert_with_a_duplicate_id_writes_nothing(store: MetadataStore) -> None:
    records = catalogue(3)
    with pytest.raises(StoreError, match="appears twice"):
        store.upsert_sequences([*records, records[1]])
    with pytest.raises(StoreError, match="non-empty"):
        store.upsert_sequences([records[0], replace(records[1], id="")])
    with pytest.raises(StoreError, match="label is longer than 128"):
        store.upsert_sequences([records[0], replace(records[1], label="x" * 129)])
    with pytest.raises(StoreError, match="tag"):
        store.upsert_sequences([replace(records[1], tags=("t" * 200,))])
    assert store.count_sequences() == 0


def test_get_list_page_and_delete(store: MetadataStore) -> None:
    store.upsert_sequences(catalogue(12))
    ids = [r.id for r in store.list_sequences()]
    assert ids == sorted(ids) and len(ids) == 12
    assert [r.id for r in store.list_sequences(limit=5, offset=5)] == ids[5:10]
    assert store.get_sequence("missing") is None
    assert set(store.get_sequences(["seq-00001", "missing"])) == {"seq-00001"}
    assert store.delete_sequences(["seq-00001", "seq-00003", "missing"]) == 2
    assert store.count_sequences() == 10 and store.get_sequence("seq-00001") is None


FILTER_CASES = [
    SequenceFilters(label="elegant"),
    SequenceFilters(label=["elegant", "relaxed"]),
    SequenceFilters(collection="spring", season="2024"),
    SequenceFilters(model_id=["model-1", "model-3"]),
    SequenceFilters(tags=["runway"]),
    SequenceFilters(tags=["runway", "evening"], tags_mode="any"),
    SequenceFilters(tags=["runway", "evening"], tags_mode="all"),
    SequenceFilters(label="energetic", tags=["casual", "studio"], tags_mode="all"),
    SequenceFilters(label="no-such-label"),
    SequenceFilters(),
]


def _matches(record: SequenceRecord, f: SequenceFilters) -> bool:
    for name in ("label", "collection", "season", "model_id"):
        wanted = getattr(f, name)
        if wanted is not None and getattr(record, name) not in ([wanted] if isinstance(wanted, str) else wanted):
            return False
    if f.tags:
        present = [t in record.tags for t in f.tags]
        return all(present) if f.tags_mode == "all" else any(present)
    return True


@pytest.mark.parametrize("filters", FILTER_CASES, ids=lambda f: repr(f)[16:60])
def test_filters_select_exactly_the_matching_sequences(store: MetadataStore, filters: SequenceFilters) -> None:
    records = catalogue(120, seed=3)
    store.upsert_sequences(records)
    expected = sorted(r.id for r in records if _matches(r, filters))
    assert store.sequence_ids(filters) == expected
    assert store.count_sequences(filters) == len(expected)
    assert [r.id for r in store.list_sequences(filters)] == expected


def test_distinct_values_feed_filter_menus(store: MetadataStore) -> None:
    records = catalogue(60, seed=1)
    store.upsert_sequences(records)
    assert store.distinct_values("label") == sorted({r.label for r in records if r.label})
    assert store.distinct_values("tags") == sorted({t for r in records for t in r.tags})
    assert set(store.distinct_values("tags")) <= set(TAGS) and set(store.distinct_values("label")) <= set(LABELS)
    with pytest.raises(StoreError, match="cannot list values"):
        store.distinct_values("source")


def test_record_from_pose_sequence_maps_metadata_to_columns() -> None:
    rng = np.random.default_rng(0)
    seq = PoseSequence(joints=rng.standard_normal((40, 17, 3)).astype(np.float32), confidence=np.ones((40, 17)),
                       fps=25.0, source="/raw/walk.bvh", name="walk-01", label="elegant",
                       metadata={"collection": "spring", "season": 2024, "tags": ["runway", "studio"], "take": 3})
    record = SequenceRecord.from_pose_sequence(seq)
    assert (record.id, record.label, record.collection, record.season) == ("walk-01", "elegant", "spring", "2024")
    assert record.tags == ("runway", "studio") and record.extra == {"take": 3}
    assert (record.fps, record.frames, record.dims, record.content_hash) == (25.0, 40, 3, seq.content_hash())
    assert SequenceRecord.from_pose_sequence(seq, "other-id", label="relaxed").id == "other-id"


# -- encoders and embeddings --------------------------------------------------------------------
def test_register_encoder_is_idempotent_and_refuses_a_different_checkpoint(store: MetadataStore) -> None:
    first = register_encoder(store, "enc-a", 16)
    assert register_encoder(store, "enc-a", 16) == first
    with pytest.raises(StoreError, match="different checkpoint"):
        store.register_encoder(replace(first, checkpoint_hash="other"))
    assert [e.version for e in store.list_encoders()] == ["enc-a"]


def test_embedding_bookkeeping_drives_incremental_reindex(store: MetadataStore) -> None:
    records = catalogue(6)
    store.upsert_sequences(records)
    register_encoder(store, "enc-a")
    with pytest.raises(UnknownRecordError):
        store.record_embeddings("enc-missing", [])
    assert store.sequences_needing_embedding("enc-a") == [r.id for r in records]
    store.record_embeddings("enc-a", [EmbeddingRecord(r.id, r.content_hash, "shard-0000.npy", i)
                                      for i, r in enumerate(records[:4])])
    assert store.count_embeddings("enc-a") == 4
    assert store.sequences_needing_embedding("enc-a") == ["seq-00004", "seq-00005"]
    store.upsert_sequences([replace(records[1], content_hash="f" * 64)])  # content changed: stale vector
    assert store.sequences_needing_embedding("enc-a") == ["seq-00001", "seq-00004", "seq-00005"]
    assert store.sequences_needing_embedding("enc-a", SequenceFilters(label=records[4].label)) == sorted(
        r.id for r in (records[1], records[4], records[5]) if r.label == records[4].label)
    store.record_embeddings("enc-a", [EmbeddingRecord("seq-00001", "f" * 64, "shard-0001.npy", 0)])
    rows = store.get_embeddings("enc-a")
    assert [(e.shard, e.row) for e in rows] == sorted((e.shard, e.row) for e in rows)
    updated = store.get_embeddings("enc-a", ["seq-00001"])[0]
    assert (updated.shard, updated.row, updated.content_hash) == ("shard-0001.npy", 0, "f" * 64)
    assert store.sequences_needing_embedding("enc-a") == ["seq-00004", "seq-00005"]
    store.delete_sequences(["seq-00000"])  # vectors of deleted sequences go with them
    assert store.embedded_sequence_ids("enc-a") == ["seq-00001", "seq-00002", "seq-00003"]
    assert store.delete_embeddings("enc-a", ["seq-00002"]) == 1
    assert store.delete_embeddings("enc-a") == 2 and store.count_embeddings("enc-a") == 0


# -- index versions -----------------------------------------------------------------------------
def _version(store: MetadataStore, name: str, status: str = "building") -> None:
    store.create_index_version(name, encoder_version="enc-a", spec="Flat", dimension=16, count=3,
                               path=f"/idx/{name}", status=status)


def test_index_version_lifecycle_keeps_exactly_one_live(store: MetadataStore) -> None:
    register_encoder(store)
    _version(store, "v1")
    with pytest.raises(StoreError, match="never verified"):
        store.set_live("v1")
    with pytest.raises(StoreError, match="cannot go from 'building' to 'live'"):
        store.update_index_version("v1", status="live")
    verified = store.update_index_version("v1", status="verified")
    assert verified.verified_at is not None
    assert store.set_live("v1").status == "live" and store.live_version() == "v1"
    _version(store, "v2")
    store.update_index_version("v2", status="verified")
    store.set_live("v2")
    statuses = {r.version: r.status for r in store.list_index_versions()}
    assert statuses == {"v1": "retired", "v2": "live"}
    assert store.live_version() == "v2"
    store.set_live("v1")  # rolling back to a retired, once-verified version is allowed
    assert {r.version: r.status for r in store.list_index_versions(status="live")} == {"v1": "live"}
    with pytest.raises(StoreError, match="already exists"):
        _version(store, "v1")
    with pytest.raises(UnknownRecordError):
        store.set_live("nope")


def test_the_database_itself_refuses_a_second_live_row(store: MetadataStore) -> None:
    register_encoder(store)
    for name in ("v1", "v2"):
        _version(store, name, status="verified")
    store.set_live("v1")
    with pytest.raises(Exception, match="(?i)unique"):
        with store.engine.begin() as connection:
            connection.execute(text("UPDATE index_versions SET status = 'live' WHERE version = 'v2'"))
    assert store.live_version() == "v1"


def test_set_live_rolls_back_when_the_pointer_swap_fails(store: MetadataStore) -> None:
    register_encoder(store)
    for name in ("v1", "v2"):
        _version(store, name, status="verified")
    store.set_live("v1")

    def failing_swap() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        store.set_live("v2", before_commit=failing_swap)
    assert store.live_version() == "v1"
    assert store.get_index_version("v2").status == "verified"  # type: ignore[union-attr]


def test_index_version_needs_a_registered_encoder(store: MetadataStore) -> None:
    with pytest.raises(UnknownRecordError, match="encoder"):
        _version(store, "v1")


# -- jobs ---------------------------------------------------------------------------------------
def test_job_progress_items_and_errors(store: MetadataStore) -> None:
    register_encoder(store)
    job = store.create_job("reindex", encoder_version="enc-a", sequence_ids=["a", "b", "c", "d"],
                           params={"batch": 8})
    assert (job.status, job.total, job.done, job.params) == ("running", 4, 0, {"batch": 8})
    assert store.job_items(job.id, "pending") == ["a", "b", "c", "d"]
    after = store.record_job_progress(job.id, done=["a"], skipped=["b"], failed={"c": "bad\nfile"})
    assert (after.done, after.error_count) == (3, 1)
    assert after.error_log[0]["item"] == "c" and after.error_log[0]["error"] == "bad file"
    assert after.heartbeat >= job.heartbeat
    assert store.job_item_counts(job.id) == {"pending": 1, "done": 1, "failed": 1, "skipped": 1}
    assert store.job_item_errors(job.id) == {"c": "bad file"}
    again = store.record_job_progress(job.id, done=["a", "d"])  # "a" was done already: not counted twice
    assert again.done == 4 and store.job_items(job.id, "pending") == []
    assert store.add_job_items(job.id, ["d", "e"]) == 1
    logged = store.log_job_error(job.id, "shard-3", "write failed")
    assert logged.error_count == 2
    finished = store.finish_job(job.id, "completed", message="ok")
    assert finished.status == "completed" and finished.finished is not None
    with pytest.raises(StoreError):
        store.finish_job(job.id, "running")
    assert [j.id for j in store.list_jobs(kind="reindex", status="completed")] == [job.id]
    with pytest.raises(UnknownRecordError):
        store.heartbeat("no-such-job")


def test_stale_jobs_are_interrupted_and_can_resume(store: MetadataStore) -> None:
    fresh = store.create_job("reindex", total=10)
    assert store.interrupt_stale_jobs(timedelta(hours=1)) == []
    assert store.interrupt_stale_jobs(timedelta(0)) == [fresh.id]
    interrupted = store.get_job(fresh.id)
    assert interrupted is not None and interrupted.status == "interrupted" and interrupted.message
    resumed = store.resume_job(fresh.id)
    assert resumed.status == "running" and resumed.finished is None
    updated = store.update_job(fresh.id, total=12, done=5, index_version="v9")
    assert (updated.total, updated.done, updated.index_version) == (12, 5, "v9")


def test_timestamps_are_timezone_aware_utc(store: MetadataStore) -> None:
    store.upsert_sequences(catalogue(1))
    job = store.create_job("x")
    record = store.get_sequence("seq-00000")
    assert record is not None
    for stamp in (record.created, record.updated, job.started, job.heartbeat):
        assert stamp is not None and stamp.utcoffset() == timedelta(0)


def test_concurrent_sqlite_writers_wait_instead_of_failing(tmp_path: Path) -> None:
    import threading

    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    stores = [MetadataStore.open(url) for _ in range(2)]
    errors: list[BaseException] = []
    records = catalogue(40)

    def writer(store: MetadataStore, chunk: list[SequenceRecord]) -> None:
        try:
            for record in chunk:
                store.upsert_sequences([record])
                store.create_job("touch")
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(s, records[i::2])) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert stores[0].count_sequences() == 40 and len(stores[1].list_jobs(limit=None)) == 40
    for s in stores:
        s.close()


def test_every_status_combination_is_guarded(store: MetadataStore) -> None:
    register_encoder(store)
    _version(store, "v1")
    with pytest.raises(StoreError):
        store.create_index_version("v2", encoder_version="enc-a", spec="Flat", dimension=16, count=1,
                                   path="/x", status="live")
    allowed = []
    for target in ("verified", "failed", "retired", "building"):
        try:
            store.update_index_version("v1", status=target)
            allowed.append(target)
        except StoreError:
            pass
    # building -> verified ok; verified -> failed ok; failed -> retired / building refused
    assert allowed == ["verified", "failed"]
    assert [r.status for r in store.list_index_versions(encoder_version="enc-a")] == ["failed"]
