"""Retrieval layer: metadata store (SQLAlchemy + Alembic), versioned FAISS indexes, and style search.

Typical use::

    store = MetadataStore.open()                      # index_data/metadata.db, schema at head
    manager = IndexManager("index_data", store)
    manager.build(version, embeddings, sequence_ids, encoder_version=encoder.version)
    if manager.verify(version).ok:
        manager.promote(version)
    hits = SearchService(store, manager, embedder=encoder).search_by_id("take_001", k=10)
"""
from retrieval.index import (
    IndexBuildError,
    IndexCorruptError,
    IndexManager,
    IndexNotVerifiedError,
    NoLiveIndexError,
    VectorIndexError,
    VectorSearcher,
    VerificationReport,
    choose_index_spec,
    new_version_name,
)
from retrieval.search import Embedder, QueryError, SearchFilters, SearchHit, SearchService
from retrieval.bench import BenchConfig, quick_config, run_retrieval_bench
from retrieval.store import (
    EmbeddingRecord,
    EncoderRecord,
    IndexVersionRecord,
    JobRecord,
    MetadataStore,
    SequenceFilters,
    SequenceRecord,
    StoreError,
    UnknownRecordError,
    UpsertReport,
    default_database_url,
)

__all__ = [
    "BenchConfig",
    "Embedder",
    "EmbeddingRecord",
    "EncoderRecord",
    "IndexBuildError",
    "IndexCorruptError",
    "IndexManager",
    "IndexNotVerifiedError",
    "IndexVersionRecord",
    "JobRecord",
    "MetadataStore",
    "NoLiveIndexError",
    "QueryError",
    "SearchFilters",
    "SearchHit",
    "SearchService",
    "SequenceFilters",
    "SequenceRecord",
    "StoreError",
    "UnknownRecordError",
    "UpsertReport",
    "VectorIndexError",
    "VectorSearcher",
    "VerificationReport",
    "choose_index_spec",
    "default_database_url",
    "new_version_name",
    "quick_config",
    "run_retrieval_bench",
]
