"""The ``posestyle`` command: one Typer app, each command group in its own module."""
from __future__ import annotations

import os

import typer

from app.cli.openmp import choose_omp_wait_policy

# Before torch loads: OpenMP threads spin on a quiet machine, sleep on a busy one (app/cli/openmp.py).
choose_omp_wait_policy(os.environ)

from app.cli.common import EXIT_CODES_HELP, OneLineErrorGroup  # noqa: E402

cli = typer.Typer(
    name="posestyle",
    help="Search human movement by style: ingest pose data, train encoders, index, search, serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    epilog=EXIT_CODES_HELP,
    cls=OneLineErrorGroup,
)

# Command modules register themselves on ``cli`` when imported.
from app.cli import (  # noqa: E402,F401
    app_commands,
    bench_commands,
    data_commands,
    demo_commands,
    model_commands,
    retrieval_commands,
    search_commands,
)


def main() -> None:
    """Console entry point."""
    cli()
