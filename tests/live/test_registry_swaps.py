"""``sentio live --registry DIR``: the loop serves the registry's current version and swaps at
the next bar when another is promoted, with positions carried over, each swap an audited
event with both manifest hashes and the gate's numbers; a version that cannot take over the
running stream context is refused and the incumbent keeps trading; the audit verifies."""

from __future__ import annotations

import numpy as np
import pytest

from sentio.audit.store import AuditStore
from sentio.audit.verify import verify_run
from sentio.backtest.strattest import StrattestConfig
from sentio.live.config import LiveConfig
from sentio.live.loop import LiveLoop
from sentio.model.versions import ModelRegistry
from tests.live.conftest import audit_events


def train(out, **model):
    from sentio.data.synth.generate import SynthConfig
    from sentio.model.config import TFAConfig
    from sentio.train.pipeline import TrainRun, run_training
    from sentio.train.samples import LabelSpec
    from sentio.train.trainer import TrainConfig

    shape = {"d_model": 16, "nhead": 2, "num_layers": 1, "seq_len": 8, **model}
    run_training(
        TrainRun(
            data=["builtin"],
            output=out,
            model=TFAConfig(**shape),
            train=TrainConfig(epochs=3, batch_size=128, learning_rate=1e-3, patience=10, seed=4),
            label=LabelSpec(horizon=3),
            builtin=SynthConfig(seed=3, days=12),
        )
    )
    return out


@pytest.fixture(scope="module")
def versions(tmp_path_factory, tiny_artifact, retrained_artifact):
    """A registry with the tiny model (current), a retrained one (same recipe, seed 4) and one
    whose window is longer (16 rows: it cannot take over an 8-row context)."""
    root = tmp_path_factory.mktemp("reg")
    registry = ModelRegistry(root / "registry")
    first = registry.publish(tiny_artifact, "first")
    second = registry.publish(retrained_artifact, "retrained")
    longer = registry.publish(train(root / "longer", seq_len=16), "a longer window")
    registry.promote(first, "go live")
    return registry, first, second, longer


def test_two_gated_swaps_and_a_refused_one(tmp_path, versions):
    registry, first, second, longer = versions
    config = LiveConfig(
        trading=StrattestConfig(cache_dir=None), feed="replay:builtin", registry=registry.folder
    )
    plan = {200: (second, {"log_loss_margin": 0.01}), 400: (longer, None), 600: (first, None)}
    seen = []

    def promote_on_schedule(status):  # a retrainer, promoting between bars
        seen.append(status)
        if len(seen) in plan:
            version, gate = plan[len(seen)]
            registry.promote(version, f"at bar {len(seen)}", gate=gate)

    store = AuditStore(tmp_path / "audit.db")
    try:
        result = LiveLoop(config, state_dir=tmp_path / "state", store=store,
                          on_bar=promote_on_schedule).run()  # fmt: skip
        verdict = verify_run(store, result["run_id"], full=True)
    finally:
        store.close()
    assert verdict.ok, verdict.problem
    swaps = [(t, p) for t, _, p in audit_events(tmp_path / "audit.db", "swap")]
    assert [(p["ok"], p.get("version")) for _, p in swaps] == [
        (True, second),
        (False, longer),
        (True, first),
    ]
    assert swaps[0][1]["gate"] == {"log_loss_margin": 0.01}
    assert swaps[0][1]["from_manifest"] != swaps[0][1]["to_manifest"]
    assert "16 rows" in swaps[1][1]["detail"]
    bars = [t for t, _, _ in audit_events(tmp_path / "audit.db", "bar")]
    assert len(bars) == result["bars"] == len(seen)  # trading went on through every swap
    assert swaps[0][0] == bars[200] and swaps[2][0] == bars[600]  # at the next bar boundary
    assert result["counts"]["swaps"] == 2 and result["counts"]["swaps_refused"] == 1
    assert verdict.checked["stream"]["of"] == 200  # the re-run covers the first model's bars
    assert verdict.checked["parity"]["bars_differ"] == 0


def test_a_registry_without_a_current_version_is_refused(tmp_path, tiny_artifact):
    from sentio.core.errors import LiveError

    registry = ModelRegistry(tmp_path / "registry")
    registry.publish(tiny_artifact)
    config = LiveConfig(
        trading=StrattestConfig(cache_dir=None), feed="replay:builtin", registry=registry.folder
    )
    with pytest.raises(LiveError, match="no current version"):
        LiveLoop(config)


def test_a_model_past_its_expiry_does_not_trade(tmp_path, tiny_artifact):
    """--expire-after 1: bars more than one session past the model's validation end are
    decided flat (a model_expired risk event when that begins), the ones before trade."""
    from sentio.data.trading_calendar import locate
    from sentio.model.artifact import read_meta

    config = LiveConfig(
        trading=StrattestConfig(model=tiny_artifact, cache_dir=None),
        feed="replay:builtin",
        expire_after=1,
    )
    store = AuditStore(tmp_path / "audit.db")
    try:
        LiveLoop(config, store=store).run()
    finally:
        store.close()
    last = read_meta(tiny_artifact)["data"]["splits"]["validation"]["last_ts"]
    events = audit_events(tmp_path / "audit.db")
    bar_ts = [t for t, k, _ in events if k == "bar"]
    session = dict(zip(bar_ts, locate(np.array(bar_ts, dtype=np.int64))[1].tolist(), strict=True))
    data_session = int(locate(np.array([last], dtype=np.int64))[1][0])
    expired = [t for t in bar_ts if session[t] - data_session > 1]
    assert expired and len(expired) < len(bar_ts)  # the replay crosses the expiry
    risk = [(t, p) for t, k, p in events if k == "risk"]
    assert [(t, p["reason"]) for t, p in risk] == [(expired[0], "model_expired")]
    buys = [t for t, k, p in events if k == "order" and p["side"] == "buy"]
    assert buys and all(t < expired[0] for t in buys)  # traded before, never after
