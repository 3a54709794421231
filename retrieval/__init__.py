"""Retrieval layer: metadata store (SQLAlchemy + Alembic), versioned FAISS indexes, and style search.

Typical use::

    store = MetadataStore.open()                      # index_data/metadata.db, schema at head
    manager = IndexManager("index_data", store)
    manager.build(version, embeddings, sequence_ids, encoder_version=encoder.version)
    if manager.verify(version).ok:
        manager.promote(version)
    hits = SearchService(store, manager, embedder=encoder).search_by_id("take_001", k=10)
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

# Exported names, each loaded from its subpackage on first use (PEP 562): importing one part
# (e.g. ``retrieval.store``) never loads another part's heavy dependencies (faiss, torch).
_EXPORTS: dict[str, str] = {
    "Embedder": "retrieval.search",
    "EmbeddingRecord": "retrieval.store",
    "EncoderRecord": "retrieval.store",
    "IndexBuildError": "retrieval.index",
    "IndexCorruptError": "retrieval.index",
    "IndexManager": "retrieval.index",
    "IndexNotVerifiedError": "retrieval.index",
    "IndexVersionRecord": "retrieval.store",
    "JobRecord": "retrieval.store",
    "MetadataStore": "retrieval.store",
    "NoLiveIndexError": "retrieval.index",
    "QueryError": "retrieval.search",
    "SearchFilters": "retrieval.search",
    "SearchHit": "retrieval.search",
    "SearchService": "retrieval.search",
    "SequenceFilters": "retrieval.store",
    "SequenceRecord": "retrieval.store",
    "StoreError": "retrieval.store",
    "UnknownRecordError": "retrieval.store",
    "UpsertReport": "retrieval.store",
    "VectorIndexError": "retrieval.index",
    "VectorSearcher": "retrieval.index",
    "VerificationReport": "retrieval.index",
    "choose_index_spec": "retrieval.index",
    "default_database_url": "retrieval.store",
    "new_version_name": "retrieval.index",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import an exported name from its subpackage on first access."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
