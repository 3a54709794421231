"""Eq. (13) and eq. (14): values against brute force, masking, switches and gradients."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from encoder.models import StyleLoss, StyleLossConfig, StyleOutput, build_model
from encoder.models.losses import pair_terms, smoothness_term
from tests.encoder.models.models_support import make_batch, tiny_config


def _unit(n: int, d: int, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


def test_pair_terms_match_brute_force_and_skip_unknown_labels():
    emb = _unit(7, 5, 0)
    labels = torch.tensor([0, 1, 0, 2, 1, -1, 0])
    delta = 1.3
    compact, margin = pair_terms(emb, labels, delta)
    same, diff = [], []
    for i, j in itertools.combinations(range(7), 2):
        if labels[i] < 0 or labels[j] < 0:
            continue
        d = (emb[i] - emb[j]).norm()
        (same if labels[i] == labels[j] else diff).append(d)
    torch.testing.assert_close(compact, torch.stack(same).pow(2).mean())
    torch.testing.assert_close(margin, torch.relu(delta - torch.stack(diff)).mean())


def test_compactness_is_zero_for_collapsed_classes_and_margin_zero_when_far_apart():
    emb = torch.eye(4)[[0, 0, 1, 1, 2]]          # same class identical, classes orthogonal
    labels = torch.tensor([0, 0, 1, 1, 2])
    compact, margin = pair_terms(emb, labels, delta=1.2)    # orthogonal distance 1.41 > 1.2
    assert compact.item() == 0.0 and margin.item() == 0.0
    _, tight = pair_terms(emb, labels, delta=1.5)
    torch.testing.assert_close(tight, torch.tensor(1.5 - 2 ** 0.5))


def test_pair_terms_without_pairs_are_zero_and_differentiable():
    emb = _unit(3, 4, 1).requires_grad_()
    compact, margin = pair_terms(emb, torch.tensor([0, 1, -1]), 2.0)
    assert compact.item() == 0.0                  # no same-class pair
    torch.testing.assert_close(margin, 2.0 - (emb[0] - emb[1]).norm())
    alone_compact, alone_margin = pair_terms(emb, torch.tensor([-1, -1, 2]), 1.0)
    (alone_compact + alone_margin).backward()
    assert alone_compact.item() == 0.0 and alone_margin.item() == 0.0 and emb.grad is not None


def test_smoothness_is_eq14_over_consecutive_valid_windows():
    states = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(2))
    mask = torch.tensor([[True, True, True, False, False],
                         [True, True, True, True, True],
                         [True, False, False, False, False]])     # one window: no pair
    value = smoothness_term(states, mask)
    per_seq = []
    for b in range(2):
        valid = states[b][mask[b]]
        per_seq.append((valid[1:] - valid[:-1]).pow(2).sum(-1).mean())   # eq. (14)
    torch.testing.assert_close(value, torch.stack(per_seq).mean())
    garbage = states.clone()
    garbage[~mask] = 1e3
    torch.testing.assert_close(smoothness_term(garbage, mask), value)


def test_style_loss_total_and_switches():
    net = build_model("posestyle_net", tiny_config("posestyle_net"))
    batch = make_batch(6, seed=3)
    out = net(batch)
    cfg = StyleLossConfig(mu1=0.2, mu2=0.3, delta=1.1, mu3=0.05, mu_supcon=0.4)
    terms = StyleLoss(cfg)(out, batch.labels)
    assert set(terms) == {"ce", "compactness", "margin", "smoothness", "supcon", "total"}
    for k, v in terms.items():
        assert v.dim() == 0 and torch.isfinite(v), k
    torch.testing.assert_close(terms["ce"], F.cross_entropy(out.logits, batch.labels))
    expected = (terms["ce"] + 0.2 * terms["compactness"] + 0.3 * terms["margin"] + 0.05 * terms["smoothness"]
                + 0.4 * terms["supcon"])
    torch.testing.assert_close(terms["total"], expected)
    assert terms["smoothness"] > 0
    for switch, name, weight in (("use_compactness", "compactness", 0.2), ("use_margin", "margin", 0.3),
                                 ("use_smoothness", "smoothness", 0.05), ("use_supcon", "supcon", 0.4)):
        off = StyleLoss(mu1=0.2, mu2=0.3, delta=1.1, mu3=0.05, mu_supcon=0.4, **{switch: False})(out, batch.labels)
        torch.testing.assert_close(off["total"], terms["total"] - weight * terms[name])
        assert not off[name].requires_grad and off[name].item() == pytest.approx(terms[name].item())
    with pytest.raises(TypeError):
        StyleLoss(cfg, mu1=1.0)
    with pytest.raises(ValueError):
        StyleLossConfig(delta=3.0)


def test_each_term_sends_gradients_to_the_model():
    net = build_model("posestyle_net", tiny_config("posestyle_net")).train()
    batch = make_batch(6, seed=4)
    for name in ("ce", "compactness", "margin", "smoothness"):
        net.zero_grad()
        terms = StyleLoss()(net(batch), batch.labels)
        terms[name].backward()
        grads = {n: p.grad for n, p in net.named_parameters() if p.grad is not None}
        assert grads, name
        assert all(torch.isfinite(g).all() for g in grads.values()), name
        # every term reaches the per-joint encoder
        assert grads["units.0.spatial.weight"].abs().sum() > 0, name
    # smoothness acts on the window states, before the embedding head
    assert net.head.project.weight.grad is None


def test_unlabelled_items_are_left_out_and_models_without_states_give_zero_smoothness():
    net = build_model("st_mlp", tiny_config("st_mlp"))
    batch = make_batch(4, seed=5)
    out = net(batch)
    labels = batch.labels.clone()
    labels[0] = -1
    terms = StyleLoss()(out, labels)
    torch.testing.assert_close(terms["ce"], F.cross_entropy(out.logits[1:], labels[1:]))
    assert terms["smoothness"].item() == 0.0
    none = StyleLoss()(out, torch.full_like(labels, -1))
    assert none["total"].item() == 0.0 and none["total"].requires_grad


def test_stage_states_without_window_mask_are_refused():
    out = StyleOutput(embedding=_unit(2, 3, 0), logits=torch.zeros(2, 2), stage_states=torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="window_mask"):
        StyleLoss()(out, torch.tensor([0, 1]))


def test_supcon_prefers_embeddings_grouped_by_label():
    import torch.nn.functional as F

    from encoder.models.losses import supervised_contrastive

    labels = torch.tensor([0, 0, 1, 1, -1])
    grouped = F.normalize(torch.tensor([[1.0, 0.1], [1.0, -0.1], [-0.1, 1.0], [0.1, 1.0], [1.0, 1.0]]), dim=-1)
    mixed = F.normalize(torch.tensor([[1.0, 0.1], [-0.1, 1.0], [1.0, -0.1], [0.1, 1.0], [1.0, 1.0]]), dim=-1)
    good = supervised_contrastive(grouped, labels, 0.1)
    bad = supervised_contrastive(mixed, labels, 0.1)
    assert float(good) < float(bad)
    # no positives anywhere: nothing to pull together, the term is zero
    assert float(supervised_contrastive(grouped[:3], torch.tensor([0, 1, 2]), 0.1)) == 0.0
