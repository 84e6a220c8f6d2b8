"""A loopback fake of the parts of the Alpaca APIs that Sentio uses, for tests on 127.0.0.1.

It speaks the documented wire formats (docs.alpaca.markets), so alpaca-py's own clients talk to
it unchanged:

- the market-data stream (``/v2/iex``): on connect ``[{"T":"success","msg":"connected"}]``;
  ``{"action":"auth","key","secret"}`` -> ``authenticated`` or ``{"T":"error","code":402}``;
  ``{"action":"subscribe","bars":[...],"updatedBars":[...]}`` -> a ``subscription`` message;
  then frames that are msgpack arrays of ``{"T":"b"|"u","S","o","h","l","c","v","t"}``, ``t``
  a msgpack timestamp (alpaca-py sends ``Content-Type: application/msgpack`` and reads msgpack).
  Test hooks: :meth:`AlpacaServer.push` (any messages, any order), :meth:`push_raw` (bytes
  that are not a msgpack array), :meth:`drop` (the server closes the connection);
- the historical bars endpoint ``GET /v2/stocks/bars`` (what ``StockHistoricalDataClient``
  calls) with ``next_page_token`` paging (``page_size``) and a status on command
  (``fail_next``, e.g. 429);
- the trading API: ``GET /v2/account``, ``GET /v2/positions``, ``POST /v2/orders`` (422 on a
  duplicate ``client_order_id``), ``GET /v2/orders`` (``status=open``),
  ``GET /v2/orders:by_client_order_id`` (404 when unknown), ``GET /v2/orders/{id}``; test hooks
  :meth:`fill` (partial or full), :meth:`reject`, :meth:`cancel`, :meth:`expire`.

Every REST call checks the ``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY`` headers (401 if
wrong). Both servers bind port 0 on 127.0.0.1; nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import msgpack
import pandas as pd
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

KEY, SECRET = "test-key-id", "test-secret-key"
FINAL = ("filled", "canceled", "expired", "rejected")


def bar_message(symbol: str, ts: str | int, o, h, low, c, v, kind: str = "b") -> dict:
    """One stream bar as Alpaca sends it (``t`` a msgpack timestamp of the bar START)."""
    ns = ts if isinstance(ts, int) else pd.Timestamp(ts).value
    return {
        "T": kind,
        "S": symbol,
        "o": o,
        "h": h,
        "l": low,
        "c": c,
        "v": v,
        "t": msgpack.Timestamp.from_unix_nano(ns),
        "n": 10,
        "vw": c,
    }


def rest_bar(ts: str, o, h, low, c, v) -> dict:
    """One historical bar as ``/v2/stocks/bars`` returns it (``t`` RFC 3339, UTC)."""
    t = pd.Timestamp(ts).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"t": t, "o": o, "h": h, "l": low, "c": c, "v": v, "n": 10, "vw": c}


def closed_port() -> int:
    """A loopback port nothing listens on (bound, read and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AlpacaServer:
    """The fake: start with ``with AlpacaServer() as server:``; :meth:`env` gives the
    environment variables that point Sentio at it."""

    def __init__(self, cash: float = 100_000.0) -> None:
        self.lock = threading.Condition()
        # stream state
        self.connections = 0
        self.auths: list[tuple[str, str]] = []
        self.subscriptions: list[dict] = []
        self.refuse_auth = False
        self._clients: set = set()
        # data REST state
        self.bars: dict[str, list[dict]] = {}
        self.page_size = 10_000
        self.fail_next: list[int] = []  # statuses for the next bar requests, in order
        self.fail_days: dict[str, int] = {}  # New York date of a request's start -> status
        self.bar_requests: list[dict] = []
        # trading state
        self.cash = cash
        self.positions: dict[str, int] = {}
        self.orders: dict[str, dict] = {}  # client_order_id -> order JSON
        self.order_posts: list[dict] = []  # every POST /v2/orders body, accepted or not
        self.refuse_orders: dict[str, tuple[int, str]] = {}  # symbol -> (status, message)
        self.hide_once: set[str] = set()  # client ids the next look-up does not find (a race)
        self.account: dict = {}  # fields that override the account's
        self._start_stream()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._http.daemon_threads = True
        self._http_thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._http_thread.start()

    # ------------------------------------------------------------------ lifecycle
    @property
    def stream_url(self) -> str:
        return f"ws://127.0.0.1:{self._ws_port}/v2/iex"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def env(self) -> dict[str, str]:
        return {
            "APCA_API_KEY_ID": KEY,
            "APCA_API_SECRET_KEY": SECRET,
            "SENTIO_ALPACA_STREAM_URL": self.stream_url,
            "SENTIO_ALPACA_TRADING_URL": self.rest_url,
            "SENTIO_ALPACA_DATA_URL": self.rest_url,
        }

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        asyncio.run_coroutine_threadsafe(self._stop_ws(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._ws_thread.join(timeout=5)

    def __enter__(self) -> AlpacaServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def wait(self, predicate, timeout: float = 10.0) -> None:
        """Block until ``predicate(self)`` holds (checked on every state change)."""
        with self.lock:
            if not self.lock.wait_for(lambda: predicate(self), timeout=timeout):
                raise TimeoutError(f"the fake Alpaca server waited {timeout} s in vain")

    # ------------------------------------------------------------------ stream
    def _start_stream(self) -> None:
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def main() -> None:
            self._ws_server = await serve(self._session, "127.0.0.1", 0)
            self._ws_port = self._ws_server.sockets[0].getsockname()[1]
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.create_task(main())
            self._loop.run_forever()

        self._ws_thread = threading.Thread(target=run, daemon=True)
        self._ws_thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake stream server did not start")

    async def _stop_ws(self) -> None:
        self._ws_server.close()
        await self._ws_server.wait_closed()

    async def _session(self, ws) -> None:
        with self.lock:
            self.connections += 1
            self.lock.notify_all()
        try:
            await self._converse(ws)
        except ConnectionClosed:  # the client went away, or drop() closed it
            pass
        finally:
            with self.lock:
                self._clients.discard(ws)
                self.lock.notify_all()

    async def _converse(self, ws) -> None:
        await ws.send(msgpack.packb([{"T": "success", "msg": "connected"}]))
        auth = msgpack.unpackb(await ws.recv())
        with self.lock:
            self.auths.append((auth.get("key"), auth.get("secret")))
            refused = self.refuse_auth or (auth.get("key"), auth.get("secret")) != (KEY, SECRET)
            self.lock.notify_all()
        if auth.get("action") != "auth" or refused:
            await ws.send(msgpack.packb([{"T": "error", "code": 402, "msg": "auth failed"}]))
            await ws.wait_closed()
            return
        await ws.send(msgpack.packb([{"T": "success", "msg": "authenticated"}]))
        async for frame in ws:
            msg = msgpack.unpackb(frame)
            if msg.get("action") != "subscribe":
                continue
            channels = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses")
            reply = {"T": "subscription", **{k: list(msg.get(k, [])) for k in channels}}
            await ws.send(msgpack.packb([reply]))
            with self.lock:
                self.subscriptions.append({k: msg[k] for k in msg if k != "action"})
                self._clients.add(ws)
                self.lock.notify_all()

    def _on_loop(self, coro) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=5)

    def push(self, *messages: dict) -> None:
        """Send one frame holding ``messages`` to every subscribed client."""
        self.push_raw(msgpack.packb(list(messages)))

    def push_raw(self, frame: bytes) -> None:
        """Send ``frame`` as it is (a malformed one, for instance)."""

        async def send() -> None:
            for ws in list(self._clients):
                await ws.send(frame)

        self._on_loop(send())

    def drop(self, abort: bool = False) -> None:
        """Close every client connection from the server side: with a close frame (code 1011,
        as on a restart), or ``abort``: the TCP connection cut without one (a network fault)."""

        async def close() -> None:
            for ws in list(self._clients):
                if abort:
                    ws.transport.abort()
                else:
                    await ws.close(code=1011, reason="server restart")

        self._on_loop(close())

    # ------------------------------------------------------------------ trading hooks
    def fill(self, client_id: str, qty: int, price: float) -> None:
        """The broker fills ``qty`` more shares (unsigned) of an order at ``price``."""
        with self.lock:
            order = self.orders[client_id]
            done = float(order["filled_qty"])
            total = float(order["qty"])
            if order["status"] in FINAL or done + qty > total:
                raise ValueError(f"cannot fill {qty} of {client_id} ({order['status']})")
            avg = float(order["filled_avg_price"] or 0.0)
            order["filled_avg_price"] = str((done * avg + qty * price) / (done + qty))
            order["filled_qty"] = str(int(done + qty))
            order["status"] = "filled" if done + qty == total else "partially_filled"
            order["updated_at"] = _now()
            if order["status"] == "filled":
                order["filled_at"] = order["updated_at"]
            sign = 1 if order["side"] == "buy" else -1
            symbol = order["symbol"]
            self.positions[symbol] = self.positions.get(symbol, 0) + sign * qty
            self.cash -= sign * qty * price
            self.lock.notify_all()

    def _finish(self, client_id: str, status: str, stamp: str) -> None:
        with self.lock:
            order = self.orders[client_id]
            order["status"] = status
            order["updated_at"] = order[stamp] = _now()
            self.lock.notify_all()

    def reject(self, client_id: str) -> None:
        self._finish(client_id, "rejected", "failed_at")

    def cancel(self, client_id: str) -> None:
        self._finish(client_id, "canceled", "canceled_at")

    def expire(self, client_id: str) -> None:
        self._finish(client_id, "expired", "expired_at")

    def _new_order(self, body: dict) -> dict:
        now = _now()
        return {
            "id": str(uuid.uuid4()),
            "client_order_id": body.get("client_order_id") or str(uuid.uuid4()),
            "created_at": now,
            "updated_at": now,
            "submitted_at": now,
            "filled_at": None,
            "expired_at": None,
            "expires_at": None,
            "canceled_at": None,
            "failed_at": None,
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, body["symbol"])),
            "symbol": body["symbol"],
            "asset_class": "us_equity",
            "notional": None,
            "qty": str(body["qty"]),
            "filled_qty": "0",
            "filled_avg_price": None,
            "order_class": "simple",
            "order_type": body["type"],
            "type": body["type"],
            "side": body["side"],
            "time_in_force": body["time_in_force"],
            "limit_price": None,
            "stop_price": None,
            "status": "accepted",
            "extended_hours": False,
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
        }

    def _position(self, symbol: str, qty: int) -> dict:
        return {
            "asset_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, symbol)),
            "symbol": symbol,
            "exchange": "NASDAQ",
            "asset_class": "us_equity",
            "asset_marginable": True,
            "avg_entry_price": "100",
            "qty": str(qty),  # negative for a short position, as Alpaca reports it
            "side": "long" if qty > 0 else "short",
            "market_value": str(qty * 100.0),
            "cost_basis": str(qty * 100.0),
            "unrealized_pl": "0",
            "unrealized_plpc": "0",
            "current_price": "100",
            "lastday_price": "100",
            "change_today": "0",
            "qty_available": str(qty),
        }

    def _account(self) -> dict:
        return {
            "id": "11111111-2222-3333-4444-555555555555",
            "account_number": "PA0000TEST",
            "status": "ACTIVE",
            "currency": "USD",
            "cash": f"{self.cash:.2f}",
            "buying_power": f"{self.cash:.2f}",
            "portfolio_value": f"{self.cash:.2f}",
            "pattern_day_trader": False,
            "trading_blocked": False,
            "transfers_blocked": False,
            "account_blocked": False,
            "shorting_enabled": True,
            "multiplier": "1",
            "created_at": "2024-01-02T00:00:00Z",
            **self.account,
        }

    # ------------------------------------------------------------------ REST
    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _reply(self, status: int, body) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                given = (
                    self.headers.get("APCA-API-KEY-ID"),
                    self.headers.get("APCA-API-SECRET-KEY"),
                )
                if given != (KEY, SECRET):
                    self._reply(401, {"code": 40110000, "message": "request is not authorized"})
                    return False
                return True

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if not self._authorised():
                    return
                url = urlparse(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                with server.lock:
                    status, body = server._get(url.path, query)
                self._reply(status, body)

            def do_POST(self) -> None:  # noqa: N802
                if not self._authorised():
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server.lock:
                    status, reply = server._post(urlparse(self.path).path, body)
                    server.lock.notify_all()
                self._reply(status, reply)

        return Handler

    def _get(self, path: str, query: dict) -> tuple[int, object]:
        if path == "/v2/stocks/bars":
            return self._stock_bars(query)
        if path == "/v2/account":
            return 200, self._account()
        if path == "/v2/positions":
            return 200, [self._position(s, q) for s, q in sorted(self.positions.items()) if q]
        if path == "/v2/orders":
            wanted = query.get("status", "open")
            orders = [
                o
                for o in self.orders.values()
                if wanted == "all" or (o["status"] in FINAL) == (wanted == "closed")
            ]
            return 200, orders[: int(query.get("limit", 50))]
        if path == "/v2/orders:by_client_order_id":
            client_id = query.get("client_order_id", "")
            order = self.orders.get(client_id)
            if client_id in self.hide_once:
                self.hide_once.discard(client_id)
                order = None
            if order is None:
                return 404, {"code": 40410000, "message": "order not found"}
            return 200, order
        if path.startswith("/v2/orders/"):
            order_id = path.rsplit("/", 1)[1]
            for order in self.orders.values():
                if order["id"] == order_id:
                    return 200, order
            return 404, {"code": 40410000, "message": "order not found"}
        return 404, {"code": 40400000, "message": f"not found: {path}"}

    def _post(self, path: str, body: dict) -> tuple[int, object]:
        if path != "/v2/orders":
            return 404, {"code": 40400000, "message": f"not found: {path}"}
        self.order_posts.append(body)
        client_id = body.get("client_order_id")
        if client_id in self.orders:
            return 422, {"code": 40010001, "message": "client_order_id must be unique"}
        if body.get("symbol") in self.refuse_orders:
            status, message = self.refuse_orders[body["symbol"]]
            return status, {"code": status * 100_000, "message": message}
        order = self._new_order(body)
        self.orders[order["client_order_id"]] = order
        return 200, order

    def _stock_bars(self, query: dict) -> tuple[int, object]:
        self.bar_requests.append(dict(query))
        start, end = pd.Timestamp(query["start"]), pd.Timestamp(query["end"])
        day = str(start.tz_convert("America/New_York").date())
        status = self.fail_next.pop(0) if self.fail_next else self.fail_days.get(day)
        if status is not None:
            message = "too many requests" if status == 429 else "internal server error"
            return status, {"code": status * 100_000, "message": message}
        offset = int(base64.b64decode(query["page_token"])) if query.get("page_token") else 0
        limit = min(int(query.get("limit") or 10_000), self.page_size)
        out: dict[str, list] = {}
        token = None
        for symbol in query["symbols"].split(","):
            rows = [b for b in self.bars.get(symbol, []) if start <= pd.Timestamp(b["t"]) <= end]
            page = rows[offset : offset + limit]
            if page:
                out[symbol] = page
            if offset + limit < len(rows):
                token = base64.b64encode(str(offset + limit).encode()).decode()
        return 200, {"bars": out, "next_page_token": token}


__all__ = ["AlpacaServer", "KEY", "SECRET", "bar_message", "closed_port", "rest_bar"]
