"""Style search over the live index: by sequence id, embedding vector, pose sequence or pose file."""
from retrieval.search.errors import QueryError
from retrieval.search.service import (
    MAX_K,
    Embedder,
    SearchFilters,
    SearchHit,
    SearchService,
    freeze_loaded_objects,
)

__all__ = ["MAX_K", "Embedder", "QueryError", "SearchFilters", "SearchHit", "SearchService", "freeze_loaded_objects"]
