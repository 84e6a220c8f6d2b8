"""Each metric against a hand computation or a plain numpy/pandas oracle."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sentio.backtest.metrics import (
    arb,
    blocks_per_year,
    bootstrap_mean_interval,
    daily_returns,
    geometric_mean_return,
    max_drawdown,
    mpr,
    sharpe,
    sortino,
    summarize,
)


def test_block_annualisation_by_hand():
    # 480-bar blocks of 390-bar sessions: 252 * 390 / 480 = 204.75 blocks a year
    assert blocks_per_year(390, 480) == 204.75
    rpb = np.array([0.02, -0.01, 0.005])
    g = (1.02 * 0.99 * 1.005) ** (1 / 3) - 1
    assert geometric_mean_return(rpb) == pytest.approx(g, rel=1e-12)
    assert arb(rpb, 204.75) == pytest.approx((1 + g) ** 204.75 - 1, rel=1e-12)
    assert mpr(rpb, 390, 480) == pytest.approx((1 + g) ** (21 * 390 / 480) - 1, rel=1e-12)


def test_daily_returns_compound_bars_and_ratios_follow_their_definitions():
    rng = np.random.default_rng(4)
    bars = rng.normal(0.00001, 0.001, 390 * 20)  # some losing days: a finite Sortino
    day = np.repeat(np.arange(20), 390)
    daily = daily_returns(bars, day)
    oracle = pd.Series(1 + bars).groupby(day).prod().to_numpy() - 1
    np.testing.assert_allclose(daily, oracle, rtol=1e-12)
    assert sharpe(daily) == pytest.approx(daily.mean() / daily.std(ddof=1) * math.sqrt(252))
    downside = math.sqrt(np.mean(np.minimum(daily, 0) ** 2))
    assert sortino(daily) == pytest.approx(daily.mean() / downside * math.sqrt(252))


def test_max_drawdown_by_hand():
    # equity 1 -> 1.1 -> 0.55 -> 0.66 -> 0.99: the fall from 1.1 to 0.55 is -50 %
    assert max_drawdown(np.array([0.1, -0.5, 0.2, 0.5])) == pytest.approx(-0.5)
    assert max_drawdown(np.array([0.01, 0.02])) == 0.0


def test_bootstrap_is_seeded_and_brackets_the_mean():
    values = np.random.default_rng(1).normal(0.001, 0.01, 200)
    low, high = bootstrap_mean_interval(values, seed=7)
    assert (low, high) == bootstrap_mean_interval(values, seed=7)
    assert low < values.mean() < high
    se = values.std(ddof=1) / math.sqrt(200)  # the normal-theory interval, roughly
    assert high - low == pytest.approx(2 * 1.96 * se, rel=0.1)


def test_summary_puts_it_together():
    rpb = np.array([0.01, -0.02, 0.03])
    bars = np.array([0.01, 0.0, -0.02, 0.0, 0.03, 0.0])
    summary = summarize(
        block_returns=rpb,
        bar_returns=bars,
        day=np.array([0, 0, 1, 1, 2, 2]),
        trade_pnl=np.array([100.0, -200.0, 300.0]),
        trade_bars=np.array([1, 1, 1]),
        in_market=np.array([1, 0, 1, 0, 1, 0], bool),
        traded_notional=600_000.0,
        fees=12.5,
        capital=100_000.0,
        bars_per_session=2,
        block_size=2,
        seed=0,
    )
    assert summary.blocks == 3 and summary.trades == 3
    assert summary.win_rate_pct == pytest.approx(200 / 3)
    assert summary.profit_factor == pytest.approx(400 / 200)
    assert summary.exposure_pct == 50.0 and summary.turnover == 2.0 and summary.fees == 12.5
    assert summary.max_drawdown_pct == pytest.approx(-2.0)
    assert summary.mean_rpb_pct == pytest.approx(100 * rpb.mean())
