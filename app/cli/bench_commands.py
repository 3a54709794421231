"""Benchmark commands: ``posestyle bench retrieval`` (one sub-app, one command per benchmark)."""
from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from app.cli import cli

EXIT_USAGE = 2

bench_app = typer.Typer(name="bench", help="Measure the product: write reports under docs/benchmarks.",
                        no_args_is_help=True)
cli.add_typer(bench_app, name="bench")


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    Console(stderr=True).print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _parse_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())
    except ValueError:
        raise _fail(f"--sizes must be comma-separated integers, got {text!r}") from None
    if not sizes or any(n < 1000 for n in sizes):
        raise _fail(f"--sizes must list corpus sizes of at least 1000, got {text!r}")
    return sizes


def print_retrieval_summary(report: dict[str, Any], console: Console, out: Path) -> None:
    """Index table (recall, latency, size per type and corpus size), then the targets."""
    table = Table(title="Retrieval benchmark", title_justify="left")
    for name in ("vectors", "type", "build s", "MiB", "recall@10", "p50 ms", "p99 ms", "batched us/q"):
        table.add_column(name, justify="left" if name == "type" else "right")
    for r in report["indexes"]:
        single = r["single_query"]["service"]
        table.add_row(f"{r['size']:,}", r["type"], f"{r['build_s']:.1f}", f"{r['index_bytes'] / 2 ** 20:,.0f}",
                      f"{r['recall_at_10']:.3f}", f"{single['p50_ms']:.3f}", f"{single['p99_ms']:.3f}",
                      f"{r['batched']['per_query_us']:.1f}")
    console.print(table)
    e = report["end_to_end"]
    console.print(f"end to end at {e['corpus']:,}: p50 {e['latency']['p50_ms']:.1f} ms, p99 {e['latency']['p99_ms']:.1f} ms",
                  highlight=False)
    for r in report["reindex"]:
        console.print(f"re-index {r['backend']}: {r['throughput_seq_per_s']:.1f} seq/s ({r['embedded']} in "
                      f"{r['embed_s']:.1f} s)", highlight=False)
    targets = Table(title="Targets", title_justify="left")
    for name in ("target", "measured", "met", "detail"):
        targets.add_column(name)
    for t in report["targets"]:
        targets.add_row(t["name"], t["measured"], "yes" if t["met"] else "NO", t["detail"])
    console.print(targets)
    console.print(f"reports in {out} ({report['total_s'] / 60:.1f} min)", highlight=False)


@bench_app.command("retrieval")
def retrieval_command(
    sizes: str = typer.Option("100000,1000000", "--sizes", help="Corpus sizes (vectors), comma-separated."),
    out: Path = typer.Option(Path("docs/benchmarks"), "--out", help="Folder for retrieval.md/.json/.png."),
    quick: bool = typer.Option(False, "--quick", help="Tiny sizes: checks the bench runs, figures meaningless."),
    checkpoint: Path = typer.Option(None, "--checkpoint", "-c",
                                    help="Encoder checkpoint (default: an untrained PoseStyle-Net)."),
    data: Path = typer.Option(None, "--data", "-d",
                              help="Dataset cache: fit the vector mixture to its embeddings (needs --checkpoint)."),
    backends: str = typer.Option("local,ray", "--backends", help="Re-index backends to compare."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the vector mixture and demo walks."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Index build/memory/recall/latency at each size, end-to-end query latency, re-index throughput."""
    from retrieval.bench import BenchConfig, quick_config, run_retrieval_bench
    from retrieval.jobs import BACKENDS

    chosen = tuple(b.strip() for b in backends.split(",") if b.strip())
    if not chosen or any(b not in BACKENDS for b in chosen):
        raise _fail(f"--backends must name some of {', '.join(BACKENDS)}, got {backends!r}")
    if checkpoint is not None and not checkpoint.is_file():
        raise _fail(f"{checkpoint}: checkpoint file not found")
    if data is not None and checkpoint is None:
        raise _fail("--data needs --checkpoint (the mixture is fitted to that encoder's embeddings)")
    common: dict[str, Any] = dict(checkpoint=checkpoint, data=data, seed=seed, reindex_backends=chosen)
    if quick:
        config = quick_config(**common)
    else:
        config = BenchConfig(sizes=_parse_sizes(sizes), **common)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    command = "posestyle " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["bench"] else \
        "posestyle bench retrieval"
    try:
        report = run_retrieval_bench(config, out, progress=progress, command=command)
    except ValueError as err:
        raise _fail(str(err)) from None
    print_retrieval_summary(report, Console(), out)
