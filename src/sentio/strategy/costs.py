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

The cost model lives in the strategy stage because the cost rule (docs/strategy.md) decides
with it and training fits that rule; the backtest's execution charges it
(``sentio.backtest.costs`` splits each fill's costs).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

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


__all__ = ["TICK", "CostModel"]
