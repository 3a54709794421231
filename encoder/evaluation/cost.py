"""The BENCHMARK.md cost figures: parameters, embeddings per second, single-query latency.

Protocol: CPU, ``threads`` torch threads (2 by default), batch 64. ``embeddings_per_second``
is end to end (preprocessing + model, from ``PoseSequence``); ``model_embeddings_per_second``
is the model alone on preprocessed inputs. Latency is the median of ``latency_repeats``
single-sequence ``embed`` calls (after one warm-up call).

On a shared machine another process can steal the CPU in the middle of a timing, so each
throughput figure is the best of ``repeats`` timings (the least disturbed one).
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from encoder.data.sequence import PoseSequence
from encoder.evaluation.results import CostMetrics
from encoder.inference import StyleEncoder, torch_threads


def measure_cost(encoder: StyleEncoder, seqs: Sequence[PoseSequence], batch_size: int = 64, threads: int = 2,
                 latency_repeats: int = 5, repeats: int = 5) -> CostMetrics:
    """Time ``encoder`` on ``seqs``: the cost block of the metrics."""
    if not seqs:
        raise ValueError("measure_cost needs at least one sequence")
    with torch_threads(threads):
        encoder.embed(list(seqs[:1]))                                        # warm-up: one query,
        encoder.embed(list(seqs[:batch_size]), batch_size=batch_size)        # and one full batch
        total, model_only = float("inf"), float("inf")
        for _ in range(max(1, repeats)):
            start = time.perf_counter()
            items = [encoder.prepare(s) for s in seqs]
            encoder.embed_prepared(items, batch_size=batch_size)
            total = min(total, time.perf_counter() - start)
            start = time.perf_counter()
            encoder.embed_prepared(items, batch_size=batch_size)
            model_only = min(model_only, time.perf_counter() - start)
        latencies = []
        for i in range(latency_repeats):
            one = [seqs[i % len(seqs)]]
            start = time.perf_counter()
            encoder.embed(one)
            latencies.append(time.perf_counter() - start)
    return CostMetrics(parameters=int(encoder.num_parameters()), embeddings_per_second=len(seqs) / total,
                       model_embeddings_per_second=len(seqs) / model_only,
                       single_query_latency_ms=float(np.median(latencies) * 1000.0),
                       timed_sequences=len(seqs), batch_size=batch_size, threads=threads, device="cpu",
                       repeats=max(1, repeats))
