"""``SearchService``: style search over the live index, by sequence id, vector, pose sequence or file.

Hits carry the store's metadata. Filters (label, collection, season, model, tags) are resolved by
the store into allowed rows, and the index returns exactly ``k`` filtered hits whenever at least
``k`` sequences pass. The live index is re-opened when the ``LIVE`` pointer moves (a promotion by
a re-indexing job is picked up by a running app without a restart).
"""
from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, overload, runtime_checkable

import numpy as np

from retrieval.index import FilterStrategy, IndexManager, VectorSearcher
from retrieval.index.errors import IndexCorruptError, VectorIndexError
from retrieval.search.errors import QueryError
from retrieval.store import MetadataStore, SequenceFilters

if TYPE_CHECKING:
    from encoder.data.sequence import PoseSequence
    from encoder.data.video import VideoOptions

log = logging.getLogger(__name__)

SearchFilters = SequenceFilters
MAX_K = 10_000
_MAX_MISSING_ROUNDS = 8


def freeze_loaded_objects() -> None:
    """Keep what a serving process has loaded so far (encoder, index id maps, store and library
    state) out of the cyclic garbage collector's full passes (``gc.freeze``). Call it once the live
    index and its encoder are open: they live as long as the process, and a full collection over
    them paused single queries by 50-150 ms at 1M sequences. Objects made later are collected as usual."""
    gc.collect()
    gc.freeze()


@runtime_checkable
class Embedder(Protocol):
    """What search needs from an encoder (``encoder.inference.StyleEncoder`` satisfies it)."""

    @property
    def version(self) -> str: ...

    def embed(self, seqs: Sequence["PoseSequence"]) -> np.ndarray: ...


@dataclass(frozen=True)
class SearchHit:
    """One result: the sequence, its cosine similarity to the query, 1-based rank, and store metadata."""

    sequence_id: str
    score: float
    rank: int
    metadata: dict[str, Any] = field(default_factory=dict)


class SearchService:
    """Answers style queries against the live index, joining hits with the metadata store."""

    def __init__(self, store: MetadataStore, index_manager: IndexManager, embedder: Embedder | None = None, *,
                 filter_strategy: FilterStrategy = "auto") -> None:
        """``embedder`` is only needed for ``search_by_sequence`` / ``search_by_file``."""
        self.store = store
        self.index_manager = index_manager
        self.embedder = embedder
        self.filter_strategy: FilterStrategy = filter_strategy
        self._lock = threading.Lock()
        self._searcher: VectorSearcher | None = None
        self._loaded_pointer: str | None = None

    # -- the live index -----------------------------------------------------------------------
    def searcher(self) -> VectorSearcher:
        """The searcher over the live version, re-opened if the live pointer moved since last time."""
        try:
            pointer = self.index_manager.live_version()
        except IndexCorruptError:
            pointer = None
        with self._lock:
            if self._searcher is None or pointer != self._loaded_pointer:
                self._recover()
                self._searcher = self.index_manager.open_live()
                self._loaded_pointer = pointer
            return self._searcher

    def _recover(self) -> None:
        """Sweep leftovers and repair the LIVE file when no job runs (see ``IndexManager.recover``)."""
        try:
            self.index_manager.recover_if_idle()
        except (OSError, VectorIndexError) as exc:   # a read-only root still serves
            log.warning("index recovery skipped: %s", exc)

    def refresh(self) -> VectorSearcher:
        """Forget the cached index and open the live one again."""
        with self._lock:
            self._searcher = None
        return self.searcher()

    # -- queries ------------------------------------------------------------------------------
    @overload
    def search_by_vector(self, vectors: Sequence[float], k: int = 10,
                         filters: SearchFilters | None = None) -> list[SearchHit]: ...

    @overload
    def search_by_vector(self, vectors: np.ndarray, k: int = 10,
                         filters: SearchFilters | None = None) -> list[SearchHit] | list[list[SearchHit]]: ...

    def search_by_vector(self, vectors: Any, k: int = 10,
                         filters: SearchFilters | None = None) -> list[SearchHit] | list[list[SearchHit]]:
        """Nearest sequences to an embedding: a (d,) vector gives one hit list, an (n, d) batch n lists."""
        if not _is_numeric(vectors):
            raise QueryError("query vector must be numeric")
        array = np.asarray(vectors, dtype=np.float64)
        if array.ndim == 1:
            return self.search_by_vectors(array[None, :], k, filters)[0]
        return self.search_by_vectors(array, k, filters)

    def search_by_vectors(self, vectors: np.ndarray, k: int = 10,
                          filters: SearchFilters | None = None) -> list[list[SearchHit]]:
        """Batch form of ``search_by_vector``: one hit list per row of ``vectors`` (n, d)."""
        searcher = self.searcher()
        queries = _check_queries(vectors, searcher)
        return self._run(searcher, queries, _check_k(k), filters, exclude=None)

    def search_by_id(self, sequence_id: str, k: int = 10,
                     filters: SearchFilters | None = None) -> list[SearchHit]:
        """Sequences most similar in style to an indexed sequence (the sequence itself excluded)."""
        return self.search_by_ids([sequence_id], k, filters)[0]

    def search_by_ids(self, sequence_ids: Sequence[str], k: int = 10,
                      filters: SearchFilters | None = None) -> list[list[SearchHit]]:
        """Batch form of ``search_by_id``: one hit list per id."""
        if isinstance(sequence_ids, str):
            raise QueryError("search_by_ids takes a list of ids; use search_by_id for one")
        k = _check_k(k)
        searcher = self.searcher()
        rows = []
        for sequence_id in sequence_ids:
            row = searcher.position_of(sequence_id) if isinstance(sequence_id, str) else None
            if row is None:
                if isinstance(sequence_id, str) and self.store.get_sequence(sequence_id) is not None:
                    raise QueryError(f"sequence {sequence_id!r} is not in index version {searcher.version} yet; "
                                     f"re-index to search by it")
                raise QueryError(f"unknown sequence id {sequence_id!r}")
            rows.append(row)
        if not rows:
            return []
        queries = searcher.vectors(rows)
        return self._run(searcher, queries, k, filters, exclude=[{r} for r in rows])

    @overload
    def search_by_sequence(self, sequence: "PoseSequence", k: int = 10,
                           filters: SearchFilters | None = None) -> list[SearchHit]: ...

    @overload
    def search_by_sequence(self, sequence: Sequence["PoseSequence"], k: int = 10,
                           filters: SearchFilters | None = None) -> list[list[SearchHit]]: ...

    def search_by_sequence(self, sequence: Any, k: int = 10,
                           filters: SearchFilters | None = None) -> list[SearchHit] | list[list[SearchHit]]:
        """Embed a pose sequence (or a list of them) with the embedder and search by its vector."""
        single = not isinstance(sequence, (list, tuple))
        sequences = [sequence] if single else list(sequence)
        k = _check_k(k)
        if not sequences:
            return []
        embedder = self._embedder()
        searcher = self.searcher()
        if embedder.version != searcher.encoder_version:
            raise QueryError(f"embedder {embedder.version} does not match encoder {searcher.encoder_version} "
                             f"of index version {searcher.version}; load that encoder or re-index")
        vectors = np.asarray(embedder.embed(sequences))
        if vectors.ndim != 2 or vectors.shape[0] != len(sequences):
            raise QueryError(f"embedder returned shape {vectors.shape} for {len(sequences)} sequences")
        results = self._run(searcher, _check_queries(vectors, searcher), k, filters, exclude=None)
        return results[0] if single else results

    def search_by_file(self, path: str | Path, k: int = 10, filters: SearchFilters | None = None,
                       video: "VideoOptions | None" = None) -> list[list[SearchHit]]:
        """Read a pose file or video (any format ``read_pose_file`` supports; ``video`` sets how a clip is
        read) and search with each sequence in it: one hit list per sequence, in file order. Unreadable
        files raise ``PoseDataError``."""
        from encoder.data.readers import read_pose_file

        self._embedder()
        sequences = read_pose_file(path, video=video)
        if not sequences:
            raise QueryError(f"{path}: no pose sequence found in the file")
        return self.search_by_sequence(list(sequences), k, filters)

    # -- internals ----------------------------------------------------------------------------
    def _embedder(self) -> Embedder:
        if self.embedder is None:
            raise QueryError("searching by pose sequence or file needs an encoder; none is loaded")
        return self.embedder

    def _run(self, searcher: VectorSearcher, queries: np.ndarray, k: int, filters: SearchFilters | None,
             exclude: list[set[int]] | None) -> list[list[SearchHit]]:
        """Search, join hits with store metadata, and search again past hits the store no longer has."""
        allowed = None
        if filters is not None and not isinstance(filters, SequenceFilters):
            raise QueryError(f"filters must be a SearchFilters, got {type(filters).__name__}")
        if filters is not None and not filters.is_empty:
            allowed = searcher.positions(self.store.sequence_ids(filters))
        excluded = exclude if exclude is not None else [set() for _ in range(queries.shape[0])]
        gone: set[int] = set()
        for _ in range(_MAX_MISSING_ROUNDS):
            hits = searcher.search(queries, k, allowed=allowed, exclude=[e | gone for e in excluded],
                                   strategy=self.filter_strategy)
            rows = {int(p) for p in hits.positions.ravel() if p >= 0}
            records = self.store.get_sequences(searcher.sequence_ids[p] for p in rows)
            missing = {p for p in rows if searcher.sequence_ids[p] not in records}
            if not missing:
                break
            gone |= missing
        results: list[list[SearchHit]] = []
        for scores, positions in zip(hits.scores, hits.positions):
            row_hits: list[SearchHit] = []
            for score, position in zip(scores, positions):
                if position < 0:
                    break
                record = records.get(searcher.sequence_ids[position])
                if record is None:
                    continue
                row_hits.append(SearchHit(sequence_id=record.id, score=float(score), rank=len(row_hits) + 1,
                                          metadata=record.metadata()))
            results.append(row_hits)
        return results


def _is_numeric(value: Any) -> bool:
    try:
        return np.issubdtype(np.asarray(value).dtype, np.number)
    except (TypeError, ValueError):
        return False


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise QueryError(f"k must be a positive integer, got {k!r}")
    if k <= 0:
        raise QueryError(f"k must be a positive integer, got {k}")
    if k > MAX_K:
        raise QueryError(f"k={k} is over the limit of {MAX_K}")
    return int(k)


def _check_queries(vectors: Any, searcher: VectorSearcher) -> np.ndarray:
    """(n, d) float32 unit rows, or a one-line ``QueryError`` saying what is wrong."""
    if not _is_numeric(vectors):
        raise QueryError("query vectors must be numeric")
    array = np.asarray(vectors, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0:
        raise QueryError(f"queries must be a (d,) vector or a non-empty (n, d) batch, got shape {array.shape}")
    if array.shape[1] != searcher.dim:
        raise QueryError(f"query has dimension {array.shape[1]} but index version {searcher.version} "
                         f"holds {searcher.dim}-dimensional vectors")
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        raise QueryError(f"query {int(np.flatnonzero(~finite)[0])} contains NaN or inf")
    norms = np.linalg.norm(array, axis=1)
    if (norms < 1e-12).any():
        raise QueryError(f"query {int(np.flatnonzero(norms < 1e-12)[0])} is a zero vector")
    return np.ascontiguousarray(array / norms[:, None], dtype=np.float32)
