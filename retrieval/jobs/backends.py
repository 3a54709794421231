"""Embedding backends: turn embed requests into (ids, embeddings, errors) batches.

Every backend yields ``EmbeddedBatch``es covering each request exactly once, either with a vector
or with a one-line error; what happens to the results (shards, bookkeeping) is the job's business,
so the local and the Ray backend share it. ``embed_requests`` is the per-batch work both run: load,
preprocess and encode, where one bad sequence never costs the others their embeddings.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from encoder.data.batch import SegmentedSequence
from encoder.data.errors import PoseDataError
from encoder.inference import StyleEncoder
from retrieval.jobs.sources import EmbedRequest, SequenceLoader

DEFAULT_BATCH_SIZE = 256
MODEL_BATCH_SIZE = 64


@dataclass
class EmbeddedBatch:
    """Results of one batch: ``embeddings[i]`` belongs to ``ids[i]``; ``errors`` maps failed ids to a line."""

    ids: list[str]
    embeddings: np.ndarray
    errors: dict[str, str] = field(default_factory=dict)

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
    return f"{sequence_id}: {type(err).__name__}: {' '.join(str(err).split())}"


def embed_requests(encoder: StyleEncoder, loader: SequenceLoader, requests: Sequence[EmbedRequest],
                   model_batch_size: int = MODEL_BATCH_SIZE) -> EmbeddedBatch:
    """Load, preprocess and embed ``requests``; a sequence that fails any step gets its error line
    and the rest are still embedded (a failing model batch is retried one sequence at a time)."""
    errors: dict[str, str] = {}
    prepared: list[tuple[str, SegmentedSequence]] = []
    for request in requests:
        try:
            prepared.append((request.sequence_id, encoder.prepare(loader.load(request))))
        except Exception as err:  # one unreadable or unprocessable sequence must not stop the batch
            errors[request.sequence_id] = _one_line(request.sequence_id, err)
    ids = [sid for sid, _ in prepared]
    items = [item for _, item in prepared]
    vectors = np.zeros((len(items), encoder.dim), np.float32)
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
    return EmbeddedBatch(ids=[ids[i] for i in keep], embeddings=kept, errors=errors)


class LocalBackend:
    """Embeds in this process, ``batch_size`` sequences at a time."""

    name = "local"

    def __init__(self, checkpoint: str | Path, *, batch_size: int = DEFAULT_BATCH_SIZE,
                 encoder: StyleEncoder | None = None, device: str = "cpu") -> None:
        """``encoder`` reuses an already loaded encoder of ``checkpoint``."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.checkpoint = Path(checkpoint)
        self.batch_size = batch_size
        self.device = device
        self._encoder = encoder
        self._loader = SequenceLoader()

    @property
    def encoder(self) -> StyleEncoder:
        if self._encoder is None:
            self._encoder = StyleEncoder.load(self.checkpoint, device=self.device)
        return self._encoder

    def embed_batches(self, requests: Sequence[EmbedRequest]) -> Iterator[EmbeddedBatch]:
        for start in range(0, len(requests), self.batch_size):
            yield embed_requests(self.encoder, self._loader, requests[start:start + self.batch_size])

    def close(self) -> None:
        self._encoder = None
