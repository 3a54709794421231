"""Markdown tables for the committed benchmark reports (tabulate's GitHub format)."""
from __future__ import annotations

from typing import Any, Sequence

from tabulate import tabulate


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table; cells are written as given (format numbers first)."""
    return tabulate([list(r) for r in rows], headers=list(header), tablefmt="github", disable_numparse=True)
