"""Units of the job package: shard files, index-type specs, per-batch error isolation."""
from __future__ import annotations

import numpy as np
import pytest

from encoder.data.errors import PoseDataError
from retrieval.jobs import EmbedRequest, JobError, ShardError, ShardStore, embed_requests, spec_for_index_type
from retrieval.store import EmbeddingRecord


def _record(sequence_id: str, shard: str, row: int) -> EmbeddingRecord:
    return EmbeddingRecord(sequence_id=sequence_id, content_hash="h", shard=shard, row=row)


def test_shards_are_append_only_and_read_back_by_row(tmp_path):
    shards = ShardStore(tmp_path, "enc1")
    first = np.arange(12, dtype=np.float32).reshape(3, 4)
    second = -np.arange(8, dtype=np.float32).reshape(2, 4)
    key_a, key_b = shards.write(first), shards.write(second)
    assert (key_a, key_b) == ("enc1/shard-00000.npy", "enc1/shard-00001.npy")
    again = ShardStore(tmp_path, "enc1")            # a new writer continues the numbering
    key_c = again.write(first[:1])
    assert key_c == "enc1/shard-00002.npy" and again.shard_keys() == [key_a, key_b, key_c]
    records = [_record("x", key_b, 1), _record("y", key_a, 2), _record("z", key_a, 0)]
    np.testing.assert_array_equal(shards.gather(records, 4), np.stack([second[1], first[2], first[0]]))
    np.testing.assert_array_equal(shards.read(key_a), first)


def test_a_shard_name_taken_meanwhile_is_never_overwritten(tmp_path):
    shards = ShardStore(tmp_path, "enc1")
    shards.write(np.ones((1, 2), np.float32))
    other_writer = ShardStore(tmp_path, "enc1")
    other_key = other_writer.write(np.full((1, 2), 7, np.float32))   # takes the name shards would pick next
    mine = shards.write(np.zeros((1, 2), np.float32))
    assert mine != other_key
    np.testing.assert_array_equal(shards.read(other_key), [[7, 7]])
    np.testing.assert_array_equal(shards.read(mine), [[0, 0]])


def test_check_reports_missing_and_short_shards(tmp_path):
    shards = ShardStore(tmp_path, "enc1")
    key = shards.write(np.ones((2, 3), np.float32))
    records = [_record("ok", key, 1), _record("beyond", key, 2), _record("gone", "enc1/shard-00009.npy", 0)]
    broken = shards.check(records, 3)
    assert set(broken) == {"beyond", "gone"}
    assert "row 2 beyond its 2 rows" in broken["beyond"] and "missing" in broken["gone"]
    assert set(shards.check(records[:1], 5)) == {"ok"}                 # wrong dimension
    with pytest.raises(ShardError, match="records row 2"):
        shards.gather(records[:2], 3)


def test_unreferenced_shards_and_temp_files_are_removed(tmp_path):
    shards = ShardStore(tmp_path, "enc1")
    kept, orphan = shards.write(np.ones((1, 2), np.float32)), shards.write(np.ones((1, 2), np.float32))
    (shards.directory / ".shard-abc.tmp").write_bytes(b"half")
    assert shards.remove_temp_files() == 1
    assert shards.remove_unreferenced({kept}) == [orphan]
    assert shards.shard_keys() == [kept]


def test_malformed_shards_and_keys_are_refused(tmp_path):
    shards = ShardStore(tmp_path, "enc1")
    shards.directory.mkdir(parents=True)
    (shards.directory / "shard-00000.npy").write_bytes(b"garbage")
    with pytest.raises(ShardError, match="unreadable shard"):
        shards.read("enc1/shard-00000.npy")
    with pytest.raises(ShardError, match="not a shard of encoder enc1"):
        shards.read("enc2/shard-00000.npy")
    with pytest.raises(JobError, match="safe folder name"):
        ShardStore(tmp_path, "../escape")
    np.save(shards.directory / "shard-00001.npy", np.ones((2, 2), np.float64))
    with pytest.raises(ShardError, match="float32"):
        shards.read("enc1/shard-00001.npy")


def test_index_type_specs():
    assert spec_for_index_type("auto", 100, 16) is None
    assert spec_for_index_type("Flat", 100, 16) == "Flat"
    assert spec_for_index_type("HNSW", 100, 16).startswith("HNSW")
    assert spec_for_index_type("IVFPQ", 1_000_000, 128) == "IVF4096,PQ32x8np,Refine(SQfp16)"
    small = spec_for_index_type("IVFPQ", 100, 16)
    assert small.startswith("IVF2,") and small.endswith("x4np,Refine(SQfp16)")     # trainable on 100 vectors
    with pytest.raises(JobError, match="at least 16 vectors"):
        spec_for_index_type("IVFPQ", 10, 16)
    with pytest.raises(JobError, match="unknown index type"):
        spec_for_index_type("LSH", 100, 16)


class _StubEncoder:
    """Prepares by name; the model fails on any batch holding 'model-bomb' and returns NaN for 'nan'."""

    dim, version = 3, "stub"

    def prepare(self, name: str) -> str:
        if name == "bad-input":
            raise PoseDataError("bad-input.npz", "no joint observed")
        if name == "crash":
            raise IndexError("list index out of range")
        return name

    def embed_prepared(self, items, batch_size=64):
        if "model-bomb" in items:
            raise RuntimeError("shape mismatch")
        return np.asarray([[np.nan, 0, 0] if s == "nan" else [1.0, len(s), 0] for s in items], np.float32)


class _NameLoader:
    """Loads a request as its name; remembers the order of prefetch and load calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    def prefetch(self, requests) -> None:
        self.calls.append(("prefetch", [r.sequence_id for r in requests]))

    def load(self, request: EmbedRequest) -> str:
        self.calls.append(("load", [request.sequence_id]))
        return request.sequence_id


def test_a_batch_asks_for_its_files_before_loading_and_for_the_next_batchs_before_embedding():
    loader = _NameLoader()
    embed_requests(_StubEncoder(), loader, [EmbedRequest(n, "ds", "h") for n in ("a", "bb")],
                   upcoming=[EmbedRequest("ccc", "ds", "h")])
    assert loader.calls == [("prefetch", ["a", "bb"]), ("load", ["a"]), ("load", ["bb"]), ("prefetch", ["ccc"])]


def test_one_bad_sequence_never_costs_the_others_their_embeddings():
    names = ["a", "bad-input", "bb", "crash", "model-bomb", "nan", "ccc"]
    batch = embed_requests(_StubEncoder(), _NameLoader(), [EmbedRequest(n, "ds", "h") for n in names])
    ids, vectors, errors = batch
    assert ids == ["a", "bb", "ccc"]
    np.testing.assert_array_equal(vectors[:, 1], [1, 2, 3])
    assert errors["bad-input"] == "bad-input.npz: no joint observed"
    assert errors["crash"] == "crash: IndexError: list index out of range"
    assert errors["model-bomb"] == "model-bomb: RuntimeError: shape mismatch"
    assert "non-finite" in errors["nan"]
