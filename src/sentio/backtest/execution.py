"""The accounting loop (numba): target weights -> whole-share fills with costs -> equity.

Decisions are taken at the close of bar t. Fills happen at the OPEN of bar t+1 of each traded
instrument (default), or at the close of bar t in the explicitly optimistic mode. Each block
starts flat with fresh capital and ends flat: its last decision that can still fill inside the
block is forced to flat. Orders are only generated when the target weights change (no drift
rebalancing), sized at the decision bar's close (the fill price is not known yet).
Sells execute before buys; a buy is cut to what the cash covers, so cash never
goes negative. Costs, all per fill:
- commission: max(minimum, per-share x shares), capped at a fraction of the notional;
- half-spread: buys pay price x (1 + h), sells receive price x (1 - h), h per instrument;
- on sells only: a fee rate x notional (SEC Section 31) and per-share fee x shares capped per
  trade (FINRA TAF).
The defaults of these rates live in costs.py (issue 6); here they are plain arguments.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

kernel = njit(cache=True, error_model="numpy")

# Columns of the fills table: the bar it filled in, instrument, signed shares, price, fees,
# then the cash and that instrument's shares right after it.
F_BAR, F_INSTRUMENT, F_QTY, F_PRICE, F_FEES, F_CASH, F_SHARES = range(7)
# Columns of the orders table: the bar it was decided at, instrument, signed shares wanted,
# the target holding.
O_BAR, O_INSTRUMENT, O_QTY, O_TARGET = range(4)


@kernel
def commission(shares, notional, per_share, minimum, max_fraction):
    """Per-share commission with a minimum per order and a cap as a fraction of the notional."""
    fee = max(minimum, per_share * shares)
    return min(fee, max_fraction * notional)


@kernel
def sell_fees(shares, notional, per_share, minimum, max_fraction, fee_rate, taf, taf_max):
    """Commission + the fee rate on the notional + the per-share fee capped per trade."""
    return (
        commission(shares, notional, per_share, minimum, max_fraction)
        + fee_rate * notional
        + min(taf * shares, taf_max)
    )


@kernel
def simulate(weights, open_, close, block, next_open, capital, costs, half_spread):
    """Run the accounting over all bars.

    weights (N, K): target capital weights decided at each bar's close; open_/close (N, K):
    prices of the K instruments; block (N,): block id per bar, -1 for bars not traded (warm-up);
    costs: [per_share, minimum, max_fraction, fee_rate, taf, taf_max]; half_spread (K,).
    Returns (equity (N,), shares (N, K), fills (M, 7), orders (L, 4)); a buy may fill fewer
    shares than its order asked (cash), so fills and orders are both kept.
    """
    n, k = weights.shape
    equity = np.full(n, np.nan)
    held = np.zeros((n, k), dtype=np.int64)
    fills = np.zeros((1024, 7))  # grown on demand: most bars trade nothing
    orders = np.zeros((1024, 4))
    count = ordered = 0
    shares = np.zeros(k, dtype=np.int64)
    target = np.zeros(k)
    cash = 0.0
    pending = False  # an order waits for the next bar's open
    order = np.zeros(k, dtype=np.int64)
    for t in range(n):
        if block[t] < 0:
            continue
        if t == 0 or block[t] != block[t - 1]:  # a new block: flat, fresh capital
            shares[:] = 0
            target[:] = 0.0
            cash, pending = capital, False
        last = t == n - 1 or block[t + 1] != block[t]
        if count + 2 * k > fills.shape[0]:
            grown = np.zeros((2 * fills.shape[0], 7))
            grown[:count] = fills[:count]
            fills = grown
        if ordered + k > orders.shape[0]:
            more = np.zeros((2 * orders.shape[0], 4))
            more[:ordered] = orders[:ordered]
            orders = more
        # 1. an order decided at the previous close fills at this bar's open
        if pending:
            cash, count = execute(
                order, shares, open_[t], t, cash, costs, half_spread, fills, count
            )
            pending = False
        # 2. the decision at this bar's close; flat when no later fill is left in the block
        left = 1 if last else (2 if t + 2 >= n or block[t + 2] != block[t] else 3)
        flat = ending(left, next_open)
        changed = False
        for j in range(k):
            want = 0.0 if flat else weights[t, j]
            if want != target[j]:
                target[j] = want
                changed = True
        if changed:
            size_orders(target, shares, cash, close, t, order)
            for j in range(k):
                if order[j] != shares[j]:
                    orders[ordered, O_BAR] = t
                    orders[ordered, O_INSTRUMENT] = j
                    orders[ordered, O_QTY] = order[j] - shares[j]
                    orders[ordered, O_TARGET] = order[j]
                    ordered += 1
            if next_open and not last:
                pending = True
            else:
                cash, count = execute(
                    order, shares, close[t], t, cash, costs, half_spread, fills, count
                )
        for j in range(k):
            held[t, j] = shares[j]
        equity[t] = book_value(cash, shares, close, t)
    return equity, held, fills[:count], orders[:ordered]


@kernel
def book_value(cash, shares, close, t):
    """Cash plus shares x the closes of row ``t`` of ``close`` (N, K), added in instrument
    order (an instrument not held adds nothing, so a missing price of one is harmless): the
    one equity formula of the engine, the live loop and the audit's replay. A row index rather
    than a row: a row view per bar costs the engine's loop a quarter of its speed.

    >>> book_value(1000.0, np.array([10, 0]), np.array([[50.0, np.nan]]), 0)
    1500.0
    """
    value = cash
    for j in range(len(shares)):
        if shares[j] != 0:
            value += shares[j] * close[t, j]
    return value


@kernel
def settle(cash, qty, price, fees):
    """Cash after a fill of ``qty`` signed shares at ``price``: a sale adds its proceeds less
    the fees, a purchase takes its cost and the fees (the one arithmetic of the engine, the
    live loop and the audit's replay).

    >>> settle(1000.0, -10, 50.0, 1.0), settle(1000.0, 10, 50.0, 1.0)
    (1499.0, 499.0)
    """
    notional = abs(qty) * price
    return cash + (notional - fees) if qty < 0 else cash - (notional + fees)


@kernel
def ending(bars_left, next_open):
    """Whether the decision at a bar must be flat because no later fill is left in its block
    (or live episode): ``bars_left`` counts this bar (1 = the last one; 3 stands for "3 or
    more"); with next-open fills the order of the second-to-last bar is the last to fill.

    >>> ending(1, False), ending(2, True), ending(2, False), ending(3, True)
    (True, True, False, False)
    """
    return bars_left <= (2 if next_open else 1)


@kernel
def size_orders(target, shares, cash, close, t, order):
    """The whole shares each instrument should hold for the ``target`` capital weights, sized
    at the closes of row ``t`` of ``close`` (N, K; the last prices known when deciding):
    floor(weight x value / price), value = ``book_value``. Written into ``order``.

    >>> order = np.zeros(2, dtype=np.int64)
    >>> size_orders(np.array([0.5, 0.0]), np.array([0, 10]), 1000.0, np.array([[30.0, 50.0]]), 0,
    ...             order)
    >>> order.tolist()  # value 1000 + 10 x 50 = 1500: 750 / 30 = 25 shares, the other sold
    [25, 0]
    """
    value = book_value(cash, shares, close, t)
    for j in range(len(shares)):
        price = close[t, j]
        order[j] = int(math.floor(target[j] * value / price)) if price > 0 else 0


@kernel
def _record(fills, count, t, j, qty, price, fees, cash, shares):
    fills[count, F_BAR] = t
    fills[count, F_INSTRUMENT] = j
    fills[count, F_QTY] = qty
    fills[count, F_PRICE] = price
    fills[count, F_FEES] = fees
    fills[count, F_CASH] = cash
    fills[count, F_SHARES] = shares
    return count + 1


@kernel
def execute(order, shares, price, t, cash, costs, half_spread, fills, count):
    """Move ``shares`` toward ``order`` at ``price``: sells first, then buys cash can cover."""
    per_share, minimum, max_fraction, fee_rate, taf, taf_max = (
        costs[0],
        costs[1],
        costs[2],
        costs[3],
        costs[4],
        costs[5],
    )
    for j in range(len(shares)):  # sells
        qty = shares[j] - order[j]
        if qty > 0:
            fill = price[j] * (1.0 - half_spread[j])
            notional = qty * fill
            fees = sell_fees(
                qty, notional, per_share, minimum, max_fraction, fee_rate, taf, taf_max
            )
            cash = settle(cash, -qty, fill, fees)
            shares[j] -= qty
            count = _record(fills, count, t, j, -qty, fill, fees, cash, shares[j])
    for j in range(len(shares)):  # buys
        qty = order[j] - shares[j]
        if qty > 0:
            fill = price[j] * (1.0 + half_spread[j])
            qty = min(qty, int(cash // fill))
            while (
                qty > 0
                and qty * fill + commission(qty, qty * fill, per_share, minimum, max_fraction)
                > cash
            ):
                qty -= 1
            if qty > 0:
                notional = qty * fill
                fees = commission(qty, notional, per_share, minimum, max_fraction)
                cash = settle(cash, qty, fill, fees)
                shares[j] += qty
                count = _record(fills, count, t, j, qty, fill, fees, cash, shares[j])
    return cash, count


__all__ = [
    "F_BAR",
    "F_CASH",
    "F_FEES",
    "F_INSTRUMENT",
    "F_PRICE",
    "F_QTY",
    "F_SHARES",
    "O_BAR",
    "O_INSTRUMENT",
    "O_QTY",
    "O_TARGET",
    "book_value",
    "commission",
    "ending",
    "execute",
    "sell_fees",
    "settle",
    "simulate",
    "size_orders",
]
