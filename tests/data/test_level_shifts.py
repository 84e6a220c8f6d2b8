"""A level shift in volume or price where one symbol's bars pass from one file to another is
flagged by ``sentio data import``, ``data align`` and ``features check`` (issue 16, section 2).

Oracle: planted truth. Two generated files of QQQ on adjacent NYSE sessions; the second's volume
is multiplied by 75 (or its prices halved, as a split-adjusted file's), and the expected medians,
sessions and ratios are computed here by hand from the planted bars, not by sentio.data.levels.
Same-scale files must give no flag. The real-data test combines IBKR and LSE QQQ minute bars,
whose volume scales differ (../shared/data/README.md: IBKR's is about 1/50 of consolidated).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sentio.data import Bars, import_files, level_shifts, write_bars
from sentio.data.segments import assign_segments
from sentio.data.trading_calendar import sessions_from
from tests.cli.badinput import assert_refused, run_script
from tests.conftest import real_file

SESSIONS = sessions_from("2024-03-04", 6)  # Mon 2024-03-04 .. Mon 2024-03-11
DATES = [f"{d:%Y-%m-%d}" for d in SESSIONS.dates]
FIRST, SECOND = slice(0, 3), slice(3, 6)  # file a: sessions 0-2, file b: sessions 3-5


def session_bars(symbol: str, which: slice, seed: int, *, volume_x=1.0, price_x=1.0) -> Bars:
    """Full 390-minute sessions of a gentle random walk near $400, volume near 1,000 a bar.

    The walk is drawn over all six sessions with one seed and then cut, so that two files cut
    from the same seed continue each other (the seam has an ordinary overnight gap).
    """
    rng = np.random.default_rng(seed)
    minute = np.arange(390, dtype=np.int64) * 60 * 10**9
    ts = np.concatenate([o + minute for o in SESSIONS.open_ns])
    close = 400 * np.exp(np.cumsum(rng.normal(0, 2e-4, len(ts))))
    open_ = np.r_[close[0], close[:-1]]
    volume = np.round(1000 * np.exp(rng.normal(0, 0.3, len(ts))))
    keep = slice(which.start * 390, which.stop * 390)
    o, c = open_[keep] * price_x, close[keep] * price_x
    frame = pd.DataFrame(
        {"ts": ts[keep], "symbol": symbol, "open": o, "high": np.maximum(o, c) + 0.01,
         "low": np.minimum(o, c) - 0.01, "close": c, "volume": volume[keep] * volume_x}
    )  # fmt: skip
    frame["segment"] = assign_segments(frame["ts"].to_numpy(), 60, 5).segment
    return Bars(frame, {"interval_s": 60, "max_gap_min": 5, "simulated": {symbol: False}})


def pair(tmp_path, **later) -> tuple[str, str, Bars, Bars]:
    """Files a.parquet (sessions 0-2) and b.parquet (sessions 3-5, changed by ``later``)."""
    a, b = session_bars("QQQ", FIRST, 1), session_bars("QQQ", SECOND, 1, **later)
    write_bars(a, tmp_path / "a.parquet")
    write_bars(b, tmp_path / "b.parquet")
    return str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet"), a, b


def seam_volume_ratio(a: Bars, b: Bars) -> float:
    """By hand: median volume of a's last session over b's first (last/first 390 bars)."""
    return float(np.median(b.frame["volume"][:390]) / np.median(a.frame["volume"][-390:]))


def sentio_json(*args: str) -> dict:
    done = run_script("sentio", *args, "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_volume_x75_is_flagged_naming_files_sessions_and_ratio(tmp_path):
    a_path, b_path, a, b = pair(tmp_path, volume_x=75.0)
    source = np.array(["a.parquet"] * len(a.frame) + ["b.parquet"] * len(b.frame), dtype=object)
    shifts = level_shifts(pd.concat([a.frame, b.frame], ignore_index=True), source)
    assert [s.field for s in shifts] == ["volume"]
    shift = shifts[0]
    assert (shift.earlier_file, shift.later_file) == ("a.parquet", "b.parquet")
    assert (shift.earlier_session, shift.later_session) == (DATES[2], DATES[3])
    assert shift.ratio == pytest.approx(seam_volume_ratio(a, b), rel=1e-12)
    assert 60 < shift.ratio < 95  # the planted x75 times the ratio of two sessions' medians
    text = shift.message()
    for word in ("volume", "a.parquet", "b.parquet", DATES[2], DATES[3], "x5"):
        assert word in text, (word, text)


def test_same_scale_files_give_no_flag(tmp_path):
    a_path, b_path, a, b = pair(tmp_path)
    source = np.array(["a"] * len(a.frame) + ["b"] * len(b.frame), dtype=object)
    assert level_shifts(pd.concat([a.frame, b.frame], ignore_index=True), source) == []
    report = sentio_json("data", "import", a_path, b_path, "--out", str(tmp_path / "c.parquet"))
    assert report["level_shifts"] == []


def test_split_adjusted_second_file_is_a_price_shift(tmp_path):
    """b halves its prices (and doubles its volume) as a file adjusted for a 2:1 split would."""
    a_path, b_path, a, b = pair(tmp_path, price_x=0.5, volume_x=2.0)
    report = sentio_json("data", "import", a_path, b_path, "--out", str(tmp_path / "c.parquet"))
    shifts = report["level_shifts"]
    assert [s["field"] for s in shifts] == ["price"]  # volume x2 is within a vendor's range
    gap = a.frame["close"].iloc[-1] / b.frame["open"].iloc[0]  # last close / first open, by hand
    assert shifts[0]["ratio"] == pytest.approx(gap, rel=1e-12)
    assert 1.9 < gap < 2.1
    assert (shifts[0]["earlier_session"], shifts[0]["later_session"]) == (DATES[2], DATES[3])


def test_import_align_and_features_check_flag_it_through_the_console_scripts(tmp_path):
    a_path, b_path, a, b = pair(tmp_path, volume_x=75.0)
    expected = pytest.approx(seam_volume_ratio(a, b), rel=1e-12)
    combined = str(tmp_path / "combined.parquet")
    # import: printed as a warning line, and in --json
    done = run_script("sentio", "data", "import", a_path, b_path, "--out", combined)
    assert done.returncode == 0, done.stderr[-2000:]
    warnings = [line for line in done.stdout.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "a.parquet" in warnings[0] and "b.parquet" in warnings[0]
    # features check on the combined table: its metadata records both sources and their spans
    report = sentio_json("features", "check", "--spec", "intraday_default", "--data", combined,
                         "--samples", "1", "--offset", "97")  # fmt: skip
    [shift] = report["level_shifts"]
    assert shift["ratio"] == expected
    assert shift["earlier_file"] == "a.parquet (in combined.parquet)"
    assert all(r["passed"] for r in report["results"])
    # features check on the two files
    report = sentio_json("features", "check", "--spec", "intraday_default", "--data", a_path,
                         "--data", b_path, "--samples", "1", "--offset", "97")  # fmt: skip
    [shift] = report["level_shifts"]
    assert (shift["earlier_file"], shift["later_file"], shift["ratio"]) == (
        "a.parquet", "b.parquet", expected)  # fmt: skip
    assert {r["file"] for r in report["results"]} == {a_path, b_path}
    # align (QQQ from two files, SPY over all six sessions), then check the aligned table
    write_bars(session_bars("SPY", slice(0, 6), 2), tmp_path / "spy.parquet")
    aligned = str(tmp_path / "aligned.parquet")
    report = sentio_json("data", "align", a_path, b_path, str(tmp_path / "spy.parquet"),
                         "--out", aligned)  # fmt: skip
    [shift] = report["level_shifts"]
    assert (shift["symbol"], shift["ratio"]) == ("QQQ", expected)
    report = sentio_json("features", "check", "--spec", "intraday_default", "--data", aligned,
                         "--symbol", "QQQ", "--samples", "1", "--offset", "97")  # fmt: skip
    assert [s["ratio"] for s in report["level_shifts"]] == [expected]


def test_features_check_symbol_in_no_file_is_one_line(tmp_path):
    a_path, b_path, _, _ = pair(tmp_path)
    done = run_script("sentio", "features", "check", "--spec", "intraday_default", "--data",
                      a_path, "--data", b_path, "--symbol", "SPY")  # fmt: skip
    assert_refused(done, "--symbol", "SPY", "QQQ")


def test_real_ibkr_and_lse_qqq_combined_flag_the_volume_scale():
    lse, ibkr = real_file("lse/QQQ_1min.parquet"), real_file("ibkr/QQQ_1min.csv")
    _, report = import_files([lse, ibkr])  # in time order: LSE ends 2024-07, IBKR starts 2025-09
    [shift] = report.level_shifts
    assert shift.field == "volume"
    assert (shift.earlier_file, shift.later_file) == ("QQQ_1min.parquet", "QQQ_1min.csv")
    assert (shift.earlier_session, shift.later_session) == ("2024-07-19", "2025-09-15")
    assert shift.ratio > 20  # README: IBKR volume is about 1/50 of consolidated volume
