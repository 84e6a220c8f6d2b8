"""Session rules of the live loop from the exchange calendar: flat before the close, half days
included. The oracle is NYSE's published schedule: the Friday after Thanksgiving 2024 closed at
13:00 New York, so with the default ``flat_last_minutes`` of 10 every bar whose close lies in
the last 10 minutes (bar starts 12:50 to 12:59) must be decided flat for ``session_end``."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd

from tests.cli.badinput import script
from tests.live.conftest import audit_events


def half_day_lines() -> list[str]:
    """Every minute of 2024-11-29 (09:30 to 12:59 New York) for the four symbols, a small
    seeded random walk (the values do not matter here, the times do)."""
    rng = np.random.default_rng(0)
    starts = pd.date_range(
        "2024-11-29 09:30", "2024-11-29 12:59", freq="1min", tz="America/New_York"
    )
    lines = []
    price = {"QQQ": 500.0, "TQQQ": 75.0, "PSQ": 40.0, "SQQQ": 30.0}
    for ts in starts:
        for symbol in price:
            o = price[symbol]
            c = o * (1 + rng.normal(0, 0.0005))
            price[symbol] = c
            lines.append(json.dumps({"ts": ts.isoformat(), "symbol": symbol, "open": o,
                                     "high": max(o, c) * 1.0002, "low": min(o, c) * 0.9998,
                                     "close": c, "volume": 1000.0}))  # fmt: skip
    return lines


def test_a_half_day_is_flat_in_its_last_ten_minutes(tmp_path, tiny_artifact):
    db = tmp_path / "audit.db"
    done = subprocess.run(
        [script("sentio"), "live", "--model", str(tiny_artifact), "--feed", "jsonl:-",
         "--audit", str(db), "--json"],
        input="\n".join(half_day_lines()) + "\n", capture_output=True, text=True, cwd=tmp_path,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    bars = audit_events(db, "bar")
    assert len(bars) == 210  # 09:30 .. 12:59: the session's every minute was decided
    for ts, _, bar in bars:
        start = pd.Timestamp(ts, tz="UTC").tz_convert("America/New_York")
        if start >= pd.Timestamp("2024-11-29 12:50", tz="America/New_York"):
            assert (bar["reason"], bar["exposure"]) == ("session_end", 0.0), start
        else:
            assert bar["reason"] != "session_end", start


def test_the_bar_store_holds_every_accepted_bar_a_file_per_session(tmp_path, tiny_artifact):
    """--bar-store: the replayed bars of every session, every symbol, as canonical tables
    (read back through the importer's checks), one per New York session date, equal to the
    market the replay read."""
    from sentio.backtest.strattest import StrattestConfig, market_tables
    from sentio.data import read_bars
    from sentio.model.artifact import read_meta

    store = tmp_path / "bars"
    done = subprocess.run(
        [script("sentio"), "live", "--model", str(tiny_artifact), "--feed", "replay:builtin",
         "--bar-store", str(store), "--json"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    meta = read_meta(tiny_artifact)
    tables = market_tables(StrattestConfig(model=tiny_artifact), meta)[0]
    seen = meta["data"]["splits"]["validation"]["last_ts"]
    files = sorted(store.glob("*.parquet"))
    assert [f.name[:10] for f in files] == sorted({
        pd.Timestamp(t, tz="UTC").tz_convert("America/New_York").strftime("%Y-%m-%d")
        for t in tables["QQQ"]["ts"] if t > seen
    })  # fmt: skip
    for symbol in ("QQQ", "TQQQ", "PSQ", "SQQQ"):
        stored = pd.concat([read_bars(f).of(symbol) for f in files], ignore_index=True)
        expected = tables[symbol][tables[symbol]["ts"] > seen].reset_index(drop=True)
        for column in ("ts", "open", "high", "low", "close", "volume"):
            np.testing.assert_array_equal(stored[column].to_numpy(), expected[column].to_numpy())
