"""Benchmark commands: ``posestyle bench retrieval`` (one sub-app, one command per benchmark)."""
from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from app.cli import cli
from app.cli.common import EXIT_CODES_HELP, EXIT_USAGE, PRECISION_HELP, Precision, fail

if TYPE_CHECKING:
    from rich.console import Console

bench_app = typer.Typer(name="bench", help="Measure the product: write reports under docs/benchmarks.",
                        no_args_is_help=True, rich_markup_mode=None)
cli.add_typer(bench_app, name="bench")


def _fail(message: str) -> typer.Exit:
    return fail(message, EXIT_USAGE)


def _command_line(bench: str) -> str:
    """The command as typed (for the report), or its plain form when not run from the shell."""
    if sys.argv[1:2] == ["bench"]:
        return "posestyle " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    return f"posestyle bench {bench}"


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
    from rich.table import Table

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
    one = e["torch_1_thread"]["latency"]
    console.print(f"end to end at {e['corpus']:,}: p50 {e['latency']['p50_ms']:.1f} ms, "
                  f"p99 {e['latency']['p99_ms']:.1f} ms (torch 1 thread: p50 {one['p50_ms']:.1f} ms, "
                  f"p99 {one['p99_ms']:.1f} ms)", highlight=False)
    for r in (report.get("reindex") or {}).get("runs", []):
        console.print(f"re-index {r['run']}: {r['throughput_seq_per_s']:.1f} seq/s ({r['embedded']:,} in "
                      f"{r['embed_s']:.1f} s)", highlight=False)
    targets = Table(title="Targets", title_justify="left")
    for name in ("target", "measured", "met", "detail"):
        targets.add_column(name)
    for t in report["targets"]:
        targets.add_row(t["name"], t["measured"], "yes" if t["met"] else "NO", t["detail"])
    console.print(targets)
    console.print(f"reports in {out} ({report['total_s'] / 60:.1f} min)", highlight=False)


@bench_app.command("retrieval", epilog=EXIT_CODES_HELP)
def retrieval_command(
    sizes: str = typer.Option("100000,1000000", "--sizes", help="Corpus sizes (vectors), comma-separated."),
    out: Path = typer.Option(Path("docs/benchmarks"), "--out", help="Folder for retrieval.md/.json/.png."),
    quick: bool = typer.Option(False, "--quick", help="Tiny sizes: checks the bench runs, figures meaningless."),
    checkpoint: Path = typer.Option(None, "--checkpoint", "-c",
                                    help="Encoder checkpoint (default: an untrained default encoder, DEFAULT_MODEL)."),
    data: Path = typer.Option(None, "--data", "-d",
                              help="Dataset cache: fit the vector mixture to its embeddings (needs --checkpoint)."),
    backends: str = typer.Option("local,ray", "--backends", help="Re-index backends to compare."),
    reindex_also: list[Path] = typer.Option(None, "--reindex-also",
                                            help="Also re-index the same walks with this encoder checkpoint (local "
                                                 "backend; e.g. a distilled student); repeatable."),
    reindex_precisions: list[Precision] = typer.Option(None, "--reindex-precisions-also",
                                                       help="Also re-index the same walks with the encoder in this "
                                                            "precision (local backend); repeatable."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the vector mixture and demo walks."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    parts: str = typer.Option("indexes,end_to_end,reindex,serving,sharded", "--parts",
                              help="Parts to run; the others are carried over from the report in --out."),
    workdir: Path = typer.Option(None, "--workdir", help="Keep the walk corpus, 1M store and finished runs here "
                                 "(an interrupted bench resumes; default: a temporary folder)."),
    reindex_walks: int = typer.Option(100_000, "--reindex-walks", min=1, help="Synthetic walks re-indexed."),
    serving_size: int = typer.Option(1_000_000, "--serving-size", min=1000, help="Rows and vectors served."),
) -> None:
    """Index build/memory/recall/latency at each size, end-to-end query latency, re-index throughput,
    serving at 1M, the sharded IVF-PQ plan."""
    from rich.console import Console

    from benchmarks.retrieval_bench import BenchConfig, quick_config, run_retrieval_bench
    from retrieval.jobs import BACKENDS

    chosen = tuple(b.strip() for b in backends.split(",") if b.strip())
    if not chosen or any(b not in BACKENDS for b in chosen):
        raise _fail(f"--backends must name some of {', '.join(BACKENDS)}, got {backends!r}")
    if checkpoint is not None and not checkpoint.is_file():
        raise _fail(f"{checkpoint}: checkpoint file not found")
    if data is not None and checkpoint is None:
        raise _fail("--data needs --checkpoint (the mixture is fitted to that encoder's embeddings)")
    for other in reindex_also or []:
        if not other.is_file():
            raise _fail(f"{other}: checkpoint file not found (--reindex-also)")
    chosen_parts = tuple(p.strip() for p in parts.split(",") if p.strip())
    known_parts = BenchConfig.__dataclass_fields__["parts"].default
    if not chosen_parts or any(p not in known_parts for p in chosen_parts):
        raise _fail(f"--parts must name some of {', '.join(known_parts)}, got {parts!r}")
    common: dict[str, Any] = dict(checkpoint=checkpoint, data=data, seed=seed, reindex_backends=chosen,
                                  reindex_also=tuple(reindex_also or ()),
                                  reindex_precisions_also=tuple(Precision(p).value for p in reindex_precisions or ()),
                                  parts=chosen_parts, workdir=workdir)
    if quick:
        config = quick_config(**common)
    else:
        config = BenchConfig(sizes=_parse_sizes(sizes), reindex_walks=reindex_walks, serving_size=serving_size,
                             sharded_size=serving_size, **common)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    command = _command_line("retrieval")
    try:
        report = run_retrieval_bench(config, out, progress=progress, command=command)
    except ValueError as err:
        raise _fail(str(err)) from None
    print_retrieval_summary(report, Console(), out)


def _parse_seeds(text: str, option: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise _fail(f"{option} must be comma-separated integers, got {text!r}") from None
    if not seeds or any(s < 0 for s in seeds):
        raise _fail(f"{option} must list seeds >= 0, got {text!r}")
    return seeds


def _parse_list(text: str, known: tuple[str, ...], option: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    bad = [c for c in chosen if c not in known]
    if bad:
        raise _fail(f"{option}: unknown {', '.join(bad)}; choose from {', '.join(known)}")
    return chosen


def print_encoder_summary(report: dict[str, Any], console: Console) -> None:
    """The 2d/random rows (headline figures, mean ± std), then the targets."""
    from rich.table import Table

    table = Table(title="Encoder benchmark: 2d / random (mean ± std over seeds)", title_justify="left")
    columns = ("accuracy", "macro_f1", "purity", "nmi", "silhouette", "gallery_p@5")
    table.add_column("model")
    table.add_column("seeds", justify="right")
    for name in columns:
        table.add_column(name, justify="right")
    for row in report["rows"]:
        if row["split"] == "random" and row["view"] == "2d":
            cells = []
            for name in columns:
                cell = row.get(name) or {}
                cells.append("n/a" if cell.get("mean") is None else f"{cell['mean']:.3f} ± {cell['std']:.3f}")
            table.add_row(row.get("ablation") or row["model"], str(len(row["seeds"])), *cells)
    console.print(table)
    targets = Table(title="Targets", title_justify="left")
    for name in ("target", "measured", "met", "by how much"):
        targets.add_column(name)
    for t in report["targets"]:
        measured = "n/a" if t["measured"] is None else f"{t['measured']:.4g}"
        gap = "n/a" if t["gap"] is None else f"{t['gap']:+.4g}"
        targets.add_row(t["target"], measured, "n/a" if t["met"] is None else ("yes" if t["met"] else "NO"), gap)
    console.print(targets)
    meta = report["meta"]
    console.print(f"{meta['runs']} runs, {meta['total_wall_minutes']} min; reports: "
                  f"{', '.join(report.get('files', {}).values()) or '(not written)'}", highlight=False)


@bench_app.command("encoders", epilog=EXIT_CODES_HELP)
def encoders_command(
    data: Path = typer.Option(Path("index_data/cache/bandai-dataset"), "--data", "-d",
                              help="Dataset cache of the Bandai-Namco takes (written by `posestyle ingest`)."),
    source: Path = typer.Option(Path("../shared/data/bandai-namco-motion-2/data"), "--source",
                                help="BVH folder to ingest (bandai-namco preset) when --data does not exist yet."),
    splits_dir: Path = typer.Option(Path("../shared/data/bandai-namco-motion-2/splits"), "--splits",
                                    help="Folder with random-*.txt and cross-content-*.txt."),
    out: Path = typer.Option(Path("docs/benchmarks"), "--out", "-o", help="Folder for the report."),
    stem: str = typer.Option("encoders", "--stem", help="Report file names: <stem>.md and <stem>.json."),
    models: str = typer.Option(None, "--models", help="Models, comma-separated (default: every bench model)."),
    splits: str = typer.Option("random,cross-content", "--split-names", help="Splits, comma-separated."),
    views: str = typer.Option("2d,3d", "--views", help="Views, comma-separated."),
    seeds: str = typer.Option("0,1,2,3,4", "--seeds", help="Seeds, comma-separated."),
    seeds_3d: str = typer.Option(None, "--seeds-3d", help="Seeds of the 3d view (default: --seeds)."),
    ablations: bool = typer.Option(True, "--ablations/--no-ablations", help="PoseStyle-Net ablations (Table 6)."),
    open_set: bool = typer.Option(True, "--open-set/--no-open-set",
                                  help="Open-set runs (3 styles held out, two choices)."),
    student: str = typer.Option("st_mlp", "--student",
                                help="Architecture distilled from each run of the teacher, in every suite and seed "
                                     "(GaitKD); 'none' for no students."),
    teacher: str = typer.Option(None, "--teacher",
                                help="Model the students are distilled from (default: the product's default "
                                     "encoder, the bench's best)."),
    config: Path = typer.Option(None, "--config", "-c",
                                help="YAML: {train: {...}, model_train: {model: {...}}} TrainConfig overrides "
                                     "(default: BENCH_SETTINGS in benchmarks/encoder_bench.py)."),
    overrides: list[str] = typer.Option(None, "--set", metavar="KEY=VALUE",
                                        help="Extra TrainConfig override for every run, KEY=VALUE."),
    workers: int = typer.Option(2, "--workers", "-j", min=1, help="Training processes."),
    threads: int = typer.Option(1, "--threads", min=1, help="Torch threads per training process."),
    device: str = typer.Option("cpu", "--device",
                               help="Where runs train: cpu, auto (CUDA when present) or cuda[:n]. Not part of a "
                                    "run's key (same recipe, other arithmetic order; each record names its "
                                    "device); evaluation and the cost pass stay on the CPU."),
    runs_file: Path = typer.Option(Path("index_data/cache/encoder-bench-runs.jsonl"), "--runs-file",
                                   help="Finished runs are appended here; a rerun resumes from it."),
    fresh: bool = typer.Option(False, "--fresh", help="Ignore (and replace) the runs file."),
    budget: float = typer.Option(None, "--budget-minutes", min=1.0,
                                 help="Start no new run after this many minutes (runs go seed by seed)."),
    report_only: bool = typer.Option(False, "--report-only",
                                     help="Train nothing: write the report from the runs file as it is."),
    cost: bool = typer.Option(True, "--cost/--no-cost", help="Measure parameters, throughput and latency."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Train and evaluate every encoder x split x view x seed; write docs/benchmarks/encoders.md/.json."""
    import yaml
    from rich.console import Console

    from benchmarks.encoder_bench import (
        BENCH_MODELS,
        OPEN_SET_HOLDOUTS,
        SPLITS,
        TEACHER_MODEL,
        VIEWS,
        EncoderBenchConfig,
        load_bench_settings,
        run_encoder_bench,
    )
    from encoder.data.errors import InputError, PoseDataError
    from encoder.models import model_names
    from encoder.training.config import parse_override

    chosen_models = _parse_list(models, tuple(model_names()), "--models") if models else BENCH_MODELS
    chosen_splits = _parse_list(splits, SPLITS, "--split-names")
    chosen_views = _parse_list(views, VIEWS, "--views")
    if student != "none" and student not in model_names():
        raise _fail(f"--student: unknown {student}; choose from none, {', '.join(model_names())}")
    chosen_student = None if student == "none" else student
    teacher = teacher or TEACHER_MODEL
    if teacher not in model_names():
        raise _fail(f"--teacher: unknown {teacher}; choose from {', '.join(model_names())}")
    seed_list = _parse_seeds(seeds, "--seeds")
    by_view = {"3d": _parse_seeds(seeds_3d, "--seeds-3d")} if seeds_3d else {}
    try:
        settings = load_bench_settings(config)
        extra = dict(parse_override(o) for o in overrides or [])
    except (InputError, yaml.YAMLError) as err:
        raise _fail(str(err)) from None
    if not splits_dir.is_dir():
        raise _fail(f"{splits_dir}: splits folder not found")
    if not data.exists():
        if not source.is_dir():
            raise _fail(f"{data}: dataset cache not found, and --source {source} is not a folder to ingest")
        from encoder.data.dataset import ingest
        from encoder.data.labels import preset_labels

        Console().print(f"ingesting {source} -> {data}", highlight=False)
        report = ingest([source], data, preset_labels("bandai-namco", [source]), workers=workers, progress=progress)
        if report.version is None:
            raise _fail(f"{source}: nothing could be ingested")
    if fresh and runs_file.exists():
        runs_file.unlink()
    try:
        bench_config = EncoderBenchConfig(
            data=data, splits_dir=splits_dir, models=chosen_models, splits=chosen_splits, views=chosen_views,
            seeds=seed_list, seeds_by_view=by_view,
            ablations=settings["ablations"] if ablations and "posestyle_net" in chosen_models else (),
            train={**settings["train"], **extra}, model_train=settings["model_train"], cost=cost,
            workers=workers, threads_per_worker=threads, device=device, runs_file=runs_file,
            time_budget_minutes=0.0 if report_only else budget, open_set=OPEN_SET_HOLDOUTS if open_set else (),
            student=chosen_student, teacher=teacher)
    except ValueError as err:
        raise _fail(str(err)) from None
    command = _command_line("encoders")
    try:
        report = run_encoder_bench(bench_config, out, progress=progress, command=command, stem=stem)
    except (ValueError, PoseDataError) as err:
        raise _fail(str(err)) from None
    print_encoder_summary(report, Console())


@bench_app.command("robustness", epilog=EXIT_CODES_HELP)
def robustness_command(
    data: Path = typer.Option(Path("index_data/cache/bandai-dataset"), "--data", "-d",
                              help="Dataset cache of the Bandai-Namco takes (as for `bench encoders`)."),
    splits_dir: Path = typer.Option(Path("../shared/data/bandai-namco-motion-2/splits"), "--splits",
                                    help="Folder with random-*.txt."),
    runs_file: Path = typer.Option(Path("index_data/cache/encoder-bench-runs.jsonl"), "--runs-file",
                                   help="The encoder bench's runs file; its kept 2d/random checkpoints are evaluated."),
    models: str = typer.Option(None, "--models", help="Only these models, comma-separated (default: all kept)."),
    out: Path = typer.Option(Path("docs/benchmarks"), "--out", "-o", help="Folder for the report."),
    stem: str = typer.Option("robustness", "--stem", help="Report file names: <stem>.md and <stem>.json."),
    inference_window_stride: int = typer.Option(
        None, "--inference-window-stride", min=1,
        help="Embed through windows this many frames apart instead of each checkpoint's own setting."),
    precision: Precision = typer.Option(Precision.float32, "--precision", help=PRECISION_HELP),
    merge_report: Path = typer.Option(None, "--merge-report",
                                      help="An earlier <stem>.json of this suite whose checkpoints are gone: its "
                                           "seeds not measured now join the report (per-seed figures)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Accuracy, macro-F1 and gallery P@5 under other cameras, noise, missing joints, tempo, clip length, fps;
    and each model's cost with the same windows."""
    from benchmarks.robustness import run_robustness_bench
    from encoder.data.errors import InputError

    if not runs_file.is_file():
        raise _fail(f"{runs_file}: runs file not found; run `posestyle bench encoders` first")
    if merge_report is not None and not merge_report.is_file():
        raise _fail(f"{merge_report}: report to merge not found")
    chosen = tuple(m.strip() for m in models.split(",") if m.strip()) if models else None
    command = _command_line("robustness")
    try:
        report = run_robustness_bench(runs_file, data, splits_dir, out, chosen, progress, command,
                                      inference_window_stride, stem, Precision(precision).value, merge_report)
    except (ValueError, InputError) as err:
        raise _fail(str(err)) from None
    met = ", ".join(f"{model} {sum(c['met'] for c in checks)}/{len(checks)}"
                    for model, checks in report["targets"].items())
    typer.echo(f"robustness: {report['meta']['checkpoints']} checkpoints, target checks met: {met}; "
               f"report in {out}/{stem}.md")


@bench_app.command("demo", epilog=EXIT_CODES_HELP)
def demo_bench_command(
    root: Path = typer.Option(Path("index_data/demo-bench"), "--root",
                              help="An empty folder (or one this bench made): the demo is built here cold."),
    n: int = typer.Option(3000, "--n", min=60, help="Number of demo walks."),
    out: Path = typer.Option(Path("docs/benchmarks"), "--out", "-o", help="Folder for demo.md/.json."),
) -> None:
    """Time the demo cold and warm (command to first screen, each page) and check what it shows."""
    from benchmarks.demo_bench import run_demo_bench

    try:
        report = run_demo_bench(root, out, n, _command_line("demo"))
    except (ValueError, RuntimeError) as err:
        raise fail(str(err)) from None
    q = report.quality
    typer.echo(f"demo: first screen cold {report.cold.first_screen_s:.0f} s, warm {report.warm.first_screen_s:.0f} s; "
               f"held-out accuracy {q.accuracy:.3f}, leave-one-out P@5 {q.loo_p_at_5:.3f}; report in {out}/demo.md")


@bench_app.command("encoder-speed", epilog=EXIT_CODES_HELP)
def encoder_speed_command(
    data: Path = typer.Option(Path("index_data/cache/bandai-dataset"), "--data", "-d",
                              help="Dataset cache of the takes timed (synthetic demo walks when it does not exist)."),
    checkpoint: Path = typer.Option(None, "--checkpoint", "-c",
                                    help="Encoder checkpoint (default: --model freshly initialised)."),
    model: str = typer.Option("posestyle_net", "--model", "-m",
                              help="Architecture timed, with its default config, when there is no --checkpoint."),
    sequences: int = typer.Option(128, "--sequences", help="Sequences timed end to end."),
    repeats: int = typer.Option(7, "--repeats", help="Timings per figure (the median is reported)."),
    threads: int = typer.Option(2, "--threads", help="Torch threads for inference."),
    train_threads: int = typer.Option(1, "--train-threads", help="Torch threads for the training step."),
    out: Path = typer.Option(None, "--out", "-o", help="Also write the report (markdown) to this file."),
) -> None:
    """CPU ms of an encoder per inference batch, training step and model stage (benchmarks/encoder_profile.py)."""
    from benchmarks.encoder_profile import run_profile
    from encoder.data.atomic import atomic_write_text

    if checkpoint is not None and not checkpoint.is_file():
        raise _fail(f"{checkpoint}: checkpoint not found")
    try:
        report = run_profile(data, checkpoint, sequences=sequences, threads=threads, train_threads=train_threads,
                             repeats=repeats, command=_command_line("encoder-speed"), model=model)
    except ValueError as err:
        raise _fail(str(err)) from None
    if out is not None:
        atomic_write_text(out, report)
    typer.echo(report, nl=False)
