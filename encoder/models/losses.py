"""Training objective of PoseStyle-Net: eq. (13) (CE + compactness + margin) and eq. (14).

Normalisation (the paper writes plain sums): the compactness term is the *mean* of
||E_i - E_j||^2 over the batch's same-class pairs i < j, the margin term the *mean* of
max(0, delta - ||E_i - E_k||) over its different-class pairs, so the weights mu1 and mu2 do not
depend on the batch size or its class mix. Items with label -1 (unknown) are left out of CE
and of every pair. The smoothness term (eq. 14) is, per sequence, the mean over consecutive
valid windows of ||Y_{m+1} - Y_m||^2 (padded windows skipped), averaged over the sequences
that have at least two windows; models without stage states contribute 0.
A term switched off is still reported (detached, for monitoring) but not added to ``total``.

Next to the paper's terms, a metric-learning term made for nearest-neighbour search:
supervised contrastive loss (Khosla et al., NeurIPS 2020, the "L_out" form) on the unit-norm
embeddings, weight ``mu_supcon``, temperature ``supcon_temperature``. Every other item of
the batch with the same style is a positive; it shapes the whole neighbourhood of each item,
where eq. (13) only sees pair distances against one margin.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from encoder.models.base import StyleOutput


@dataclass(frozen=True)
class StyleLossConfig:
    """Weights of eq. (13)/(14). ``delta`` is a distance between unit vectors (orthogonal: 1.41)."""

    mu1: float = 0.1      # compactness
    mu2: float = 0.5      # margin
    delta: float = 1.2    # margin between classes
    mu3: float = 1e-3     # smoothness (eq. 14)
    label_smoothing: float = 0.0
    mu_supcon: float = 0.5      # supervised contrastive term (not in the paper)
    supcon_temperature: float = 0.1
    use_compactness: bool = True
    use_margin: bool = True
    use_smoothness: bool = True
    use_supcon: bool = True

    def __post_init__(self) -> None:
        if min(self.mu1, self.mu2, self.mu3) < 0:
            raise ValueError("loss weights mu1, mu2, mu3 must be >= 0")
        if not 0.0 < self.delta <= 2.0:
            raise ValueError(f"delta must be in (0, 2] (unit-norm embeddings), got {self.delta}")
        if self.mu_supcon < 0 or not self.supcon_temperature > 0:
            raise ValueError("mu_supcon must be >= 0 and supcon_temperature > 0")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")


def pair_terms(embedding: torch.Tensor, labels: torch.Tensor,
               delta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. (13) structure terms: mean same-class squared distance, mean different-class hinge."""
    known = labels >= 0
    e, y = embedding[known], labels[known]
    zero = embedding.sum() * 0.0
    if e.shape[0] < 2:
        return zero, zero
    dist2 = (e[:, None, :] - e[None, :, :]).pow(2).sum(-1)
    upper = torch.ones_like(dist2, dtype=torch.bool).triu(1)
    same = (y[:, None] == y[None, :]) & upper
    diff = (y[:, None] != y[None, :]) & upper
    compact = dist2[same].mean() if same.any() else zero
    hinge = torch.relu(delta - torch.sqrt(dist2[diff] + 1e-12))
    margin = hinge.mean() if diff.any() else zero
    return compact, margin


def supervised_contrastive(embedding: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020, L_out) over the batch's known labels.

    For anchor i with positives P(i) (same label, j != i): -1/|P(i)| sum_p log softmax_j(s_ij / t)[p],
    the softmax over every j != i; averaged over anchors that have at least one positive.
    """
    known = labels >= 0
    e, y = F.normalize(embedding[known], dim=-1), labels[known]
    n = e.shape[0]
    if n < 2:
        return embedding.sum() * 0.0
    logits = (e @ e.T) / temperature
    self_mask = torch.eye(n, dtype=torch.bool, device=e.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive = (y[:, None] == y[None, :]) & ~self_mask
    count = positive.sum(1)
    has = count > 0
    if not has.any():
        return embedding.sum() * 0.0
    per_anchor = -(log_prob.masked_fill(~positive, 0.0)).sum(1)[has] / count[has]
    return per_anchor.mean()


def smoothness_term(states: torch.Tensor, window_mask: torch.Tensor) -> torch.Tensor:
    """Eq. (14) averaged over sequences: mean ||Y_{m+1} - Y_m||^2 over consecutive valid windows."""
    # bring each sequence's valid windows to the front, in order, then difference neighbours
    order = torch.argsort((~window_mask).to(torch.int8), dim=1, stable=True)
    ordered = torch.gather(states, 1, order[..., None].expand_as(states))
    count = window_mask.sum(1)                                                    # (B,)
    steps = torch.arange(states.shape[1] - 1, device=states.device)
    pair_valid = (steps[None, :] < (count - 1)[:, None]).to(states.dtype)          # (B, M-1)
    jumps = (ordered[:, 1:] - ordered[:, :-1]).pow(2).sum(-1) * pair_valid
    has_pairs = count >= 2
    if not has_pairs.any():
        return states.sum() * 0.0
    per_seq = jumps.sum(1) / (count - 1).clamp_min(1).to(states.dtype)
    return per_seq[has_pairs].mean()


class StyleLoss(nn.Module):
    """``loss(output, labels) -> {"ce", "compactness", "margin", "smoothness", "supcon", "total"}``.

    Built from a ``StyleLossConfig`` or its fields: ``StyleLoss(mu1=0.1, use_margin=False)``.
    """

    def __init__(self, config: StyleLossConfig | None = None, **fields: Any) -> None:
        super().__init__()
        if config is not None and fields:
            raise TypeError("StyleLoss: pass a StyleLossConfig or its fields, not both")
        self.config = config if config is not None else StyleLossConfig(**fields)

    def forward(self, output: StyleOutput, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """``labels`` (B,) long, -1 where unknown (``PoseBatch.labels``)."""
        c = self.config
        labels = labels.to(output.logits.device)
        known = labels >= 0
        if known.any():
            ce = F.cross_entropy(output.logits[known], labels[known], label_smoothing=c.label_smoothing)
        else:
            ce = output.logits.sum() * 0.0
        compact, margin = pair_terms(output.embedding, labels, c.delta)          # eq. (13)
        if output.stage_states is not None:
            window_mask = output.window_mask
            if window_mask is None:
                raise ValueError("StyleLoss: an output with stage_states needs its window_mask")
            smooth = smoothness_term(output.stage_states, window_mask)           # eq. (14)
        else:
            smooth = output.embedding.sum() * 0.0
        supcon = supervised_contrastive(output.embedding, labels, c.supcon_temperature)
        total = ce
        if c.use_supcon:
            total = total + c.mu_supcon * supcon
        if c.use_compactness:
            total = total + c.mu1 * compact
        if c.use_margin:
            total = total + c.mu2 * margin
        if c.use_smoothness:
            total = total + c.mu3 * smooth
        terms = {"ce": ce, "compactness": compact, "margin": margin, "smoothness": smooth, "supcon": supcon}
        enabled = {"ce": True, "compactness": c.use_compactness, "margin": c.use_margin,
                   "smoothness": c.use_smoothness, "supcon": c.use_supcon}
        out = {k: (v if enabled[k] else v.detach()) for k, v in terms.items()}
        out["total"] = total
        return out
