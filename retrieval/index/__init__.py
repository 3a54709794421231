"""Versioned FAISS indexes over L2-normalised embeddings: spec choice, atomic save/load, verify, promote, search."""
from retrieval.index.errors import (
    IndexBuildError,
    IndexBusyError,
    IndexCorruptError,
    IndexNotVerifiedError,
    NoLiveIndexError,
    VectorIndexError,
)
from retrieval.index.manager import IndexManager, VerificationReport, new_version_name
from retrieval.index.searcher import FilterStrategy, RawHits, VectorSearcher
from retrieval.index.spec import (
    FLAT_MAX,
    HNSW_MAX,
    SearchParams,
    build_faiss_index,
    choose_index_spec,
    exact_search,
    normalize_rows,
    recall_at_k,
    tune_search_params,
)
from retrieval.index.storage import IndexFiles, load_index_version, save_index_version

__all__ = [
    "FLAT_MAX",
    "HNSW_MAX",
    "FilterStrategy",
    "IndexBuildError",
    "IndexBusyError",
    "IndexCorruptError",
    "IndexFiles",
    "IndexManager",
    "IndexNotVerifiedError",
    "NoLiveIndexError",
    "RawHits",
    "SearchParams",
    "VectorIndexError",
    "VectorSearcher",
    "VerificationReport",
    "build_faiss_index",
    "choose_index_spec",
    "exact_search",
    "load_index_version",
    "new_version_name",
    "normalize_rows",
    "recall_at_k",
    "save_index_version",
    "tune_search_params",
]
