"""Errors raised for bad pose input: one clear line naming the file and the problem."""
from __future__ import annotations

from pathlib import Path


class PoseDataError(ValueError):
    """Bad or unreadable pose input. ``str(err)`` is one line: ``<source>: <problem>``."""

    def __init__(self, source: str | Path | None, problem: str) -> None:
        self.source = str(source) if source is not None else "<input>"
        self.problem = " ".join(str(problem).split())  # always a single line
        super().__init__(f"{self.source}: {self.problem}")
