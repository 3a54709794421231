"""The ``posestyle`` command: one Typer app, each command group in its own module."""
from __future__ import annotations

import os

import typer

# OpenMP threads that spin while they wait burn the CPU that other processes need: with both cores
# busy, the style head over 600 demo walks took 50 s of CPU with two torch threads against 2.7 s with
# one and 3.0 s with two sleeping threads. Set before torch loads; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from app.cli.common import EXIT_CODES_HELP, OneLineErrorGroup

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
