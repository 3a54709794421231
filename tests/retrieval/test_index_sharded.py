"""Sharded IVF-PQ: shards encoded apart and merged give the index one build would, and exact
re-ranking from the embedding rows finds the true neighbours when every list and candidate is read."""
from __future__ import annotations

import faiss
import numpy as np
import pytest

from retrieval.index.errors import IndexBuildError
from retrieval.index.sharded import (
    encode_shard,
    ivf_pq_codes_spec,
    merge_shards,
    search_reranked,
    train_ivf_pq,
    training_sample,
)

N, DIM, NLIST = 3000, 32, 16


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((20, DIM))
    x = centres[rng.integers(20, size=N)] + 0.4 * rng.standard_normal((N, DIM))
    x = x.astype(np.float32)
    faiss.normalize_L2(x)
    return x


def test_codes_spec_is_the_product_spec_without_refine():
    assert ivf_pq_codes_spec(1_000_000, 128) == "IVF4096,PQ32x8np"
    with pytest.raises(IndexBuildError, match="not a plain IVF"):
        train_ivf_pq("IVF16,PQ8np,RFlat", np.zeros((100, DIM), np.float32))


def test_merged_shards_equal_one_index_built_whole(vectors):
    sample = vectors[training_sample(N, NLIST)]
    trained = train_ivf_pq(f"IVF{NLIST},PQ8np", sample)
    bounds = [0, 1000, 2200, N]
    merged = merge_shards(trained, [encode_shard(trained, vectors[a:b], a) for a, b in zip(bounds, bounds[1:])])
    whole = encode_shard(trained, vectors, 0)
    assert merged.ntotal == whole.ntotal == N
    queries = vectors[:50] + 0.01
    params = faiss.SearchParametersIVF(nprobe=4)
    merged_scores, merged_ids = merged.search(queries, 10, params=params)
    whole_scores, whole_ids = whole.search(queries, 10, params=params)
    np.testing.assert_array_equal(np.sort(merged_ids, axis=1), np.sort(whole_ids, axis=1))
    np.testing.assert_allclose(np.sort(merged_scores, axis=1), np.sort(whole_scores, axis=1), atol=1e-5)


def test_reranking_over_every_list_and_candidate_is_exact(vectors):
    trained = train_ivf_pq(f"IVF{NLIST},PQ8np", vectors[training_sample(N, NLIST)])
    merged = merge_shards(trained, [encode_shard(trained, vectors[:1500], 0),
                                    encode_shard(trained, vectors[1500:], 1500)])
    queries = np.ascontiguousarray(vectors[::100])
    scores, ids = search_reranked(merged, queries, 10, nprobe=NLIST, k_factor=N // 10,
                                  vectors_of=lambda rows: vectors[rows])
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    np.testing.assert_array_equal(ids, truth)
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ vectors.T, truth, axis=1), atol=1e-5)
