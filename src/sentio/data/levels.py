"""Flag a level shift where bars of one symbol pass from one file to another.

Vendors disagree on scale: IBKR's 1-minute volume is 36 to 96 times smaller than the
consolidated tape's (Polygon, the LSE files; docs/data.md), and a split-adjusted file sits at a
multiple of one that is not. Combined, such files give a model a step that no market made. This
module looks at each pair of ADJACENT pieces of one symbol's bars (a piece: the bars of one
session from one file), taken in time order, whose files differ, and compares

- volume: the median volume per bar of each piece (the ratio, larger over smaller), against
  :data:`VOLUME_RATIO`;
- price: the last close of the earlier piece against the first open of the later (a split
  shows as its ratio), against :data:`PRICE_GAP_LOG` per square root of the sessions between
  them (prices wander further over months than overnight).

A flag is a warning, never an error: a user may combine files on purpose. The thresholds were
measured on the real files; docs/data.md ("Level shifts between files") gives the numbers and the
commands.

Which file a bar came from: an import knows it; a canonical table keeps it in its metadata,
``sources[i]["spans"]`` (``[symbol, first_ts, last_ts]`` runs of that file's bars), carried into
an aligned table's ``aligned_from``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sentio.core.clock import ny_time
from sentio.data.schema import Bars
from sentio.data.trading_calendar import locate

# Measured on the real files (docs/data.md, "Level shifts between files"): within one vendor
# file the session-to-session ratio of median volume per bar is at most x3.64 (x3.50 at the
# 99.9th percentile of 745 adjacent pairs); IBKR against the consolidated tape is x36 to x66 on
# the same sessions and x84 to x96 across the files' seams. x5 sits between.
VOLUME_RATIO = 5.0
# Within one file the largest close-to-open gap between adjacent sessions is |log| 0.133 (TQQQ,
# April 2025; 0.030 for QQQ and SPY); a 3:2 split is log 0.405. Flagged: a gap of |log| above
# 0.25 * sqrt(sessions apart), x1.28 overnight; prices wander further over months, so a split
# between files many sessions apart cannot be told from the market by price alone.
PRICE_GAP_LOG = 0.25
# The volume of a piece is the median of its bars; a piece of fewer bars than this (a session's
# opening bar alone, or bars interleaved with another file's copies of the same minutes) has
# no level to compare: the opening bar alone is x8 to x14 a session's median.
MIN_VOLUME_BARS = 30


@dataclass(frozen=True)
class LevelShift:
    """One flagged pair of adjacent pieces of one symbol from two files."""

    symbol: str
    field: str  # "volume" (median per bar) or "price" (last close -> first open)
    earlier_file: str
    earlier_session: str  # New York date, YYYY-MM-DD
    earlier_value: float
    later_file: str
    later_session: str
    later_value: float
    ratio: float  # larger over smaller, >= 1
    threshold: float  # the ratio above which this pair is flagged

    def message(self) -> str:
        """One warning line naming both files, both sessions, the field and the ratio.

        >>> LevelShift("QQQ", "volume", "ibkr.parquet", "2024-03-01", 1200.0,
        ...            "lse.parquet", "2024-03-04", 90000.0, 75.0, 5.0).message()
        'level shift: QQQ volume median 1,200 in ibkr.parquet session 2024-03-01 vs 90,000 in lse.parquet session 2024-03-04 (x75, threshold x5)'
        """  # noqa: E501
        what = "volume median" if self.field == "volume" else "price last close"
        later = "" if self.field == "volume" else "first open "
        return (
            f"level shift: {self.symbol} {what} {_number(self.earlier_value, self.field)} in "
            f"{self.earlier_file} session {self.earlier_session} vs {later}"
            f"{_number(self.later_value, self.field)} in {self.later_file} session "
            f"{self.later_session} "
            f"(x{self.ratio:.3g}, threshold x{self.threshold:.3g})"
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "message": self.message()}


def _number(value: float, field: str) -> str:
    """A volume in whole shares, a price with cents, both with thousands separators.

    >>> _number(921.0, "volume"), _number(1612.3456, "price")
    ('921', '1,612.35')
    """
    return f"{value:,.0f}" if field == "volume" else f"{value:,.2f}"


def pieces(frame: pd.DataFrame, source: np.ndarray) -> pd.DataFrame:
    """One row per (symbol, session, source) piece, in time order within each symbol.

    Columns: symbol, source, session (NYSE session number), date, first_ts, median_volume,
    first_open, last_close, bars. ``source`` labels each row of ``frame`` with its file.
    """
    ts = frame["ts"].to_numpy(np.int64)
    session = locate(ts)[1]
    rows = pd.DataFrame(
        {
            "symbol": frame["symbol"].to_numpy(object),
            "source": np.asarray(source, dtype=object),
            "session": session,
            "ts": ts,
            "open": frame["open"].to_numpy(np.float64),
            "close": frame["close"].to_numpy(np.float64),
            "volume": frame["volume"].to_numpy(np.float64),
        }
    ).sort_values(["symbol", "ts"], kind="stable")
    # A new piece starts wherever the symbol, session or source changes from the row before.
    keys = rows[["symbol", "session", "source"]]
    piece_id = (keys != keys.shift()).any(axis=1).cumsum().to_numpy()
    grouped = rows.groupby(piece_id, sort=True)
    out = grouped.agg(
        symbol=("symbol", "first"),
        source=("source", "first"),
        session=("session", "first"),
        first_ts=("ts", "first"),
        median_volume=("volume", "median"),
        first_open=("open", "first"),
        last_close=("close", "last"),
        bars=("ts", "size"),
    ).reset_index(drop=True)
    out["date"] = [f"{d:%Y-%m-%d}" for d in ny_time(out["first_ts"].to_numpy(np.int64))]
    return out


def adjacent_pairs(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(earlier, later) pieces of every adjacent pair of one symbol, row for row."""
    same_symbol = table["symbol"].to_numpy()[1:] == table["symbol"].to_numpy()[:-1]
    earlier = table.iloc[:-1][same_symbol].reset_index(drop=True)
    later = table.iloc[1:][same_symbol].reset_index(drop=True)
    return earlier, later


def volume_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Larger over smaller median volume (inf when one is 0 and the other not, 1 when both are).

    >>> volume_ratio(np.array([100.0, 0.0, 0.0]), np.array([7500.0, 5.0, 0.0])).tolist()
    [75.0, inf, 1.0]
    """
    hi, lo = np.maximum(a, b), np.minimum(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(hi == 0, 1.0, hi / lo)


def price_ratio(last_close: np.ndarray, first_open: np.ndarray) -> np.ndarray:
    """exp(|log(first_open / last_close)|): the gap as a ratio >= 1.

    >>> price_ratio(np.array([100.0, 100.0]), np.array([50.0, 103.0])).round(2).tolist()
    [2.0, 1.03]
    """
    return np.exp(np.abs(np.log(first_open / last_close)))


def level_shifts(
    frame: pd.DataFrame,
    source: np.ndarray,
    *,
    volume_threshold: float = VOLUME_RATIO,
    price_gap_log: float = PRICE_GAP_LOG,
) -> list[LevelShift]:
    """Every adjacent pair of pieces from different files whose level differs (module doc).

    ``frame``: canonical rows (ts, symbol, open, close, volume) of one or more symbols;
    ``source``: the file of each row. Flags come in time order, per symbol.
    """
    if len(frame) == 0 or len(set(np.asarray(source, dtype=object).tolist())) < 2:
        return []
    earlier, later = adjacent_pairs(pieces(frame, source))
    crossing = (earlier["source"] != later["source"]).to_numpy()
    earlier, later = earlier[crossing], later[crossing]
    vol = volume_ratio(earlier["median_volume"].to_numpy(), later["median_volume"].to_numpy())
    enough = (earlier["bars"].to_numpy() >= MIN_VOLUME_BARS) & (
        later["bars"].to_numpy() >= MIN_VOLUME_BARS
    )
    vol = np.where(enough, vol, 1.0)
    price = price_ratio(earlier["last_close"].to_numpy(), later["first_open"].to_numpy())
    apart = np.maximum(later["session"].to_numpy() - earlier["session"].to_numpy(), 1)
    price_threshold = np.exp(price_gap_log * np.sqrt(apart))
    found = []
    for i in np.flatnonzero((vol > volume_threshold) | (price > price_threshold)):
        e, lt = earlier.iloc[i], later.iloc[i]
        if vol[i] > volume_threshold:
            found.append(_shift(e, lt, "volume", "median_volume", "median_volume", vol[i],
                                volume_threshold))  # fmt: skip
        if price[i] > price_threshold[i]:
            found.append(_shift(e, lt, "price", "last_close", "first_open", price[i],
                                price_threshold[i]))  # fmt: skip
    return found


def _shift(e, lt, name: str, e_col: str, l_col: str, ratio: float, threshold: float):
    return LevelShift(
        symbol=str(e["symbol"]),
        field=name,
        earlier_file=str(e["source"]),
        earlier_session=str(e["date"]),
        earlier_value=float(e[e_col]),
        later_file=str(lt["source"]),
        later_session=str(lt["date"]),
        later_value=float(lt[l_col]),
        ratio=float(ratio),
        threshold=float(threshold),
    )


def file_labels(paths: list[str | Path]) -> list[str]:
    """How messages name files: the base name, the path as given where two share a base name,
    and a number where two share the path (each file keeps its own label).

    >>> file_labels(["a/QQQ.csv", "b/SPY.csv"]), file_labels(["a/QQQ.csv", "b/QQQ.csv"])
    (['QQQ.csv', 'SPY.csv'], ['a/QQQ.csv', 'b/QQQ.csv'])
    >>> file_labels(["QQQ.csv", "QQQ.csv"])
    ['QQQ.csv #1', 'QQQ.csv #2']
    """
    names = [Path(p).name for p in paths]
    labels = [n if names.count(n) == 1 else str(p) for n, p in zip(names, paths, strict=True)]
    return [
        f"{label} #{labels[: i + 1].count(label)}" if labels.count(label) > 1 else label
        for i, label in enumerate(labels)
    ]


def spans(frame: pd.DataFrame, file_index: np.ndarray, count: int) -> list[list[list]]:
    """Per file (``0..count-1``): its runs of consecutive bars per symbol, as
    ``[symbol, first_ts, last_ts]``, for the table's metadata (``frame`` sorted by symbol, ts)."""
    out: list[list[list]] = [[] for _ in range(count)]
    symbol = frame["symbol"].to_numpy(object)
    ts = frame["ts"].to_numpy(np.int64)
    index = np.asarray(file_index)
    if len(index) == 0:
        return out
    starts = np.flatnonzero(np.r_[True, (index[1:] != index[:-1]) | (symbol[1:] != symbol[:-1])])
    ends = np.r_[starts[1:], len(index)] - 1
    for s, e in zip(starts, ends, strict=True):
        out[int(index[s])].append([str(symbol[s]), int(ts[s]), int(ts[e])])
    return out


def recorded_sources(bars: Bars, name: str) -> list[dict]:
    """The files a canonical table records as its sources, each with its ``spans``.

    From ``sources`` (an import) and ``aligned_from`` (an aligned table); a table that records
    fewer than two sources with spans is one source, ``name``, spanning all its bars.
    """
    recorded = list(bars.meta.get("sources") or [])
    for group in bars.meta.get("aligned_from") or []:
        recorded.extend(group if isinstance(group, list) else [])
    recorded = [s for s in recorded if isinstance(s, dict) and isinstance(s.get("spans"), list)]
    if len(recorded) >= 2:
        return recorded
    frame = bars.frame
    whole = spans(frame, np.zeros(len(frame), dtype=np.int64), 1)[0]
    return [{**(recorded[0] if recorded else {"file": Path(name).name}), "spans": whole}]


def row_sources(bars: Bars, name: str) -> np.ndarray:
    """The file of each row of a canonical table read from ``name``: ``SOURCE (in NAME)`` where
    it records several source files (:func:`recorded_sources`), else ``name`` for every row."""
    frame = bars.frame
    label = np.full(len(frame), name, dtype=object)
    recorded = recorded_sources(bars, name)
    if len(recorded) < 2:
        return label
    names = file_labels([str(s.get("file", "?")) for s in recorded])
    symbol = frame["symbol"].to_numpy(object)
    ts = frame["ts"].to_numpy(np.int64)
    for source, source_name in zip(recorded, names, strict=True):
        for span in source["spans"]:
            try:
                sym, first, last = str(span[0]), int(span[1]), int(span[2])
            except (TypeError, ValueError, IndexError):
                continue  # metadata edited by hand: this span cannot be placed
            label[(symbol == sym) & (ts >= first) & (ts <= last)] = f"{source_name} (in {name})"
    return label


def shifts_between(tables: list[tuple[str, Bars]], symbol: str | None = None) -> list[LevelShift]:
    """Level shifts across several canonical tables (and the files each records as sources).

    ``tables``: (file name as the user gave it, its bars); ``symbol``: only this symbol.
    """
    labels = file_labels([n for n, _ in tables])
    frames, sources = [], []
    for label, (_, bars) in zip(labels, tables, strict=True):
        keep = np.ones(len(bars.frame), dtype=bool)
        if symbol is not None:
            keep = (bars.frame["symbol"] == symbol).to_numpy()
        frames.append(bars.frame[keep])
        sources.append(row_sources(bars, label)[keep])
    if not frames:
        return []
    return level_shifts(pd.concat(frames, ignore_index=True), np.concatenate(sources))


__all__ = [
    "LevelShift",
    "PRICE_GAP_LOG",
    "VOLUME_RATIO",
    "adjacent_pairs",
    "file_labels",
    "level_shifts",
    "pieces",
    "price_ratio",
    "recorded_sources",
    "row_sources",
    "shifts_between",
    "spans",
    "volume_ratio",
]
