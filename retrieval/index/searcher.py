"""``VectorSearcher``: k-NN over one loaded index version, with exact-count filtered search.

A filtered search returns exactly ``min(k, allowed)`` hits. Ways to restrict the search:

- ``exact``: brute force over the allowed vectors; ``auto`` picks it when at most
  ``exact_subset_max`` rows are allowed (cheaper than a graph or list search, and exact).
- ``selector``: FAISS ``IDSelectorBatch`` inside ``SearchParameters`` (Flat, HNSW, IVF on CPU);
  ``efSearch`` / ``nprobe`` start scaled by count/allowed (the k-th allowed neighbour is about the
  (k * count/allowed)-th overall); a row that comes back short is searched again with them doubled.
- ``overfetch``: plain search for twice as many neighbours as should hold ``k`` allowed ones, the
  breadth scaled as above, dropping rows not allowed and doubling the fetch (then the breadth)
  until enough survive; used where selectors are unsupported (GPU indexes).

Either way a row still short once the index cannot widen any further is answered exactly by brute
force over the allowed vectors, so the hit count never depends on the approximation.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

import faiss
import numpy as np

from retrieval.index.spec import (
    SearchParams,
    can_widen,
    exact_search,
    index_kind,
    search_with,
    stores_exact_vectors,
)
from retrieval.index.storage import IndexFiles

log = logging.getLogger(__name__)

FilterStrategy = Literal["auto", "exact", "selector", "overfetch"]
EXACT_SUBSET_MAX = 16_384
GPU_MAX_K = 2048            # FAISS GPU k-selection limit; larger fetches run on the CPU copy


@dataclass
class RawHits:
    """Positions (-1 = no hit) and inner-product scores per query, best first, and how they were found."""

    scores: np.ndarray
    positions: np.ndarray
    strategy: str
    exact_rows: int = 0          # rows answered by the brute-force fallback


@dataclass
class VectorSearcher:
    """A loaded, checksum-verified index version ready to search."""

    files: IndexFiles
    use_gpu: bool | None = None
    fallback_from: str | None = None       # set when serving in place of a corrupt live version
    fallback_reason: str | None = None
    exact_subset_max: int = EXACT_SUBSET_MAX
    _position: dict[str, int] = field(init=False, repr=False)
    _gpu_index: Any = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self._position = {sid: i for i, sid in enumerate(self.files.sequence_ids)}
        self.params = SearchParams.from_json(self.manifest.get("search_params", {}))
        self.kind = index_kind(self.index)
        self.exact_vectors = stores_exact_vectors(self.index)
        self._maybe_move_to_gpu()

    # -- description --------------------------------------------------------------------------
    @property
    def index(self) -> faiss.Index:
        return self.files.index

    @property
    def manifest(self) -> dict[str, Any]:
        return self.files.manifest

    @property
    def version(self) -> str:
        return self.files.version

    @property
    def encoder_version(self) -> str:
        return str(self.manifest.get("encoder_version", ""))

    @property
    def spec(self) -> str:
        return str(self.manifest["spec"])

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @property
    def count(self) -> int:
        return int(self.index.ntotal)

    @property
    def path(self) -> Path:
        return self.files.path

    @property
    def sequence_ids(self) -> list[str]:
        return self.files.sequence_ids

    @property
    def on_gpu(self) -> bool:
        return self._gpu_index is not None

    @property
    def supports_selector(self) -> bool:
        """Whether the searching device takes FAISS id selectors (GPU indexes do not: over-fetch there;
        selector and widened searches run on the CPU copy)."""
        return not self.on_gpu

    def position_of(self, sequence_id: str) -> int | None:
        """Row of ``sequence_id`` in this index, or None."""
        return self._position.get(sequence_id)

    def positions(self, sequence_ids: Iterable[str]) -> np.ndarray:
        """Sorted int64 rows of those ids that this index holds (others are ignored)."""
        rows = [self._position[s] for s in sequence_ids if s in self._position]
        return np.unique(np.asarray(rows, dtype=np.int64))

    def vectors(self, positions: Sequence[int] | np.ndarray) -> np.ndarray:
        """The stored (unit) vectors at ``positions``."""
        rows = np.ascontiguousarray(positions, dtype=np.int64)
        if rows.size == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.index.reconstruct_batch(rows)

    # -- GPU ----------------------------------------------------------------------------------
    def _maybe_move_to_gpu(self) -> None:
        wanted = self.use_gpu if self.use_gpu is not None else True
        if not wanted or self.kind not in ("flat", "ivf") or not hasattr(faiss, "index_cpu_to_all_gpus"):
            return
        if faiss.get_num_gpus() <= 0:
            return
        try:
            gpu_index = faiss.index_cpu_to_all_gpus(self.index)
            if self.params.nprobe is not None:
                faiss.GpuParameterSpace().set_index_parameter(gpu_index, "nprobe", self.params.nprobe)
            self._gpu_index = gpu_index
            log.info("index %s: searching on %d GPU(s)", self.version, faiss.get_num_gpus())
        except (RuntimeError, AttributeError) as exc:
            log.warning("index %s stays on CPU: %s", self.version, str(exc).splitlines()[-1] if str(exc) else exc)

    # -- search -------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None,
               exclude: Sequence[Iterable[int]] | None = None,
               strategy: FilterStrategy = "auto") -> RawHits:
        """Top-``k`` rows for each unit query (n, d): only ``allowed`` rows if given, never the rows in
        ``exclude[i]`` for query ``i``. Each row has ``min(k, rows available)`` hits, then -1 padding."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        n = queries.shape[0]
        excluded = [set(int(p) for p in e) for e in exclude] if exclude is not None else [set() for _ in range(n)]
        if len(excluded) != n:
            raise ValueError("exclude needs one set of rows per query")
        if allowed is not None:
            allowed = np.unique(np.asarray(allowed, dtype=np.int64))
            allowed = allowed[(allowed >= 0) & (allowed < self.count)]
        total = self.count if allowed is None else int(allowed.size)
        if strategy == "auto":
            if allowed is not None and total <= self.exact_subset_max:
                chosen = "exact"
            else:
                chosen = "selector" if self.supports_selector else "overfetch"
        else:
            chosen = strategy
        fetch = min(k + max((len(e) for e in excluded), default=0), total)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        positions = np.full((n, k), -1, dtype=np.int64)
        if n == 0 or fetch == 0:
            return RawHits(scores, positions, chosen)
        if chosen == "exact":
            candidates = np.arange(self.count, dtype=np.int64) if allowed is None else allowed
            got_scores, got_rows = exact_search(queries, self.vectors(candidates), candidates, fetch)
            exact_rows = n
        elif chosen == "selector" or allowed is None:
            got_scores, got_rows, exact_rows = self._search_selector(queries, fetch, allowed)
        else:
            got_scores, got_rows, exact_rows = self._search_overfetch(queries, fetch, allowed)
        for i in range(n):
            keep = [(s, p) for s, p in zip(got_scores[i], got_rows[i]) if p >= 0 and int(p) not in excluded[i]][:k]
            if keep:
                scores[i, :len(keep)] = [s for s, _ in keep]
                positions[i, :len(keep)] = [p for _, p in keep]
        return RawHits(scores, positions, chosen, exact_rows)

    def _plain(self, queries: np.ndarray, k: int, widen: int, selector: Any = None) -> tuple[np.ndarray, np.ndarray]:
        if self._gpu_index is not None and selector is None and widen == 1 and k <= GPU_MAX_K:
            return self._gpu_index.search(queries, k)
        return search_with(self.index, queries, k, self.params, selector=selector, widen=widen)

    def _initial_widen(self, allowed: np.ndarray | None) -> int:
        """The k-th allowed neighbour is about the (k * count / allowed)-th overall, so search as wide as
        the tuned setting would for that many: efSearch / nprobe times count/allowed (a power of two)."""
        if allowed is None or allowed.size == 0 or self.kind not in ("hnsw", "ivf"):
            return 1
        return 2 ** max(0, math.ceil(math.log2(self.count / allowed.size)))

    def _search_selector(self, queries: np.ndarray, fetch: int,
                         allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, int]:
        """Selector search (or plain search when nothing is filtered), widening short rows."""
        selector = faiss.IDSelectorBatch(allowed) if allowed is not None else None
        widen = self._initial_widen(allowed)
        scores, rows = self._plain(queries, fetch, widen, selector)
        short = np.flatnonzero((rows >= 0).sum(axis=1) < fetch)
        while short.size and can_widen(self.index, self.params, widen, fetch):
            widen *= 2
            more_scores, more_rows = self._plain(queries[short], fetch, widen, selector)
            scores[short], rows[short] = more_scores, more_rows
            short = short[(more_rows >= 0).sum(axis=1) < fetch]
        return self._finish_exactly(queries, fetch, allowed, scores, rows, short)

    def _search_overfetch(self, queries: np.ndarray, fetch: int,
                          allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Unfiltered search for more than ``fetch`` rows, keeping allowed ones; doubles until enough."""
        n = queries.shape[0]
        scores = np.full((n, fetch), -np.inf, dtype=np.float32)
        rows = np.full((n, fetch), -1, dtype=np.int64)
        pending = np.arange(n)
        expected_needed = math.ceil(fetch * self.count / max(allowed.size, 1))  # allowed rows come at that rate
        request, widen = min(max(2 * expected_needed, fetch + 16), self.count), self._initial_widen(allowed)
        while pending.size:
            got_scores, got_rows = self._plain(queries[pending], request, widen)
            ok = np.isin(got_rows, allowed) & (got_rows >= 0)
            still: list[int] = []
            for j, i in enumerate(pending):
                kept = np.flatnonzero(ok[j])[:fetch]
                scores[i, :kept.size], rows[i, :kept.size] = got_scores[j, kept], got_rows[j, kept]
                if kept.size < fetch:
                    still.append(int(i))
            pending = np.asarray(still, dtype=np.int64)
            if request < self.count:
                request = min(request * 2, self.count)
            elif can_widen(self.index, self.params, widen, request):
                widen *= 2
            else:
                break
        return self._finish_exactly(queries, fetch, allowed, scores, rows, pending)

    def _finish_exactly(self, queries: np.ndarray, fetch: int, allowed: np.ndarray | None,
                        scores: np.ndarray, rows: np.ndarray, short: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Brute-force the rows still short of hits over the allowed vectors."""
        if short.size == 0:
            return scores, rows, 0
        candidates = np.arange(self.count, dtype=np.int64) if allowed is None else allowed
        exact_scores, exact_rows = exact_search(queries[short], self.vectors(candidates), candidates, fetch)
        scores[short], rows[short] = exact_scores, exact_rows
        log.debug("index %s: %d query rows answered by exact fallback", self.version, short.size)
        return scores, rows, int(short.size)

