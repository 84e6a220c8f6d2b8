"""Risk limits, checked before every order the live loop would send.

Each refusal has a reason code (:data:`REASONS`) recorded in the audit as a ``risk`` event;
a refused order is not sent (after ``no_price`` or ``order_rate``, passing causes, the loop
decides that symbol again at the next bar; after the others the position stays until the
decision changes). A reduction of a position is never refused by these limits (only
``no_price``, a symbol without a bar this minute, and ``--dry-run`` stop one).
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from sentio.strategy.allocation import LEVERAGE

REASONS = {
    "gross_exposure": "the order would take the gross exposure above --max-gross-exposure",
    "order_size": "the order's value at the decision close is above --max-order-value",
    "order_rate": "more than --max-orders-per-minute orders in one minute of bar time",
    "daily_loss": "the day's loss reached --max-daily-loss: flat, no new position until the "
    "next session",
    "no_price": "no bar of this symbol arrived for the minute: its price is unknown",
    "dry_run": "--dry-run: decided and recorded, not sent",
    "inputs_out_of_range": "a warning, never a refusal: more than the stated share of the bars "
    "scored so far have a feature beyond the normalisation clip (sentio.infer.ranges)",
    "model_expired": "the model is more than --expire-after sessions past its newest data: flat "
    "until a newer one serves (--registry)",
}


class RiskLimits(BaseModel):
    """Limits a careful default never reaches in normal operation (so a replay equals
    strattest unless a limit is set tighter); every field has a flag of the same name."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    max_gross_exposure: float = Field(3.0, gt=0, le=3.0)  # sum |weight x leverage|, 3 = TQQQ
    max_order_value: float | None = Field(None, gt=0)  # $ per order at the decision close
    max_orders_per_minute: int = Field(8, ge=1, le=1000)  # orders per minute of bar time
    max_daily_loss: float | None = Field(None, gt=0, lt=100)  # % of the session's first equity


def gross_exposure(shares: dict[str, int], close: dict[str, float], equity: float) -> float:
    """Sum of |shares x price x leverage| over the equity.

    >>> gross_exposure({"QQQ": 10, "TQQQ": 0, "PSQ": 0, "SQQQ": 5},
    ...                {"QQQ": 100.0, "TQQQ": 50.0, "PSQ": 10.0, "SQQQ": 20.0}, 2000.0)
    0.65
    """
    if equity <= 0:
        return math.inf
    total = sum(abs(n * close[s] * LEVERAGE[s]) for s, n in shares.items())
    return total / equity


def order_refusal(
    limits: RiskLimits,
    symbol: str,
    qty: int,
    held: dict[str, int],
    after: dict[str, int],
    close: dict[str, float],
    equity: float,
    sent_this_minute: int,
) -> str | None:
    """The reason code that refuses one order (``qty`` signed shares of ``symbol``), or None.
    ``held``: the shares now; ``after``: the book once this order and those already allowed
    fill. An order that reduces a position is never refused by these limits: refusing it
    would keep the risk it removes.

    >>> limits = RiskLimits(max_order_value=1000.0)
    >>> order_refusal(limits, "QQQ", 20, {"QQQ": 0}, {"QQQ": 20}, {"QQQ": 100.0}, 5000.0, 0)
    'order_size'
    >>> order_refusal(limits, "QQQ", -20, {"QQQ": 20}, {"QQQ": 0}, {"QQQ": 100.0}, 5000.0, 99)
    """
    if abs(held[symbol] + qty) <= abs(held[symbol]):
        return None
    if sent_this_minute >= limits.max_orders_per_minute:
        return "order_rate"
    if limits.max_order_value is not None and abs(qty) * close[symbol] > limits.max_order_value:
        return "order_size"
    if gross_exposure(after, close, equity) > limits.max_gross_exposure + 1e-12:
        return "gross_exposure"
    return None


__all__ = ["REASONS", "RiskLimits", "gross_exposure", "order_refusal"]
