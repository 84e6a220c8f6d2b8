"""The feeds at unit level: ``csv-tail:FILE`` as another program appends to the file,
``jsonl:-`` idling, and the ``--feed`` grammar (``FeedSpec.parse``).

Oracles: the rows the test writes (their values, their spreadsheet row numbers: header row 1,
first bar row 2, as docs/data.md numbers them) and the bar times they stand for, converted
here with pandas from the text written.
"""

from __future__ import annotations

import io
import math
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from sentio.core.errors import OptionError
from sentio.live.feeds import CsvTailFeed, FeedSpec, JsonlFeed
from sentio.live.types import FeedBar, FeedFault
from tests.cli.badinput import assert_refused, run_script

POLL_S = 0.01
START = 3900  # a row of the market fixture inside its 11th session


def drain(feed_iter, timeout: float = 10.0) -> list:
    """Items up to the feed's next idle tick (None): what it holds now."""
    out, deadline = [], time.monotonic() + timeout
    for item in feed_iter:
        if item is None:
            return out
        out.append(item)
        assert time.monotonic() < deadline, f"no idle tick after {len(out)} items"
    raise AssertionError(f"the feed ended after {out}")


# -- two vendor layouts the importer reads (docs/data.md, Formats) ---------------------------

HEADERS = {
    "ibkr": "datetime,open,high,low,close,volume",
    "polygon": "ts_utc,ts_nyt_epoch,open,high,low,close,volume",
}


def csv_row(layout: str, ts: int, o: float, h: float, lo: float, c: float, v: float) -> str:
    ny = pd.Timestamp(ts, tz="UTC").tz_convert("America/New_York")
    values = f"{o!r},{h!r},{lo!r},{c!r},{v!r}"
    if layout == "ibkr":  # naive New York time
        return f"{ny.strftime('%Y-%m-%d %H:%M:%S')},{values}"
    return f"{ny.isoformat()},{ts // 10**9},{values}"  # New York text, UTC epoch seconds


def market_rows(market, layout: str, rows: range) -> list[tuple[str, FeedBar]]:
    """(CSV line, the FeedBar it must become minus its source) for QQQ at ``rows``."""
    out = []
    for row in rows:
        bar = market["QQQ"].iloc[row]
        values = [float(bar[k]) for k in ("open", "high", "low", "close", "volume")]
        ts = int(bar["ts"])
        out.append((csv_row(layout, ts, *values), FeedBar("QQQ", ts, *values)))
    return out


def with_source(bar: FeedBar, path: Path, row: int) -> FeedBar:
    return FeedBar(
        bar.symbol, bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume, f"{path}:row {row}"
    )


@pytest.fixture(params=sorted(HEADERS))
def layout(request) -> str:
    return request.param


def test_csv_tail_yields_complete_rows_in_order_as_they_are_appended(market, layout, tmp_path):
    path = tmp_path / "QQQ_1min.csv"  # the symbol comes from the name, as the importer reads it
    rows = market_rows(market, layout, range(START, START + 8))
    lines = [line for line, _ in rows]
    expect = [with_source(bar, path, n) for n, (_, bar) in enumerate(rows, start=2)]
    header = HEADERS[layout] + "\n"
    path.write_text(header[:9])  # even the header arrives in pieces
    feed = CsvTailFeed(path, poll_s=POLL_S)
    items = iter(feed)
    assert drain(items) == []
    with open(path, "a") as out:
        out.write(header[9:] + "\n".join(lines[:3]) + "\n")
    assert drain(items) == expect[:3]
    cut = len(lines[5]) // 2
    with open(path, "a") as out:  # two rows and half of a third
        out.write(lines[3] + "\n" + lines[4] + "\n" + lines[5][:cut])
    assert drain(items) == expect[3:5]
    assert drain(items) == []  # the half row waits
    with open(path, "a") as out:
        out.write(lines[5][cut:] + "\n" + lines[6] + "\n")
    assert drain(items) == expect[5:7]
    with open(path, "a") as out:  # a writer that ends its lines with CRLF
        out.write(lines[7] + "\r\n")
    assert drain(items) == expect[7:8]
    feed.close()
    assert list(items) == []


def test_csv_tail_rereads_a_file_that_shrank(market, layout, tmp_path):
    path = tmp_path / "QQQ_1min.csv"
    rows = market_rows(market, layout, range(START, START + 5))
    path.write_text(HEADERS[layout] + "\n" + "".join(line + "\n" for line, _ in rows))
    items = iter(CsvTailFeed(path, poll_s=POLL_S))
    assert len(drain(items)) == 5
    # rewritten from its start with fewer rows: a fault, then every row again from row 2
    path.write_text(HEADERS[layout] + "\n" + "".join(line + "\n" for line, _ in rows[3:]))
    got = drain(items)
    assert isinstance(got[0], FeedFault) and got[0].kind == "malformed"
    assert "shrank" in got[0].detail and got[0].source == str(path)
    assert got[1:] == [with_source(bar, path, n) for n, (_, bar) in enumerate(rows[3:], start=2)]


def test_csv_tail_names_the_row_of_an_unreadable_value(market, tmp_path):
    path = tmp_path / "QQQ_1min.csv"
    rows = market_rows(market, "ibkr", range(START, START + 3))
    bad = rows[1][0].rsplit(",", 2)
    lines = [rows[0][0], f"{bad[0]},abc,{bad[2]}", rows[2][0]]  # close is not a number
    path.write_text(HEADERS["ibkr"] + "\n" + "".join(line + "\n" for line in lines))
    got = drain(iter(CsvTailFeed(path, poll_s=POLL_S)))
    assert got[0] == with_source(rows[0][1], path, 2)
    assert got[1] == FeedFault("malformed", "close is missing or not a number", f"{path}:row 3")
    assert got[2] == with_source(rows[2][1], path, 4)


def test_csv_tail_skips_what_a_restart_already_decided(market, tmp_path):
    path = tmp_path / "QQQ_1min.csv"
    rows = market_rows(market, "ibkr", range(START, START + 4))
    path.write_text(HEADERS["ibkr"] + "\n" + "".join(line + "\n" for line, _ in rows))
    feed = CsvTailFeed(path, poll_s=POLL_S)
    feed.resume_after(rows[1][1].ts)
    assert drain(iter(feed)) == [
        with_source(bar, path, n) for n, (_, bar) in [(4, rows[2]), (5, rows[3])]
    ]


def test_csv_tail_refuses_a_missing_file(tmp_path):
    with pytest.raises(OptionError) as caught:
        CsvTailFeed(tmp_path / "nope.csv")
    assert caught.value.flag == "--feed" and "nope.csv" in str(caught.value)


def _append_in_one_poll(path: Path, first: list[str], later: list[str]) -> list:
    path.write_text(HEADERS["ibkr"] + "\n" + "".join(line + "\n" for line in first))
    items = iter(CsvTailFeed(path, poll_s=POLL_S))
    assert len(drain(items)) == len(first)
    with open(path, "a") as out:
        out.write("".join(line + "\n" for line in later))
    return drain(items)


def test_csv_tail_keeps_the_good_rows_read_with_a_bad_one(market, tmp_path):
    path = tmp_path / "QQQ_1min.csv"
    rows = market_rows(market, "ibkr", range(START, START + 7))
    offset = pd.Timestamp(rows[6][1].ts, tz="UTC").tz_convert("America/New_York").isoformat()
    bad = offset + "," + rows[6][0].split(",", 1)[1]  # this row alone gives its UTC offset
    got = _append_in_one_poll(path, [line for line, _ in rows[:5]], [rows[5][0], bad])
    assert with_source(rows[5][1], path, 7) in got


def test_csv_tail_names_the_file_row_of_an_unreadable_later_row(market, tmp_path):
    path = tmp_path / "QQQ_1min.csv"
    rows = market_rows(market, "ibkr", range(START, START + 7))
    bad = "not a time," + rows[6][0].split(",", 1)[1]  # unreadable on its own
    got = _append_in_one_poll(path, [line for line, _ in rows[:5]], [rows[5][0], bad])
    assert with_source(rows[5][1], path, 7) in got
    faults = [item for item in got if isinstance(item, FeedFault)]
    assert len(faults) == 1
    assert faults[0].source == f"{path}:row 8" or "row 8" in faults[0].detail, faults[0]


def test_csv_tail_reads_the_symbol_column(market, tmp_path):
    path = tmp_path / "bars.csv"
    lines, expect = [], []
    for n, symbol in enumerate(("QQQ", "TQQQ", "PSQ", "SQQQ"), start=2):
        bar = market[symbol].iloc[START]
        values = [float(bar[k]) for k in ("open", "high", "low", "close", "volume")]
        lines.append(csv_row("ibkr", int(bar["ts"]), *values) + f",{symbol}")
        expect.append(FeedBar(symbol, int(bar["ts"]), *values, f"{path}:row {n}"))
    path.write_text(HEADERS["ibkr"] + ",symbol\n" + "".join(line + "\n" for line in lines))
    assert drain(iter(CsvTailFeed(path, poll_s=POLL_S))) == expect


# -- jsonl -----------------------------------------------------------------------------------

LINE = (
    '{{"ts": "2024-01-17T14:3{m}:00Z", "open": 1, "high": 2, "low": 0.5, "close": 1.5, '
    '"volume": 10}}'
)


def test_jsonl_yields_none_when_idle_and_ends_with_its_input():
    read, write = os.pipe()
    with os.fdopen(read, "r") as stream, os.fdopen(write, "w") as writer:
        items = iter(JsonlFeed(stream, poll_s=0.05))
        t0 = time.monotonic()
        assert next(items) is None  # nothing written yet
        assert time.monotonic() - t0 >= 0.04
        writer.write(LINE.format(m=0) + "\n")
        writer.flush()
        got = next(items)
        while got is None:
            got = next(items)
        assert (got.symbol, got.ts, got.close) == (
            "QQQ",
            pd.Timestamp("2024-01-17T14:30:00Z").value,
            1.5,
        )
        writer.close()
        assert [item for item in items if item is not None] == []


def test_jsonl_numbers_lines_as_an_editor_does():
    text = LINE.format(m=0) + "\n\n" + "[1]\n" + LINE.format(m=1) + "\n"  # a blank line 2
    items = [x for x in JsonlFeed(io.StringIO(text), poll_s=5.0) if x is not None]
    assert [x.source for x in items] == ["stdin:line 1", "stdin:line 3", "stdin:line 4"]
    assert items[1] == FeedFault("malformed", "not a JSON object", "stdin:line 3")


def test_jsonl_line_numbers_do_not_count_idle_ticks():
    read, write = os.pipe()
    with os.fdopen(read, "r") as stream, os.fdopen(write, "w") as writer:
        items = iter(JsonlFeed(stream, poll_s=0.02))
        writer.write(LINE.format(m=0) + "\n")
        writer.flush()
        while next(items) is None:
            pass
        assert next(items) is None and next(items) is None  # quiet for two polls
        writer.write("not json\n")
        writer.close()
        rest = [item for item in items if item is not None]
    assert rest == [FeedFault("malformed", rest[0].detail, "stdin:line 2")]


# -- the --feed grammar ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "target", "speed"),
    [
        ("replay:bars.parquet@max", "replay", "bars.parquet", math.inf),  # the docstring's
        ("replay:a.parquet@60", "replay", "a.parquet", 60.0),
        ("replay:a.parquet", "replay", "a.parquet", math.inf),  # max is the default
        ("replay:a.parquet@0.5", "replay", "a.parquet", 0.5),
        ("replay:builtin", "replay", "builtin", math.inf),
        ("replay:runs@2/a.parquet@max", "replay", "runs@2/a.parquet", math.inf),  # last @
        ("jsonl:-", "jsonl", "-", math.inf),
        ("csv-tail:bars.csv", "csv-tail", "bars.csv", math.inf),
        ("csv-tail:/data/QQQ_1min.csv", "csv-tail", "/data/QQQ_1min.csv", math.inf),
        ("alpaca", "alpaca", "", math.inf),
    ],
)
def test_feed_spec_accepts(text, kind, target, speed):
    assert FeedSpec.parse(text) == FeedSpec(kind, target, speed)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "unknown feed"),
        ("kafka:bars", "unknown feed"),
        ("REPLAY:a.parquet", "unknown feed"),
        ("replay:", "unknown feed"),
        ("csv-tail:", "unknown feed"),
        ("alpaca:paper", "unknown feed"),
        ("jsonl:", "standard input"),
        ("jsonl:bars.jsonl", "standard input"),
        ("replay:a.parquet@0", "speed"),
        ("replay:a.parquet@-1", "speed"),
        ("replay:a.parquet@fast", "speed"),
        ("replay:a.parquet@nan", "speed"),
        ("replay:a.parquet@inf", "speed"),
        ("replay:a.parquet@", "speed"),
        ("replay:@60", "needs a file"),
    ],
)
def test_feed_spec_refuses(text, says):
    with pytest.raises(OptionError) as caught:
        FeedSpec.parse(text)
    assert caught.value.flag == "--feed" and says in str(caught.value)


def test_a_missing_replay_file_is_refused_naming_feed(tiny_artifact, tmp_path):
    done = run_script(
        "sentio", "live", "--model", str(tiny_artifact), "--feed", "replay:nope.parquet",
        cwd=tmp_path,
    )  # fmt: skip
    assert_refused(done, "--feed", "nope.parquet")
