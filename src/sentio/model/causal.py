"""The causal TFA (torch): every row of a chunk gets a logit, attending causally to itself and
the T-1 rows before it, at every layer.

raw (B, C, F) -> (x - mean) / std, clipped -> linear embedding -> N pre-norm blocks (explicit
attention as nanoGPT writes it, with a sliding-window causal mask and a learned bias per head
and distance instead of absolute positions: a row's place in a continuous series has no start)
-> LayerNorm -> Linear -> logits (B, C).

A chunk is a run of consecutive ready rows of one segment. Its first row starts from nothing,
as a segment's first ready row does in serving; a row r of the chunk is computed exactly as
serving computes it (which remembers the whole segment) once r is at least
``context_rows - 1`` = L (T - 1) rows past the chunk's start, or the chunk starts where its
segment's ready rows start. Training therefore puts that many rows of context, without loss,
before each chunk's labelled rows (``sentio.train.chunks``).

Serving runs :mod:`sentio.model.causal_runtime` (numba, torch-free) on the weights
:func:`runtime_weights` gives; ``sentio.model.causal_export`` checks the two agree.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from sentio.model.config import ModelConfigError, TFAConfig
from sentio.model.tfa import _init  # the one weight initialisation of both families


class CausalAttention(nn.Module):
    """Multi-head attention from each row to itself and the T-1 rows before it.

    Computed by blocks of T rows: a block's queries see its own keys and the previous
    block's (2T keys, the out-of-window ones masked), so a chunk of C rows costs 2 C T per head
    and not C^2. No dropout on the attention weights (on a C x C or T x 2T matrix it costs more
    than it is worth); the projection's output has it, as every block's MLP does."""

    def __init__(self, cfg: TFAConfig) -> None:
        super().__init__()
        self.nhead, self.d_model, self.seq_len = cfg.nhead, cfg.d_model, cfg.seq_len
        self.head_dim = cfg.d_model // cfg.nhead
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.rel = nn.Parameter(torch.zeros(cfg.nhead, cfg.seq_len))  # bias by distance
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, distance: torch.Tensor) -> torch.Tensor:
        """(B, C, D) -> (B, C, D), C a multiple of T; ``distance`` (T, 2T) int64 from
        :func:`band_distance`."""
        b, c, d = x.shape
        h, hd, t = self.nhead, self.head_dim, self.seq_len
        n = c // t  # blocks
        q, k, v = self.qkv(x).split(d, dim=2)
        q = q.reshape(b, n, t, h, hd).permute(0, 3, 1, 2, 4)  # (B, H, N, T, D/H)
        k = k.reshape(b, n, t, h, hd).permute(0, 3, 1, 2, 4)
        v = v.reshape(b, n, t, h, hd).permute(0, 3, 1, 2, 4)
        k = torch.cat([F.pad(k, (0, 0, 0, 0, 1, 0))[:, :, :-1], k], dim=3)  # (B, H, N, 2T, D/H)
        v = torch.cat([F.pad(v, (0, 0, 0, 0, 1, 0))[:, :, :-1], v], dim=3)
        bias = self.rel[:, distance.clamp(min=0)].masked_fill(distance < 0, float("-inf"))
        bias = bias[:, None].expand(h, n, t, 2 * t).clone()  # (H, N, T, 2T)
        bias[:, 0, :, :t] = float("-inf")  # the first block has no block before it
        att = (q @ k.transpose(-2, -1)) * self.scale + bias  # (B, H, N, T, 2T)
        y = F.softmax(att, dim=-1) @ v  # (B, H, N, T, D/H)
        y = y.permute(0, 2, 3, 1, 4).reshape(b, c, d)  # (B, C, D)
        return self.drop(self.proj(y))


class CausalBlock(nn.Module):
    """Pre-norm block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, cfg: TFAConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = CausalAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.ff_mult * cfg.d_model),
            nn.ReLU(),  # not GELU: erf per hidden unit would cost a streaming step more
            # than the rest of its MLP (bench/causal.py)
            nn.Linear(cfg.ff_mult * cfg.d_model, cfg.d_model),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x: torch.Tensor, distance: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), distance)
        return x + self.mlp(self.ln2(x))


def band_distance(seq_len: int) -> torch.Tensor:
    """(T, 2T) int64: for query row i of a block and key j of the previous block followed by
    this one, the distance i + T - j when it is 0..T-1 (j within the window), else -1.

    >>> band_distance(2).tolist()
    [[-1, 1, 0, -1], [-1, -1, 1, 0]]
    """
    i = torch.arange(seq_len)[:, None]
    j = torch.arange(2 * seq_len)[None, :]
    gap = i + seq_len - j
    return torch.where((gap >= 0) & (gap < seq_len), gap, torch.full_like(gap, -1))


class CausalTFA(nn.Module):
    """The network. ``mean``/``std`` (F,) are the training split's feature statistics."""

    def __init__(self, cfg: TFAConfig, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        if cfg.regime_experts:
            raise ModelConfigError(
                "the causal presets have one plain head; a regime experts head "
                "(--regime-model experts) needs a window preset"
            )
        self.cfg = cfg
        self.register_buffer("mean", mean.float().clone())
        self.register_buffer("std", std.float().clone())
        self.embed = nn.Linear(mean.numel(), cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList([CausalBlock(cfg) for _ in range(cfg.num_layers)])
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, 1)
        self.apply(_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, F) raw feature rows of chunks -> (B, C) logits, one per row."""
        c, t = x.shape[1], self.cfg.seq_len
        distance = band_distance(t).to(x.device)
        x = F.pad(x, (0, 0, 0, -c % t))  # rows after the chunk up to a multiple of T: no
        z = ((x - self.mean) / self.std).clamp(-self.cfg.clip, self.cfg.clip)  # real row sees them
        h = self.drop(self.embed(z))  # (B, C', D)
        for block in self.blocks:
            h = block(h, distance)
        return self.head(self.ln_f(h)).squeeze(-1)[:, :c]  # (B, C)


def runtime_weights(model: CausalTFA) -> dict:
    """The weights as ``sentio.model.causal_runtime.WEIGHTS`` names them (float32 numpy,
    matrices input-major)."""

    def t(linear: nn.Linear):  # (out, in) -> (in, out)
        return linear.weight.detach().T.contiguous().float().numpy()

    def b(linear: nn.Linear):
        return linear.bias.detach().float().numpy()

    blocks = list(model.blocks)

    def stack(fn):
        import numpy as np

        return np.stack([fn(block) for block in blocks])

    return {
        "mean": model.mean.numpy(),
        "std": model.std.numpy(),
        "embed_w": t(model.embed),
        "embed_b": b(model.embed),
        "ln1_w": stack(lambda k: k.ln1.weight.detach().numpy()),
        "ln1_b": stack(lambda k: k.ln1.bias.detach().numpy()),
        "qkv_w": stack(lambda k: t(k.attn.qkv)),
        "qkv_b": stack(lambda k: b(k.attn.qkv)),
        "rel": stack(lambda k: k.attn.rel.detach().numpy()),
        "proj_w": stack(lambda k: t(k.attn.proj)),
        "proj_b": stack(lambda k: b(k.attn.proj)),
        "ln2_w": stack(lambda k: k.ln2.weight.detach().numpy()),
        "ln2_b": stack(lambda k: k.ln2.bias.detach().numpy()),
        "fc_w": stack(lambda k: t(k.mlp[0])),
        "fc_b": stack(lambda k: b(k.mlp[0])),
        "out_w": stack(lambda k: t(k.mlp[2])),
        "out_b": stack(lambda k: b(k.mlp[2])),
        "lnf_w": model.ln_f.weight.detach().numpy(),
        "lnf_b": model.ln_f.bias.detach().numpy(),
        "head_w": model.head.weight.detach().reshape(-1).numpy(),
        "head_b": model.head.bias.detach().reshape(-1).numpy(),
    }


def state_from_runtime(weights: dict) -> dict[str, torch.Tensor]:
    """The state dict (without ``mean``/``std``) that :func:`runtime_weights` came from: a
    warm start reads an artifact's ``model.safetensors`` back into a network."""
    out = {
        "embed.weight": weights["embed_w"].T,
        "embed.bias": weights["embed_b"],
        "ln_f.weight": weights["lnf_w"],
        "ln_f.bias": weights["lnf_b"],
        "head.weight": weights["head_w"][None, :],
        "head.bias": weights["head_b"],
    }
    names = {
        "ln1.weight": "ln1_w", "ln1.bias": "ln1_b", "attn.qkv.weight": "qkv_w",
        "attn.qkv.bias": "qkv_b", "attn.rel": "rel", "attn.proj.weight": "proj_w",
        "attn.proj.bias": "proj_b", "ln2.weight": "ln2_w", "ln2.bias": "ln2_b",
        "mlp.0.weight": "fc_w", "mlp.0.bias": "fc_b", "mlp.2.weight": "out_w",
        "mlp.2.bias": "out_b",
    }  # fmt: skip
    for i in range(len(weights["qkv_w"])):
        for key, name in names.items():
            value = weights[name][i]
            out[f"blocks.{i}.{key}"] = value.T if name.endswith("_w") and value.ndim == 2 else value
    return {k: torch.from_numpy(v.copy()) for k, v in out.items()}


def causal_flops_per_row(cfg: TFAConfig, features: int) -> int:
    """Multiply-adds x 2 of one streaming step (one new row; matrix products and the
    attention over T cached rows).

    >>> causal_flops_per_row(TFAConfig(d_model=4, nhead=1, num_layers=1, seq_len=2, ff_mult=1), 3)
    256
    """
    d, ff, t = cfg.d_model, cfg.ff_mult, cfg.seq_len
    layer = 3 * d * d + d * d + 2 * ff * d * d + 2 * t * d
    return 2 * (features * d + cfg.num_layers * layer + d)


__all__ = [
    "CausalTFA",
    "causal_flops_per_row",
    "runtime_weights",
    "state_from_runtime",
    "band_distance",
]
