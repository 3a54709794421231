"""The interface every style model shares: ``ModelConfig``, ``StyleOutput``, ``StyleModel``.

A model maps a ``PoseBatch`` (encoder/data/batch.py) to a unit-norm style embedding per
sequence, class logits, and optional diagnostics the app uses to explain a result.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from encoder.data.batch import PoseBatch
from encoder.models.layers import (
    EVAL_WINDOW_CHUNK,
    EmbeddingHead,
    encode_windows_in_chunks,
    gather_windows,
    mean_over_windows,
)


@dataclass(frozen=True)
class ModelConfig:
    """Fields every model config has; each model subclasses it with its own fields.

    ``in_dims``: 2 (image keypoints) or 3 (world joints). ``num_joints``: joints per frame
    (17, the COCO-17 canonical skeleton). ``num_classes``: size of the style head.
    """

    in_dims: int = 2
    num_joints: int = 17
    num_classes: int = 6
    embedding_dim: int = 128
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.in_dims not in (2, 3):
            raise ValueError(f"in_dims must be 2 or 3, got {self.in_dims}")
        if self.num_joints < 1:
            raise ValueError(f"num_joints must be >= 1, got {self.num_joints}")
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        if self.embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {self.embedding_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass
class StyleOutput:
    """What a model returns for a batch of B sequences padded to M windows.

    - ``embedding`` (B, D): L2-normalised style embedding (the retrieval vector).
    - ``logits`` (B, K): style class scores (eq. 12 before the softmax).
    - ``segment_weights`` (B, M): how much each window weighed in the embedding (0 on padding,
      sums to 1 per sequence), or None when the model has no such weighting.
    - ``region_weights`` (B, R): weight of each ``BODY_REGIONS`` region (sums to 1), or None.
    - ``stage_states`` (B, M, D'): per-window states fed to the smoothness loss (eq. 14), or None.
    - ``window_mask`` (B, M) bool: the windows that entered the embedding (real windows with
      at least one observed joint), or None.
    - ``aux``: model-specific tensors its own training terms need (``StyleModel.extra_losses``).
    """

    embedding: torch.Tensor
    logits: torch.Tensor
    window_mask: torch.Tensor | None = None
    segment_weights: torch.Tensor | None = None
    region_weights: torch.Tensor | None = None
    stage_states: torch.Tensor | None = None
    aux: dict[str, torch.Tensor] | None = None


class StyleModel(nn.Module):
    """Base class: ``forward(batch) -> StyleOutput``; ``registry_name`` is set by ``register_model``."""

    registry_name: str = ""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config

    @property
    def embedding_dim(self) -> int:
        return self.config.embedding_dim

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def check_batch(self, batch: PoseBatch) -> None:
        """Raise ``ValueError`` naming the mismatch when the batch does not fit this model."""
        pos = batch.positions
        if pos.dim() != 5:
            raise ValueError(f"{self.registry_name or type(self).__name__}: positions must be "
                             f"(B, M, L, J, C), got shape {tuple(pos.shape)}")
        b, m, l, j, c = pos.shape
        if c != self.config.in_dims or j != self.config.num_joints:
            raise ValueError(f"{self.registry_name or type(self).__name__}: model expects "
                             f"{self.config.num_joints} joints x {self.config.in_dims} dims, "
                             f"batch has {j} x {c}")
        expected = {"velocity": (b, m, l, j, c), "joint_mask": (b, m, l, j), "frame_mask": (b, m, l),
                    "segment_mask": (b, m), "phase": (b, m)}
        for name, shape in expected.items():
            got = tuple(getattr(batch, name).shape)
            if got != shape:
                raise ValueError(f"{self.registry_name or type(self).__name__}: batch.{name} "
                                 f"has shape {got}, expected {shape}")

    def logits_from_embedding(self, embedding: torch.Tensor) -> torch.Tensor | None:
        """Style logits from the model's own (N, D) embeddings when its head is a classifier on the
        embedding (no second pass over the input); None for models whose logits need more."""
        head = getattr(self, "head", None)
        return head.logits(embedding) if isinstance(head, EmbeddingHead) else None

    def extra_losses(self, output: StyleOutput, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training terms of the model's own paper, added to ``StyleLoss``'s total (none by default)."""
        return {}

    def forward(self, batch: PoseBatch) -> StyleOutput:  # pragma: no cover - abstract
        raise NotImplementedError


class WindowedStyleModel(StyleModel):
    """A model that encodes each window on its own, combines the windows per sequence, then applies ``head``.

    Subclasses set ``self.head`` and implement ``encode_windows`` over the stacked real windows; the
    sequence vector is the masked mean of the window vectors unless ``combine_windows`` says otherwise.
    Windows are encoded ``EVAL_WINDOW_CHUNK`` at a time at inference (bounded memory, same result).
    """

    head: EmbeddingHead

    def encode_windows(self, positions: torch.Tensor, velocity: torch.Tensor,
                       valid: torch.Tensor) -> torch.Tensor:
        """(N, L, J, C) positions and velocity, (N, L, J) valid joints -> (N, D) window vectors."""
        raise NotImplementedError

    def combine_windows(self, vectors: torch.Tensor, window_mask: torch.Tensor, batch: PoseBatch) -> torch.Tensor:
        """(N_valid, D) window vectors and the (B, M) window mask -> (B, D') sequence vectors."""
        return mean_over_windows(vectors, window_mask)

    def forward(self, batch: PoseBatch) -> StyleOutput:
        self.check_batch(batch)
        *windows, window_mask = gather_windows(batch)
        vectors = encode_windows_in_chunks(self.encode_windows, windows,
                                           None if self.training else EVAL_WINDOW_CHUNK)
        embedding, logits = self.head(self.combine_windows(vectors, window_mask, batch))
        return StyleOutput(embedding=embedding, logits=logits, window_mask=window_mask)
