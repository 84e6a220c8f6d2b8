"""The paper broker (``--broker paper``): the backtest's execution model, order by order.

Orders decided at a bar's close fill at the next bar's open (``fill="next-open"``, the
default) or at that close (``fill="close"``), through the backtest's own kernel
(``backtest.execution.execute``): whole shares, sells before buys, a buy cut to what the
cash covers, the same commission, fees and half-spread. A replay through this broker is
therefore comparable to strattest to the cent (tests/live/test_parity.py).

Its book (cash, shares, the order waiting for the next open, the last prices) is part of the
loop's saved state, so a restart resumes it exactly; within that book a client order id is
executed once. An exit cancels what still waits (there is no next open).
"""

from __future__ import annotations

import numpy as np

from sentio.backtest.execution import F_FEES, F_INSTRUMENT, F_PRICE, F_QTY, execute
from sentio.live.types import SYMBOLS, BrokerEvent, OrderRequest


class PaperBroker:
    name = "paper"

    def __init__(
        self, capital: float, costs: np.ndarray, half_spread: np.ndarray, fill: str = "next-open"
    ) -> None:
        self.costs, self.half_spread, self.fill = costs, half_spread, fill
        self.reset(capital)

    def reset(self, capital: float) -> None:
        """Fresh capital, no shares, nothing pending (a new backtest block)."""
        self.book_cash = float(capital)
        self.shares = np.zeros(len(SYMBOLS), dtype=np.int64)
        self.pending: dict[str, OrderRequest] = {}  # symbol -> order waiting for a price
        self.taken: set[str] = set()  # client ids of the bars not yet passed
        self.prices: dict[str, tuple[float, float]] = {}

    # -- the Broker protocol ---------------------------------------------------------------

    def positions(self) -> dict[str, int]:
        return {s: int(self.shares[j]) for j, s in enumerate(SYMBOLS)}

    def cash(self) -> float:
        return self.book_cash

    def open_orders(self) -> list[str]:
        return [o.client_id for o in self.pending.values()]

    def submit(self, orders: list[OrderRequest]) -> list[BrokerEvent]:
        """Take the orders (a known client id is acknowledged again, not taken twice); with
        ``fill="close"`` they fill at once at the close of the last bar seen."""
        events = []
        for order in orders:
            if order.client_id in self.taken:
                events.append(
                    BrokerEvent(
                        "accepted",
                        order.client_id,
                        order.symbol,
                        detail="already taken; not sent again",
                    )
                )
                continue
            self.taken.add(order.client_id)
            self.pending[order.symbol] = order
            events.append(BrokerEvent("accepted", order.client_id, order.symbol))
        if self.fill == "close":
            events += self.settle_at_close()
        return events

    def poll(self, prices: dict[str, tuple[float, float]]) -> list[BrokerEvent]:
        """A new bar: what waited fills at its open; ``prices``: symbol -> (open, close)."""
        self.prices = prices
        stale = {
            cid for cid in self.taken if not any(cid == o.client_id for o in self.pending.values())
        }
        self.taken -= stale  # ids of passed bars can never come again (bar times only grow)
        return self._fill(0)

    def settle_at_close(self) -> list[BrokerEvent]:
        """Fill what waits at the close of the last bar seen (the block's last bar, or a
        flattening exit: there is no next open)."""
        return self._fill(1)

    def cancel_open(self) -> list[BrokerEvent]:
        """Cancel what waits for a fill (an exit: there is no next open)."""
        events = [
            BrokerEvent(
                "cancelled", o.client_id, o.symbol, detail="the run stopped before it filled"
            )
            for o in self.pending.values()
        ]
        self.pending = {}
        return events

    def close(self) -> None:
        pass

    # -- internals -------------------------------------------------------------------------

    def _fill(self, which: int) -> list[BrokerEvent]:
        if not self.pending:
            return []
        missing = [s for s in self.pending if s not in self.prices]
        if missing:
            return []
        order = self.shares.copy()
        for symbol, request in self.pending.items():
            order[SYMBOLS.index(symbol)] = request.target
        price = np.array([self.prices.get(s, (np.nan, np.nan))[which] for s in SYMBOLS])
        fills = np.zeros((2 * len(SYMBOLS), 7))
        self.book_cash, count = execute(
            order, self.shares, price, 0, self.book_cash, self.costs, self.half_spread, fills, 0
        )
        events = []
        for row in fills[:count]:
            symbol = SYMBOLS[int(row[F_INSTRUMENT])]
            request = self.pending[symbol]
            qty = int(row[F_QTY])
            cut = (
                "" if qty == request.qty else f"cut to what the cash covers: {qty} of {request.qty}"
            )
            events.append(
                BrokerEvent(
                    "filled",
                    request.client_id,
                    symbol,
                    qty,
                    float(row[F_PRICE]),
                    float(row[F_FEES]),
                    detail=cut,
                )
            )
        filled = {e.symbol for e in events}
        for symbol, request in self.pending.items():
            if symbol not in filled:  # a buy the cash could not cover at all
                events.append(
                    BrokerEvent(
                        "cancelled",
                        request.client_id,
                        symbol,
                        detail="no share affordable at the fill price",
                    )
                )
        self.pending = {}
        return events

    # -- saved state -----------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "cash": self.book_cash,
            "shares": self.shares.tolist(),
            "pending": [
                [o.client_id, o.symbol, o.qty, o.target, o.bar_ts] for o in self.pending.values()
            ],
            "taken": sorted(self.taken),
            "prices": {s: list(p) for s, p in self.prices.items()},
        }

    def load(self, doc: dict) -> None:
        self.book_cash = float(doc["cash"])
        self.shares = np.array(doc["shares"], dtype=np.int64)
        self.pending = {o[1]: OrderRequest(*o) for o in doc["pending"]}
        self.taken = set(doc["taken"])
        self.prices = {s: tuple(p) for s, p in doc.get("prices", {}).items()}


__all__ = ["PaperBroker"]
