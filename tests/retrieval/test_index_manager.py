"""IndexManager: build/save/load round trip, verify before promote, corruption refused, fallback serving."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from retrieval.index import (
    IndexBuildError,
    IndexCorruptError,
    IndexManager,
    IndexNotVerifiedError,
    NoLiveIndexError,
    load_index_version,
    new_version_name,
)
from retrieval.index.storage import IDS_FILE, INDEX_FILE, MANIFEST_FILE, TEMP_PREFIX
from retrieval.store import EmbeddingRecord, MetadataStore
from tests.retrieval.retrieval_support import catalogue, clustered_unit_vectors, register_encoder

DIM = 16
N = 300


@pytest.fixture
def corpus(sqlite_store: MetadataStore) -> tuple[np.ndarray, list[str]]:
    """N catalogue sequences with embeddings recorded under encoder ``enc-a``."""
    records = catalogue(N)
    sqlite_store.upsert_sequences(records)
    register_encoder(sqlite_store, "enc-a", DIM)
    ids = [r.id for r in records]
    sqlite_store.record_embeddings("enc-a", [EmbeddingRecord(r.id, r.content_hash, "s0.npy", i)
                                             for i, r in enumerate(records)])
    return clustered_unit_vectors(N, DIM, seed=1), ids


@pytest.fixture
def manager(tmp_path: Path, sqlite_store: MetadataStore) -> IndexManager:
    return IndexManager(tmp_path / "index_data", sqlite_store)


def _live(manager: IndexManager, version: str, corpus: tuple[np.ndarray, list[str]], spec: str = "Flat") -> None:
    vectors, ids = corpus
    manager.build(version, vectors, ids, encoder_version="enc-a", spec=spec)
    assert manager.verify(version).ok
    manager.promote(version)


# -- build / save / load ------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["Flat", "HNSW16,Flat", "IVF8,PQ4x4np,RFlat", "IVF8,PQ4x4np,Refine(SQfp16)"])
def test_round_trip_preserves_vectors_ids_and_results(manager: IndexManager, corpus, spec: str) -> None:
    vectors, ids = corpus
    record = manager.build("v1", vectors * 3.0, ids, encoder_version="enc-a", spec=spec)  # scale is normalised away
    assert (record.status, record.count, record.dimension, record.spec) == ("building", N, DIM, spec)
    directory = manager.version_dir("v1")
    assert sorted(p.name for p in directory.iterdir()) == sorted([INDEX_FILE, IDS_FILE, MANIFEST_FILE])
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    assert (manifest["count"], manifest["dim"], manifest["spec"],
            manifest["encoder_version"]) == (N, DIM, spec, "enc-a")
    assert set(manifest["files"]) == {INDEX_FILE, IDS_FILE}
    assert not [p for p in manager.indexes_dir.iterdir() if p.name.startswith(TEMP_PREFIX)]

    searcher = manager.open("v1")
    assert searcher.sequence_ids == ids and searcher.count == N and searcher.dim == DIM
    stored = searcher.vectors(np.arange(N))
    half = "SQfp16" in spec      # the product's 1M spec keeps half-precision copies
    np.testing.assert_allclose(stored, vectors, atol=1e-3 if half else 1e-5)
    assert searcher.exact_vectors is not half
    hits = searcher.search(vectors[:5], 5)
    assert list(hits.positions[:, 0]) == [0, 1, 2, 3, 4]  # each vector finds itself first


def test_building_an_existing_version_is_refused(manager: IndexManager, corpus) -> None:
    vectors, ids = corpus
    manager.build("v1", vectors, ids, encoder_version="enc-a")
    with pytest.raises(IndexBuildError, match="already exists"):
        manager.build("v1", vectors, ids, encoder_version="enc-a")


@pytest.mark.parametrize("problem, mutate", [
    ("NaN", lambda v, i: (np.where(np.arange(len(v))[:, None] == 3, np.nan, v), i)),
    ("all zeros", lambda v, i: (np.where(np.arange(len(v))[:, None] == 3, 0.0, v), i)),
    ("sequence ids", lambda v, i: (v, i[:-1])),
    ("repeat", lambda v, i: (v, [i[0]] + i[1:-1] + [i[0]])),
    ("dimension", lambda v, i: (v[:, :8], i)),
    ("shape", lambda v, i: (v[0], i)),
])
def test_bad_build_input_is_refused_before_anything_is_written(manager: IndexManager, corpus, problem, mutate) -> None:
    vectors, ids = mutate(*corpus)
    with pytest.raises(IndexBuildError, match=problem):
        manager.build("v1", vectors, ids, encoder_version="enc-a")
    assert manager.store.get_index_version("v1") is None
    assert manager.versions_on_disk() == []


@pytest.mark.parametrize("name", ["../escape", "", ".hidden", "a/b", "x" * 200])
def test_unsafe_version_names_are_refused(manager: IndexManager, corpus, name: str) -> None:
    with pytest.raises(IndexBuildError, match="version name"):
        manager.build(name, *corpus, encoder_version="enc-a")


def test_a_failed_build_is_marked_failed_in_the_store(manager: IndexManager, corpus) -> None:
    vectors, ids = corpus
    with pytest.raises(IndexBuildError):
        manager.build("v1", vectors[:10], ids[:10], encoder_version="enc-a", spec="IVF64,Flat")
    record = manager.store.get_index_version("v1")
    assert record is not None and record.status == "failed" and "64" in (record.message or "")


# -- verify / promote ---------------------------------------------------------------------------
def test_promote_only_after_verify(manager: IndexManager, corpus) -> None:
    vectors, ids = corpus
    manager.build("v1", vectors, ids, encoder_version="enc-a")
    with pytest.raises(IndexNotVerifiedError, match="verify it"):
        manager.promote("v1")
    assert manager.live_version() is None and not manager.live_file.exists()
    report = manager.verify("v1")
    assert report.ok and report.count == report.expected_count == N and report.self_hit_rate == 1.0
    assert manager.store.get_index_version("v1").status == "verified"  # type: ignore[union-attr]
    manager.promote("v1")
    assert manager.live_file.read_text().strip() == "v1"
    assert manager.live_version() == manager.store.live_version() == "v1"
    assert manager.open_live().version == "v1"


def test_verify_fails_when_the_index_misses_sequences_and_promotion_stays_refused(manager: IndexManager,
                                                                                  corpus) -> None:
    vectors, ids = corpus
    manager.build("v1", vectors[:-5], ids[:-5], encoder_version="enc-a")
    report = manager.verify("v1")
    assert not report.ok
    assert any("expects 300" in p for p in report.problems) and any("missing" in p for p in report.problems)
    record = manager.store.get_index_version("v1")
    assert record is not None and record.status == "failed" and "missing" in (record.message or "")
    with pytest.raises(IndexNotVerifiedError):
        manager.promote("v1")
    assert manager.verify("v1", expected_ids=ids[:-5]).ok  # against the set it was meant to hold


def test_verify_flags_sequences_unknown_to_the_store(manager: IndexManager, corpus) -> None:
    vectors, ids = corpus
    renamed = ids[:-1] + ["ghost"]
    manager.build("v1", vectors, renamed, encoder_version="enc-a")
    report = manager.verify("v1", expected_ids=renamed)
    assert not report.ok and any("unknown to the store" in p for p in report.problems)


def test_promoting_a_new_version_retires_the_old_one(manager: IndexManager, corpus) -> None:
    _live(manager, "v1", corpus)
    _live(manager, "v2", corpus, spec="HNSW16,Flat")
    assert manager.live_version() == "v2" and manager.open_live().kind == "hnsw"
    assert {r.version: r.status for r in manager.store.list_index_versions()} == {"v1": "retired", "v2": "live"}
    with pytest.raises(IndexBuildError, match="live"):
        manager.delete("v2")
    manager.delete("v1")
    assert manager.versions_on_disk() == ["v2"]


# -- corruption ---------------------------------------------------------------------------------
def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _assert_one_line(exc: BaseException, *fragments: str) -> None:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text
    for fragment in fragments:
        assert fragment in text


@pytest.mark.parametrize("damage, expected", [
    (lambda d: _flip_byte(d / INDEX_FILE, 200), "checksum mismatch"),
    (lambda d: (d / INDEX_FILE).write_bytes((d / INDEX_FILE).read_bytes()[:1000]), "truncated"),
    (lambda d: (d / INDEX_FILE).unlink(), "file is missing"),
    (lambda d: (d / MANIFEST_FILE).write_text("{not json"), "manifest is not valid JSON"),
    (lambda d: (d / MANIFEST_FILE).unlink(), "manifest is missing"),
    (lambda d: (d / IDS_FILE).write_text('["a", "b"]'), IDS_FILE),
])
def test_damaged_files_raise_a_one_line_corrupt_error(manager: IndexManager, corpus, damage, expected) -> None:
    vectors, ids = corpus
    manager.build("v1", vectors, ids, encoder_version="enc-a")
    directory = manager.version_dir("v1")
    damage(directory)
    with pytest.raises(IndexCorruptError) as caught:
        manager.open("v1")
    _assert_one_line(caught.value, expected, str(directory))
    assert caught.value.path.startswith(str(directory))


def test_an_unreadable_index_with_a_matching_checksum_is_refused(manager: IndexManager, corpus) -> None:
    vectors, ids = corpus
    manager.build("v1", vectors, ids, encoder_version="enc-a")
    directory = manager.version_dir("v1")
    truncated = (directory / INDEX_FILE).read_bytes()[:500]
    (directory / INDEX_FILE).write_bytes(truncated)
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    import hashlib

    manifest["files"][INDEX_FILE] = {"sha256": hashlib.sha256(truncated).hexdigest(), "bytes": len(truncated)}
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError) as caught:
        load_index_version(directory)
    _assert_one_line(caught.value, "not a readable FAISS index", INDEX_FILE)


def test_verify_marks_a_corrupted_build_failed(manager: IndexManager, corpus) -> None:
    vectors, ids = corpus
    manager.build("v1", vectors, ids, encoder_version="enc-a")
    _flip_byte(manager.version_dir("v1") / INDEX_FILE, 300)
    report = manager.verify("v1")
    assert not report.ok and "checksum mismatch" in report.summary()
    assert manager.store.get_index_version("v1").status == "failed"  # type: ignore[union-attr]


def test_a_corrupt_live_version_falls_back_to_the_previous_good_one(manager: IndexManager, corpus,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    _live(manager, "v1", corpus)
    _live(manager, "v2", corpus)
    (manager.version_dir("v2") / INDEX_FILE).write_bytes(b"\x00" * 64)  # truncated
    with caplog.at_level(logging.WARNING, logger="retrieval.index.manager"):
        searcher = manager.open_live()
    assert searcher.version == "v1" and searcher.fallback_from == "v2"
    assert "truncated" in (searcher.fallback_reason or "")
    assert any("serving v1 instead" in r.getMessage() for r in caplog.records)
    vectors, _ = corpus
    assert searcher.search(vectors[:1], 1).positions[0, 0] == 0  # and it serves correctly
    assert manager.live_version() == "v2"  # the pointer is left for an operator or job to fix


def test_a_newer_unpromoted_version_is_not_used_as_fallback(manager: IndexManager, corpus) -> None:
    _live(manager, "v1", corpus)
    vectors, ids = corpus
    manager.build("v2", vectors, ids, encoder_version="enc-a")
    manager.verify("v2")  # verified, never promoted
    (manager.version_dir("v1") / INDEX_FILE).unlink()
    with pytest.raises(NoLiveIndexError, match="no earlier verified version"):
        manager.open_live()


def test_a_garbled_live_pointer_falls_back_too(manager: IndexManager, corpus) -> None:
    _live(manager, "v1", corpus)
    manager.live_file.write_text("../../etc/passwd\n")
    assert manager.open_live().version == "v1"


def test_without_a_live_version_open_live_says_so(manager: IndexManager) -> None:
    with pytest.raises(NoLiveIndexError, match="no index version is live"):
        manager.open_live()


def test_new_version_names_are_valid_sortable_and_distinct() -> None:
    names = [new_version_name("enc/with spaces:1") for _ in range(3)]
    assert len(set(names)) == 3
    assert [n[:22] for n in names] == sorted(n[:22] for n in names)  # the timestamp part sorts by time
    assert all(name.endswith("enc-with-spaces-1") for name in names)
    from retrieval.index.storage import check_version_name

    assert [check_version_name(n) for n in names] == names
