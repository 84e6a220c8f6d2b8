"""The Alpaca feed against a loopback server speaking Alpaca's stream protocol (msgpack).

alpaca-py's own ``StockDataStream`` does the talking; the expectations are the messages the
server sent (a bar's ``ts`` is its ``t``: the start of the minute), in the order it sent them.
No test reaches the internet.
"""

from __future__ import annotations

import math
import time

import pandas as pd
import pytest

pytest.importorskip("alpaca", reason="alpaca-py is not installed (pip install 'sentio[alpaca]')")

from sentio.core.errors import LiveError  # noqa: E402
from sentio.data.download import AlpacaSettings, alpaca_settings  # noqa: E402
from sentio.live.alpaca import AlpacaFeed, open_feed  # noqa: E402
from sentio.live.types import SYMBOLS, FeedBar, FeedFault  # noqa: E402
from tests.live.alpaca_server import (  # noqa: E402
    KEY,
    SECRET,
    AlpacaServer,
    bar_message,
    closed_port,
)

POLL_S = 0.05
# alpaca-py 0.44 imports websockets.legacy, which websockets >= 14 marks deprecated
pytestmark = pytest.mark.filterwarnings("ignore:websockets.legacy:DeprecationWarning")


@pytest.fixture
def server():
    with AlpacaServer() as fake:
        yield fake


@pytest.fixture
def feed(server):
    opened = AlpacaFeed(SYMBOLS, alpaca_settings(server.env()), poll_s=POLL_S)
    server.wait(lambda s: len(s.subscriptions) == 1)
    yield opened
    opened.close()


def take(feed, count: int, timeout: float = 10.0) -> list:
    """The next ``count`` items that are not None (failing after ``timeout`` seconds)."""
    items, deadline = [], time.monotonic() + timeout
    for item in feed:
        if item is not None:
            items.append(item)
            if len(items) == count:
                return items
        assert time.monotonic() < deadline, f"only {len(items)} of {count} items: {items}"
    raise AssertionError(f"the feed ended after {items}")


def expected(symbol, t, o, h, low, c, v, source="alpaca") -> FeedBar:
    """What the server's bar must become: ts = its start (``t``), in ns UTC."""
    return FeedBar(symbol, pd.Timestamp(t).value, o, h, low, c, v, source)


def test_it_authenticates_and_subscribes_bars_and_updated_bars(server, feed):
    assert server.auths == [(KEY, SECRET)]
    assert server.subscriptions == [{"bars": list(SYMBOLS), "updatedBars": list(SYMBOLS)}]


def test_bars_come_as_delivered_never_reordered_or_deduplicated(server, feed):
    sent = [
        ("QQQ", "2025-01-02T14:31:00Z", 510.0, 511.5, 509.0, 511.0, 12000),
        ("QQQ", "2025-01-02T14:30:00Z", 509.5, 510.5, 509.0, 510.0, 15000),  # late
        ("QQQ", "2025-01-02T14:30:00Z", 509.5, 510.5, 509.0, 510.0, 15000),  # duplicate
        ("TQQQ", "2025-01-02T14:30:00Z", 80.25, 80.5, 80.0, 80.4, 3000),
    ]
    server.push(*[bar_message(*bar) for bar in sent[:2]])  # two in one frame
    server.push(*[bar_message(*bar) for bar in sent[2:]])
    assert take(feed, 4) == [expected(*bar) for bar in sent]


def test_updated_bars_are_bars_with_their_own_source(server, feed):
    server.push(
        bar_message("QQQ", "2025-01-02T14:30:00Z", 1.0, 2.0, 0.5, 1.5, 100),
        bar_message("QQQ", "2025-01-02T14:30:00Z", 1.0, 2.5, 0.5, 1.5, 140, kind="u"),
    )
    assert take(feed, 2) == [
        expected("QQQ", "2025-01-02T14:30:00Z", 1.0, 2.0, 0.5, 1.5, 100),
        expected("QQQ", "2025-01-02T14:30:00Z", 1.0, 2.5, 0.5, 1.5, 140, "alpaca:updatedBars"),
    ]


def test_malformed_messages_become_faults_in_their_place(server, feed):
    good = bar_message("QQQ", "2025-01-02T14:30:00Z", 1.0, 2.0, 0.5, 1.5, 100)
    text_open = {**good, "o": "abc"}
    no_close = {k: v for k, v in good.items() if k != "c"}
    no_symbol = {k: v for k, v in good.items() if k != "S"}
    string_time = {**good, "t": "2025-01-02T14:30:00Z"}
    server.push(good, [1, 2], text_open, no_close, no_symbol, string_time, good)
    server.push(
        {**good, "c": math.nan},
        {**good, "h": math.inf},
        {**good, "l": -1.0},
        {**good, "o": 0.0},
        {**good, "v": -5},
    )
    server.push_raw(b"\xc1 not msgpack")
    server.push_raw(b"\x81\xa1T\xa1b")  # a msgpack map, not an array of messages
    server.push(good)
    items = take(feed, 15)
    bar = expected("QQQ", "2025-01-02T14:30:00Z", 1.0, 2.0, 0.5, 1.5, 100)
    assert items[0] == bar and items[6] == bar and items[14] == bar
    faults = [items[i] for i in range(15) if i not in (0, 6, 14)]
    assert all(isinstance(f, FeedFault) and f.kind == "malformed" for f in faults)
    assert all(f.source == "alpaca" for f in faults)
    says = [
        "not an object",
        "open",
        "close",
        "no symbol",
        "'t'",
        "close is nan",
        "high is inf",
        "low is -1.0",
        "open is 0.0",
        "volume is -5",
        "cannot be decoded",
        "not a msgpack array",
    ]
    for fault, word in zip(faults, says, strict=True):
        assert word in fault.detail, (word, fault.detail)


def test_nothing_within_poll_s_yields_none(feed):
    started = time.monotonic()
    assert next(iter(feed)) is None
    assert time.monotonic() - started >= POLL_S * 0.9


@pytest.mark.parametrize("abort", [False, True], ids=["close-frame", "tcp-cut"])
def test_a_dropped_connection_reconnects_reauthenticates_resubscribes_and_counts(
    server, feed, abort
):
    for n in (1, 2):
        server.drop(abort=abort)
        server.wait(lambda s, n=n: len(s.subscriptions) == n + 1)
        minute = f"2025-01-02T14:3{n}:00Z"
        server.push(bar_message("QQQ", minute, 1.0, 2.0, 0.5, 1.5, 100))
        assert take(feed, 1) == [expected("QQQ", minute, 1.0, 2.0, 0.5, 1.5, 100)]
        assert feed.reconnects == n
    assert server.auths == [(KEY, SECRET)] * 3
    assert server.subscriptions == [server.subscriptions[0]] * 3


def test_resume_after_skips_bars_at_or_before_it(server, feed):
    feed.resume_after(pd.Timestamp("2025-01-02T14:31:00Z").value)
    server.push(
        *[bar_message("QQQ", f"2025-01-02T14:3{m}:00Z", 1.0, 2.0, 0.5, 1.5, 100) for m in (0, 1, 2)]
    )
    assert take(feed, 1) == [expected("QQQ", "2025-01-02T14:32:00Z", 1.0, 2.0, 0.5, 1.5, 100)]
    assert feed.skipped == 2
    assert feed.history() is None


def test_close_stops_the_thread_within_seconds(server, feed):
    started = time.monotonic()
    feed.close()
    assert time.monotonic() - started < 3
    assert not feed._thread.is_alive()
    server.wait(lambda s: not s._clients)
    assert list(feed) == []


def test_refused_keys_end_the_iteration_with_one_line(server):
    server.refuse_auth = True
    feed = AlpacaFeed(["QQQ"], alpaca_settings(server.env()), poll_s=POLL_S)
    try:
        with pytest.raises(LiveError, match=r"auth failed \(code 402\).*APCA_API_KEY_ID"):
            take(feed, 1)
    finally:
        feed.close()
    assert server.connections == 1  # refused keys are not retried


def test_a_subscription_the_plan_lacks_ends_the_iteration(server, feed):
    bar = bar_message("QQQ", "2025-01-02T14:30:00Z", 1.0, 2.0, 0.5, 1.5, 100)
    server.push(bar, {"T": "error", "code": 409, "msg": "insufficient subscription"})
    assert take(feed, 1) == [expected("QQQ", "2025-01-02T14:30:00Z", 1.0, 2.0, 0.5, 1.5, 100)]
    with pytest.raises(LiveError, match=r"insufficient subscription \(code 409\)"):
        take(feed, 1)


def test_a_transient_stream_error_is_kept_as_a_warning(server, feed):
    server.push({"T": "error", "code": 500, "msg": "internal error"})
    server.push(bar_message("QQQ", "2025-01-02T14:30:00Z", 1.0, 2.0, 0.5, 1.5, 100))
    assert len(take(feed, 1)) == 1
    assert "stream error 500: internal error" in feed.warnings


def test_an_unreachable_stream_gives_up_after_three_attempts():
    settings = AlpacaSettings(KEY, SECRET, stream_url=f"ws://127.0.0.1:{closed_port()}/v2/iex")
    feed = AlpacaFeed(["QQQ"], settings, poll_s=POLL_S)
    try:
        with pytest.raises(LiveError, match="cannot connect.*after 3 attempts.*STREAM_URL"):
            take(feed, 1, timeout=15)
    finally:
        feed.close()


def test_open_feed_reads_the_environment(server, monkeypatch):
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    feed = open_feed(["QQQ"], poll_s=POLL_S)
    try:
        server.wait(lambda s: len(s.subscriptions) == 1)
        assert feed.name == "alpaca" and feed.url == server.stream_url
    finally:
        feed.close()


@pytest.mark.parametrize(
    "unset, bad, says",
    [
        ("APCA_API_KEY_ID", {}, "APCA_API_KEY_ID is not set"),
        ("APCA_API_SECRET_KEY", {}, "APCA_API_SECRET_KEY is not set"),
        (None, {"SENTIO_ALPACA_STREAM_URL": "http://x"}, "SENTIO_ALPACA_STREAM_URL"),
    ],
)
def test_open_feed_refuses_missing_keys_naming_the_variable(monkeypatch, unset, bad, says):
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    if unset:
        monkeypatch.delenv(unset)
    for name, value in bad.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(LiveError, match=says):
        open_feed(["QQQ"])


@pytest.mark.parametrize(
    "symbols, poll_s, feed_name",
    [([], 1.0, "iex"), (["Q Q"], 1.0, "iex"), (["QQQ"], 0, "iex"), (["QQQ"], 1.0, "otc")],
)
def test_bad_arguments_are_refused(symbols, poll_s, feed_name):
    with pytest.raises(LiveError):
        AlpacaFeed(symbols, AlpacaSettings(KEY, SECRET), poll_s=poll_s, feed=feed_name)
