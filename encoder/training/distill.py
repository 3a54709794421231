"""Knowledge distillation after GaitKD (paper ``001_*``, abstract only): teacher checkpoint -> student.

GaitKD splits the transfer into decision-level distillation (the teacher's inter-class
relations, through calibrated logit distillation) and boundary-level distillation (keeping the
teacher's partition of the embedding space with an activation-boundary objective instead of
regressing features). With one logit vector and one embedding per sequence, and teacher and
student embeddings of different widths, the two terms are:

- ``kd``: KL(teacher || student) of the temperature-softened logits, times T^2 (decision level);
- ``boundary``: for each pair (i, j) of the batch, the teacher's cosine similarity lies above or
  below i's mean similarity (a boundary of the teacher's space around i); the student's is
  pushed to the same side by a margin (hinge). An activation-boundary loss on pairwise
  similarities: no projection between widths, no regression of the values;
- ``relation`` (off by default): mean squared difference of the two cosine-similarity matrices
  (relational distillation, the regression the GaitKD abstract finds less stable).

The student is any registered model (the fastest ones are the point: see the bench's cost
table), trained by ``fit`` with these terms added to its usual loss; batches are built with the
teacher's preprocessing so the teacher sees what it was trained on.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from encoder.checkpoint import load_checkpoint
from encoder.data.batch import PoseBatch
from encoder.data.errors import PoseDataError
from encoder.data.preprocess import PreprocessConfig
from encoder.data.sequence import PoseSequence
from encoder.models.base import StyleModel, StyleOutput
from encoder.training.config import TrainConfig
from encoder.training.trainer import TrainResult, fit, resolve_device


@dataclass(frozen=True)
class DistillConfig:
    """Weights of the distillation terms, the logit temperature and the boundary margin."""

    temperature: float = 4.0
    kd_weight: float = 1.0
    boundary_weight: float = 1.0
    boundary_margin: float = 0.05
    relation_weight: float = 0.0

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if min(self.kd_weight, self.boundary_weight, self.relation_weight, self.boundary_margin) < 0:
            raise ValueError("distillation weights and margin must be >= 0")


def _cosine(embedding: torch.Tensor) -> torch.Tensor:
    e = F.normalize(embedding, dim=-1, eps=1e-8)
    return e @ e.T


def boundary_loss(student_emb: torch.Tensor, teacher_emb: torch.Tensor, margin: float) -> torch.Tensor:
    """Hinge keeping each pair on the teacher's side of its anchor's mean similarity."""
    n = student_emb.shape[0]
    if n < 3:
        return student_emb.sum() * 0.0
    off = ~torch.eye(n, dtype=torch.bool, device=student_emb.device)
    s, t = _cosine(student_emb), _cosine(teacher_emb)
    s_centred = s - (s * off).sum(1, keepdim=True) / (n - 1)
    t_side = torch.sign(t - (t * off).sum(1, keepdim=True) / (n - 1))
    return torch.relu(margin - t_side * s_centred)[off & (t_side != 0)].mean()


class Distiller:
    """``(batch, student_output) -> {"kd", "boundary"[, "relation"]}``: the teacher runs in eval mode, no grad."""

    def __init__(self, teacher: StyleModel, config: DistillConfig = DistillConfig()) -> None:
        self.teacher = teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.config = config

    def __call__(self, batch: PoseBatch, output: StyleOutput) -> dict[str, torch.Tensor]:
        c = self.config
        with torch.no_grad():
            teacher = self.teacher(batch)
        temp = c.temperature
        kd = F.kl_div(F.log_softmax(output.logits / temp, -1), F.log_softmax(teacher.logits / temp, -1),
                      reduction="batchmean", log_target=True) * temp ** 2
        terms = {"kd": c.kd_weight * kd,
                 "boundary": c.boundary_weight * boundary_loss(output.embedding, teacher.embedding,
                                                               c.boundary_margin)}
        if c.relation_weight > 0:
            terms["relation"] = c.relation_weight * F.mse_loss(_cosine(output.embedding),
                                                               _cosine(teacher.embedding))
        return terms


def distill(train_seqs: Sequence[PoseSequence], val_seqs: Sequence[PoseSequence], config: TrainConfig,
            teacher_path: str | Path, distill_config: DistillConfig = DistillConfig(),
            summary: dict[str, Any] | None = None) -> TrainResult:
    """Train ``config.model`` as a student of the checkpoint at ``teacher_path``.

    The student takes the teacher's style labels (same logit order) and preprocessing; the view
    must give the teacher's input dims. The teacher is recorded in the training summary.
    """
    teacher, meta = load_checkpoint(teacher_path, device=resolve_device(config.device))
    dims = 2 if config.view == "2d" else 3
    if meta.input_dims != dims:
        raise PoseDataError(teacher_path,
                            f"teacher takes {meta.input_dims}D input, the {config.view} view gives {dims}D")
    config = dataclasses.replace(config, preprocess=PreprocessConfig.from_dict(meta.preprocess_config))
    facts = {"teacher": {"checkpoint": str(teacher_path), "model": meta.model_name,
                         "encoder_version": meta.encoder_version},
             "distill": dataclasses.asdict(distill_config)}
    return fit(train_seqs, val_seqs, config, labels=list(meta.labels), summary={**(summary or {}), **facts},
               extra_terms=Distiller(teacher, distill_config))
