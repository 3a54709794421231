"""Mask-aware building blocks: statistics, softmax and means skip masked places."""
from __future__ import annotations

import torch

from encoder.models.layers import MaskedBatchNorm, masked_mean, masked_softmax, uniform_weights


def test_masked_batch_norm_uses_only_valid_places():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 6, 5, 3, generator=gen) * 2 + 1
    mask = torch.rand(4, 6, 5, generator=gen) > 0.4
    x_garbage = torch.where(mask[..., None], x, torch.full_like(x, 1e4))
    norm = MaskedBatchNorm(3, momentum=0.5).train()
    reference = torch.nn.BatchNorm1d(3, momentum=0.5).train()
    out = norm(x_garbage, mask)
    expected = reference(x[mask])                       # plain BN over the valid rows only
    torch.testing.assert_close(out[mask], expected, atol=1e-5, rtol=1e-4)
    assert torch.all(out[~mask] == 0)
    torch.testing.assert_close(norm.running_mean, reference.running_mean)
    torch.testing.assert_close(norm.running_var, reference.running_var)
    norm.eval()
    reference.eval()
    torch.testing.assert_close(norm(x_garbage, mask)[mask], reference(x[mask]), atol=1e-5, rtol=1e-4)


def test_masked_batch_norm_offset_is_fused_the_same_way_in_train_and_eval():
    x = torch.randn(3, 4, 17, 2)
    mask = torch.ones(3, 4, 17, 1)
    offset = torch.randn(17, 2)
    norm = MaskedBatchNorm(2, momentum=1.0).train()
    train_out = norm(x, mask, offset=offset)
    eval_out = norm.eval()(x, mask, offset=offset)
    # momentum 1: the running statistics are this batch's (variance unbiased, hence the tolerance)
    torch.testing.assert_close(eval_out, train_out, atol=2e-2, rtol=2e-2)


def test_masked_softmax_and_means():
    scores = torch.tensor([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]])
    mask = torch.tensor([[True, False, True], [False, False, False]])
    w = masked_softmax(scores, mask, dim=1)
    torch.testing.assert_close(w[0], torch.softmax(torch.tensor([1.0, -1e9, 3.0]), 0))
    assert torch.all(w[1] == 0) and torch.isfinite(w).all()
    torch.testing.assert_close(uniform_weights(mask, 1), torch.tensor([[0.5, 0.0, 0.5], [0.0, 0.0, 0.0]]))
    x = torch.tensor([[[1.0], [100.0], [3.0]]])
    torch.testing.assert_close(masked_mean(x, mask[:1], dim=1), torch.tensor([[2.0]]))
