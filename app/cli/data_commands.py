"""Data commands: ``posestyle ingest`` (pose files -> versioned dataset cache) and ``demo-corpus``."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from app.cli import cli
from app.cli.common import EXIT_CODES_HELP, EXIT_FAILED, EXIT_USAGE, Person, Preset, View, fail

if TYPE_CHECKING:
    from rich.console import Console

    from encoder.data.dataset import IngestReport
    from encoder.data.labels import LabelSource


def _usage_error(message: str) -> typer.Exit:
    return fail(message, EXIT_USAGE)


def _label_source(paths: list[Path], label_pattern: str | None, labels_csv: Path | None,
                  preset: str | None) -> LabelSource | None:
    from encoder.data.errors import PoseDataError
    from encoder.data.labels import CsvLabels, PatternLabels, preset_labels

    chosen = [opt for opt, value in (("--label-pattern", label_pattern), ("--labels-csv", labels_csv),
                                     ("--preset", preset)) if value is not None]
    if len(chosen) > 1:
        raise _usage_error(f"give at most one of --label-pattern, --labels-csv, --preset (got {', '.join(chosen)})")
    try:
        if label_pattern is not None:
            return PatternLabels(label_pattern)
        if labels_csv is not None:
            return CsvLabels(labels_csv)
        if preset is not None:
            return preset_labels(preset, paths)
    except PoseDataError as err:
        raise _usage_error(str(err)) from None
    return None


def print_ingest_report(report: IngestReport, console: Console) -> None:
    """The summary table (counts, per-label counts, time), then every bad input with its reason."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"Ingest into {escape(report.out)}", show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("sequences read", str(report.read))
    table.add_row("arrays written", str(report.written))
    table.add_row("arrays reused", str(report.reused))
    table.add_row("failed", str(report.failed))
    if report.skipped:
        table.add_row("annotation sidecars skipped", str(report.skipped))
    for label, count in report.label_counts.items():
        table.add_row(f"label {escape(label)}", str(count))
    table.add_row("time", f"{report.elapsed_s:.1f} s")
    table.add_row("dataset version", report.version or "unchanged (nothing ingested)")
    console.print(table)
    if report.errors:
        console.print(f"{len(report.errors)} input(s) not ingested:", highlight=False)
        for error in report.errors:
            console.print(str(error), markup=False, highlight=False, soft_wrap=True)


@cli.command("ingest", epilog=EXIT_CODES_HELP + " Exit 1 also when nothing could be ingested.")
def ingest_command(
    paths: list[Path] = typer.Argument(..., metavar="PATH",
                                       help="Pose files, videos (video extra), folders (searched recursively) "
                                            "or .txt file lists."),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset directory to create or update."),
    label_pattern: str = typer.Option(None, "--label-pattern",
                                      help="Regex over the name; named groups -> metadata, (?P<label>...) -> label."),
    labels_csv: Path = typer.Option(None, "--labels-csv", help="CSV with columns name,label (+ metadata columns)."),
    preset: Preset = typer.Option(None, "--preset", help="Built-in labelling of file names."),
    workers: int = typer.Option(1, "--workers", "-j", min=1, help="Reader processes."),
    person: Person = typer.Option(Person.main, "--person",
                                  help="Which person per keypoint file: main (the tracked main person) or all."),
    stride: int = typer.Option(1, "--stride", min=1,
                               help="Videos: estimate pose on every n-th frame, interpolate the rest."),
) -> None:
    """Read pose files into a versioned dataset cache; bad files are listed and skipped."""
    from rich.console import Console

    from encoder.data.dataset import check_output_dir, check_person, ingest
    from encoder.data.errors import PoseDataError
    from encoder.data.video import VideoOptions

    person_name = Person(person).value
    label_source = _label_source(paths, label_pattern, labels_csv, Preset(preset).value if preset else None)
    try:
        check_person(person_name)
        check_output_dir(out)
    except PoseDataError as err:
        raise _usage_error(str(err)) from None
    console = Console()
    try:
        report = ingest(paths, out, label_source, person=person_name, workers=workers, progress=True,
                        video=VideoOptions(stride=stride))
    except (PoseDataError, OSError) as err:
        message = str(err) if isinstance(err, PoseDataError) else f"{out}: {err.strerror or err}"
        raise fail(message, EXIT_FAILED) from None
    print_ingest_report(report, console)
    if not report.ok:
        console.print("nothing was ingested; the dataset was left unchanged", highlight=False)
        raise typer.Exit(EXIT_FAILED)


@cli.command("demo-corpus", epilog=EXIT_CODES_HELP)
def demo_corpus_command(
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the demo corpus into."),
    n: int = typer.Option(3000, "--n", min=1, help="Number of walks (each written in every view)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed (same seed, same corpus)."),
    views: list[View] = typer.Option(list(View), "--view",
                                         help="View to write (repeat for several; default: every view)."),
) -> None:
    """Write the synthetic demo corpus (one folder of .npz + labels.csv per view) for ingest --preset demo."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from encoder.data.demo import write_demo_corpus
    from encoder.data.errors import PoseDataError

    console = Console()
    try:
        written = write_demo_corpus(out, n=n, seed=seed, views=[View(v).value for v in views])
    except (PoseDataError, OSError) as err:
        message = str(err) if isinstance(err, PoseDataError) else f"{out}: {err.strerror or err}"
        raise fail(message, EXIT_FAILED) from None
    table = Table(title=f"Demo corpus in {escape(str(written.root))} ({written.n_sequences} walks, seed {seed})",
                  title_justify="left")
    table.add_column("style")
    table.add_column("walks", justify="right")
    for style, count in sorted(written.label_counts.items()):
        table.add_row(style, str(count))
    console.print(table)
    for view, folder in sorted(written.view_dirs.items()):
        console.print(f"{view} view: {folder}  (posestyle ingest {folder} --out DATASET --preset demo)",
                      markup=False, highlight=False, soft_wrap=True)


@cli.command("view-2d", epilog=EXIT_CODES_HELP)
def view_2d_command(
    dataset: Path = typer.Argument(..., metavar="DATASET", help="Dataset cache written by `posestyle ingest`."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for one .npz per take."),
) -> None:
    """Write each take as seen through its BENCHMARK.md 2d camera (.npz per take), for ingest."""
    from encoder.data.errors import PoseDataError
    from encoder.data.views import write_benchmark_2d_views

    try:
        report = write_benchmark_2d_views(dataset, out)
    except (PoseDataError, OSError) as err:
        raise fail(str(err) if isinstance(err, PoseDataError) else f"{out}: {err.strerror or err}") from None
    for line in report.errors:
        typer.echo(line, err=True)
    typer.echo(f"2d views in {report.out}: {report.written} written, {report.kept} kept, "
               f"{len(report.errors)} refused  (posestyle ingest {report.out} --out DATASET ...)")
    if not report.written and not report.kept:
        raise typer.Exit(EXIT_FAILED)
