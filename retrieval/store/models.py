"""SQLAlchemy 2 ORM tables of the metadata store (the Alembic migrations create exactly these).

Tables: ``sequences`` (+ ``sequence_tags``, the tag index used for filtering), ``encoders``,
``embeddings`` (which sequence has a vector for which encoder, and where it lies on disk),
``index_versions``, ``jobs`` and ``job_items``. Timestamps are timezone-aware UTC on every backend.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SEQUENCE_ID_MAX = 255
INDEX_STATUSES: tuple[str, ...] = ("building", "verified", "live", "retired", "failed")
JOB_STATUSES: tuple[str, ...] = ("running", "completed", "failed", "interrupted")
JOB_ITEM_STATUSES: tuple[str, ...] = ("pending", "done", "failed", "skipped")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (the only kind of timestamp the store holds)."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the store only accepts timezone-aware datetimes")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _status_check(column: str, statuses: tuple[str, ...]) -> CheckConstraint:
    allowed = ", ".join(f"'{s}'" for s in statuses)
    return CheckConstraint(f"{column} IN ({allowed})", name=f"{column}_valid")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class SequenceRow(Base):
    """One pose sequence of the catalogue; ``id`` is its unique name."""

    __tablename__ = "sequences"

    id: Mapped[str] = mapped_column(String(SEQUENCE_ID_MAX), primary_key=True)
    source: Mapped[str] = mapped_column(String(1024))
    content_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(128), index=True)
    collection: Mapped[str | None] = mapped_column(String(128), index=True)
    season: Mapped[str | None] = mapped_column(String(64), index=True)
    model_id: Mapped[str | None] = mapped_column(String(128), index=True)
    fps: Mapped[float] = mapped_column(Float)
    frames: Mapped[int] = mapped_column(Integer)
    skeleton: Mapped[str] = mapped_column(String(32))
    dims: Mapped[int] = mapped_column(Integer)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON)
    created: Mapped[datetime]
    updated: Mapped[datetime]

    tag_rows: Mapped[list["SequenceTagRow"]] = relationship(
        back_populates="sequence", cascade="all, delete-orphan", passive_deletes=True, lazy="selectin",
        order_by="SequenceTagRow.tag",
    )


class SequenceTagRow(Base):
    """One tag of one sequence: a table rather than a JSON list so tag filters are portable SQL."""

    __tablename__ = "sequence_tags"

    sequence_id: Mapped[str] = mapped_column(
        ForeignKey("sequences.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(128), primary_key=True, index=True)

    sequence: Mapped[SequenceRow] = relationship(back_populates="tag_rows")


class EncoderRow(Base):
    """A trained encoder checkpoint whose embeddings an index can hold."""

    __tablename__ = "encoders"

    version: Mapped[str] = mapped_column(String(128), primary_key=True)
    checkpoint_hash: Mapped[str] = mapped_column(String(64))
    checkpoint_path: Mapped[str] = mapped_column(String(1024))
    model_name: Mapped[str] = mapped_column(String(128))
    embedding_dim: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    created: Mapped[datetime]


class EmbeddingRow(Base):
    """Bookkeeping for incremental re-indexing: the vector of ``sequence_id`` under ``encoder_version``
    lies at ``row`` of the on-disk shard ``shard`` and was computed from content ``content_hash``."""

    __tablename__ = "embeddings"
    __table_args__ = (Index("ix_embeddings_encoder_version_shard", "encoder_version", "shard"),)

    sequence_id: Mapped[str] = mapped_column(
        ForeignKey("sequences.id", ondelete="CASCADE"), primary_key=True)
    encoder_version: Mapped[str] = mapped_column(
        ForeignKey("encoders.version", ondelete="CASCADE"), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    shard: Mapped[str] = mapped_column(String(512))
    row: Mapped[int] = mapped_column(Integer)
    created: Mapped[datetime]


class IndexVersionRow(Base):
    """One FAISS index build; at most one row is ``live`` (a partial unique index enforces it)."""

    __tablename__ = "index_versions"
    __table_args__ = (
        _status_check("status", INDEX_STATUSES),
        Index("uq_index_versions_one_live", "status", unique=True,
              sqlite_where=text("status = 'live'"), postgresql_where=text("status = 'live'")),
    )

    version: Mapped[str] = mapped_column(String(128), primary_key=True)
    encoder_version: Mapped[str] = mapped_column(
        ForeignKey("encoders.version", ondelete="RESTRICT"), index=True)
    spec: Mapped[str] = mapped_column(String(256))
    dimension: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(1024))
    message: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime]
    verified_at: Mapped[datetime | None]
    promoted_at: Mapped[datetime | None]


class JobRow(Base):
    """A long-running job (embedding, re-indexing) with progress counters and a heartbeat."""

    __tablename__ = "jobs"
    __table_args__ = (_status_check("status", JOB_STATUSES), Index("ix_jobs_kind_status", "kind", "status"))

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    encoder_version: Mapped[str | None] = mapped_column(ForeignKey("encoders.version", ondelete="SET NULL"))
    index_version: Mapped[str | None] = mapped_column(String(128))
    total: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer)
    error_count: Mapped[int] = mapped_column(Integer)
    error_log: Mapped[list[Any]] = mapped_column(JSON)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    message: Mapped[str | None] = mapped_column(Text)
    heartbeat: Mapped[datetime]
    started: Mapped[datetime]
    finished: Mapped[datetime | None]


class JobItemRow(Base):
    """One sequence of a job, so an interrupted job resumes where it stopped."""

    __tablename__ = "job_items"
    __table_args__ = (_status_check("status", JOB_ITEM_STATUSES),
                      Index("ix_job_items_job_id_status", "job_id", "status"))

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    sequence_id: Mapped[str] = mapped_column(String(SEQUENCE_ID_MAX), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    updated: Mapped[datetime]
