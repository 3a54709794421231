"""TrainConfig from YAML/TOML, dotted overrides, and refusal of bad settings."""
from __future__ import annotations

import pytest

from encoder.data.errors import ConfigError
from encoder.training import TrainConfig, load_train_config, parse_override


def test_yaml_config_and_overrides(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(
        "model: posestyle_net\n"
        "epochs: 7\n"
        "lr: 0.005\n"
        "model_config: {embedding_dim: 32}\n"
        "augment: {variants: 2, mirror: false, tempo_range: [0.9, 1.1]}\n"
        "loss: {mu1: 0.2}\n"
        "preprocess: {window_length: 24, window_stride: 12}\n")
    cfg = load_train_config(path, dict([parse_override("augment.mirror=true"), parse_override("epochs=3")]))
    assert cfg.epochs == 3
    assert cfg.lr == pytest.approx(0.005)
    assert cfg.model_config == {"embedding_dim": 32}
    assert cfg.augment.variants == 2 and cfg.augment.mirror is True
    assert cfg.augment.tempo_range == (0.9, 1.1)
    assert cfg.loss.mu1 == pytest.approx(0.2) and cfg.loss.mu2 == TrainConfig().loss.mu2
    assert cfg.preprocess.window_length == 24 and cfg.preprocess.window_stride == 12


def test_toml_config(tmp_path):
    path = tmp_path / "cfg.toml"
    path.write_text('model = "posestyle_net"\nseed = 4\nearly_stop_metric = "val_loss"\n\n'
                    "[augment]\njitter = false\n\n[loss]\ndelta = 0.5\n")
    cfg = load_train_config(path)
    assert cfg.seed == 4 and cfg.early_stop_metric == "val_loss"
    assert cfg.augment.jitter is False and cfg.loss.delta == pytest.approx(0.5)


def test_round_trip_through_dict():
    cfg = TrainConfig().with_overrides({"batch_size": 16, "augment.dropout_rate": 0.1})
    again = TrainConfig.from_dict(cfg.to_dict())
    assert again == cfg


@pytest.mark.parametrize("text, fragment", [
    ("epochz: 3\n", "unknown setting"),
    ("augment: {mirrorr: true}\n", "augment.mirrorr"),
    ("epochs: many\n", "epochs must be an integer"),
    ("early_stop_metric: accuracy\n", "early_stop_metric"),
    ("augment: {tempo_range: [1.2, 0.8]}\n", "tempo_range"),
    ("epochs: [\n", "invalid YAML"),
])
def test_bad_configs_are_refused_with_one_line(tmp_path, text, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_train_config(path)
    assert fragment in str(err.value) and "\n" not in str(err.value)
    assert str(path) in str(err.value)


def test_unknown_override_and_suffix(tmp_path):
    with pytest.raises(ConfigError, match="unknown setting"):
        TrainConfig().with_overrides({"augment.nope": 1})
    path = tmp_path / "cfg.json"
    path.write_text("{}")
    with pytest.raises(ConfigError, match="yaml"):
        load_train_config(path)
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("epochs")


def test_exponent_without_a_dot_is_a_number_and_words_are_refused():
    # YAML 1.1 reads "4e-3" as a string; `--set lr=4e-3` must still mean 0.004
    assert TrainConfig().with_overrides(dict([parse_override("lr=4e-3")])).lr == pytest.approx(0.004)
    for bad in ("fast", "nan"):
        with pytest.raises(ConfigError, match="lr must be a number"):
            TrainConfig().with_overrides({"lr": bad})
