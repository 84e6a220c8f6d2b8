"""The causal network and its torch-free runtime.

Oracles: the torch module (``sentio.model.causal``, written with nn.Linear, nn.LayerNorm and
F.softmax) for the runtime's numbers; the definition of causal attention (a row's logit cannot
change when a later row changes, nor when a row more than L (T - 1) rows back changes) for
the module; and the runtime's own step run one row at a time for its batch driver (the
contract is bit equality between the two).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the causal module is torch (train extra)")

from sentio.core.errors import ArtifactError  # noqa: E402
from sentio.model.causal import (  # noqa: E402
    CausalTFA,
    causal_flops_per_row,
    runtime_weights,
    state_from_runtime,
)
from sentio.model.causal_runtime import CausalNet, context_rows  # noqa: E402
from sentio.model.config import TFAConfig, preset  # noqa: E402
from sentio.model.tfa import flops_per_window  # noqa: E402
from sentio.model.weights import from_bytes, to_bytes  # noqa: E402
from sentio.train.chunks import plan_chunks, run_starts  # noqa: E402
from sentio.train.trainer import predict_logits  # noqa: E402

F = 7
CFG = TFAConfig(d_model=16, nhead=2, num_layers=2, seq_len=6, dropout=0.0, family="causal")


def network(seed: int = 0, cfg: TFAConfig = CFG) -> CausalTFA:
    """A causal network with every weight drawn (biases and the distance bias included, so
    none of them is tested at zero)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    mean = torch.from_numpy(rng.normal(0, 1, F).astype(np.float32))
    std = torch.from_numpy(rng.uniform(0.5, 2, F).astype(np.float32))
    model = CausalTFA(cfg, mean, std)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return model.eval()


def rows(n: int, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).normal(0, 2, (n, F))).astype(np.float32)


def torch_logits(model: CausalTFA, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)[None])[0].numpy()


def served(model: CausalTFA) -> CausalNet:
    return CausalNet(runtime_weights(model), CFG.seq_len, CFG.nhead, CFG.clip)


def test_runtime_reproduces_the_torch_network():
    model, x = network(), rows(60)
    net = served(model)
    got = net.run(net.state(), x)
    want = torch_logits(model, x)
    t = CFG.seq_len
    assert np.isnan(got[: t - 1]).all()  # fewer than T rows held: no logit
    np.testing.assert_allclose(got[t - 1 :], want[t - 1 :], atol=1e-5, rtol=0)


def test_a_row_depends_on_no_later_row_and_on_at_most_its_reach():
    model, x = network(), rows(40)
    base = torch_logits(model, x)
    reach = context_rows(CFG.num_layers, CFG.seq_len)  # 2 * 5 + 1 = 11
    later = x.copy()
    later[30:] += 5.0
    np.testing.assert_array_equal(torch_logits(model, later)[:30], base[:30])
    far = x.copy()
    far[30 - reach] += 5.0  # one row beyond the reach of row 30
    assert torch_logits(model, far)[30] == pytest.approx(base[30], abs=1e-6)
    near = x.copy()
    near[30 - reach + 1] += 5.0  # the oldest row within it
    assert abs(torch_logits(model, near)[30] - base[30]) > 1e-4


def test_one_row_at_a_time_gives_the_bits_of_the_whole_series():
    model, x = network(), rows(80)
    net = served(model)
    ready = np.ones(80, bool)
    ready[:3] = ready[50:54] = False  # warm-up at each segment's start (readiness then holds)
    segment = np.repeat([0, 1], [50, 30])
    batch = net.series(x, ready, segment)
    state, one = net.state(), []
    for i in range(80):
        reset = np.array([i == 50])
        one.append(net.run(state, x[i : i + 1], ready[i : i + 1], reset)[0])
    np.testing.assert_array_equal(np.array(one), batch)  # NaN where NaN, equal bits elsewhere
    # step (the stream context's call: no per-call dispatch once compiled) gives the same bits,
    # also for a read-only row, which takes the dispatched path
    state, stepped = net.state(), []
    for i in range(80):
        row = x[i : i + 1].copy()
        row.flags.writeable = i % 7 != 3
        stepped.append(net.step(state, row, bool(ready[i]), i == 50))
    np.testing.assert_array_equal(np.array(stepped), batch)
    # NaN exactly where the window rule says there is no window
    from sentio.model.windows import valid_windows

    assert (~np.isnan(batch) == valid_windows(segment, ready, CFG.seq_len)).all()


def test_a_state_rebuilt_from_the_reach_is_bit_identical_and_not_from_less():
    model, x = network(), rows(120)
    net = served(model)
    full = net.run(net.state(), x)
    reach = net.context_rows
    for start in (40, 77):
        exact = net.run(net.state(), x[start - reach + 1 :])[reach - 1 :]
        np.testing.assert_array_equal(exact, full[start:])
        short = net.run(net.state(), x[start - reach + 2 :])[reach - 2 :]
        assert not np.array_equal(short, full[start:])


def test_chunked_prediction_matches_the_runtime_on_every_labelled_row():
    """predict_logits of a causal model (chunks with context, the training path's
    arithmetic) agrees with the serving runtime over the whole series."""
    model, x = network(), rows(300)
    segment = np.repeat([0, 1], [180, 120])
    ready = np.ones(300, bool)
    ready[180:184] = False
    net = served(model)
    want = net.series(x, ready, segment)
    targets = np.flatnonzero(~np.isnan(want))[::3]
    got = predict_logits(model, x, targets, CFG.seq_len, "cpu", starts=run_starts(segment, ready))
    np.testing.assert_allclose(got, want[targets], atol=1e-5, rtol=0)


def test_chunks_never_cross_a_run_and_carry_the_context():
    segment = np.repeat([0, 1], [50, 50])
    ready = np.ones(100, bool)
    ready[:5] = False
    starts = run_starts(segment, ready)
    plan = plan_chunks(np.array([5, 30, 49, 50, 99]), starts, context=11, span=20)
    for (lo, hi), first in zip(plan.bounds, [5, 30, 50, 99], strict=True):
        assert starts[lo] == starts[hi - 1]  # one run
        assert lo == max(starts[first], first - 10)  # reach - 1 rows of context
    assert plan.chunk.tolist() == [0, 1, 1, 2, 3]  # 30 and 49 share a chunk, 50 starts a run


def test_weights_file_round_trip_and_damage():
    model = network()
    blob = to_bytes(runtime_weights(model))
    assert to_bytes(runtime_weights(model)) == blob  # same arrays, same bytes
    back = from_bytes(blob, "model.safetensors")
    rebuilt = CausalTFA(CFG, model.mean, model.std)
    missing, unexpected = rebuilt.load_state_dict(state_from_runtime(back), strict=False)
    assert set(missing) == {"mean", "std"} and not unexpected
    x = rows(30)
    np.testing.assert_array_equal(torch_logits(rebuilt.eval(), x), torch_logits(model, x))
    with pytest.raises(ArtifactError, match="model.safetensors: header length"):
        from_bytes(blob[:20], "model.safetensors")
    with pytest.raises(ArtifactError, match="too short"):
        from_bytes(b"\x01", "model.safetensors")


def test_flop_counts_of_the_presets():
    """Independent count for the quick presets (F = 55, T = 48, d = 64, L = 2, ff = 4):
    a step is 55*64 + 2 * (12 * 64^2 + 2*48*64) + 64 multiply-adds."""
    step = causal_flops_per_row(preset("causal-quick"), 55)
    assert step == 2 * (55 * 64 + 2 * (12 * 64 * 64 + 2 * 48 * 64) + 64)
    window = flops_per_window(preset("quick"), 55)
    assert window / step > 20  # the goal for per-bar FLOPs
    assert (
        flops_per_window(preset("default"), 55) / causal_flops_per_row(preset("causal-default"), 55)
        > 20
    )


def test_the_causal_presets_refuse_an_experts_head():
    from sentio.model.config import ModelConfigError

    cfg = TFAConfig(d_model=16, nhead=2, num_layers=1, seq_len=6, family="causal", regime_experts=3)
    with pytest.raises(ModelConfigError, match="one plain head"):
        CausalTFA(cfg, torch.zeros(F), torch.ones(F))
