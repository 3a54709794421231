"""Errors raised by the metadata store: one line naming what was wrong."""
from __future__ import annotations

from encoder.data.errors import one_line


class StoreError(RuntimeError):
    """A store operation was refused or failed; ``str(err)`` is one line."""

    def __init__(self, problem: str) -> None:
        self.problem = one_line(problem)
        super().__init__(self.problem)


class UnknownRecordError(StoreError, LookupError):
    """A sequence, encoder, index version or job that the store does not hold."""

    def __init__(self, kind: str, key: str) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"unknown {kind} {key!r}")
