"""Vendor file readers: each turns one file into :class:`RawBars`, nothing more.

Readers never drop or fix a row. They parse what they can and mark what they cannot (a
non-numeric cell, an unparseable time) so that :mod:`sentio.data.validate` can name the row.

Formats (docs/data.md):

============ ================================================================================
``polygon``  CSV ``ts_utc,ts_nyt_epoch,open,high,low,close,volume``; time = ``ts_nyt_epoch``,
             UTC epoch seconds (``ts_utc`` is really New York time with its offset).
``ibkr``     CSV ``datetime,open,high,low,close,volume``; ``datetime`` is naive New York time.
``parquet``  Parquet with a ``ts`` index or column (naive = UTC, or tz-aware) and optionally a
             ``symbol`` column; also reads canonical Sentio tables.
``generic``  any CSV, given ``--ts-col`` (and ``--tz`` for naive times, ``--ts-unit`` for epoch
             numbers).
============ ================================================================================

Rows are numbered as a spreadsheet shows them: in a CSV the header is row 1 and the first bar is
row 2; in a Parquet file the first bar is row 1.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from sentio.core.clock import NEW_YORK, NS_PER_MINUTE
from sentio.core.errors import BarsError, OptionError, excerpt
from sentio.data.schema import MAX_SYMBOL, META_KEY, VALUE_FIELDS, valid_symbol

FORMATS = ("polygon", "ibkr", "parquet", "generic")
TS_UNITS = ("s", "ms", "us", "ns")
_NON_FINITE_WORDS = {"nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
_SYMBOL_IN_NAME = re.compile(r"^([A-Z]{1,5})(?=[_\-. ]|$)")
_OFFSET = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$")
# Stand-ins for a readable time that int64 nanoseconds cannot hold (years before 1678 or after
# 2262, an epoch number of 1e30): whole minutes at the ends of the range, so that the
# ``ts_out_of_range`` rule (not a crash in pandas) refuses the row; its text is kept for messages.
FAR_FUTURE = np.iinfo(np.int64).max // NS_PER_MINUTE * NS_PER_MINUTE
FAR_PAST = -FAR_FUTURE
_NS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_INTERVAL_IN_NAME = re.compile(r"(?:^|[_\-. ])(\d{1,3})min(?:[_\-. ]|$)", re.IGNORECASE)


@dataclass
class RawBars:
    """One file's rows as parsed, with marks for what could not be parsed."""

    file: str
    fmt: str
    ts_field: str  # the column the time came from, for messages
    rows: np.ndarray  # (N,) int64 row numbers as the file shows them
    ts: np.ndarray  # (N,) int64 ns UTC; 0 where ts_bad
    ts_bad: np.ndarray  # (N,) bool: time missing or unparseable
    symbol: np.ndarray  # (N,) object
    values: dict[str, np.ndarray]  # field -> (N,) float64 (NaN where not a number)
    bad_text: dict[str, dict[int, str]] = field(default_factory=dict)  # field -> {i: raw text}
    ts_text: dict[int, str] = field(default_factory=dict)  # i -> raw text of a bad or far time
    files: list[str] = field(default_factory=list)  # several inputs concatenated: their names
    file_index: np.ndarray | None = None  # (N,) which of ``files`` each row came from
    interval_s: int | None = None  # the interval the file declares (metadata, or _5min in its name)

    def __post_init__(self) -> None:
        if not self.files:
            self.files = [self.file]
        if self.file_index is None:
            self.file_index = np.zeros(len(self.rows), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def file_of(self, i: int) -> str:
        return self.files[int(self.file_index[i])]


@dataclass(frozen=True)
class ReadOptions:
    """How to read files whose format cannot tell everything by itself."""

    symbol: str | None = None  # overrides the file and the name
    ts_col: str | None = None  # forces the generic CSV reader on this column
    tz: str | None = None  # zone of naive times in generic CSVs (and overrides ibkr's New York)
    ts_unit: str | None = None  # unit of numeric epoch times in generic CSVs

    def check(self) -> None:
        """Refuse a flag value that cannot work, before any file is read.

        >>> try:
        ...     ReadOptions(tz="Mars/Olympus").check()
        ... except OptionError as exc:
        ...     print(exc)
        --tz: unknown time zone 'Mars/Olympus'; give an IANA name such as America/New_York or UTC
        """
        if self.tz is not None:
            try:
                ZoneInfo(self.tz)
            except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
                raise OptionError(
                    f"unknown time zone {excerpt(self.tz)}; give an IANA name such as "
                    "America/New_York or UTC",
                    flag="--tz",
                ) from exc
        if self.ts_unit is not None and self.ts_unit not in TS_UNITS:
            raise OptionError(
                f"must be one of {', '.join(TS_UNITS)}, got {excerpt(self.ts_unit)}",
                flag="--ts-unit",
            )
        if self.symbol is not None and not valid_symbol(self.symbol):
            raise OptionError(
                f"a symbol is 1 to {MAX_SYMBOL} characters without spaces or control "
                f"characters, got {excerpt(self.symbol)}",
                flag="--symbol",
            )
        if self.ts_col is not None and not self.ts_col.strip():
            raise OptionError("give the name of the time column", flag="--ts-col")


def detect_format(path: Path, header: list[str], options: ReadOptions) -> str:
    """Pick the reader for a file, or fail naming the flag that would settle it."""
    if path.suffix.lower() in (".parquet", ".pq"):
        return "parquet"
    if options.ts_col is not None:
        return "generic"
    names = [h.strip().lower() for h in header]
    if "ts_utc" in names and "ts_nyt_epoch" in names:
        return "polygon"
    if names and names[0] == "datetime":
        return "ibkr"
    raise BarsError(
        f"cannot tell the format from the header {excerpt(','.join(map(str, header)))}: "
        "expected a Polygon header (ts_utc,ts_nyt_epoch,...), an IBKR header (datetime,...) "
        "or a .parquet file; for any other CSV give --ts-col NAME (with --tz ZONE for naive "
        "times or --ts-unit s|ms|us|ns for epoch numbers)",
        file=str(path),
        row=1,
        rule="unknown_format",
    )


def read_file(path: str | Path, options: ReadOptions = ReadOptions()) -> RawBars:
    """Read one vendor file into :class:`RawBars` (no row is dropped or changed)."""
    path = Path(path)
    if not path.exists():
        raise BarsError("file not found", file=str(path))
    if path.is_dir():
        raise BarsError(
            "is a directory; give the vendor files themselves (for example DIR/*.csv)",
            file=str(path),
        )
    if not path.is_file():  # a FIFO would block the reader forever
        raise BarsError(
            "is not a regular file (a FIFO, device or socket); give the vendor file itself",
            file=str(path),
        )
    if path.suffix.lower() in (".parquet", ".pq"):
        return _read_parquet(path, options)
    frame = _read_csv(path)
    fmt = detect_format(path, list(frame.columns), options)
    columns = _column_map(path, frame.columns, fmt, options, header_row=1)
    rows = np.arange(len(frame), dtype=np.int64) + 2  # header is row 1
    values, bad_text = _numeric_columns(path, frame, columns, csv=True)
    ts_name = columns["ts"]
    if fmt == "polygon":
        ts, ts_bad, ts_text = _epoch_ts(frame[ts_name], "s")
    elif fmt == "ibkr":
        ts, ts_bad, ts_text = _text_ts(path, frame[ts_name], options.tz or NEW_YORK)
    else:
        ts, ts_bad, ts_text = _generic_ts(path, frame[ts_name], options)
    # docs/data.md: --symbol, else the file's symbol column, else the name's leading ticker
    file_symbols = symbol_text(frame["symbol"]) if "symbol" in frame else None
    symbol = _symbol_column(path, file_symbols, len(frame), options)
    return RawBars(
        str(path),
        fmt,
        ts_name,
        rows,
        ts,
        ts_bad,
        symbol,
        values,
        bad_text,
        ts_text,
        interval_s=interval_in_name(path),
    )


def interval_in_name(path: Path) -> int | None:
    """The interval a vendor file's name states, as IBKR exports do (``QQQ_5min.csv``).

    >>> interval_in_name(Path("QQQ_5min.csv")), interval_in_name(Path("QQQ_RTH_NH.csv"))
    (300, None)
    """
    match = _INTERVAL_IN_NAME.search(path.stem)
    return int(match.group(1)) * 60 if match and int(match.group(1)) > 0 else None


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        # Blank lines are kept (as empty rows) so that row numbers match the file.
        return pd.read_csv(path, skip_blank_lines=False)
    except pd.errors.EmptyDataError as exc:
        raise BarsError("the file is empty", file=str(path), rule="unreadable") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise BarsError(
            f"not a readable CSV: {excerpt(str(exc), 200)}", file=str(path), rule="unreadable"
        ) from exc


def _column_map(
    path: Path, header, fmt: str, options: ReadOptions, header_row: int | None
) -> dict[str, str]:
    """Map canonical field -> the file's column name, refusing missing or misnamed columns."""
    by_lower = {str(h).strip().lower(): str(h) for h in header}
    ts_wanted = {
        "polygon": "ts_nyt_epoch",
        "ibkr": "datetime",
        "generic": (options.ts_col or "").lower(),
        "parquet": "ts",
    }[fmt]
    found: dict[str, str] = {}
    missing: list[str] = []
    for name in ("ts", *VALUE_FIELDS):
        want = ts_wanted if name == "ts" else name
        if want in by_lower:
            found[name] = by_lower[want]
        else:
            missing.append(want)
    if missing:
        unused = [h for low, h in by_lower.items() if low not in found.values()]
        hints = []
        for want in missing:
            close = difflib.get_close_matches(want, [u.lower() for u in unused], n=1, cutoff=0.6)
            if close:
                hints.append(f"{by_lower[close[0]]!r} looks like a misnamed {want!r}")
        hint = ("; " + "; ".join(hints)) if hints else ""
        raise BarsError(
            f"missing column(s) {', '.join(missing)} for the {fmt} format; found "
            f"{excerpt(', '.join(map(str, header)), 200)}" + excerpt(hint, 200),
            file=str(path),
            row=header_row,
            field=missing[0],
            rule="missing_column",
        )
    return found


def _numeric_columns(path: Path, frame: pd.DataFrame, columns: dict[str, str], csv: bool):
    """float64 values per field; raw text kept for cells that are not finite numbers."""
    values: dict[str, np.ndarray] = {}
    bad_text: dict[str, dict[int, str]] = {}
    for name in VALUE_FIELDS:
        column = frame[columns[name]]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            arr = column.to_numpy(dtype=np.float64, na_value=np.nan)
            if np.isfinite(arr).all():
                values[name] = arr
                continue
        # Slow path, only for columns holding something that is not a finite number:
        # go back to the raw text so that "" (missing) and "nan" (non-finite) stay distinct.
        if csv:
            text = pd.read_csv(
                path,
                usecols=[columns[name]],
                dtype=str,
                keep_default_na=False,
                skip_blank_lines=False,
            )[columns[name]]
        else:
            text = column.astype(object).map(lambda v: "" if v is None else str(v))
        text = text.fillna("").astype(str).str.strip()
        arr = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(arr)
        bad_text[name] = {int(i): text.iloc[i] for i in np.flatnonzero(bad)}
        values[name] = arr
    return values, bad_text


def is_non_finite_word(text: str) -> bool:
    """True for the spellings of NaN and infinity (a non-finite number, not a non-number)."""
    return text.strip().lower() in _NON_FINITE_WORDS


def _epoch_ts(column: pd.Series, unit: str):
    if pd.api.types.is_integer_dtype(column):  # exact: int64 ns stays bit for bit
        num = column.to_numpy(dtype=np.int64)
        bad = np.zeros(len(num), dtype=bool)
        return _scaled(num, _NS_PER_UNIT[unit], bad, column)
    num = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(num)
    with np.errstate(invalid="ignore"):  # the far ones are replaced below, never cast
        ns = np.round(np.where(bad, 0.0, num) * _NS_PER_UNIT[unit])
    far = ~bad & (np.abs(ns) > FAR_FUTURE)
    ts = np.where(bad | far, 0.0, ns).astype(np.int64)
    ts = np.where(far, np.where(ns > 0, FAR_FUTURE, FAR_PAST), ts)
    return ts, bad, _texts(column, bad | far)


def _scaled(values: np.ndarray, scale: int, bad: np.ndarray, column: pd.Series):
    """int64 ``values`` in a unit of ``scale`` ns -> ns, far ones replaced by FAR_* (no wrap)."""
    limit = FAR_FUTURE // scale
    far = ~bad & (np.abs(values) > limit)
    safe = np.where(bad | far, 0, values)
    ts = np.where(far, np.where(values > 0, FAR_FUTURE, FAR_PAST), safe * scale)
    return ts.astype(np.int64), bad, _texts(column, bad | far)


def _naive_ts(column: pd.Series, tz: str):
    parsed = pd.to_datetime(column, errors="coerce", format="mixed")
    index = pd.DatetimeIndex(parsed)
    if index.tz is None:
        index = index.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    return _from_index(index, column)


def _from_index(index: pd.DatetimeIndex, column: pd.Series):
    # pandas parses into microseconds (or seconds), which hold years that nanoseconds cannot
    # (9999-12-31): convert by hand rather than with as_unit("ns"), which would raise.
    bad = np.asarray(index.isna())
    return _scaled(index.asi8, _NS_PER_UNIT[index.unit], bad, column)


def _texts(column: pd.Series, bad: np.ndarray) -> dict[int, str]:
    return {int(i): str(column.iloc[i]) for i in np.flatnonzero(bad)}


def _generic_ts(path: Path, column: pd.Series, options: ReadOptions):
    if pd.api.types.is_numeric_dtype(column):
        if options.ts_unit not in TS_UNITS:
            raise BarsError(
                f"the time column {excerpt(str(column.name))} holds numbers: give --ts-unit "
                f"{'|'.join(TS_UNITS)} to say what unit of epoch time they are",
                file=str(path),
                field=str(column.name),
                rule="ts_unit_needed",
            )
        return _epoch_ts(column, options.ts_unit)
    if options.tz is None and not column.astype(str).str.strip().str.contains(_OFFSET).any():
        raise BarsError(
            f"the times in {excerpt(str(column.name))} are naive (no UTC offset): give --tz ZONE "
            "(for example --tz America/New_York or --tz UTC)",
            file=str(path),
            field=str(column.name),
            rule="tz_needed",
        )
    return _text_ts(path, column, options.tz)


def _text_ts(path: Path, column: pd.Series, tz: str | None):
    """Times written as text: all with a UTC offset, or all naive in ``tz``; never a mix.

    pandas refuses a mix with a traceback ("Mixed timezones detected"), and guessing which form
    is right would be a silent repair, so the first row of the other form is named.
    """
    text = column.astype(str).str.strip()
    present = np.flatnonzero(column.notna().to_numpy())  # a missing time is bad_timestamp's
    has_offset = text.str.contains(_OFFSET).to_numpy()[present]
    if len(present) and has_offset.all():
        return _from_index(
            pd.DatetimeIndex(pd.to_datetime(text, utc=True, errors="coerce", format="mixed")),
            column,
        )
    if has_offset.any():
        # Name the first row of the rarer form: the one row a hand edit or a feed glitch changed.
        rare = has_offset if has_offset.sum() <= (~has_offset).sum() else ~has_offset
        odd = int(present[np.flatnonzero(rare)[0]])
        if has_offset[rare][0]:
            what = f"carries a UTC offset but {int((~rare).sum())} other row(s) are naive"
        else:
            what = f"is naive but {int((~rare).sum())} other row(s) carry a UTC offset"
        raise BarsError(
            f"time {excerpt(text.iloc[odd])} {what}; give every time in one form",
            file=str(path),
            row=odd + 2,  # a CSV's header is row 1
            field=str(column.name),
            rule="bad_timestamp",
        )
    return _naive_ts(text, tz)


def _read_parquet(path: Path, options: ReadOptions) -> RawBars:
    try:
        frame = pd.read_parquet(path)
        declared = (pq.read_schema(path).metadata or {}).get(META_KEY)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise BarsError(
            f"not a readable Parquet file: {excerpt(str(exc), 200)}",
            file=str(path),
            rule="unreadable",
        ) from exc
    if "ts" in (frame.index.names or []):
        frame = frame.reset_index()
    columns = _column_map(path, frame.columns, "parquet", options, header_row=None)
    rows = np.arange(len(frame), dtype=np.int64) + 1
    values, bad_text = _numeric_columns(path, frame, columns, csv=False)
    column = frame[columns["ts"]]
    if pd.api.types.is_integer_dtype(column):  # a canonical table: int64 ns UTC
        ts, ts_bad, ts_text = _epoch_ts(column, "ns")
    elif isinstance(column.dtype, pd.DatetimeTZDtype):
        ts, ts_bad, ts_text = _from_index(pd.DatetimeIndex(column).tz_convert("UTC"), column)
    else:  # naive datetimes are UTC in this format (the LSE vendor files)
        ts, ts_bad, ts_text = _naive_ts(column, options.tz or "UTC")
    file_symbols = symbol_text(frame["symbol"]) if "symbol" in frame else None
    symbol = _symbol_column(path, file_symbols, len(frame), options)
    return RawBars(
        str(path),
        "parquet",
        columns["ts"],
        rows,
        ts,
        ts_bad,
        symbol,
        values,
        bad_text,
        ts_text,
        interval_s=_declared_interval(declared) or interval_in_name(path),
    )


def symbol_text(column: pd.Series) -> np.ndarray:
    """Symbols as text; a missing one becomes "" (the ``missing_symbol`` rule names its row)."""
    text = column.astype(object).where(column.notna(), "")
    return text.map(lambda v: str(v).strip()).to_numpy(object)


def _declared_interval(raw_meta: bytes | None) -> int | None:
    """The ``interval_s`` a canonical table declares in its metadata, if any."""
    try:
        value = json.loads(raw_meta)["interval_s"] if raw_meta else None
    except (ValueError, TypeError, KeyError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _symbol_column(path: Path, from_file, n: int, options: ReadOptions) -> np.ndarray:
    if options.symbol:
        return np.full(n, options.symbol.upper(), dtype=object)
    if from_file is not None:
        return from_file
    match = _SYMBOL_IN_NAME.match(path.stem)
    if not match:
        raise BarsError(
            "cannot tell the symbol: the file has no symbol column and its name "
            f"{excerpt(path.name)} "
            "does not start with one (like QQQ_1min.csv); give --symbol",
            file=str(path),
            rule="symbol_needed",
        )
    return np.full(n, match.group(1), dtype=object)
