"""Importing each real file gives what ../shared/data/README.md states.

Oracle: the README's row counts, ranges and day counts, and an independent regular-session test
(clock time in [09:30, 16:00) New York, [09:30, 13:00) on NYSE's published early-close days) that
does not use exchange_calendars.
"""

from __future__ import annotations

import pandas as pd
import pytest

from sentio.core import BarsError
from sentio.data import describe, import_files, read_bars, write_bars
from tests.conftest import real_file

# NYSE early closes 2022-2026 as published by the exchange (13:00 New York).
HALF_DAYS = {
    "2022-11-25", "2023-07-03", "2023-11-24", "2024-07-03", "2024-11-29", "2024-12-24",
    "2025-07-03", "2025-11-28", "2025-12-24",
}  # fmt: skip

# file, README rows, first NY date, last NY date, README trading days (None if not stated)
README = [
    ("polygon/TQQQ_RTH_NH.csv", 53_779, "2025-04-01", "2025-10-16", 138),
    ("polygon/SQQQ_RTH_NH.csv", 53_779, "2025-04-01", "2025-10-16", 138),
    ("polygon/QQQ_RTH_NH_2025-08-08_2025-09-12.csv", 9_600, "2025-08-08", "2025-09-12", 25),
    ("polygon/SPY_RTH_NH.csv", 48_000, "2025-04-09", "2025-10-06", 124),
    ("ibkr/QQQ_1min.csv", 34_017, "2025-09-15", "2026-01-21", None),
    ("ibkr/SPY_1min.csv", 34_288, "2025-09-15", "2026-01-21", None),
    ("ibkr/QQQ_5min.csv", 14_990, "2025-05-12", "2026-01-21", None),
    ("ibkr/SPY_5min.csv", 14_386, "2025-05-12", "2026-01-21", None),
    ("ibkr/TQQQ_5min.csv", 13_542, "2025-05-12", "2026-01-21", None),
    ("ibkr/SQQQ_5min.csv", 14_478, "2025-04-24", "2026-01-21", None),
    ("lse/QQQ_1min.parquet", 30_000, "2022-01-03", "2024-07-19", None),
    ("lse/SPY_1min.parquet", 30_000, "2022-01-03", "2024-07-19", None),
]


def regular_rows(path) -> int:
    """Rows inside the regular session, counted from the raw file without sentio."""
    if path.suffix == ".parquet":
        ny = pd.read_parquet(path).index.tz_localize("UTC").tz_convert("America/New_York")
    elif "polygon" in str(path):
        ny = pd.to_datetime(pd.read_csv(path)["ts_nyt_epoch"], unit="s", utc=True)
        ny = pd.DatetimeIndex(ny).tz_convert("America/New_York")
    else:
        ny = pd.DatetimeIndex(pd.to_datetime(pd.read_csv(path)["datetime"]))
    minutes = ny.hour * 60 + ny.minute
    close = [13 * 60 if d in HALF_DAYS else 16 * 60 for d in ny.strftime("%Y-%m-%d")]
    return int(((minutes >= 9 * 60 + 30) & (minutes < pd.Index(close))).sum())


@pytest.mark.parametrize(("name", "rows", "first", "last", "days"), README)
def test_real_file_imports_to_the_readme_counts(name, rows, first, last, days, tmp_path):
    path = real_file(name)
    bars, report = import_files([path])
    assert report.files[0].rows_read == rows
    assert report.files[0].dropped == {}
    assert len(bars.frame) == regular_rows(path)
    assert report.files[0].extended_hours == rows - len(bars.frame)
    # the interval is the one the README's file name states, not measured from the rows
    assert report.interval_s == (300 if "_5min" in name else 60)
    (info,) = describe(bars)
    assert info.first_ny[:10] == first and info.last_ny[:10] == last
    if days is not None:
        assert info.sessions == days
    # read_bars applies the import's rules again: every real table passes them unchanged
    again = read_bars(write_bars(bars, tmp_path / "t.parquet"))
    pd.testing.assert_frame_equal(again.frame, bars.frame)


def test_a_five_minute_file_read_as_one_minute_bars_is_refused(tmp_path):
    """Without the _5min in its name the interval defaults to 1min; the rows contradict it."""
    renamed = tmp_path / "QQQ.csv"
    renamed.write_bytes(real_file("ibkr/QQQ_5min.csv").read_bytes())
    with pytest.raises(BarsError, match="--interval 5min") as caught:
        import_files([renamed])
    assert caught.value.rule == "interval"
    bars, report = import_files([renamed], interval_s=300)
    assert report.interval_s == 300 and bars.meta["interval_s"] == 300


def test_polygon_drops_exactly_the_post_close_minutes():
    path = real_file("polygon/TQQQ_RTH_NH.csv")
    bars, report = import_files([path])
    text = path.read_text()
    # Every one of the 138 days has a 16:00 bar; the 2025-07-03 half day also its 13:00 bar
    # (137 x 391 + 212 = 53,779 rows).
    assert text.count("T16:00:00") == 138 and text.count("2025-07-03T13:00:00") == 1
    assert report.files[0].extended_hours == 138 + 1
    (info,) = describe(bars)
    assert info.half_days == ["2025-07-03"]
    assert (info.bars_per_session_min, info.bars_per_session_max) == (210, 390)


def test_lse_windows_are_separate_segments():
    bars, _ = import_files([real_file("lse/QQQ_1min.parquet")])
    assert bars.frame["segment"].nunique() == 6  # six windows, README lse/


def test_polygon_split_puts_tqqq_on_the_ibkr_basis():
    """After x0.5, Polygon TQQQ closes agree with IBKR's split-adjusted 5-minute closes."""
    polygon, _ = import_files(
        [real_file("polygon/TQQQ_RTH_NH.csv")],
        splits=[__import__("sentio.data", fromlist=["Split"]).Split.parse("2025-12-31:0.5")],
    )
    ibkr, _ = import_files([real_file("ibkr/TQQQ_5min.csv")])
    five = ibkr.frame.set_index("ts")["close"]
    one = polygon.frame.set_index("ts")["close"]
    # the 5-minute bar starting at t closes with the 1-minute bar starting at t + 4 min
    common = five.index.intersection(one.index - 4 * 60 * 10**9)
    diff = (five.loc[common] - one.loc[common + 4 * 60 * 10**9].to_numpy()).abs()
    assert len(common) > 5000
    assert diff.median() < 0.02
