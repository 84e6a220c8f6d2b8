"""The TFA network (torch): raw features in, one logit out.

raw (B, T, F) -> (x - mean) / std, clipped (statistics fitted on the training split, stored as
buffers) -> linear embedding -> + learned positions -> N pre-norm blocks (explicit attention,
as nanoGPT writes it; no nn.TransformerEncoder, whose inference fast path computes differently
from training) -> LayerNorm -> the last position -> Linear -> logit (B, 1).

With ``regime_experts`` K >= 2 the head is a mixture of experts gated by regime: Linear gives K
logits (B, K), one per regime, and the logit is their sum weighted by the RAW last K input
columns of the decision row, ``x[:, -1, F-K:]`` (the regime probabilities that ``--multi-regime``
appends: one-hot picks one expert, soft probabilities mix them). K = 0 is the plain head.

Only the last position reaches the head, so the last block computes its queries, attention,
projection and MLP for that position alone (keys and values still span the window): the same
function, about a third fewer FLOPs for the quick preset (``flops_per_window``).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from sentio.model.config import ModelConfigError, TFAConfig


class SelfAttention(nn.Module):
    """Multi-head self-attention over the whole window (every row is in the past of the
    decision bar, so no causal mask is needed)."""

    def __init__(self, cfg: TFAConfig) -> None:
        super().__init__()
        self.nhead = cfg.nhead
        self.d_model, self.seq_len = cfg.d_model, cfg.seq_len
        self.head_dim = cfg.d_model // cfg.nhead
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """(B, T, D) -> (B, T, D), or (B, 1, D) for the last position's query alone.

        Shapes are the config's constants with -1 for the batch, never read from ``x``: the
        exported graph then has no shape arithmetic (Shape/Gather/Concat nodes) to run."""
        t, d, h, hd = self.seq_len, self.d_model, self.nhead, self.head_dim
        q, k, v = self.qkv(x).split(d, dim=2)
        t_q = 1 if last_only else t
        if last_only:
            q = q[:, -1:, :]
        q = q.reshape(-1, t_q, h, hd).transpose(1, 2)  # (B, H, Tq, D/H)
        k = k.reshape(-1, t, h, hd).transpose(1, 2)  # (B, H, T, D/H)
        v = v.reshape(-1, t, h, hd).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * self.scale  # (B, H, Tq, T)
        att = self.drop(F.softmax(att, dim=-1))
        y = (att @ v).transpose(1, 2).reshape(-1, t_q, d)  # (B, Tq, D)
        return self.drop(self.proj(y))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, cfg: TFAConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.ff_mult * cfg.d_model),
            nn.GELU(),
            nn.Linear(cfg.ff_mult * cfg.d_model, cfg.d_model),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """``last_only``: the output at the last position alone, (B, 1, D)."""
        x = (x[:, -1:, :] if last_only else x) + self.attn(self.ln1(x), last_only)
        return x + self.mlp(self.ln2(x))


class TFA(nn.Module):
    """The network. ``mean``/``std`` (F,) are the training split's feature statistics."""

    def __init__(self, cfg: TFAConfig, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("mean", mean.float().clone())
        self.register_buffer("std", std.float().clone())
        features = mean.numel()
        self.experts = cfg.regime_experts  # K; 0: one plain head
        if self.experts > features:
            raise ModelConfigError(
                f"regime_experts {self.experts} needs the last {self.experts} feature columns "
                f"as regime probabilities, but there are only {features} features"
            )
        self.embed = nn.Linear(features, cfg.d_model)
        self.pos = nn.Parameter(torch.zeros(cfg.seq_len, cfg.d_model))
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.num_layers)])
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, max(self.experts, 1))  # one logit per expert
        self.apply(_init)
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = ((x - self.mean) / self.std).clamp(-self.cfg.clip, self.cfg.clip)  # (B, T, F)
        h = self.drop(self.embed(z) + self.pos)  # (B, T, D)
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            h = block(h, last_only=i == last)  # the last block: (B, 1, D)
        logits = self.head(self.ln_f(h)[:, -1, :])  # (B, 1), or (B, K) expert logits
        if not self.experts:
            return logits  # (B, 1) logit
        # gate: the raw regime columns of the decision row (not normalised: probabilities)
        gate = x[:, -1, -self.experts :]  # (B, K)
        return (logits * gate).sum(-1, keepdim=True)  # (B, 1) logit


def _init(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)


def flops_per_window(cfg: TFAConfig, features: int) -> int:
    """Multiply-adds x 2 of one forward pass over one window (matrix products only); the last
    block computes keys and values for every row and the rest for the last row alone; the head
    is d_model x max(regime_experts, 1) (the gate's K products are not matrix products).

    >>> flops_per_window(TFAConfig(d_model=4, nhead=1, num_layers=1, seq_len=2, ff_mult=1), 3)
    376
    """
    t, d, ff = cfg.seq_len, cfg.d_model, cfg.ff_mult
    full = t * (3 * d * d + d * d + 2 * ff * d * d) + 2 * t * t * d
    last = t * 3 * d * d + (d * d + 2 * ff * d * d) + 2 * t * d
    head = d * max(cfg.regime_experts, 1)
    return 2 * (t * features * d + (cfg.num_layers - 1) * full + last + head)


__all__ = ["TFA", "Block", "SelfAttention", "flops_per_window"]
