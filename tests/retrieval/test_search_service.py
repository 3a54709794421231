"""SearchService: by id / vector / sequence / file, filters with exact counts, metadata join, bad queries."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from encoder.data.errors import PoseDataError
from encoder.data.sequence import PoseSequence
from retrieval.index import IndexManager
from retrieval.index.storage import INDEX_FILE
from retrieval.search import QueryError, SearchFilters, SearchHit, SearchService
from retrieval.store import EmbeddingRecord, MetadataStore, SequenceRecord
from tests.retrieval.retrieval_support import catalogue, clustered_unit_vectors, register_encoder

N, DIM = 400, 16


class ProjectionEmbedder:
    """Deterministic stand-in encoder: mean pose projected by a fixed random matrix."""

    def __init__(self, version: str = "enc-a", dim: int = DIM) -> None:
        self.version = version
        self.calls = 0
        self._projection = np.random.default_rng(42).standard_normal((17 * 3, dim))

    def embed(self, seqs: Sequence[PoseSequence]) -> np.ndarray:
        self.calls += 1
        return np.stack([s.joints.mean(axis=0).reshape(-1) @ self._projection for s in seqs])


def _build_world(root: Path) -> tuple[MetadataStore, IndexManager, np.ndarray, list[SequenceRecord]]:
    """A store with N sequences and a live Flat index of their embeddings under ``root``."""
    store = MetadataStore.open(root / "metadata.db")
    records = catalogue(N, seed=4)
    store.upsert_sequences(records)
    register_encoder(store, "enc-a", DIM)
    vectors = clustered_unit_vectors(N, DIM, seed=4)
    store.record_embeddings("enc-a", [EmbeddingRecord(r.id, r.content_hash, "s.npy", i)
                                      for i, r in enumerate(records)])
    manager = IndexManager(root / "index_data", store)
    manager.build("v1", vectors, [r.id for r in records], encoder_version="enc-a", spec="Flat")
    assert manager.verify("v1").ok
    manager.promote("v1")
    return store, manager, vectors, records


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """Built once for the tests that only read."""
    store, manager, vectors, records = _build_world(tmp_path_factory.mktemp("search"))
    yield store, manager, vectors, records
    store.close()


@pytest.fixture
def world(shared_world) -> tuple[SearchService, np.ndarray, list[SequenceRecord]]:
    """A fresh service over the shared, read-only store and index."""
    store, manager, vectors, records = shared_world
    return SearchService(store, manager, ProjectionEmbedder()), vectors, records


@pytest.fixture
def own_world(tmp_path: Path) -> Iterator[tuple[SearchService, np.ndarray, list[SequenceRecord]]]:
    """A private store and index for tests that change them."""
    store, manager, vectors, records = _build_world(tmp_path)
    yield SearchService(store, manager, ProjectionEmbedder()), vectors, records
    store.close()


def _brute_ids(vectors: np.ndarray, query: np.ndarray, ids: list[str], k: int, allowed: set[str] | None = None,
               skip: str | None = None) -> list[str]:
    scores = vectors @ (query / np.linalg.norm(query))
    order = [i for i in np.argsort(-scores, kind="stable") if ids[i] != skip
             and (allowed is None or ids[i] in allowed)]
    return [ids[i] for i in order[:k]]


def test_search_by_id_excludes_itself_and_matches_brute_force(world) -> None:
    service, vectors, records = world
    ids = [r.id for r in records]
    hits = service.search_by_id("seq-00007", k=10)
    assert [h.sequence_id for h in hits] == _brute_ids(vectors, vectors[7], ids, 10, skip="seq-00007")
    assert [h.rank for h in hits] == list(range(1, 11))
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    by_id = {r.id: r for r in records}
    for hit in hits:
        assert hit.metadata["label"] == by_id[hit.sequence_id].label
        assert hit.metadata["tags"] == list(by_id[hit.sequence_id].tags)
        assert -1.0 - 1e-5 <= hit.score <= 1.0 + 1e-5


FILTERS = [
    SearchFilters(label="elegant"),
    SearchFilters(collection="resort", season="2023"),
    SearchFilters(tags=["evening", "studio"], tags_mode="all"),
    SearchFilters(label=["relaxed", "confident"], tags=["runway"]),
]


@pytest.mark.parametrize("filters", FILTERS, ids=range(len(FILTERS)))
@pytest.mark.parametrize("strategy", ["auto", "selector", "overfetch"])
def test_filtered_search_returns_exactly_k_matching_hits(world, filters: SearchFilters, strategy: str) -> None:
    service, vectors, records = world
    service.filter_strategy = strategy  # type: ignore[assignment]
    ids = [r.id for r in records]
    allowed = set(service.store.sequence_ids(filters))
    assert len(allowed) >= 5
    k = min(12, len(allowed) - 1)
    hits = service.search_by_id("seq-00000", k=k, filters=filters)
    assert len(hits) == k
    assert {h.sequence_id for h in hits} <= allowed and "seq-00000" not in {h.sequence_id for h in hits}
    assert [h.sequence_id for h in hits] == _brute_ids(vectors, vectors[0], ids, k, allowed, skip="seq-00000")


def test_a_filter_with_fewer_matches_than_k_returns_them_all(world) -> None:
    service, vectors, _ = world
    filters = SearchFilters(label="elegant", collection="spring", season="2024", tags=["casual", "runway"],
                            tags_mode="all")
    matching = service.store.sequence_ids(filters)
    assert 0 < len(matching) < 20
    hits = service.search_by_vector(vectors[3], k=50, filters=filters)
    assert sorted(h.sequence_id for h in hits) == sorted(matching)
    assert service.search_by_vector(vectors[3], k=5, filters=SearchFilters(label="nobody")) == []


def test_vector_batches_match_single_queries(world) -> None:
    service, vectors, _ = world
    queries = vectors[10:14] * 5.0  # scale does not matter: queries are normalised
    batch = service.search_by_vector(queries, k=6)
    assert len(batch) == 4 and all(isinstance(row, list) and len(row) == 6 for row in batch)
    for query, row in zip(queries, batch):
        assert [h.sequence_id for h in service.search_by_vector(query, k=6)] == [h.sequence_id for h in row]
    assert batch[0][0].sequence_id == "seq-00010"
    listed = service.search_by_vector(list(map(float, vectors[10])), k=1)
    assert isinstance(listed[0], SearchHit) and listed[0].sequence_id == "seq-00010"
    by_ids = service.search_by_ids(["seq-00001", "seq-00002"], k=3)
    assert [h.sequence_id for h in by_ids[1]] == [h.sequence_id for h in service.search_by_id("seq-00002", k=3)]


def test_search_by_sequence_embeds_and_checks_the_encoder_version(world) -> None:
    service, _, _ = world
    rng = np.random.default_rng(0)
    seq = PoseSequence(joints=rng.standard_normal((30, 17, 3)).astype(np.float32), confidence=np.ones((30, 17)),
                       fps=30.0, name="query")
    expected = service.search_by_vector(service.embedder.embed([seq])[0], k=5)  # type: ignore[union-attr]
    assert service.search_by_sequence(seq, k=5) == expected
    both = service.search_by_sequence([seq, seq], k=5)
    assert both == [expected, expected]
    service.embedder = ProjectionEmbedder(version="enc-other")
    with pytest.raises(QueryError, match="does not match encoder enc-a"):
        service.search_by_sequence(seq)
    service.embedder = None
    with pytest.raises(QueryError, match="needs an encoder"):
        service.search_by_sequence(seq)


def test_search_by_file_reads_embeds_and_searches(world, tmp_path: Path) -> None:
    service, _, _ = world
    rng = np.random.default_rng(1)
    seq = PoseSequence(joints=rng.standard_normal((30, 17, 3)).astype(np.float32), confidence=np.ones((30, 17)),
                       fps=30.0, name="walk")
    path = tmp_path / "walk.npz"
    np.savez(path, **seq.to_arrays())
    results = service.search_by_file(path, k=4)
    assert len(results) == 1 and len(results[0]) == 4
    assert results[0] == service.search_by_sequence(seq, k=4)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip")
    with pytest.raises(PoseDataError) as caught:
        service.search_by_file(broken)
    assert "\n" not in str(caught.value) and "broken.npz" in str(caught.value)


@pytest.mark.parametrize("call, message", [
    (lambda s, v: s.search_by_vector(np.ones(DIM + 1)), "dimension 17"),
    (lambda s, v: s.search_by_vector(np.full(DIM, np.nan)), "NaN"),
    (lambda s, v: s.search_by_vector(np.r_[np.inf, np.ones(DIM - 1)]), "NaN or inf"),
    (lambda s, v: s.search_by_vector(np.zeros(DIM)), "zero vector"),
    (lambda s, v: s.search_by_vector(["a"] * DIM), "numeric"),
    (lambda s, v: s.search_by_vector(np.ones((2, 2, DIM))), "shape"),
    (lambda s, v: s.search_by_vector(np.ones((0, DIM))), "non-empty"),
    (lambda s, v: s.search_by_vector(v[0], k=0), "positive integer"),
    (lambda s, v: s.search_by_vector(v[0], k=-3), "positive integer"),
    (lambda s, v: s.search_by_vector(v[0], k=2.5), "positive integer"),
    (lambda s, v: s.search_by_vector(v[0], k=True), "positive integer"),
    (lambda s, v: s.search_by_vector(v[0], k=10**9), "over the limit"),
    (lambda s, v: s.search_by_id("no-such-sequence"), "unknown sequence id 'no-such-sequence'"),
    (lambda s, v: s.search_by_ids("seq-00001"), "list of ids"),
    (lambda s, v: s.search_by_vector(v[0], filters={"label": "x"}), "SearchFilters"),
])
def test_malformed_queries_raise_one_line_query_errors(world, call, message: str) -> None:
    service, vectors, _ = world
    with pytest.raises(QueryError) as caught:
        call(service, vectors)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_sequence_added_after_indexing_is_reported_as_not_indexed(own_world) -> None:
    service, _, records = own_world
    service.store.upsert_sequences([SequenceRecord(id="late-arrival", content_hash="0" * 64)])
    with pytest.raises(QueryError, match="not in index version v1 yet"):
        service.search_by_id("late-arrival")


def test_hits_for_sequences_deleted_from_the_store_are_replaced(own_world) -> None:
    service, vectors, records = own_world
    ids = [r.id for r in records]
    before = [h.sequence_id for h in service.search_by_vector(vectors[20], k=8)]
    service.store.delete_sequences(before[1:4])
    after = [h.sequence_id for h in service.search_by_vector(vectors[20], k=8)]
    assert len(after) == 8 and not set(before[1:4]) & set(after)
    remaining = set(ids) - set(before[1:4])
    assert after == _brute_ids(vectors, vectors[20], ids, 8, remaining)


def test_a_promotion_is_picked_up_and_a_corrupt_live_version_falls_back(own_world) -> None:
    service, vectors, records = own_world
    assert service.searcher().version == "v1"
    manager = service.index_manager
    manager.build("v2", vectors, [r.id for r in records], encoder_version="enc-a", spec="HNSW16,Flat")
    assert manager.verify("v2").ok
    manager.promote("v2")
    assert service.searcher().version == "v2" and service.searcher().kind == "hnsw"
    (manager.version_dir("v2") / INDEX_FILE).write_bytes(b"garbage")
    served = service.refresh()
    assert served.version == "v1" and served.fallback_from == "v2"
    assert service.search_by_id("seq-00005", k=3)  # still answering


def test_freeze_loaded_objects_moves_what_exists_out_of_the_collector() -> None:
    import gc

    from retrieval.search import freeze_loaded_objects

    held = [[i] for i in range(1000)]          # container objects the collector would traverse
    try:
        freeze_loaded_objects()
        assert gc.get_freeze_count() >= len(held)
        collected = {id(obj) for gen in range(3) for obj in gc.get_objects(generation=gen)}
        assert not collected & {id(obj) for obj in held}      # frozen: in no generation the collector scans
    finally:
        gc.unfreeze()
