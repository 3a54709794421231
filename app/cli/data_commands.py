"""Data commands: ``ingest`` and ``demo-corpus`` (filled in by the foundation work)."""
from __future__ import annotations

from app.cli import cli  # noqa: F401
