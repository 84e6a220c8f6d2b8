"""What feeds and brokers exchange with the live loop (``sentio live``).

A feed yields :class:`FeedBar` (one bar of one symbol, as it arrived), :class:`FeedFault`
(a message it could not read) or ``None`` (nothing arrived within its poll interval: the loop
checks its kill file and signals, then asks again). It never reorders, repairs or drops bars:
the loop owns every fault policy (docs/live.md), so each fault is counted and audited once.

A broker takes :class:`OrderRequest` (signed whole shares, an idempotent client order id) and
reports :class:`BrokerEvent` (accepted, partially filled, filled, rejected, cancelled). The
loop's accounting moves cash and shares only on fill events, so the paper broker and a real
one are recorded the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

SYMBOLS = ("QQQ", "TQQQ", "PSQ", "SQQQ")  # the traded instruments, in the backtest's order
EVENTS = ("accepted", "partial", "filled", "rejected", "cancelled")


@dataclass(frozen=True, slots=True)
class FeedBar:
    """One bar of one symbol: ``ts`` is the bar START, int64 ns UTC (docs/data.md); ``source``
    says where it came from (``file.csv:row 12``, ``stdin:line 3``, ``alpaca``)."""

    symbol: str
    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    source: str = ""


@dataclass(frozen=True, slots=True)
class FeedFault:
    """A message the feed could not turn into a bar (``kind`` ``malformed``); ``detail`` names
    the field and the rule, ``source`` the place."""

    kind: str
    detail: str
    source: str = ""


class Feed(Protocol):
    """Bars as they arrive. ``history()`` gives the bars the feed already holds before its
    first live bar (for warming the stream context; empty when it has none); ``resume_after``
    (ns) asks it to skip bars at or before that time (a restart); ``close()`` stops it."""

    name: str

    def __iter__(self) -> Iterator[FeedBar | FeedFault | None]: ...

    def history(self) -> object | None: ...

    def resume_after(self, ts: int) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A market order for ``qty`` signed whole shares (+ buy, - sell) decided at the close of
    the bar starting at ``bar_ts``; ``target`` is the holding it aims at. ``client_id`` is
    derived from the run id, bar time and symbol, so a restart that decides the same order
    again sends the same id and the broker refuses the duplicate."""

    client_id: str
    symbol: str
    qty: int
    target: int
    bar_ts: int


@dataclass(frozen=True, slots=True)
class BrokerEvent:
    """One step of an order's life: ``kind`` in EVENTS. ``qty`` and ``price`` are the signed
    shares and price of THIS fill (0 and nan otherwise), ``fees`` what it cost; ``ts`` the
    broker's time of it (ns UTC, 0 when unknown); ``detail`` a reason (rejected, cancelled)."""

    kind: str
    client_id: str
    symbol: str
    qty: int = 0
    price: float = float("nan")
    fees: float = 0.0
    ts: int = 0
    detail: str = ""


class Broker(Protocol):
    """Where orders go. ``positions()`` and ``cash()`` are the broker's own view (reconciled
    with the saved state at start); ``submit`` sends orders and returns what the broker said
    at once (accepted or rejected; a client id it already knows is not sent again);
    ``poll(prices)`` returns the events since the last call (the paper broker fills pending
    orders at the ``open`` of the bar in ``prices``: symbol -> (open, close))."""

    name: str

    def positions(self) -> dict[str, int]: ...

    def cash(self) -> float: ...

    def open_orders(self) -> list[str]: ...

    def submit(self, orders: list[OrderRequest]) -> list[BrokerEvent]: ...

    def poll(self, prices: dict[str, tuple[float, float]]) -> list[BrokerEvent]: ...

    def close(self) -> None: ...


__all__ = [
    "Broker",
    "BrokerEvent",
    "EVENTS",
    "Feed",
    "FeedBar",
    "FeedFault",
    "OrderRequest",
    "SYMBOLS",
]
