"""Errors for bad user input: one clear line naming the source (a file, a setting, an option) and the problem."""
from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad user input. ``str(err)`` is one line: ``<source>: <problem>``; catch this for any of its kinds."""

    def __init__(self, source: str | Path | None, problem: str) -> None:
        self.source = str(source) if source is not None else "<input>"
        self.problem = " ".join(str(problem).split())  # always a single line
        super().__init__(f"{self.source}: {self.problem}")


class PoseDataError(InputError):
    """Bad or unreadable pose input (a pose file, a dataset, a sequence)."""


class ConfigError(InputError):
    """A bad setting: a config file, a ``--set KEY=VALUE`` override or an option such as ``--device``."""
