"""Evaluate an encoder on labelled sequences: the protocol ``posestyle evaluate`` and benchmarks share.

Sequences are seen in the benchmark view first (``view="2d"``: a 3D take goes through its
BENCHMARK.md virtual camera; ``"3d"``: as captured), then embedded; a sequence that cannot be
encoded is reported and left out, never fatal for the others.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from encoder.data.camera import training_view
from encoder.data.errors import PoseDataError
from encoder.data.sequence import PoseSequence
from encoder.evaluation.cost import measure_cost
from encoder.evaluation.metrics import compute_metrics
from encoder.evaluation.results import CostMetrics, StyleMetrics
from encoder.inference import StyleEncoder


@dataclass
class Evaluation:
    """The metrics (and the cost, when timed), the query embeddings/styles they came from (for the
    report's map) and the one-line errors of the sequences left out."""

    metrics: StyleMetrics
    embeddings: np.ndarray
    labels: list[str]
    skipped: list[str] = field(default_factory=list)
    cost: CostMetrics | None = None


def embed_labelled(encoder: StyleEncoder, seqs: Sequence[PoseSequence], view: str, batch_size: int = 64
                   ) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Embeddings, logits and styles of the labelled sequences that could be encoded, and the
    one-line errors of those that could not (unlabelled ones are skipped silently)."""
    items, labels, errors = [], [], []
    for seq in seqs:
        if seq.label is None:
            continue
        try:
            items.append(encoder.prepare(training_view(seq, view)))
            labels.append(seq.label)
        except PoseDataError as err:
            errors.append(str(err))
    if not items:
        dim, k = encoder.dim, len(encoder.labels)
        return np.zeros((0, dim), np.float32), np.zeros((0, k), np.float32), [], errors
    emb, logits = encoder.encode_prepared(items, batch_size)
    return emb, logits, labels, errors


def evaluate_encoder(encoder: StyleEncoder, queries: Sequence[PoseSequence], gallery: Sequence[PoseSequence] = (),
                     view: str | None = None, batch_size: int = 64, seed: int = 0, cost: bool = False,
                     cost_sequences: int = 128) -> Evaluation:
    """Every BENCHMARK.md metric of ``encoder`` (a ``StyleEncoder``) on ``queries``.

    Retrieval runs against ``gallery`` (train+val) when given, and leave-one-out in the queries.
    ``view`` defaults to the encoder's input (``2d`` or ``3d``); ``seed`` seeds k-means.
    ``cost`` adds the timing block (CPU, 2 threads, batch 64) on up to ``cost_sequences`` queries.
    """
    view = view or ("2d" if encoder.input_dims == 2 else "3d")
    emb, logits, labels, errors = embed_labelled(encoder, queries, view, batch_size)
    if not labels:
        raise PoseDataError("<queries>", "no labelled query sequence could be encoded" +
                            (f" (first error: {errors[0]})" if errors else ""))
    gal_emb = gal_labels = None
    gal_errors: list[str] = []
    if gallery:
        gal_emb, _, gal_labels, gal_errors = embed_labelled(encoder, gallery, view, batch_size)
    metrics = compute_metrics(emb, logits, labels, label_names=encoder.labels,
                              gallery_embeddings=gal_emb if gal_labels else None,
                              gallery_labels=gal_labels or None, seed=seed)
    timing = None
    if cost:
        timed = [training_view(s, view) for s in queries[:cost_sequences] if s.label is not None]
        timing = measure_cost(encoder, timed, batch_size=64, threads=2)
    return Evaluation(metrics, emb, labels, errors + gal_errors, timing)
