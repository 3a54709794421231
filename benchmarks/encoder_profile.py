"""Where an encoder's time goes: CPU ms per inference batch, per training step, per stage.

``python -m benchmarks.encoder_profile [--model NAME] [--data CACHE] [--checkpoint FILE] [--out FILE]``
(or ``posestyle bench encoder-speed``) times, on the first ``--sequences`` takes of a dataset cache
seen through the benchmark's 2D camera (synthetic demo walks without a cache):

- preprocessing (``StyleEncoder.prepare``) and batching (``collate_segments``) per batch of 64;
- the model in eval mode per batch of 64 (``--threads``, 2 by default), split by stage: PoseStyle-Net's
  stages with forward hooks (input norm, eq. (3) graph, each unit, attention, relation layers, head),
  and for the skeleton-map models (GaitHeat, GaitMM, HSTL) the rendering of the maps;
- one training step on a batch of 32 in training windows (forward, the training loss as ``fit``
  computes it, backward, AdamW) on ``--train-threads`` (1, as the encoder bench trains), with the
  function stages (rendering, eq. (3) graph) timed inside the forward;
- single-query ``embed`` latency (one sequence, end to end).

The machine is shared, so every figure is CPU time (``time.process_time``: all of this
process's threads) next to wall time, median over ``--repeats`` runs; CPU time is the steadier
measure of the code's cost when other processes compete for the cores.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from encoder.data.atomic import atomic_write_text
from encoder.data.batch import PoseBatch, collate_segments
from encoder.data.preprocess import PreprocessConfig, preprocess_sequence
from encoder.data.sequence import PoseSequence
from encoder.inference import StyleEncoder, torch_threads

SINGLE_QUERY_REPEATS = 30


@dataclass
class Timing:
    """Repeated measurements of one thing: CPU and wall milliseconds per run."""

    cpu_ms: list[float] = field(default_factory=list)
    wall_ms: list[float] = field(default_factory=list)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpu_ms)

    @property
    def wall(self) -> float:
        return statistics.median(self.wall_ms)


@contextmanager
def timed(timing: Timing) -> Iterator[None]:
    """Add one CPU/wall measurement of the block to ``timing``."""
    cpu, wall = time.process_time(), time.perf_counter()
    yield
    timing.cpu_ms.append(1000 * (time.process_time() - cpu))
    timing.wall_ms.append(1000 * (time.perf_counter() - wall))


def load_sequences(data: Path | None, n: int) -> tuple[list[PoseSequence], str]:
    """The first ``n`` takes of the cache in the benchmark's 2D view, or ``n`` synthetic demo walks."""
    if data is not None and data.exists():
        from encoder.data.camera import benchmark_2d_view
        from encoder.data.dataset import DatasetCache

        cache = DatasetCache.open(data)
        names = cache.names[:n]
        return [benchmark_2d_view(cache.load(name), name) for name in names], f"{len(names)} takes of {data}"
    from encoder.data.demo import generate_demo_corpus

    return generate_demo_corpus(n, seed=0, views=("2d",)), f"{n} synthetic demo walks (2d view)"


def default_encoder(checkpoint: Path | None, folder: Path, model: str = "posestyle_net") -> tuple[StyleEncoder, str]:
    """The checkpoint's encoder, or ``model`` freshly initialised with its default config (speed does not
    depend on the weights)."""
    if checkpoint is not None:
        return StyleEncoder.load(checkpoint), str(checkpoint)
    from encoder.training import TrainConfig, untrained

    labels = ("active", "elderly", "exhausted", "feminine", "masculine", "normal", "youthful")
    path = folder / f"{model}.safetensors"
    untrained(TrainConfig(model=model, seed=0), labels).save(path)
    return StyleEncoder.load(path), f"freshly initialised default {model} (seed 0)"


class StageTimer:
    """CPU/wall time per named submodule (forward hooks) and per wrapped function (``wrap``)."""

    def __init__(self, model: torch.nn.Module, stages: dict[str, str]) -> None:
        self.totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        self._handles: list[Any] = []
        self._started: dict[str, tuple[float, float]] = {}
        for name, label in stages.items():
            try:
                module = model.get_submodule(name)
            except AttributeError:
                continue                                # switched off in this configuration
            for part in (module if isinstance(module, torch.nn.ModuleList) else [module]):
                self._handles.append(part.register_forward_pre_hook(self._start(label)))
                self._handles.append(part.register_forward_hook(self._stop(label)))

    def _start(self, label: str) -> Callable[..., None]:
        def hook(*_: Any) -> None:
            self._started[label] = (time.process_time(), time.perf_counter())
        return hook

    def _stop(self, label: str) -> Callable[..., None]:
        def hook(*_: Any) -> None:
            cpu, wall = self._started.pop(label)
            self.totals[label][0] += 1000 * (time.process_time() - cpu)
            self.totals[label][1] += 1000 * (time.perf_counter() - wall)
        return hook

    def wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` timed under ``label`` (for stages that are functions, not modules)."""
        def timed_fn(*args: Any, **kwargs: Any) -> Any:
            self._start(label)()
            try:
                return fn(*args, **kwargs)
            finally:
                self._stop(label)()
        return timed_fn

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


POSESTYLE_STAGES = {"input_norm": "input features + norm", "units.0": "unit 1 (shallow)",
                    "units.1": "unit 2 (mid)", "units.2": "unit 3 (deep)", "attention": "branch attention (eq. 5)",
                    "branch_fusion": "branch fusion", "fusion_score": "segment fusion (eq. 6)",
                    "relations": "relation layers (eqs. 9-10)", "head": "head (eq. 12)"}


# Functions timed as stages wherever a model's module calls them by name: attribute -> label.
FUNCTION_STAGES = {"pose_graph": "pose graph (eq. 3)", "render_frames": "skeleton-map rendering"}
# Submodules timed as stages (forward hooks), per model.
MODULE_STAGES = {"posestyle_net": POSESTYLE_STAGES}
REST_LABELS = {"posestyle_net": "rest (window gather/scatter, eqs. 7-8, 11, glue)"}


@contextmanager
def stage_timer(model: torch.nn.Module) -> Iterator[StageTimer]:
    """A ``StageTimer`` on ``model``'s stages (``MODULE_STAGES``, ``FUNCTION_STAGES``) while the block runs."""
    name = getattr(model, "registry_name", "")
    timer = StageTimer(model, MODULE_STAGES.get(name, {}))
    module = sys.modules[type(model).__module__]
    originals = {attr: getattr(module, attr) for attr in FUNCTION_STAGES if hasattr(module, attr)}
    for attr, original in originals.items():
        setattr(module, attr, timer.wrap(FUNCTION_STAGES[attr], original))
    try:
        yield timer
    finally:
        for attr, original in originals.items():
            setattr(module, attr, original)
        timer.remove()


def stage_breakdown(encoder: StyleEncoder, batch: PoseBatch, repeats: int) -> dict[str, tuple[float, float]]:
    """Median CPU and wall ms per stage of one eval batch (hooks add a little overhead)."""
    runs: dict[str, list[tuple[float, float]]] = defaultdict(list)
    total = Timing()
    with stage_timer(encoder.model) as timer:
        for _ in range(repeats):
            timer.totals.clear()
            with timed(total), torch.inference_mode():
                encoder.model(batch)
            for label, (cpu, wall) in timer.totals.items():
                runs[label].append((cpu, wall))
    out = {label: (statistics.median(c for c, _ in v), statistics.median(w for _, w in v)) for label, v in runs.items()}
    rest = REST_LABELS.get(getattr(encoder.model, "registry_name", ""), "rest (the network and glue)")
    out[rest] = (total.cpu - sum(c for c, _ in out.values()), total.wall - sum(w for _, w in out.values()))
    out["total (with hooks)"] = (total.cpu, total.wall)
    return out


def train_step_timing(encoder: StyleEncoder, batch: PoseBatch, repeats: int) -> dict[str, Timing]:
    """Forward with the training loss (as ``fit`` computes it), backward and optimiser step of one training
    batch, timed separately, and within the forward the model's function stages (``FUNCTION_STAGES``)."""
    import copy

    from encoder.models import StyleLoss
    from encoder.training import TrainConfig, forward_loss

    model = copy.deepcopy(encoder.model).train()
    loss_fn = StyleLoss(TrainConfig().loss)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)
    timings: dict[str, Timing] = defaultdict(Timing)
    with stage_timer(model) as timer:
        for i in range(repeats + 1):                    # the first step warms up (allocations, AdamW state)
            parts = {part: Timing() for part in ("forward + loss", "backward", "optimiser step", "training step")}
            timer.totals.clear()
            with timed(parts["training step"]):
                with timed(parts["forward + loss"]):
                    loss, _, _ = forward_loss(model, loss_fn, batch)
                with timed(parts["backward"]):
                    optimiser.zero_grad(set_to_none=True)
                    loss.backward()
                with timed(parts["optimiser step"]):
                    optimiser.step()
            parts.update({f"forward: {label}": Timing([cpu], [wall]) for label, (cpu, wall) in timer.totals.items()
                          if label in FUNCTION_STAGES.values()})
            if i:
                for part, t in parts.items():
                    timings[part].cpu_ms += t.cpu_ms
                    timings[part].wall_ms += t.wall_ms
    return dict(timings)


def run_profile(data: Path | None, checkpoint: Path | None, sequences: int = 128, batch_size: int = 64,
                train_batch: int = 32, threads: int = 2, train_threads: int = 1, repeats: int = 7,
                command: str = "python -m benchmarks.encoder_profile", model: str = "posestyle_net") -> str:
    """Measure everything; returns the report as markdown. ``model``: the architecture timed freshly
    initialised when there is no ``checkpoint``."""
    from encoder.models.registry import get_spec

    if sequences < 1 or repeats < 1 or threads < 1 or train_threads < 1:
        raise ValueError("sequences, repeats, threads and train threads must be >= 1")
    get_spec(model)                                     # ValueError naming the known models
    seqs, source = load_sequences(data, sequences)
    batch_size, train_batch = min(batch_size, len(seqs)), min(train_batch, len(seqs))
    with tempfile.TemporaryDirectory() as folder:
        encoder, model_source = default_encoder(checkpoint, Path(folder), model)
    rows: list[tuple[str, Timing]] = []
    with torch_threads(threads):
        prep, collate, model_t = Timing(), Timing(), Timing()
        items = [encoder.prepare(s) for s in seqs[:batch_size]]
        batch = collate_segments(items, max_segments=encoder.preprocess_config.max_segments)
        with torch.inference_mode():
            encoder.model(batch)                                     # warm-up
        for _ in range(repeats):
            with timed(prep):
                items = [encoder.prepare(s) for s in seqs[:batch_size]]
            with timed(collate):
                batch = collate_segments(items, max_segments=encoder.preprocess_config.max_segments)
            with timed(model_t), torch.inference_mode():
                encoder.model(batch)
        end_to_end = Timing()
        for _ in range(max(1, repeats // 2)):
            with timed(end_to_end):
                encoder.embed(seqs, batch_size=batch_size)
        rows += [(f"preprocess {batch_size} sequences", prep), (f"collate a batch of {batch_size}", collate),
                 (f"model, eval, batch of {batch_size}", model_t),
                 (f"embed {len(seqs)} sequences end to end (per batch of {batch_size})",
                  Timing([t * batch_size / len(seqs) for t in end_to_end.cpu_ms],
                         [t * batch_size / len(seqs) for t in end_to_end.wall_ms]))]
        stages = stage_breakdown(encoder, batch, repeats)
        single = Timing()
        encoder.embed(seqs[:1])
        for i in range(SINGLE_QUERY_REPEATS):
            with timed(single):
                encoder.embed([seqs[i % len(seqs)]])
        rows.append(("single-query embed (1 sequence, end to end)", single))
    with torch_threads(train_threads):
        # training windows, as fit cuts them (window_stride; the encoder's own config has the inference stride)
        training_config = PreprocessConfig.from_dict(encoder.meta.preprocess_config)
        train_items = [preprocess_sequence(s, training_config) for s in seqs[:train_batch]]
        labels = [i % len(encoder.labels) for i in range(len(train_items))]
        train_batch_t = collate_segments(train_items, labels, max_segments=training_config.max_segments)
        train = train_step_timing(encoder, train_batch_t, repeats)
    windows = int(batch.segment_mask.sum())
    train_windows = int(train_batch_t.segment_mask.sum())
    e2e = rows[3][1]
    lines = [f"Command: `{command}`", "",
             f"Data: {source}; model: {model_source}; {windows} windows in the timed batch of {batch_size}, "
             f"{train_windows} training windows in the training batch of {train_batch}.",
             f"torch {torch.__version__}, {threads} threads for inference, {train_threads} for training; "
             f"median of {repeats} runs; load average {_load()}.", "",
             "| what | CPU ms | wall ms |", "|---|---:|---:|"]
    lines += [f"| {name} | {t.cpu:.1f} | {t.wall:.1f} |" for name, t in rows]
    lines += [f"| training step, batch of {train_batch}: {part} | {t.cpu:.1f} | {t.wall:.1f} |"
              for part, t in train.items()]
    lines += ["", f"End to end: {1000 * batch_size / e2e.wall:.0f} embeddings/s wall "
              f"({1000 * batch_size / e2e.cpu:.0f} per CPU-second); model only "
              f"{1000 * batch_size / model_t.wall:.0f} embeddings/s wall; single query p50 {single.wall:.2f} ms wall.",
              "", f"Model stages, eval, batch of {batch_size} (forward hooks):", "",
              "| stage | CPU ms | wall ms |", "|---|---:|---:|"]
    lines += [f"| {name} | {cpu:.1f} | {wall:.1f} |" for name, (cpu, wall) in stages.items()]
    return "\n".join(lines) + "\n"


def _load() -> str:
    from benchmarks.machine import load_average

    load = load_average()
    return "n/a" if load is None else ", ".join(f"{x:.2f}" for x in load)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("index_data/cache/bandai-dataset"),
                        help="dataset cache (synthetic demo walks when it does not exist)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="encoder checkpoint (default: fresh model)")
    parser.add_argument("--model", default="posestyle_net", help="architecture timed without --checkpoint")
    parser.add_argument("--sequences", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="also write the report (markdown) here")
    args = parser.parse_args(argv)
    command = " ".join(["python -m benchmarks.encoder_profile", *(argv if argv is not None else sys.argv[1:])])
    report = run_profile(args.data, args.checkpoint, sequences=args.sequences, threads=args.threads,
                         train_threads=args.train_threads, repeats=args.repeats, command=command,
                         model=args.model)
    if args.out is not None:
        atomic_write_text(args.out, report)
    print(report, end="")


if __name__ == "__main__":
    main()
