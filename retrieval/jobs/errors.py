"""Errors of the batch (re-)indexing jobs; each prints as one line."""
from __future__ import annotations

from pathlib import Path

from encoder.data.errors import one_line


class JobError(RuntimeError):
    """A re-index job cannot start or cannot finish; ``str(err)`` is one line."""

    def __init__(self, problem: str) -> None:
        self.problem = one_line(problem)
        super().__init__(self.problem)


class ShardError(JobError):
    """An embedding shard file is missing, unreadable or does not hold the rows the store records.

    ``str(err)`` is ``"<path>: <problem>"``."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        super().__init__(problem)
        self.args = (f"{self.path}: {self.problem}",)

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"
