"""Training: ``TrainConfig`` (YAML/TOML + overrides), augmentations and ``fit``."""
from encoder.training.augment import (
    augment_once,
    change_tempo,
    make_variants,
    mirror_sequence,
    training_view,
)
from encoder.training.config import (
    AugmentConfig,
    LossWeights,
    TrainConfig,
    load_train_config,
    parse_override,
)
from encoder.training.trainer import TrainResult, fit, lr_factor, resolve_device

__all__ = [
    "AugmentConfig", "LossWeights", "TrainConfig", "TrainResult", "augment_once", "change_tempo", "fit",
    "load_train_config", "lr_factor", "make_variants", "mirror_sequence", "parse_override", "resolve_device",
    "training_view",
]
