"""Filtered k-NN: exactly min(k, allowed) hits, equal to brute force on Flat, for every filter strategy."""
from __future__ import annotations

import numpy as np
import pytest

from retrieval.index import VectorSearcher, build_faiss_index, tune_search_params
from retrieval.index.storage import IndexFiles
from tests.retrieval.retrieval_support import clustered_unit_vectors

N, DIM = 1500, 16
STRATEGIES = ("selector", "overfetch", "exact")


def _searcher(spec: str, vectors: np.ndarray) -> VectorSearcher:
    index = build_faiss_index(spec, vectors)
    params, _ = tune_search_params(index, vectors, 0.95)
    files = IndexFiles(path=__import__("pathlib").Path("."), index=index,
                       sequence_ids=[f"s{i}" for i in range(len(vectors))],
                       manifest={"version": spec, "spec": spec, "search_params": params.to_json()})
    return VectorSearcher(files, use_gpu=False, exact_subset_max=0)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    vectors = clustered_unit_vectors(N + 20, DIM, clusters=15, seed=11)
    return vectors[:N], vectors[N:]


@pytest.fixture(scope="module")
def searchers(data) -> dict[str, VectorSearcher]:
    base, _ = data
    return {spec: _searcher(spec, base) for spec in ("Flat", "HNSW16,Flat", "IVF16,PQ4x4np,RFlat")}


def _brute_force(base: np.ndarray, queries: np.ndarray, k: int, allowed: np.ndarray | None,
                 exclude: list[set[int]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    scores = queries @ base.T
    if allowed is not None:
        mask = np.full(base.shape[0], -np.inf)
        mask[allowed] = 0.0
        scores = scores + mask
    for i, rows in enumerate(exclude or []):
        scores[i, list(rows)] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


def _allowed(fraction: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(N, max(1, int(N * fraction)), replace=False)).astype(np.int64)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("fraction", [0.005, 0.05, 0.5])
@pytest.mark.parametrize("k", [1, 10])
def test_flat_filtered_search_equals_brute_force(searchers, data, strategy: str, fraction: float, k: int) -> None:
    base, queries = data
    allowed = _allowed(fraction, seed=int(fraction * 1000) + k)
    hits = searchers["Flat"].search(queries, k, allowed=allowed, strategy=strategy)
    expected_scores, expected_rows = _brute_force(base, queries, k, allowed)
    want = min(k, allowed.size)
    assert ((hits.positions >= 0).sum(axis=1) == want).all()
    np.testing.assert_allclose(hits.scores[:, :want], expected_scores[:, :want], atol=1e-5)
    # positions agree except where two candidates score the same
    same = hits.positions[:, :want] == expected_rows[:, :want]
    assert same.mean() > 0.99
    assert hits.strategy == strategy
    if strategy == "selector":
        assert hits.exact_rows == 0  # Flat with a selector never needs the fallback


@pytest.mark.parametrize("spec", ["HNSW16,Flat", "IVF16,PQ4x4np,RFlat"])
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("fraction", [0.004, 0.05, 0.5])
def test_approximate_filtered_search_returns_exactly_k_allowed_hits(searchers, data, spec: str, strategy: str,
                                                                    fraction: float) -> None:
    base, queries = data
    k = 10
    allowed = _allowed(fraction, seed=7)
    hits = searchers[spec].search(queries, k, allowed=allowed, strategy=strategy)
    want = min(k, allowed.size)
    valid = hits.positions >= 0
    assert (valid.sum(axis=1) == want).all()
    assert np.isin(hits.positions[valid], allowed).all()
    assert all(len(set(row[row >= 0])) == want for row in hits.positions)  # no duplicates
    assert (np.diff(hits.scores[:, :want], axis=1) <= 1e-6).all()  # best first
    _, truth = _brute_force(base, queries, k, allowed)
    recall = np.mean([len(set(h[:want]) & set(t[:want])) / want for h, t in zip(hits.positions, truth)])
    assert recall >= 0.8, f"{spec}/{strategy}: filtered recall@{k} {recall:.3f}"


def test_fewer_allowed_than_k_returns_all_of_them_then_padding(searchers, data) -> None:
    base, queries = data
    allowed = np.array([3, 500, 1200], dtype=np.int64)
    for strategy in STRATEGIES:
        hits = searchers["HNSW16,Flat"].search(queries[:4], 10, allowed=allowed, strategy=strategy)
        assert all(set(row[:3]) == set(allowed.tolist()) for row in hits.positions)
        assert (hits.positions[:, 3:] == -1).all() and np.isneginf(hits.scores[:, 3:]).all()


def test_excluded_rows_never_appear_and_k_is_still_met(searchers, data) -> None:
    base, _ = data
    queries = base[:6]
    exclude = [{i} for i in range(6)]
    for spec, searcher in searchers.items():
        hits = searcher.search(queries, 5, exclude=exclude)
        assert ((hits.positions >= 0).sum(axis=1) == 5).all()
        assert all(i not in row for i, row in enumerate(hits.positions)), spec
    _, truth = _brute_force(base, queries, 5, None, exclude)
    flat = searchers["Flat"].search(queries, 5, exclude=exclude)
    assert (flat.positions == truth).mean() > 0.99


def test_auto_strategy_goes_exact_for_small_subsets(data) -> None:
    base, queries = data
    searcher = _searcher("HNSW16,Flat", base)
    searcher.exact_subset_max = 100
    small = searcher.search(queries, 5, allowed=_allowed(0.02, seed=1))
    large = searcher.search(queries, 5, allowed=_allowed(0.5, seed=1))
    unfiltered = searcher.search(queries, 5)
    assert (small.strategy, large.strategy, unfiltered.strategy) == ("exact", "selector", "selector")


def test_empty_filter_gives_no_hits(searchers, data) -> None:
    _, queries = data
    hits = searchers["Flat"].search(queries[:2], 5, allowed=np.array([], dtype=np.int64))
    assert (hits.positions == -1).all()


@pytest.mark.parametrize("strategy", ["selector", "overfetch"])
def test_rows_an_index_leaves_short_are_completed_by_exact_search(data, strategy: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    base, queries = data
    searcher = _searcher("Flat", base)
    honest = searcher._plain

    def lossy(q: np.ndarray, k: int, widen: int, selector=None):  # an index that finds 3 hits at most
        scores, rows = honest(q, k, widen, selector)
        rows[:, 3:] = -1
        scores[:, 3:] = -np.inf
        return scores, rows

    monkeypatch.setattr(searcher, "_plain", lossy)
    allowed = _allowed(0.3, seed=2)
    hits = searcher.search(queries, 8, allowed=allowed, strategy=strategy)
    expected_scores, _ = _brute_force(base, queries, 8, allowed)
    assert hits.exact_rows == len(queries)
    np.testing.assert_allclose(hits.scores, expected_scores, atol=1e-5)
