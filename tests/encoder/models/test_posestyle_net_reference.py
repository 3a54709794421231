"""PoseStyle-Net computes what it computed before the speed work (saved outputs, posestyle_reference.py).

Same state_dict, same inputs: the eval outputs (float32, as checkpoints run) match within 1e-5;
in float64, the train-mode outputs, BN running statistics and parameter gradients match within
1e-9 (float32 gradients differ by rounding where terms are summed in another order).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.encoder.models.posestyle_reference import (
    CASES,
    REFERENCE_FILE,
    batch_as,
    output_weights,
    outputs_of,
    reference_batch,
    running_statistics,
    seeded_model,
    unflat,
)

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}
TOLERANCE_FLOAT64 = {"rtol": 1e-9, "atol": 1e-9}


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE_FILE, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("case", list(CASES))
def test_posestyle_net_matches_saved_reference(reference, case):
    overrides, batch_seed, dims = CASES[case]
    assert json.loads(str(reference[f"{case}/config"])) == json.loads(json.dumps({"overrides": overrides,
                                                                                 "in_dims": dims}))
    model = seeded_model(overrides, dims)
    state = model.state_dict()
    saved = unflat(reference[f"{case}/state"].astype(np.float32), list(state.values()))
    for (name, tensor), value in zip(state.items(), saved):     # the saved weights load unchanged
        torch.testing.assert_close(tensor, value, rtol=0, atol=0, msg=f"{case}: seeded weights differ at {name}")
    batch = reference_batch(batch_seed, dims)

    with torch.inference_mode():
        out = outputs_of(model.eval(), batch)
    assert set(out) == {k.split("/")[-1] for k in reference if k.startswith(f"{case}/eval/")}
    for name, value in out.items():
        np.testing.assert_allclose(value.numpy(), reference[f"{case}/eval/{name}"], **TOLERANCE,
                                   err_msg=f"{case}: eval {name}")

    model.double().train()
    out = outputs_of(model, batch_as(batch, torch.float64))
    weights = output_weights({k: tuple(v.shape) for k, v in out.items()})
    sum(torch.sum(weights[k].double() * v) for k, v in out.items()).backward()
    for name, value in out.items():
        np.testing.assert_allclose(value.detach().numpy(), reference[f"{case}/train/{name}"], **TOLERANCE_FLOAT64,
                                   err_msg=f"{case}: train {name}")
    running = running_statistics(model)
    for got, want in zip(running, unflat(reference[f"{case}/running"], running)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), **TOLERANCE_FLOAT64,
                                   err_msg=f"{case}: running statistics")
    params = dict(model.named_parameters())
    grads = unflat(reference[f"{case}/grad"], list(params.values()))
    for (name, param), want in zip(params.items(), grads):
        assert param.grad is not None, f"{case}: no gradient for {name}"
        np.testing.assert_allclose(param.grad.numpy(), want.numpy(), **TOLERANCE_FLOAT64,
                                   err_msg=f"{case}: grad {name}")
