"""Errors of the vector index layer; each prints as one line."""
from __future__ import annotations

from pathlib import Path

from encoder.data.errors import one_line


class VectorIndexError(RuntimeError):
    """Base class of index errors."""

    def __init__(self, problem: str) -> None:
        self.problem = one_line(problem)
        super().__init__(self.problem)


class IndexCorruptError(VectorIndexError):
    """An index version on disk is missing, truncated, fails its checksum or is not readable by FAISS.

    ``str(err)`` is ``"<path>: <problem>"``."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        super().__init__(problem)
        self.args = (f"{self.path}: {self.problem}",)

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


class IndexBuildError(VectorIndexError, ValueError):
    """Embeddings, ids, version name or spec given to a build are unusable."""


class IndexNotVerifiedError(VectorIndexError):
    """Promotion of an index version that has not passed verification."""


class NoLiveIndexError(VectorIndexError):
    """No index version can serve: none is live, or the live one and every fallback fail to load."""


class IndexBusyError(VectorIndexError):
    """Another job holds the index root's job lock; ``str(err)`` names the holder."""
