"""``sentio data download`` through the real console script, against a loopback server speaking
Alpaca's historical bars API (``GET /v2/stocks/bars``, paged with ``next_page_token``).

The server holds whole New York days of 1-minute bars, pre-market and after-hours included (as
Alpaca serves them); the expected table is those bars cut to 09:30-16:00 New York by hand, and
the trading days are listed by hand (2025-01-09 was a market holiday, a national day of
mourning). No test reaches the internet.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("alpaca", reason="alpaca-py is not installed (pip install 'sentio[alpaca]')")

from sentio.data import read_bars  # noqa: E402
from tests.cli.badinput import assert_refused, run_script  # noqa: E402
from tests.live.alpaca_server import AlpacaServer, rest_bar  # noqa: E402

DAYS = ["2025-01-06", "2025-01-07", "2025-01-08", "2025-01-10"]  # Mon-Fri, the 9th closed
ARGS = ["--source", "alpaca", "--symbol", "QQQ", "--start", "2025-01-06", "--end", "2025-01-10"]


def day_bars(day: str, first: float) -> list[dict]:
    """Every minute from 04:00 to 19:59 New York (Alpaca's extended hours), prices rising."""
    minutes = pd.date_range(f"{day} 04:00", f"{day} 19:59", freq="1min", tz="America/New_York")
    bars = []
    for i, t in enumerate(minutes):
        o = first + i * 0.01
        bars.append(rest_bar(str(t), o, o + 0.05, o - 0.03, o + 0.02, 1000 + i))
    return bars


@pytest.fixture
def server():
    with AlpacaServer() as fake:
        # a bar on the holiday too: the download must not ask for that day
        for n, day in enumerate([*DAYS, "2025-01-09"]):
            fake.bars.setdefault("QQQ", []).extend(day_bars(day, 500.0 + n))
        fake.page_size = 400  # 960 bars a day: three pages
        yield fake


def regular(bars: list[dict]) -> pd.DataFrame:
    """The server's bars of the regular session (09:30 <= New York time < 16:00), by hand."""
    frame = pd.DataFrame(bars)
    local = pd.to_datetime(frame["t"], utc=True).dt.tz_convert("America/New_York")
    minutes = local.dt.hour * 60 + local.dt.minute
    keep = (minutes >= 9 * 60 + 30) & (minutes < 16 * 60) & local.dt.strftime("%F").isin(DAYS)
    frame = frame[keep.to_numpy()]
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(frame["t"], utc=True).dt.as_unit("ns").astype("int64"),
            "open": frame["o"].astype(float),
            "high": frame["h"].astype(float),
            "low": frame["l"].astype(float),
            "close": frame["c"].astype(float),
            "volume": frame["v"].astype(float),
        }
    ).reset_index(drop=True)


def ny_day(bar: dict) -> str:
    return str(pd.Timestamp(bar["t"]).tz_convert("America/New_York").date())


def text(done) -> str:
    """Standard output with rich's line wrapping undone."""
    return " ".join(done.stdout.split())


def requested_days(server) -> list[str]:
    """The New York day of every bar request the server answered or refused, in order."""
    return [
        str(pd.Timestamp(r["start"]).tz_convert("America/New_York").date())
        for r in server.bar_requests
    ]


def download(server, out: Path, *extra: str):
    return run_script(
        "sentio", "data", "download", *ARGS, "--out", str(out), *extra, env=server.env()
    )


def test_it_writes_the_regular_session_of_each_trading_day(server, tmp_path):
    out = tmp_path / "qqq.parquet"
    done = download(server, out, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    table = read_bars(out)
    want = regular(server.bars["QQQ"])
    got = table.frame[["ts", "open", "high", "low", "close", "volume"]]
    pd.testing.assert_frame_equal(got, want)
    assert (table.frame["symbol"] == "QQQ").all()
    assert table.meta["download"] == {
        "source": "alpaca",
        "symbol": "QQQ",
        "feed": "iex",
        "start": "2025-01-06",
        "end": "2025-01-10",
        "adjustment": "raw",
    }
    # 960 bars a day from 04:00 to 20:00, 390 of them regular
    assert report["rows_read"] == 4 * 960 and report["extended_hours"] == 4 * (960 - 390)
    assert report["rows_out"] == 4 * 390 and report["fetched"] == DAYS
    assert report["segments"] == 1  # the holiday is no missing trading day
    # one New York day per request, three pages each, the holiday never asked for
    assert requested_days(server) == [d for d in DAYS for _ in range(3)]
    first = server.bar_requests[0]
    assert (first["symbols"], first["timeframe"], first["feed"]) == ("QQQ", "1Min", "iex")
    assert first["adjustment"] == "raw"
    assert pd.Timestamp(first["start"]) == pd.Timestamp("2025-01-06", tz="America/New_York")
    parts = sorted(p.name for p in (tmp_path / "qqq.parquet.parts").iterdir())
    assert parts == [f"QQQ_iex_{d}.parquet" for d in DAYS]


def test_the_text_report_says_extended_hours_are_dropped(server, tmp_path):
    done = download(server, tmp_path / "q.parquet")
    assert done.returncode == 0, done.stderr
    assert "dropped 2280 outside the regular session" in text(done)
    assert "pre-market and after-hours" in text(done)
    assert done.stderr == ""


def test_an_interrupted_download_resumes_with_the_missing_days_only(server, tmp_path):
    out = tmp_path / "qqq.parquet"
    server.fail_days["2025-01-08"] = 500
    message = assert_refused(download(server, out), "HTTP 500", "2 of 4 day(s) are saved")
    assert "run the same command again" in message
    assert not out.exists()
    assert len(list((tmp_path / "qqq.parquet.parts").iterdir())) == 2
    server.fail_days.clear()
    server.bar_requests.clear()
    done = download(server, out, "--json")
    assert done.returncode == 0, done.stderr
    assert requested_days(server) == ["2025-01-08"] * 3 + ["2025-01-10"] * 3
    report = json.loads(done.stdout)
    assert report["reused"] == DAYS[:2] and report["fetched"] == DAYS[2:]
    got = read_bars(out).frame[["ts", "open", "high", "low", "close", "volume"]]
    pd.testing.assert_frame_equal(got, regular(server.bars["QQQ"]))


def test_a_rate_limit_is_retried(server, tmp_path):
    server.fail_next = [429]
    done = download(server, tmp_path / "q.parquet", "--json")
    assert done.returncode == 0, done.stderr
    # the refused request was sent again, then every other one once
    assert requested_days(server) == ["2025-01-06"] + [d for d in DAYS for _ in range(3)]
    assert server.bar_requests[0] == server.bar_requests[1]


def test_a_day_without_bars_is_reported_and_not_kept(server, tmp_path):
    server.bars["QQQ"] = [b for b in server.bars["QQQ"] if ny_day(b) != "2025-01-07"]
    done = download(server, tmp_path / "q.parquet")
    assert done.returncode == 0, done.stderr
    assert "no bar at all on 1 trading day(s): 2025-01-07" in text(done)
    parts = sorted(p.name for p in (tmp_path / "q.parquet.parts").iterdir())
    assert "QQQ_iex_2025-01-07.parquet" not in parts and len(parts) == 3


def test_a_damaged_part_is_fetched_again(server, tmp_path):
    out = tmp_path / "q.parquet"
    assert download(server, out).returncode == 0
    (tmp_path / "q.parquet.parts" / "QQQ_iex_2025-01-07.parquet").write_bytes(b"PAR1 broken")
    server.bar_requests.clear()
    done = download(server, out, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["refetched_damaged"] == ["2025-01-07"]
    assert requested_days(server) == ["2025-01-07"] * 3


def rows_of(server, day: str) -> list[dict]:
    """The server's bars of one New York day, in the order it sends them."""
    return [b for b in server.bars["QQQ"] if ny_day(b) == day]


def test_a_bad_bar_is_refused_naming_the_part_row_field_and_rule(server, tmp_path):
    bars = rows_of(server, "2025-01-07")
    bars[400]["h"] = bars[400]["l"] - 1.0  # row 401 of that day: 10:40 New York, in session
    message = assert_refused(
        download(server, tmp_path / "q.parquet"),
        "QQQ_iex_2025-01-07.parquet",
        "row 401",
        "field 'high'",
        "high_below_open_close",
    )
    assert "--repair drop" in message
    assert not (tmp_path / "q.parquet").exists()


def test_a_value_that_is_not_a_number_is_refused_naming_the_day_and_row(server, tmp_path):
    rows_of(server, "2025-01-08")[11]["o"] = "abc"
    assert_refused(
        download(server, tmp_path / "q.parquet"),
        "alpaca QQQ 2025-01-08",
        "row 12",
        "field 'open'",
        "non_numeric",
    )


def test_repair_drop_drops_and_counts(server, tmp_path):
    rows_of(server, "2025-01-07")[400]["v"] = -5
    done = download(server, tmp_path / "q.parquet", "--repair", "drop", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["dropped"] == {"negative_volume": 1} and report["rows_out"] == 4 * 390 - 1


def test_wrong_keys_are_one_line(server, tmp_path):
    env = {**server.env(), "APCA_API_SECRET_KEY": "wrong"}
    done = run_script(
        "sentio", "data", "download", *ARGS, "--out", str(tmp_path / "q.parquet"), env=env
    )
    assert_refused(done, "HTTP 401", "APCA_API_KEY_ID")


def test_an_unreachable_server_is_one_line(server, tmp_path):
    from tests.live.alpaca_server import closed_port

    env = {**server.env(), "SENTIO_ALPACA_DATA_URL": f"http://127.0.0.1:{closed_port()}"}
    done = run_script(
        "sentio", "data", "download", *ARGS, "--out", str(tmp_path / "q.parquet"), env=env
    )
    assert_refused(done, "cannot reach the Alpaca data API", "SENTIO_ALPACA_DATA_URL")


def _replace(args: list[str], flag: str, value: str) -> list[str]:
    out = list(args)
    out[out.index(flag) + 1] = value
    return out


FUTURE = str((pd.Timestamp.now(tz="America/New_York") + pd.Timedelta(days=30)).date())
BAD_FLAGS = [
    ("source", _replace(ARGS, "--source", "polygon"), ["--source", "alpaca"]),
    ("symbol", _replace(ARGS, "--symbol", "Q Q"), ["--symbol"]),
    ("start", _replace(ARGS, "--start", "2025-13-01"), ["--start", "YYYY-MM-DD"]),
    ("order", _replace(ARGS, "--start", "2025-01-11"), ["--end", "before --start"]),
    ("weekend", [*ARGS[:5], "2025-01-11", "--end", "2025-01-12"], ["--end", "no NYSE trading"]),
    ("future", _replace(ARGS, "--end", FUTURE), ["--end", "after today"]),
    ("far", _replace(ARGS, "--end", "9999-12-31"), ["--end", "after today"]),
    ("old", _replace(ARGS, "--start", "1990-01-02"), ["--start", "1995"]),
    ("feed", [*ARGS, "--feed", "otc"], ["--feed", "iex, sip"]),
    ("max-gap", [*ARGS, "--max-gap", "999"], ["--max-gap"]),
    ("repair", [*ARGS, "--repair", "fix"], ["--repair"]),
]


@pytest.mark.parametrize("args, says", [c[1:] for c in BAD_FLAGS], ids=[c[0] for c in BAD_FLAGS])
def test_bad_flags_are_refused_before_any_request(server, tmp_path, args, says):
    out = tmp_path / "q.parquet"
    done = run_script("sentio", "data", "download", *args, "--out", str(out), env=server.env())
    assert_refused(done, *says)
    assert server.bar_requests == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "unset, bad, says",
    [
        ("APCA_API_KEY_ID", {}, ["APCA_API_KEY_ID is not set"]),
        ("APCA_API_SECRET_KEY", {}, ["APCA_API_SECRET_KEY is not set"]),
        (None, {"SENTIO_ALPACA_DATA_URL": "ftp://x"}, ["SENTIO_ALPACA_DATA_URL", "http://"]),
    ],
)
def test_missing_keys_or_a_bad_address_are_one_line(server, tmp_path, unset, bad, says):
    # run_script adds env to os.environ: an empty value stands for unset (a developer's own
    # key in the shell must not leak in)
    env = {**server.env(), **({unset: ""} if unset else {}), **bad}
    done = run_script(
        "sentio", "data", "download", *ARGS, "--out", str(tmp_path / "q.parquet"), env=env
    )
    assert_refused(done, *says)
    assert server.bar_requests == []
