"""Checkpoints: safetensors round trip, content-derived version, and refusal of pickles."""
from __future__ import annotations

import json
import os
from dataclasses import asdict

import numpy as np
import pytest
import torch
from safetensors import safe_open

from encoder.checkpoint import CheckpointError, CheckpointMeta, load_checkpoint, read_checkpoint, save_checkpoint
from encoder.data.batch import collate_segments
from encoder.data.preprocess import PreprocessConfig, preprocess_sequence
from encoder.models import build_model, config_to_dict

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model_and_meta(tiny_model_config, seed=0):
    torch.manual_seed(seed)
    model = build_model("posestyle_net", {**tiny_model_config, "in_dims": 2, "num_classes": 3}).eval()
    meta = CheckpointMeta(model_name="posestyle_net", model_config=config_to_dict(model.config),
                          preprocess_config=asdict(PreprocessConfig()), labels=("a", "b", "c"), input_dims=2,
                          training={"seed": seed})
    return model, meta


def _batch(make_toy_corpus):
    items = [preprocess_sequence(s) for s in make_toy_corpus(2, dims=2)]
    return collate_segments(items)


def test_round_trip_gives_identical_outputs(tmp_path, tiny_model_config, make_toy_corpus):
    model, meta = _model_and_meta(tiny_model_config)
    saved = save_checkpoint(tmp_path / "enc.safetensors", model, meta)
    assert len(saved.encoder_version) == 12
    loaded, found = load_checkpoint(tmp_path / "enc.safetensors")
    assert found.encoder_version == saved.encoder_version
    assert found.labels == ("a", "b", "c") and found.input_dims == 2 and found.skeleton == "coco17"
    assert found.training == {"seed": 0} and found.model_config == meta.model_config
    assert not loaded.training
    batch = _batch(make_toy_corpus)
    with torch.no_grad():
        a, b = model(batch), loaded(batch)
    assert torch.equal(a.embedding, b.embedding) and torch.equal(a.logits, b.logits)
    assert not list(tmp_path.glob("*.tmp"))


def test_metadata_is_json_strings(tmp_path, tiny_model_config):
    model, meta = _model_and_meta(tiny_model_config)
    save_checkpoint(tmp_path / "enc.safetensors", model, meta)
    with safe_open(str(tmp_path / "enc.safetensors"), framework="pt") as fh:
        raw = fh.metadata()
    assert json.loads(raw["model_name"]) == "posestyle_net"
    assert json.loads(raw["labels"]) == ["a", "b", "c"]
    assert json.loads(raw["skeleton"]) == "coco17"
    assert json.loads(raw["preprocess_config"])["window_length"] == PreprocessConfig().window_length


def test_version_depends_on_content_only(tmp_path, tiny_model_config):
    model, meta = _model_and_meta(tiny_model_config, seed=0)
    v1 = save_checkpoint(tmp_path / "a.safetensors", model, meta).encoder_version
    v_same = save_checkpoint(tmp_path / "b.safetensors", model,
                             CheckpointMeta(**{**asdict(meta), "training": {"other": "summary"}})).encoder_version
    assert v_same == v1                                   # the training summary is not part of it
    other_labels = CheckpointMeta(**{**asdict(meta), "labels": ("a", "c", "b")})
    assert save_checkpoint(tmp_path / "c.safetensors", model, other_labels).encoder_version != v1
    model2, meta2 = _model_and_meta(tiny_model_config, seed=1)
    assert save_checkpoint(tmp_path / "d.safetensors", model2, meta2).encoder_version != v1


def test_edited_file_is_refused(tmp_path, tiny_model_config):
    model, meta = _model_and_meta(tiny_model_config)
    path = tmp_path / "enc.safetensors"
    save_checkpoint(path, model, meta)
    tensors, found = read_checkpoint(path)
    name = sorted(tensors)[0]
    tensors[name] = tensors[name] + 1.0
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata=found.to_metadata())      # weights changed, version kept
    with pytest.raises(CheckpointError, match="does not match its encoder_version"):
        load_checkpoint(path)


def test_malformed_motion_statistics_are_refused(tmp_path, tiny_model_config):
    model, meta = _model_and_meta(tiny_model_config)
    path = tmp_path / "enc.safetensors"
    save_checkpoint(path, model, meta)
    tensors, found = read_checkpoint(path)
    metadata = {**found.to_metadata(), "motion_statistics": '{"weight": 0.5, "mean": [0.0, 1.0], "scale": [1.0, 0.0]}'}
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(CheckpointError, match="malformed motion statistics"):
        load_checkpoint(path)


class _Payload:
    """Unpickling this object would create ``marker`` (a stand-in for arbitrary code)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_pickle_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "payload": _Payload(marker)}, str(path))
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="refused") as err:
        load_checkpoint(path)
    assert "\n" not in str(err.value)
    assert not marker.exists()
    # the same bytes renamed to other suffixes are refused too
    for suffix in (".pkl", ".safetensors", ".bin"):
        renamed = tmp_path / f"evil{suffix}"
        renamed.write_bytes(path.read_bytes())
        with pytest.raises(CheckpointError):
            load_checkpoint(renamed)
    assert not marker.exists()


def test_weights_only_pt_state_dict(tmp_path, tiny_model_config, make_toy_corpus):
    model, meta = _model_and_meta(tiny_model_config)
    bare = tmp_path / "bare.pt"
    torch.save(model.state_dict(), str(bare))
    with pytest.raises(CheckpointError, match="does not say which model"):
        load_checkpoint(bare)
    loaded, found = load_checkpoint(bare, meta=meta)
    with_meta = tmp_path / "with_meta.pt"
    torch.save({"state_dict": model.state_dict(), "meta": json.dumps(meta.identity())}, str(with_meta))
    loaded2, found2 = load_checkpoint(with_meta)
    assert found.encoder_version == found2.encoder_version == \
        save_checkpoint(tmp_path / "x.safetensors", model, meta).encoder_version
    batch = _batch(make_toy_corpus)
    with torch.no_grad():
        np.testing.assert_array_equal(loaded2(batch).embedding.numpy(), model(batch).embedding.numpy())


def test_wrong_weights_and_missing_file(tmp_path, tiny_model_config):
    model, meta = _model_and_meta(tiny_model_config)
    bigger = CheckpointMeta(**{**asdict(meta), "model_config": {**meta.model_config, "embedding_dim": 24}})
    path = tmp_path / "enc.safetensors"
    save_checkpoint(path, model, bigger)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "absent.safetensors")
    with pytest.raises(CheckpointError, match="safetensors"):
        save_checkpoint(tmp_path / "enc.pt", model, meta)
