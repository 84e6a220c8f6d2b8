from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sentio.core import BarsError
from sentio.data import Bars, align, read_bars, write_bars


def table(symbol: str, minutes: list[int]) -> Bars:
    start = pd.Timestamp("2025-09-15 09:30", tz="America/New_York").value
    ts = np.array([start + m * 60 * 10**9 for m in minutes], dtype=np.int64)
    frame = pd.DataFrame(
        {"ts": ts, "symbol": symbol, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0,
         "volume": 1.0, "segment": 0}
    )  # fmt: skip
    return Bars(frame, {"interval_s": 60, "max_gap_min": 5, "simulated": {symbol: False}})


def test_align_keeps_common_times_and_counts_why(tmp_path):
    a = table("QQQ", [0, 1, 2, 3, 4, 5])
    b = table("TQQQ", [0, 1, 3, 4, 5, 6])
    bars, report = align([a, b])
    assert report.rows_out == 5
    assert report.dropped == {"QQQ": {"missing in TQQQ": 1}, "TQQQ": {"missing in QQQ": 1}}
    counts = bars.frame.groupby("symbol").size().to_dict()
    assert counts == {"QQQ": 5, "TQQQ": 5}
    path = write_bars(bars, tmp_path / "aligned.parquet")
    again = read_bars(path)
    pd.testing.assert_frame_equal(again.frame, bars.frame)


def test_align_refuses_a_single_symbol_or_mixed_intervals():
    with pytest.raises(BarsError, match="two symbols"):
        align([table("QQQ", [0, 1])])
    five = table("TQQQ", [0, 5])
    five.meta["interval_s"] = 300
    with pytest.raises(BarsError, match="intervals"):
        align([table("QQQ", [0, 1]), five])
