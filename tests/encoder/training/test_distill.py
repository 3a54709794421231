"""GaitKD-style distillation: the terms, and a student trained from a teacher checkpoint."""
from __future__ import annotations

import pytest
import torch

from encoder.checkpoint import load_checkpoint
from encoder.data.errors import PoseDataError
from encoder.models import StyleOutput
from encoder.training import fit
from encoder.training.distill import DistillConfig, Distiller, boundary_loss, distill

TINY_STGCN = {"channels": [8, 8], "strides": [1, 2], "embedding_dim": 8, "dropout": 0.0}
TINY_MLP = {"frame_hidden": 16, "window_hidden": 16, "embedding_dim": 8, "dropout": 0.0}


def test_boundary_loss_prefers_the_teachers_neighbourhoods():
    torch.manual_seed(0)
    teacher = torch.nn.functional.normalize(torch.randn(8, 6), dim=1)
    agree = boundary_loss(teacher @ torch.linalg.qr(torch.randn(6, 6))[0], teacher, margin=0.05)
    opposite = boundary_loss(-teacher[torch.randperm(8)], teacher, margin=0.05)
    assert agree < 0.05 < opposite                        # a rotated copy keeps every boundary
    assert boundary_loss(teacher[:2], teacher[:2], 0.05) == 0       # too few items: no term


class _Fixed(torch.nn.Module):
    """A stand-in teacher returning fixed outputs."""

    def __init__(self, out: StyleOutput) -> None:
        super().__init__()
        self.out = out

    def forward(self, batch) -> StyleOutput:
        return self.out


def test_kd_term_vanishes_when_the_student_matches_the_teacher():
    torch.manual_seed(1)
    logits = torch.randn(5, 3)
    emb = torch.nn.functional.normalize(torch.randn(5, 4), dim=1)
    distiller = Distiller(_Fixed(StyleOutput(embedding=emb, logits=logits)), DistillConfig(relation_weight=1.0))
    same = distiller(None, StyleOutput(embedding=emb, logits=logits))
    assert set(same) == {"kd", "boundary", "relation"}
    assert same["kd"].abs() < 1e-6 and same["relation"].abs() < 1e-9
    other = distiller(None, StyleOutput(embedding=emb, logits=-logits))
    assert other["kd"] > 0.1


def test_student_learns_from_a_teacher_checkpoint(tmp_path, make_toy_corpus, make_train_config):
    train, val = make_toy_corpus(4, dims=2, seed=1), make_toy_corpus(1, dims=2, seed=2)
    teacher = fit(train, val, make_train_config(model="stgcn", model_config=TINY_STGCN, epochs=3))
    path = tmp_path / "teacher.safetensors"
    teacher.save(path)
    student = distill(train, val, make_train_config(model="st_mlp", model_config=TINY_MLP, epochs=3), path)
    _, teacher_meta = load_checkpoint(path)
    meta = student.checkpoint
    assert meta.model_name == "st_mlp" and meta.labels == teacher_meta.labels
    assert meta.training["teacher"] == {"checkpoint": str(path), "model": "stgcn",
                                        "encoder_version": teacher_meta.encoder_version}
    assert meta.preprocess_config == teacher_meta.preprocess_config
    for record in student.history:
        assert {"train_kd", "train_boundary"} <= set(record)
        assert all(torch.isfinite(torch.tensor(v)) for k, v in record.items() if isinstance(v, float))
    # the student's outputs move towards the teacher's: its KD term falls over the epochs
    assert student.history[-1]["train_kd"] < student.history[0]["train_kd"]
    with pytest.raises(PoseDataError, match="teacher takes 2D input"):
        distill(train, val, make_train_config(model="st_mlp", model_config=TINY_MLP, view="3d"), path)
