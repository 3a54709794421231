"""``posestyle demo``: the main job, one idempotent step at a time, on the embedded demo corpus or
(``--source bandai``) on the Bandai-Namco takes seen in the benchmark's ``2d`` view.

Each step is the very command a user would type, skipped when its output is already there:
demo-corpus -> ingest -> train -> index -> app.
bandai: ingest the BVH -> train on the benchmark's random split in the 2d view -> view-2d ->
ingest the views -> index -> app, under ``<root>/bandai``. Delete ``index_data/`` to start over.
"""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from app.cli import cli
from app.cli.common import EXIT_CODES_HELP, EXIT_USAGE, fail

if TYPE_CHECKING:
    from rich.console import Console


def _run_step(title: str, args: list[str], console: Console) -> None:
    """Run one ``posestyle`` subcommand in-process; stop the whole job if it fails."""
    console.rule(f"[bold]{title}[/bold]")
    console.print("$ posestyle " + " ".join(args), markup=False, highlight=False)
    command = typer.main.get_command(cli)
    try:
        code = command.main(args=args, prog_name="posestyle", standalone_mode=False)
    except typer.Exit as done:
        code = done.exit_code
    if isinstance(code, int) and code:   # without standalone mode, typer returns the exit code of typer.Exit
        console.print(f"demo: step '{title}' failed (exit {code})", markup=False)
        raise typer.Exit(code)


class DemoSource(str, Enum):
    """What the demo indexes: the generated demo corpus or the Bandai-Namco motion capture."""

    demo = "demo"
    bandai = "bandai"


BANDAI_DIR = Path("../shared/data/bandai-namco-motion-2")
# The demo's training schedule: the product's encoder, short, on clean generated walks, so a cold
# `make demo` serves the app within 3 minutes on 2 cores. Demo walks last 4-8 s (11 windows on average):
# a step sees a 2-window crop of each (redrawn every epoch), no augmented copies (the demo's walks
# come from one fixed camera without noise), no dropout (16 epochs leave nothing to regularise) and
# validation from epoch 9 on (the warm-up epochs never win).
# About 1 min on a quiet 2-core machine, for held-out accuracy 0.94 and leave-one-out P@5 0.92
# (docs/benchmarks/demo.md), what the full `posestyle train` defaults reach in several times as long.
DEMO_EPOCHS = 16
DEMO_TRAIN_WINDOWS = 2
DEMO_TRAIN_SETTINGS: tuple[str, ...] = ("augment.enabled=false", "model_config.dropout=0.0", "validate_from=9")


@cli.command("demo", epilog=EXIT_CODES_HELP, help=(
    "Build the demo corpus, ingest it, train an encoder, index it and open the app.\n\n"
    f"On the demo corpus the encoder trains a short schedule (about 1 min on 2 cores): {DEMO_EPOCHS} epochs "
    f"of {DEMO_TRAIN_WINDOWS}-window crops, then {', '.join(DEMO_TRAIN_SETTINGS)}."))
def demo_command(
    source: DemoSource = typer.Option(DemoSource.demo, "--source",
                                      help="demo: the generated corpus; bandai: the Bandai-Namco takes (2d view)."),
    bandai_dir: Path = typer.Option(BANDAI_DIR, "--bandai-dir", metavar="DIR",
                                    help="The Bandai-Namco dataset (data/*.bvh, splits/) for --source bandai."),
    root: Path = typer.Option(Path("index_data"), "--root", help="Where the demo's artifacts go."),
    n: int = typer.Option(3000, "--n", min=60, help="Number of demo walks."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the corpus and of training."),
    epochs: int = typer.Option(None, "--epochs", min=1,
                               help=f"Training epochs (default: {DEMO_EPOCHS} for the demo corpus, `posestyle "
                                    "train`'s for bandai; early stopping may end sooner)."),
    train_windows: int = typer.Option(None, "--train-windows", min=0,
                                      help=f"Windows per take per training step (0: all; default {DEMO_TRAIN_WINDOWS} "
                                           "for the demo corpus, all for bandai); fewer trains faster."),
    model: str = typer.Option(None, "--model", "-m", help="Encoder to train (default: `posestyle train`'s)."),
    app: bool = typer.Option(True, "--app/--no-app", help="Open the app at the end."),
    port: int = typer.Option(8501, "--port", "-p", min=1, max=65535, help="Port of the app."),
) -> None:
    """Build the demo corpus, ingest it, train an encoder, index it and open the app."""
    from rich.console import Console

    console = Console()
    if model is None:
        from encoder.training import DEFAULT_MODEL
        model = DEFAULT_MODEL
    if DemoSource(source) is DemoSource.bandai:
        _bandai_demo(bandai_dir, root, seed, epochs, train_windows, model, app, port, console)
        return
    raw = root / "demo" / "raw"
    dataset = root / "demo" / "dataset"
    checkpoint = root / "models" / f"demo-{model}-seed{seed}.safetensors"

    if not (dataset / "manifest.json").exists():
        if not (raw / "2d" / "labels.csv").exists():
            _run_step("1/5 generate the demo corpus",
                      ["demo-corpus", "--out", str(raw), "--n", str(n), "--seed", str(seed), "--view", "2d"], console)
        _run_step("2/5 ingest the 2D view", ["ingest", str(raw / "2d"), "--out", str(dataset), "--preset", "demo"],
                  console)
    else:
        console.print(f"demo: dataset {dataset} exists, corpus and ingest skipped", markup=False)

    if checkpoint.exists():
        console.print(f"demo: checkpoint {checkpoint} exists, training skipped", markup=False)
    else:
        _run_step("3/5 train the encoder",
                  ["train", "--model", model, "--data", str(dataset), "--split", "auto", "--seed", str(seed),
                   *_schedule_flags(DEMO_EPOCHS if epochs is None else epochs,
                                    DEMO_TRAIN_WINDOWS if train_windows is None else train_windows),
                   *(flag for setting in DEMO_TRAIN_SETTINGS for flag in ("--set", setting)),
                   "--out", str(checkpoint)], console)

    _run_step("4/5 index (incremental)",
              ["index", "--checkpoint", str(checkpoint), "--data", str(dataset), "--root", str(root)], console)

    if app:
        _run_step("5/5 open the app", ["app", "--root", str(root), "--port", str(port)], console)
    else:
        console.print(f"demo: done; open the app with `posestyle app --root {root}`", markup=False)


def _schedule_flags(epochs: int | None, train_windows: int | None) -> list[str]:
    """``posestyle train`` flags for the options given; the rest stay the product's defaults."""
    flags = [] if epochs is None else ["--epochs", str(epochs)]
    return flags + ([] if train_windows is None else ["--set", f"train_windows={train_windows}"])


def _bandai_demo(bandai_dir: Path, root: Path, seed: int, epochs: int | None, train_windows: int | None,
                 model: str, app: bool, port: int, console: Console) -> None:
    """The demo's steps over the 962 Bandai-Namco takes: train in the benchmark's 2d view (random split),
    index every take's benchmark 2d view under ``<root>/bandai`` and serve that."""
    data, splits = bandai_dir / "data", bandai_dir / "splits" / "random"
    if not data.is_dir() or not Path(f"{splits}-train.txt").is_file():
        raise fail(f"{bandai_dir}: not the Bandai-Namco dataset (needs data/*.bvh and splits/random-*.txt)",
                   EXIT_USAGE)
    home = root / "bandai"
    takes, views, dataset = home / "takes", home / "views-2d", home / "dataset-2d"
    checkpoint = root / "models" / f"bandai-{model}-seed{seed}.safetensors"
    if not (takes / "manifest.json").exists():
        _run_step("1/6 ingest the BVH takes", ["ingest", str(data), "--out", str(takes), "--preset", "bandai-namco",
                                               "--workers", "2"], console)
    if not checkpoint.exists():
        _run_step("2/6 train the encoder (2d view, random split)",
                  ["train", "--model", model, "--data", str(takes), "--split", str(splits), "--view", "2d",
                   "--seed", str(seed), *_schedule_flags(epochs, train_windows), "--out", str(checkpoint)], console)
    else:
        console.print(f"demo: checkpoint {checkpoint} exists, training skipped", markup=False)
    if not (dataset / "manifest.json").exists():
        _run_step("3/6 the takes through their benchmark 2d cameras", ["view-2d", str(takes), "--out", str(views)],
                  console)
        _run_step("4/6 ingest the 2d views", ["ingest", str(views), "--out", str(dataset), "--preset",
                                              "bandai-namco"], console)
    _run_step("5/6 index (incremental)", ["index", "--checkpoint", str(checkpoint), "--data", str(dataset),
                                          "--root", str(home)], console)
    if app:
        _run_step("6/6 open the app", ["app", "--root", str(home), "--port", str(port)], console)
    else:
        console.print(f"demo: done; open the app with `posestyle app --root {home}`", markup=False)
