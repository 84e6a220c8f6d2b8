"""The live loop warns once when its inputs leave what the model was trained on: the tiny
model's own market replayed at 1.6 times the price (every scored bar beyond the clip) gives one
``inputs_out_of_range`` risk event, at the bar where the warning rule is first met, and the run
still verifies; the same market at its own prices gives none."""

from __future__ import annotations

from sentio.audit.store import AuditStore
from sentio.audit.verify import verify_run
from sentio.backtest.strattest import StrattestConfig
from sentio.data import Bars, write_bars
from sentio.infer.ranges import MIN_BARS, WARN_SHARE
from sentio.live.config import LiveConfig
from sentio.live.loop import LiveLoop
from tests.live.conftest import audit_events

PRICES = ["open", "high", "low", "close"]


def config_for(tmp_path, artifact, qqq, scale: float) -> LiveConfig:
    """A replay of ``qqq`` with prices times ``scale`` (siblings simulated from it)."""
    path = tmp_path / f"qqq_{scale}.parquet"
    frame = qqq.assign(**{c: qqq[c] * scale for c in PRICES})
    write_bars(Bars(frame, {"interval_s": 60, "max_gap_min": 5}), path)
    trading = StrattestConfig(model=artifact, cache_dir=None)
    return LiveConfig(trading=trading, feed=f"replay:{path}")


def replay(tmp_path, artifact, qqq, scale: float) -> tuple[dict, list]:
    """The run's result and its audit events; the audit verifies."""
    db = tmp_path / f"audit_{scale}.db"
    store = AuditStore(db)
    try:
        loop = LiveLoop(config_for(tmp_path, artifact, qqq, scale), store=store)
        result = loop.run()
        verdict = verify_run(store, result["run_id"], stream=False)
    finally:
        store.close()
    assert verdict.ok, verdict.problem
    return result, audit_events(db)


def warnings(events: list) -> list:
    return [(ts, e) for ts, k, e in events if k == "risk" and e["reason"] == "inputs_out_of_range"]


def test_shifted_prices_warn_once_at_the_first_bar_the_rule_is_met(tmp_path, tiny_artifact, market):
    result, events = replay(tmp_path, tiny_artifact, market["QQQ"], 1.6)
    found = warnings(events)
    assert len(found) == 1 and result["counts"]["warned_inputs_out_of_range"] == 1
    ts, payload = found[0]
    decided = [t for t, k, _ in events if k == "bar"]
    assert len(decided) > 2 * MIN_BARS  # the rule held on many bars after, still one warning
    # every scored bar is beyond the clip: the rule (at least MIN_BARS, share > WARN_SHARE) is
    # first met at the MIN_BARS-th decided bar
    assert payload["bars"] == payload["beyond_clip"] == MIN_BARS and ts == decided[MIN_BARS - 1]
    assert payload["share_beyond_clip"] == 1.0 > WARN_SHARE == payload["threshold_share"]


def test_own_prices_give_no_warning(tmp_path, tiny_artifact, market):
    loop = LiveLoop(config_for(tmp_path, tiny_artifact, market["QQQ"], 1.0))  # no audit: faster
    result = loop.run()
    report = loop.stream.range_report()
    assert report["bars"] == result["bars"] > MIN_BARS  # every decided bar was scored
    assert not report["warn"] and "warned_inputs_out_of_range" not in result["counts"]
