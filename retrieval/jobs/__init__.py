"""Batch (re-)indexing jobs: embed stored sequences into append-only shards and publish a new live index.

``ray`` itself is imported only when the Ray backend first runs.
"""
from retrieval.jobs.backends import (
    DEFAULT_BATCH_SIZE,
    EmbeddedBatch,
    EmbeddingBackend,
    LocalBackend,
    embed_requests,
)
from retrieval.jobs.errors import JobError, ShardError
from retrieval.jobs.ray_backend import RayBackend, RayEmbedder
from retrieval.jobs.reindex import (
    BACKENDS,
    INDEX_TYPES,
    JOB_KIND,
    ReindexJob,
    ReindexSummary,
    spec_for_index_type,
)
from retrieval.jobs.shards import ShardStore
from retrieval.jobs.sources import (
    EmbedRequest,
    SequenceLoader,
    dataset_for,
    register_dataset,
    sequence_record_for,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_BATCH_SIZE",
    "INDEX_TYPES",
    "JOB_KIND",
    "EmbedRequest",
    "EmbeddedBatch",
    "EmbeddingBackend",
    "JobError",
    "LocalBackend",
    "RayBackend",
    "RayEmbedder",
    "ReindexJob",
    "ReindexSummary",
    "SequenceLoader",
    "ShardError",
    "ShardStore",
    "dataset_for",
    "embed_requests",
    "register_dataset",
    "sequence_record_for",
    "spec_for_index_type",
]
