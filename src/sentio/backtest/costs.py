"""What a fill cost, whole (issue 16): the engine charges commission and regulatory fees in cash
(its ``fees``) and the half-spread in the fill price; :func:`split_fill_costs` takes a fill
apart again into commission, regulatory fees (SEC + FINRA TAF) and the spread paid, so that no
report leaves the spread out. The cost model itself, with its dated defaults, is
``sentio.strategy.costs.CostModel`` (re-exported here).
"""

from __future__ import annotations

import numpy as np

from sentio.backtest.execution import commission
from sentio.strategy.costs import TICK, CostModel

COST_PARTS = ("commissions", "regulatory_fees", "spread")  # currency, per fill


def split_fill_costs(
    qty: np.ndarray, price: np.ndarray, fees: np.ndarray, half_spread: np.ndarray, model: CostModel
) -> dict[str, np.ndarray]:
    """Each fill's cost in its three parts (currency), keyed by :data:`COST_PARTS`.

    ``qty`` signed shares, ``price`` the fill price (the half-spread is in it: a buy pays
    reference x (1 + h), a sale receives reference x (1 - h)), ``fees`` what the engine charged
    in cash (commission + regulatory fees), ``half_spread`` the h of each fill's instrument.
    The commission is the engine's own formula (``execution.commission``); the regulatory fees
    are the rest of ``fees`` (zero on a buy), so commissions + regulatory fees = fees. The
    spread paid is shares x reference price x h.

    >>> parts = split_fill_costs(np.array([100, -100]), np.array([500.05, 499.95]),
    ...     np.array([1.0, 1.0 + 27.8e-6 * 49995 + 0.0166]), np.array([1e-4, 1e-4]), CostModel())
    >>> [round(float(x), 6) for x in parts["commissions"]], parts["spread"].round(6).tolist()
    ([1.0, 1.0], [5.0, 5.0])
    >>> parts["regulatory_fees"].round(6).tolist()  # SEC 27.8e-6 x 49,995 + TAF 100 x 0.000166
    [0.0, 1.406461]
    """
    qty = np.asarray(qty, dtype=np.float64)
    price = np.asarray(price, dtype=np.float64)
    h = np.asarray(half_spread, dtype=np.float64)
    shares = np.abs(qty)
    notional = shares * price
    commissions = np.array(
        [
            commission(s, v, model.commission_per_share, model.commission_min,
                       model.commission_max_fraction)
            for s, v in zip(shares, notional, strict=True)
        ],
        dtype=np.float64,
    )  # fmt: skip
    reference = price / (1.0 + np.sign(qty) * h)  # the price before the half-spread
    return {
        "commissions": commissions,
        "regulatory_fees": np.asarray(fees, dtype=np.float64) - commissions,
        "spread": shares * reference * h,
    }


__all__ = ["COST_PARTS", "TICK", "CostModel", "split_fill_costs"]
