"""Ray backend: embed with a pool of Ray actors, each loading the encoder once.

Each ``RayEmbedder`` actor (``threads`` CPUs) runs ``embed_requests`` on ``batch_size`` requests at a
time, exactly the local backend's per-batch work, and returns its ``EmbeddedBatch``; the driver
keeps ``PREFETCH_PER_ACTOR`` batches queued on every actor and hands results back in request
order, so shards and bookkeeping are the local backend's. Plain actors rather than Ray Data: on a
2-core machine the Ray Data streaming executor and its Arrow blocks cost the driver a quarter of
the actors' throughput. Without ``address`` a small local Ray is started (``num_cpus`` CPUs, no
dashboard, a ~200 MB object store) and shut down by ``close``; with one, that cluster is joined and
left running.
"""
from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from encoder.data.errors import one_line
from encoder.inference import StyleEncoder, check_precision
from retrieval.jobs.backends import DEFAULT_BATCH_SIZE, EmbeddedBatch, embed_requests
from retrieval.jobs.errors import JobError
from retrieval.jobs.sources import EmbedRequest, SequenceLoader

DEFAULT_NUM_CPUS = 2
DEFAULT_OBJECT_STORE_BYTES = 200 * 1024 * 1024
PREFETCH_PER_ACTOR = 2   # batches queued on each actor: one running, one ready when it finishes


class RayEmbedder:
    """Ray actor: loads the encoder once, embeds lists of requests like a local worker."""

    def __init__(self, checkpoint: str, torch_threads: int = 1, precision: str = "float32") -> None:
        torch.set_num_threads(max(1, torch_threads))
        self.encoder = StyleEncoder.load(checkpoint, precision=precision)
        self.loader = SequenceLoader()

    def embed(self, requests: list[EmbedRequest]) -> EmbeddedBatch:
        return embed_requests(self.encoder, self.loader, requests)


class RayBackend:
    """Embeds with Ray actors of ``threads`` torch threads and CPUs each (see module doc);
    results come back in ``batch_size`` batches."""

    name = "ray"

    def __init__(self, checkpoint: str | Path, *, batch_size: int = DEFAULT_BATCH_SIZE, address: str | None = None,
                 num_cpus: int = DEFAULT_NUM_CPUS, actors: int | None = None, threads: int = 1,
                 object_store_memory: int = DEFAULT_OBJECT_STORE_BYTES, precision: str = "float32") -> None:
        """``actors`` defaults to ``num_cpus`` (one CPU each) for a local Ray, 2 on a cluster;
        ``precision``: the actors' ``StyleEncoder`` precision."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.checkpoint = Path(checkpoint).resolve()
        self.batch_size = batch_size
        self.address = address
        self.num_cpus = num_cpus
        self.threads = max(1, threads)
        self.actors = actors or (max(1, num_cpus // self.threads) if address is None else 2)
        self.object_store_memory = object_store_memory
        self.precision = check_precision(precision)
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
                raise JobError(f"cannot start or join {where}: {one_line(err)}") from None
            self._started_ray = True
        return ray

    def embed_batches(self, requests: Sequence[EmbedRequest]) -> Iterator[EmbeddedBatch]:
        if not requests:
            return
        ray = self._ray()
        chunks = [list(requests[i:i + self.batch_size]) for i in range(0, len(requests), self.batch_size)]
        actor_class = ray.remote(num_cpus=self.threads, max_restarts=1, max_task_retries=1)(RayEmbedder)
        actors = [actor_class.remote(str(self.checkpoint), self.threads, self.precision)
                  for _ in range(min(self.actors, len(chunks)))]
        queued: deque[tuple[Any, Any]] = deque()      # (result ref, actor), in request order
        submitted = 0
        try:
            for _ in range(PREFETCH_PER_ACTOR):
                for actor in actors:
                    if submitted < len(chunks):
                        queued.append((actor.embed.remote(chunks[submitted]), actor))
                        submitted += 1
            while queued:
                ref, actor = queued.popleft()
                try:
                    batch = ray.get(ref)
                except ray.exceptions.RayError as err:   # an actor died twice, or Ray itself failed
                    raise JobError(f"ray actor failed: {one_line(err)[:300]}") from None
                if submitted < len(chunks):
                    queued.append((actor.embed.remote(chunks[submitted]), actor))
                    submitted += 1
                yield batch
        finally:
            for actor in actors:
                ray.kill(actor)

    def close(self) -> None:
        """Shut down the local Ray this backend started (a joined cluster is left alone)."""
        if self._started_ray:
            import ray

            ray.shutdown()
            self._started_ray = False
