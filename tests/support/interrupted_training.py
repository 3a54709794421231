"""Stop ``fit`` part-way, as a kill would: a ``KeyboardInterrupt`` when the given epoch starts."""
from __future__ import annotations

from typing import Any

import pytest

import encoder.training.trainer as trainer

_REAL_BATCHES = trainer._batches     # one batch order per epoch: the hook both helpers wrap


def interrupt_training_at_epoch(monkeypatch: pytest.MonkeyPatch, epoch: int) -> None:
    """Every ``fit`` in this test raises ``KeyboardInterrupt`` as epoch ``epoch`` begins (earlier ones finish)."""
    calls: list[int] = []

    def batches(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == epoch:
            raise KeyboardInterrupt
        return _REAL_BATCHES(*args, **kwargs)

    monkeypatch.setattr(trainer, "_batches", batches)


def count_trained_epochs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """No more interruption: count the epochs ``fit`` trains from now on (one entry per epoch)."""
    epochs: list[int] = []

    def batches(*args: Any, **kwargs: Any) -> Any:
        epochs.append(1)
        return _REAL_BATCHES(*args, **kwargs)

    monkeypatch.setattr(trainer, "_batches", batches)
    return epochs
