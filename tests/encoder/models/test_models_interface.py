"""Every registered model: the StyleOutput contract, masks, determinism, forward/backward."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from encoder.data.batch import PoseBatch, collate_segments
from encoder.models import StyleLoss, build_model, model_names
from tests.encoder.models.models_support import TINY_CONFIGS, make_batch, make_sequence, tiny_config

ALL_MODELS = model_names()


def _model(name: str, seed: int = 0, **overrides) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(name, tiny_config(name, **overrides))


def _pad_windows(batch: PoseBatch, extra: int) -> PoseBatch:
    """The same batch with ``extra`` empty (segment_mask False) windows appended, garbage inside."""
    def grow(t: torch.Tensor) -> torch.Tensor:
        shape = (t.shape[0], extra) + tuple(t.shape[2:])
        fill = torch.full(shape, 7.0) if t.is_floating_point() else torch.zeros(shape, dtype=t.dtype)
        if t.dtype == torch.bool:
            fill = torch.ones(shape, dtype=torch.bool)   # joints/frames "observed" in a padded window
        return torch.cat([t, fill.to(t.dtype)], dim=1)

    return PoseBatch(grow(batch.positions), grow(batch.velocity), grow(batch.joint_mask),
                     grow(batch.frame_mask),
                     torch.cat([batch.segment_mask, torch.zeros(len(batch), extra, dtype=torch.bool)], 1),
                     grow(batch.phase), batch.labels)


@pytest.mark.parametrize("name", ALL_MODELS)
@pytest.mark.parametrize("dims", [2, 3])
def test_output_shapes_and_unit_norm(name, dims):
    model = _model(name, in_dims=dims, num_classes=5).eval()
    batch = make_batch(5, seed=1, dims=dims)
    with torch.no_grad():
        out = model(batch)
    emb_dim = TINY_CONFIGS[name]["embedding_dim"]
    assert out.embedding.shape == (5, emb_dim) and out.logits.shape == (5, 5)
    assert torch.isfinite(out.embedding).all() and torch.isfinite(out.logits).all()
    torch.testing.assert_close(out.embedding.norm(dim=1), torch.ones(5))
    assert torch.equal(out.window_mask, batch.segment_mask)
    m = batch.segment_mask.shape[1]
    if out.segment_weights is not None:
        assert out.segment_weights.shape == (5, m)
    if out.stage_states is not None:
        assert out.stage_states.shape[:2] == (5, m)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_batch_shape_mismatch_is_a_clear_error(name):
    model = _model(name, in_dims=3)
    with pytest.raises(ValueError, match="17 joints x 3 dims, batch has 17 x 2"):
        model(make_batch(2, dims=2))


@pytest.mark.parametrize("name", ALL_MODELS)
def test_item_alone_equals_item_padded_in_a_batch(name):
    """Padded windows, padded frames and a longer neighbour leave an item's output unchanged."""
    model = _model(name).eval()
    short = make_sequence(11, num_segments=2, style=1, missing=0.15, padded_frames=9)
    long = make_sequence(12, num_segments=6, style=2, missing=0.05)
    with torch.no_grad():
        alone = model(collate_segments([short], [1]))
        together = model(collate_segments([long, short], [2, 1]))
        extra = model(_pad_windows(collate_segments([short], [1]), extra=3))
    for other in (together, extra):
        row = 1 if other is together else 0
        torch.testing.assert_close(other.embedding[row], alone.embedding[0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(other.logits[row], alone.logits[0], atol=1e-4, rtol=1e-4)
        for field in ("segment_weights", "stage_states"):
            a, b = getattr(alone, field), getattr(other, field)
            if a is not None:
                torch.testing.assert_close(b[row, :2], a[0], atol=1e-5, rtol=1e-4)
                assert torch.all(b[row, 2:] == 0)
        if alone.region_weights is not None:
            torch.testing.assert_close(other.region_weights[row], alone.region_weights[0],
                                       atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_padding_does_not_change_training_mode_outputs(name):
    """In training mode too (batch statistics): empty windows add nothing to any statistic."""
    model = _model(name).train()
    batch = make_batch(4, seed=3)
    a = model(batch)
    b = model(_pad_windows(batch, extra=2))
    torch.testing.assert_close(b.embedding, a.embedding, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(b.logits, a.logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_coordinates_of_missing_joints_are_ignored(name):
    model = _model(name).eval()
    batch = make_batch(3, seed=4, missing=0.3)
    hidden = ~(batch.joint_mask & batch.frame_mask[..., None])
    assert hidden.any()
    changed = dataclasses.replace(batch)
    noise = torch.randn(batch.positions.shape, generator=torch.Generator().manual_seed(0)) * 100
    noise[..., 0] = float("nan")          # even NaN at a missing joint must not leak
    changed.positions = torch.where(hidden[..., None], noise, batch.positions)
    changed.velocity = torch.where(hidden[..., None], -noise, batch.velocity)
    with torch.no_grad():
        a, b = model(batch), model(changed)
    torch.testing.assert_close(b.embedding, a.embedding, atol=1e-5, rtol=1e-4)
    # ...while the coordinates of observed joints do matter
    moved = dataclasses.replace(batch, positions=batch.positions + 0.5 * (~hidden)[..., None])
    with torch.no_grad():
        c = model(moved)
    assert not torch.allclose(c.embedding, a.embedding, atol=1e-4)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_eval_is_deterministic_and_seeded_builds_agree(name):
    batch = make_batch(4, seed=5)
    first, second = _model(name, seed=3).eval(), _model(name, seed=3).eval()
    with torch.no_grad():
        a, b, c = first(batch), first(batch), second(batch)
    assert torch.equal(a.embedding, b.embedding) and torch.equal(a.logits, b.logits)
    assert torch.equal(a.embedding, c.embedding)
    other = _model(name, seed=4).eval()
    with torch.no_grad():
        assert not torch.allclose(other(batch).embedding, a.embedding)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_forward_backward_reaches_every_parameter(name):
    model = _model(name).train()
    batch = make_batch(6, seed=6)
    terms = StyleLoss()(model(batch), batch.labels)
    terms["total"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing}"
    for n, p in model.named_parameters():
        assert torch.isfinite(p.grad).all(), n
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("name", ALL_MODELS)
def test_a_sequence_with_every_joint_missing_still_gives_finite_output(name):
    model = _model(name).eval()
    empty = make_sequence(20, num_segments=2, missing=1.0)
    full = make_sequence(21, num_segments=3)
    with torch.no_grad():
        out = model(collate_segments([empty, full]))
    assert torch.isfinite(out.embedding).all() and torch.isfinite(out.logits).all()
    assert not out.window_mask[0].any() and out.window_mask[1, :3].all()
    np.testing.assert_allclose(out.embedding[1].norm().item(), 1.0, rtol=1e-5)
