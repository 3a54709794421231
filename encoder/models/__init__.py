"""Style models: the registry, PoseStyle-Net, the baselines and the training losses.

Importing this package registers every model: ``build_model(name, config)`` for any of
``model_names()``.
"""
from encoder.models.base import ModelConfig, StyleModel, StyleOutput
from encoder.models.gait_relationnet import GaitRelationNet, GaitRelationNetConfig
from encoder.models.gaitheat import GaitHeat, GaitHeatConfig
from encoder.models.gaitmm import GaitMM, GaitMMConfig
from encoder.models.hstl import HSTL, HSTLConfig
from encoder.models.layers import REGION_NAMES
from encoder.models.losses import StyleLoss, StyleLossConfig
from encoder.models.pose_transformer import PoseTransformer, PoseTransformerConfig
from encoder.models.posestyle_net import PoseStyleNet, PoseStyleNetConfig
from encoder.models.registry import (
    MODEL_REGISTRY,
    ModelSpec,
    build_model,
    config_from_dict,
    config_to_dict,
    model_names,
    register_model,
)
from encoder.models.st_mlp import STMLP, STMLPConfig
from encoder.models.stgcn import STGCN, STGCNConfig
from encoder.models.temporal_cnn import TemporalCNN, TemporalCNNConfig

__all__ = [
    "MODEL_REGISTRY", "REGION_NAMES", "GaitHeat", "GaitHeatConfig", "GaitMM", "GaitMMConfig",
    "GaitRelationNet", "GaitRelationNetConfig", "HSTL", "HSTLConfig", "ModelConfig",
    "ModelSpec", "PoseStyleNet", "PoseStyleNetConfig", "PoseTransformer", "PoseTransformerConfig",
    "STGCN", "STGCNConfig", "STMLP", "STMLPConfig", "StyleLoss", "StyleLossConfig", "StyleModel",
    "StyleOutput", "TemporalCNN", "TemporalCNNConfig", "build_model", "config_from_dict",
    "config_to_dict", "model_names", "register_model",
]
