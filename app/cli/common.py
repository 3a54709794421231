"""What every ``posestyle`` command shares: exit codes, the one-line error, the choice enums.

Kept light (typer and the standard library only) so that ``posestyle --help`` starts fast; each
command, and ``fail`` itself, imports the project's modules inside its body.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from enum import Enum
from typing import Any

import typer
from typer import Abort
from typer.core import TyperGroup

try:  # typer vendors click as typer._click since 0.26; before, it used click itself
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException, NoArgsIsHelpError, UsageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_CODES_HELP = ("Exit codes: 0 success; 1 the work failed (bad data, no index, job error); "
                   "2 usage error (bad option or argument).")


def fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    """Print ``error: MESSAGE`` to stderr on one unwrapped line; return the ``typer.Exit`` to raise."""
    from encoder.data.errors import one_line  # here, not at the top: ``--help`` must not import ``encoder``

    typer.echo("error: " + one_line(message), err=True)
    return typer.Exit(code)


class Backend(str, Enum):
    """Where a re-index job embeds (``retrieval.jobs.BACKENDS``)."""

    local = "local"
    ray = "ray"


class IndexType(str, Enum):
    """FAISS index type of a new index version (``retrieval.jobs.INDEX_TYPES``)."""

    auto = "auto"
    Flat = "Flat"
    HNSW = "HNSW"
    IVFPQ = "IVFPQ"


class Precision(str, Enum):
    """The encoder's arithmetic (``encoder.inference.PRECISIONS``)."""

    float32 = "float32"
    bfloat16 = "bfloat16"


PRECISION_HELP = ("The encoder's arithmetic: float32, or bfloat16 matrix products (1.3-1.9x the model's speed "
                  "on CPUs with native bfloat16; quality measured in docs/benchmarks/robustness-bfloat16.md).")


class Preset(str, Enum):
    """Built-in labelling of ``ingest`` (``encoder.data.labels.PRESETS``)."""

    bandai_namco = "bandai-namco"
    demo = "demo"


class Person(str, Enum):
    """Which person of a multi-person keypoint file is read."""

    main = "main"
    all = "all"


class View(str, Enum):
    """The two views of a take: the benchmark's 2d camera and the 3d capture."""

    v2d = "2d"
    v3d = "3d"


class BenchSplit(str, Enum):
    """The benchmark splits (``benchmarks.encoder_bench.SPLITS``)."""

    random = "random"
    cross_content = "cross-content"


class OneLineErrorGroup(TyperGroup):
    """The ``posestyle`` group: usage errors print as one ``error:`` line (exit 2), like every other error."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as err:
            typer.echo(err.format_message())
            sys.exit(EXIT_USAGE)
        except UsageError as err:
            command = f" {err.ctx.command_path}" if err.ctx is not None else ""
            fail(f"{err.format_message().replace('Value error, ', '')} (see{command} --help)")
            sys.exit(EXIT_USAGE)
        except ClickException as err:
            fail(err.format_message())
            sys.exit(err.exit_code)
        except Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(EXIT_FAILED)
        sys.exit(code if isinstance(code, int) else EXIT_OK)
