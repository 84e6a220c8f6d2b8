"""The regime mixture-of-experts head (``TFAConfig.regime_experts``): K = 0 is the plain
network unchanged; K >= 2 mixes K expert logits by the raw regime columns of the decision row.
Oracles: hand-written parameter lists and config dicts (what artifacts stored before the field
existed), the head computed by hand from the module's own pieces, and ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is a train extra")

from sentio.model.config import ModelConfigError, TFAConfig, preset  # noqa: E402
from sentio.model.tfa import TFA, flops_per_window  # noqa: E402

CFG = dict(d_model=16, nhead=2, num_layers=2, seq_len=6, dropout=0.0)
FEATURES, K = 7, 3


def plain_parameters(d: int, features: int, t: int, ff: int) -> list[tuple[str, tuple]]:
    """The plain network's state_dict, written out by hand (names, shapes, order)."""
    out = [("pos", (t, d)), ("mean", (features,)), ("std", (features,))]  # own params, buffers
    out += [("embed.weight", (d, features)), ("embed.bias", (d,))]
    for i in range(CFG["num_layers"]):
        b = f"blocks.{i}."
        out += [(b + "ln1.weight", (d,)), (b + "ln1.bias", (d,))]
        out += [(b + "attn.qkv.weight", (3 * d, d)), (b + "attn.qkv.bias", (3 * d,))]
        out += [(b + "attn.proj.weight", (d, d)), (b + "attn.proj.bias", (d,))]
        out += [(b + "ln2.weight", (d,)), (b + "ln2.bias", (d,))]
        out += [(b + "mlp.0.weight", (ff * d, d)), (b + "mlp.0.bias", (ff * d,))]
        out += [(b + "mlp.2.weight", (d, ff * d)), (b + "mlp.2.bias", (d,))]
    out += [
        ("ln_f.weight", (d,)),
        ("ln_f.bias", (d,)),
        ("head.weight", (1, d)),
        ("head.bias", (1,)),
    ]
    return out


def build(k: int, seed: int = 0) -> TFA:
    torch.manual_seed(seed)
    cfg = TFAConfig(**CFG, regime_experts=k)
    return TFA(cfg, torch.zeros(FEATURES), torch.ones(FEATURES)).eval()


def hidden(model: TFA, x: torch.Tensor) -> torch.Tensor:
    """The head's input, (B, D), through the module's pieces with every block on every row."""
    cfg = model.cfg
    h = model.embed(((x - model.mean) / model.std).clamp(-cfg.clip, cfg.clip)) + model.pos
    for block in model.blocks:
        h = block(h)
    return model.ln_f(h)[:, -1, :]


def windows(n: int, gates: torch.Tensor, seed: int = 3) -> torch.Tensor:
    """Random windows whose last K columns hold ``gates`` (n, K) on every row."""
    x = torch.randn(n, CFG["seq_len"], FEATURES, generator=torch.Generator().manual_seed(seed))
    x[:, :, -K:] = gates[:, None, :]
    return x


def test_plain_config_is_unchanged():
    cfg = TFAConfig(**CFG)
    old_keys = ["d_model", "nhead", "num_layers", "seq_len", "ff_mult", "dropout", "clip"]
    assert list(cfg.to_dict()) == old_keys  # what old artifacts stored as "config"
    assert list(preset("quick").to_dict()) == old_keys
    assert TFAConfig(**CFG, regime_experts=4).to_dict()["regime_experts"] == 4
    model = build(0)
    got = [(name, tuple(v.shape)) for name, v in model.state_dict().items()]
    assert got == plain_parameters(16, FEATURES, 6, 4)
    x = torch.randn(4, 6, FEATURES)
    with torch.no_grad():
        expected = hidden(model, x) @ model.head.weight.T + model.head.bias
        assert torch.allclose(model(x), expected, atol=1e-6)


def test_config_validation():
    for bad in (1, -1, 17, True, 2.0):
        with pytest.raises(ModelConfigError, match="regime_experts"):
            TFAConfig(regime_experts=bad)
    assert preset("quick", regime_experts=16).regime_experts == 16
    with pytest.raises(ModelConfigError, match="only 2 features"):
        TFA(TFAConfig(**CFG, regime_experts=3), torch.zeros(2), torch.ones(2))


def test_one_hot_gate_picks_an_expert_and_soft_gates_mix_them():
    model = build(K)
    assert model.head.weight.shape == (K, 16)
    one_hot = torch.eye(K).repeat(2, 1)  # (6, K): e_0, e_1, e_2, e_0, ...
    x = windows(6, one_hot)
    with torch.no_grad():
        experts = hidden(model, x) @ model.head.weight.T + model.head.bias  # (6, K) by hand
        picked = experts[torch.arange(6), torch.arange(6) % K]
        assert torch.allclose(model(x).reshape(-1), picked, atol=1e-6)
        soft = torch.softmax(torch.randn(6, K, generator=torch.Generator().manual_seed(4)), -1)
        x = windows(6, soft)
        experts = hidden(model, x) @ model.head.weight.T + model.head.bias
        mixed = (experts * soft).sum(-1)  # the convex combination
        assert torch.allclose(model(x).reshape(-1), mixed, atol=1e-6)


def test_only_the_decision_row_gates():
    model = build(K)
    x = windows(3, torch.eye(K))
    y = x.clone()
    y[:, -1, -K:] = torch.eye(K)[[1, 2, 0]]
    with torch.no_grad():
        experts = hidden(model, y) @ model.head.weight.T + model.head.bias
        assert torch.allclose(model(y).reshape(-1), experts[[0, 1, 2], [1, 2, 0]], atol=1e-6)


def test_flops_count_the_wider_head():
    # the plain hand count (test_network.py) is 376; K = 3 widens the head from 4 to 12 MACs
    cfg = TFAConfig(d_model=4, nhead=1, num_layers=1, seq_len=2, ff_mult=1, regime_experts=3)
    assert flops_per_window(cfg, 3) == 376 + 2 * 8


def test_export_round_trip_matches_onnx_runtime():
    pytest.importorskip("onnxruntime", reason="onnxruntime is an infer extra")
    from sentio.model.export import export
    from sentio.model.runtime import OnnxModel

    model = build(K)
    gates = torch.eye(K)[torch.randint(0, K, (16,), generator=torch.Generator().manual_seed(5))]
    x = windows(16, gates, seed=6)
    x[:, :-1, -K:] = 0.5  # earlier rows' regime columns must not gate
    w = x.numpy().astype(np.float32)
    onnx_bytes, _, report = export(model, w, {"test": True}, {"test": "1"})
    with torch.no_grad():
        eager = model(x).reshape(-1).numpy()
    np.testing.assert_allclose(OnnxModel(onnx_bytes).logits(w), eager, atol=1e-5, rtol=0)
    assert report["max_abs_diff_onnxruntime"] <= 1e-5
