"""The skeleton-map gait models (GaitHeat, GaitMM, HSTL): their own pieces and losses, frame
masking, set pooling vs. temporal order, and one training step on real takes."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from encoder.data.batch import PoseBatch, collate_segments
from encoder.models import StyleLoss, build_model
from encoder.models.gait_layers import StripConv3d, masked_temporal_pool, part_triplet_loss
from tests.encoder.models.models_support import make_batch, make_sequence, tiny_config

GAIT_MODELS = ["gaitheat", "gaitmm", "hstl"]


def _model(name: str, seed: int = 0, **overrides) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(name, tiny_config(name, **overrides))


@pytest.mark.parametrize("name", GAIT_MODELS)
def test_a_frame_marked_missing_is_a_frame_with_no_joint(name):
    """frame_mask False (garbage kept in its joints) == every joint of that frame missing."""
    model = _model(name, frame_step=1).eval()
    batch = make_batch(3, seed=7, missing=0.1)
    off = torch.zeros_like(batch.frame_mask)
    off[:, 0, 3:9] = True
    dropped_frames = dataclasses.replace(batch, frame_mask=batch.frame_mask & ~off)
    dropped_joints = dataclasses.replace(batch, joint_mask=batch.joint_mask & ~off[..., None])
    with torch.no_grad():
        a, b, full = model(dropped_frames), model(dropped_joints), model(batch)
    torch.testing.assert_close(a.embedding, b.embedding, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(a.embedding, full.embedding, atol=1e-4)      # those frames did count


@pytest.mark.parametrize("name", ["gaitheat", "gaitmm"])
def test_convolutions_are_kept_channels_last_and_give_the_contiguous_layouts_embedding(name, tmp_path):
    from encoder.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
    from encoder.models import config_to_dict

    model = _model(name).eval()
    convs = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d))]
    layout = {4: torch.channels_last, 5: torch.channels_last_3d}

    def channels_last(weight: torch.Tensor) -> bool:      # the canonical strides, also of 1-channel/1x1 weights
        return weight.stride() == torch.empty(weight.shape, memory_format=layout[weight.dim()]).stride()

    assert convs and all(channels_last(m.weight) for m in convs)
    plain = _model(name).eval()
    for m in plain.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d)):
            m.weight.data = torch.empty(m.weight.shape).copy_(m.weight.data)
    batch = make_batch(3, seed=5)
    with torch.no_grad():
        torch.testing.assert_close(model(batch).embedding, plain(batch).embedding, atol=1e-5, rtol=1e-4)
    meta = CheckpointMeta(model_name=name, model_config=config_to_dict(model.config), preprocess_config={},
                          labels=tuple("abcdefg"[:model.config.num_classes]), input_dims=2)
    save_checkpoint(tmp_path / "m.safetensors", model, meta)
    loaded, _ = load_checkpoint(tmp_path / "m.safetensors")
    assert all(channels_last(m.weight) for m in loaded.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d)))
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(batch).embedding, model(batch).embedding)


def _reverse_time(batch: PoseBatch) -> PoseBatch:
    flip = {k: torch.flip(getattr(batch, k), dims=[2]) for k in ("positions", "velocity", "joint_mask", "frame_mask")}
    return dataclasses.replace(batch, **flip)


@pytest.mark.parametrize("name", GAIT_MODELS)
def test_gaitheat_pools_a_set_while_gaitmm_and_hstl_see_the_order(name):
    model = _model(name, frame_step=1).eval()
    batch = collate_segments([make_sequence(30 + i, num_segments=2, style=i) for i in range(3)], [0, 1, 2])
    with torch.no_grad():
        forward, backward = model(batch), model(_reverse_time(batch))
    same = torch.allclose(forward.embedding, backward.embedding, atol=1e-5)
    assert same == (name == "gaitheat")


@pytest.mark.parametrize("name", GAIT_MODELS)
def test_own_loss_terms_train_the_model(name):
    model = _model(name, num_classes=3).train()
    batch = make_batch(12, seed=11, segments=(2, 3), missing=0.05)
    loss_fn = StyleLoss()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)

    def total() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = model(batch)
        extra = model.extra_losses(out, batch.labels)
        return loss_fn(out, batch.labels)["total"] + sum(extra.values()), extra

    first, extra = total()
    assert set(extra) == {"triplet", "part_ce"} and all(torch.isfinite(v) and v > 0 for v in extra.values())
    for _ in range(25):
        optimiser.zero_grad()
        loss, _ = total()
        loss.backward()
        optimiser.step()
    last, _ = total()
    assert last.item() < 0.8 * first.item(), (first.item(), last.item())


def test_part_triplet_loss_is_zero_only_beyond_the_margin_and_skips_unknown_labels():
    labels = torch.tensor([0, 0, 1, 1, -1])
    apart = torch.tensor([[0.0], [0.1], [5.0], [5.1], [0.05]])[:, None, :]    # (B, P=1, d=1)
    assert part_triplet_loss(apart, labels, margin=0.2) == 0
    mixed = torch.tensor([[0.0], [5.0], [0.1], [5.1], [0.0]])[:, None, :]
    assert part_triplet_loss(mixed, labels, margin=0.2) > 2.0      # hinges 5.1 and 0.1 per anchor
    # the unknown item sits on class 1's place: it must not count as anything
    assert part_triplet_loss(apart.clone().index_fill_(0, torch.tensor([4]), 5.05), labels, 0.2) == 0


def test_masked_temporal_pool_ignores_invalid_frames():
    x = torch.arange(1.0, 8.0).reshape(1, 1, 7, 1, 1)
    valid = torch.tensor([[True, False, True, True, True, False, False]])
    x[0, 0, 1] = 100.0                                                        # invalid: must not win
    mx, mean, out_valid = masked_temporal_pool(x, valid, 3, 3)
    assert out_valid.tolist() == [[True, True, False]]
    assert mx.flatten().tolist() == [3.0, 5.0, 0.0]
    assert mean.flatten().tolist()[:2] == [2.0, 4.5]


def test_strip_convolution_equals_one_convolution_per_strip():
    torch.manual_seed(0)
    conv = StripConv3d(2, 3, parts=2)
    x = torch.randn(1, 2, 4, 8, 5)
    y = conv(x)
    w = conv.conv.weight.reshape(2, 3, 2, 3, 3, 3)
    for k in range(2):
        ref = torch.nn.functional.conv3d(x[:, :, :, 4 * k:4 * k + 4], w[k], padding=1)
        torch.testing.assert_close(y[:, :, :, 4 * k:4 * k + 4], ref, atol=1e-5, rtol=1e-4)


REAL_TAKES = {"dataset-2_walk_normal_001": "normal", "dataset-2_walk_elderly_002": "elderly",
              "dataset-2_walk_feminine_001": "feminine", "dataset-2_walk_normal_002": "normal",
              "dataset-2_walk_elderly_001": "elderly", "dataset-2_walk_feminine_002": "feminine"}


@pytest.fixture(scope="module")
def real_batch(shared_data_dir):
    from encoder.data.preprocess import preprocess_sequence
    from encoder.data.readers import read_bvh
    from encoder.training import crop_windows, training_view

    folder = shared_data_dir / "bandai-namco-motion-2" / "data"
    styles = sorted(set(REAL_TAKES.values()))
    rng = np.random.default_rng(0)
    items, labels = [], []
    for name, style in REAL_TAKES.items():
        path = folder / f"{name}.bvh"
        if not path.is_file():
            pytest.skip(f"real take missing: {path}")
        seq = dataclasses.replace(read_bvh(path), label=style, name=name)
        items.append(crop_windows(preprocess_sequence(training_view(seq, "2d")), 3, rng))
        labels.append(styles.index(style))
    return collate_segments(items, labels), len(styles)


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize("name", GAIT_MODELS)
def test_one_training_step_on_real_takes(name, real_batch):
    """Default (full-size) configs on real Bandai-Namco walks in the 2d benchmark view."""
    batch, num_classes = real_batch
    torch.manual_seed(0)
    model = build_model(name, {"num_classes": num_classes}).train()
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    out = model(batch)
    assert out.embedding.shape == (len(batch), model.embedding_dim)
    terms = StyleLoss()(out, batch.labels)
    extra = model.extra_losses(out, batch.labels)
    total = terms["total"] + sum(extra.values())
    assert torch.isfinite(total) and all(torch.isfinite(v) for v in extra.values())
    total.backward()
    optimiser.step()
    changed = [k for k, v in model.named_parameters() if not torch.equal(v, before[k])]
    assert len(changed) == len(before), set(before) - set(changed)
    model.eval()
    with torch.no_grad():
        again = model(batch)
    assert torch.isfinite(again.embedding).all()
    torch.testing.assert_close(again.embedding.norm(dim=1), torch.ones(len(batch)))


def test_gaitheat_encodes_each_distinct_frame_of_a_sequence_once():
    from encoder.models.gaitheat import distinct_frames

    rng = torch.Generator().manual_seed(0)
    a, b = torch.randn(17, 2, generator=rng), torch.randn(17, 2, generator=rng)
    ones = torch.ones(17, dtype=torch.bool)
    partial = ones.clone()
    partial[3] = False
    frames = torch.stack([a, b, a, b, a, a])
    valid = torch.stack([ones, ones, ones, ones, partial, ones])
    seq = torch.tensor([0, 0, 0, 0, 0, 1])      # the last frame repeats sequence 0's keypoints in sequence 1
    kept, kept_valid, kept_seq = distinct_frames(frames, valid, seq)
    torch.testing.assert_close(kept, torch.stack([a, b, a, a]))
    assert kept_seq.tolist() == [0, 0, 0, 1] and kept_valid[2].tolist() == partial.tolist()
    assert distinct_frames(frames[:1], valid[:1], seq[:1])[0].shape[0] == 1


def test_gaitheat_embedding_is_the_same_with_or_without_repeated_frames(monkeypatch):
    import encoder.models.gaitheat as gaitheat

    model = _model("gaitheat", frame_step=2).eval()
    batch = collate_segments([make_sequence(40 + i, num_segments=3, style=i) for i in range(3)], [0, 1, 2])
    with torch.no_grad():
        once = model(batch).embedding
        monkeypatch.setattr(gaitheat, "distinct_frames", lambda f, v, s: (f, v, s))
        every = model(batch).embedding
    torch.testing.assert_close(once, every)
