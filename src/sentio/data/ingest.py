"""``sentio data import``: vendor files -> one canonical bar table, with a report of every change.

Pipeline: read each file (:mod:`importers`) -> check every rule (:mod:`validate`) -> keep the
regular session -> apply the ``--split`` adjustments asked for -> number segments per symbol.

The bar interval is declared, never guessed from the rows that survive: ``--interval``, else the
interval the files declare (a canonical table's metadata, or ``_5min`` in an IBKR file's name),
else one minute (the vendor formats Sentio knows are 1-minute bars unless named otherwise). A file
that contradicts the declared interval is refused (no two consecutive bars one interval apart, or
bars closer than it), naming the ``--interval`` to give.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sentio.core.clock import NEW_YORK
from sentio.core.errors import BarsError, OptionError, excerpt
from sentio.core.hashing import sha256_file
from sentio.data.importers import RawBars, ReadOptions, read_file
from sentio.data.levels import LevelShift, file_labels, level_shifts, spans
from sentio.data.schema import MAX_INTERVAL_S, PRICE_FIELDS, VALUE_FIELDS, Bars, canonical_frame
from sentio.data.segments import DEFAULT_MAX_GAP_MIN, Hole, assign_segments
from sentio.data.validate import Checked, check, check_interval

_SPLIT = re.compile(r"^(\d{4}-\d{2}-\d{2}):(\d+(?:\.\d+)?(?:/\d+(?:\.\d+)?)?)$")
_INTERVAL = re.compile(r"^(\d{1,5})\s*(s|min|h)$")
DEFAULT_INTERVAL_S = 60  # Polygon, IBKR and LSE minute files (the vendors' minute files)
MAX_GAP_LIMIT_MIN = 390  # a missing stretch longer than a whole session is no longer a gap
_SPLIT_RATIO = (1e-6, 1e6)  # beyond this, a typo (a split is 1:2 ... 1:1000 in practice)


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
            raise OptionError(
                f"{excerpt(text)} is not DATE:RATIO (e.g. 2025-11-20:0.5 or 2025-11-20:1/2)",
                flag="--split",
            )
        try:
            datetime.date.fromisoformat(match.group(1))
        except ValueError as exc:
            raise OptionError(
                f"{excerpt(text)}: {match.group(1)} is not a calendar date ({exc})", flag="--split"
            ) from exc
        num, _, den = match.group(2).partition("/")
        if float(den or 1) == 0:
            raise OptionError(f"{excerpt(text)}: the ratio divides by zero", flag="--split")
        ratio = float(num) / float(den or 1)
        if not _SPLIT_RATIO[0] <= ratio <= _SPLIT_RATIO[1]:
            raise OptionError(
                f"the ratio must be in [{_SPLIT_RATIO[0]:g}, {_SPLIT_RATIO[1]:g}], "
                f"got {excerpt(text)}",
                flag="--split",
            )
        return cls(match.group(1), ratio)


def parse_interval(text: str) -> int:
    """``--interval`` (``1min``, ``5min``, ``60s``, ``1h``) in seconds: whole minutes only.

    >>> parse_interval("5min"), parse_interval("60s"), parse_interval("1h")
    (300, 60, 3600)
    """
    match = _INTERVAL.match(text.strip().lower())
    if not match:
        raise OptionError(
            f"{excerpt(text)} is not an interval like 1min, 5min, 60s or 1h", flag="--interval"
        )
    seconds = int(match.group(1)) * {"s": 1, "min": 60, "h": 3600}[match.group(2)]
    if seconds % 60 or not 60 <= seconds <= MAX_INTERVAL_S:
        raise OptionError(
            f"must be whole minutes from 1min to {MAX_INTERVAL_S // 60}min, got {excerpt(text)}",
            flag="--interval",
        )
    return seconds


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
    level_shifts: list[LevelShift] = field(default_factory=list)  # warnings (sentio.data.levels)


def import_files(
    paths: list[str | Path],
    options: ReadOptions = ReadOptions(),
    *,
    repair: str = "refuse",
    max_gap_min: int = DEFAULT_MAX_GAP_MIN,
    splits: list[Split] = (),
    interval_s: int | None = None,
) -> tuple[Bars, ImportReport]:
    """Import vendor files into one canonical table (see module doc).

    ``interval_s`` is the bar interval (``--interval``); ``None`` takes the one the files
    declare, else one minute.
    """
    if not paths:
        raise BarsError("no input files given")
    if not 0 <= max_gap_min <= MAX_GAP_LIMIT_MIN:
        raise OptionError(
            f"must be 0 to {MAX_GAP_LIMIT_MIN} minutes, got {max_gap_min}", flag="--max-gap"
        )
    options.check()
    _check_splits(splits)
    raws = [read_file(p, options) for p in paths]
    interval_s = _declared_interval(raws, interval_s)
    raw = _concat(raws)
    checked = check(raw, repair=repair)
    reports = _file_reports(raws, checked)
    keep = checked.keep
    frame = pd.DataFrame(
        {
            "ts": raw.ts[keep],
            "symbol": raw.symbol[keep],
            **{f: raw.values[f][keep] for f in VALUE_FIELDS},
            "file": raw.file_index[keep],
        }
    )
    if frame.empty:
        raise BarsError(
            "no regular-session bars left to import", file=", ".join(str(p) for p in paths)
        )
    frame = frame.sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)
    check_interval(frame, interval_s, ", ".join(str(p) for p in paths))
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
    labels = file_labels([r.file for r in reports])
    shifts = level_shifts(frame, np.asarray(labels, dtype=object)[frame["file"].to_numpy()])
    file_spans = spans(frame, frame["file"].to_numpy(), len(reports))
    meta = {
        "interval_s": interval_s,
        "max_gap_min": max_gap_min,
        "simulated": {s: False for s in symbols},
        "sources": [
            {
                "file": Path(r.file).name,
                "format": r.fmt,
                "sha256": r.sha256,
                "rows": r.rows_read,
                "spans": file_spans[i],  # [symbol, first_ts, last_ts] runs of its bars
            }
            for i, r in enumerate(reports)
        ],
        "repair": {"mode": repair, "dropped": _sum_dropped(reports)},
        "splits": [{"date": s.date, "ratio": s.ratio} for s in splits],
    }
    report = ImportReport(
        reports, interval_s, max_gap_min, list(splits), holes, segments, split_rows, shifts
    )
    return Bars(canonical_frame(frame), meta), report


def _declared_interval(raws: list[RawBars], given: int | None) -> int:
    """``--interval`` if given, else what the files declare, else one minute; never a mix."""
    declared = {r.interval_s for r in raws if r.interval_s is not None}
    if given is not None:
        if declared - {given}:
            raise OptionError(
                f"{given // 60}min contradicts the {sorted(declared)[0] // 60}min bars the "
                "input tables declare",
                flag="--interval",
            )
        return given
    if len(declared) > 1:
        minutes = ", ".join(f"{s // 60}min" for s in sorted(declared))
        raise BarsError(f"the inputs declare different bar intervals ({minutes})")
    return declared.pop() if declared else DEFAULT_INTERVAL_S


def _check_splits(splits) -> None:
    """Refuse a date given twice: both would apply, multiplying the ratios (issue 12, round 2)."""
    seen: set[str] = set()
    for split in splits:
        if split.date in seen:
            raise OptionError(
                f"{split.date} is given twice; give one DATE:RATIO per split (for two splits on "
                "one day, multiply their ratios)",
                flag="--split",
            )
        seen.add(split.date)


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
