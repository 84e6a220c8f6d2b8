"""Alpaca for ``sentio live``: a real-time bar feed and a paper-trading broker.

Both need the optional extra ``sentio[alpaca]`` (alpaca-py); this module imports alpaca-py
only when a feed or broker is opened, so ``import sentio.live.alpaca`` works without it. Keys
and server addresses come from the environment, read by the same function as
``sentio data download`` (:func:`sentio.data.download.alpaca_settings`): ``APCA_API_KEY_ID``,
``APCA_API_SECRET_KEY``, and for a proxy or a test server ``SENTIO_ALPACA_STREAM_URL`` (the whole
``ws(s)://`` address of the market-data stream) and ``SENTIO_ALPACA_TRADING_URL``.

The feed (:class:`AlpacaFeed`, ``--feed alpaca``)
    alpaca-py's ``StockDataStream`` runs on a background thread, subscribed to the minute bars
    (``b``) and the updated bars (``u``) of the symbols. Each bar becomes a :class:`FeedBar`
    whose ``ts`` is the bar START (Alpaca's ``t`` is the start of the minute), in int64 ns UTC,
    and is queued; iterating yields the queued items in the order they arrived, or ``None``
    after ``poll_s`` seconds without one (so the loop can look at its kill file).

    - Bars are yielded as delivered: never reordered, never deduplicated. An updated bar is a
      correction of a minute Alpaca already sent (late trades); it is yielded as a FeedBar too,
      with ``source`` ``alpaca:updatedBars``, and the loop sees it as a duplicate or late bar
      and counts it like any other.
    - A message alpaca-py cannot read (a frame that is not msgpack, an element that is not an
      object, a bar without a symbol, a missing or mistyped field) or a bar with a price that is
      not a finite number > 0 or a volume that is not a finite number >= 0 becomes a
      ``FeedFault("malformed", detail, "alpaca")``, in its place among the bars.
    - When the server drops the connection, alpaca-py reconnects (backing off 0.5 s, 1 s, 2 s
      ... up to 30 s), authenticates and subscribes again; ``feed.reconnects`` counts the
      reconnections. Bars of the minutes the connection was down are not replayed by Alpaca:
      the loop sees a gap.
    - The server refusing the keys or the subscription (stream error codes 400, 401, 402, 405,
      409, 410), or the first connection failing three times, ends the iteration with a
      :class:`LiveError` naming the cause; other stream errors are kept in ``feed.warnings``.
    - ``close()`` stops the thread within a few seconds.

The broker (:class:`AlpacaPaperBroker`, ``--broker alpaca-paper``)
    alpaca-py's ``TradingClient`` with ``paper=True``: market orders, ``time_in_force=day``,
    ``client_order_id`` = the loop's :attr:`OrderRequest.client_id`. Signed quantities: + buy,
    - sell. It refuses a trading address on Alpaca's live (real money) host.

    - ``submit`` first looks the client id up at the broker; one the broker already knows is
      not sent again (nor is one that a race makes the broker refuse with HTTP 422 as a
      duplicate): its current status is returned instead (``accepted`` with the status in the
      detail; ``rejected`` or ``cancelled`` for an order from before this session that ended
      so). ``poll`` goes on following it: an order of this session from its last report, one
      from before (a restart) from where it stands, its earlier fills being in the broker's
      positions, which the loop reconciles at start.
      A new order returns ``accepted``; an order the broker refuses at once (HTTP 403/422, e.g.
      insufficient buying power) returns ``rejected`` with the broker's reason.
    - ``poll`` reads every order that is not final yet, by client id, and returns the steps
      since the last poll. Alpaca reports cumulative ``filled_qty`` and ``filled_avg_price``;
      a step's quantity is the growth of ``filled_qty`` and its price the average of the new
      shares, ``(q1 * p1 - q0 * p0) / (q1 - q0)``:

      ===============================  =============================================
      Alpaca order status              events
      ===============================  =============================================
      new, accepted, pending_new, ...  none (still working)
      partially_filled                 ``partial`` for the new shares
      filled                           ``filled`` for the last shares
      canceled                         ``partial`` for any new shares, ``cancelled``
      expired (a day order at close)   ``partial`` for any new shares, ``cancelled``
                                       with detail ``expired``
      rejected                         ``rejected`` with the status as detail
      ===============================  =============================================

    - Fees are 0: Alpaca charges no commission, and its regulatory fees (SEC, FINRA TAF) are
      not reported per order, so they cannot be attributed to a fill.
    - An HTTP or network failure raises :class:`LiveError` (the loop stops; a restart sends the
      same client ids, which the broker then recognises).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlparse

import pandas as pd

from sentio.core.errors import LiveError, excerpt
from sentio.data.download import (
    ENV_KEY_ID,
    ENV_SECRET_KEY,
    ENV_STREAM_URL,
    ENV_TRADING_URL,
    FEEDS,
    AlpacaSettings,
    alpaca_settings,
    require_alpaca,
    with_timeout,
)
from sentio.data.schema import valid_symbol
from sentio.live.types import BrokerEvent, FeedBar, FeedFault, OrderRequest

FEED_NAME = "alpaca"
BROKER_NAME = "alpaca-paper"
LIVE_TRADING_HOST = "api.alpaca.markets"  # real money: the paper broker never sends there
CONNECT_ATTEMPTS = 3  # failed first connections before the feed gives up
STOP_TIMEOUT_S = 5.0
# Stream error codes (docs.alpaca.markets, "Real-time stock pricing data", errors) after which
# retrying cannot help; the rest (404 auth timeout, 406 connection limit, 407 slow client,
# 500) are transient and alpaca-py reconnects.
FATAL_STREAM_CODES = {
    400: "invalid syntax (a symbol Alpaca does not accept?)",
    401: "not authenticated",
    402: f"check {ENV_KEY_ID} and {ENV_SECRET_KEY}",
    405: "more symbols than the market-data plan allows",
    409: "the market-data plan does not include this feed (iex is free)",
    410: "invalid subscribe action for this feed",
}
FINAL = ("filled", "canceled", "expired", "rejected", "replaced")
_FAULT_KEY = "sentio_fault"  # marks an element the screen replaced, so it keeps its place


# ---------------------------------------------------------------------------- factories


def open_feed(symbols: Iterable[str], poll_s: float = 1.0, feed: str = "iex") -> AlpacaFeed:
    """An :class:`AlpacaFeed` of ``symbols`` with keys and address from the environment."""
    require_alpaca(LiveError)
    return AlpacaFeed(symbols, alpaca_settings(error=LiveError), poll_s=poll_s, feed=feed)


def open_broker() -> AlpacaPaperBroker:
    """An :class:`AlpacaPaperBroker` with keys and address from the environment, its account
    checked (reachable, keys accepted, trading not blocked)."""
    require_alpaca(LiveError)
    broker = AlpacaPaperBroker(alpaca_settings(error=LiveError))
    broker.check_account()
    return broker


# ---------------------------------------------------------------------------- the feed


class AlpacaFeed:
    """Real-time minute bars of ``symbols`` from Alpaca's stream (see the module doc).

    ``resume_after(ts)`` (a restart) skips bars starting at or before ``ts`` (ns); they are
    counted in ``skipped``. ``history()`` is None: the stream holds no bars from before it
    started (warm up from a table written by ``sentio data download``).
    """

    name = FEED_NAME

    def __init__(
        self,
        symbols: Iterable[str],
        settings: AlpacaSettings,
        *,
        poll_s: float = 1.0,
        feed: str = "iex",
    ) -> None:
        self.symbols = tuple(symbols)
        if not self.symbols or not all(
            isinstance(s, str) and valid_symbol(s) for s in self.symbols
        ):
            raise LiveError(f"the Alpaca feed needs ticker symbols, got {excerpt(self.symbols)}")
        if not (isinstance(poll_s, int | float) and 0 < poll_s <= 60):
            raise LiveError(f"poll_s must be in (0, 60] seconds, got {excerpt(poll_s)}")
        if feed not in FEEDS:
            raise LiveError(f"the Alpaca feed is one of {', '.join(FEEDS)}, got {excerpt(feed)}")
        self.poll_s = float(poll_s)
        self.feed = feed
        self.skip_until: int | None = None
        self.reconnects = 0  # successful connections after the first
        self.connections = 0
        self.skipped = 0
        self.warnings: deque[str] = deque(maxlen=50)  # alpaca-py's and the server's, newest last
        self._failed_connects = 0
        self._fatal: LiveError | None = None
        self._closed = False
        self._queue: queue.Queue[FeedBar | FeedFault] = queue.Queue()
        self._stream = _stream_class()(
            self,
            api_key=settings.key_id,
            secret_key=settings.secret_key,
            raw_data=True,  # the feed reads each message itself, to report the bad ones
            feed=_data_feed(feed),
            url_override=settings.stream_url,
        )
        self.url = self._stream._endpoint
        self._stream.subscribe_bars(self._on_bar, *self.symbols)
        self._stream.subscribe_updated_bars(self._on_bar, *self.symbols)
        self._log = _Recorder(self.warnings)
        logging.getLogger("alpaca").addHandler(self._log)
        self._thread = threading.Thread(target=self._run, name="sentio-alpaca-feed", daemon=True)
        self._thread.start()

    def history(self) -> None:
        return None

    def resume_after(self, ts: int) -> None:
        self.skip_until = ts

    def __iter__(self) -> Iterator[FeedBar | FeedFault | None]:
        while not self._closed:
            try:
                yield self._queue.get(timeout=self.poll_s)
                continue
            except queue.Empty:
                pass
            if self._fatal is not None:
                raise self._fatal
            if not self._thread.is_alive() and not self._closed:
                raise LiveError(
                    f"the Alpaca feed stopped by itself ({self._last_warning()}); start again"
                )
            yield None

    def close(self) -> None:
        """Stop the stream and its thread (within a few seconds)."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + STOP_TIMEOUT_S
        stream = self._stream
        while stream._loop is None and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)  # the thread has not started its event loop yet
        loop = stream._loop
        if loop is not None and loop.is_running():
            # an error here means the loop ended meanwhile: the thread is stopping anyway
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(_stop(stream), loop).result(STOP_TIMEOUT_S)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        logging.getLogger("alpaca").removeHandler(self._log)

    # -- called on the stream's thread ---------------------------------------------------

    def _run(self) -> None:
        try:
            self._stream.run()
        except BaseException as exc:  # noqa: BLE001 - reported to the loop, never lost
            self._fatal = self._fatal or LiveError(f"the Alpaca feed failed: {excerpt(exc, 200)}")

    def _connected(self) -> None:
        if self.connections:
            self.reconnects += 1
        self.connections += 1
        self._failed_connects = 0

    def _connect_failed(self, exc: BaseException) -> None:
        self._failed_connects += 1
        if (
            self._fatal is None
            and not self.connections
            and self._failed_connects >= CONNECT_ATTEMPTS
        ):
            self._fatal = LiveError(
                f"cannot connect to the Alpaca data stream at {self.url} "
                f"({excerpt(str(exc), 160)}) after {CONNECT_ATTEMPTS} attempts; check the "
                f"network or {ENV_STREAM_URL}"
            )

    def _screen(self, frame) -> tuple[object, bool]:
        """Check one frame before alpaca-py reads it: return the frame to pass on (bad elements
        replaced by fault markers that keep their place) and whether the stream must stop."""
        import msgpack

        try:
            messages = msgpack.unpackb(frame) if isinstance(frame, bytes) else None
        except Exception as exc:  # msgpack raises several types for bad bytes
            messages = exc
        if not isinstance(messages, list):
            what = (
                f"cannot be decoded as msgpack ({type(messages).__name__}: "
                f"{excerpt(str(messages), 120)})"
                if isinstance(messages, Exception)
                else f"is {excerpt(frame, 80)}, not a msgpack array"
            )
            self._queue.put(FeedFault("malformed", f"a stream frame {what}", "alpaca"))
            return msgpack.packb([]), False
        changed, stop = False, False
        for i, msg in enumerate(messages):
            detail = None
            if not isinstance(msg, dict):
                detail = f"a stream message is {excerpt(msg, 80)}, not an object"
            elif msg.get("T") in ("b", "u") and not isinstance(msg.get("S"), str):
                detail = f"a bar message has no symbol ('S' is {excerpt(msg.get('S'))})"
            elif msg.get("T") == "error":
                stop |= self._stream_error(msg)
            if detail is not None:
                messages[i] = {"T": "b", "S": self.symbols[0], _FAULT_KEY: detail}
                changed = True
        return (msgpack.packb(messages) if changed else frame), stop

    def _stream_error(self, msg: dict) -> bool:
        code, text = msg.get("code"), _cut(msg.get("msg", ""), 120)
        hint = FATAL_STREAM_CODES.get(code) if isinstance(code, int) else None
        if hint is None:
            self.warnings.append(f"stream error {code}: {text}")
            return False
        if self._fatal is None:
            self._fatal = LiveError(
                f"the Alpaca data stream at {self.url} refused: {text} (code {code}); {hint}"
            )
        return True

    async def _on_bar(self, msg: dict) -> None:
        item = self._read_bar(msg)
        after = self.skip_until
        if isinstance(item, FeedBar) and after is not None and item.ts <= after:
            self.skipped += 1
            return
        self._queue.put(item)

    def _read_bar(self, msg: dict) -> FeedBar | FeedFault:
        from alpaca.data.models import Bar

        if _FAULT_KEY in msg:
            return FeedFault("malformed", msg[_FAULT_KEY], "alpaca")
        symbol = msg.get("S")
        kind = "bar" if msg.get("T") == "b" else "updated bar"
        stamp = msg.get("t")
        if not hasattr(stamp, "to_unix_nano"):
            detail = f"{symbol} {kind}: field 't' is {excerpt(stamp)}, not a msgpack timestamp"
            return FeedFault("malformed", detail, "alpaca")
        try:
            bar = Bar(symbol, {**msg, "t": stamp.to_datetime()})
        except Exception as exc:  # pydantic's ValidationError, or a timestamp out of range
            return FeedFault("malformed", f"{symbol} {kind}: {_first_error(exc)}", "alpaca")
        values = {
            "open": bar.open,
            "high": bar.high,
            "low": bar.low,
            "close": bar.close,
            "volume": bar.volume,
        }
        for name, value in values.items():
            floor_ok = value >= 0 if name == "volume" else value > 0
            if not (math.isfinite(value) and floor_ok):
                rule = ">= 0" if name == "volume" else "> 0"
                detail = f"{symbol} {kind}: {name} is {value!r}, not a finite number {rule}"
                return FeedFault("malformed", detail, "alpaca")
        source = "alpaca" if msg.get("T") == "b" else "alpaca:updatedBars"
        return FeedBar(symbol, int(stamp.to_unix_nano()), *values.values(), source=source)

    def _last_warning(self) -> str:
        return self.warnings[-1] if self.warnings else "no reason given"


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "?"
        return f"field {where}: {first.get('msg')}, got {excerpt(first.get('input'))}"
    return excerpt(str(exc), 160)


def _data_feed(name: str):
    from alpaca.data.enums import DataFeed

    return DataFeed(name)


async def _stop(stream) -> None:
    """On the stream's loop: ask alpaca-py to stop, then close the socket so that a pending
    receive ends now rather than at its 5 s timeout."""
    await stream.stop_ws()
    ws = stream._ws
    if ws is not None:
        await ws.close()


class _Recorder(logging.Handler):
    """Keeps alpaca-py's warnings (reconnects, errors) for ``feed.warnings``; without a handler
    Python would print them, tracebacks included, on stderr."""

    def __init__(self, into: deque) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(_cut(record.getMessage(), 200))


class _Screened:
    """alpaca-py's websocket with every received frame checked by the feed first."""

    def __init__(self, ws, stream) -> None:
        self._ws, self._stream = ws, stream

    def __getattr__(self, name: str):
        return getattr(self._ws, name)

    async def recv(self):
        frame, stop = self._stream._owner._screen(await self._ws.recv())
        if stop:
            await self._stream.stop_ws()
        return frame


@functools.cache
def _stream_class():
    """alpaca-py's ``StockDataStream`` with two hooks (alpaca-py 0.44 offers no public ones):
    the socket is wrapped by :class:`_Screened` after connecting, and each connection attempt
    is reported to the feed (counting reconnects, giving up on a first connection that keeps
    failing or keys the server refuses)."""
    from alpaca.data.live.stock import StockDataStream

    class Stream(StockDataStream):
        def __init__(self, owner: AlpacaFeed, **kwargs) -> None:
            super().__init__(**kwargs)
            self._owner = owner

        async def _connect(self) -> None:
            await super()._connect()
            self._ws = _Screened(self._ws, self)

        async def _start_ws(self) -> None:
            try:
                await super()._start_ws()
            except Exception as exc:
                self._owner._connect_failed(exc)
                if self._owner._fatal is not None:
                    await self.stop_ws()
                raise
            self._owner._connected()

    return Stream


# ---------------------------------------------------------------------------- the broker


@dataclass
class _Order:
    """What the broker has reported of one order so far."""

    symbol: str
    sign: int  # +1 buy, -1 sell
    filled: int = 0  # shares reported in events
    notional: float = 0.0  # filled * filled_avg_price at the last report
    final: bool = False


class AlpacaPaperBroker:
    """Orders to Alpaca's paper-trading account (see the module doc)."""

    name = BROKER_NAME

    def __init__(self, settings: AlpacaSettings) -> None:
        from alpaca.trading.client import TradingClient

        url = settings.trading_url
        if url is not None and urlparse(url).hostname == LIVE_TRADING_HOST:
            raise LiveError(
                f"{ENV_TRADING_URL}: {url} is Alpaca's live (real money) API; the alpaca-paper "
                "broker trades the paper account only (unset it for https://paper-api.alpaca.markets)"
            )
        client = TradingClient(settings.key_id, settings.secret_key, paper=True, url_override=url)
        self._client = with_timeout(client)
        self.url = url or str(getattr(client._base_url, "value", client._base_url))
        self._orders: dict[str, _Order] = {}

    # -- the Broker protocol ----------------------------------------------------------------

    def positions(self) -> dict[str, int]:
        out = {}
        for position in self._call("positions", self._client.get_all_positions):
            qty = float(position.qty)
            if qty != int(qty):
                raise LiveError(
                    f"the Alpaca account holds {qty:g} {position.symbol}: Sentio trades whole "
                    "shares only; close the fractional position first"
                )
            short = str(getattr(position.side, "value", position.side)) == "short"
            shares = -abs(int(qty)) if short else int(qty)
            if shares:
                out[position.symbol] = shares
        return out

    def cash(self) -> float:
        return float(self._call("the account", self._client.get_account).cash)

    def open_orders(self) -> list[str]:
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        query = GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=500)
        orders = self._call("open orders", self._client.get_orders, query)
        return [o.client_order_id for o in orders]

    def submit(self, orders: list[OrderRequest]) -> list[BrokerEvent]:
        events = []
        for request in orders:
            if request.qty == 0:
                events.append(
                    BrokerEvent(
                        "rejected", request.client_id, request.symbol, detail="qty 0: not sent"
                    )
                )
                continue
            order = self._lookup(request.client_id)
            if order is None:
                order, refused = self._send(request)
                if refused is not None:
                    events.append(refused)
                    continue
                if order is not None:  # a new order
                    self._orders[request.client_id] = _Order(order.symbol, _sign(order))
                    events.extend(self._progress(request.client_id, order, submitted=True))
                    continue
                # refused as a duplicate: another sender was faster than the look-up
                order = self._lookup(request.client_id)
                if order is None:
                    raise LiveError(
                        f"Alpaca refused client id {request.client_id} as a duplicate but does "
                        "not find it; check the paper account's orders"
                    )
            events.append(self._known(request, order))
        return events

    def poll(self, prices: dict[str, tuple[float, float]]) -> list[BrokerEvent]:
        """The events since the last poll (``prices`` is unused: Alpaca fills the orders)."""
        events = []
        for client_id, state in self._orders.items():
            if state.final:
                continue
            order = self._lookup(client_id)
            if order is None:
                raise LiveError(f"Alpaca no longer finds order {client_id}")
            events.extend(self._progress(client_id, order))
        return events

    def close(self) -> None:
        self._client._session.close()

    # -- helpers ----------------------------------------------------------------------------

    def check_account(self) -> None:
        """Refuse an account Sentio cannot trade (blocked), with one line."""
        account = self._call("the account", self._client.get_account)
        for flag in ("account_blocked", "trading_blocked"):
            if getattr(account, flag, False):
                raise LiveError(f"the Alpaca paper account {account.account_number} is {flag}")

    def _call(self, what: str, fn, *args):
        from alpaca.common.exceptions import APIError
        from pydantic import ValidationError
        from requests.exceptions import RequestException

        try:
            return fn(*args)
        except APIError as exc:
            raise LiveError(f"the Alpaca trading API refused {what}: {_api_text(exc)}") from exc
        except RequestException as exc:
            raise LiveError(
                f"cannot reach the Alpaca trading API at {self.url} ({excerpt(str(exc), 160)}); "
                f"check the network or {ENV_TRADING_URL}"
            ) from exc
        except (ValidationError, ValueError) as exc:
            raise LiveError(
                f"the Alpaca trading API sent {what} in a form alpaca-py cannot read "
                f"({excerpt(str(exc), 160)})"
            ) from exc

    def _lookup(self, client_id: str):
        """The broker's order with this client id, or None when it has none (HTTP 404)."""
        get = _answers(self._client.get_order_by_client_id, 404)
        try:
            return self._call(f"order {client_id}", get, client_id)
        except _Answer:
            return None

    def _send(self, request: OrderRequest):
        """POST the order: (order, None), (None, rejected event), or (None, None) for a
        duplicate client id."""
        from alpaca.trading.enums import OrderSide, TimeInForce
        from alpaca.trading.requests import MarketOrderRequest

        body = MarketOrderRequest(
            symbol=request.symbol,
            qty=abs(request.qty),
            side=OrderSide.BUY if request.qty > 0 else OrderSide.SELL,
            time_in_force=TimeInForce.DAY,
            client_order_id=request.client_id,
        )
        post = _answers(self._client.submit_order, 403, 422)
        try:
            return self._call(f"order {request.client_id}", post, body), None
        except _Answer as answer:
            text = _api_text(answer.error)
            if answer.error.status_code == 422 and "client_order_id" in text:
                return None, None
            return None, BrokerEvent("rejected", request.client_id, request.symbol, detail=text)

    def _known(self, request: OrderRequest, order) -> BrokerEvent:
        """The event for a client id the broker already had: its status, nothing sent.

        An order of this session keeps being followed by :meth:`poll` (which reports what it
        has not reported yet); one from before (a restart) is followed from where it stands,
        its earlier fills being in the account's positions already."""
        status = _status(order)
        filled, total = int(float(order.filled_qty or 0)), int(float(order.qty or 0))
        detail = (
            f"client id already known to the broker (status {status}, {filled} of {total} "
            f"{order.symbol} filled); not sent again"
        )
        kind = "accepted"
        if request.client_id not in self._orders:
            state = _Order(order.symbol, _sign(order), filled, filled * _avg(order))
            state.final = status in FINAL
            self._orders[request.client_id] = state
            if status == "rejected":
                kind = "rejected"
            elif status in ("canceled", "expired", "replaced"):
                kind = "cancelled"
        ts = _ns(order.submitted_at)
        return BrokerEvent(kind, request.client_id, order.symbol, ts=ts, detail=detail)

    def _progress(self, client_id: str, order, submitted: bool = False) -> list[BrokerEvent]:
        """The lifecycle steps of ``order`` since its last report."""
        state = self._orders[client_id]
        status = _status(order)
        events = []
        if submitted and status != "rejected":
            events.append(
                BrokerEvent("accepted", client_id, state.symbol, ts=_ns(order.submitted_at))
            )
        filled = int(round(float(order.filled_qty or 0)))
        if filled > state.filled:
            notional = filled * _avg(order)
            delta = filled - state.filled
            # the new shares' average price; rounded to 1e-6 to drop float noise of the division
            price = round((notional - state.notional) / delta, 6)
            kind = "filled" if status == "filled" else "partial"
            when = _ns(order.filled_at if status == "filled" else order.updated_at)
            events.append(
                BrokerEvent(kind, client_id, state.symbol, state.sign * delta, price, 0.0, when)
            )
            state.filled, state.notional = filled, notional
        if status == "filled":
            state.final = True
        elif status == "rejected":
            state.final = True
            events.append(
                BrokerEvent(
                    "rejected", client_id, state.symbol, ts=_ns(order.failed_at), detail=status
                )
            )
        elif status in ("canceled", "expired", "replaced"):
            state.final = True
            stamp = order.expired_at if status == "expired" else order.canceled_at
            detail = status if filled == 0 else f"{status} after {filled} filled"
            events.append(
                BrokerEvent(
                    "cancelled",
                    client_id,
                    state.symbol,
                    ts=_ns(stamp or order.updated_at),
                    detail=detail,
                )
            )
        return events


class _Answer(Exception):
    """An HTTP error that is the broker's answer (no such order, order refused), not a
    failure."""

    def __init__(self, error) -> None:
        super().__init__(str(error))
        self.error = error


def _answers(fn, *codes: int):
    """``fn`` raising :class:`_Answer` for alpaca-py's APIError with a status in ``codes``."""
    from alpaca.common.exceptions import APIError

    @functools.wraps(fn)
    def call(*args):
        try:
            return fn(*args)
        except APIError as exc:
            if exc.status_code in codes:
                raise _Answer(exc) from exc
            raise

    return call


def _api_text(exc) -> str:
    try:
        message = exc.message
    except (ValueError, KeyError, TypeError):
        message = str(exc)
    return f"HTTP {exc.status_code}: {_cut(message, 160)}"


def _cut(text: object, limit: int) -> str:
    """A server's or a library's message on one line, at most ``limit`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _status(order) -> str:
    return str(getattr(order.status, "value", order.status))


def _sign(order) -> int:
    return 1 if str(getattr(order.side, "value", order.side)) == "buy" else -1


def _avg(order) -> float:
    return float(order.filled_avg_price or 0.0)


def _ns(when) -> int:
    """A broker time as int64 ns UTC (0 when it gave none)."""
    return 0 if when is None else int(pd.Timestamp(when).as_unit("ns").value)


__all__ = [
    "AlpacaFeed",
    "AlpacaPaperBroker",
    "BROKER_NAME",
    "FEED_NAME",
    "open_broker",
    "open_feed",
]
