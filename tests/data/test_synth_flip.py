"""The planted signal that flips sign every N sessions (``SynthConfig.signal_flip_every``).

Oracles: the lag-1 autocorrelation of the returns, computed here with numpy from the bars alone
(sessions from the New York date of each bar, returns from the closes, standardised by each
session's own standard deviation); the generator's own output with no flip, compared bit for bit;
the real console script for a refused value.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sentio.core import SynthError
from sentio.data.synth import SynthConfig, generate
from sentio.data.synth.generate import MAX_DAYS, signal_sign

RHO, EVERY, DAYS, SEED = 0.2, 10, 40, 3  # four regimes of 10 sessions: +rho, -rho, +rho, -rho


def lag_pairs(frame: pd.DataFrame) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per session (in time order): (z_t, z_{t-1}) of its standardised 1-minute log returns.

    Returns are differences of log closes inside one New York trading date (the overnight gap
    never enters), divided by that session's standard deviation of returns.
    """
    ts = pd.to_datetime(frame["ts"].to_numpy(np.int64), utc=True).tz_convert("America/New_York")
    date = np.asarray(ts.date)
    log_close = np.log(frame["close"].to_numpy(np.float64))
    out = []
    for day in np.unique(date):
        r = np.diff(log_close[date == day])
        z = r / r.std()
        out.append((z[1:], z[:-1]))
    return out


def acf1(pairs) -> tuple[float, int]:
    """Pooled lag-1 correlation over the given sessions' pairs, and the number of pairs."""
    now = np.concatenate([p[0] for p in pairs])
    before = np.concatenate([p[1] for p in pairs])
    return float(np.corrcoef(now, before)[0, 1]), len(now)


def test_the_planted_autocorrelation_is_plus_rho_in_even_regimes_and_minus_rho_in_odd_ones():
    """The tolerance: the sample lag-1 correlation of n pairs has a standard error of about
    1/sqrt(n) (0.011 for the 7,760 pairs of 20 sessions, 0.016 for one regime's 3,880); the
    bar-to-bar changes of scale (intraday profile, GARCH, fat tails) widen it and dilute rho
    slightly (seeds 1-8 at this size: pooled estimates up to 3.8 nominal standard errors from
    rho), so each estimate must lie within 5/sqrt(n) of +-rho. That band (0.057 pooled) is far
    narrower than the 2 rho = 0.4 between the two signs, so a sign error cannot pass."""
    market = generate(
        SynthConfig(seed=SEED, days=DAYS, signal_strength=RHO, signal_flip_every=EVERY)
    )
    pairs = lag_pairs(market.bars["QQQ"].frame)
    assert len(pairs) == DAYS
    sign = np.array([(-1) ** (d // EVERY) for d in range(DAYS)])  # the oracle's own formula
    np.testing.assert_array_equal(signal_sign(market.config), sign)
    measured = {}
    for name, expected, keep in (("even", RHO, sign > 0), ("odd", -RHO, sign < 0)):
        value, n = acf1([p for p, k in zip(pairs, keep, strict=True) if k])
        measured[name] = value
        assert abs(value - expected) < 5 / np.sqrt(n), (name, value, n)
    for k in range(DAYS // EVERY):  # every regime on its own, at its own sample size
        value, n = acf1(pairs[k * EVERY : (k + 1) * EVERY])
        measured[f"regime {k}"] = value
        assert abs(value - (-1) ** k * RHO) < 5 / np.sqrt(n), (k, value, n)
    print("lag-1 autocorrelations:", {k: round(v, 4) for k, v in measured.items()})


def test_no_flip_is_bit_identical_and_the_first_regime_is_untouched():
    """flip 0 = no field given = flip every >= days sessions (all +rho), bit for bit; with a flip,
    the first ``EVERY`` sessions are the unflipped market's bars exactly (same draws, same rho)
    and the next session differs."""
    base = SynthConfig(seed=SEED, days=DAYS, signal_strength=RHO)
    plain = generate(base)
    for flip in (0, DAYS, DAYS + 1, MAX_DAYS):
        again = generate(replace(base, signal_flip_every=flip))
        for symbol, bars in plain.bars.items():
            pd.testing.assert_frame_equal(bars.frame, again.bars[symbol].frame, check_exact=True)
            for column in ("open", "high", "low", "close", "volume"):
                a = bars.frame[column].to_numpy(np.float64)
                assert (
                    a.tobytes() == again.bars[symbol].frame[column].to_numpy(np.float64).tobytes()
                )
        pd.testing.assert_frame_equal(plain.regimes, again.regimes, check_exact=True)
    flipped = generate(
        SynthConfig(seed=SEED, days=DAYS, signal_strength=RHO, signal_flip_every=EVERY)
    )
    a, b = plain.bars["QQQ"].frame, flipped.bars["QQQ"].frame
    day = pd.to_datetime(a["ts"], utc=True).dt.tz_convert("America/New_York").dt.date
    first = (day < sorted(set(day))[EVERY]).to_numpy()
    for column in ("open", "high", "low", "close", "volume"):
        assert a[column].to_numpy()[first].tobytes() == b[column].to_numpy()[first].tobytes()
    assert not np.array_equal(a["close"].to_numpy()[~first], b["close"].to_numpy()[~first])
    pd.testing.assert_frame_equal(plain.regimes, flipped.regimes)  # the regime chain is its own
    assert flipped.bars["QQQ"].meta["generator"]["config"]["signal_flip_every"] == EVERY


def test_old_recorded_configs_without_the_field_still_load():
    recorded = asdict(SynthConfig(seed=SEED, days=5))
    del recorded["signal_flip_every"]
    assert SynthConfig(**recorded).signal_flip_every == 0


@pytest.mark.parametrize("bad", [-1, MAX_DAYS + 1, 2.5, True, "3", None])
def test_bad_flip_values_are_refused(bad):
    with pytest.raises(SynthError, match="--signal-flip-every"):
        generate(SynthConfig(days=5, signal_flip_every=bad))


def test_the_console_script_refuses_a_negative_flip_in_one_line(tmp_path):
    script = Path(sys.executable).with_name("sentio")
    if not script.exists():
        pytest.skip(f"console script not installed next to the interpreter: {script}")
    out = tmp_path / "market"
    done = subprocess.run(
        [
            str(script),
            "data",
            "synth",
            "--signal-flip-every",
            "-1",
            "--days",
            "2",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--signal-flip-every" in lines[0], done.stderr
    assert not out.exists()
