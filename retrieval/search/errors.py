"""The error a malformed search query raises."""
from __future__ import annotations


class QueryError(ValueError):
    """A query the search cannot answer as asked (wrong dimension, NaN, bad k, unknown id...); one line."""

    def __init__(self, problem: str) -> None:
        self.problem = " ".join(str(problem).split())
        super().__init__(self.problem)
