"""Errors for bad user input: one clear line naming the source (a file, a setting, an option) and the problem."""
from __future__ import annotations

from pathlib import Path


def one_line(text: object) -> str:
    """``text`` as one line: every run of whitespace (newlines included) becomes one space, so a message
    from any library prints on a single line of a log or a screen; an exception without a message gives
    its type's name."""
    line = " ".join(str(text).split())
    if not line and isinstance(text, BaseException):
        return type(text).__name__
    return line


class InputError(ValueError):
    """Bad user input. ``str(err)`` is one line: ``<source>: <problem>``; catch this for any of its kinds."""

    def __init__(self, source: str | Path | None, problem: str) -> None:
        self.source = str(source) if source is not None else "<input>"
        self.problem = one_line(problem)
        super().__init__(f"{self.source}: {self.problem}")


class PoseDataError(InputError):
    """Bad or unreadable pose input (a pose file, a dataset, a sequence)."""


class ConfigError(InputError):
    """A bad setting: a config file, a ``--set KEY=VALUE`` override or an option such as ``--device``."""
