"""The built-in market: deterministic, valid, the daily-reset identity, and real QQQ's facts.

Oracles: the identity written out by hand; our own validator for bar consistency; statistics of
the real QQQ files (skipped without them), with their sampling spread measured
by a day-block bootstrap in the test itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sentio.core import SynthError
from sentio.data import import_files, read_bars
from sentio.data.synth import (
    SIBLINGS,
    SynthConfig,
    abs_acf,
    beta,
    calibrate,
    excess_kurtosis,
    generate,
    load_params,
    planted_accuracy,
    session_returns,
    stylized_facts,
    write_market,
)
from tests.conftest import real_file


def test_same_seed_same_market_other_seed_other_market(tmp_path):
    a = generate(SynthConfig(seed=3, days=5))
    b = generate(SynthConfig(seed=3, days=5))
    c = generate(SynthConfig(seed=4, days=5))
    for symbol in a.bars:
        pd.testing.assert_frame_equal(a.bars[symbol].frame, b.bars[symbol].frame)
    assert not a.bars["QQQ"].frame["close"].equals(c.bars["QQQ"].frame["close"])
    one = write_market(a, tmp_path / "a")
    two = write_market(b, tmp_path / "b")
    assert [p.read_bytes() for p in one] == [p.read_bytes() for p in two]


def test_generated_tables_pass_the_importer_rules_and_are_marked_simulated(tmp_path):
    market = generate(SynthConfig(seed=1, days=30, start="2025-06-20"))  # spans the 07-03 half day
    for path in write_market(market, tmp_path)[:-1]:
        bars, report = import_files([path])
        assert report.files[0].dropped == {} and report.files[0].extended_hours == 0
        assert len(bars.frame) == len(market.bars["QQQ"].frame)
        symbol = bars.symbols[0]
        assert market.bars[symbol].is_simulated(symbol)
    per_day = (
        market.bars["QQQ"].frame.groupby(market.bars["QQQ"].frame["ts"] // (86400 * 10**9)).size()
    )
    assert sorted(set(per_day)) == [210, 390]
    regimes = pd.read_parquet(tmp_path / "regimes.parquet")
    assert set(regimes["regime"]) <= {"bull", "bear", "sideways", "volatile"}


@pytest.mark.parametrize("sib", SIBLINGS, ids=lambda s: s.symbol)
def test_siblings_follow_the_daily_reset_identity(sib):
    config = SynthConfig(seed=5, days=12, tracking_noise_bp=0.0)
    market = generate(config)
    q = market.bars["QQQ"].frame
    f = market.bars[sib.symbol].frame
    day = pd.to_datetime(q["ts"], utc=True).dt.tz_convert("America/New_York").dt.date
    q_close = q.groupby(day)["close"].last().to_numpy()
    f_close = f.groupby(day.to_numpy())["close"].last().to_numpy()
    cost = sib.expense_ratio / 252 + (sib.leverage - 1) * config.financing_rate / 252
    expected = f_close[:-1] * (1 - cost) * (1 + sib.leverage * (q_close[1:] / q_close[:-1] - 1))
    np.testing.assert_allclose(f_close[1:], expected, rtol=1e-12)


def test_null_market_has_no_serial_correlation_and_the_planted_one_has_rho():
    """rho=0: lag-1 correlation of returns within sessions is 0 within 4 standard errors."""
    for rho, low, high in [(0.0, None, None), (0.2, 0.15, 0.25)]:
        frame = generate(SynthConfig(seed=2, days=60, signal_strength=rho)).bars["QQQ"].frame
        r = session_returns(frame)
        x = r["ret"].to_numpy()
        same = r["session"].to_numpy()[1:] == r["session"].to_numpy()[:-1]
        acf1 = np.corrcoef(x[1:][same], x[:-1][same])[0, 1]
        if rho == 0:
            assert abs(acf1) < 4 / np.sqrt(same.sum())
        else:  # scale changes from bar to bar dilute rho only slightly
            assert low < acf1 < high


def test_planted_accuracy_is_a_coin_at_zero_and_grows_with_strength():
    acc = [planted_accuracy(r, horizon=5, n=100_000)["accuracy"] for r in (0.0, 0.1, 0.2)]
    assert abs(acc[0] - 0.5) < 0.01  # 3.2 standard errors of a coin over 100k draws
    assert acc[0] < acc[1] < acc[2]


def test_bad_configs_are_refused():
    for config in (
        SynthConfig(signal_strength=1.0),
        SynthConfig(signal_strength=float("nan")),
        SynthConfig(days=0),
        SynthConfig(days=10**9),  # bounded before anything is allocated
        SynthConfig(regime="x"),
        SynthConfig(start="2025-13-45"),
        SynthConfig(start="2200-01-02", days=5),  # bars after now: ts_out_of_range would refuse
    ):
        with pytest.raises(SynthError):
            generate(config)


def test_the_default_builtin_market_passes_every_bar_rule(tmp_path):
    """`make demo`'s market (seed 7, 250 sessions), read back through read_bars' rules.

    Seed 7 once had a low one ulp above its close (exp of a sum rounds apart from exp of the
    other sum); the generator now clamps, and this read would refuse the table otherwise.
    """
    market = generate(SynthConfig())
    for path in write_market(market, tmp_path)[:-1]:
        back = read_bars(path)
        frame = back.frame
        assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
        assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()


def _day_bootstrap(frame, stat, draws=200, seed=0):
    """95% interval of ``stat`` over sessions resampled with replacement."""
    r = session_returns(frame)
    groups = [g for _, g in r.groupby("session")]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(draws):
        pick = rng.integers(0, len(groups), len(groups))
        sample = pd.concat([groups[i].assign(session=k) for k, i in enumerate(pick)])
        values.append(stat(sample))
    return np.percentile(values, [2.5, 97.5])


@pytest.fixture(scope="module")
def real_qqq():
    bars, _ = import_files([real_file("ibkr/QQQ_1min.csv")])
    return bars.frame


@pytest.fixture(scope="module")
def synthetic():
    return [generate(SynthConfig(seed=s, days=120)).bars["QQQ"].frame for s in (11, 12, 13)]


def test_kurtosis_matches_real_qqq(real_qqq, synthetic):
    """Median over three seeds inside the real file's 95% day-block bootstrap interval."""
    low, high = _day_bootstrap(real_qqq, lambda r: excess_kurtosis(r["ret"].to_numpy()))
    synth = np.median([stylized_facts(f)["excess_kurtosis"] for f in synthetic])
    assert synth > 3  # fat tails, not a Gaussian walk
    assert low <= synth <= high, (low, synth, high)


def test_volatility_clustering_matches_real_qqq(real_qqq, synthetic):
    """Mean |r| autocorrelation (lags 1-10) inside the real 95% interval widened by 0.03.

    The widening allows for the synthetic estimate's own spread across seeds (about 0.02).
    """
    low, high = _day_bootstrap(real_qqq, abs_acf)
    synth = np.median([stylized_facts(f)["abs_acf_1_10"] for f in synthetic])
    assert low - 0.03 <= synth <= high + 0.03, (low, synth, high)


def test_intraday_volatility_profile_matches_real_qqq(real_qqq, synthetic):
    """Half-hour profile: correlation above 0.95 and open/midday ratio within 20%.

    Both U-shapes fall from about 2x at the open to 0.7-0.8 at midday; 20% is about the spread
    of the real ratio between the IBKR and LSE files.
    """
    real = stylized_facts(real_qqq)
    synth = stylized_facts(pd.concat(synthetic[:1]))
    assert np.corrcoef(real["profile_30min"], synth["profile_30min"])[0, 1] > 0.95
    ratio = synth["open_to_midday_vol"] / real["open_to_midday_vol"]
    assert 0.8 < ratio < 1.2


def test_sibling_betas_match_leverage_and_real_funds():
    """Synthetic betas within 0.06 of the real Polygon betas (TQQQ 2.995, SQQQ -2.961 measured).

    0.06 covers the drift of intraday effective leverage, L*Q/Q_ref / (1 + L*(Q/Q_ref - 1)),
    which moves a minute beta by a few hundredths on a 1% day.
    """
    market = generate(SynthConfig(seed=9, days=60))
    q = session_returns(market.bars["QQQ"].frame)["ret"].to_numpy()
    for sib in SIBLINGS:
        b = beta(session_returns(market.bars[sib.symbol].frame)["ret"].to_numpy(), q)
        assert abs(b - sib.leverage) < 0.05, (sib.symbol, b)
    qqq, _ = import_files([real_file("polygon/QQQ_RTH_NH_2025-08-08_2025-09-12.csv")])
    rq = session_returns(qqq.frame).set_index(qqq.frame["ts"])["ret"]
    for sib in SIBLINGS[:2]:
        fund, _ = import_files([real_file(f"polygon/{sib.symbol}_RTH_NH.csv")])
        rf = session_returns(fund.frame).set_index(fund.frame["ts"])["ret"]
        common = rq.index.intersection(rf.index)
        real_beta = beta(rf.loc[common].to_numpy(), rq.loc[common].to_numpy())
        synth_beta = beta(session_returns(market.bars[sib.symbol].frame)["ret"].to_numpy(), q)
        assert abs(synth_beta - real_beta) < 0.06, (sib.symbol, synth_beta, real_beta)


@pytest.mark.slow
def test_shipped_calibration_is_what_the_calibrate_command_measures():
    files = [
        real_file("ibkr/QQQ_1min.csv"),
        real_file("polygon/QQQ_RTH_NH_2025-08-08_2025-09-12.csv"),
        real_file("lse/QQQ_1min.parquet"),
    ]
    measured = calibrate(files, [files[1]])
    assert_same_numbers(measured.model_dump(), load_params().model_dump())


# The calibration is computed through pandas group-bys and numpy reductions, whose summation
# order (pairwise blocks, SIMD width) depends on the CPU and the library build: on another machine
# 7 of its numbers differed in the last digit (vol_profile[28] 1.528170994899823 against
# 1.5281709948998226, 3e-16 relative). A relative 1e-12 allows thousands of such roundings while
# any real change (other data, another formula) moves the numbers by 1e-6 or more. Grid choices
# (GARCH alpha/beta, Student df) and counts are exact on every machine and compared exactly.
CALIBRATION_RTOL = 1e-12


def assert_same_numbers(got, want, where: str = "params") -> None:
    """Structural equality, floats within CALIBRATION_RTOL (relative), everything else exact."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), where
        for key in want:
            assert_same_numbers(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list | tuple):
        assert isinstance(got, list | tuple) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same_numbers(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=CALIBRATION_RTOL, abs=1e-300), (where, got, want)
    else:
        assert got == want, (where, got, want)


def test_calibration_comparison_tolerates_last_digits_only():
    """The comparison above can fail: a change of 1e-9 relative is caught, 1 ulp is not."""
    want = {"vol_profile": [1.528170994899823], "sessions": 3, "name": "x"}
    assert_same_numbers({"vol_profile": [1.5281709948998226], "sessions": 3, "name": "x"}, want)
    for bad in (
        {"vol_profile": [1.528170994899823 * (1 + 1e-9)], "sessions": 3, "name": "x"},
        {"vol_profile": [1.528170994899823], "sessions": 4, "name": "x"},
        {"vol_profile": [1.528170994899823, 1.0], "sessions": 3, "name": "x"},
    ):
        with pytest.raises(AssertionError):
            assert_same_numbers(bad, want)
