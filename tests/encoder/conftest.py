"""Encoder test fixtures: a tiny model config, a shared short training run, fast training configs.

The toy data itself lives in ``tests.encoder.toy_data``; ``one_torch_thread`` and ``make_toy_corpus``
are in the root ``tests/conftest.py`` (the benchmark tests use them too).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import pytest

from tests.encoder.toy_data import TINY_MODEL_CONFIG, tiny_train_config, toy_corpus

if TYPE_CHECKING:
    from encoder.training import TrainConfig


@pytest.fixture(scope="session")
def tiny_model_config() -> dict:
    return dict(TINY_MODEL_CONFIG)


@pytest.fixture(scope="session")
def trained_toy():
    """One short training run on toy 2D data, shared by the training and inference tests."""
    from encoder.training import fit

    train = toy_corpus(6, dims=2, seed=1)
    val = toy_corpus(2, dims=2, seed=2)
    return fit(train, val, tiny_train_config(epochs=25))


@pytest.fixture(scope="session")
def make_train_config() -> Callable[..., "TrainConfig"]:
    return tiny_train_config
