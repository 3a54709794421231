"""Indexing commands: ``posestyle index`` (register a dataset, then re-index) and ``posestyle reindex``."""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import typer
from rich.console import Console
from rich.table import Table

from app.cli import cli
from encoder.data.dataset import DatasetCache
from encoder.data.errors import PoseDataError
from retrieval.index import IndexManager
from retrieval.jobs import BACKENDS, INDEX_TYPES, JobError, ReindexJob, ReindexSummary, register_dataset
from retrieval.jobs.backends import DEFAULT_BATCH_SIZE, resolve_parallelism
from retrieval.jobs.reindex import DEFAULT_STALE_AFTER_S
from retrieval.store import MetadataStore, StoreError, default_database_url

EXIT_OK, EXIT_JOB_FAILED, EXIT_USAGE = 0, 1, 2
ERRORS_SHOWN = 20


def _fail(message: str, code: int) -> typer.Exit:
    Console(stderr=True).print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def _interrupt_on_sigterm() -> Iterator[None]:
    """While inside, ``kill`` (SIGTERM) stops the job like Ctrl-C, so it is recorded as interrupted
    and can resume (only the main thread can install signal handlers)."""

    def handler(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def print_reindex_summary(summary: ReindexSummary, console: Console) -> None:
    """The summary table, then the failed sequences with their reasons."""
    title = f"Re-index with encoder {summary.encoder_version}" + (" (resumed job)" if summary.resumed else "")
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("job", summary.job_id)
    table.add_row("backend", summary.backend)
    table.add_row("sequences", str(summary.total))
    table.add_row("embedded", str(summary.embedded))
    table.add_row("skipped (unchanged)", str(summary.skipped))
    table.add_row("failed", str(summary.failed))
    table.add_row("elapsed", f"{summary.elapsed_s:.1f} s")
    table.add_row("throughput", f"{summary.throughput:.1f} seq/s "
                                f"({summary.embedded_this_run} in {summary.embed_s:.1f} s)")
    if summary.stage_s:
        table.add_row("seconds per stage", ", ".join(f"{k} {v:.1f}" for k, v in summary.stage_s.items()))
    table.add_row("indexed", str(summary.indexed))
    if summary.index_version is not None:
        table.add_row("index spec", summary.index_spec or "")
        table.add_row("previous live version", summary.previous_live_version or "(none)")
        table.add_row("new live version", summary.index_version)
    else:
        table.add_row("live version", f"{summary.live_version} (unchanged: already current)")
    if summary.shards_removed:
        table.add_row("unused shards removed", str(summary.shards_removed))
    console.print(table)
    if summary.errors:
        console.print(f"{len(summary.errors)} sequence(s) not embedded:", highlight=False)
        for line in list(summary.errors.values())[:ERRORS_SHOWN]:
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        if len(summary.errors) > ERRORS_SHOWN:
            console.print(f"... and {len(summary.errors) - ERRORS_SHOWN} more", highlight=False)


def _run_reindex(checkpoint: Path, data: Path | None, backend: str, ray_address: str | None, batch_size: int,
                 index_type: str, store_url: str | None, root: Path, stale_after: float, progress: bool,
                 register: bool, workers: int | None = None, threads: int | None = None) -> None:
    if backend not in BACKENDS:
        raise _fail(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}", EXIT_USAGE)
    if index_type not in INDEX_TYPES:
        raise _fail(f"--index-type must be one of {', '.join(INDEX_TYPES)}, got {index_type!r}", EXIT_USAGE)
    if ray_address is not None and backend != "ray":
        raise _fail("--ray-address needs --backend ray", EXIT_USAGE)
    if not checkpoint.is_file():
        raise _fail(f"{checkpoint}: checkpoint file not found", EXIT_USAGE)
    if backend == "local" or ray_address is None:   # a joined cluster's CPUs are not this machine's
        try:
            workers, threads = resolve_parallelism(workers, threads)
        except JobError as err:
            raise _fail(str(err), EXIT_USAGE) from None
    try:
        dataset = DatasetCache.open(data) if data is not None else None
    except PoseDataError as err:
        raise _fail(str(err), EXIT_USAGE) from None
    console = Console()
    try:
        with _interrupt_on_sigterm(), MetadataStore.open(store_url or default_database_url(root)) as store:
            if register and dataset is not None:
                report = register_dataset(store, dataset)
                console.print(f"registered dataset {dataset.root} ({dataset.version}): {report.inserted} new, "
                              f"{report.updated} changed, {report.unchanged} unchanged sequences", highlight=False)
            job = ReindexJob(store, IndexManager(root, store), dataset, checkpoint, backend,
                             batch_size=batch_size, index_type=index_type, ray_address=ray_address,
                             stale_after_s=stale_after, progress=progress, workers=workers, threads=threads)
            summary = job.run()
    except PoseDataError as err:
        raise _fail(str(err), EXIT_USAGE) from None
    except (JobError, StoreError) as err:
        raise _fail(str(err), EXIT_JOB_FAILED) from None
    except KeyboardInterrupt:
        raise _fail("interrupted; run the same command again to resume", EXIT_JOB_FAILED) from None
    print_reindex_summary(summary, console)


_CHECKPOINT = typer.Option(..., "--checkpoint", "-c", help="Encoder checkpoint (.safetensors).")
_BACKEND = typer.Option("local", "--backend", help=f"Where to embed: {', '.join(BACKENDS)}.")
_RAY_ADDRESS = typer.Option(None, "--ray-address", help="Join this Ray cluster instead of starting a local one.")
_BATCH_SIZE = typer.Option(DEFAULT_BATCH_SIZE, "--batch-size", min=1, help="Sequences per batch (and per shard).")
_INDEX_TYPE = typer.Option("auto", "--index-type", help=f"FAISS index type: {', '.join(INDEX_TYPES)}.")
_STORE = typer.Option(None, "--store", help="Metadata store URL (default: sqlite:///<root>/metadata.db).")
_ROOT = typer.Option(Path("index_data"), "--root", help="Data folder holding indexes/ and embeddings/.")
_STALE_AFTER = typer.Option(DEFAULT_STALE_AFTER_S, "--stale-after", min=1.0,
                            help="Seconds without heartbeat after which another host's running job counts as dead.")
_PROGRESS = typer.Option(True, "--progress/--no-progress", help="Show a progress bar.")
_WORKERS = typer.Option(None, "--workers", "-j", min=1,
                        help="Embedding processes (Ray actors); default: the CPU cores / --threads.")
_THREADS = typer.Option(None, "--threads", min=1, help="Torch threads per worker (default 1); workers x threads "
                        "may not exceed the CPU cores.")


@cli.command("reindex")
def reindex_command(
    checkpoint: Path = _CHECKPOINT,
    data: Path = typer.Option(None, "--data", "-d",
                              help="Dataset cache to load sequences from (default: where each was registered from)."),
    backend: str = _BACKEND,
    ray_address: str = _RAY_ADDRESS,
    batch_size: int = _BATCH_SIZE,
    index_type: str = _INDEX_TYPE,
    store: str = _STORE,
    root: Path = _ROOT,
    stale_after: float = _STALE_AFTER,
    progress: bool = _PROGRESS,
    workers: int = _WORKERS,
    threads: int = _THREADS,
) -> None:
    """Embed the stored sequences with an encoder into a new index version and make it live.

    Unchanged sequences are skipped; an interrupted job of the same encoder is resumed."""
    _run_reindex(checkpoint, data, backend, ray_address, batch_size, index_type, store, root, stale_after,
                 progress, register=False, workers=workers, threads=threads)


@cli.command("index")
def index_command(
    checkpoint: Path = _CHECKPOINT,
    data: Path = typer.Option(..., "--data", "-d", help="Dataset cache (written by posestyle ingest) to index."),
    backend: str = _BACKEND,
    ray_address: str = _RAY_ADDRESS,
    batch_size: int = _BATCH_SIZE,
    index_type: str = _INDEX_TYPE,
    store: str = _STORE,
    root: Path = _ROOT,
    stale_after: float = _STALE_AFTER,
    progress: bool = _PROGRESS,
    workers: int = _WORKERS,
    threads: int = _THREADS,
) -> None:
    """Register a dataset's sequences in the store, then re-index with the encoder."""
    _run_reindex(checkpoint, data, backend, ray_address, batch_size, index_type, store, root, stale_after,
                 progress, register=True, workers=workers, threads=threads)
