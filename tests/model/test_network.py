"""The TFA network: shapes, normalisation inside the graph, and attention against torch's own
scaled_dot_product_attention (an independent implementation)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="torch is a train extra")

from sentio.model.config import ModelConfigError, TFAConfig, preset  # noqa: E402
from sentio.model.tfa import TFA, SelfAttention, flops_per_window  # noqa: E402


def test_shapes_and_presets():
    cfg = preset("quick", seq_len=12)
    model = TFA(cfg, torch.zeros(5), torch.ones(5)).eval()
    assert model(torch.randn(3, 12, 5)).shape == (3, 1)
    assert (cfg.d_model, cfg.nhead, cfg.num_layers) == (64, 4, 2)
    assert preset("default") == TFAConfig(d_model=128, nhead=8, num_layers=3, seq_len=48)
    with pytest.raises(ModelConfigError, match="not divisible"):
        preset("quick", nhead=5)


def test_raw_features_are_normalised_inside_the_graph():
    torch.manual_seed(0)
    cfg = TFAConfig(d_model=16, nhead=2, num_layers=1, seq_len=6, dropout=0.0)
    mean, std = torch.tensor([100.0, -3.0]), torch.tensor([5.0, 0.5])
    model = TFA(cfg, mean, std).eval()
    unit = TFA(cfg, torch.zeros(2), torch.ones(2)).eval()
    unit.load_state_dict({**model.state_dict(), "mean": torch.zeros(2), "std": torch.ones(2)})
    z = torch.randn(4, 6, 2)
    with torch.no_grad():
        assert torch.allclose(model(z * std + mean), unit(z), atol=1e-5)


def test_explicit_attention_equals_torch_sdpa():
    torch.manual_seed(1)
    cfg = TFAConfig(d_model=32, nhead=4, num_layers=1, seq_len=10, dropout=0.0)
    attn = SelfAttention(cfg).eval()
    x = torch.randn(2, 10, 32)
    q, k, v = attn.qkv(x).split(32, dim=2)
    heads = [t.view(2, 10, 4, 8).transpose(1, 2) for t in (q, k, v)]
    y = torch.nn.functional.scaled_dot_product_attention(*heads)
    expected = attn.proj(y.transpose(1, 2).reshape(2, 10, 32))
    with torch.no_grad():
        assert torch.allclose(attn(x), expected, atol=1e-6)


def test_flops_count_matches_a_hand_count():
    # T=2, D=4, F=3, one layer (the last: only its keys and values span both rows), ff 1:
    # embed 2*3*4 = 24 MACs; qkv 2*48, proj 16, mlp 32, scores and mixing 2*(1*2*4) -> 160;
    # head 4: 188 MACs = 376 FLOPs
    cfg = TFAConfig(d_model=4, nhead=1, num_layers=1, seq_len=2, ff_mult=1)
    assert flops_per_window(cfg, 3) == 376


def test_last_block_on_the_last_row_alone_is_the_same_function():
    """The network against itself with every block computed on every row (the textbook
    transformer) and the last row taken at the end."""
    torch.manual_seed(2)
    cfg = TFAConfig(d_model=32, nhead=4, num_layers=3, seq_len=12, dropout=0.0)
    model = TFA(cfg, torch.zeros(5), torch.ones(5)).eval()
    x = torch.randn(7, 12, 5)
    with torch.no_grad():
        h = model.embed(((x - model.mean) / model.std).clamp(-cfg.clip, cfg.clip)) + model.pos
        for block in model.blocks:
            h = block(h)  # every row
        full = model.head(model.ln_f(h)[:, -1, :])
        assert torch.allclose(model(x), full, atol=1e-6)
