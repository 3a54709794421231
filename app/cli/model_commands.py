"""Model commands: ``posestyle train`` (dataset cache -> checkpoint) and ``posestyle evaluate``.

Splits (``--split``): a prefix naming ``<prefix>-train.txt``, ``-val.txt``, ``-test.txt``
(e.g. ``../shared/data/bandai-namco-motion-2/splits/random``), a single ``.txt`` list (for
evaluate), or ``auto``: stratified 70/10/20 by label with the seed. Views: a 3D dataset is
trained/evaluated in ``--view 2d`` (each take through its BENCHMARK.md virtual camera) or
``--view 3d``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import typer

from app.cli import cli
from app.cli.common import EXIT_CODES_HELP, EXIT_USAGE, View, fail

if TYPE_CHECKING:
    from rich.table import Table

    from encoder.data.sequence import PoseSequence


def _load(cache: Any, names: Sequence[str], desc: str) -> list[PoseSequence]:
    from tqdm import tqdm

    return [cache.load(n) for n in tqdm(names, desc=desc, unit="seq", leave=False, dynamic_ncols=True)]


def _table(title: str, rows: Sequence[tuple[str, Any]]) -> Table:
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in rows:
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    return table


@cli.command("train", epilog=EXIT_CODES_HELP)
def train_command(
    model: str = typer.Option(None, "--model", "-m", help="Registered model name (default: from config)."),
    data: Path = typer.Option(..., "--data", "-d", help="Dataset cache written by `posestyle ingest`."),
    split: str = typer.Option("auto", "--split", help="Split prefix (<prefix>-train.txt ...) or 'auto'."),
    out: Path = typer.Option(..., "--out", "-o", help="Checkpoint to write (.safetensors)."),
    config: Path = typer.Option(None, "--config", "-c", help="Training config (.yaml/.yml/.toml)."),
    seed: int = typer.Option(None, "--seed", help="Seed: initialisation and batch order (and the auto split)."),
    epochs: int = typer.Option(None, "--epochs", min=1),
    batch_size: int = typer.Option(None, "--batch-size", min=1),
    lr: float = typer.Option(None, "--lr"),
    patience: int = typer.Option(None, "--patience", min=1),
    view: View = typer.Option(None, "--view", help="2d (benchmark virtual camera for 3D takes) or 3d."),
    device: str = typer.Option(None, "--device", help="auto, cpu or cuda[:n]."),
    threads: int = typer.Option(None, "--threads", min=0, help="Torch CPU threads (0: torch default)."),
    overrides: list[str] = typer.Option(None, "--set", metavar="KEY=VALUE",
                                        help="Any setting as KEY=VALUE, e.g. augment.mirror=false."),
    teacher: Path = typer.Option(None, "--teacher", metavar="CHECKPOINT",
                                 help="Distil from this trained checkpoint (GaitKD-style)."),
    resume: bool = typer.Option(True, "--resume/--no-resume",
                                help="Continue an interrupted training of the same run from its last finished "
                                     "epoch (its state waits in OUT.resume.pt until the checkpoint is written; "
                                     "not for --teacher)."),
) -> None:
    """Train a style encoder on a dataset split and write its checkpoint (a student with --teacher)."""
    from rich.console import Console

    from encoder.data.dataset import DatasetCache
    from encoder.data.errors import InputError, PoseDataError
    from encoder.models import model_names
    from encoder.training import fit, load_train_config, parse_override
    from encoder.training.splits import resolve_split

    if out.suffix != ".safetensors":
        raise fail(f"{out}: the checkpoint must be a .safetensors file", EXIT_USAGE)
    try:
        settings = dict(parse_override(o) for o in overrides or [])
        flags = {"model": model, "seed": seed, "epochs": epochs, "batch_size": batch_size, "lr": lr,
                 "patience": patience, "view": View(view).value if view else None, "device": device,
                 "num_threads": threads}
        settings.update({k: v for k, v in flags.items() if v is not None})
        cfg = load_train_config(config, settings)
    except InputError as err:
        raise fail(str(err), EXIT_USAGE) from None
    if cfg.model not in model_names():
        raise fail(f"--model: unknown model {cfg.model!r}; known: {', '.join(model_names())}", EXIT_USAGE)
    console = Console()
    try:
        cache = DatasetCache.open(data)
        parts = resolve_split(split, cache.names, [it.label for it in cache.items], cfg.seed)
        if not parts["train"]:
            raise PoseDataError(split, "the split has no training names")
        train = _load(cache, parts["train"], "load train")
        val = _load(cache, parts["val"], "load val")
        summary = {"dataset": str(data), "dataset_version": cache.dataset_version,
                   "split": {"spec": split, "seed": cfg.seed,
                             **{p: len(names) for p, names in parts.items()}}}
        state = out.with_suffix(".resume.pt") if resume and teacher is None else None
        if teacher is not None:
            from encoder.training.distill import distill
            result = distill(train, val, cfg, teacher, summary=summary)
        else:
            result = fit(train, val, cfg, summary=summary, resume_file=state)
        meta = result.save(out)
        if state is not None:
            state.unlink(missing_ok=True)
    except InputError as err:
        raise fail(str(err)) from None
    best = meta.training.get("best_val", {})
    console.print(_table(f"Trained {cfg.model} -> {out}", [
        ("encoder version", meta.encoder_version), ("styles", ", ".join(meta.labels)),
        ("train / val sequences", f"{meta.training['n_train']} / {meta.training['n_val']}"),
        ("epochs run (best)", f"{meta.training['epochs_run']} ({result.best_epoch})"),
        ("final train accuracy", result.history[-1]["train_accuracy"]),
        *[(k.replace("_", " "), v) for k, v in best.items()],
        ("skipped inputs", len(result.skipped)),
        ("time", f"{meta.training['train_seconds']:.1f} s"),
    ]))
    for line in result.skipped[:20]:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


@cli.command("evaluate", epilog=EXIT_CODES_HELP)
def evaluate_command(
    checkpoint: Path = typer.Argument(..., help="Encoder checkpoint (.safetensors)."),
    data: Path = typer.Option(..., "--data", "-d", help="Dataset cache written by `posestyle ingest`."),
    split: str = typer.Option(..., "--split", help="Queries: a .txt list, a split prefix (its -test part), "
                              "'auto', or PREFIX:part[+part]."),
    gallery_split: str = typer.Option(None, "--gallery-split",
                                      help="Gallery: .txt lists / prefixes, comma-separated, or 'none' "
                                           "(default: the train+val parts of --split)."),
    out: Path = typer.Option(..., "--out", "-o", help="Report folder (metrics.json, summary.md, figures)."),
    view: View = typer.Option(None, "--view", help="2d or 3d (default: the encoder's input)."),
    seed: int = typer.Option(None, "--seed", help="Seed of an 'auto' split and of k-means (default: training seed)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda[:n] or auto."),
    cost: bool = typer.Option(True, "--cost/--no-cost", help="Time the encoder (CPU, 2 threads, batch 64)."),
) -> None:
    """Evaluate a checkpoint on a split: every BENCHMARK.md metric, written as a report."""
    from rich.console import Console

    from encoder.data.dataset import DatasetCache
    from encoder.data.errors import InputError
    from encoder.evaluation import evaluate_encoder, headline_rows, write_report
    from encoder.inference import StyleEncoder
    from encoder.training import resolve_device
    from encoder.training.splits import AUTO, resolve_names

    console = Console()
    start = time.perf_counter()
    try:
        encoder = StyleEncoder.load(checkpoint, device=resolve_device(device))
        view = View(view).value if view else ("2d" if encoder.input_dims == 2 else "3d")
        trained_split = encoder.meta.training.get("split", {})
        split_seed = seed if seed is not None else int(trained_split.get("seed", encoder.meta.training.get("seed", 0)))
        cache = DatasetCache.open(data)
        names, labels = cache.names, [it.label for it in cache.items]
        queries = resolve_names(split, names, labels, split_seed)
        if gallery_split is None:
            base = split.partition(":")[0]
            gallery_specs = [] if Path(base).is_file() and base != AUTO else [f"{base}:train+val"]
        elif gallery_split.strip().lower() == "none":
            gallery_specs = []
        else:
            gallery_specs = [g.strip() for g in gallery_split.split(",") if g.strip()]
        gallery: list[str] = []
        for spec in gallery_specs:
            gallery += resolve_names(spec, names, labels, split_seed, default_parts=("train", "val"))
        gallery = [g for g in dict.fromkeys(gallery) if g not in set(queries)]

        query_seqs = _load(cache, queries, "load queries")
        gallery_seqs = _load(cache, gallery, "load gallery") if gallery else []
        result = evaluate_encoder(encoder, query_seqs, gallery_seqs, view=view, batch_size=batch_size,
                                  seed=split_seed, cost=cost)
        for line in result.skipped:
            console.print(f"skipped: {line}", markup=False, highlight=False, soft_wrap=True)
        context = {
            "checkpoint": str(checkpoint), "encoder_version": encoder.version, "model": encoder.model_name,
            "dataset": str(data), "dataset_version": cache.dataset_version, "split": split,
            "gallery": ",".join(gallery_specs) or "none", "view": view, "queries": len(result.labels),
            "seconds": round(time.perf_counter() - start, 1),
        }
        written = write_report(result.metrics, out, embeddings=result.embeddings, labels=result.labels,
                               title=f"{encoder.model_name} {encoder.version} on {Path(split).name}",
                               cost=result.cost, context=context, skipped=len(result.skipped))
    except InputError as err:
        raise fail(str(err)) from None
    rows = headline_rows(result.metrics, result.cost)
    console.print(_table(f"Evaluation of {encoder.model_name} {encoder.version} ({len(result.labels)} queries)", rows))
    console.print(f"report: {', '.join(str(p) for p in written.values())}", highlight=False, soft_wrap=True)
