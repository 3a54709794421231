"""IVF-PQ past one machine: train once on a sample, encode each embedding shard apart, merge the lists.

At 100 M vectors the float32 copy an exact refine step would keep (51 GB at 128 dimensions) no longer
fits a serving process. The plan measured by the retrieval bench:

1. ``train_ivf_pq``: train the coarse quantiser and PQ codebooks on a sample (``IVF_TRAIN_POINTS_PER_LIST``
   vectors per list), once;
2. ``encode_shard``: every worker encodes its own shard into a copy of the trained, empty index,
   ids = global row numbers (shards are independent, so this scales with workers);
3. ``merge_shards``: the inverted lists of the shard indexes are appended into one index
   (``IndexIVF.merge_from``; for sizes beyond RAM FAISS's on-disk inverted lists merge the same way);
4. ``search_reranked``: PQ search for ``k x k_factor`` candidates, then exact inner products from the
   embedding shards themselves (memory-mapped), so no second copy of the vectors is held.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

import faiss
import numpy as np

from retrieval.index.errors import IndexBuildError
from retrieval.index.spec import (
    IVF_KMEANS_ITERATIONS,
    IVF_TRAIN_POINTS_PER_LIST,
    REFINE,
    ivf_pq_spec,
    openmp_threads,
)


def ivf_pq_codes_spec(n: int, dim: int) -> str:
    """The product's IVF-PQ spec for ``n`` vectors without its refine step."""
    return ivf_pq_spec(n, dim).replace(f",{REFINE}", "")


def train_ivf_pq(spec: str, sample: np.ndarray, *, seed: int = 0) -> faiss.IndexIVF:
    """An empty, trained IVF-PQ index (inner product) of ``spec``, trained on unit rows ``sample``."""
    index = faiss.index_factory(sample.shape[1], spec, faiss.METRIC_INNER_PRODUCT)
    if not isinstance(index, faiss.IndexIVF):      # a refine step makes it an IndexRefine
        raise IndexBuildError(f"spec {spec!r} is not a plain IVF index (no refine step)")
    if sample.shape[0] < index.nlist:
        raise IndexBuildError(f"spec {spec!r} needs at least {index.nlist} training vectors, got {sample.shape[0]}")
    index.cp.niter = IVF_KMEANS_ITERATIONS
    index.cp.seed = seed
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    return index


def training_sample(n: int, nlist: int, seed: int = 0) -> np.ndarray:
    """Sorted row numbers of the training sample for ``n`` vectors and ``nlist`` lists."""
    size = min(n, IVF_TRAIN_POINTS_PER_LIST * nlist)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def encode_shard(trained: faiss.IndexIVF, vectors: np.ndarray, first_id: int) -> faiss.IndexIVF:
    """A copy of ``trained`` holding ``vectors`` as ids ``first_id, first_id + 1, ...``."""
    shard = cast(faiss.IndexIVF, faiss.clone_index(trained))
    ids = np.arange(first_id, first_id + vectors.shape[0], dtype=np.int64)
    shard.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
    return shard


def merge_shards(trained: faiss.IndexIVF, shards: Sequence[faiss.IndexIVF]) -> faiss.IndexIVF:
    """One index whose inverted lists are the shards' lists appended (shards are emptied)."""
    merged = cast(faiss.IndexIVF, faiss.clone_index(trained))
    for shard in shards:
        merged.merge_from(shard, 0)
    return merged


def search_reranked(
    index: faiss.IndexIVF,
    queries: np.ndarray,
    k: int,
    *,
    nprobe: int,
    k_factor: int,
    vectors_of: Callable[[np.ndarray], np.ndarray],
    threads: int | None = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` (scores, ids) per query: ``k x k_factor`` PQ candidates re-scored exactly with
    ``vectors_of(ids)`` (the embedding rows of those global ids)."""
    params = faiss.SearchParametersIVF()
    params.nprobe = nprobe
    with openmp_threads(threads):
        _, candidates = index.search(np.ascontiguousarray(queries, dtype=np.float32), k * k_factor, params=params)
    scores = np.full((queries.shape[0], k), -np.inf, dtype=np.float32)
    ids = np.full((queries.shape[0], k), -1, dtype=np.int64)
    for q, row in enumerate(candidates):
        row = row[row >= 0]
        if row.size == 0:
            continue
        exact = vectors_of(row) @ queries[q]
        top = np.argsort(-exact, kind="stable")[:k]
        scores[q, : top.size], ids[q, : top.size] = exact[top], row[top]
    return scores, ids
