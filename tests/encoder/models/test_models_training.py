"""A tiny training run: PoseStyle-Net overfits 12 structured sequences of 3 classes."""
from __future__ import annotations

import pytest
import torch

from encoder.models import StyleLoss, build_model
from tests.encoder.models.models_support import make_batch, tiny_config


@pytest.mark.slow   # a few hundred optimiser steps
def test_posestyle_net_overfits_a_small_set():
    torch.manual_seed(0)
    net = build_model("posestyle_net", tiny_config("posestyle_net", num_classes=3))
    batch = make_batch(12, seed=11, segments=(2, 4), missing=0.1)
    loss_fn = StyleLoss()
    optimiser = torch.optim.AdamW(net.parameters(), lr=1e-2, weight_decay=1e-4)
    with torch.no_grad():
        net.eval()
        before = loss_fn(net(batch), batch.labels)["total"].item()
    history = []
    net.train()
    for _ in range(100):
        optimiser.zero_grad()
        total = loss_fn(net(batch), batch.labels)["total"]
        total.backward()
        optimiser.step()
        history.append(total.item())
    net.eval()
    with torch.no_grad():
        out = net(batch)
        after = loss_fn(out, batch.labels)["total"].item()
    assert all(torch.isfinite(torch.tensor(history)))
    assert after < 0.5 * before, (before, after)
    assert sum(history[-10:]) < 0.5 * sum(history[:10])
    accuracy = (out.logits.argmax(1) == batch.labels).float().mean().item()
    assert accuracy == 1.0
    # the embedding space is organised too: each item's nearest neighbour shares its class
    sim = out.embedding @ out.embedding.T
    sim.fill_diagonal_(-2.0)
    assert (batch.labels[sim.argmax(1)] == batch.labels).float().mean() >= 0.9
