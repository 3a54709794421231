"""Indexing commands: ``posestyle index`` (register a dataset, then re-index) and ``posestyle reindex``."""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import typer

from app.cli import cli
from app.cli.common import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_USAGE,
    PRECISION_HELP,
    Backend,
    IndexType,
    Precision,
    fail,
)

if TYPE_CHECKING:
    from rich.console import Console

    from retrieval.jobs import ReindexSummary

ERRORS_SHOWN = 20
# The job's defaults (retrieval.jobs DEFAULT_BATCH_SIZE, DEFAULT_STALE_AFTER_S), resolved when the job runs
# so that --help does not import the job; tests/retrieval/test_jobs_cli.py checks the help quotes them.
BATCH_SIZE_HELP = "Sequences per batch (and per shard); default 256."
STALE_AFTER_HELP = "Seconds without heartbeat after which another host's running job counts as dead; default 120."


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
    from rich.table import Table

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


def _run_reindex(checkpoint: Path, data: Path | None, backend: Backend, ray_address: str | None,
                 batch_size: int | None, index_type: IndexType, store_url: str | None, root: Path,
                 stale_after: float | None, progress: bool, register: bool, workers: int | None = None,
                 threads: int | None = None, precision: Precision = Precision.float32) -> None:
    from rich.console import Console

    from encoder.data.dataset import DatasetCache
    from encoder.data.errors import PoseDataError
    from retrieval.index import IndexManager
    from retrieval.jobs import DEFAULT_BATCH_SIZE, JobError, ReindexJob, register_dataset
    from retrieval.jobs.backends import resolve_parallelism
    from retrieval.jobs.reindex import DEFAULT_STALE_AFTER_S
    from retrieval.store import MetadataStore, StoreError, default_database_url

    backend_name, index_type_name = Backend(backend).value, IndexType(index_type).value
    if ray_address is not None and backend_name != "ray":
        raise fail("--ray-address needs --backend ray", EXIT_USAGE)
    if not checkpoint.is_file():
        raise fail(f"{checkpoint}: checkpoint file not found", EXIT_USAGE)
    if backend_name == "local" or ray_address is None:   # a joined cluster's CPUs are not this machine's
        try:
            workers, threads = resolve_parallelism(workers, threads)
        except JobError as err:
            raise fail(str(err), EXIT_USAGE) from None
    try:
        dataset = DatasetCache.open(data) if data is not None else None
    except PoseDataError as err:
        raise fail(str(err), EXIT_USAGE) from None
    console = Console()
    try:
        with _interrupt_on_sigterm(), MetadataStore.open(store_url or default_database_url(root)) as store:
            if register and dataset is not None:
                report = register_dataset(store, dataset)
                console.print(f"registered dataset {dataset.root} ({dataset.version}): {report.inserted} new, "
                              f"{report.updated} changed, {report.unchanged} unchanged sequences", highlight=False)
            job = ReindexJob(store, IndexManager(root, store), dataset, checkpoint, backend_name,
                             batch_size=batch_size or DEFAULT_BATCH_SIZE, index_type=index_type_name,
                             ray_address=ray_address, stale_after_s=stale_after or DEFAULT_STALE_AFTER_S,
                             progress=progress, workers=workers, threads=threads,
                             precision=Precision(precision).value)
            summary = job.run()
    except PoseDataError as err:
        raise fail(str(err), EXIT_USAGE) from None
    except (JobError, StoreError) as err:
        raise fail(str(err), EXIT_FAILED) from None
    except KeyboardInterrupt:
        raise fail("interrupted; run the same command again to resume", EXIT_FAILED) from None
    print_reindex_summary(summary, console)
    _precompute_views(root, store_url, console)


def _precompute_views(root: Path, store_url: str | None, console: Console) -> None:
    """The live version's map, predictions and cluster quality, stored so the app's pages only load them."""
    import time

    from app.services.analysis import AppService, NoIndexError

    start = time.perf_counter()
    try:
        with console.status("computing the app's map and evaluation for the live version..."), \
                AppService(root, store_url) as service:
            live = service.open_live()
            service.precompute_views(live)
    except NoIndexError:
        return
    console.print(f"app views of version {live.version} stored in {time.perf_counter() - start:.1f} s", highlight=False)


_CHECKPOINT = typer.Option(..., "--checkpoint", "-c", help="Encoder checkpoint (.safetensors).")
_BACKEND = typer.Option(Backend.local, "--backend", help="Where to embed.")
_RAY_ADDRESS = typer.Option(None, "--ray-address", metavar="HOST:PORT",
                            help="Join this Ray cluster instead of starting a local one.")
_BATCH_SIZE = typer.Option(None, "--batch-size", min=1, metavar="N", help=BATCH_SIZE_HELP)
_INDEX_TYPE = typer.Option(IndexType.auto, "--index-type", help="FAISS index type.")
_STORE = typer.Option(None, "--store", metavar="URL", help="Metadata store URL (default: sqlite:///<root>/metadata.db).")
_ROOT = typer.Option(Path("index_data"), "--root", metavar="DIR", help="Data folder holding indexes/ and embeddings/.")
_STALE_AFTER = typer.Option(None, "--stale-after", min=1.0, metavar="SECONDS", help=STALE_AFTER_HELP)
_PROGRESS = typer.Option(True, "--progress/--no-progress", help="Show a progress bar.")
_WORKERS = typer.Option(None, "--workers", "-j", min=1,
                        help="Embedding processes (Ray actors); default: the CPU cores / --threads.")
_THREADS = typer.Option(None, "--threads", min=1, help="Torch threads per worker (default 1); workers x threads "
                        "may not exceed the CPU cores.")
_PRECISION = typer.Option(Precision.float32, "--precision", help=PRECISION_HELP)


@cli.command("reindex", epilog=EXIT_CODES_HELP)
def reindex_command(
    checkpoint: Path = _CHECKPOINT,
    data: Path = typer.Option(None, "--data", "-d",
                              help="Dataset cache to load sequences from (default: where each was registered from)."),
    backend: Backend = _BACKEND,
    ray_address: str = _RAY_ADDRESS,
    batch_size: int | None = _BATCH_SIZE,
    index_type: IndexType = _INDEX_TYPE,
    store: str = _STORE,
    root: Path = _ROOT,
    stale_after: float | None = _STALE_AFTER,
    progress: bool = _PROGRESS,
    workers: int = _WORKERS,
    threads: int = _THREADS,
    precision: Precision = _PRECISION,
) -> None:
    """Embed the stored sequences with an encoder into a new index version and make it live.

    Unchanged sequences are skipped; an interrupted job of the same encoder is resumed."""
    _run_reindex(checkpoint, data, backend, ray_address, batch_size, index_type, store, root, stale_after,
                 progress, register=False, workers=workers, threads=threads, precision=precision)


@cli.command("index", epilog=EXIT_CODES_HELP)
def index_command(
    checkpoint: Path = _CHECKPOINT,
    data: Path = typer.Option(..., "--data", "-d", help="Dataset cache (written by posestyle ingest) to index."),
    backend: Backend = _BACKEND,
    ray_address: str = _RAY_ADDRESS,
    batch_size: int | None = _BATCH_SIZE,
    index_type: IndexType = _INDEX_TYPE,
    store: str = _STORE,
    root: Path = _ROOT,
    stale_after: float | None = _STALE_AFTER,
    progress: bool = _PROGRESS,
    workers: int = _WORKERS,
    threads: int = _THREADS,
    precision: Precision = _PRECISION,
) -> None:
    """Register a dataset's sequences in the store, then re-index with the encoder."""
    _run_reindex(checkpoint, data, backend, ray_address, batch_size, index_type, store, root, stale_after,
                 progress, register=True, workers=workers, threads=threads, precision=precision)
