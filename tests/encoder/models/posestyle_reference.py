"""Saved PoseStyle-Net outputs that pin down what the network computes (speed work must not change it).

``python -m tests.encoder.models.posestyle_reference`` wrote ``tests/fixtures/posestyle_net_reference.npz``
with the implementation of commit 4202157 (before the speed work): per case a model config, a
seeded state_dict (random weights and BN running statistics), the eval-mode outputs on a seeded
random batch (``reference_batch``: mixed window counts, missing joints, padded frames), and in
train mode, run in float64 so that a different but equivalent order of float operations cannot
hide a real difference, the outputs, the updated running statistics and the gradient of every
parameter for a fixed linear function of the outputs. Rerunning it rewrites the file from the current code,
which only makes sense for a deliberate change of the model.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from encoder.data.batch import PoseBatch
from encoder.data.skeleton import NUM_JOINTS
from encoder.models import build_model
from encoder.models.base import StyleModel
from tests.encoder.models.models_support import tiny_config

REFERENCE_FILE = Path(__file__).resolve().parents[2] / "fixtures" / "posestyle_net_reference.npz"
OUTPUTS = ("embedding", "logits", "segment_weights", "region_weights", "stage_states")

# name -> (config overrides of the tiny config, batch seed, input dims)
CASES: dict[str, tuple[dict[str, Any], int, int]] = {
    "default": ({}, 0, 2),
    "default_3d": ({}, 1, 3),
    "all_off": ({"use_velocity_graph": False, "use_multi_branch": False, "use_attention": False,
                 "use_segment_fusion": False, "use_temporal_relation": False, "use_spatial_synergy": False,
                 "use_stage_gating": False, "use_cross_stage_aggregation": False}, 2, 2),
    "strided_tokens": ({"frames_per_token": 3, "branch_channels": (8, 8, 12), "branch_strides": (2, 1, 2),
                        "branch_dilations": (1, 2, 1), "temporal_kernel": 5, "num_relation_layers": 1}, 3, 2),
}


def seeded_model(overrides: dict[str, Any], in_dims: int, seed: int = 0) -> StyleModel:
    """The case's model with every parameter and BN running statistic drawn from ``seed``
    (rounded to float16 values, so the reference file stores them exactly in 16 bits)."""
    torch.manual_seed(seed)
    model = build_model("posestyle_net", tiny_config("posestyle_net", in_dims=in_dims, num_classes=3, **overrides))
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) * 1.5 + 0.5)
            else:
                tensor.add_(torch.randn(tensor.shape, generator=gen) * 0.1)
            tensor.copy_(tensor.half())     # float16 values: stored in half the space, exactly
    return model


def reference_batch(seed: int, dims: int, sequences: int = 5, windows: int = 4, length: int = 32) -> PoseBatch:
    """A seeded random batch: 1..``windows`` real windows per sequence, ~10 % missing joints, padded
    frames at the end of some last windows, and large garbage values at every unobserved place."""
    rng = np.random.default_rng(seed)
    shape = (sequences, windows, length, NUM_JOINTS, dims)
    segment_mask = np.arange(windows)[None, :] < rng.integers(1, windows + 1, sequences)[:, None]
    frame_mask = np.ones(shape[:3], bool)
    for i in range(sequences):
        frame_mask[i, segment_mask[i].sum() - 1, length - int(rng.integers(0, 12)):] = False
    joint_mask = (rng.random(shape[:4]) >= 0.1) & frame_mask[..., None] & segment_mask[..., None, None]
    unobserved = ~joint_mask[..., None]
    positions = np.where(unobserved, rng.normal(0.0, 50.0, shape), rng.normal(0.0, 1.0, shape))
    velocity = np.where(unobserved, rng.normal(0.0, 50.0, shape), rng.normal(0.0, 2.0, shape))
    phase = np.sort(rng.random((sequences, windows)), axis=1) * segment_mask
    return PoseBatch(torch.from_numpy(positions.astype(np.float32)), torch.from_numpy(velocity.astype(np.float32)),
                     torch.from_numpy(joint_mask), torch.from_numpy(frame_mask), torch.from_numpy(segment_mask),
                     torch.from_numpy(phase.astype(np.float32)), torch.full((sequences,), -1, dtype=torch.long))


def batch_as(batch: PoseBatch, dtype: torch.dtype) -> PoseBatch:
    """``batch`` with its float tensors in ``dtype``."""
    return PoseBatch(**{k: v.to(dtype) if v.is_floating_point() else v for k, v in batch.__dict__.items()})


def output_weights(out_shapes: dict[str, tuple[int, ...]], seed: int = 7) -> dict[str, torch.Tensor]:
    """Fixed random weights; the train-mode gradients are of sum(weight * output) over ``OUTPUTS``."""
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(shape, generator=gen) for k, shape in out_shapes.items()}


def outputs_of(model: StyleModel, batch: PoseBatch) -> dict[str, torch.Tensor]:
    out = model(batch)
    return {k: getattr(out, k) for k in OUTPUTS if getattr(out, k) is not None}


def flat(tensors: list[torch.Tensor]) -> np.ndarray:
    """Tensors concatenated into one vector (in the order given)."""
    return torch.cat([t.detach().reshape(-1) for t in tensors]).numpy()


def unflat(vector: np.ndarray, like: list[torch.Tensor]) -> list[torch.Tensor]:
    """Inverse of ``flat``: ``vector`` cut into tensors shaped as ``like``."""
    sizes = [t.numel() for t in like]
    if sum(sizes) != vector.size:
        raise ValueError(f"reference holds {vector.size} values, the model has {sum(sizes)}")
    parts = torch.from_numpy(vector).split(sizes)
    return [p.view(t.shape) for p, t in zip(parts, like)]


def running_statistics(model: StyleModel) -> list[torch.Tensor]:
    """The BN running means and variances (updated by a train-mode forward)."""
    return [t for name, t in model.state_dict().items() if "running" in name]


def write_reference(path: Path = REFERENCE_FILE) -> None:
    """Run every case with the current code and save weights and outputs (state_dict order)."""
    arrays: dict[str, np.ndarray] = {}
    for case, (overrides, batch_seed, dims) in CASES.items():
        model = seeded_model(overrides, dims)
        batch = reference_batch(batch_seed, dims)
        arrays[f"{case}/config"] = np.array(json.dumps({"overrides": overrides, "in_dims": dims}))
        arrays[f"{case}/state"] = flat(list(model.state_dict().values())).astype(np.float16)
        with torch.no_grad():
            for name, value in outputs_of(model.eval(), batch).items():
                arrays[f"{case}/eval/{name}"] = value.numpy()
        model.double().train()
        out = outputs_of(model, batch_as(batch, torch.float64))
        weights = output_weights({k: tuple(v.shape) for k, v in out.items()})
        sum(torch.sum(weights[k].double() * v) for k, v in out.items()).backward()
        for name, value in out.items():
            arrays[f"{case}/train/{name}"] = value.detach().numpy()
        arrays[f"{case}/running"] = flat(running_statistics(model))
        arrays[f"{case}/grad"] = flat([p.grad for p in model.parameters()])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


if __name__ == "__main__":
    torch.set_num_threads(1)
    write_reference()
    print(f"wrote {REFERENCE_FILE}")
