"""PoseStyle-Net: equations 3, 7, 8 and 11, diagnostics, ablation switches and size."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import encoder.models.layers as layers
from encoder.data.preprocess import velocity_weighted_adjacency
from encoder.data.skeleton import BODY_REGIONS, COCO17_EDGES, NUM_JOINTS, adjacency_matrix
from encoder.models import PoseStyleNet, PoseStyleNetConfig, build_model
from encoder.models.posestyle_net import pose_graph
from tests.encoder.models.models_support import make_batch, tiny_config

SWITCHES = ("use_velocity_graph", "use_multi_branch", "use_attention", "use_segment_fusion",
            "use_temporal_relation", "use_spatial_synergy", "use_stage_gating",
            "use_cross_stage_aggregation")
# Parameter-name fragments that exist only when the switch is on (None: same parameters).
SWITCH_PARAMETERS = {
    "use_velocity_graph": None,
    "use_multi_branch": "attention.1.",
    "use_attention": "time_score",
    "use_segment_fusion": "fusion_score",
    "use_temporal_relation": None,
    "use_spatial_synergy": "w_s",
    "use_stage_gating": "gate",
    "use_cross_stage_aggregation": "eta",
}


def _net(seed: int = 0, **overrides) -> PoseStyleNet:
    torch.manual_seed(seed)
    return build_model("posestyle_net", tiny_config("posestyle_net", **overrides))


def test_pose_graph_is_eq3_row_normalised_over_observed_joints():
    rng = np.random.default_rng(0)
    velocity = rng.normal(0, 2, (1, 1, NUM_JOINTS, 2)).astype(np.float32)
    mask = np.ones((1, 1, NUM_JOINTS), bool)
    mask[0, 0, 3] = False
    lam, sigma = 0.3, 1.5
    g = adjacency_matrix(COCO17_EDGES, NUM_JOINTS, self_loops=True)
    graph = pose_graph(torch.from_numpy(velocity), torch.from_numpy(mask), torch.from_numpy(g),
                       lam, sigma, use_velocity=True)[0, 0].numpy()
    observed = mask[0, 0]                          # rows of unobserved joints are masked downstream
    raw = velocity_weighted_adjacency(velocity[0, 0], g, lam, sigma, joint_mask=observed)   # the eq. (3) reference
    expected = raw / raw.sum(1, keepdims=True)
    np.testing.assert_allclose(graph[observed], expected[observed], rtol=1e-4, atol=1e-6)
    assert np.all(graph[:, 3] == 0)
    static = pose_graph(torch.from_numpy(velocity), torch.from_numpy(mask), torch.from_numpy(g),
                        lam, sigma, use_velocity=False)[0, 0].numpy()
    plain = velocity_weighted_adjacency(velocity[0, 0], g, 1.0, sigma, joint_mask=observed)  # lam = 1: G alone
    np.testing.assert_allclose(static[observed], (plain / plain.sum(1, keepdims=True))[observed], rtol=1e-6)


def test_temporal_relation_follows_eq7_and_masks_padding():
    net = _net(tau2=0.5)
    state = torch.randn(1, 1, 16).expand(1, 4, 16).clone()           # identical windows: feature term 1
    phase = torch.tensor([[0.0, 0.2, 0.5, 0.9]])
    window_mask = torch.tensor([[True, True, True, False]])
    relation = net._temporal_relation(state, phase, window_mask)[0]
    expected = torch.exp(-(phase[0, :3, None] - phase[0, None, :3]).abs() / 0.5)   # eq. (7)
    expected = expected / expected.sum(1, keepdim=True)
    torch.testing.assert_close(relation[:3, :3], expected)
    assert torch.all(relation[3] == 0) and torch.all(relation[:, 3] == 0)
    # a window whose features differ is related less
    state[0, 1] += 3.0 * torch.randn(16)
    relation = net._temporal_relation(state, torch.zeros(1, 4), window_mask)[0]
    assert relation[0, 1] < relation[0, 2]
    off = _net(use_temporal_relation=False)._temporal_relation(state, phase, window_mask)[0]
    torch.testing.assert_close(off, torch.diag(torch.tensor([1.0, 1.0, 1.0, 0.0])))


def test_spatial_synergy_follows_eq8_over_valid_regions():
    regions = torch.randn(1, 1, len(BODY_REGIONS), 8)
    valid = torch.tensor([[[True, True, True, True, False, True]]])
    out = PoseStyleNet._spatial_synergy(regions, valid)[0, 0]
    h = regions[0, 0]
    cos = (h @ h.T) / (h.norm(dim=1)[:, None] * h.norm(dim=1)[None] + 1e-6)   # eq. (8)
    keep = valid[0, 0]
    r = cos[keep][:, keep]
    n = int(keep.sum())
    expected = (r.sum(0) / n ** 2) @ h[keep]         # mean over a of (1/n) sum_b R_ab H_b
    torch.testing.assert_close(out, expected)


def test_diagnostics_are_distributions_over_valid_windows_and_regions():
    net = _net().eval()
    batch = make_batch(4, seed=2)
    with torch.no_grad():
        out = net(batch)
    mask = batch.segment_mask
    torch.testing.assert_close(out.segment_weights.sum(1), torch.ones(4))
    assert torch.all(out.segment_weights[~mask] == 0) and torch.all(out.segment_weights[mask] > 0)
    assert out.region_weights.shape == (4, len(BODY_REGIONS)) == (4, len(layers.REGION_NAMES))
    torch.testing.assert_close(out.region_weights.sum(1), torch.ones(4))
    assert torch.all(out.stage_states[~mask] == 0)
    # without attention there is no region weighting to show; without eq. (11), a plain mean
    with torch.no_grad():
        assert _net(use_attention=False).eval()(batch).region_weights is None
        uniform = _net(use_cross_stage_aggregation=False).eval()(batch).segment_weights
    torch.testing.assert_close(uniform, mask.float() / mask.sum(1, keepdim=True))


@pytest.mark.parametrize("switch", SWITCHES)
def test_each_ablation_switch_changes_the_computation(switch):
    batch = make_batch(4, seed=7)
    full = _net(seed=1).eval()
    ablated = _net(seed=1, **{switch: False}).eval()
    full_names = {n for n, _ in full.named_parameters()}
    ablated_names = {n for n, _ in ablated.named_parameters()}
    fragment = SWITCH_PARAMETERS[switch]
    if fragment is None:
        assert ablated_names == full_names
    else:
        assert any(fragment in n for n in full_names)
        assert not any(fragment in n for n in ablated_names)
        assert ablated.num_parameters() < full.num_parameters()
    # Weights away from their initialisation (fresh attention scores are ~0, i.e. a plain mean,
    # which would hide the switch), then every weight the two models share is shared.
    with torch.no_grad():
        for p in full.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    state = {k: v for k, v in full.state_dict().items()
             if k in ablated.state_dict() and ablated.state_dict()[k].shape == v.shape}
    ablated.load_state_dict(state, strict=False)
    with torch.no_grad():
        a, b = full(batch), ablated(batch)
    assert (a.embedding - b.embedding).abs().max() > 1e-4
    torch.testing.assert_close(b.embedding.norm(dim=1), torch.ones(4))
    state_change = (a.stage_states - b.stage_states).abs().max()
    if switch in ("use_segment_fusion", "use_cross_stage_aggregation"):
        assert state_change == 0      # these act after the relation layers
    else:
        assert state_change > 1e-2


def test_all_switches_off_still_trains():
    net = _net(**{s: False for s in SWITCHES}).train()
    batch = make_batch(3, seed=8)
    out = net(batch)
    torch.nn.functional.cross_entropy(out.logits, batch.labels).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_chunked_inference_matches_one_chunk(monkeypatch):
    net = _net().eval()
    batch = make_batch(5, seed=9)
    with torch.no_grad():
        whole = net(batch)
        monkeypatch.setattr("encoder.models.posestyle_net.EVAL_WINDOW_CHUNK", 2)
        chunked = net(batch)
    torch.testing.assert_close(chunked.embedding, whole.embedding, atol=1e-5, rtol=1e-4)


def test_default_size_is_small():
    net = build_model("posestyle_net")
    assert isinstance(net.config, PoseStyleNetConfig)
    assert 300_000 <= net.num_parameters() <= 1_500_000      # target; the paper's model is 8.1 M
    assert build_model("posestyle_net", {"in_dims": 3}).num_parameters() < 8_100_000


def test_window_phase_enters_only_through_the_temporal_relation():
    batch = make_batch(3, seed=10, segments=(3, 4))
    shifted = make_batch(3, seed=10, segments=(3, 4))
    shifted.phase = torch.where(batch.segment_mask, batch.phase ** 2, batch.phase)
    for on in (True, False):
        net = _net(seed=2, use_temporal_relation=on).eval()
        with torch.no_grad():
            a, b = net(batch), net(shifted)
        assert torch.equal(a.embedding, b.embedding) != on
