"""The planted signal whose sign is chosen per regime (``SynthConfig.signal_by_regime``).

Oracles: the generator's own output without the field, compared bit for bit (an empty tuple is
the old market; all +1 is the plain ``signal_strength`` market because the formula multiplies
rho by +1.0, exact in floating point); the sample lag-1 autocorrelation of the returns, computed
here with numpy from the bars alone, within sessions only, grouped by the regime labels the
generator returns; the real console script for refused values.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from sentio.core import SynthError
from sentio.data.synth import SynthConfig, generate, load_params
from sentio.data.synth.generate import regime_path, signal_sign
from tests.cli.badinput import assert_refused, run_script

SIGNS = (1.0, -1.0, 1.0, -1.0)  # bull, bear, sideways, volatile (the calibration's order)
RHO, DAYS, SEED = 0.3, 200, 5  # seed 5: 48/47/61/44 sessions per regime


def same_bytes(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    for column in a.columns:
        x, y = a[column].to_numpy(), b[column].to_numpy()
        if x.dtype == object:
            assert (x == y).all(), column
        else:
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), column


def test_an_empty_tuple_is_the_default_market_byte_for_byte():
    plain = generate(SynthConfig(days=30))
    explicit = generate(SynthConfig(days=30, signal_by_regime=()))
    same_bytes(plain.bars["QQQ"].frame, explicit.bars["QQQ"].frame)
    pd.testing.assert_frame_equal(plain.regimes, explicit.regimes, check_exact=True)


def test_all_plus_one_is_the_plain_signal_market_byte_for_byte():
    plain = generate(SynthConfig(days=30, signal_strength=RHO))
    positive = generate(SynthConfig(days=30, signal_strength=RHO, signal_by_regime=(1.0,) * 4))
    for symbol in plain.bars:
        same_bytes(plain.bars[symbol].frame, positive.bars[symbol].frame)


def test_the_planted_autocorrelation_has_each_regimes_sign():
    """Per regime, the pooled lag-1 correlation of session-standardised 1-minute log returns
    (pairs inside one session only). About 45-60 sessions, so n ~ 17,000-23,000 pairs and a
    standard error near 1/sqrt(n) ~ 0.007; the planted +-0.3 (diluted a little by the changing
    scale, see test_synth_flip) is far outside 5/sqrt(n) of 0, so each sign is unmistakable."""
    market = generate(
        SynthConfig(seed=SEED, days=DAYS, signal_strength=RHO, signal_by_regime=SIGNS)
    )
    frame = market.bars["QQQ"].frame
    assert (frame["ts"].to_numpy() == market.regimes["ts"].to_numpy()).all()
    ts = pd.to_datetime(frame["ts"].to_numpy(np.int64), utc=True).tz_convert("America/New_York")
    date = np.asarray(ts.date)
    regime_id = market.regimes["regime_id"].to_numpy()
    log_close = np.log(frame["close"].to_numpy(np.float64))
    pairs = {k: ([], []) for k in range(len(SIGNS))}
    for day in np.unique(date):
        rows = date == day
        (k,) = np.unique(regime_id[rows])  # one regime per session
        r = np.diff(log_close[rows])
        z = r / r.std()
        pairs[int(k)][0].append(z[1:])
        pairs[int(k)][1].append(z[:-1])
    for k, sign in enumerate(SIGNS):
        now, before = np.concatenate(pairs[k][0]), np.concatenate(pairs[k][1])
        acf = float(np.corrcoef(now, before)[0, 1])
        band = 5 / np.sqrt(len(now))
        assert len(now) > 10_000, (k, len(now))
        assert np.sign(acf) == sign and abs(acf) > band, (k, acf, band)
        assert abs(acf - sign * RHO) < 0.1, (k, acf)


def test_signal_sign_follows_the_regime_path():
    config = SynthConfig(seed=SEED, days=DAYS, signal_by_regime=SIGNS)
    path = regime_path(load_params(), config)
    expected = np.where(path % 2 == 0, 1.0, -1.0)  # bull, sideways +1; bear, volatile -1
    np.testing.assert_array_equal(signal_sign(config, path), expected)
    np.testing.assert_array_equal(signal_sign(config), expected)


def test_the_metadata_round_trips_through_json():
    market = generate(SynthConfig(days=3, signal_strength=RHO, signal_by_regime=SIGNS))
    recorded = json.loads(json.dumps(market.bars["QQQ"].meta["generator"]["config"]))
    assert recorded["signal_by_regime"] == list(SIGNS)
    again = SynthConfig(**recorded)
    assert again == market.config and again.signal_by_regime == SIGNS
    assert hash(again) == hash(market.config)
    old = asdict(SynthConfig(days=3))
    del old["signal_by_regime"]  # a configuration recorded before the field existed
    assert SynthConfig(**old).signal_by_regime == ()


@pytest.mark.parametrize(
    ("config", "says"),
    [
        (SynthConfig(days=3, signal_by_regime=(1.0, -1.0, 1.0)), "one sign per regime"),
        (SynthConfig(days=3, signal_by_regime=(1.0, -1.0, 2.0, 1.0)), "+1 or -1"),
        (SynthConfig(days=3, signal_by_regime=(True, 1.0, 1.0, 1.0)), "+1 or -1"),
        (SynthConfig(days=3, signal_by_regime="1111"), "+1 or -1"),
        (
            SynthConfig(days=3, signal_by_regime=SIGNS, signal_flip_every=2),
            "choose the sign two ways",
        ),
    ],
)
def test_bad_configs_are_refused(config, says):
    with pytest.raises(SynthError, match="--signal-by-regime") as info:
        generate(config)
    assert says in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("value", "extra", "says"),
    [
        ("bull=1,bear=-1,sideways=1", [], "no sign for volatile"),
        ("bull=1,bear=-1,sideways=1,volatile=-1,calm=1", [], "unknown regime"),
        ("bull=2,bear=-1,sideways=1,volatile=-1", [], "SIGN 1, +1 or -1"),
        ("bull=1,bear=-1,sideways=1,volatile=-1,bull=1", [], "given twice"),
        ("bull=1,bear=-1,sideways=1,volatile=-1", ["--signal-flip-every", "3"], "two ways"),
        ("%%garbage%%", [], "NAME=SIGN"),
        ("", [], "NAME=SIGN"),
    ],
    ids=["missing", "unknown", "sign-2", "twice", "with-flip", "garbage", "empty"],
)
def test_the_console_script_refuses_a_bad_value_in_one_line(tmp_path, value, extra, says):
    out = tmp_path / "market"
    done = run_script(
        "sentio",
        "data",
        "synth",
        "--out",
        str(out),
        "--days",
        "3",
        "--signal-by-regime",
        value,
        *extra,
        cwd=tmp_path,
    )
    message = assert_refused(done, "--signal-by-regime", says)
    assert "Traceback" not in message
    assert not out.exists() or not any(out.iterdir())
