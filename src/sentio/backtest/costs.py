"""Trading costs with documented, dated defaults (override any of them on the command line).

- commission: $0.005 per share, minimum $1.00 per order, at most 1 % of the trade value:
  Interactive Brokers "IBKR Pro Fixed" US stock pricing (the schedule the original system
  assumed; last read for this project 2026-11).
- SEC Section 31 fee on sells: $27.80 per million of sale proceeds, the fiscal-2024 rate in
  force from 2024-05-22 to 2025-05-14. The SEC then set $0.00 (from 2025-05-14); the fiscal-2026
  order (Release 34-104909 of 2026-02-27) was not read here, so the last non-zero rate is kept
  as the cautious default (``--sec-fee-per-million`` sets the rate in force).
- FINRA Trading Activity Fee on sells: $0.000166 per share, at most $8.30 per trade (FINRA
  By-Laws Schedule A, effective 2024-01-01; not re-checked for 2026).
- half-spread: half of a one-cent tick at each instrument's median price in the traded data,
  a model rather than a quote (no quote data ships with the project).

Every rate has an upper bound (commission <= $1/share, minimum <= $1,000, SEC fee <= $10,000
per $1M, TAF <= $1/share, half-spread <= 1,000 bp): a larger value is refused, naming its flag.

What a fill cost, whole (issue 16): the engine charges commission and regulatory fees in cash
(its ``fees``) and the half-spread in the fill price; :func:`split_fill_costs` takes a fill
apart again into commission, regulatory fees (SEC + FINRA TAF) and the spread paid, so that no
report leaves the spread out.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sentio.backtest.execution import commission

TICK = 0.01  # US equities trade in whole cents above $1


class CostModel(BaseModel):
    """Per-fill costs; every field has a unit and a dated default (module table)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    # Upper bounds (issue 12 round 2: 1e308 gave fees of -inf and a return of inf with exit 0):
    # each is far above any real schedule (hundreds of times the defaults) yet keeps every
    # fee finite, so a larger value is a typo (a rate per share given per million, say).
    commission_per_share: float = Field(0.005, ge=0, le=1.0)  # $ per share
    commission_min: float = Field(1.00, ge=0, le=1000.0)  # $ per order
    commission_max_fraction: float = Field(0.01, ge=0, le=1.0)  # of the trade's notional
    sec_fee_per_million: float = Field(27.80, ge=0, le=10_000.0)  # $ per $1,000,000 sold
    taf_per_share: float = Field(0.000166, ge=0, le=1.0)  # $ per share sold
    taf_max: float = Field(8.30, ge=0)  # $ per trade
    half_spread_bp: dict[str, float] | None = None  # None: half a tick at the median price

    def vector(self) -> np.ndarray:
        """The layout ``execution.simulate`` takes."""
        return np.array(
            [
                self.commission_per_share,
                self.commission_min,
                self.commission_max_fraction,
                self.sec_fee_per_million / 1e6,
                self.taf_per_share,
                self.taf_max,
            ]
        )

    def describe(self) -> str:
        """The costs in one line of words (for a report header; never a dict's repr).

        >>> CostModel().describe().split("; ")[:2]
        ['commission $0.005/share (min $1.00, max 1% of the value)', 'SEC fee $27.80 per $1M sold']
        """
        if self.half_spread_bp is None:
            spread = "half a tick at each median price"
        else:
            spread = ", ".join(f"{s} {bp:g} bp" for s, bp in self.half_spread_bp.items())
        return (
            f"commission ${self.commission_per_share:g}/share (min ${self.commission_min:.2f}, "
            f"max {100 * self.commission_max_fraction:g}% of the value); "
            f"SEC fee ${self.sec_fee_per_million:.2f} per $1M sold; "
            f"FINRA TAF ${self.taf_per_share:g}/share sold (max ${self.taf_max:.2f}); "
            f"half-spread: {spread}"
        )

    def half_spreads(self, symbols: list[str], close: np.ndarray) -> np.ndarray:
        """Fraction of the price per instrument (``close`` (N, K) in ``symbols`` order).

        >>> CostModel().half_spreads(["QQQ"], np.array([[500.0], [500.0]]))
        array([1.e-05])
        """
        if self.half_spread_bp is not None:
            return np.array([self.half_spread_bp[s] * 1e-4 for s in symbols])
        return (TICK / 2) / np.median(close, axis=0)


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
