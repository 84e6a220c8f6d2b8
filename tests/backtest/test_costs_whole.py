"""Costs reported whole (issue 16 section 3): commissions, regulatory fees and the spread paid,
per run and per block, against a hand computation of two round trips.

The market: one instrument traded (QQQ; the others never held), fills at the close, a half-spread
of 10 bp on every instrument, $10,000 of fresh capital per 3-bar block. Block 0: QQQ closes at
100, 105, 110; block 1 at 200, 190, 180. The strategy is long all the time, so each block buys at
its first close and is made flat at its last.

Hand arithmetic (commission $0.005/share, min $1; SEC $27.80 per $1M sold; TAF $0.000166/share):
- block 0: 100 shares wanted, but 100 x 100.10 + $1 > $10,000, so 99 bought at 100 x 1.001 and
  sold at 110 x 0.999. Commission $1 each way (99 x 0.005 < 1). Spread 99 x 100 x 0.001 +
  99 x 110 x 0.001 = 20.79. Regulatory on the sale: 27.8e-6 x 99 x 109.89 + 0.000166 x 99.
- block 1: 50 wanted, 49 bought at 200.20 and sold at 179.82. Spread 49 x 0.2 + 49 x 0.18.
The spread is what separates the fill prices from the closes, so the block's P&L is the price
move on the shares (99 x 10, 49 x -20) minus all three costs: the check that nothing is left
out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sentio.backtest.costs import CostModel, split_fill_costs
from sentio.backtest.strattest import SYMBOLS, Plan, StrattestConfig, account

CAPITAL = 10_000.0
H = 0.001  # 10 bp


def sold(shares: int, price: float) -> float:
    """SEC fee + FINRA TAF of a sale of ``shares`` at fill ``price``, by hand."""
    return 27.80 / 1e6 * shares * price + 0.000166 * shares


EXPECTED = {  # per block: commissions, regulatory fees, spread, turnover
    0: (2.0, sold(99, 109.89), 99 * 100 * H + 99 * 110 * H, 99 * (100.1 + 109.89) / CAPITAL),
    1: (2.0, sold(49, 179.82), 49 * 200 * H + 49 * 180 * H, 49 * (200.2 + 179.82) / CAPITAL),
}
GROSS = {0: 99 * (110 - 100), 1: 49 * (180 - 200)}  # $: the price move on the shares held


def plan() -> Plan:
    ts = pd.date_range("2024-01-09 14:30", periods=6, freq="1min", tz="UTC").as_unit("ns")
    qqq = np.array([100.0, 105.0, 110.0, 200.0, 190.0, 180.0])
    close = np.column_stack([qqq, np.full(6, 50.0), np.full(6, 20.0), np.full(6, 30.0)])
    config = StrattestConfig(
        blocks=2,
        block_size=3,
        capital=CAPITAL,
        fill="close",
        costs=CostModel(half_spread_bp=dict.fromkeys(SYMBOLS, 10.0)),
        cache_dir=None,
    )
    frame = pd.DataFrame({"ts": ts.asi8, "close": qqq})
    block = np.array([0, 0, 0, 1, 1, 1])
    prices = {"open": close, "close": close}
    simulated = dict.fromkeys(SYMBOLS, True)
    return Plan(config, Path("model"), {}, frame, prices, simulated, block, 2, False)


@pytest.fixture(scope="module")
def result():
    p = np.full(6, 0.9)
    exposure = np.ones(6)  # long QQQ on every bar (blend allocation: all in QQQ at 1.0)
    return account(plan(), p, exposure, np.full(6, "long", dtype=object), {})


def test_each_block_costs_what_the_hand_arithmetic_says(result):
    blocks = result.per_block
    for b, (commissions, regulatory, spread, turnover) in EXPECTED.items():
        row = blocks.iloc[b]
        assert row["fills"] == 2
        assert row["commissions"] == pytest.approx(commissions, abs=1e-9)
        assert row["regulatory_fees"] == pytest.approx(regulatory, abs=1e-9)
        assert row["spread"] == pytest.approx(spread, abs=1e-9)
        assert row["costs"] == pytest.approx(commissions + regulatory + spread, abs=1e-9)
        # "fees" stays what is charged in cash: commissions + regulatory fees
        assert row["fees"] == pytest.approx(commissions + regulatory, abs=1e-9)
        assert row["turnover"] == pytest.approx(turnover, rel=1e-12)


def test_the_price_move_less_the_costs_is_the_blocks_pnl(result):
    """Nothing is left out: equity change = shares x close move - every cost."""
    for b in (0, 1):
        commissions, regulatory, spread, _ = EXPECTED[b]
        pnl = CAPITAL * result.per_block["return_pct"].iloc[b] / 100
        assert pnl == pytest.approx(GROSS[b] - commissions - regulatory - spread, abs=1e-6)


def test_the_run_sums_the_blocks_and_splits_the_per_fill_fees(result):
    costs = result.costs["strategy"]
    totals = [sum(EXPECTED[b][i] for b in (0, 1)) for i in range(3)]
    assert costs.fills == 4
    assert (costs.commissions, costs.regulatory_fees, costs.spread) == pytest.approx(totals)
    assert costs.costs == pytest.approx(sum(totals))
    assert costs.costs_per_block_pct == pytest.approx(100 * sum(totals) / (2 * CAPITAL))
    assert result.summary["strategy"].fees == pytest.approx(totals[0] + totals[1])
    assert result.costs["flat"].costs == 0.0 and result.costs["flat"].fills == 0
    # the fills table carries each fill's parts: commission + regulatory = its fees
    fills = result.fills
    np.testing.assert_allclose(fills["commissions"] + fills["regulatory_fees"], fills["fees"])
    assert fills["spread"].tolist() == pytest.approx([9.9, 10.89, 9.8, 8.82])


def test_a_buy_pays_no_regulatory_fee_and_a_cap_applies():
    """split_fill_costs alone: a buy's fees are all commission; a big sale hits the TAF cap."""
    model = CostModel()
    shares = 100_000
    price = 10.0 * (1 - 2e-4)
    fees = np.array(
        [
            max(1.0, 0.005 * 500),  # buy of 500 shares: commission only
            min(0.005 * shares, 0.01 * shares * price) + 27.8e-6 * shares * price + 8.30,
        ]
    )
    parts = split_fill_costs(
        np.array([500, -shares]), np.array([10.0 * (1 + 2e-4), price]), fees,
        np.array([2e-4, 2e-4]), model,
    )  # fmt: skip
    assert parts["regulatory_fees"][0] == 0.0 and parts["commissions"][0] == 2.5
    assert parts["regulatory_fees"][1] == pytest.approx(27.8e-6 * shares * price + 8.30)
    assert parts["spread"] == pytest.approx([500 * 10 * 2e-4, shares * 10 * 2e-4])
