"""The TFA network (torch): raw features in, one logit out.

raw (B, T, F) -> (x - mean) / std, clipped (statistics fitted on the training split, stored as
buffers) -> linear embedding -> + learned positions -> N pre-norm blocks (explicit attention,
as nanoGPT writes it; no nn.TransformerEncoder, whose inference fast path computes differently
from training) -> LayerNorm -> the last position -> Linear -> logit (B, 1).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from sentio.model.config import TFAConfig


class SelfAttention(nn.Module):
    """Multi-head self-attention over the whole window (every row is in the past of the
    decision bar, so no causal mask is needed)."""

    def __init__(self, cfg: TFAConfig) -> None:
        super().__init__()
        self.nhead = cfg.nhead
        self.head_dim = cfg.d_model // cfg.nhead
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape  # (B, T, D)
        q, k, v = self.qkv(x).split(d, dim=2)
        q = q.view(b, t, self.nhead, self.head_dim).transpose(1, 2)  # (B, H, T, D/H)
        k = k.view(b, t, self.nhead, self.head_dim).transpose(1, 2)
        v = v.view(b, t, self.nhead, self.head_dim).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * self.scale  # (B, H, T, T)
        att = self.drop(F.softmax(att, dim=-1))
        y = (att @ v).transpose(1, 2).contiguous().view(b, t, d)  # (B, T, D)
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TFA(nn.Module):
    """The network. ``mean``/``std`` (F,) are the training split's feature statistics."""

    def __init__(self, cfg: TFAConfig, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("mean", mean.float().clone())
        self.register_buffer("std", std.float().clone())
        features = mean.numel()
        self.embed = nn.Linear(features, cfg.d_model)
        self.pos = nn.Parameter(torch.zeros(cfg.seq_len, cfg.d_model))
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.num_layers)])
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, 1)
        self.apply(_init)
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = ((x - self.mean) / self.std).clamp(-self.cfg.clip, self.cfg.clip)  # (B, T, F)
        h = self.drop(self.embed(z) + self.pos)  # (B, T, D)
        for block in self.blocks:
            h = block(h)
        return self.head(self.ln_f(h)[:, -1, :])  # (B, 1) logit


def _init(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)


def flops_per_window(cfg: TFAConfig, features: int) -> int:
    """Multiply-adds x 2 of one forward pass over one window (matrix products only).

    >>> flops_per_window(TFAConfig(d_model=4, nhead=1, num_layers=1, seq_len=2, ff_mult=1), 3)
    504
    """
    t, d = cfg.seq_len, cfg.d_model
    per_layer = t * (3 * d * d + d * d + 2 * cfg.ff_mult * d * d) + 2 * t * t * d
    return 2 * (t * features * d + cfg.num_layers * per_layer + d)


__all__ = ["TFA", "Block", "SelfAttention", "flops_per_window"]
