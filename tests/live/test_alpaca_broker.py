"""The Alpaca paper broker against a loopback server speaking Alpaca's trading API.

alpaca-py's own ``TradingClient`` does the talking; the expectations are what the server holds
(its orders, positions and cash) and the fills the test made it execute, never values copied
from the broker's output. No test reaches the internet.
"""

from __future__ import annotations

import math

import pytest

pytest.importorskip("alpaca", reason="alpaca-py is not installed (pip install 'sentio[alpaca]')")

from sentio.core.errors import LiveError  # noqa: E402
from sentio.data.download import AlpacaSettings, alpaca_settings  # noqa: E402
from sentio.live.alpaca import AlpacaPaperBroker, open_broker  # noqa: E402
from sentio.live.types import OrderRequest  # noqa: E402
from tests.live.alpaca_server import KEY, SECRET, AlpacaServer, closed_port  # noqa: E402

# alpaca-py 0.44 imports websockets.legacy, which websockets >= 14 marks deprecated
pytestmark = pytest.mark.filterwarnings("ignore:websockets.legacy:DeprecationWarning")


@pytest.fixture
def server():
    with AlpacaServer(cash=50_000.0) as fake:
        yield fake


@pytest.fixture
def broker(server):
    opened = AlpacaPaperBroker(alpaca_settings(server.env()))
    yield opened
    opened.close()


def order(client_id: str, symbol: str, qty: int) -> OrderRequest:
    return OrderRequest(client_id, symbol, qty, target=qty, bar_ts=0)


def steps(events) -> list[tuple]:
    """(kind, client id, symbol, qty, price) of each event: what the lifecycle asserts."""
    return [(e.kind, e.client_id, e.symbol, e.qty, e.price) for e in events]


def test_positions_cash_and_open_orders_are_the_brokers(server, broker):
    server.positions = {"QQQ": 5, "SQQQ": -3}  # Alpaca reports a short as a negative qty
    assert broker.positions() == {"QQQ": 5, "SQQQ": -3}
    assert broker.cash() == 50_000.0
    assert broker.open_orders() == []
    broker.submit([order("a", "QQQ", 2), order("b", "PSQ", -1)])
    server.cancel("b")
    assert broker.open_orders() == ["a"]


def test_submit_sends_a_day_market_order_under_the_client_id(server, broker):
    events = broker.submit([order("run1-buy", "QQQ", 10), order("run1-sell", "TQQQ", -4)])
    assert [(e.kind, e.client_id, e.symbol, e.qty) for e in events] == [
        ("accepted", "run1-buy", "QQQ", 0),
        ("accepted", "run1-sell", "TQQQ", 0),
    ]
    assert all(e.ts > 0 and e.fees == 0.0 for e in events)
    assert [
        {k: post[k] for k in ("symbol", "side", "type", "time_in_force", "client_order_id")}
        for post in server.order_posts
    ] == [
        {
            "symbol": "QQQ",
            "side": "buy",
            "type": "market",
            "time_in_force": "day",
            "client_order_id": "run1-buy",
        },
        {
            "symbol": "TQQQ",
            "side": "sell",
            "type": "market",
            "time_in_force": "day",
            "client_order_id": "run1-sell",
        },
    ]
    assert [float(post["qty"]) for post in server.order_posts] == [10, 4]  # unsigned, with side


def test_partial_fills_are_reported_as_deltas_with_their_own_price(server, broker):
    broker.submit([order("b1", "QQQ", 10), order("s1", "SQQQ", -6)])
    assert broker.poll({}) == []  # nothing filled yet
    server.fill("b1", 3, 100.0)
    server.fill("s1", 6, 20.0)
    assert steps(broker.poll({})) == [
        ("partial", "b1", "QQQ", 3, 100.0),
        ("filled", "s1", "SQQQ", -6, 20.0),
    ]
    server.fill("b1", 5, 102.0)
    assert steps(broker.poll({})) == [("partial", "b1", "QQQ", 5, 102.0)]
    server.fill("b1", 2, 99.5)
    events = broker.poll({})
    assert steps(events) == [("filled", "b1", "QQQ", 2, 99.5)]
    assert events[0].ts > 0 and events[0].fees == 0.0
    assert broker.poll({}) == []  # final orders are not read again
    # the broker's own books agree with the reported fills
    assert broker.positions() == {"QQQ": 10, "SQQQ": -6}
    spent = 3 * 100.0 + 5 * 102.0 + 2 * 99.5 - 6 * 20.0
    assert broker.cash() == pytest.approx(50_000.0 - spent)


def test_two_fills_between_polls_are_one_step_at_their_average(server, broker):
    broker.submit([order("b1", "QQQ", 10)])
    server.fill("b1", 4, 100.0)
    server.fill("b1", 6, 105.0)
    (event,) = broker.poll({})
    assert (event.kind, event.qty) == ("filled", 10)
    assert event.price == pytest.approx((4 * 100.0 + 6 * 105.0) / 10)


def test_rejected_cancelled_and_expired_orders(server, broker):
    broker.submit([order("r", "QQQ", 1), order("c", "TQQQ", 8), order("x", "PSQ", -2)])
    server.reject("r")
    server.fill("c", 4, 80.0)
    server.cancel("c")
    server.expire("x")
    events = broker.poll({})
    assert steps(events)[1] == ("partial", "c", "TQQQ", 4, 80.0)
    kinds = [(e.kind, e.client_id, e.detail) for e in events]
    assert kinds == [
        ("rejected", "r", "rejected"),
        ("partial", "c", ""),
        ("cancelled", "c", "canceled after 4 filled"),
        ("cancelled", "x", "expired"),
    ]
    assert all(math.isnan(e.price) and e.qty == 0 for e in events if e.kind != "partial")
    assert broker.poll({}) == []


def test_an_order_the_broker_refuses_is_rejected_with_its_reason(server, broker):
    server.refuse_orders["QQQ"] = (403, "insufficient buying power")
    (event,) = broker.submit([order("big", "QQQ", 10_000)])
    assert (event.kind, event.client_id) == ("rejected", "big")
    assert event.detail == "HTTP 403: insufficient buying power"
    assert server.orders == {}
    assert broker.poll({}) == []


def test_a_client_id_the_broker_knows_is_not_sent_again(server, broker):
    broker.submit([order("once", "QQQ", 10)])
    server.fill("once", 10, 101.0)
    assert steps(broker.poll({})) == [("filled", "once", "QQQ", 10, 101.0)]
    # a restart: a new broker decides the same order again, with the same client id
    again = AlpacaPaperBroker(alpaca_settings(server.env()))
    (event,) = again.submit([order("once", "QQQ", 10)])
    assert event.kind == "accepted"
    assert "status filled, 10 of 10 QQQ filled" in event.detail
    assert "not sent again" in event.detail
    assert len(server.order_posts) == 1
    assert again.poll({}) == []  # its fills were reported before the restart
    # in the same session too
    (event,) = broker.submit([order("once", "QQQ", 10)])
    assert event.kind == "accepted" and len(server.order_posts) == 1


def test_a_known_open_order_is_followed_from_where_it_stood(server, broker):
    broker.submit([order("open", "QQQ", 10)])
    server.fill("open", 4, 100.0)
    again = AlpacaPaperBroker(alpaca_settings(server.env()))
    (event,) = again.submit([order("open", "QQQ", 10)])
    assert "status partially_filled, 4 of 10" in event.detail
    server.fill("open", 6, 110.0)
    assert steps(again.poll({})) == [("filled", "open", "QQQ", 6, 110.0)]


def test_resending_in_the_same_session_loses_no_step(server, broker):
    broker.submit([order("c", "QQQ", 10)])
    server.fill("c", 4, 100.0)
    server.cancel("c")
    (event,) = broker.submit([order("c", "QQQ", 10)])  # before any poll
    assert event.kind == "accepted" and "status canceled, 4 of 10" in event.detail
    assert [(e.kind, e.qty) for e in broker.poll({})] == [("partial", 4), ("cancelled", 0)]
    assert len(server.order_posts) == 1


def test_a_finished_order_from_before_a_restart_reports_its_end(server, broker):
    broker.submit([order("gone", "TQQQ", 5), order("no", "PSQ", 1)])
    server.expire("gone")
    server.reject("no")
    again = AlpacaPaperBroker(alpaca_settings(server.env()))
    events = again.submit([order("gone", "TQQQ", 5), order("no", "PSQ", 1)])
    assert [(e.kind, e.client_id) for e in events] == [("cancelled", "gone"), ("rejected", "no")]
    assert again.poll({}) == [] and len(server.order_posts) == 2


def test_a_duplicate_the_broker_refuses_with_422_is_not_sent_again(server, broker):
    broker.submit([order("race", "QQQ", 3)])
    server.hide_once.add("race")  # the look-up misses it, so the POST is tried and refused
    again = AlpacaPaperBroker(alpaca_settings(server.env()))
    (event,) = again.submit([order("race", "QQQ", 3)])
    assert event.kind == "accepted" and "not sent again" in event.detail
    assert [p["client_order_id"] for p in server.order_posts] == ["race", "race"]
    assert len(server.orders) == 1


def test_a_zero_quantity_is_not_sent(server, broker):
    (event,) = broker.submit([order("zero", "QQQ", 0)])
    assert event.kind == "rejected" and server.order_posts == []


def test_wrong_keys_are_one_live_error(server):
    settings = AlpacaSettings("wrong", "keys", trading_url=server.rest_url)
    broker = AlpacaPaperBroker(settings)
    with pytest.raises(LiveError, match=r"refused the account: HTTP 401: request is not auth"):
        broker.cash()


def test_an_unreachable_api_is_one_live_error():
    port = closed_port()
    broker = AlpacaPaperBroker(AlpacaSettings(KEY, SECRET, trading_url=f"http://127.0.0.1:{port}"))
    with pytest.raises(LiveError, match="cannot reach the Alpaca trading API.*TRADING_URL"):
        broker.positions()


def test_the_live_money_host_is_refused():
    settings = AlpacaSettings(KEY, SECRET, trading_url="https://api.alpaca.markets")
    with pytest.raises(LiveError, match="live .real money. API"):
        AlpacaPaperBroker(settings)


def test_a_fractional_position_is_refused(server, broker):
    server.positions = {"QQQ": 0.5}
    with pytest.raises(LiveError, match="0.5 QQQ.*whole shares"):
        broker.positions()


def test_open_broker_reads_the_environment_and_checks_the_account(server, monkeypatch):
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    broker = open_broker()
    assert broker.name == "alpaca-paper" and broker.cash() == 50_000.0
    server.account["trading_blocked"] = True
    with pytest.raises(LiveError, match="trading_blocked"):
        open_broker()
    monkeypatch.delenv("APCA_API_SECRET_KEY")
    with pytest.raises(LiveError, match="APCA_API_SECRET_KEY is not set"):
        open_broker()
