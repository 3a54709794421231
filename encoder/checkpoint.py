"""Encoder checkpoints: one ``.safetensors`` file holding the weights and a JSON description.

The safetensors ``__metadata__`` (string -> string) holds, each value JSON-encoded:
``format`` ("posestyle-encoder"), ``format_version``, ``model_name``, ``model_config``,
``preprocess_config``, ``skeleton``, ``labels`` (ordered: logit k is ``labels[k]``),
``input_dims`` (2 or 3), ``training`` (a summary of the run) and ``encoder_version``.

``encoder_version`` is derived from content: the first 12 hex digits of a SHA-256 over the
weights (names, dtypes, shapes, bytes) and the description that changes what the encoder
computes (model name and config, preprocessing, skeleton, input dims, labels). The training
summary is not part of it. Loading recomputes it, so an edited file is refused.

Nothing is ever unpickled: ``.safetensors`` is read with safetensors; a ``.pt`` state_dict
is accepted only through ``torch.load(..., weights_only=True)``; anything else is refused.
"""
from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_save

from encoder.data.atomic import atomic_write_bytes
from encoder.data.errors import PoseDataError, one_line
from encoder.data.motion_statistics import MotionStatisticsScaler
from encoder.data.skeleton import CANONICAL_SKELETON

FORMAT_NAME = "posestyle-encoder"
FORMAT_VERSION = 1
VERSION_DIGITS = 12
SAFETENSORS_SUFFIX = ".safetensors"
TORCH_SUFFIXES = (".pt", ".pth")


class CheckpointError(PoseDataError):
    """A checkpoint that cannot or must not be loaded; ``str(err)`` is ``<path>: <problem>``."""


@dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint says about its encoder (``encoder_version`` is filled in on save)."""

    model_name: str
    model_config: dict[str, Any]
    preprocess_config: dict[str, Any]
    labels: tuple[str, ...]
    input_dims: int
    skeleton: str = CANONICAL_SKELETON
    training: dict[str, Any] = field(default_factory=dict)
    encoder_version: str = ""
    motion_statistics: dict[str, Any] = field(default_factory=dict)   # MotionStatisticsScaler.to_dict; {} = none

    def identity(self) -> dict[str, Any]:
        """The fields that, with the weights, define what the encoder computes (``motion_statistics``
        only when set, so the versions of checkpoints written before it existed stay as they were)."""
        values = {"model_name": self.model_name, "model_config": self.model_config,
                  "preprocess_config": self.preprocess_config, "skeleton": self.skeleton,
                  "input_dims": int(self.input_dims), "labels": list(self.labels)}
        if self.motion_statistics:
            values["motion_statistics"] = self.motion_statistics
        return values

    def to_metadata(self) -> dict[str, str]:
        """The safetensors ``__metadata__`` (every value a JSON string)."""
        values: dict[str, Any] = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
                                  **self.identity(), "training": self.training,
                                  "encoder_version": self.encoder_version}
        return {k: json.dumps(v, sort_keys=True, default=str) for k, v in values.items()}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str] | None, source: str) -> "CheckpointMeta":
        """Parse ``__metadata__``; missing or malformed fields raise ``CheckpointError``."""
        if not metadata:
            raise CheckpointError(source, "safetensors file has no PoseStyle metadata (not an encoder checkpoint)")
        try:
            values = {k: json.loads(v) for k, v in metadata.items()}
        except (TypeError, ValueError) as err:
            raise CheckpointError(source, f"checkpoint metadata is not valid JSON: {err}") from None
        return cls.from_dict(values, source)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str) -> "CheckpointMeta":
        if values.get("format", FORMAT_NAME) != FORMAT_NAME:
            raise CheckpointError(source, f"format {values.get('format')!r} is not {FORMAT_NAME!r}")
        version = int(values.get("format_version", FORMAT_VERSION))
        if version > FORMAT_VERSION:
            raise CheckpointError(source, f"checkpoint format_version {version} is newer than this "
                                  f"software's {FORMAT_VERSION}; upgrade posestyle")
        missing = [k for k in ("model_name", "model_config", "preprocess_config", "labels", "input_dims")
                   if k not in values]
        if missing:
            raise CheckpointError(source, f"checkpoint metadata lacks {', '.join(missing)}")
        statistics = dict(values.get("motion_statistics") or {})
        if statistics:
            try:
                MotionStatisticsScaler.from_dict(statistics)
            except (KeyError, TypeError, ValueError) as err:
                raise CheckpointError(source, f"malformed motion statistics in the checkpoint: {err}") from None
        try:
            return cls(model_name=str(values["model_name"]), model_config=dict(values["model_config"]),
                       preprocess_config=dict(values["preprocess_config"]),
                       labels=tuple(str(x) for x in values["labels"]), input_dims=int(values["input_dims"]),
                       skeleton=str(values.get("skeleton", CANONICAL_SKELETON)),
                       training=dict(values.get("training") or {}),
                       encoder_version=str(values.get("encoder_version", "")),
                       motion_statistics=statistics)
        except (TypeError, ValueError) as err:
            raise CheckpointError(source, f"malformed checkpoint metadata: {err}") from None


def _plain_tensors(model_or_state: torch.nn.Module | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU, contiguous, unshared copies of the state_dict tensors (what safetensors can store)."""
    state = model_or_state.state_dict() if isinstance(model_or_state, torch.nn.Module) else model_or_state
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def compute_encoder_version(tensors: dict[str, torch.Tensor], meta: CheckpointMeta) -> str:
    """SHA-256 over the weights and the identity fields of ``meta`` (first 12 hex digits)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode("utf-8"))
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    h.update(json.dumps(meta.identity(), sort_keys=True, default=str).encode("utf-8"))
    return h.hexdigest()[:VERSION_DIGITS]


def save_checkpoint(path: str | Path, model: torch.nn.Module | dict[str, torch.Tensor],
                    meta: CheckpointMeta) -> CheckpointMeta:
    """Write weights + metadata to ``path`` (.safetensors) atomically; returns meta with its version."""
    path = Path(path)
    if path.suffix != SAFETENSORS_SUFFIX:
        raise CheckpointError(path, f"checkpoints are written as {SAFETENSORS_SUFFIX} files")
    tensors = _plain_tensors(model)
    meta = replace(meta, encoder_version=compute_encoder_version(tensors, meta))
    atomic_write_bytes(path, safetensors_save(tensors, metadata=meta.to_metadata()))
    return meta


def read_checkpoint(path: str | Path, meta: CheckpointMeta | None = None
                    ) -> tuple[dict[str, torch.Tensor], CheckpointMeta]:
    """Weights and metadata of a checkpoint, without building the model.

    ``.safetensors``: metadata from the file (``meta`` ignored). ``.pt``/``.pth``: a plain
    state_dict read with ``weights_only=True``, or ``{"state_dict": ..., "meta": {...}}``; a bare
    state_dict needs ``meta`` from the caller. Any other type, or a pickle holding Python
    objects, is refused with ``CheckpointError``.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise CheckpointError(source, "checkpoint file not found")
    suffix = path.suffix.lower()
    if suffix == SAFETENSORS_SUFFIX:
        try:
            with safe_open(str(path), framework="pt", device="cpu") as fh:
                file_meta = fh.metadata()
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        except Exception as err:  # safetensors raises its own error types for any malformed header
            raise CheckpointError(source, f"not a valid safetensors file ({type(err).__name__}: "
                                  f"{str(err).splitlines()[0] if str(err) else 'unreadable'})") from None
        found = CheckpointMeta.from_metadata(file_meta, source)
        if found.encoder_version and compute_encoder_version(tensors, found) != found.encoder_version:
            raise CheckpointError(source, f"content does not match its encoder_version {found.encoder_version} "
                                  "(file edited or corrupted)")
        return tensors, found
    if suffix in TORCH_SUFFIXES:
        return _read_torch_state_dict(path, meta)
    raise CheckpointError(source, f"unsupported checkpoint type {suffix or '(none)'!r}; use {SAFETENSORS_SUFFIX} "
                          "(or a weights-only .pt state_dict); pickled files are never loaded")


def _read_torch_state_dict(path: Path, meta: CheckpointMeta | None
                           ) -> tuple[dict[str, torch.Tensor], CheckpointMeta]:
    source = str(path)
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "forbidden object"
        raise CheckpointError(source, "refused: the file holds pickled Python objects, not only tensors "
                              f"({first[:160]}); only safetensors or weights-only state_dicts are loaded") from None
    except Exception as err:  # torch raises RuntimeError/EOFError/etc. for damaged archives
        raise CheckpointError(source, f"unreadable torch file ({type(err).__name__}: {str(err)[:160]})") from None
    if isinstance(obj, dict) and "state_dict" in obj:
        state, embedded = obj["state_dict"], obj.get("meta")
        if embedded is not None:
            if isinstance(embedded, str):
                try:
                    embedded = json.loads(embedded)
                except ValueError:
                    raise CheckpointError(source, "meta is not valid JSON") from None
            if not isinstance(embedded, dict):
                raise CheckpointError(source, "meta must be a mapping")
            meta = CheckpointMeta.from_dict(embedded, source)
    else:
        state = obj
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(source, "not a state_dict (a mapping of parameter names to tensors)")
    if meta is None:
        raise CheckpointError(source, "a bare .pt state_dict does not say which model it is; pass its "
                              f"metadata or convert it to {SAFETENSORS_SUFFIX}")
    tensors = _plain_tensors(state)
    return tensors, replace(meta, encoder_version=compute_encoder_version(tensors, meta))


def build_from_meta(meta: CheckpointMeta, source: str = "<checkpoint>") -> torch.nn.Module:
    """Build the (untrained) model a checkpoint describes."""
    from encoder.models import build_model, config_from_dict

    try:
        config = config_from_dict(meta.model_name, meta.model_config)
        return build_model(meta.model_name, config)
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(source, f"cannot build model {meta.model_name!r}: {err}") from None


def load_checkpoint(path: str | Path, meta: CheckpointMeta | None = None,
                    device: str | torch.device = "cpu") -> tuple[torch.nn.Module, CheckpointMeta]:
    """The model (weights loaded, eval mode) and metadata of a checkpoint (see ``read_checkpoint``)."""
    tensors, found = read_checkpoint(path, meta)
    model = build_from_meta(found, str(path))
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise CheckpointError(path, f"weights do not fit model {found.model_name!r}: "
                              f"{one_line(err)[:300]}") from None
    model.to(device)
    model.eval()
    return model, found
