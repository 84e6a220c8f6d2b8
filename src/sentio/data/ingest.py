"""``sentio data import``: vendor files -> one canonical bar table, with a report of every change.

Pipeline: read each file (:mod:`importers`) -> check every rule (:mod:`validate`) -> keep the
regular session -> apply the ``--split`` adjustments asked for -> number segments per symbol.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sentio.core.clock import NEW_YORK
from sentio.core.errors import BarsError
from sentio.core.hashing import sha256_file
from sentio.data.importers import RawBars, ReadOptions, read_file
from sentio.data.schema import PRICE_FIELDS, VALUE_FIELDS, Bars, canonical_frame
from sentio.data.segments import DEFAULT_MAX_GAP_MIN, Hole, assign_segments
from sentio.data.validate import Checked, check

_SPLIT = re.compile(r"^(\d{4}-\d{2}-\d{2}):(\d+(?:\.\d+)?(?:/\d+(?:\.\d+)?)?)$")


@dataclass(frozen=True)
class Split:
    """Bars of sessions before ``date`` get prices x ``ratio`` and volume / ``ratio``.

    >>> Split.parse("2025-11-20:0.5")
    Split(date='2025-11-20', ratio=0.5)
    >>> Split.parse("2025-11-20:1/2").ratio
    0.5
    """

    date: str
    ratio: float

    @classmethod
    def parse(cls, text: str) -> Split:
        match = _SPLIT.match(text.strip())
        if not match:
            raise BarsError(
                f"--split {text!r} is not DATE:RATIO (e.g. 2025-11-20:0.5 or 2025-11-20:1/2)",
                rule="bad_split",
            )
        num, _, den = match.group(2).partition("/")
        ratio = float(num) / float(den or 1)
        if not ratio > 0:
            raise BarsError(f"--split ratio must be > 0, got {text!r}", rule="bad_split")
        return cls(match.group(1), ratio)


@dataclass
class FileReport:
    file: str
    fmt: str
    symbols: list[str]
    rows_read: int
    rows_kept: int
    extended_hours: int
    dropped: dict[str, int]
    sha256: str


@dataclass
class ImportReport:
    files: list[FileReport]
    interval_s: int
    max_gap_min: int
    splits: list[Split]
    holes: dict[str, list[Hole]] = field(default_factory=dict)
    segments: dict[str, int] = field(default_factory=dict)
    split_rows: dict[str, int] = field(default_factory=dict)


def import_files(
    paths: list[str | Path],
    options: ReadOptions = ReadOptions(),
    *,
    repair: str = "refuse",
    max_gap_min: int = DEFAULT_MAX_GAP_MIN,
    splits: list[Split] = (),
) -> tuple[Bars, ImportReport]:
    """Import vendor files into one canonical table (see module doc)."""
    if not paths:
        raise BarsError("no input files given")
    if max_gap_min < 0:
        raise BarsError(f"--max-gap must be >= 0 minutes, got {max_gap_min}")
    raws = [read_file(p, options) for p in paths]
    raw = _concat(raws)
    checked = check(raw, repair=repair)
    reports = _file_reports(raws, checked)
    keep = checked.keep
    frame = pd.DataFrame(
        {
            "ts": raw.ts[keep],
            "symbol": raw.symbol[keep],
            **{f: raw.values[f][keep] for f in VALUE_FIELDS},
        }
    )
    if frame.empty:
        raise BarsError(
            "no regular-session bars left to import", file=", ".join(str(p) for p in paths)
        )
    frame = frame.sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)
    interval_s = infer_interval(frame)
    split_rows = _apply_splits(frame, splits)
    frame["segment"] = 0
    holes: dict[str, list[Hole]] = {}
    segments: dict[str, int] = {}
    for symbol, rows in frame.groupby("symbol", sort=True).groups.items():
        info = assign_segments(frame.loc[rows, "ts"].to_numpy(), interval_s, max_gap_min)
        frame.loc[rows, "segment"] = info.segment
        holes[symbol] = info.holes
        segments[symbol] = int(info.segment[-1]) + 1
    symbols = sorted(frame["symbol"].unique())
    meta = {
        "interval_s": interval_s,
        "max_gap_min": max_gap_min,
        "simulated": {s: False for s in symbols},
        "sources": [
            {"file": Path(r.file).name, "format": r.fmt, "sha256": r.sha256, "rows": r.rows_read}
            for r in reports
        ],
        "repair": {"mode": repair, "dropped": _sum_dropped(reports)},
        "splits": [{"date": s.date, "ratio": s.ratio} for s in splits],
    }
    report = ImportReport(
        reports, interval_s, max_gap_min, list(splits), holes, segments, split_rows
    )
    return Bars(canonical_frame(frame), meta), report


def infer_interval(frame: pd.DataFrame) -> int:
    """The bar interval in seconds: the most common step between a symbol's consecutive bars."""
    steps = []
    for _, rows in frame.groupby("symbol", sort=True):
        diff = np.diff(rows["ts"].to_numpy())
        steps.append(diff[(diff > 0) & (diff <= 3600 * 1_000_000_000)])
    steps = np.concatenate(steps) if steps else np.zeros(0, np.int64)
    if len(steps) == 0:
        return 60
    values, counts = np.unique(steps, return_counts=True)
    step_ns = int(values[np.argmax(counts)])
    if step_ns % 60_000_000_000:
        raise BarsError(f"bars are {step_ns / 1e9:g} s apart; only whole minutes are supported")
    return step_ns // 1_000_000_000


def _apply_splits(frame: pd.DataFrame, splits) -> dict[str, int]:
    """Adjust bars of sessions before each split date, in place; returns rows touched per split."""
    touched: dict[str, int] = {}
    if not splits:
        return touched
    days = pd.DatetimeIndex(pd.to_datetime(frame["ts"].to_numpy(), utc=True)).tz_convert(NEW_YORK)
    local_days = days.tz_localize(None).normalize()
    for split in splits:
        before = np.asarray(local_days < pd.Timestamp(split.date))
        for name in PRICE_FIELDS:
            frame.loc[before, name] = frame.loc[before, name] * split.ratio
        frame.loc[before, "volume"] = frame.loc[before, "volume"] / split.ratio
        touched[f"{split.date}:{split.ratio:g}"] = int(before.sum())
    return touched


def _concat(raws: list[RawBars]) -> RawBars:
    """One RawBars over several files; ``files``/``file_index`` keep each row's origin."""
    if len(raws) == 1:
        return raws[0]
    offsets = np.cumsum([0] + [len(r) for r in raws])
    bad_text: dict[str, dict[int, str]] = {}
    ts_text: dict[int, str] = {}
    for r, off in zip(raws, offsets, strict=False):
        for f, cells in r.bad_text.items():
            bad_text.setdefault(f, {}).update({int(i + off): t for i, t in cells.items()})
        ts_text.update({int(i + off): t for i, t in r.ts_text.items()})
    return RawBars(
        file=raws[0].file,
        fmt="mixed",
        ts_field=raws[0].ts_field,
        rows=np.concatenate([r.rows for r in raws]),
        ts=np.concatenate([r.ts for r in raws]),
        ts_bad=np.concatenate([r.ts_bad for r in raws]),
        symbol=np.concatenate([r.symbol for r in raws]),
        values={f: np.concatenate([r.values[f] for r in raws]) for f in VALUE_FIELDS},
        bad_text=bad_text,
        ts_text=ts_text,
        files=[r.file for r in raws],
        file_index=np.repeat(np.arange(len(raws)), [len(r) for r in raws]),
    )


def _file_reports(raws: list[RawBars], checked: Checked) -> list[FileReport]:
    reports = []
    start = 0
    for r in raws:
        rows = slice(start, start + len(r))
        start += len(r)
        reports.append(
            FileReport(
                file=r.file,
                fmt=r.fmt,
                symbols=sorted(set(r.symbol.tolist())),
                rows_read=len(r),
                rows_kept=int(checked.keep[rows].sum()),
                extended_hours=int(checked.extended[rows].sum()),
                dropped=checked.dropped(rows),
                sha256=sha256_file(r.file),
            )
        )
    return reports


def _sum_dropped(reports: list[FileReport]) -> dict[str, int]:
    total: dict[str, int] = {}
    for r in reports:
        for k, c in r.dropped.items():
            total[k] = total.get(k, 0) + c
    return total
