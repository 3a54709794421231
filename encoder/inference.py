"""``StyleEncoder``: a trained checkpoint as a function from pose sequences to style embeddings.

The encoder runs in eval mode under ``torch.inference_mode``; the same input always gives the same
embedding (sequences are batched by window count, which does not change any result beyond
float rounding because every model masks its padding).

View handling: a 3D sequence given to a 2D encoder is seen through a fixed *frontal* virtual
camera (``frontal_camera``): aimed at the mean mid-hip, placed on the side the walker faces on
average (hips and shoulders), level (pitch 0), at the benchmark distance max(6 m, 1.5 x the
largest horizontal mid-hip excursion), focal 1000 px, 1920x1080, no jitter or dropout. The
benchmark's own ``2d`` view is a per-take random camera; callers that want it convert first
with ``encoder.data.camera.benchmark_2d_view``. A 2D sequence given to a 3D encoder is an error.

Precision: ``"float32"`` (default) runs the model in single precision. ``"bfloat16"`` runs its matrix
products and convolutions in bfloat16 under ``torch.autocast``; the heads and the pooling stay in
float32, so the stored vector is float32. On a CPU with native bfloat16 instructions (AVX512-BF16,
AMX) the default ST-GCN ran 1.3-1.9x faster (``docs/benchmarks/encoder_speed.md``, session 23), with
the model's embedding at cosine >= 0.9999 to float32's; other CPUs emulate bfloat16, slowly. Its
effect on the quality figures is measured in ``docs/benchmarks/robustness-bfloat16.md``.

A checkpoint trained with ``motion_statistics_weight`` > 0 appends the take's hand-made motion
statistics (``encoder.data.motion_statistics``) to the model's embedding; ``dim`` counts both parts.
"""
from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from encoder.checkpoint import CheckpointMeta, load_checkpoint
from encoder.data.batch import SegmentedSequence, collate_segments
from encoder.data.camera import CameraParams, placed_camera, project_points, visible_mask
from encoder.data.errors import PoseDataError
from encoder.data.motion_statistics import PREPROCESSED, RAW, MotionStatisticsScaler, motion_statistics
from encoder.data.preprocess import PreprocessConfig, mirror_segments, preprocess_sequence
from encoder.data.sequence import PoseSequence
from encoder.data.skeleton import BODY_REGIONS


def _source(seq: PoseSequence) -> str:
    return seq.source or seq.name or "<sequence>"


def frontal_camera(seq3d: PoseSequence) -> CameraParams:
    """The fixed frontal camera used to show a 3D sequence to a 2D encoder (see module doc)."""
    return placed_camera(seq3d, azimuth_deg=0.0, pitch_deg=0.0)


def frontal_2d_view(seq3d: PoseSequence) -> PoseSequence:
    """Project a 3D sequence through ``frontal_camera``; joints it cannot see get confidence 0."""
    params = frontal_camera(seq3d)
    valid = (seq3d.confidence > 0) & visible_mask(seq3d.joints, params)
    pixels = project_points(seq3d.joints, params, valid)
    return seq3d.with_(joints=pixels, confidence=np.where(valid, seq3d.confidence, 0.0).astype(np.float32),
                       metadata={**seq3d.metadata, "view": "2d-frontal", "camera": params.to_dict()})


# A query of a few sequences runs on one CPU thread: its tensors are too small to split well, and
# on a busy machine a second thread mostly waits (measured: 703 ms -> 26 ms end to end per query in
# docs/benchmarks/retrieval.md). Large batches keep torch's thread count.
SERIAL_MAX_SEQUENCES = 8


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Torch intra-op threads set to ``n`` inside, restored after (None: unchanged)."""
    previous = torch.get_num_threads()
    if n is not None and n != previous:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n is not None and n != previous:
            torch.set_num_threads(previous)


PRECISIONS = ("float32", "bfloat16")


def check_precision(precision: str) -> str:
    """``precision`` if it is one of ``PRECISIONS``; a ``ValueError`` naming the choices otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return precision


class StyleEncoder:
    """A loaded encoder: ``embed``, ``predict`` and ``explain`` pose sequences."""

    def __init__(self, model: torch.nn.Module, meta: CheckpointMeta, device: str | torch.device = "cpu",
                 mirror_tta: bool = False, precision: str = "float32") -> None:
        self.model = model.to(device).eval()
        self.precision = check_precision(precision)
        self.meta = meta
        self.device = torch.device(device)
        self.preprocess_config = PreprocessConfig.from_dict(meta.preprocess_config).for_inference()
        self.statistics = (MotionStatisticsScaler.from_dict(meta.motion_statistics)
                           if meta.motion_statistics else None)
        # test-time mirror averaging: embed each sequence and its left/right mirror, average
        # (style does not depend on which side the camera sees); twice the model cost
        self.mirror_tta = mirror_tta

    def without_statistics(self) -> "StyleEncoder":
        """The same model embedding without the appended motion statistics (the learned part alone)."""
        plain = copy.copy(self)
        plain.statistics = None
        return plain

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", mirror_tta: bool = False,
             precision: str = "float32") -> "StyleEncoder":
        """Load a checkpoint (``.safetensors``; see ``encoder.checkpoint``); ``precision``: see the module doc."""
        model, meta = load_checkpoint(path, device=device)
        return cls(model, meta, device, mirror_tta, precision)

    # -- description ---------------------------------------------------------------------------
    @property
    def version(self) -> str:
        """Content-derived id of the weights and settings (``encoder_version``)."""
        return self.meta.encoder_version

    @property
    def model_dim(self) -> int:
        """Width of the model's own embedding (the first columns of every embedding)."""
        return int(self.model.config.embedding_dim)

    @property
    def dim(self) -> int:
        """Width of the embeddings this encoder returns: the model's, plus the appended statistics."""
        return self.model_dim + (self.statistics.num_features if self.statistics is not None else 0)

    @property
    def labels(self) -> list[str]:
        return list(self.meta.labels)

    @property
    def model_name(self) -> str:
        return self.meta.model_name

    @property
    def input_dims(self) -> int:
        return int(self.meta.input_dims)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    # -- input -----------------------------------------------------------------------------------
    def to_input_view(self, seq: PoseSequence) -> PoseSequence:
        """The sequence in the encoder's input space (3D -> frontal 2D for a 2D encoder)."""
        if seq.dims == self.input_dims:
            return seq
        if seq.dims == 3 and self.input_dims == 2:
            return frontal_2d_view(seq)
        raise PoseDataError(_source(seq), f"is {seq.dims}D but encoder {self.version} ({self.model_name}) "
                            f"needs {self.input_dims}D input; a 2D sequence cannot be lifted to 3D")

    def prepare(self, seq: PoseSequence) -> SegmentedSequence:
        """View conversion + the checkpoint's preprocessing chain (+ the motion statistics it appends)."""
        view = self.to_input_view(seq)
        inputs = None if self.statistics is None else self.statistics.inputs
        item = preprocess_sequence(view, self.preprocess_config, with_statistics=inputs == PREPROCESSED)
        if inputs == RAW:
            item.statistics = motion_statistics(view)
        return item

    # -- inference -------------------------------------------------------------------------------
    def encode_prepared(self, items: Sequence[SegmentedSequence], batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings (N, D) and logits (N, K), in input order; mirror-averaged with ``mirror_tta``
        (the model's part; appended statistics are the take's own)."""
        emb, logits = self._encode(items, batch_size)
        if self.mirror_tta:
            emb_m, logits_m = self._encode([mirror_segments(it) for it in items], batch_size)
            emb = emb + emb_m
            emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
            logits = (logits + logits_m) / 2.0
        return self._with_statistics(emb, items), logits

    def _with_statistics(self, emb: np.ndarray, items: Sequence[SegmentedSequence]) -> np.ndarray:
        """The model's (N, D) embeddings of ``items``, with their motion statistics appended if this encoder does."""
        if self.statistics is None or not len(items):
            return np.asarray(emb, dtype=np.float32)
        stats = [it.statistics for it in items]
        missing = sum(1 for st in stats if st is None)
        if missing:
            raise ValueError(f"{missing} of {len(items)} inputs carry no motion statistics; encoder {self.version} "
                             "appends them: prepare inputs with its prepare()")
        return self.statistics.append(emb, np.stack(stats)).astype(np.float32)   # type: ignore[arg-type]

    @torch.inference_mode()
    def _encode(self, items: Sequence[SegmentedSequence], batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """One pass of the model: embeddings (N, D) and logits (N, K), batched by window count."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        n = len(items)
        emb = np.zeros((n, self.model_dim), np.float32)
        logits = np.zeros((n, len(self.labels)), np.float32)
        order = sorted(range(n), key=lambda i: items[i].num_segments)
        max_m = self.preprocess_config.max_segments
        with (torch_threads(1 if n <= SERIAL_MAX_SEQUENCES and self.device.type == "cpu" else None),
              torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bfloat16")):
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                batch = collate_segments([items[i] for i in idx], max_segments=max_m).to(self.device)
                out = self.model(batch)
                emb[idx] = out.embedding.float().cpu().numpy()
                logits[idx] = out.logits.float().cpu().numpy()
        return emb, logits

    @torch.inference_mode()
    def logits_from_embeddings(self, embeddings: np.ndarray) -> np.ndarray | None:
        """(N, K) style logits of this encoder's own (N, D) embeddings, without re-reading the inputs;
        None when the model cannot (its logits need more than the embedding) or under mirror
        averaging (averaged logits are not the averaged embedding's)."""
        if self.mirror_tta:
            return None
        own = np.asarray(embeddings, np.float32)[:, :self.model_dim]
        if self.statistics is not None:   # the model's part is unit norm, whatever scaled the whole vector since
            own = own / np.maximum(np.linalg.norm(own, axis=1, keepdims=True), 1e-12)
        vectors = torch.from_numpy(np.ascontiguousarray(own, np.float32)).to(self.device)
        logits = self.model.logits_from_embedding(vectors)
        return None if logits is None else logits.float().cpu().numpy()

    def embed_prepared(self, items: Sequence[SegmentedSequence], batch_size: int = 64) -> np.ndarray:
        """Embeddings of already preprocessed sequences."""
        if not items:
            return np.zeros((0, self.dim), np.float32)
        return self.encode_prepared(items, batch_size)[0]

    def embed(self, seqs: Sequence[PoseSequence], batch_size: int = 64) -> np.ndarray:
        """(N, D) float32 style embeddings, in input order: unit norm, or with motion statistics appended a
        unit-norm model part followed by the statistics part (compare them by cosine)."""
        return self.embed_and_logits(seqs, batch_size)[0]

    def embed_and_logits(self, seqs: Sequence[PoseSequence], batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings (N, D) and style logits (N, K) in one pass."""
        if not seqs:
            return np.zeros((0, self.dim), np.float32), np.zeros((0, len(self.labels)), np.float32)
        return self.encode_prepared([self.prepare(s) for s in seqs], batch_size)

    def embed_with_errors(self, seqs: Sequence[PoseSequence], batch_size: int = 64
                          ) -> tuple[np.ndarray, list[PoseDataError | None]]:
        """Like ``embed``, but a bad sequence does not lose the others: its row is all zeros and
        its one-line ``PoseDataError`` is returned at its position (None where it succeeded)."""
        items: list[SegmentedSequence] = []
        good: list[int] = []
        errors: list[PoseDataError | None] = []
        for i, seq in enumerate(seqs):
            try:
                items.append(self.prepare(seq))
                good.append(i)
                errors.append(None)
            except PoseDataError as err:
                errors.append(err)
        emb = np.zeros((len(seqs), self.dim), np.float32)
        if items:
            emb[good] = self.encode_prepared(items, batch_size)[0]
        return emb, errors

    def predict(self, seqs: Sequence[PoseSequence], batch_size: int = 64) -> tuple[list[str], np.ndarray]:
        """Predicted style per sequence and the (N, K) softmax probabilities (columns: ``labels``)."""
        _, logits = self.embed_and_logits(seqs, batch_size)
        probs = torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy().astype(np.float32)
        return [self.labels[int(k)] for k in probs.argmax(axis=1)], probs

    @torch.inference_mode()
    def explain(self, seq: PoseSequence) -> dict[str, Any]:
        """Which windows and body regions the embedding rests on.

        ``segment_weights`` (M,) per window (None if the model has none), ``phases`` (M,) window
        centres as a fraction of the sequence, ``region_weights`` {region: weight} (None if the
        model has none), plus the embedding, the predicted style and its probabilities.
        """
        item = self.prepare(seq)
        batch = collate_segments([item], max_segments=self.preprocess_config.max_segments).to(self.device)
        out = self.model(batch)
        m = min(item.num_segments, batch.positions.shape[1])
        probs = torch.softmax(out.logits[0].double(), dim=0).cpu().numpy()
        segment = (out.segment_weights[0, :m].float().cpu().numpy()
                   if out.segment_weights is not None else None)
        regions = None
        if out.region_weights is not None:
            weights = out.region_weights[0].float().cpu().numpy().reshape(-1)
            names = (list(BODY_REGIONS) if len(weights) == len(BODY_REGIONS)
                     else [f"region_{i}" for i in range(len(weights))])
            regions = {name: float(w) for name, w in zip(names, weights)}
        return {"segment_weights": segment, "region_weights": regions,
                "phases": item.phase[:m].astype(np.float32),
                "embedding": self._with_statistics(out.embedding.float().cpu().numpy(), [item])[0],
                "label": self.labels[int(probs.argmax())],
                "probabilities": {lab: float(p) for lab, p in zip(self.labels, probs)}}
