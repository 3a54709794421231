"""The model registry: names, building from dicts, config round trips and clear errors."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from encoder.models import (
    MODEL_REGISTRY,
    ModelConfig,
    PoseStyleNetConfig,
    StyleModel,
    build_model,
    config_from_dict,
    config_to_dict,
    model_names,
    register_model,
)
from tests.encoder.models.models_support import TINY_CONFIGS

EXPECTED_MODELS = {"posestyle_net", "st_mlp", "pose_transformer", "gait_relationnet", "stgcn", "temporal_cnn"}


def test_all_models_are_registered():
    assert set(model_names()) == EXPECTED_MODELS
    assert model_names() == sorted(model_names())
    assert set(TINY_CONFIGS) == EXPECTED_MODELS


@pytest.mark.parametrize("name", sorted(EXPECTED_MODELS))
def test_build_from_dict_dataclass_and_defaults(name):
    spec = MODEL_REGISTRY[name]
    from_dict = build_model(name, TINY_CONFIGS[name])
    assert isinstance(from_dict, StyleModel) and isinstance(from_dict, spec.model_cls)
    assert from_dict.registry_name == name
    assert isinstance(from_dict.config, spec.config_cls)
    assert from_dict.config == config_from_dict(name, TINY_CONFIGS[name])
    from_cfg = build_model(name, from_dict.config)
    assert from_cfg.config == from_dict.config
    assert build_model(name).config == spec.config_cls()
    assert dataclasses.is_dataclass(spec.config_cls) and issubclass(spec.config_cls, ModelConfig)
    with pytest.raises(dataclasses.FrozenInstanceError):
        from_dict.config.embedding_dim = 3


@pytest.mark.parametrize("name", sorted(EXPECTED_MODELS))
def test_config_dict_round_trip_through_json(name):
    config = config_from_dict(name, {**TINY_CONFIGS[name], "in_dims": 3, "num_classes": 7})
    as_json = json.loads(json.dumps(config_to_dict(config)))
    restored = config_from_dict(name, as_json)
    assert restored == config
    # tuples survive the JSON lists
    for field in dataclasses.fields(config):
        assert type(getattr(restored, field.name)) is type(getattr(config, field.name))


def test_unknown_config_key_is_named():
    with pytest.raises(ValueError, match=r"unknown config keys \['hidden_size'\]"):
        config_from_dict("posestyle_net", {"hidden_size": 3})
    with pytest.raises(ValueError, match="hidden_size"):
        build_model("st_mlp", {"hidden_size": 3})


def test_unknown_model_lists_known_names():
    with pytest.raises(ValueError, match="unknown model 'resnet'.*posestyle_net"):
        build_model("resnet")


def test_wrong_config_type_and_bad_values_are_rejected():
    with pytest.raises(TypeError, match="PoseTransformerConfig"):
        build_model("pose_transformer", PoseStyleNetConfig())
    with pytest.raises(ValueError, match="in_dims"):
        build_model("posestyle_net", {"in_dims": 4})
    with pytest.raises(ValueError, match="17-joint"):
        build_model("posestyle_net", {"num_joints": 18})
    with pytest.raises(ValueError, match="one entry"):
        build_model("posestyle_net", {"branch_channels": (8, 8)})
    with pytest.raises(ValueError, match="multiple of num_heads"):
        build_model("pose_transformer", {"d_model": 10, "num_heads": 4})


def test_register_model_rejects_a_second_class_under_a_taken_name():
    @dataclasses.dataclass(frozen=True)
    class OtherConfig(ModelConfig):
        pass

    with pytest.raises(ValueError, match="already registered"):
        @register_model("posestyle_net", OtherConfig)
        class Impostor(StyleModel):
            pass
    assert MODEL_REGISTRY["posestyle_net"].config_cls is PoseStyleNetConfig


def test_register_and_build_a_new_model():
    @dataclasses.dataclass(frozen=True)
    class ConstantConfig(ModelConfig):
        scale: float = 2.0

    @register_model("_test_constant", ConstantConfig)
    class Constant(StyleModel):
        def __init__(self, config: ConstantConfig) -> None:
            super().__init__(config)
            self.weight = torch.nn.Parameter(torch.ones(config.embedding_dim))

    try:
        model = build_model("_test_constant", {"scale": 3.0, "embedding_dim": 4})
        assert model.config.scale == 3.0 and model.weight.shape == (4,)
        assert model.registry_name == "_test_constant"
    finally:
        MODEL_REGISTRY.pop("_test_constant")
