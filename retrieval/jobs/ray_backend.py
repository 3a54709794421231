"""Ray backend: embed with a pool of Ray Data actors, each loading the encoder once.

``ray.data.from_items`` of (sequence id, dataset folder, content hash) rows is mapped by
``RayEmbedder`` (a class UDF run by an ``ActorPoolStrategy`` of ``actors``) into (id, embedding,
error) rows; the driver turns them back into ``EmbeddedBatch``es, so shards and bookkeeping are
exactly the local backend's. Without ``address`` a small local Ray is started (``num_cpus`` CPUs, no dashboard, a
~200 MB object store) and shut down by ``close``; with one, that cluster is joined and left running.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from encoder.inference import StyleEncoder
from retrieval.jobs.backends import DEFAULT_BATCH_SIZE, WORKER_STAGES, EmbeddedBatch, embed_requests
from retrieval.jobs.errors import JobError
from retrieval.jobs.sources import EmbedRequest, SequenceLoader

DEFAULT_NUM_CPUS = 2
DEFAULT_OBJECT_STORE_BYTES = 200 * 1024 * 1024


class RayEmbedder:
    """Ray Data class UDF: loads the encoder once per actor, embeds numpy batches of requests."""

    def __init__(self, checkpoint: str, torch_threads: int = 1) -> None:
        torch.set_num_threads(max(1, torch_threads))
        self.encoder = StyleEncoder.load(checkpoint)
        self.loader = SequenceLoader()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        requests = [EmbedRequest(str(s), str(d), str(h)) for s, d, h in
                    zip(batch["sequence_id"], batch["dataset"], batch["content_hash"])]
        result = embed_requests(self.encoder, self.loader, requests)
        share = {stage: np.full(len(requests), result.seconds.get(stage, 0.0) / max(1, len(requests)))
                 for stage in WORKER_STAGES}
        row_of = {sid: i for i, sid in enumerate(result.ids)}
        embeddings = np.zeros((len(requests), self.encoder.dim), np.float32)
        errors: list[str] = []
        for j, request in enumerate(requests):
            if request.sequence_id in row_of:
                embeddings[j] = result.embeddings[row_of[request.sequence_id]]
                errors.append("")
            else:
                errors.append(result.errors.get(request.sequence_id, f"{request.sequence_id}: not embedded"))
        return {"sequence_id": np.asarray([r.sequence_id for r in requests]), "embedding": embeddings,
                "error": np.asarray(errors), **{f"{stage}_s": share[stage] for stage in WORKER_STAGES}}


class RayBackend:
    """Embeds with Ray Data actors of ``threads`` torch threads and CPUs each (see module doc);
    results come back in ``batch_size`` batches."""

    name = "ray"

    def __init__(self, checkpoint: str | Path, *, batch_size: int = DEFAULT_BATCH_SIZE, address: str | None = None,
                 num_cpus: int = DEFAULT_NUM_CPUS, actors: int | None = None, threads: int = 1,
                 object_store_memory: int = DEFAULT_OBJECT_STORE_BYTES) -> None:
        """``actors`` defaults to ``num_cpus`` (one CPU each) for a local Ray, 2 on a cluster."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.checkpoint = Path(checkpoint).resolve()
        self.batch_size = batch_size
        self.address = address
        self.num_cpus = num_cpus
        self.threads = max(1, threads)
        self.actors = actors or (max(1, num_cpus // self.threads) if address is None else 2)
        self.object_store_memory = object_store_memory
        self._started_ray = False

    def _ray(self) -> Any:
        """The ``ray`` module, connected (starting a local Ray when no address was given)."""
        try:
            import ray
        except ImportError:
            raise JobError("the ray backend needs Ray: pip install 'posestyle[ray]'") from None
        if not ray.is_initialized():
            # Workers import encoder/retrieval from this checkout even when it is not installed.
            repo_root = str(Path(__file__).resolve().parents[2])
            pythonpath = os.pathsep.join(p for p in (repo_root, os.environ.get("PYTHONPATH", "")) if p)
            common: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False,
                                          logging_level=logging.WARNING,
                                          runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})
            try:
                if self.address:
                    ray.init(address=self.address, **common)
                else:
                    ray.init(num_cpus=self.num_cpus, object_store_memory=self.object_store_memory, **common)
            except (ConnectionError, RuntimeError, ValueError) as err:
                where = self.address or "a local Ray"
                raise JobError(f"cannot start or join {where}: {' '.join(str(err).split())}") from None
            self._started_ray = True
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the job shows its own progress bar
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        return ray

    def embed_batches(self, requests: Sequence[EmbedRequest]) -> Iterator[EmbeddedBatch]:
        if not requests:
            return
        ray = self._ray()
        rows = [{"sequence_id": r.sequence_id, "dataset": r.dataset, "content_hash": r.content_hash}
                for r in requests]
        dataset = ray.data.from_items(rows).map_batches(
            RayEmbedder, fn_constructor_kwargs={"checkpoint": str(self.checkpoint), "torch_threads": self.threads},
            batch_size=self.batch_size, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=self.actors), num_cpus=self.threads)
        for batch in dataset.iter_batches(batch_size=self.batch_size, batch_format="numpy"):
            ids = [str(s) for s in batch["sequence_id"]]
            errors = [str(e) for e in batch["error"]]
            ok = np.asarray([not e for e in errors], dtype=bool)
            yield EmbeddedBatch(ids=[s for s, good in zip(ids, ok) if good],
                                embeddings=np.ascontiguousarray(np.asarray(batch["embedding"], np.float32)[ok]),
                                errors={s: e for s, e in zip(ids, errors) if e},
                                seconds={stage: float(np.sum(batch[f"{stage}_s"])) for stage in WORKER_STAGES})

    def close(self) -> None:
        """Shut down the local Ray this backend started (a joined cluster is left alone)."""
        if self._started_ray:
            import ray

            ray.shutdown()
            self._started_ray = False
