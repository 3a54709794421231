"""The Ray backend produces the same index as the local one (same ids, same vectors, same failures)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from encoder.data.dataset import DatasetCache
from retrieval.index import IndexManager
from retrieval.jobs import ReindexJob, ReindexSummary, register_dataset
from retrieval.store import MetadataStore
from tests.retrieval.jobs_support import demo_sequences, single_torch_thread, tiny_checkpoint, write_dataset  # noqa: F401 (single_torch_thread: autouse fixture)

ray = pytest.importorskip("ray")

N_SEQUENCES = 24


def _reindex(root: Path, dataset: DatasetCache, checkpoint: Path, backend: str
             ) -> tuple[ReindexSummary, dict[str, np.ndarray], dict[str, object]]:
    with MetadataStore.open(root / "metadata.db") as store:
        register_dataset(store, dataset)
        summary = ReindexJob(store, IndexManager(root, store), dataset, checkpoint, backend, batch_size=8,
                             progress=False).run()
        searcher = IndexManager(root, store).open_live()
        vectors = dict(zip(searcher.sequence_ids, searcher.vectors(np.arange(searcher.count))))
        return summary, vectors, store.get_job(summary.job_id).params


@pytest.mark.slow
def test_ray_backend_builds_the_same_index_as_local(tmp_path):
    checkpoint = tmp_path / "encoder.safetensors"
    tiny_checkpoint(checkpoint, seed=3)
    dataset = write_dataset(tmp_path / "dataset", demo_sequences(N_SEQUENCES), tmp_path / "raw")
    broken = dataset.names[5]
    dataset.array_path(dataset.item(broken).content_hash).write_bytes(b"\x00" * 10)

    local, local_vectors, _ = _reindex(tmp_path / "local", dataset, checkpoint, "local")
    remote, remote_vectors, params = _reindex(tmp_path / "ray", dataset, checkpoint, "ray")

    assert params["backend"] == "ray" and remote.backend == "ray"
    assert not ray.is_initialized()                       # the local Ray it started is shut down
    assert (remote.embedded, remote.failed) == (local.embedded, local.failed) == (N_SEQUENCES - 1, 1)
    assert remote.errors == local.errors and broken in remote.errors
    assert sorted(remote_vectors) == sorted(local_vectors) == sorted(set(dataset.names) - {broken})
    for sequence_id, vector in local_vectors.items():
        np.testing.assert_allclose(remote_vectors[sequence_id], vector, atol=1e-5, err_msg=sequence_id)
