"""``MetadataStore``: the catalogue of sequences, encoders, embeddings, index versions and jobs.

One SQLAlchemy engine; every public method is one atomic transaction. SQLite (the default,
``index_data/metadata.db``) runs in WAL mode with a busy timeout and foreign keys on, and write
transactions take the write lock up front (``BEGIN IMMEDIATE``) so concurrent writers wait instead
of failing. Any other SQLAlchemy URL works too (PostgreSQL: ``postgresql+psycopg://...``).
"""
from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, Select, String, create_engine, delete, event, func, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from encoder.data.errors import one_line
from retrieval.migrations import current_revision, upgrade_to_head
from retrieval.store.errors import StoreError, UnknownRecordError
from retrieval.store.models import (
    INDEX_STATUSES,
    JOB_ITEM_STATUSES,
    JOB_STATUSES,
    SEQUENCE_ID_MAX,
    Base,
    EmbeddingRow,
    EncoderRow,
    IndexVersionRow,
    JobItemRow,
    JobRow,
    SequenceRow,
    SequenceTagRow,
    utc_now,
)
from retrieval.store.records import (
    EmbeddingRecord,
    EncoderRecord,
    IndexVersionRecord,
    JobRecord,
    SequenceFilters,
    SequenceRecord,
    UpsertReport,
)

DEFAULT_DATA_DIR = Path("index_data")
SQLITE_BUSY_TIMEOUT_MS = 30_000
CHUNK = 500                   # rows per IN (...) clause / executemany batch
ERROR_LOG_LIMIT = 200         # newest job errors kept on the job row (all stay on job_items)
_WRITE_OPTION = "posestyle_write"
_WAL_SWITCH = threading.Lock()     # one switch at a time in this process; other processes wait on SQLite

# Index-version status changes the store allows ("live" is only reachable through set_live).
_INDEX_TRANSITIONS: dict[str, frozenset[str]] = {
    "building": frozenset({"verified", "failed"}),
    "verified": frozenset({"verified", "retired", "failed"}),
    "live": frozenset({"retired", "failed"}),
    "retired": frozenset({"verified", "retired", "failed"}),
    "failed": frozenset({"verified", "failed"}),
}
_FILTER_COLUMNS = {"label": SequenceRow.label, "collection": SequenceRow.collection,
                   "season": SequenceRow.season, "model_id": SequenceRow.model_id}

T = TypeVar("T")


def default_database_url(data_dir: str | Path = DEFAULT_DATA_DIR) -> str:
    """SQLite URL of the default store file ``<data_dir>/metadata.db``."""
    return f"sqlite:///{Path(data_dir) / 'metadata.db'}"


def _chunks(items: list[T], size: int = CHUNK) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _switch_to_wal(database: str) -> None:
    """Put a SQLite file in WAL mode once, before any pooled connection uses it. WAL is stored in the file,
    so pooled connections never take the exclusive lock the switch needs: two connections switching a
    fresh file while one of them already writes can otherwise wait each other out past the busy timeout
    (seen under load: the app's page and a re-index it started, opening a new root together)."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    with _WAL_SWITCH:
        connection = sqlite3.connect(database, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        try:
            while True:
                try:
                    connection.execute("PRAGMA journal_mode=WAL").fetchone()
                    return
                except sqlite3.OperationalError as err:
                    if "locked" not in str(err) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            connection.close()


def _configure_sqlite(engine: Engine) -> None:
    """Pragmas on every new connection; explicit BEGIN so SQLite transactions behave (immediate for writes)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let the "begin" hook below issue BEGIN itself
        cursor = dbapi_connection.cursor()
        # the busy timeout first: switching a new database to WAL takes a lock that another connection
        # (an app page opening the same fresh root) may hold for a moment
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
            cursor.execute("PRAGMA journal_mode=WAL")     # a file that was not opened through ``open``
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class MetadataStore:
    """Transactional catalogue shared by the index builder, the jobs and the app."""

    def __init__(self, engine: Engine) -> None:
        """Wrap an engine whose schema is already at head (use ``MetadataStore.open`` normally)."""
        self.engine = engine
        self._write_engine = engine.execution_options(**{_WRITE_OPTION: True})

    # -- lifecycle ----------------------------------------------------------------------------
    @classmethod
    def open(cls, url: str | Path | None = None, *, migrate: bool = True, echo: bool = False) -> "MetadataStore":
        """Connect to ``url`` (None: ``index_data/metadata.db``; a path without ``://``: that SQLite
        file) and upgrade the schema to the newest Alembic revision."""
        if url is None:
            url = default_database_url()
        elif isinstance(url, Path) or "://" not in url:
            url = f"sqlite:///{url}"
        sa_url = make_url(url)
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if sa_url.get_backend_name() == "sqlite":
            database = sa_url.database
            if database in (None, "", ":memory:"):
                kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
            else:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
                _switch_to_wal(str(Path(database).expanduser()))
        else:
            kwargs["pool_pre_ping"] = True
        engine = create_engine(sa_url, **kwargs)
        if sa_url.get_backend_name() == "sqlite":
            _configure_sqlite(engine)
        store = cls(engine)
        if migrate:
            store.migrate()
        return store

    def migrate(self) -> None:
        """Run ``alembic upgrade head`` in one transaction."""
        with self._write_engine.begin() as connection:
            upgrade_to_head(connection)

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at."""
        with self.engine.connect() as connection:
            return current_revision(connection)

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    def __enter__(self) -> "MetadataStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with Session(self._write_engine, expire_on_commit=False) as session:
            try:
                with session.begin():
                    yield session
            except (IntegrityError, DataError) as exc:
                raise StoreError(f"database refused the change: {str(exc.orig).splitlines()[0]}") from exc

    # -- sequences ----------------------------------------------------------------------------
    def upsert_sequences(self, records: Iterable[SequenceRecord]) -> UpsertReport:
        """Insert new sequences and update changed ones (matched by id) in one transaction.

        ``created`` is kept from the first insert; ``updated`` changes only when content or metadata
        did. A batch with a duplicate or invalid id is refused whole (nothing is written)."""
        batch = list(records)
        seen: set[str] = set()
        for record in batch:
            _check_sequence_record(record)
            if record.id in seen:
                raise StoreError(f"sequence id {record.id!r} appears twice in one upsert")
            seen.add(record.id)
        inserted = updated = unchanged = 0
        now = utc_now()
        with self._write() as session:
            for chunk in _chunks(batch):
                existing = {row.id: row for row in session.scalars(
                    select(SequenceRow).where(SequenceRow.id.in_([r.id for r in chunk])))}
                fresh = [r for r in chunk if r.id not in existing]
                if fresh:  # bulk INSERTs: the common case of a first ingest
                    session.execute(insert(SequenceRow), [_sequence_values(r, now) for r in fresh])
                    tags = [{"sequence_id": r.id, "tag": t} for r in fresh for t in r.tags]
                    if tags:
                        session.execute(insert(SequenceTagRow), tags)
                    inserted += len(fresh)
                for record in chunk:
                    row = existing.get(record.id)
                    if row is None:
                        continue
                    if _sequence_record(row).same_content(record):
                        unchanged += 1
                    else:
                        self._update_sequence_row(row, record, now)
                        updated += 1
        return UpsertReport(inserted=inserted, updated=updated, unchanged=unchanged)

    @staticmethod
    def _update_sequence_row(row: SequenceRow, record: SequenceRecord, now: datetime) -> None:
        row.source = record.source
        row.content_hash = record.content_hash
        row.label, row.collection, row.season, row.model_id = (
            record.label, record.collection, record.season, record.model_id)
        row.fps, row.frames = float(record.fps), int(record.frames)
        row.skeleton, row.dims = record.skeleton, int(record.dims)
        row.extra = dict(record.extra)
        row.updated = now
        current = {t.tag for t in row.tag_rows}
        if current != set(record.tags):
            row.tag_rows = [t for t in row.tag_rows if t.tag in record.tags] + [
                SequenceTagRow(tag=tag) for tag in record.tags if tag not in current]

    def get_sequence(self, sequence_id: str) -> SequenceRecord | None:
        """The sequence named ``sequence_id``, or None."""
        with self._read() as session:
            row = session.get(SequenceRow, sequence_id)
            return None if row is None else _sequence_record(row)

    def get_sequences(self, sequence_ids: Iterable[str]) -> dict[str, SequenceRecord]:
        """Records of the given ids that exist (missing ids are simply absent from the dict)."""
        ids = list(dict.fromkeys(sequence_ids))
        out: dict[str, SequenceRecord] = {}
        with self._read() as session:
            for chunk in _chunks(ids):
                for row in session.scalars(select(SequenceRow).where(SequenceRow.id.in_(chunk))):
                    out[row.id] = _sequence_record(row)
        return out

    def content_of(self, sequence_ids: Iterable[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """(content hash, extra) of the given ids that exist: the columns a re-index plan needs, read
        without building full records (100k records take minutes, these columns seconds)."""
        ids = list(dict.fromkeys(sequence_ids))
        out: dict[str, tuple[str, dict[str, Any]]] = {}
        with self._read() as session:
            for chunk in _chunks(ids):
                query = select(SequenceRow.id, SequenceRow.content_hash, SequenceRow.extra).where(
                    SequenceRow.id.in_(chunk))
                for sequence_id, content_hash, extra in session.execute(query):
                    out[sequence_id] = (content_hash, dict(extra or {}))
        return out

    def list_sequences(self, filters: SequenceFilters | None = None, *, limit: int | None = None,
                       offset: int = 0) -> list[SequenceRecord]:
        """Sequences matching ``filters``, ordered by id, paged by ``limit``/``offset``."""
        query = _apply_filters(select(SequenceRow), filters).order_by(SequenceRow.id).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as session:
            return [_sequence_record(row) for row in session.scalars(query)]

    def sequence_ids(self, filters: SequenceFilters | None = None) -> list[str]:
        """Ids of sequences matching ``filters`` (all when None), sorted."""
        query = _apply_filters(select(SequenceRow.id), filters).order_by(SequenceRow.id)
        with self._read() as session:
            return list(session.scalars(query))

    def count_sequences(self, filters: SequenceFilters | None = None) -> int:
        """Number of sequences matching ``filters``."""
        query = _apply_filters(select(func.count()).select_from(SequenceRow), filters)
        with self._read() as session:
            return int(session.scalar(query) or 0)

    def delete_sequences(self, sequence_ids: Iterable[str]) -> int:
        """Delete sequences (with their tags and embedding bookkeeping); returns how many existed."""
        ids = list(dict.fromkeys(sequence_ids))
        deleted = 0
        with self._write() as session:
            for chunk in _chunks(ids):
                # Explicit child deletes: correct even where the backend ignores ON DELETE CASCADE.
                session.execute(delete(SequenceTagRow).where(SequenceTagRow.sequence_id.in_(chunk)))
                session.execute(delete(EmbeddingRow).where(EmbeddingRow.sequence_id.in_(chunk)))
                result = session.execute(delete(SequenceRow).where(SequenceRow.id.in_(chunk)))
                deleted += int(result.rowcount or 0)  # type: ignore[attr-defined]
        return deleted

    def distinct_values(self, field: str) -> list[str]:
        """Sorted distinct non-null values of ``label``, ``collection``, ``season``, ``model_id`` or ``tags``
        (for filter menus)."""
        query: Select[Any]
        if field == "tags":
            query = select(SequenceTagRow.tag).distinct().order_by(SequenceTagRow.tag)
        elif field in _FILTER_COLUMNS:
            column = _FILTER_COLUMNS[field]
            query = select(column).where(column.is_not(None)).distinct().order_by(column)
        else:
            raise StoreError(f"cannot list values of {field!r}; choose one of "
                             f"{', '.join([*_FILTER_COLUMNS, 'tags'])}")
        with self._read() as session:
            return list(session.scalars(query))

    # -- encoders -----------------------------------------------------------------------------
    def register_encoder(self, record: EncoderRecord) -> EncoderRecord:
        """Register an encoder checkpoint; registering the same version again with the same checkpoint
        hash is a no-op, with a different hash it is refused."""
        with self._write() as session:
            row = session.get(EncoderRow, record.version)
            if row is not None:
                if row.checkpoint_hash != record.checkpoint_hash:
                    raise StoreError(f"encoder version {record.version!r} is already registered with a "
                                     f"different checkpoint hash")
                return _encoder_record(row)
            row = EncoderRow(version=record.version, checkpoint_hash=record.checkpoint_hash,
                             checkpoint_path=str(record.checkpoint_path), model_name=record.model_name,
                             embedding_dim=int(record.embedding_dim), config=dict(record.config),
                             created=record.created or utc_now())
            session.add(row)
            session.flush()
            return _encoder_record(row)

    def get_encoder(self, version: str) -> EncoderRecord | None:
        """The encoder registered as ``version``, or None."""
        with self._read() as session:
            row = session.get(EncoderRow, version)
            return None if row is None else _encoder_record(row)

    def list_encoders(self) -> list[EncoderRecord]:
        """All registered encoders, newest first."""
        with self._read() as session:
            rows = session.scalars(select(EncoderRow).order_by(EncoderRow.created.desc(), EncoderRow.version))
            return [_encoder_record(row) for row in rows]

    # -- embeddings bookkeeping ---------------------------------------------------------------
    def record_embeddings(self, encoder_version: str, records: Iterable[EmbeddingRecord]) -> int:
        """Insert or replace where each sequence's vector under ``encoder_version`` lies (shard, row)
        and which content it was computed from. Returns the number of records written."""
        batch = list(records)
        with self._write() as session:
            self._write_embeddings(session, encoder_version, batch, utc_now())
        return len(batch)

    def record_embedded_batch(self, job_id: str, encoder_version: str, records: Iterable[EmbeddingRecord],
                              *, failed: Mapping[str, str] | None = None) -> JobRecord:
        """Record a batch's embeddings AND mark its job items done (and ``failed`` ones failed) in one
        transaction, so a kill can never leave vectors recorded for items still pending, or the reverse."""
        batch = list(records)
        now = utc_now()
        with self._write() as session:
            self._write_embeddings(session, encoder_version, batch, now)
            return self._write_job_progress(session, job_id, [r.sequence_id for r in batch], (),
                                            dict(failed or {}), now)

    @staticmethod
    def _write_embeddings(session: Session, encoder_version: str, batch: list[EmbeddingRecord],
                          now: datetime) -> None:
        if len({r.sequence_id for r in batch}) != len(batch):
            raise StoreError("an embedding batch names the same sequence twice")
        if session.get(EncoderRow, encoder_version) is None:
            raise UnknownRecordError("encoder", encoder_version)
        for chunk in _chunks(batch):
            existing = set(session.scalars(select(EmbeddingRow.sequence_id).where(
                EmbeddingRow.encoder_version == encoder_version,
                EmbeddingRow.sequence_id.in_([r.sequence_id for r in chunk]))))
            values = [{"sequence_id": r.sequence_id, "encoder_version": encoder_version, "content_hash": r.content_hash,
                       "shard": r.shard, "row": int(r.row), "created": now} for r in chunk]
            # bulk statements, not one ORM object per row: a re-index records every vector it writes
            fresh = [v for v in values if v["sequence_id"] not in existing]
            if fresh:
                session.execute(insert(EmbeddingRow), fresh)
            if len(fresh) < len(values):
                session.execute(update(EmbeddingRow), [v for v in values if v["sequence_id"] in existing])

    def get_embeddings(self, encoder_version: str,
                       sequence_ids: Iterable[str] | None = None) -> list[EmbeddingRecord]:
        """Embedding bookkeeping for ``encoder_version`` (optionally only some sequences), by shard and row."""
        base = select(EmbeddingRow).where(EmbeddingRow.encoder_version == encoder_version)
        order = (EmbeddingRow.shard, EmbeddingRow.row)
        with self._read() as session:
            if sequence_ids is None:
                rows = list(session.scalars(base.order_by(*order)))
            else:
                rows = []
                for chunk in _chunks(list(dict.fromkeys(sequence_ids))):
                    rows.extend(session.scalars(base.where(EmbeddingRow.sequence_id.in_(chunk))))
                rows.sort(key=lambda r: (r.shard, r.row))
            return [_embedding_record(row) for row in rows]

    def embedded_sequence_ids(self, encoder_version: str) -> list[str]:
        """Ids of sequences that have a vector under ``encoder_version``, sorted."""
        query = (select(EmbeddingRow.sequence_id).where(EmbeddingRow.encoder_version == encoder_version)
                 .order_by(EmbeddingRow.sequence_id))
        with self._read() as session:
            return list(session.scalars(query))

    def count_embeddings(self, encoder_version: str) -> int:
        """Number of sequences with a vector under ``encoder_version``."""
        query = select(func.count()).select_from(EmbeddingRow).where(EmbeddingRow.encoder_version == encoder_version)
        with self._read() as session:
            return int(session.scalar(query) or 0)

    def sequences_needing_embedding(self, encoder_version: str,
                                    filters: SequenceFilters | None = None) -> list[str]:
        """Ids of sequences without a vector under ``encoder_version``, or whose content changed since
        (content hash differs): the work of an incremental re-index."""
        query = (select(SequenceRow.id)
                 .outerjoin(EmbeddingRow, (EmbeddingRow.sequence_id == SequenceRow.id)
                            & (EmbeddingRow.encoder_version == encoder_version))
                 .where(EmbeddingRow.sequence_id.is_(None) | (EmbeddingRow.content_hash != SequenceRow.content_hash))
                 .order_by(SequenceRow.id))
        with self._read() as session:
            return list(session.scalars(_apply_filters(query, filters)))

    def delete_embeddings(self, encoder_version: str, sequence_ids: Iterable[str] | None = None) -> int:
        """Forget vectors under ``encoder_version`` (all, or only some sequences); returns rows deleted."""
        base = delete(EmbeddingRow).where(EmbeddingRow.encoder_version == encoder_version)
        deleted = 0
        with self._write() as session:
            if sequence_ids is None:
                deleted = int(session.execute(base).rowcount or 0)  # type: ignore[attr-defined]
            else:
                for chunk in _chunks(list(dict.fromkeys(sequence_ids))):
                    result = session.execute(base.where(EmbeddingRow.sequence_id.in_(chunk)))
                    deleted += int(result.rowcount or 0)  # type: ignore[attr-defined]
        return deleted

    # -- index versions -----------------------------------------------------------------------
    def create_index_version(self, version: str, *, encoder_version: str, spec: str, dimension: int,
                             count: int, path: str | Path, status: str = "building") -> IndexVersionRecord:
        """Register a new index build (status ``building`` unless told otherwise; never ``live``)."""
        if status not in INDEX_STATUSES or status == "live":
            raise StoreError(f"a new index version cannot start as {status!r}")
        with self._write() as session:
            if session.get(EncoderRow, encoder_version) is None:
                raise UnknownRecordError("encoder", encoder_version)
            if session.get(IndexVersionRow, version) is not None:
                raise StoreError(f"index version {version!r} already exists")
            row = IndexVersionRow(version=version, encoder_version=encoder_version, spec=spec,
                                  dimension=int(dimension), count=int(count), status=status, path=str(path),
                                  created=utc_now(),
                                  verified_at=utc_now() if status == "verified" else None)
            session.add(row)
            session.flush()
            return _index_record(row)

    def get_index_version(self, version: str) -> IndexVersionRecord | None:
        """The index version ``version``, or None."""
        with self._read() as session:
            row = session.get(IndexVersionRow, version)
            return None if row is None else _index_record(row)

    def list_index_versions(self, status: str | Collection[str] | None = None,
                            encoder_version: str | None = None) -> list[IndexVersionRecord]:
        """Index versions, newest first, optionally only those with the given status(es) / encoder."""
        query = select(IndexVersionRow)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            query = query.where(IndexVersionRow.status.in_(statuses))
        if encoder_version is not None:
            query = query.where(IndexVersionRow.encoder_version == encoder_version)
        query = query.order_by(IndexVersionRow.created.desc(), IndexVersionRow.version.desc())
        with self._read() as session:
            return [_index_record(row) for row in session.scalars(query)]

    def update_index_version(self, version: str, *, status: str | None = None, count: int | None = None,
                             path: str | Path | None = None, message: str | None = None) -> IndexVersionRecord:
        """Change an index version's status (allowed transitions only; ``live`` only via ``set_live``),
        count, path or message. Moving to ``verified`` stamps ``verified_at``."""
        with self._write() as session:
            row = self._index_row_for_update(session, version)
            if status is not None:
                allowed = _INDEX_TRANSITIONS.get(row.status, frozenset())
                if status not in allowed:
                    raise StoreError(f"index version {version!r} cannot go from {row.status!r} to {status!r}")
                row.status = status
                if status == "verified":
                    row.verified_at = utc_now()
            if count is not None:
                row.count = int(count)
            if path is not None:
                row.path = str(path)
            if message is not None:
                row.message = one_line(message)
            session.flush()
            return _index_record(row)

    def set_live(self, version: str, *, before_commit: Callable[[], None] | None = None) -> IndexVersionRecord:
        """Make ``version`` the one live index version, retiring the previous one, atomically.

        Only a verified version (or a retired one that was verified) can go live. ``before_commit``
        runs inside the transaction just before commit: if it raises, nothing changes (the index
        manager swaps its on-disk LIVE pointer there, so store and disk move together)."""
        with self._write() as session:
            row = self._index_row_for_update(session, version)
            if row.status not in ("verified", "retired", "live") or row.verified_at is None:
                raise StoreError(f"index version {version!r} is {row.status!r} and was never verified; "
                                 f"only a verified version can go live")
            others = session.scalars(select(IndexVersionRow).where(
                IndexVersionRow.status == "live", IndexVersionRow.version != version).with_for_update())
            now = utc_now()
            for other in others:
                other.status = "retired"
            session.flush()  # retire before promoting: the one-live unique index sees one at a time
            if row.status != "live":
                row.status = "live"
                row.promoted_at = now
            session.flush()
            if before_commit is not None:
                before_commit()
            return _index_record(row)

    def live_version(self) -> str | None:
        """The version whose status is ``live`` (at most one; the database enforces it), or None."""
        with self._read() as session:
            return session.scalar(select(IndexVersionRow.version).where(IndexVersionRow.status == "live"))

    @staticmethod
    def _index_row_for_update(session: Session, version: str) -> IndexVersionRow:
        row = session.scalar(select(IndexVersionRow).where(IndexVersionRow.version == version).with_for_update())
        if row is None:
            raise UnknownRecordError("index version", version)
        return row

    # -- jobs ---------------------------------------------------------------------------------
    def create_job(self, kind: str, *, encoder_version: str | None = None, index_version: str | None = None,
                   total: int = 0, params: Mapping[str, Any] | None = None,
                   sequence_ids: Iterable[str] | None = None) -> JobRecord:
        """Start a ``running`` job; ``sequence_ids`` become its pending items (``total`` defaults to
        their number) so an interrupted job can resume."""
        items = list(dict.fromkeys(sequence_ids)) if sequence_ids is not None else []
        now = utc_now()
        with self._write() as session:
            if encoder_version is not None and session.get(EncoderRow, encoder_version) is None:
                raise UnknownRecordError("encoder", encoder_version)
            row = JobRow(id=uuid.uuid4().hex, kind=kind, status="running", encoder_version=encoder_version,
                         index_version=index_version, total=int(total or len(items)), done=0, error_count=0,
                         error_log=[], params=dict(params or {}), message=None, heartbeat=now, started=now,
                         finished=None)
            session.add(row)
            session.flush()
            self._insert_job_items(session, row.id, items, now)
            return _job_record(row)

    @staticmethod
    def _insert_job_items(session: Session, job_id: str, sequence_ids: list[str], now: datetime) -> int:
        added = 0
        for chunk in _chunks(sequence_ids):
            known = set(session.scalars(select(JobItemRow.sequence_id).where(
                JobItemRow.job_id == job_id, JobItemRow.sequence_id.in_(chunk))))
            fresh = [{"job_id": job_id, "sequence_id": s, "status": "pending", "error": None, "updated": now}
                     for s in chunk if s not in known]
            if fresh:
                session.execute(insert(JobItemRow), fresh)
                added += len(fresh)
        return added

    def add_job_items(self, job_id: str, sequence_ids: Iterable[str]) -> int:
        """Add pending items to a job (ids already present are kept as they are); returns how many were new."""
        items = list(dict.fromkeys(sequence_ids))
        with self._write() as session:
            self._job_row(session, job_id)
            return self._insert_job_items(session, job_id, items, utc_now())

    def get_job(self, job_id: str) -> JobRecord | None:
        """The job ``job_id``, or None."""
        with self._read() as session:
            row = session.get(JobRow, job_id)
            return None if row is None else _job_record(row)

    def list_jobs(self, *, kind: str | None = None, status: str | Collection[str] | None = None,
                  limit: int | None = 50) -> list[JobRecord]:
        """Jobs, newest first, optionally of one kind and status(es)."""
        query = select(JobRow)
        if kind is not None:
            query = query.where(JobRow.kind == kind)
        if status is not None:
            query = query.where(JobRow.status.in_([status] if isinstance(status, str) else list(status)))
        query = query.order_by(JobRow.started.desc(), JobRow.id)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as session:
            return [_job_record(row) for row in session.scalars(query)]

    def update_job(self, job_id: str, *, total: int | None = None, done: int | None = None,
                   index_version: str | None = None, message: str | None = None,
                   params: Mapping[str, Any] | None = None) -> JobRecord:
        """Set a running job's counters, target index version, message or params (and beat its heartbeat)."""
        with self._write() as session:
            row = self._job_row(session, job_id)
            if total is not None:
                row.total = int(total)
            if done is not None:
                row.done = int(done)
            if index_version is not None:
                row.index_version = index_version
            if message is not None:
                row.message = message
            if params is not None:
                row.params = dict(params)
            row.heartbeat = utc_now()
            session.flush()
            return _job_record(row)

    def heartbeat(self, job_id: str, *, done: int | None = None) -> JobRecord:
        """Record that a job is alive (optionally with its progress)."""
        return self.update_job(job_id, done=done)

    def record_job_progress(self, job_id: str, *, done: Iterable[str] = (), skipped: Iterable[str] = (),
                            failed: Mapping[str, str] | None = None) -> JobRecord:
        """Mark job items done / skipped / failed (with their error) and bump the job's counters, error
        log and heartbeat in one transaction. ``done`` counts done + skipped + failed items."""
        now = utc_now()
        with self._write() as session:
            return self._write_job_progress(session, job_id, list(done), list(skipped), dict(failed or {}), now)

    def _write_job_progress(self, session: Session, job_id: str, done: list[str], skipped: Iterable[str],
                            failed: dict[str, str], now: datetime) -> JobRecord:
        outcome = {**{s: ("done", None) for s in done}, **{s: ("skipped", None) for s in skipped},
                   **{s: ("failed", one_line(e)) for s, e in failed.items()}}
        row = self._job_row(session, job_id)
        ids = list(outcome)
        previous: dict[str, str] = {}
        for chunk in _chunks(ids):
            previous.update(session.execute(select(JobItemRow.sequence_id, JobItemRow.status).where(
                JobItemRow.job_id == job_id, JobItemRow.sequence_id.in_(chunk))).all())
        missing = [s for s in ids if s not in previous]
        self._insert_job_items(session, job_id, missing, now)
        newly_finished = [s for s in ids if previous.get(s, "pending") == "pending"]
        for status in ("done", "skipped", "failed"):
            same = [s for s in ids if outcome[s][0] == status]
            for chunk in _chunks(same):
                if status == "failed":
                    for sequence_id in chunk:
                        session.execute(update(JobItemRow).where(
                            JobItemRow.job_id == job_id, JobItemRow.sequence_id == sequence_id).values(
                            status="failed", error=outcome[sequence_id][1], updated=now))
                else:
                    session.execute(update(JobItemRow).where(
                        JobItemRow.job_id == job_id, JobItemRow.sequence_id.in_(chunk)).values(
                        status=status, error=None, updated=now))
        row.done += len(newly_finished)
        new_errors = [s for s in newly_finished if outcome[s][0] == "failed"]
        row.error_count += len(new_errors)
        if new_errors:
            log = list(row.error_log) + [{"item": s, "error": outcome[s][1], "at": now.isoformat()}
                                         for s in new_errors]
            row.error_log = log[-ERROR_LOG_LIMIT:]
        row.heartbeat = now
        session.flush()
        return _job_record(row)

    def log_job_error(self, job_id: str, item: str, error: str) -> JobRecord:
        """Count one job-level error that belongs to no item (e.g. a shard that failed to write)."""
        now = utc_now()
        with self._write() as session:
            row = self._job_row(session, job_id)
            row.error_count += 1
            row.error_log = (list(row.error_log) + [{"item": item, "error": one_line(error),
                                                      "at": now.isoformat()}])[-ERROR_LOG_LIMIT:]
            row.heartbeat = now
            session.flush()
            return _job_record(row)

    def job_items(self, job_id: str, status: str | None = None, *, limit: int | None = None) -> list[str]:
        """Sequence ids of a job's items (optionally only those with ``status``), sorted."""
        if status is not None and status not in JOB_ITEM_STATUSES:
            raise StoreError(f"unknown job item status {status!r}")
        query = select(JobItemRow.sequence_id).where(JobItemRow.job_id == job_id)
        if status is not None:
            query = query.where(JobItemRow.status == status)
        query = query.order_by(JobItemRow.sequence_id)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as session:
            return list(session.scalars(query))

    def job_item_errors(self, job_id: str) -> dict[str, str]:
        """Failed items of a job and their error lines."""
        query = select(JobItemRow.sequence_id, JobItemRow.error).where(
            JobItemRow.job_id == job_id, JobItemRow.status == "failed").order_by(JobItemRow.sequence_id)
        with self._read() as session:
            return {s: e or "" for s, e in session.execute(query)}

    def job_item_counts(self, job_id: str) -> dict[str, int]:
        """Number of a job's items per status (every status present, zero when none)."""
        query = (select(JobItemRow.status, func.count()).where(JobItemRow.job_id == job_id)
                 .group_by(JobItemRow.status))
        with self._read() as session:
            counts = dict.fromkeys(JOB_ITEM_STATUSES, 0)
            counts.update({s: int(n) for s, n in session.execute(query)})
            return counts

    def finish_job(self, job_id: str, status: str, message: str | None = None) -> JobRecord:
        """End a job as ``completed``, ``failed`` or ``interrupted``."""
        if status not in JOB_STATUSES or status == "running":
            raise StoreError(f"a job cannot finish as {status!r}")
        with self._write() as session:
            row = self._job_row(session, job_id)
            row.status = status
            row.finished = row.heartbeat = utc_now()
            if message is not None:
                row.message = message
            session.flush()
            return _job_record(row)

    def resume_job(self, job_id: str) -> JobRecord:
        """Mark an interrupted or failed job running again (its pending items are the remaining work)."""
        with self._write() as session:
            row = self._job_row(session, job_id)
            if row.status not in ("interrupted", "failed", "running"):
                raise StoreError(f"job {job_id!r} is {row.status!r} and cannot resume")
            row.status = "running"
            row.finished = None
            row.heartbeat = utc_now()
            session.flush()
            return _job_record(row)

    def interrupt_stale_jobs(self, max_silence: timedelta) -> list[str]:
        """Mark running jobs whose heartbeat is older than ``max_silence`` as ``interrupted``
        (their worker died); returns their ids."""
        cutoff = utc_now() - max_silence
        with self._write() as session:
            rows = list(session.scalars(select(JobRow).where(JobRow.status == "running", JobRow.heartbeat < cutoff)
                                        .with_for_update()))
            for row in rows:
                row.status = "interrupted"
                row.finished = utc_now()
                row.message = row.message or f"no heartbeat since {row.heartbeat.isoformat()}"
            return [row.id for row in rows]

    @staticmethod
    def _job_row(session: Session, job_id: str) -> JobRow:
        row = session.scalar(select(JobRow).where(JobRow.id == job_id).with_for_update())
        if row is None:
            raise UnknownRecordError("job", job_id)
        return row


def _apply_filters(query: Select[Any], filters: SequenceFilters | None) -> Select[Any]:
    """Add the WHERE clauses of ``filters`` to a query over ``sequences``."""
    if filters is None or filters.is_empty:
        return query
    for name, values in filters.column_values().items():
        query = query.where(_FILTER_COLUMNS[name].in_(values))
    if filters.tags:
        matching = select(SequenceTagRow.sequence_id).where(SequenceTagRow.tag.in_(filters.tags))
        if filters.tags_mode == "all":
            matching = matching.group_by(SequenceTagRow.sequence_id).having(
                func.count(SequenceTagRow.tag) == len(filters.tags))
        query = query.where(SequenceRow.id.in_(matching))
    return query


def _max_chars(row: type[Base], column: str) -> int:
    """The declared length of a string column of ``row``'s table."""
    kind = row.__table__.columns[column].type
    if not isinstance(kind, String) or kind.length is None:
        raise TypeError(f"{row.__name__}.{column} is not a bounded string column")
    return kind.length


def _check_sequence_record(record: SequenceRecord) -> None:
    """Refuse ids and texts the columns cannot hold, before anything is written."""
    if not isinstance(record.id, str) or not record.id.strip() or len(record.id) > SEQUENCE_ID_MAX:
        raise StoreError(f"sequence id must be a non-empty string of at most {SEQUENCE_ID_MAX} characters, "
                         f"got {record.id!r}")
    for name in ("source", "content_hash", "label", "collection", "season", "model_id", "skeleton"):
        value = getattr(record, name)
        limit = _max_chars(SequenceRow, name)
        if value is not None and len(str(value)) > limit:
            raise StoreError(f"sequence {record.id!r}: {name} is longer than {limit} characters")
    tag_limit = _max_chars(SequenceTagRow, "tag")
    for tag in record.tags:
        if not tag or len(tag) > tag_limit:
            raise StoreError(f"sequence {record.id!r}: tag {tag[:40]!r} must be 1-{tag_limit} characters")


def _sequence_values(record: SequenceRecord, now: datetime) -> dict[str, Any]:
    """Column values of a new ``sequences`` row."""
    return {"id": record.id, "source": record.source, "content_hash": record.content_hash, "label": record.label,
            "collection": record.collection, "season": record.season, "model_id": record.model_id,
            "fps": float(record.fps), "frames": int(record.frames), "skeleton": record.skeleton,
            "dims": int(record.dims), "extra": dict(record.extra), "created": record.created or now, "updated": now}


def _sequence_record(row: SequenceRow) -> SequenceRecord:
    return SequenceRecord(id=row.id, content_hash=row.content_hash, source=row.source, label=row.label,
                          collection=row.collection, season=row.season, model_id=row.model_id,
                          tags=tuple(t.tag for t in row.tag_rows), fps=row.fps, frames=row.frames,
                          skeleton=row.skeleton, dims=row.dims, extra=dict(row.extra or {}),
                          created=row.created, updated=row.updated)


def _encoder_record(row: EncoderRow) -> EncoderRecord:
    return EncoderRecord(version=row.version, checkpoint_hash=row.checkpoint_hash,
                         checkpoint_path=row.checkpoint_path, model_name=row.model_name,
                         embedding_dim=row.embedding_dim, config=dict(row.config or {}), created=row.created)


def _embedding_record(row: EmbeddingRow) -> EmbeddingRecord:
    return EmbeddingRecord(sequence_id=row.sequence_id, content_hash=row.content_hash, shard=row.shard,
                           row=row.row, encoder_version=row.encoder_version, created=row.created)


def _index_record(row: IndexVersionRow) -> IndexVersionRecord:
    return IndexVersionRecord(version=row.version, encoder_version=row.encoder_version, spec=row.spec,
                              dimension=row.dimension, count=row.count, status=row.status, path=row.path,
                              message=row.message, created=row.created, verified_at=row.verified_at,
                              promoted_at=row.promoted_at)


def _job_record(row: JobRow) -> JobRecord:
    return JobRecord(id=row.id, kind=row.kind, status=row.status, encoder_version=row.encoder_version,
                     index_version=row.index_version, total=row.total, done=row.done,
                     error_count=row.error_count, error_log=list(row.error_log or []),
                     params=dict(row.params or {}), message=row.message, heartbeat=row.heartbeat,
                     started=row.started, finished=row.finished)


__all__ = ["MetadataStore", "default_database_url"]
