"""The accounting loop against hand-computed fills, and its invariants on random inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentio.backtest.execution import (
    F_CASH,
    F_FEES,
    F_PRICE,
    F_QTY,
    F_SHARES,
    O_BAR,
    O_QTY,
    O_TARGET,
    simulate,
)
from sentio.strategy import allocate

NO_COSTS = np.zeros(6)
# per share 0.005, minimum 1.00, cap 1 % of notional, sell fee rate 27.80 per million,
# 0.000166 per share sold capped at 8.30 (illustrative values for the hand computation)
COSTS = np.array([0.005, 1.0, 0.01, 27.80e-6, 0.000166, 8.30])

OPEN = np.array([[10.0], [10.0], [11.0], [12.0]])
CLOSE = np.array([[10.0], [10.5], [11.5], [12.5]])
ALL_IN = np.ones((4, 1))
ONE_BLOCK = np.zeros(4, dtype=np.int64)


def run(next_open, costs, weights=ALL_IN, block=ONE_BLOCK, spread=0.0):
    """(equity, held, fills); the orders are checked on their own below."""
    return simulate(
        weights, OPEN, CLOSE, block, next_open, 1000.0, costs, np.full(weights.shape[1], spread)
    )[:3]


def test_next_open_fills_without_costs_by_hand():
    equity, held, fills = run(True, NO_COSTS)
    # decided at bar 0's close: 100 shares (sized at 10), filled at bar 1's open (10);
    # the block ends at bar 3, so the decision at bar 2 is flat, filled at bar 3's open (12)
    assert fills[:, F_QTY].tolist() == [100, -100]
    assert fills[:, F_PRICE].tolist() == [10.0, 12.0]
    assert equity.tolist() == [1000.0, 1050.0, 1150.0, 1200.0]
    assert held[:, 0].tolist() == [0, 100, 100, 0]
    # the cash and holding right after each fill: 1000 - 100 x 10, then + 100 x 12
    assert fills[:, F_CASH].tolist() == [0.0, 1200.0]
    assert fills[:, F_SHARES].tolist() == [100, 0]


def test_orders_are_kept_apart_from_fills_a_buy_the_cash_cannot_cover_fills_less():
    _, _, fills, orders = simulate(ALL_IN, OPEN, CLOSE, ONE_BLOCK, True, 1000.0, COSTS, np.zeros(1))
    # decided at bar 0's close: floor(1000 / 10) = 100 shares; at bar 1's open 100 x 10 +
    # the $1 minimum commission exceeds the cash, 99 x 10 + 1 = 991 does not; the flat
    # order at bar 2 sells those 99
    assert orders[:, O_BAR].tolist() == [0, 2]
    assert orders[:, O_QTY].tolist() == [100, -99]
    assert orders[:, O_TARGET].tolist() == [100, 0]
    assert fills[:, F_QTY].tolist() == [99, -99]


def test_close_fills_are_the_named_optimistic_mode():
    equity, _, fills = run(False, NO_COSTS)
    assert fills[:, F_PRICE].tolist() == [10.0, 12.5]  # same bar's close, in and out
    assert equity[-1] == 1250.0


def test_costs_by_hand():
    equity, _, fills = run(True, COSTS)
    # 100 shares cost 1000 + 1.00 commission > cash: cut to 99 (990 + 1.00)
    assert fills[0, F_QTY] == 99 and fills[0, F_FEES] == 1.0
    sell_fees = 1.0 + 27.80e-6 * 99 * 12.0 + 0.000166 * 99
    assert fills[1, F_FEES] == pytest.approx(sell_fees, abs=1e-12)
    assert equity[-1] == pytest.approx(1000 - 990 - 1.0 + 99 * 12.0 - sell_fees, abs=1e-9)


def test_half_spread_moves_both_fill_prices_against_us():
    _, _, fills = run(True, NO_COSTS, spread=1e-3)
    assert fills[0, F_PRICE] == pytest.approx(10.01) and fills[1, F_PRICE] == pytest.approx(11.988)


def test_each_block_starts_with_fresh_capital_and_ends_flat():
    block = np.array([0, 0, 1, 1])
    equity, held, fills = run(False, NO_COSTS, block=block)
    # block 0: 100 shares at 10 (close of bar 0), out at 10.5 (its last bar): 1050;
    # block 1 starts again from 1000: floor(1000 / 11.5) = 86 shares at 11.5, cash 11,
    # out at 12.5: 11 + 86 * 12.5 = 1086
    assert equity.tolist() == [1000.0, 1050.0, 1000.0, 1086.0]
    assert held[1, 0] == 0 and held[3, 0] == 0


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 60), st.integers(0, 2**31 - 1), st.booleans())
def test_invariants_on_random_paths(n, seed, next_open):
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, 4)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.003, (n, 4)))
    exposures = rng.choice([-3.0, -1.0, 0.0, 1.0, 2.0, 3.0], n)
    weights = np.array(
        [[allocate(e)[s] for s in ("QQQ", "TQQQ", "PSQ", "SQQQ")] for e in exposures]
    )
    block = np.repeat(np.arange(n // 2 + 1), 2)[:n]
    equity, held, fills, _ = simulate(
        weights, open_, close, block, next_open, 10_000.0, COSTS, np.full(4, 2e-4)
    )
    # never long and short instruments together; flat at every block's last bar
    long_side, short_side = held[:, :2].sum(axis=1) > 0, held[:, 2:].sum(axis=1) > 0
    assert not (long_side & short_side).any()
    ends = np.r_[block[1:] != block[:-1], True]
    assert (held[ends] == 0).all()
    assert (held >= 0).all() and np.isfinite(equity).all()
    # cash = equity - holdings is never negative
    cash = equity - (held * close).sum(axis=1)
    assert (cash >= -1e-9).all()
