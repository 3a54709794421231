"""The error a malformed search query raises."""
from __future__ import annotations

from encoder.data.errors import one_line


class QueryError(ValueError):
    """A query the search cannot answer as asked (wrong dimension, NaN, bad k, unknown id...); one line."""

    def __init__(self, problem: str) -> None:
        self.problem = one_line(problem)
        super().__init__(self.problem)
