"""Import speed: ``sentio data import`` against plain pandas on the largest real file.

Peer: ``pandas.read_csv`` plus the same time-zone conversion (epoch seconds -> UTC ns ->
New York), which is the floor any CSV importer built on pandas pays. Sentio additionally checks
every rule, looks up NYSE sessions, drops extended hours and numbers segments.

Run: ``.venv/bin/python bench/import.py`` (needs ../shared/data). Prints one table.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import pandas as pd

from sentio.data import import_files

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FILE = DATA / "polygon" / "TQQQ_RTH_NH.csv"  # the largest real file (53,779 rows)
REPEATS = 7


def pandas_peer(path: Path) -> int:
    frame = pd.read_csv(path)
    ts = pd.to_datetime(frame["ts_nyt_epoch"], unit="s", utc=True)
    frame["ny"] = ts.dt.tz_convert("America/New_York")
    return len(frame)


def sentio_import(path: Path) -> int:
    bars, _ = import_files([path])
    return len(bars.frame)


def best_of(fn, path: Path) -> tuple[float, int]:
    fn(path)  # warm caches (calendar, file system)
    times, rows = [], 0
    for _ in range(REPEATS):
        start = time.perf_counter()
        rows = fn(path)
        times.append(time.perf_counter() - start)
    return statistics.median(times), rows


def main() -> None:
    if not FILE.exists():
        sys.exit(f"skip: {FILE} is absent (../shared/data is not shipped with the project)")
    rows_in = sum(1 for _ in FILE.open()) - 1
    peer_s, _ = best_of(pandas_peer, FILE)
    ours_s, kept = best_of(sentio_import, FILE)
    print(f"file: {FILE.name}, {rows_in} rows in, median of {REPEATS} runs")
    print(f"{'engine':<42}{'seconds':>10}{'rows/s':>14}{'vs pandas':>11}")
    peer = "pandas.read_csv + tz conversion"
    print(f"{peer:<42}{peer_s:>10.4f}{rows_in / peer_s:>14,.0f}{1.0:>10.2f}x")
    print(
        f"{'sentio data import (validate, sessions)':<42}{ours_s:>10.4f}"
        f"{rows_in / ours_s:>14,.0f}{peer_s / ours_s:>10.2f}x"
    )
    print(f"sentio kept {kept} regular-session rows")


if __name__ == "__main__":
    main()
