"""``fit``: train one style model with AdamW, warm-up + cosine schedule and early stopping.

Speed on a small CPU (the benchmark trains 100+ models on 2 cores):

- every sequence is preprocessed once and its ``SegmentedSequence`` kept in memory;
- augmentations that change the raw keypoints (camera view, tempo, mirror, jitter, dropout)
  need the whole preprocessing chain again, so K augmented copies per training sequence are
  made and preprocessed once, before the first epoch (``AugmentConfig.variants``). Each epoch
  every sequence contributes one of its K + 1 versions, picked at random: the model sees new
  inputs from epoch to epoch at no per-epoch preprocessing cost;
- validation batches are collated once;
- prepared sequences are kept in ``PREPARED_CACHE`` across ``fit`` calls in one process: the
  versions do not depend on the training seed or model, so a sweep prepares each take once.

Determinism: ``torch.manual_seed(seed)`` before the model is built and a NumPy generator
seeded by ``seed`` for batch order and version picking; the augmented copies depend only on
``augment.seed`` and the take name. The seed therefore changes initialisation and batch
order only (as BENCHMARK.md asks), and on CPU the same seed gives the same model bit for bit
(CUDA kernels may add run-to-run rounding differences).

Early stopping watches ``early_stop_metric`` on the validation split; with ``val_macro_f1``
a tie (within ``min_delta``) is broken by a lower validation loss, so training does not stop
at the first epoch that classifies the validation split perfectly. The best epoch's weights
are restored at the end.

Resuming: with ``resume_file``, the whole training state (weights, optimiser, schedule, best epoch,
history and both random generators) is written atomically after every epoch, and a later ``fit``
of the same run continues after the last epoch it finds there, to the same model bit for bit (on
CPU) as a run that was never stopped. A state of another run (config, styles, data) is ignored.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import time
from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score
from tqdm import tqdm

from encoder.checkpoint import CheckpointMeta, save_checkpoint
from encoder.data.atomic import atomic_write_bytes
from encoder.data.batch import PoseBatch, SegmentedSequence, collate_segments
from encoder.data.camera import training_view
from encoder.data.errors import ConfigError, PoseDataError, one_line
from encoder.data.motion_statistics import MotionStatisticsScaler
from encoder.data.preprocess import preprocess_sequence
from encoder.data.sequence import PoseSequence
from encoder.data.skeleton import CANONICAL_SKELETON
from encoder.inference import torch_threads
from encoder.models import StyleLoss, StyleModel, build_model, config_from_dict, config_to_dict
from encoder.training.augment import make_variants
from encoder.training.config import TrainConfig


@dataclass
class TrainResult:
    """A trained model (best epoch restored, eval mode), its per-epoch history and checkpoint metadata."""

    model: torch.nn.Module
    history: list[dict[str, Any]]
    best_epoch: int
    checkpoint: CheckpointMeta
    skipped: list[str] = field(default_factory=list)

    def save(self, path: str | Path) -> CheckpointMeta:
        """Write the checkpoint (``.safetensors``); returns the metadata with its ``encoder_version``."""
        self.checkpoint = save_checkpoint(path, self.model, self.checkpoint)
        return self.checkpoint


class PreparedCache:
    """Preprocessed versions (original + augmented copies) per sequence, kept across ``fit`` calls.

    The versions depend only on the sequence content and name, the view, the augmentation and
    the preprocessing settings, never on the training seed, so runs that differ by seed or
    model (a benchmark sweep) preprocess each take once. Least recently used entries are
    dropped beyond ``max_bytes``. Hand-written: ``functools.lru_cache`` bounds the entry count,
    not bytes, and ``cachetools.LRUCache(getsizeof=...)`` would add a dependency for ~20 lines.
    """

    def __init__(self, max_bytes: int = 2 << 30) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple, tuple[list[SegmentedSequence], list[str]]] = OrderedDict()
        self._bytes: dict[tuple, int] = {}
        self.hits = 0
        self.misses = 0

    @property
    def nbytes(self) -> int:
        return sum(self._bytes.values())

    def get(self, key: tuple) -> tuple[list[SegmentedSequence], list[str]] | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, key: tuple, versions: list[SegmentedSequence], notes: list[str]) -> None:
        size = sum(a.nbytes for v in versions for a in (v.positions, v.velocity, v.joint_mask, v.frame_mask, v.phase))
        if size > self.max_bytes:
            return
        self._entries[key] = (versions, notes)
        self._bytes[key] = size
        total = self.nbytes
        while total > self.max_bytes and self._entries:
            old, _ = self._entries.popitem(last=False)
            total -= self._bytes.pop(old)

    def clear(self) -> None:
        self._entries.clear()
        self._bytes.clear()


PREPARED_CACHE = PreparedCache()

# Extra loss terms of a step: (batch, model output) -> {name: scalar loss}.
ExtraTerms = Callable[[PoseBatch, Any], dict[str, torch.Tensor]]


@dataclass
class _Prepared:
    """Preprocessed sequences of one split: per item the original and its augmented versions."""

    versions: list[list[SegmentedSequence]]
    labels: np.ndarray
    names: list[str]
    skipped: list[str]


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; otherwise the named device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device", f"{device} requested but CUDA is not available")
    return torch.device(device)


def lr_factor(step: int, total_steps: int, warmup_steps: int, min_ratio: float) -> float:
    """Linear warm-up to 1, then cosine decay to ``min_ratio`` at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _prepare(seqs: Sequence[PoseSequence], cfg: TrainConfig, label_index: dict[str, int],
             augment: bool, desc: str) -> _Prepared:
    """View, augment and preprocess every sequence; a failing one is skipped and reported."""
    versions: list[list[SegmentedSequence]] = []
    labels: list[int] = []
    names: list[str] = []
    skipped: list[str] = []
    for seq in tqdm(seqs, desc=desc, unit="seq", disable=not cfg.progress, leave=False, dynamic_ncols=True):
        source = seq.source or seq.name or "<sequence>"
        if seq.label not in label_index:
            skipped.append(f"{source}: style {seq.label!r} is not among the training styles")
            continue
        key = (seq.content_hash(), seq.name, cfg.view, cfg.augment if augment else None, cfg.preprocess)
        cached = PREPARED_CACHE.get(key)
        if cached is None:
            try:
                own = [preprocess_sequence(training_view(seq, cfg.view), cfg.preprocess)]
                extra = make_variants(seq, cfg.augment, cfg.view) if augment else []
            except PoseDataError as err:
                skipped.append(str(err))
                continue
            notes: list[str] = []
            for variant in extra:
                try:
                    own.append(preprocess_sequence(variant, cfg.preprocess))
                except PoseDataError as err:      # an unlucky copy (e.g. all joints dropped): skip it
                    notes.append(f"augmented copy of {err}")
            PREPARED_CACHE.put(key, own, notes)
        else:
            own, notes = cached
        skipped.extend(notes)
        versions.append(own)
        labels.append(label_index[seq.label])
        names.append(seq.name or source)
    return _Prepared(versions, np.asarray(labels, np.int64), names, skipped)


def crop_windows(item: SegmentedSequence, max_windows: int, rng: np.random.Generator) -> SegmentedSequence:
    """A random contiguous run of at most ``max_windows`` windows (views, no copy)."""
    m = item.num_segments
    if max_windows <= 0 or m <= max_windows:
        return item
    start = int(rng.integers(0, m - max_windows + 1))
    cut = slice(start, start + max_windows)
    return SegmentedSequence(positions=item.positions[cut], velocity=item.velocity[cut],
                             joint_mask=item.joint_mask[cut], frame_mask=item.frame_mask[cut], phase=item.phase[cut])


def _batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    order = rng.permutation(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def forward_loss(model: torch.nn.Module, loss_fn: torch.nn.Module, batch: PoseBatch,
                 extra_terms: ExtraTerms | None = None) -> tuple[torch.Tensor, dict[str, float], torch.Tensor]:
    """One training step's loss: ``StyleLoss`` + the model's own terms (``extra_losses``) + ``extra_terms``
    (e.g. distillation). Returns the total, each term's value and the logits."""
    out = model(batch)
    terms = dict(loss_fn(out, batch.labels))
    total = terms.pop("total")
    extra = dict(model.extra_losses(out, batch.labels))
    if extra_terms is not None:
        extra.update(extra_terms(batch, out))
    for value in extra.values():
        total = total + value
    terms.update(extra)
    return total, {k: float(v.detach()) for k, v in terms.items()}, out.logits


@torch.no_grad()
def _validate(model: torch.nn.Module, loss_fn: torch.nn.Module, batches: list[PoseBatch],
              extra_terms: ExtraTerms | None = None) -> dict[str, float]:
    model.eval()
    losses, weights, preds, trues = [], [], [], []
    for batch in batches:
        total, _, logits = forward_loss(model, loss_fn, batch, extra_terms)
        losses.append(float(total))
        weights.append(len(batch))
        preds.append(logits.argmax(dim=1).cpu().numpy())
        trues.append(batch.labels.cpu().numpy())
    pred, true = np.concatenate(preds), np.concatenate(trues)
    # macro-F1 over the classes present as truth or prediction, as encoder.evaluation.metrics reports it
    return {"val_loss": float(np.average(losses, weights=weights)), "val_accuracy": float(accuracy_score(true, pred)),
            "val_macro_f1": float(f1_score(true, pred, labels=np.union1d(true, pred), average="macro",
                                           zero_division=0))}


def is_improvement(metrics: dict[str, float], best: dict[str, float] | None, cfg: TrainConfig) -> bool:
    """Early-stopping test: better ``early_stop_metric`` by ``min_delta``; for macro-F1 a tie
    within ``min_delta`` counts when the validation loss is lower by ``min_delta``."""
    if best is None:
        return True
    if cfg.early_stop_metric == "val_loss":
        return metrics["val_loss"] < best["val_loss"] - cfg.min_delta
    if metrics["val_macro_f1"] > best["val_macro_f1"] + cfg.min_delta:
        return True
    return (metrics["val_macro_f1"] >= best["val_macro_f1"] - cfg.min_delta
            and metrics["val_loss"] < best["val_loss"] - cfg.min_delta)


def _fit_motion_statistics(seqs: Sequence[PoseSequence], cfg: TrainConfig) -> dict[str, Any]:
    """The checkpoint's ``motion_statistics``: z-scoring fitted on the takes in the training view ({} when off
    or given no takes)."""
    if cfg.motion_statistics_weight <= 0 or not seqs:
        return {}
    stats = []
    for seq in seqs:
        try:
            stats.append(preprocess_sequence(training_view(seq, cfg.view), cfg.preprocess, with_statistics=True)
                         .statistics)
        except PoseDataError:   # a take the training skipped
            continue
    return MotionStatisticsScaler.fit(np.stack(stats), cfg.motion_statistics_weight).to_dict()


def initial_model(cfg: TrainConfig, num_classes: int) -> StyleModel:
    """The model ``fit`` starts from: ``cfg.model`` for the view's input dims, initialised under ``cfg.seed``."""
    torch.manual_seed(cfg.seed)
    input_dims = 2 if cfg.view == "2d" else 3
    return build_model(cfg.model, config_from_dict(cfg.model, {**cfg.model_config, "in_dims": input_dims,
                                                               "num_classes": num_classes}))


def _checkpoint_meta(cfg: TrainConfig, model: StyleModel, labels: Sequence[str], training: dict[str, Any],
                     statistics_seqs: Sequence[PoseSequence]) -> CheckpointMeta:
    """The checkpoint meta of a model built by ``initial_model`` (``training``: the summary to record)."""
    return CheckpointMeta(model_name=cfg.model, model_config=config_to_dict(model.config),
                          preprocess_config=asdict(cfg.preprocess), labels=tuple(labels),
                          input_dims=model.config.in_dims, skeleton=CANONICAL_SKELETON, training=training,
                          motion_statistics=_fit_motion_statistics(statistics_seqs, cfg))


def untrained(cfg: TrainConfig, labels: Sequence[str], statistics_seqs: Sequence[PoseSequence] = (),
              note: str = "untrained") -> TrainResult:
    """``fit``'s starting point as a result: ``cfg.model`` freshly initialised, with the checkpoint meta ``fit``
    would write (motion statistics fitted on ``statistics_seqs``, none without them). For measuring cost,
    which does not depend on the weights' values."""
    model = initial_model(cfg, len(labels)).eval()
    meta = _checkpoint_meta(cfg, model, labels, {"note": note, "seed": cfg.seed}, statistics_seqs)
    return TrainResult(model=model, history=[], best_epoch=0, checkpoint=meta)


RESUME_FORMAT = 1
log = logging.getLogger(__name__)


def _run_fingerprint(cfg: TrainConfig, label_names: Sequence[str], train: _Prepared, val: _Prepared,
                     summary: dict[str, Any] | None) -> str:
    """What a resume state must have been written by: the config, the styles, the prepared data's shape
    and the caller's summary (dataset version, split)."""
    # bars, the device and the thread count change nothing trained (a run started on a GPU may end on a CPU)
    setting = {k: v for k, v in cfg.to_dict().items() if k not in ("progress", "device", "num_threads")}
    facts = {"config": setting, "labels": list(label_names), "summary": summary or {},
             "train_labels": train.labels.tolist(), "train_versions": [len(v) for v in train.versions],
             "val_labels": val.labels.tolist()}
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def _load_resume_state(path: Path, fingerprint: str) -> dict[str, Any] | None:
    """The training state saved at ``path`` by this same run, or None (no file, unreadable, another run)."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged or foreign file: start afresh, and say why
        log.warning("%s: not a training state this version can resume (%s); training from the start", path,
                    one_line(err)[:200])
        return None
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT or state.get("fingerprint") != fingerprint:
        log.warning("%s: saved by another run (config, styles or data differ); training from the start", path)
        return None
    return state


def fit(train_seqs: Sequence[PoseSequence], val_seqs: Sequence[PoseSequence], config: TrainConfig,
        labels: Sequence[str] | None = None, summary: dict[str, Any] | None = None,
        extra_terms: ExtraTerms | None = None, resume_file: str | Path | None = None) -> TrainResult:
    """Train ``config.model`` on labelled sequences; returns the best-epoch model and its checkpoint meta.

    ``labels``: the ordered style set (default: the sorted styles of ``train_seqs``).
    ``summary``: extra facts recorded in the checkpoint's training summary (dataset, split...).
    ``extra_terms``: ``(batch, output) -> {name: loss}`` added to every step's loss (distillation).
    ``resume_file``: where the training state is saved after every epoch and resumed from (module
    docstring); the caller removes it once the result is kept.
    """
    start = time.perf_counter()
    cfg = config
    if not train_seqs:
        raise PoseDataError("<train>", "no training sequences")
    unlabelled = [s.source or s.name for s in train_seqs if s.label is None]
    if unlabelled:
        raise PoseDataError(unlabelled[0], f"training needs labelled sequences ({len(unlabelled)} have no style)")
    label_names = list(labels) if labels is not None else sorted({s.label for s in train_seqs})
    if len(label_names) < 2:
        raise PoseDataError("<train>", f"training needs at least 2 styles, got {label_names}")
    label_index = {name: i for i, name in enumerate(label_names)}

    with torch_threads(cfg.num_threads or None):
        device = resolve_device(cfg.device)
        train = _prepare(train_seqs, cfg, label_index, augment=True, desc="prepare train")
        val = _prepare(val_seqs, cfg, label_index, augment=False, desc="prepare val")
        if len(train.versions) == 0:
            raise PoseDataError("<train>", "no training sequence survived preprocessing: " +
                                ("; ".join(train.skipped[:3]) or "none given"))
        prep_seconds = time.perf_counter() - start

        order_rng = np.random.default_rng(cfg.seed)
        model = initial_model(cfg, len(label_names)).to(device)
        loss_fn = StyleLoss(cfg.loss)
        optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        steps_per_epoch = math.ceil(len(train.versions) / cfg.batch_size)
        total_steps = steps_per_epoch * cfg.epochs
        warmup_steps = int(round(cfg.warmup_epochs * steps_per_epoch))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda s: lr_factor(s, total_steps, warmup_steps, cfg.min_lr_ratio))

        max_m = cfg.preprocess.max_segments
        val_items = sorted(range(len(val.versions)), key=lambda i: val.versions[i][0].num_segments)
        val_batches = [collate_segments([val.versions[i][0] for i in chunk], val.labels[chunk].tolist(),
                                        max_m).to(device)
                       for chunk in (np.asarray(val_items[i:i + 64]) for i in range(0, len(val_items), 64))]

        history: list[dict[str, Any]] = []
        best: dict[str, float] | None = None
        best_state: dict[str, torch.Tensor] | None = None
        best_epoch, stale, finished = 0, 0, False
        state_path = None if resume_file is None else Path(resume_file)
        fingerprint = "" if state_path is None else _run_fingerprint(cfg, label_names, train, val, summary)
        saved = None if state_path is None else _load_resume_state(state_path, fingerprint)
        if saved is not None:
            model.load_state_dict(saved["model"])
            optimiser.load_state_dict(saved["optimiser"])
            scheduler.load_state_dict(saved["scheduler"])
            history, best, best_state = list(saved["history"]), saved["best"], saved["best_state"]
            best_epoch, stale, finished = saved["best_epoch"], saved["stale"], saved["finished"]
            order_rng.bit_generator.state = saved["order_rng"]
            torch.set_rng_state(saved["torch_rng"])
        resumed_after = len(history)
        bar = tqdm(range(resumed_after + 1, 1 if finished else cfg.epochs + 1), desc=f"train {cfg.model}",
                   unit="epoch", initial=resumed_after, total=cfg.epochs, disable=not cfg.progress,
                   dynamic_ncols=True)
        for epoch in bar:
            epoch_start = time.perf_counter()
            model.train()
            picks = [int(order_rng.integers(len(v))) for v in train.versions]
            sums: Counter[str] = Counter()
            correct, seen = 0, 0
            for idx in _batches(len(train.versions), cfg.batch_size, order_rng):
                items = [crop_windows(train.versions[i][picks[i]], cfg.train_windows, order_rng) for i in idx]
                batch = collate_segments(items, train.labels[idx].tolist(), max_m).to(device)
                total, parts, logits = forward_loss(model, loss_fn, batch, extra_terms)
                optimiser.zero_grad(set_to_none=True)
                total.backward()
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimiser.step()
                scheduler.step()
                n = len(idx)
                sums["loss"] += float(total.detach()) * n
                for k, v in parts.items():
                    sums[k] += v * n
                correct += int((logits.argmax(dim=1) == batch.labels).sum())
                seen += n
            record: dict[str, Any] = {"epoch": epoch, "lr": optimiser.param_groups[0]["lr"],
                                      "train_loss": sums["loss"] / seen, "train_accuracy": correct / seen,
                                      **{f"train_{k}": v / seen for k, v in sums.items() if k != "loss"}}
            validated = bool(val_batches) and epoch >= min(cfg.validate_from, cfg.epochs)
            if validated:
                record.update(_validate(model, loss_fn, val_batches, extra_terms))
            record["seconds"] = time.perf_counter() - epoch_start
            history.append(record)
            if not val_batches or (validated and is_improvement(record, best, cfg)):
                best = {k: record[k] for k in ("val_loss", "val_macro_f1", "val_accuracy") if k in record}
                best_epoch, stale = epoch, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            elif validated:
                stale += 1
            bar.set_postfix(loss=f"{record['train_loss']:.3f}", acc=f"{record['train_accuracy']:.2f}",
                            val_f1=f"{record.get('val_macro_f1', float('nan')):.3f}", best=best_epoch)
            finished = bool(val_batches and stale >= cfg.patience and epoch >= cfg.min_epochs) or epoch == cfg.epochs
            if state_path is not None:
                buffer = io.BytesIO()
                torch.save({"format": RESUME_FORMAT, "fingerprint": fingerprint, "model": model.state_dict(),
                            "optimiser": optimiser.state_dict(), "scheduler": scheduler.state_dict(),
                            "history": history, "best": best, "best_state": best_state, "best_epoch": best_epoch,
                            "stale": stale, "finished": finished, "order_rng": order_rng.bit_generator.state,
                            "torch_rng": torch.get_rng_state()}, buffer)
                atomic_write_bytes(state_path, buffer.getvalue())
            if finished:
                break
        bar.close()
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()

    seconds = time.perf_counter() - start
    n_versions = sum(len(v) for v in train.versions)
    training_summary = {
        "seed": cfg.seed, "epochs_run": len(history), "best_epoch": best_epoch,
        **({"resumed_after_epoch": resumed_after} if resumed_after else {}),
        "best_val": best or {}, "train_seconds": round(seconds, 2), "prepare_seconds": round(prep_seconds, 2),
        "device": str(device), "n_train": len(train.versions), "n_val": len(val.versions),
        "n_train_versions": n_versions, "skipped": len(train.skipped) + len(val.skipped),
        "train_label_counts": dict(sorted(Counter(label_names[i] for i in train.labels).items())),
        "view": cfg.view, "config": cfg.to_dict(), **(summary or {}),
    }
    meta = _checkpoint_meta(cfg, model, label_names, training_summary, [*train_seqs, *val_seqs])
    if cfg.progress:
        last = history[-1]
        tqdm.write(f"trained {cfg.model}: {len(history)} epochs in {seconds:.1f} s (prepare {prep_seconds:.1f} s), "
                   f"best epoch {best_epoch}, train acc {last['train_accuracy']:.3f}"
                   + (f", val macro-F1 {best['val_macro_f1']:.3f}" if best and "val_macro_f1" in best else ""))
    return TrainResult(model=model.to("cpu"), history=history, best_epoch=best_epoch, checkpoint=meta,
                       skipped=train.skipped + val.skipped)
