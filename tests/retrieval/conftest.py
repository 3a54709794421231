"""Retrieval test fixtures: metadata stores on SQLite and PostgreSQL, and small embedding sets.

PostgreSQL: ``POSESTYLE_TEST_PG_URL`` (a server whose user may create databases) is used when set;
otherwise ``tests/support/postgres.sh`` starts a throwaway server once per session (installing
Debian's postgresql if needed) and stops it at the end. If no server can be had, the postgres tests
skip with the reason - except under CI (``CI=true``), where they fail.
"""
from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from retrieval.store import MetadataStore
from retrieval.store.models import Base

SUPPORT_DIR = Path(__file__).resolve().parents[1] / "support"
POSTGRES_SCRIPT = SUPPORT_DIR / "postgres.sh"
START_TIMEOUT_S = 600   # may include apt-get install on a bare machine


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"PostgreSQL is required in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL not available: {reason}")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Base URL of a PostgreSQL server for the session (external, or started by postgres.sh)."""
    external = os.environ.get("POSESTYLE_TEST_PG_URL")
    if external:
        yield external
        return
    try:
        result = subprocess.run(["bash", str(POSTGRES_SCRIPT), "start"], capture_output=True, text=True,
                                timeout=START_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        _unavailable(f"postgres.sh could not run: {exc}")
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines() if line.startswith(("PGDIR=", "URL=")))
    if result.returncode != 0 or "URL" not in lines:
        tail = " | ".join(result.stderr.strip().splitlines()[-5:])
        _unavailable(f"postgres.sh start exited {result.returncode}: {tail}")
    try:
        yield lines["URL"]
    finally:
        subprocess.run(["bash", str(POSTGRES_SCRIPT), "stop", lines.get("PGDIR", "")], capture_output=True,
                       timeout=120, check=False)


def _libpq(url: str) -> str:
    """psycopg connection string for an SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _create_database(server_url: str, name: str) -> None:
    import psycopg

    try:
        with psycopg.connect(_libpq(server_url), autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        _unavailable(f"cannot create a database on {make_url(server_url).render_as_string()}: "
                     f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc}")


def _drop_database(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(_libpq(server_url), autocommit=True, connect_timeout=10) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """A fresh, empty database on the session's server, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    _create_database(postgres_url, name)
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        _drop_database(postgres_url, name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """Each store test runs once per backend."""
    return str(request.param)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty, unmigrated database: a SQLite file, or a fresh PostgreSQL database."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'metadata.db'}"
    return str(request.getfixturevalue("postgres_database"))


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_url: str) -> Iterator[str]:
    """One PostgreSQL database migrated once per session; ``store`` empties it after each test."""
    name = f"store_{uuid.uuid4().hex[:12]}"
    _create_database(postgres_url, name)
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    MetadataStore.open(url).close()
    try:
        yield url
    finally:
        _drop_database(postgres_url, name)


@pytest.fixture
def store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStore]:
    """A migrated, empty store on each backend."""
    if backend == "sqlite":
        opened = MetadataStore.open(tmp_path / "metadata.db")
    else:
        opened = MetadataStore.open(request.getfixturevalue("migrated_postgres_url"))
    try:
        yield opened
    finally:
        if backend != "sqlite":
            tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
            with opened.engine.begin() as connection:
                connection.exec_driver_sql(f"TRUNCATE {tables} CASCADE")
        opened.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[MetadataStore]:
    """A migrated SQLite store (for index and search tests, where the backend does not matter)."""
    opened = MetadataStore.open(tmp_path / "metadata.db")
    try:
        yield opened
    finally:
        opened.close()
