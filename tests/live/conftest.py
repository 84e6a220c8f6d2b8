"""Fixtures of the live-loop tests: a trained tiny artifact and bars as a feed would send them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> dict[str, pd.DataFrame]:
    """Twelve sessions of the built-in market (the tiny artifact's own seed), every symbol."""
    from sentio.data.synth.generate import SynthConfig, generate

    generated = generate(SynthConfig(seed=3, days=12))
    return {s: generated.bars[s].of(s) for s in ("QQQ", "TQQQ", "PSQ", "SQQQ")}


def json_lines(market: dict[str, pd.DataFrame], rows: range) -> list[str]:
    """The bars of ``rows`` as ``jsonl:-`` lines, every symbol at each minute, QQQ first."""
    out = []
    for row in rows:
        for symbol in ("QQQ", "TQQQ", "PSQ", "SQQQ"):
            bar = market[symbol].iloc[row]
            out.append(
                json.dumps(
                    {
                        "ts": pd.Timestamp(int(bar["ts"]), tz="UTC").isoformat(),
                        "symbol": symbol,
                        **{k: float(bar[k]) for k in ("open", "high", "low", "close", "volume")},
                    }
                )
            )
    return out


def write_history(market: dict[str, pd.DataFrame], stop: int, path: Path) -> Path:
    """QQQ's bars before row ``stop`` as canonical Parquet (``--history``)."""
    from sentio.data import Bars, write_bars

    frame = market["QQQ"].iloc[:stop].reset_index(drop=True)
    write_bars(Bars(frame, {"interval_s": 60, "max_gap_min": 5}), path)
    return path


def audit_events(db: Path, kind: str | None = None) -> list[tuple[int, str, dict]]:
    """(ts, kind, payload) of the newest run in an audit store, read with plain sqlite3."""
    import sqlite3

    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        run = con.execute("SELECT run_id FROM runs ORDER BY rowid DESC LIMIT 1").fetchone()[0]
        rows = con.execute(
            "SELECT ts, kind, payload FROM events WHERE run_id = ? ORDER BY seq", (run,)
        ).fetchall()
    return [(ts, k, json.loads(p)) for ts, k, p in rows if kind is None or k == kind]
