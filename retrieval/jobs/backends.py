"""Embedding backends: turn embed requests into (ids, embeddings, errors) batches.

Every backend yields ``EmbeddedBatch``es covering each request exactly once, either with a vector
or with a one-line error; what happens to the results (shards, bookkeeping) is the job's business,
so the local and the Ray backend share it. ``embed_requests`` is the per-batch work both run: load,
preprocess and encode, where one bad sequence never costs the others their embeddings.

The local backend runs ``workers`` processes of ``threads`` torch threads each; workers x threads
never exceeds the CPUs this process may use (one single-threaded worker per core by default in the
CLI: on a shared machine a second torch thread per process mostly waits).
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from encoder.data.batch import SegmentedSequence
from encoder.data.errors import PoseDataError, one_line
from encoder.inference import StyleEncoder, check_precision, torch_threads
from retrieval.jobs.errors import JobError
from retrieval.jobs.sources import EmbedRequest, SequenceLoader

DEFAULT_BATCH_SIZE = 256
MODEL_BATCH_SIZE = 64
WORKER_STAGES = ("read", "preprocess", "embed")   # per-batch seconds an ``EmbeddedBatch`` reports
_PARENT_POLL_S = 1.0
POOL_MIN_SEQUENCES = 2048   # fewer are embedded in this process: starting workers costs seconds each


def available_cores() -> int:
    """CPUs this process may run on (its affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def resolve_parallelism(workers: int | None, threads: int | None, cores: int | None = None) -> tuple[int, int]:
    """(workers, torch threads per worker): unset values fill the cores (1 thread, one worker per
    core); ``JobError`` when workers x threads would exceed them."""
    cores = cores or available_cores()
    threads = threads or 1
    workers = workers or max(1, cores // threads)
    if workers < 1 or threads < 1:
        raise JobError(f"workers and threads must be >= 1, got {workers} and {threads}")
    if workers * threads > cores:
        raise JobError(f"{workers} workers x {threads} threads = {workers * threads} exceeds the {cores} "
                       "CPU cores available; lower --workers or --threads")
    return workers, threads


@dataclass
class EmbeddedBatch:
    """Results of one batch: ``embeddings[i]`` belongs to ``ids[i]``; ``errors`` maps failed ids to a line."""

    ids: list[str]
    embeddings: np.ndarray
    errors: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)   # time per ``WORKER_STAGES`` stage

    def __iter__(self) -> Iterator[object]:
        """Unpack as ``ids, embeddings, errors``."""
        return iter((self.ids, self.embeddings, self.errors))


@runtime_checkable
class EmbeddingBackend(Protocol):
    """Anything that embeds requests in batches."""

    name: str

    def embed_batches(self, requests: Sequence[EmbedRequest]) -> Iterator[EmbeddedBatch]:
        """Yield batches that together cover every request once (a vector or an error each)."""
        ...

    def close(self) -> None:
        """Release workers and resources (safe to call twice)."""
        ...


def _one_line(sequence_id: str, err: BaseException) -> str:
    """``<source>: <problem>`` for bad pose data; ``<id>: <ErrorType>: <message>`` for anything else."""
    if isinstance(err, PoseDataError):
        return str(err)
    return f"{sequence_id}: {type(err).__name__}: {one_line(err)}"


def embed_requests(encoder: StyleEncoder, loader: SequenceLoader, requests: Sequence[EmbedRequest],
                   model_batch_size: int = MODEL_BATCH_SIZE,
                   upcoming: Sequence[EmbedRequest] = ()) -> EmbeddedBatch:
    """Load, preprocess and embed ``requests``; a sequence that fails any step gets its error line
    and the rest are still embedded (a failing model batch is retried one sequence at a time).
    ``upcoming``: requests of a later batch, whose files the OS reads while this batch is embedded."""
    errors: dict[str, str] = {}
    prepared: list[tuple[str, SegmentedSequence]] = []
    read_s = preprocess_s = 0.0
    t0 = time.perf_counter()
    loader.prefetch(requests)          # the batch's files are read together, not one wait per file
    read_s += time.perf_counter() - t0
    for request in requests:
        t0 = time.perf_counter()
        try:
            seq = loader.load(request)
            t1 = time.perf_counter()
            read_s += t1 - t0
            prepared.append((request.sequence_id, encoder.prepare(seq)))
            preprocess_s += time.perf_counter() - t1
        except Exception as err:  # one unreadable or unprocessable sequence must not stop the batch
            errors[request.sequence_id] = _one_line(request.sequence_id, err)
    t0 = time.perf_counter()
    loader.prefetch(upcoming)
    read_s += time.perf_counter() - t0
    ids = [sid for sid, _ in prepared]
    items = [item for _, item in prepared]
    vectors = np.zeros((len(items), encoder.dim), np.float32)
    t_embed = time.perf_counter()
    if items:
        try:
            vectors = encoder.embed_prepared(items, batch_size=model_batch_size)
        except Exception:  # find the sequence the model chokes on: one at a time
            for i, (sid, item) in enumerate(prepared):
                try:
                    vectors[i] = encoder.embed_prepared([item], batch_size=1)[0]
                except Exception as err:  # the model fails on this one sequence
                    errors[sid] = _one_line(sid, err)
    keep: list[int] = []
    for i, sid in enumerate(ids):
        if sid in errors:
            continue
        norm = float(np.linalg.norm(vectors[i]))
        if not np.isfinite(vectors[i]).all():
            errors[sid] = f"{sid}: encoder {encoder.version} produced a non-finite embedding"
        elif norm < 1e-12:
            errors[sid] = f"{sid}: encoder {encoder.version} produced an all-zero embedding"
        else:
            keep.append(i)
    kept = np.ascontiguousarray(vectors[keep], dtype=np.float32).reshape(len(keep), encoder.dim)
    seconds = {"read": read_s, "preprocess": preprocess_s, "embed": time.perf_counter() - t_embed}
    return EmbeddedBatch(ids=[ids[i] for i in keep], embeddings=kept, errors=errors, seconds=seconds)


# -- worker processes ---------------------------------------------------------------------------------
_worker: dict[str, object] = {}


def _exit_when_orphaned(parent_pid: int) -> None:
    """A worker whose job process died (even by ``kill -9``) exits instead of lingering."""
    while True:
        time.sleep(_PARENT_POLL_S)
        if os.getppid() != parent_pid:
            os._exit(1)


def _start_worker(checkpoint: str, threads: int, parent_pid: int, precision: str = "float32") -> None:
    """Pool initializer: torch threads, the encoder loaded once, the orphan watchdog."""
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()
    _worker["encoder"] = StyleEncoder.load(checkpoint, precision=precision)
    _worker["loader"] = SequenceLoader()


@contextmanager
def _main_module_not_rerun() -> Iterator[None]:
    """While workers start, hide ``__main__``'s file and spec: spawn would otherwise run the calling
    script again in every worker, and a script without a ``__main__`` guard would re-run the job.
    The workers need nothing from it (their code lives in this module)."""
    main = sys.modules["__main__"]
    saved = {name: main.__dict__.pop(name) for name in ("__file__", "__spec__") if name in main.__dict__}
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.update(saved)


def _embed_in_worker(task: tuple[list[EmbedRequest], list[EmbedRequest]]) -> EmbeddedBatch:
    requests, upcoming = task
    return embed_requests(_worker["encoder"], _worker["loader"], requests,  # type: ignore[arg-type]
                          upcoming=upcoming)


def _chunk_at(chunks: list[list[EmbedRequest]], index: int) -> list[EmbedRequest]:
    return chunks[index] if index < len(chunks) else []


class LocalBackend:
    """Embeds ``batch_size`` sequences at a time: in this process (``workers=1``) or in ``workers``
    spawned processes, each with ``threads`` torch threads; batches come back in request order."""

    name = "local"

    def __init__(self, checkpoint: str | Path, *, batch_size: int = DEFAULT_BATCH_SIZE,
                 encoder: StyleEncoder | None = None, device: str = "cpu", workers: int = 1,
                 threads: int | None = 1, pool_min_sequences: int = POOL_MIN_SEQUENCES,
                 precision: str | None = None) -> None:
        """``encoder`` reuses an already loaded encoder of ``checkpoint`` (in-process only);
        ``threads=None`` keeps this process's torch thread count; worker processes are started only
        for at least ``pool_min_sequences`` requests. ``precision`` (``StyleEncoder``'s): the
        encoder's own when one is given, float32 otherwise."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if workers < 1 or (threads is not None and threads < 1):
            raise ValueError(f"workers and threads must be >= 1, got {workers} and {threads}")
        self.checkpoint = Path(checkpoint)
        self.batch_size = batch_size
        self.device = device
        self.workers = workers
        self.threads = threads
        self.pool_min_sequences = pool_min_sequences
        self.precision = check_precision(precision or (encoder.precision if encoder is not None else "float32"))
        if encoder is not None and encoder.precision != self.precision:
            raise ValueError(f"encoder runs in {encoder.precision}, not the {self.precision} asked for")
        self._encoder = encoder
        self._loader = SequenceLoader()

    @property
    def encoder(self) -> StyleEncoder:
        if self._encoder is None:
            self._encoder = StyleEncoder.load(self.checkpoint, device=self.device, precision=self.precision)
        return self._encoder

    def embed_batches(self, requests: Sequence[EmbedRequest]) -> Iterator[EmbeddedBatch]:
        chunks = [list(requests[i:i + self.batch_size]) for i in range(0, len(requests), self.batch_size)]
        in_process = self.workers == 1 or len(chunks) < 2 or self.device != "cpu"
        if in_process or len(requests) < self.pool_min_sequences:
            with torch_threads(self.threads):
                for i, chunk in enumerate(chunks):
                    yield embed_requests(self.encoder, self._loader, chunk, upcoming=_chunk_at(chunks, i + 1))
            return
        # spawn, not fork: a worker must not inherit the job's shard lock or store connection
        context = multiprocessing.get_context("spawn")
        processes = min(self.workers, len(chunks))
        with _main_module_not_rerun():
            pool = context.Pool(processes, initializer=_start_worker,
                                initargs=(str(self.checkpoint.resolve()), self.threads or 1, os.getpid(),
                                          self.precision))
        # each task also names the chunk a worker takes after the batch now running on every worker
        tasks = [(chunk, _chunk_at(chunks, i + processes)) for i, chunk in enumerate(chunks)]
        try:
            yield from pool.imap(_embed_in_worker, tasks)
        except BaseException:  # an error, Ctrl-C, or the consumer stopped early
            pool.terminate()
            raise
        pool.close()
        pool.join()

    def close(self) -> None:
        self._encoder = None
