"""Alembic migrations of the metadata store, runnable from code (``upgrade_to_head``) or the CLI.

CLI: ``alembic -c retrieval/migrations/alembic.ini -x url=sqlite:///index_data/metadata.db upgrade head``.
"""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for this package's scripts (no ini file needed); ``connection`` is used if given."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade_to_head(connection: Connection) -> None:
    """Bring the schema on ``connection`` to the newest revision (inside the caller's transaction)."""
    command.upgrade(alembic_config(connection), "head")


def head_revision() -> str:
    """The newest revision id shipped with the package."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database on ``connection`` is at (None for an empty database)."""
    return MigrationContext.configure(connection).get_current_revision()
