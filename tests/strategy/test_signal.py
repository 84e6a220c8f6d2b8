"""The signal rules on hand-made probability paths: each reason code where the rules say."""

from __future__ import annotations

import numpy as np

from sentio.core.domain import Reason
from sentio.strategy import StrategyConfig, run_strategy

THRESHOLDS = {"long": 0.6, "short": 0.4}
OPEN = np.full(200, 300.0)  # minutes to the close: far from it


def run(p, config=None, left=None):
    config = config or StrategyConfig(min_hold_bars=0, cooldown_bars=0, hysteresis=0.0)
    left = OPEN[: len(p)] if left is None else left
    exposure, reasons, _ = run_strategy(np.array(p, float), left, config, THRESHOLDS)
    return exposure.tolist(), [r.value for r in reasons]


def test_fitted_thresholds_and_warmup():
    exposure, reasons = run([np.nan, 0.65, 0.5, 0.3])
    assert exposure == [0.0, 1.0, 0.0, -1.0]
    assert reasons == ["warmup", "long", "inside_band", "short"]


def test_short_and_flip_goes_through_flat():
    exposure, reasons = run([0.65, 0.3, 0.3])
    assert exposure == [1.0, 0.0, -1.0]
    assert reasons == ["long", "flip_through_flat", "short"]


def test_hysteresis_keeps_a_position_until_the_exit_margin():
    config = StrategyConfig(min_hold_bars=0, cooldown_bars=0, hysteresis=0.05)
    exposure, reasons = run([0.65, 0.56, 0.54], config)
    assert exposure == [1.0, 1.0, 0.0] and reasons == ["long", "hold", "inside_band"]


def test_min_hold_and_cooldown():
    config = StrategyConfig(min_hold_bars=3, cooldown_bars=2, hysteresis=0.0)
    exposure, reasons = run([0.65, 0.5, 0.5, 0.5, 0.65, 0.65, 0.65], config)
    # entered at bar 0 and held 3 bars (0, 1, 2); out at bar 3; bars 4 and 5 cool down
    assert exposure == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert reasons == [
        "long",
        "min_hold",
        "min_hold",
        "inside_band",
        "cooldown",
        "cooldown",
        "long",
    ]


def test_flat_in_the_last_minutes_of_the_session():
    left = np.array([30.0, 12.0, 9.0, 0.0])
    exposure, reasons = run([0.65, 0.65, 0.65, 0.65], left=left)
    assert exposure == [1.0, 1.0, 0.0, 0.0] and reasons[2:] == ["session_end", "session_end"]


def test_original_band_map():
    config = StrategyConfig(rule="bands", min_hold_bars=0, cooldown_bars=0, hysteresis=0.0)
    exposure, reasons = run([0.75, 0.6, 0.5, 0.42, 0.2, 0.2], config)
    assert reasons == [
        "strong_long",
        "long",
        "inside_band",
        "short",
        "strong_short",
        "strong_short",
    ]
    assert exposure == [3.0, 1.0, 0.0, -1.0, -3.0, -3.0]


def test_adaptive_rule_uses_the_last_250_probabilities():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.45, 0.56, 300)
    config = StrategyConfig(rule="adaptive", min_hold_bars=0, cooldown_bars=0, hysteresis=0.0)
    exposure, reasons = run_strategy(p, np.full(300, 300.0), config, {})[:2]
    assert all(r == Reason.WARMUP for r in reasons[:250])
    for i in (250, 260, 299):
        recent = p[i - 250 : i]
        long_at = max(0.505, np.quantile(recent, 0.70))
        short_at = min(0.495, np.quantile(recent, 0.30))
        expected = 1.0 if p[i] >= long_at else -1.0 if p[i] <= short_at else None
        if expected is not None and reasons[i] in (Reason.LONG, Reason.SHORT):
            assert exposure[i] == expected
        if short_at < p[i] < long_at:
            assert reasons[i] in (Reason.INSIDE_BAND, Reason.FLIP_THROUGH_FLAT)


def test_minutes_left_counts_to_the_exchange_close_half_days_included():
    import pandas as pd

    from sentio.strategy.signal import minutes_left

    times = (
        pd.to_datetime(
            ["2025-09-15 15:50", "2025-09-15 09:30", "2025-11-28 12:58", "2025-09-13 10:00"]
        )
        .tz_localize("America/New_York")
        .tz_convert("UTC")
        .as_unit("ns")
    )
    left = minutes_left(times.asi8)
    # 15:50 bar closes 15:51, 9 minutes before 16:00; 2025-11-28 closes at 13:00 (half day);
    # 2025-09-13 is a Saturday: outside any session
    assert left[:3].tolist() == [9.0, 389.0, 1.0] and left[3] == -np.inf
