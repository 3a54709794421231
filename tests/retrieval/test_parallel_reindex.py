"""Re-index parallelism: worker processes give the local backend's exact results, workers x threads
never exceed the cores, and the bench's synthetic walk corpus is distinct walk by walk."""
from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from app.cli import cli
from benchmarks.reindex_bench import make_walk_corpus
from encoder.data.dataset import DatasetCache
from retrieval.jobs import JobError, LocalBackend
from retrieval.jobs.backends import available_cores, resolve_parallelism
from retrieval.jobs.sources import EmbedRequest
from tests.retrieval.jobs_support import (  # noqa: F401 (single_torch_thread: autouse fixture)
    demo_sequences,
    single_torch_thread,
    tiny_checkpoint,
    write_dataset,
)


def test_parallelism_defaults_fill_the_cores_with_single_thread_workers():
    assert resolve_parallelism(None, None, cores=4) == (4, 1)
    assert resolve_parallelism(None, 2, cores=4) == (2, 2)
    assert resolve_parallelism(1, None, cores=4) == (1, 1)


def test_workers_times_threads_beyond_the_cores_is_refused():
    with pytest.raises(JobError, match="exceeds the 2 CPU cores"):
        resolve_parallelism(2, 2, cores=2)
    with pytest.raises(JobError, match="exceeds"):
        resolve_parallelism(None, 3, cores=2)


def test_cli_refuses_more_workers_than_cores(tmp_path):
    tiny_checkpoint(tmp_path / "encoder.safetensors", seed=0)
    result = CliRunner().invoke(cli, ["reindex", "-c", str(tmp_path / "encoder.safetensors"), "--root",
                                      str(tmp_path / "idx"), "--workers", str(available_cores() + 1), "--no-progress"])
    assert result.exit_code == 2
    assert "exceeds the" in result.output and "CPU cores" in result.output


@pytest.mark.slow
def test_worker_processes_embed_exactly_what_this_process_does(tmp_path):
    checkpoint = tmp_path / "encoder.safetensors"
    tiny_checkpoint(checkpoint, seed=2)
    dataset = write_dataset(tmp_path / "dataset", demo_sequences(10), tmp_path / "raw")
    broken = dataset.names[3]
    dataset.array_path(dataset.item(broken).content_hash).write_bytes(b"\x00" * 10)
    requests = [EmbedRequest(it.name, str(dataset.root.resolve()), it.content_hash) for it in dataset.items]

    def results(backend: LocalBackend) -> tuple[dict[str, np.ndarray], dict[str, str], list[dict[str, float]]]:
        vectors, errors, seconds = {}, {}, []
        for batch in backend.embed_batches(requests):
            vectors.update(zip(batch.ids, batch.embeddings))
            errors.update(batch.errors)
            seconds.append(batch.seconds)
        return vectors, errors, seconds

    here, here_errors, _ = results(LocalBackend(checkpoint, batch_size=3, workers=1))
    pooled, pooled_errors, seconds = results(LocalBackend(checkpoint, batch_size=3, workers=2, threads=1,
                                                          pool_min_sequences=0))

    assert list(pooled_errors) == list(here_errors) == [broken]
    assert sorted(pooled) == sorted(here) == sorted(set(dataset.names) - {broken})
    for sequence_id, vector in here.items():
        np.testing.assert_allclose(pooled[sequence_id], vector, atol=1e-5, err_msg=sequence_id)
    assert len(seconds) == 4 and all(set(s) == {"read", "preprocess", "embed"} for s in seconds)


@pytest.mark.slow
def test_worker_processes_embed_in_the_precision_asked_for(tmp_path):
    checkpoint = tmp_path / "encoder.safetensors"
    tiny_checkpoint(checkpoint, seed=2)
    dataset = write_dataset(tmp_path / "dataset", demo_sequences(6), tmp_path / "raw")
    requests = [EmbedRequest(it.name, str(dataset.root.resolve()), it.content_hash) for it in dataset.items]

    def vectors(backend: LocalBackend) -> np.ndarray:
        found = {sid: v for batch in backend.embed_batches(requests) for sid, v in zip(batch.ids, batch.embeddings)}
        return np.stack([found[r.sequence_id] for r in requests])

    exact = vectors(LocalBackend(checkpoint, batch_size=3, workers=1))
    here = vectors(LocalBackend(checkpoint, batch_size=3, workers=1, precision="bfloat16"))
    pooled = vectors(LocalBackend(checkpoint, batch_size=3, workers=2, threads=1, pool_min_sequences=0,
                                  precision="bfloat16"))
    np.testing.assert_allclose(pooled, here, atol=1e-5)      # the workers ran in bfloat16 too
    assert not np.array_equal(here, exact)
    assert (here * exact).sum(axis=1).min() > 0.999


def test_a_precision_the_encoder_does_not_know_is_refused(tmp_path):
    tiny_checkpoint(tmp_path / "encoder.safetensors", seed=0)
    result = CliRunner().invoke(cli, ["reindex", "-c", str(tmp_path / "encoder.safetensors"), "--root",
                                      str(tmp_path / "idx"), "--precision", "float16", "--no-progress"])
    assert result.exit_code == 2 and "float16" in result.output
    with pytest.raises(ValueError, match="unknown precision 'int8'"):
        LocalBackend(tmp_path / "encoder.safetensors", precision="int8")


def test_walk_corpus_walks_are_distinct_and_the_cache_is_reused(tmp_path):
    corpus = make_walk_corpus(tmp_path / "walks", 12, pool=4)
    assert len(corpus) == 12 and len({it.content_hash for it in corpus.items}) == 12
    first, copy = corpus.load(corpus.names[0]), corpus.load(corpus.names[4])    # walk 4 is a copy of walk 0
    assert copy.num_frames <= first.num_frames and not np.array_equal(copy.joints, first.joints[-copy.num_frames:])
    again = make_walk_corpus(tmp_path / "walks", 12, pool=4)
    assert again.version == corpus.version and isinstance(again, DatasetCache)
