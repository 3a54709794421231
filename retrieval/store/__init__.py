"""Metadata store: sequences, encoders, embedding bookkeeping, index versions and jobs (SQLAlchemy + Alembic)."""
from retrieval.store.errors import StoreError, UnknownRecordError
from retrieval.store.metadata_store import MetadataStore, default_database_url
from retrieval.store.models import INDEX_STATUSES, JOB_ITEM_STATUSES, JOB_STATUSES
from retrieval.store.records import (
    EmbeddingRecord,
    EncoderRecord,
    IndexVersionRecord,
    JobRecord,
    SequenceFilters,
    SequenceRecord,
    UpsertReport,
)

__all__ = [
    "INDEX_STATUSES",
    "JOB_ITEM_STATUSES",
    "JOB_STATUSES",
    "EmbeddingRecord",
    "EncoderRecord",
    "IndexVersionRecord",
    "JobRecord",
    "MetadataStore",
    "SequenceFilters",
    "SequenceRecord",
    "StoreError",
    "UnknownRecordError",
    "UpsertReport",
    "default_database_url",
]
