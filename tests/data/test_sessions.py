"""Calendar and segments. Oracle: NYSE's published holidays and early closes."""

from __future__ import annotations

import pandas as pd

from sentio.data import assign_segments, sessions_between


def test_holidays_and_half_days_come_from_the_calendar():
    s = sessions_between("2025-11-24", "2025-12-02")
    dates = [f"{d:%Y-%m-%d}" for d in s.dates]
    assert "2025-11-27" not in dates  # Thanksgiving
    early = [d for d, e in zip(dates, s.early_close, strict=True) if e]
    assert early == ["2025-11-28"]
    close = pd.Timestamp(int(s.close_ns[dates.index("2025-11-28")]), tz="UTC")
    assert close.tz_convert("America/New_York").strftime("%H:%M") == "13:00"


def ny(*times: str):
    return (
        pd.DatetimeIndex([pd.Timestamp(t, tz="America/New_York") for t in times]).as_unit("ns").asi8
    )


def test_a_hole_of_max_gap_minutes_is_reported_a_longer_one_starts_a_segment():
    # 09:30, then 09:36 (5 minutes missing), then 09:43 (6 missing)
    info = assign_segments(ny("2025-09-15 09:30", "2025-09-15 09:36", "2025-09-15 09:43"), 60, 5)
    assert info.segment.tolist() == [0, 0, 1]
    assert [(h.minutes, h.breaks_segment) for h in info.holes] == [(5, False), (6, True)]


def test_overnight_is_continuous_but_a_missing_day_or_late_open_breaks():
    full = ny("2025-09-15 15:59", "2025-09-16 09:30")
    assert assign_segments(full, 60).segment.tolist() == [0, 0]
    skipped_day = ny("2025-09-15 15:59", "2025-09-17 09:30")
    assert assign_segments(skipped_day, 60).segment.tolist() == [0, 1]
    late_open = ny("2025-09-15 15:59", "2025-09-16 09:40")  # 10 minutes missing at the open
    assert assign_segments(late_open, 60).segment.tolist() == [0, 1]
    half_day = ny("2025-11-28 12:59", "2025-12-01 09:30")  # 13:00 close: nothing missing
    info = assign_segments(half_day, 60)
    assert info.segment.tolist() == [0, 0] and info.holes == []


def test_five_minute_bars_step_by_their_interval():
    info = assign_segments(ny("2025-09-15 09:30", "2025-09-15 09:35", "2025-09-15 09:45"), 300, 5)
    assert info.segment.tolist() == [0, 0, 0]
    assert [h.minutes for h in info.holes] == [5]
