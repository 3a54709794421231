"""Tiny data for the re-indexing job tests: a synthetic dataset cache and untrained tiny checkpoints."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from encoder.checkpoint import CheckpointMeta, save_checkpoint
from encoder.data.dataset import DatasetCache, ingest
from encoder.data.demo import STYLE_CLASSES, generate_demo_corpus
from encoder.data.preprocess import PreprocessConfig
from encoder.data.sequence import PoseSequence
from encoder.inference import torch_threads
from encoder.models import PoseStyleNetConfig, build_model, config_to_dict

EMBEDDING_DIM = 16


def one_torch_thread() -> AbstractContextManager[None]:
    """One torch thread inside: on a shared 2-core machine, two spinning OpenMP threads make the
    tiny model several times slower."""
    return torch_threads(1)


@pytest.fixture(autouse=True)
def single_torch_thread() -> Iterator[None]:
    """``one_torch_thread`` around each test of a module that imports this fixture."""
    with one_torch_thread():
        yield


def tiny_checkpoint(path: Path, seed: int) -> str:
    """An untrained, tiny 3D PoseStyle-Net saved at ``path``; returns its encoder version."""
    torch.manual_seed(seed)
    config = PoseStyleNetConfig(in_dims=3, embedding_dim=EMBEDDING_DIM, branch_channels=(8, 8, 8),
                                relation_dim=16, num_relation_layers=1)
    model = build_model("posestyle_net", config)
    meta = CheckpointMeta(model_name="posestyle_net", model_config=config_to_dict(config),
                          preprocess_config=asdict(PreprocessConfig(window_length=16, window_stride=16,
                                                                    max_segments=3)),
                          labels=STYLE_CLASSES, input_dims=3)
    return save_checkpoint(path, model, meta).encoder_version


def demo_sequences(n: int, seed: int = 0) -> list[PoseSequence]:
    """``n`` short synthetic 3D walks with unique names."""
    return [s.with_(joints=s.joints[:48], confidence=s.confidence[:48])
            for s in generate_demo_corpus(n, seed=seed, views=("3d",), progress=False)]


def write_dataset(out: Path, sequences: list[PoseSequence], raw_dir: Path) -> DatasetCache:
    """Ingest ``sequences`` (written as .npz pose files under ``raw_dir``) into a dataset cache at ``out``."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    for old in raw_dir.glob("*.npz"):
        old.unlink()
    for seq in sequences:
        np.savez(raw_dir / f"{seq.name}.npz", **seq.to_arrays())
    report = ingest([raw_dir], out, progress=False)
    assert report.failed == 0, report.errors
    return DatasetCache.open(out)
