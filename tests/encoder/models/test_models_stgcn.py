"""ST-GCN: the eval-mode block (batch norms folded into the weights) computes what the block does."""
from __future__ import annotations

import torch

from encoder.models.stgcn import STGCN, STGCNConfig


def test_folded_eval_block_equals_the_block_with_its_norms_in_eval_mode() -> None:
    torch.manual_seed(0)
    model = STGCN(STGCNConfig(num_classes=3, in_dims=2, embedding_dim=16, channels=(8, 12), strides=(1, 2)))
    for norm in (m for m in model.modules() if hasattr(m, "running_var")):
        norm.running_var.uniform_(0.5, 2.0)
        norm.running_mean.normal_(0.0, 0.3)
        norm.weight.data.uniform_(0.5, 1.5)
        norm.bias.data.normal_(0.0, 0.2)
    x = torch.randn(5, 6, 17, 20)   # (2 * in_dims + 1) * frames_per_token inputs
    mask = torch.ones(5, 6, 17, 1)
    mask[0, :, 3] = 0          # a joint never seen
    mask[1, 4:] = 0            # trailing padding
    mask[2, 1, :9] = 0         # half a token
    x = x * mask
    for block in model.blocks:
        block.eval()
        folded, folded_mask = block(x, model.parts, mask)
        block.train()
        block.spatial_norm.eval()
        block.temporal_norm.eval()
        plain, plain_mask = block(x, model.parts, mask)
        torch.testing.assert_close(folded, plain, rtol=1e-5, atol=1e-5)
        assert torch.equal(folded_mask, plain_mask)
        assert folded.abs().sum() > 0
        x, mask = plain, plain_mask
