"""Training: ``TrainConfig`` (YAML/TOML + overrides), augmentations, ``fit`` and its starting point ``untrained``."""
from encoder.training.augment import (
    augment_once,
    change_tempo,
    make_variants,
    mirror_sequence,
    training_view,
    turn_along_arc,
)
from encoder.training.config import (
    DEFAULT_MODEL,
    AugmentConfig,
    TrainConfig,
    load_train_config,
    parse_override,
)
from encoder.training.trainer import (
    PREPARED_CACHE,
    PreparedCache,
    TrainResult,
    crop_windows,
    fit,
    forward_loss,
    initial_model,
    is_improvement,
    lr_factor,
    resolve_device,
    untrained,
)

__all__ = [
    "AugmentConfig", "DEFAULT_MODEL", "PREPARED_CACHE", "PreparedCache", "TrainConfig", "TrainResult", "augment_once",
    "change_tempo", "crop_windows", "fit", "forward_loss", "initial_model", "is_improvement", "load_train_config",
    "lr_factor", "make_variants", "mirror_sequence", "parse_override", "resolve_device", "training_view",
    "turn_along_arc", "untrained",
]
