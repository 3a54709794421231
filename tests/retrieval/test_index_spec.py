"""Index choice by corpus size, and recall of Flat / HNSW / IVF-PQ on small clustered unit data."""
from __future__ import annotations

import math
import re

import faiss
import numpy as np
import pytest

from retrieval.index import (
    FLAT_MAX,
    HNSW_MAX,
    IndexBuildError,
    build_faiss_index,
    choose_index_spec,
    tune_search_params,
)
from retrieval.index.spec import SearchParams, index_kind, ivf_pq_spec, pq_subquantizers, search_with
from tests.retrieval.retrieval_support import clustered_unit_vectors


@pytest.mark.parametrize("n, expected", [(1, "Flat"), (FLAT_MAX - 1, "Flat"), (FLAT_MAX, "HNSW32,Flat"),
                                         (HNSW_MAX - 1, "HNSW32,Flat")])
def test_small_and_medium_corpora_get_flat_then_hnsw(n: int, expected: str) -> None:
    assert choose_index_spec(n, 128) == expected


@pytest.mark.parametrize("n, dim", [(HNSW_MAX, 128), (50_000_000, 64), (3_000_000, 100)])
def test_large_corpora_get_ivf_pq_with_refinement(n: int, dim: int) -> None:
    spec = choose_index_spec(n, dim)
    match = re.fullmatch(r"IVF(\d+),PQ(\d+)x8np,Refine\(SQfp16\)", spec)
    assert match, spec
    nlist, m = int(match.group(1)), int(match.group(2))
    assert nlist & (nlist - 1) == 0 and 1024 <= nlist <= 65536
    assert abs(math.log2(nlist) - math.log2(4 * math.sqrt(n))) <= 0.5 or nlist in (1024, 65536)
    assert dim % m == 0
    index = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)  # FAISS accepts the string
    assert index_kind(index) == "ivf" and index.d == dim


@pytest.mark.parametrize("n", [40, 5_000, 100_000, HNSW_MAX, 3_000_000])
def test_ivf_pq_spec_keeps_every_list_trainable(n: int) -> None:
    spec = ivf_pq_spec(n, 128)
    nlist = int(re.fullmatch(r"IVF(\d+),PQ32x[4-8]np,Refine\(SQfp16\)", spec).group(1))
    assert nlist & (nlist - 1) == 0 and 39 * nlist <= n
    if n >= HNSW_MAX:
        assert spec == choose_index_spec(n, 128)


def test_exact_recall_target_always_gives_flat() -> None:
    assert choose_index_spec(10 * HNSW_MAX, 64, recall_target=1.0) == "Flat"


@pytest.mark.parametrize("n, dim, target", [(0, 8, 0.9), (10, 0, 0.9), (10, 8, 0.0), (10, 8, 1.5)])
def test_nonsense_sizes_are_refused(n: int, dim: int, target: float) -> None:
    with pytest.raises(IndexBuildError):
        choose_index_spec(n, dim, target)


@pytest.mark.parametrize("dim", [1, 3, 16, 100, 128, 256, 97])
def test_pq_subquantizers_divide_the_dimension(dim: int) -> None:
    m = pq_subquantizers(dim)
    assert dim % m == 0 and 1 <= m <= dim


def test_idmap_specs_are_refused() -> None:
    with pytest.raises(IndexBuildError, match="IDMap"):
        build_faiss_index("IDMap2,Flat", clustered_unit_vectors(10, 4))


def test_ivf_needs_enough_training_vectors() -> None:
    with pytest.raises(IndexBuildError, match="needs at least 64"):
        build_faiss_index("IVF64,Flat", clustered_unit_vectors(20, 8))


def _recall_at_10(index: faiss.Index, params: SearchParams, base: np.ndarray, queries: np.ndarray) -> float:
    truth = np.argsort(-(queries @ base.T), axis=1)[:, :10]
    _, got = search_with(index, queries, 10, params)
    return float(np.mean([len(set(g) & set(t)) / 10 for g, t in zip(got, truth)]))


@pytest.mark.parametrize("spec, minimum", [("Flat", 1.0), ("HNSW16,Flat", 0.9), ("IVF16,PQ4x4np,RFlat", 0.9),
                                           ("IVF16,PQ4x4np,Refine(SQfp16)", 0.9)])
def test_tuned_indexes_reach_the_recall_target_on_held_out_queries(spec: str, minimum: float) -> None:
    data = clustered_unit_vectors(2200, 16, clusters=12, seed=5)
    base, queries = data[:2000], data[2000:]
    index = build_faiss_index(spec, base)
    params, tuned_recall = tune_search_params(index, base, recall_target=0.95)
    assert tuned_recall >= 0.95 or spec != "Flat"
    recall = _recall_at_10(index, params, base, queries)
    assert recall >= minimum, f"{spec}: recall@10 {recall:.3f} with {params}"


def test_tuning_picks_a_wider_search_only_when_needed() -> None:
    base = clustered_unit_vectors(2000, 16, clusters=12, seed=6)
    index = build_faiss_index("IVF32,Flat", base)
    low, low_recall = tune_search_params(index, base, recall_target=0.5)
    high, high_recall = tune_search_params(index, base, recall_target=0.99)
    assert low.nprobe is not None and high.nprobe is not None
    assert low.nprobe <= high.nprobe and low_recall >= 0.5 and high_recall >= 0.99
