"""Choosing, building and tuning a FAISS index for L2-normalised embeddings (inner product = cosine).

Index choice by corpus size ``n`` (``choose_index_spec``):

- ``n < 50_000`` -> ``Flat``: exact; brute force over 50k x 128 floats costs a few ms a query.
- ``50_000 <= n < 1_000_000`` -> ``HNSW32,Flat``: graph search, sub-ms queries, full vectors kept
  (exact scores); ``efSearch`` tuned. Stays on CPU (FAISS has no GPU HNSW).
- ``n >= 1_000_000`` -> ``IVF{nlist},PQ{m}np,Refine(SQfp16)``: inverted lists with ``nlist`` ~ 4
  sqrt(n) (a power of two, 1024..65536), product codes of ``m`` sub-quantisers of ~4 dims (``np``:
  skip polysemous training, unused here and slow), and the top ``k * k_factor`` PQ candidates
  re-ranked with half-precision copies of the vectors (``Refine(SQfp16)``: cosine within ~1e-3 of
  exact, half the memory of float32 copies, which matters once the embedding carries the motion
  statistics: 264 dimensions); ``nprobe`` and ``k_factor`` tuned. ~``m`` + 2*dim bytes/vector.
  The coarse k-means trains on ~40 vectors per list (FAISS's own minimum is 39) for 10 iterations:
  at 1M x 128 that is 2.5x faster to build than 64 per list and 25 iterations, for <= 0.01 recall@10
  at the same ``nprobe`` (measured by ``posestyle bench retrieval``).

A ``recall_target`` of 1.0 always gives ``Flat``. Tuning measures recall@10 against exact search
on a sample of the corpus and keeps the cheapest setting that reaches the target with headroom:
half of the allowed miss (0.975 for a target of 0.95). Sampled corpus vectors are easier queries
than new ones (each finds its own graph node / list), and 100 of them leave about +-0.01 of
sampling noise: tuned exactly to 0.95 they gave 0.937-0.947 recall@10 on held-out queries at 100k
and 1M (``posestyle bench retrieval``).

FAISS ids are row positions (0..n-1) into the version's id map (``ids.json``), so no ``IDMap``
wrapper is needed and every index type takes the same id selectors.

Threads: a batch of at most ``SERIAL_MAX_QUERIES`` queries is searched on one OpenMP thread (the
setting is per calling thread, so concurrent searches do not disturb each other). FAISS splits work
by query, so a single query gains nothing from more threads, while every parallel region waits for
all its threads to be scheduled: on a busy 2-core machine that wait cost 5-20 ms per query (Flat,
IVF-PQ, small HNSW batches) against 0.1-6 ms of actual work (``posestyle bench retrieval``).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Sequence

import faiss
import numpy as np

from retrieval.index.errors import IndexBuildError

log = logging.getLogger(__name__)

FLAT_MAX = 50_000
HNSW_MAX = 1_000_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
INDEX_TYPES: tuple[str, ...] = ("Flat", "HNSW", "IVFPQ")   # the index families a user can ask for
PQ_FULL_BITS = 8          # 256 centroids per sub-quantiser once there are enough vectors to train them
PQ_MIN_BITS = 4           # 16 centroids: the smallest code worth having
TUNE_K = 10
TUNE_QUERIES = 100
TUNE_HEADROOM = 0.5           # tune to target + this share of (1 - target)
IVF_TRAIN_POINTS_PER_LIST = 40
IVF_KMEANS_ITERATIONS = 10

SERIAL_MAX_QUERIES = 16
# The refine step of the IVF-PQ spec: half-precision copies of the vectors (see the module doc).
REFINE = "Refine(SQfp16)"
EF_SEARCH_STEPS = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
K_FACTOR_STEPS = (4, 8, 16, 32)


def choose_index_spec(n: int, dim: int, recall_target: float = 0.95) -> str:
    """FAISS factory string for ``n`` vectors of ``dim`` dimensions (thresholds in the module doc)."""
    if n <= 0 or dim <= 0:
        raise IndexBuildError(f"need a positive number of vectors and dimensions, got n={n}, dim={dim}")
    if not 0.0 < recall_target <= 1.0:
        raise IndexBuildError(f"recall_target must be in (0, 1], got {recall_target}")
    if recall_target >= 1.0 or n < FLAT_MAX:
        return "Flat"
    if n < HNSW_MAX:
        return f"HNSW{HNSW_M},Flat"
    return ivf_pq_spec(n, dim)


def ivf_pq_spec(n: int, dim: int) -> str:
    """``IVF{nlist},PQ{m}x{bits}np,Refine(SQfp16)`` for ``n`` vectors: ``nlist`` ~ 4 sqrt(n), a power of
    two of at most 65536 and at most ``n / 39`` (so every list can train; this bound only bites below ~25k
    vectors); PQ codes of 4 to 8 bits (8 once there are 39 training vectors per centroid); re-ranking with
    half-precision vectors (``REFINE``)."""
    nlist = 2 ** max(0, round(math.log2(4.0 * math.sqrt(max(n, 1)))))
    nlist = int(min(nlist, 65536))
    while nlist > 1 and nlist * 39 > n:
        nlist //= 2
    bits = max(PQ_MIN_BITS, min(PQ_FULL_BITS, int(math.log2(max(n, 1) / 39)) if n >= 39 else 0))
    if n < 2 ** bits:
        raise IndexBuildError(f"an IVFPQ index needs at least {2 ** bits} vectors to train, got {n}; use Flat")
    return f"IVF{nlist},PQ{pq_subquantizers(dim)}x{bits}np,{REFINE}"


def index_type_spec(index_type: str, n: int, dim: int) -> str:
    """FAISS factory string of one of ``INDEX_TYPES`` for ``n`` vectors of ``dim`` dimensions."""
    if index_type == "Flat":
        return "Flat"
    if index_type == "HNSW":
        return f"HNSW{HNSW_M},Flat"
    if index_type == "IVFPQ":
        return ivf_pq_spec(n, dim)
    raise IndexBuildError(f"unknown index type {index_type!r}; choose one of {', '.join(INDEX_TYPES)}")


def pq_subquantizers(dim: int, dims_per_subquantizer: int = 4) -> int:
    """Number of PQ sub-quantisers: the divisor of ``dim`` closest to ``dim / dims_per_subquantizer``."""
    target = max(1.0, dim / dims_per_subquantizer)
    divisors = [m for m in range(1, dim + 1) if dim % m == 0]
    return min(divisors, key=lambda m: (abs(m - target), m))


def index_kind(index: faiss.Index) -> str:
    """``flat``, ``hnsw``, ``ivf`` (possibly under a refine step) or ``other``."""
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexRefine):
        return index_kind(index.base_index)
    if isinstance(index, faiss.IndexFlat):
        return "flat"
    if isinstance(index, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(index, faiss.IndexIVF):
        return "ivf"
    return "other"


def stores_exact_vectors(index: faiss.Index) -> bool:
    """True when ``reconstruct`` gives back the added vectors as they were (no quantiser codes)."""
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexRefine):
        return stores_exact_vectors(index.refine_index)
    if isinstance(index, faiss.IndexHNSW):
        return stores_exact_vectors(index.storage)
    return isinstance(index, (faiss.IndexFlat, faiss.IndexIVFFlat))


def _find(index: faiss.Index, cls: type) -> Any:
    index = faiss.downcast_index(index)
    if isinstance(index, cls):
        return index
    if isinstance(index, faiss.IndexRefine):
        return _find(index.base_index, cls)
    return None


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Float32 C-contiguous copy with unit L2 rows (zero rows are refused by the callers first)."""
    out = np.array(vectors, dtype=np.float32, order="C", copy=True)
    faiss.normalize_L2(out)
    return out


def build_faiss_index(spec: str, vectors: np.ndarray, *, seed: int = 0) -> faiss.Index:
    """Create ``spec`` with the inner-product metric, train it if needed, and add ``vectors`` (unit rows)."""
    n, dim = vectors.shape
    if spec.replace(" ", "").upper().startswith("IDMAP"):
        raise IndexBuildError(f"spec {spec!r}: leave out IDMap, ids are row positions into the id map")
    try:
        index = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise IndexBuildError(f"FAISS cannot build spec {spec!r}: {str(exc).splitlines()[-1]}") from exc
    hnsw = _find(index, faiss.IndexHNSW)
    if hnsw is not None:
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    if not index.is_trained:
        ivf = _find(index, faiss.IndexIVF)
        nlist = ivf.nlist if ivf is not None else 1
        if n < nlist:
            raise IndexBuildError(f"spec {spec!r} needs at least {nlist} vectors to train, got {n}")
        if ivf is not None:
            ivf.cp.niter = IVF_KMEANS_ITERATIONS
        rng = np.random.default_rng(seed)
        n_train = min(n, max(IVF_TRAIN_POINTS_PER_LIST * nlist, 10_000))
        train = vectors if n_train >= n else vectors[np.sort(rng.choice(n, n_train, replace=False))]
        index.train(np.ascontiguousarray(train))
    index.add(vectors)
    return index


@dataclass
class SearchParams:
    """Search-time knobs of an index (only those its type uses), as tuned at build time."""

    ef_search: int | None = None
    nprobe: int | None = None
    k_factor: int | None = None

    def to_json(self) -> dict[str, int]:
        return {k: v for k, v in (("efSearch", self.ef_search), ("nprobe", self.nprobe),
                                  ("k_factor", self.k_factor)) if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SearchParams":
        return cls(ef_search=data.get("efSearch"), nprobe=data.get("nprobe"), k_factor=data.get("k_factor"))


def default_search_params(index: faiss.Index) -> SearchParams:
    """Untuned starting point: the index's own settings."""
    hnsw = _find(index, faiss.IndexHNSW)
    ivf = _find(index, faiss.IndexIVF)
    refine = faiss.downcast_index(index)
    return SearchParams(
        ef_search=int(hnsw.hnsw.efSearch) if hnsw is not None else None,
        nprobe=int(ivf.nprobe) if ivf is not None else None,
        k_factor=int(refine.k_factor) if isinstance(refine, faiss.IndexRefine) else None,
    )


def can_widen(index: faiss.Index, params: SearchParams, widen: int, k: int) -> bool:
    """True while multiplying the search breadth by ``widen`` still visits more of the index."""
    hnsw = _find(index, faiss.IndexHNSW)
    ivf = _find(index, faiss.IndexIVF)
    if hnsw is not None and params.ef_search is not None:
        return max(params.ef_search * widen, k) < index.ntotal
    if ivf is not None and params.nprobe is not None:
        return params.nprobe * widen < ivf.nlist
    return False


def make_faiss_params(index: faiss.Index, params: SearchParams, *, selector: Any = None,
                      widen: int = 1) -> tuple[Any, list[Any]]:
    """FAISS ``SearchParameters`` for ``index`` carrying ``params`` (times ``widen``) and an id selector.

    Returns the parameters and the Python objects that must stay alive while the search runs."""
    keep: list[Any] = [selector]

    def build(ix: faiss.Index) -> Any:
        p: Any
        ix = faiss.downcast_index(ix)
        if isinstance(ix, faiss.IndexRefine):
            p = faiss.IndexRefineSearchParameters()
            p.k_factor = float(params.k_factor or ix.k_factor)
            base = build(ix.base_index)
            p.base_index_params = base
            keep.append(base)
            return p
        if isinstance(ix, faiss.IndexHNSW):
            p = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # missing from faiss's stubs
            p.efSearch = int(min(max((params.ef_search or ix.hnsw.efSearch) * widen, 1), max(ix.ntotal, 1)))
        elif isinstance(ix, faiss.IndexIVF):
            p = faiss.SearchParametersIVF()
            p.nprobe = int(min((params.nprobe or ix.nprobe) * widen, ix.nlist))
        else:
            p = faiss.SearchParameters()
        if selector is not None:
            p.sel = selector
        return p

    top = build(index)
    keep.append(top)
    return top, keep


@contextmanager
def openmp_threads(n: int | None) -> Iterator[None]:
    """FAISS runs on ``n`` OpenMP threads inside (None: unchanged). OpenMP keeps this setting per
    calling thread, so other threads' searches are unaffected."""
    previous = faiss.omp_get_max_threads()
    if n is not None:
        faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        if n is not None:
            faiss.omp_set_num_threads(previous)


def search_with(index: faiss.Index, queries: np.ndarray, k: int, params: SearchParams, *,
                selector: Any = None, widen: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """One FAISS search with the given knobs and optional selector (small batches on one thread,
    see the module doc)."""
    faiss_params, keep = make_faiss_params(index, params, selector=selector, widen=widen)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    with openmp_threads(1 if queries.shape[0] <= SERIAL_MAX_QUERIES else None):
        scores, labels = index.search(queries, k, params=faiss_params)
    del keep
    return scores, labels


def exact_search(queries: np.ndarray, vectors: np.ndarray, rows: np.ndarray,
                 k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-``k`` of ``queries`` over ``vectors`` (labelled ``rows``; -1 past the end)."""
    k = min(k, vectors.shape[0])
    with openmp_threads(1 if queries.shape[0] <= SERIAL_MAX_QUERIES else None):
        scores, local = faiss.knn(np.ascontiguousarray(queries, dtype=np.float32),
                                  np.ascontiguousarray(vectors, dtype=np.float32), k,
                                  metric=faiss.METRIC_INNER_PRODUCT)
    return scores, np.where(local >= 0, rows[np.clip(local, 0, None)], -1)


def recall_at_k(found: Sequence[Sequence[int]] | np.ndarray, truth: np.ndarray, k: int = TUNE_K) -> float:
    """Mean over queries of |found top-k  intersect  true top-k| / k (ids are row positions)."""
    hits = sum(len(set(np.asarray(f)[:k].tolist()) & set(np.asarray(t)[:k].tolist())) for f, t in zip(found, truth))
    return hits / (k * len(truth))


def _without_self(labels: np.ndarray, query_rows: np.ndarray, k: int) -> list[list[int]]:
    """Each row's first ``k`` found positions other than the query's own row (and -1)."""
    return [[int(p) for p in row if p >= 0 and p != q][:k] for row, q in zip(labels, query_rows)]


def _exact_neighbours(vectors: np.ndarray, query_rows: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k positions (self excluded) for the sampled rows."""
    _, labels = exact_search(vectors[query_rows], vectors, np.arange(len(vectors)), k + 1)
    return np.array(_without_self(labels, query_rows, k))


def _recall(index: faiss.Index, vectors: np.ndarray, query_rows: np.ndarray, truth: np.ndarray,
            params: SearchParams, k: int) -> float:
    _, labels = search_with(index, vectors[query_rows], k + 1, params)
    return recall_at_k(_without_self(labels, query_rows, k), truth, k)


# Not faiss.ParameterSpace.explore / OperatingPoints: explore ranks settings by wall time measured
# while it runs (noisy on a shared machine, so the choice would change run to run) and sets knobs on
# the shared index, which concurrent searches would see. Each knob here costs more as it grows, so
# walking the candidates in order finds the cheapest passing one deterministically, and the result
# travels as per-query SearchParameters (make_faiss_params).
def tune_search_params(index: faiss.Index, vectors: np.ndarray, recall_target: float, *,
                       seed: int = 0) -> tuple[SearchParams, float]:
    """Cheapest ``efSearch`` / (``nprobe``, ``k_factor``) whose recall@10 on sampled corpus queries
    (self excluded) reaches ``recall_target`` plus headroom (module doc), else the cheapest reaching
    ``recall_target`` itself; returns it and the recall measured (1.0 for Flat)."""
    params = default_search_params(index)
    kind = index_kind(index)
    n = vectors.shape[0]
    k = min(TUNE_K, n - 1)
    if kind in ("flat", "other") or k < 1:
        return params, 1.0
    rng = np.random.default_rng(seed)
    query_rows = np.sort(rng.choice(n, min(TUNE_QUERIES, n), replace=False))
    truth = _exact_neighbours(vectors, query_rows, k)
    candidates: list[SearchParams] = []
    if kind == "hnsw":
        candidates = [SearchParams(ef_search=ef, k_factor=params.k_factor) for ef in EF_SEARCH_STEPS]
    else:
        nlist = _find(index, faiss.IndexIVF).nlist
        probes = sorted({min(2 ** i, nlist) for i in range(int(math.log2(nlist)) + 2)})
        factors = K_FACTOR_STEPS if params.k_factor is not None else (None,)
        candidates = [SearchParams(nprobe=p, k_factor=f) for p in probes for f in factors]
    with_headroom = recall_target + TUNE_HEADROOM * (1.0 - recall_target)
    best, best_recall = candidates[-1], -1.0
    first_reaching: tuple[SearchParams, float] | None = None
    for candidate in candidates:
        recall = _recall(index, vectors, query_rows, truth, candidate, k)
        if recall > best_recall:
            best, best_recall = candidate, recall
        if recall >= with_headroom:
            return candidate, recall
        if recall >= recall_target and first_reaching is None:
            first_reaching = (candidate, recall)
    if first_reaching is not None:
        return first_reaching
    log.warning("index %s reaches recall@%d %.3f at most, below the target %.3f", kind, k, best_recall,
                recall_target)
    return best, best_recall
