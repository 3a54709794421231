"""Style models: registry, PoseStyle-Net, baselines and the training losses."""
from encoder.models.base import ModelConfig, StyleModel, StyleOutput
from encoder.models.registry import (
    MODEL_REGISTRY,
    ModelSpec,
    build_model,
    config_from_dict,
    config_to_dict,
    model_names,
    register_model,
)
from encoder.models.posestyle_net import PoseStyleNet, PoseStyleNetConfig
