"""One registry of style models by name, each built from a small typed frozen config.

``build_model("posestyle_net", {"in_dims": 3, "num_classes": 7})`` builds a model; a
checkpoint stores ``(model.registry_name, config_to_dict(model.config))`` and rebuilds it with
``build_model(name, config_from_dict(name, d))``.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Mapping, TypeVar

from encoder.models.base import ModelConfig, StyleModel


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its class and the config dataclass it is built from."""

    name: str
    model_cls: type[StyleModel]
    config_cls: type[ModelConfig]


MODEL_REGISTRY: dict[str, ModelSpec] = {}

ModelT = TypeVar("ModelT", bound=type[StyleModel])


def register_model(name: str, config_cls: type[ModelConfig]) -> Callable[[ModelT], ModelT]:
    """Class decorator: register a ``StyleModel`` subclass under ``name`` with its config class."""
    if not (dataclasses.is_dataclass(config_cls) and issubclass(config_cls, ModelConfig)):
        raise TypeError(f"register_model({name!r}): config_cls must be a ModelConfig dataclass")

    def decorate(model_cls: ModelT) -> ModelT:
        if name in MODEL_REGISTRY and MODEL_REGISTRY[name].model_cls is not model_cls:
            raise ValueError(f"model name {name!r} is already registered "
                             f"to {MODEL_REGISTRY[name].model_cls.__name__}")
        model_cls.registry_name = name
        MODEL_REGISTRY[name] = ModelSpec(name, model_cls, config_cls)
        return model_cls

    return decorate


def model_names() -> list[str]:
    """Registered model names, sorted."""
    return sorted(MODEL_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The registered spec for ``name``; ``ValueError`` listing the known names otherwise."""
    try:
        return MODEL_REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(model_names())}") from None


def config_to_dict(config: ModelConfig) -> dict[str, Any]:
    """A config as a plain JSON-friendly dict (tuples become lists)."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config_to_dict: expected a config dataclass, got {type(config).__name__}")
    return {f.name: _plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def config_from_dict(name: str, values: Mapping[str, Any]) -> ModelConfig:
    """Build model ``name``'s config from a dict; missing keys take their defaults.

    Unknown keys raise ``ValueError`` naming them and the accepted ones (a checkpoint from a
    different model or version must not be silently reinterpreted).
    """
    spec = get_spec(name)
    fields = {f.name: f for f in dataclasses.fields(spec.config_cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"model {name!r}: unknown config keys {unknown}; "
                         f"accepted keys: {sorted(fields)}")
    hints = typing.get_type_hints(spec.config_cls)
    kwargs = {k: _coerce(v, hints.get(k)) for k, v in values.items()}
    try:
        return spec.config_cls(**kwargs)
    except TypeError as err:
        raise ValueError(f"model {name!r}: bad config: {err}") from None


def build_model(name: str, config: ModelConfig | Mapping[str, Any] | None = None) -> StyleModel:
    """Build registered model ``name`` from a config dataclass, a dict, or defaults (None)."""
    spec = get_spec(name)
    if config is None:
        config = spec.config_cls()
    elif isinstance(config, Mapping):
        config = config_from_dict(name, config)
    elif not isinstance(config, spec.config_cls):
        raise TypeError(f"model {name!r} needs a {spec.config_cls.__name__} or a dict, "
                        f"got {type(config).__name__}")
    return spec.model_cls(config)


def _plain(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _coerce(value: Any, hint: Any) -> Any:
    """Lists from JSON back to the tuples the frozen configs declare."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return value
    if origin is tuple and isinstance(value, list):
        args = typing.get_args(hint)
        inner = args[0] if args else None
        return tuple(_coerce(v, inner) for v in value)
    return value
