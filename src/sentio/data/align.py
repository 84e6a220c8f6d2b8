"""``sentio data align``: keep the timestamps every symbol has, and say what was dropped and why."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sentio.core.errors import BarsError
from sentio.data.levels import LevelShift, recorded_sources, shifts_between
from sentio.data.schema import Bars, canonical_frame
from sentio.data.segments import DEFAULT_MAX_GAP_MIN, assign_segments


@dataclass
class AlignReport:
    """Per symbol: rows before, rows kept, and rows dropped per missing partner symbol."""

    rows_in: dict[str, int]
    rows_out: int
    dropped: dict[str, dict[str, int]]  # symbol -> {"missing in OTHER": count}
    level_shifts: list[LevelShift] = field(default_factory=list)  # warnings, on the inputs


def align(tables: list[Bars], names: list[str] | None = None) -> tuple[Bars, AlignReport]:
    """Intersect the timestamps of every symbol in ``tables``; segments are renumbered.

    A bar is dropped when at least one other symbol has no bar at that time; it is counted once
    for each symbol it is missing from. Segments are recomputed on the common timestamps (a
    dropped stretch can open a gap), with the strictest ``max_gap_min`` of the inputs.
    ``names`` (the tables' files, for messages) default to ``input 1``, ``input 2``, ...; a
    symbol whose bars come from several files is checked for level shifts between them.
    """
    names = names or [f"input {i + 1}" for i in range(len(tables))]
    frames = [t.frame for t in tables]
    frame = pd.concat(frames, ignore_index=True)
    symbols = sorted(frame["symbol"].unique())
    if len(symbols) < 2:
        raise BarsError(
            f"align needs at least two symbols, got {', '.join(symbols) or 'none'}; give "
            "tables of different symbols"
        )
    if frame.duplicated(["symbol", "ts"]).any():
        first = frame.loc[frame.duplicated(["symbol", "ts"]).to_numpy()].iloc[0]
        holders = [
            n for n, f in zip(names, frames, strict=True)
            if ((f["symbol"] == first["symbol"]) & (f["ts"] == first["ts"])).any()
        ]  # fmt: skip
        raise BarsError(
            f"{first['symbol']} appears in {' and '.join(holders)} with the same timestamps "
            f"(first {pd.Timestamp(int(first['ts']), tz='UTC').isoformat()}); give each "
            "symbol's bars once"
        )
    intervals = {int(t.meta["interval_s"]) for t in tables}
    if len(intervals) != 1:
        raise BarsError(
            "inputs have different bar intervals ("
            + ", ".join(f"{s // 60}min" for s in sorted(intervals))
            + "); import them at one interval"
        )
    interval_s = intervals.pop()
    max_gap = min(int(t.meta.get("max_gap_min", DEFAULT_MAX_GAP_MIN)) for t in tables)
    ts_sets = {s: frame.loc[frame["symbol"] == s, "ts"].to_numpy() for s in symbols}
    common = ts_sets[symbols[0]]
    for s in symbols[1:]:
        common = np.intersect1d(common, ts_sets[s], assume_unique=True)
    dropped = {}
    for s in symbols:
        mine = ts_sets[s]
        reasons = {}
        for other in symbols:
            if other != s:
                missing = int((~np.isin(mine, ts_sets[other], assume_unique=True)).sum())
                if missing:
                    reasons[f"missing in {other}"] = missing
        dropped[s] = reasons
    if len(common) == 0:
        raise BarsError(f"the symbols {', '.join(symbols)} share no timestamp")
    kept = frame[np.isin(frame["ts"].to_numpy(), common)].copy()
    info = assign_segments(common, interval_s, max_gap)
    kept["segment"] = info.segment[np.searchsorted(common, kept["ts"].to_numpy())]
    meta = {
        "interval_s": interval_s,
        "max_gap_min": max_gap,
        "simulated": {s: any(t.is_simulated(s) for t in tables) for s in symbols},
        "aligned_from": [recorded_sources(t, n) for t, n in zip(tables, names, strict=True)],
    }
    report = AlignReport(
        rows_in={s: len(v) for s, v in ts_sets.items()},
        rows_out=len(common),
        dropped=dropped,
        level_shifts=shifts_between(list(zip(names, tables, strict=True))),
    )
    return Bars(canonical_frame(kept), meta), report
