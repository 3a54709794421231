"""``TrainConfig``: every setting of one training run, from a YAML/TOML file plus CLI overrides.

A config file is a mapping with the same nesting as the dataclasses below, e.g.::

    model: posestyle-net
    epochs: 60
    augment: {variants: 8, mirror: true, tempo_range: [0.8, 1.2]}
    loss: {mu1: 0.1, mu2: 0.5, delta: 1.2, mu3: 0.001}
    preprocess: {window_length: 32, max_segments: 16}

Unknown keys are refused with the list of valid ones, so a typo never passes silently.
Overrides use dotted keys (``augment.mirror=false``); values are parsed as YAML scalars.
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml

from encoder.data.errors import ConfigError
from encoder.data.motion_statistics import DEFAULT_WEIGHT as DEFAULT_STATISTICS_WEIGHT
from encoder.data.preprocess import PreprocessConfig
from encoder.models.losses import StyleLossConfig

EarlyStopMetric = Literal["val_macro_f1", "val_loss"]
View = Literal["2d", "3d"]


def check_device(device: str) -> None:
    """Raise ValueError unless ``device`` is ``auto``, ``cpu`` or ``cuda[:n]`` (what training accepts)."""
    if not (device in ("auto", "cpu") or device.startswith("cuda")):
        raise ValueError(f"device must be auto, cpu or cuda[:n], got {device!r}")


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentations; every one keeps the style label and can be switched off.

    Augmented copies are made once, before training: ``variants`` (K) copies per training
    sequence, each drawn from a generator seeded by ``seed`` and the sequence's name (so they
    do not change with the training seed), then preprocessed and cached with the originals.
    Each epoch every sequence contributes one of its K + 1 versions, picked at random.

    - ``random_view``: a 3D source trained in the ``2d`` view gets a random virtual camera
      instead of its fixed benchmark camera: any yaw, pitch uniform in ``pitch_range`` (runway
      and show cameras sit above the walkers, so the range reaches well past the benchmark's
      15 degrees), distance x focal scaled together by a factor log-uniform in
      ``distance_scale_range`` (lenses from wide to long).
    - ``tempo``: playback speed changed by a factor drawn from ``tempo_range``.
    - ``mirror``: left/right mirror (joint swap and x reflected about the body centre), with
      probability ``mirror_prob``.
    - ``jitter``: Gaussian keypoint noise, sigma = a fraction of the bounding-box height drawn
      per copy uniformly from [``jitter_frac``, ``jitter_max_frac``].
    - ``joint_dropout``: each joint-frame dropped with a probability drawn per copy uniformly
      from [``dropout_rate``, ``dropout_max_rate``] (missing and low-confidence joints).
    - ``crop``: with probability ``crop_prob`` the copy is a random clip of ``crop_min_seconds``
      up to the whole take (short queries).
    - ``turn``: a 3D source walks along an arc: with probability ``turn_prob`` it is turned about
      the vertical axis through its first mid-hip by an angle growing linearly to a total drawn
      uniformly from +-``turn_max_degrees`` (straight walks seen as turning ones).
    """

    enabled: bool = True
    variants: int = 8
    seed: int = 0
    random_view: bool = True
    pitch_range: tuple[float, float] = (-10.0, 50.0)
    distance_scale_range: tuple[float, float] = (1.0, 3.0)
    tempo: bool = True
    tempo_range: tuple[float, float] = (0.8, 1.25)
    mirror: bool = True
    mirror_prob: float = 0.5
    jitter: bool = True
    jitter_frac: float = 0.005
    jitter_max_frac: float = 0.04
    joint_dropout: bool = True
    dropout_rate: float = 0.0
    dropout_max_rate: float = 0.3
    crop: bool = True
    crop_prob: float = 0.2
    crop_min_seconds: float = 1.0
    turn: bool = False
    turn_prob: float = 0.5
    turn_max_degrees: float = 180.0

    def __post_init__(self) -> None:
        if self.variants < 0:
            raise ValueError(f"augment.variants must be >= 0, got {self.variants}")
        low, high = self.tempo_range
        if not 0.0 < low <= high:
            raise ValueError(f"augment.tempo_range must satisfy 0 < low <= high, got {self.tempo_range}")
        for name in ("mirror_prob", "dropout_rate", "dropout_max_rate", "crop_prob", "turn_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"augment.{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 <= self.jitter_frac <= self.jitter_max_frac:
            raise ValueError("augment needs 0 <= jitter_frac <= jitter_max_frac, "
                             f"got {self.jitter_frac}, {self.jitter_max_frac}")
        if self.dropout_rate > self.dropout_max_rate:
            raise ValueError("augment needs dropout_rate <= dropout_max_rate, "
                             f"got {self.dropout_rate}, {self.dropout_max_rate}")
        if not -89.0 < self.pitch_range[0] <= self.pitch_range[1] < 89.0:
            raise ValueError(f"augment.pitch_range must be within (-89, 89), low <= high, got {self.pitch_range}")
        if not 0.0 < self.distance_scale_range[0] <= self.distance_scale_range[1]:
            raise ValueError("augment.distance_scale_range must satisfy 0 < low <= high, "
                             f"got {self.distance_scale_range}")
        if not 0.0 <= self.turn_max_degrees <= 360.0:
            raise ValueError(f"augment.turn_max_degrees must be in [0, 360], got {self.turn_max_degrees}")
        if not self.crop_min_seconds > 0:
            raise ValueError(f"augment.crop_min_seconds must be > 0, got {self.crop_min_seconds}")

    @property
    def active(self) -> bool:
        """True when augmented copies are made at all."""
        return self.enabled and self.variants > 0


# The encoder `posestyle train` builds when no model is named, and so the demo's and the product's.
# ST-GCN, not PoseStyle-Net: trained with the same recipe it is the better style encoder on every
# quality suite of docs/benchmarks/encoders.md (2d/random, cross-content, open set, 5 seeds) and
# within the robustness target (docs/benchmarks/robustness.md).
DEFAULT_MODEL = "stgcn"


@dataclass(frozen=True)
class TrainConfig:
    """One training run: model, data view, optimisation, early stopping, augmentation, loss.

    - ``loss``: the ``StyleLossConfig`` of eq. (13)/(14): ``mu1`` (same-class compactness),
      ``mu2`` and ``delta`` (different-class margin), ``mu3`` (stage smoothness), label
      smoothing and a switch per term (for ablations).

    - schedule: linear warm-up over ``warmup_epochs`` then cosine decay to ``min_lr_ratio`` x lr,
      stepped per batch.
    - early stopping: stop when ``early_stop_metric`` on the validation split has not improved
      by ``min_delta`` for ``patience`` epochs, but never before ``min_epochs``; the best epoch's
      weights are restored. By default ``min_epochs`` is the default schedule's length, so the cosine
      schedule runs to its end: validation macro-F1 saturates near 1.0 on this data, and a lucky
      epoch at a still-high learning rate can freeze the "best" weights early (ST-GCN seed 4 stopped
      at epoch 49 with its best at 37, silhouette 0.861; run to epoch 60 it gives 0.906, as the other
      seeds do). Set it lower to stop early, as when ``epochs`` is raised for a longer schedule.
    - ``validate_from``: the first epoch scored on the validation split (the last epoch always is);
      only scored epochs can be the best one or count towards ``patience``. Validating every epoch
      costs about a sixth of a short run, and under warm-up and a high learning rate the early epochs
      never win.
    - ``device``: ``auto`` (CUDA when present, else CPU), ``cpu`` or ``cuda[:n]``.
    - ``num_threads``: torch CPU threads during training (0: leave torch's setting).
    - ``view``: a 3D source is seen through the benchmark's virtual camera (``2d``) or as
      captured (``3d``); a 2D source is always ``2d``.
    - ``train_windows``: when > 0, each training step sees a random contiguous run of at most
      this many windows of each sequence (a temporal crop, redrawn every epoch; phases keep their
      place in the whole sequence); validation and inference always see every window. Cuts the
      cost of a step roughly in proportion on long sequences.
    - ``motion_statistics_weight``: when > 0 (the default), the checkpoint appends each take's
      hand-made motion statistics, z-scored on the training takes, at this weight to the model's
      embedding (``encoder.data.motion_statistics``): styles the model never saw rank far better
      (docs/benchmarks/encoders.md, open set). Training itself is unchanged. 0: the model's
      embedding only (half the width).
    """

    model: str = DEFAULT_MODEL
    model_config: dict[str, Any] = field(default_factory=dict)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    view: View = "2d"
    epochs: int = 60
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-2
    warmup_epochs: float = 2.0
    min_lr_ratio: float = 0.02
    grad_clip: float = 1.0
    train_windows: int = 0
    patience: int = 12
    min_epochs: int = 60
    early_stop_metric: EarlyStopMetric = "val_macro_f1"
    min_delta: float = 1e-4
    validate_from: int = 1
    seed: int = 0
    device: str = "auto"
    num_threads: int = 2
    progress: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: StyleLossConfig = field(default_factory=StyleLossConfig)
    motion_statistics_weight: float = DEFAULT_STATISTICS_WEIGHT

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ValueError("lr must be > 0 and weight_decay >= 0")
        if self.warmup_epochs < 0 or not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError("warmup_epochs must be >= 0 and min_lr_ratio in [0, 1]")
        if self.validate_from < 1:
            raise ValueError(f"validate_from must be >= 1, got {self.validate_from}")
        if self.patience < 1 or self.min_epochs < 0:
            raise ValueError(f"patience must be >= 1 and min_epochs >= 0, got {self.patience}, {self.min_epochs}")
        if self.early_stop_metric not in typing.get_args(EarlyStopMetric):
            raise ValueError(f"early_stop_metric must be one of {typing.get_args(EarlyStopMetric)}, "
                             f"got {self.early_stop_metric!r}")
        if self.view not in typing.get_args(View):
            raise ValueError(f"view must be one of {typing.get_args(View)}, got {self.view!r}")
        if self.train_windows < 0:
            raise ValueError(f"train_windows must be >= 0, got {self.train_windows}")
        if self.num_threads < 0:
            raise ValueError(f"num_threads must be >= 0, got {self.num_threads}")
        if not self.motion_statistics_weight >= 0:
            raise ValueError(f"motion_statistics_weight must be >= 0, got {self.motion_statistics_weight}")
        check_device(self.device)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-able values (tuples become lists)."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<config>") -> "TrainConfig":
        """Build from a (possibly partial) nested mapping; unknown keys raise ``ConfigError``."""
        return _build(cls, data, source, prefix="")

    def with_overrides(self, overrides: Mapping[str, Any], source: str = "<overrides>") -> "TrainConfig":
        """A copy with dotted keys replaced, e.g. ``{"epochs": 5, "augment.mirror": False}``."""
        data = self.to_dict()
        for dotted, value in overrides.items():
            node = data
            parts = dotted.split(".")
            for part in parts[:-1]:
                if not isinstance(node.get(part), dict):
                    raise ConfigError(source, f"unknown setting {dotted!r}")
                node = node[part]
            if parts[-1] not in node and not (len(parts) > 1 and parts[0] == "model_config"):
                raise ConfigError(source, f"unknown setting {dotted!r}; valid: {', '.join(sorted(node))}")
            node[parts[-1]] = value
        return TrainConfig.from_dict(data, source)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _yaml_float(text: str) -> float | str:
    """``4e-3`` as a float: YAML 1.1 reads exponents without a dot as strings. Other text stays text."""
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def _coerce(value: Any, hint: Any, where: str, source: str) -> Any:
    """Check/convert one value against its type hint (scalars, tuples, dicts, literals, dataclasses)."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(source, f"{where} must be a mapping, got {type(value).__name__}")
        return _build(hint, value, source, prefix=f"{where}.")
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise ConfigError(source, f"{where} must be one of {list(typing.get_args(hint))}, got {value!r}")
        return value
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(source, f"{where} must be a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, where, source) for v, a in zip(value, args))
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(source, f"{where} must be a mapping, got {type(value).__name__}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(source, f"{where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(source, f"{where} must be an integer, got {value!r}")
        return value
    if hint is float:
        number = _yaml_float(value) if isinstance(value, str) else value
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise ConfigError(source, f"{where} must be a number, got {value!r}")
        return float(number)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(source, f"{where} must be a string, got {value!r}")
        return value
    return value


def _build(cls: type, data: Mapping[str, Any], source: str, prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(source, f"{prefix.rstrip('.') or 'config'} must be a mapping")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ConfigError(source, f"unknown setting(s) {', '.join(prefix + str(k) for k in unknown)}; "
                            f"valid: {', '.join(prefix + n for n in names)}")
    kwargs = {k: _coerce(v, hints[k], prefix + k, source) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as err:
        raise ConfigError(source, str(err)) from None


def load_train_config(path: str | Path | None, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Read a ``.yaml``/``.yml``/``.toml`` config (None: defaults), then apply dotted overrides."""
    config = TrainConfig()
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(path, f"cannot read config: {err.strerror or err}") from None
        suffix = path.suffix.lower()
        try:
            if suffix in (".yaml", ".yml"):
                data = yaml.safe_load(text) or {}
            elif suffix == ".toml":
                data = tomllib.loads(text)
            else:
                raise ConfigError(path, f"config must be .yaml, .yml or .toml, got {suffix or '(none)'!r}")
        except (yaml.YAMLError, tomllib.TOMLDecodeError) as err:
            raise ConfigError(path, f"invalid {suffix[1:].upper()}: {err}") from None
        config = TrainConfig.from_dict(data, str(path))
    if overrides:
        config = config.with_overrides(overrides)
    return config


def parse_override(text: str) -> tuple[str, Any]:
    """``"augment.mirror=false"`` -> ``("augment.mirror", False)`` (value parsed as a YAML scalar)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError("--set", f"expected KEY=VALUE, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value
