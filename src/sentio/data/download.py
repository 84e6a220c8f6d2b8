"""``sentio data download``: 1-minute bars from Alpaca's market-data API into a canonical table.

The download goes one NYSE trading day at a time, through alpaca-py's
``StockHistoricalDataClient`` (the optional extra ``sentio[alpaca]``):

1. each day's bars (the whole New York calendar day: Alpaca serves pre-market and after-hours
   bars too) are fetched, following ``next_page_token`` pages, and saved as one Parquet *part*
   in a side folder next to the output (``OUT.parquet.parts/QQQ_iex_2025-01-02.parquet``),
   written atomically. A re-run skips every day whose part is already there, so an
   interrupted download (a rate limit, a network error, Ctrl-C) resumes where it stopped.
   A day for which Alpaca has no bar at all is reported, and not saved: a re-run asks again
   (an outage on Alpaca's side is then fetched once it is repaired);
2. the parts then go through the same import as ``sentio data import``: every bar rule runs
   (a bad bar is refused naming its part file, row, field and rule), bars outside the regular
   session are dropped and counted, segments are numbered, and the table is written
   atomically. Prices are as traded (Alpaca's ``adjustment=raw``).

Rate limits: alpaca-py's REST client retries an HTTP 429 (and 504) by itself, sleeping a fixed
time between tries; it has no constructor argument for either, so :func:`data_client` sets
them (:data:`RETRY_ATTEMPTS` tries :data:`RETRY_WAIT_S` s apart). It also sets no timeout on
its HTTP requests; :func:`data_client` gives each one :data:`HTTP_TIMEOUT_S`.

The keys and the server addresses come from the environment (:func:`alpaca_settings`); the
live Alpaca feed and broker (``sentio.live.alpaca``) read them through the same function:

==============================  ===================================================
``APCA_API_KEY_ID``             the API key id (required)
``APCA_API_SECRET_KEY``         its secret (required)
``SENTIO_ALPACA_DATA_URL``      the market-data REST API (default Alpaca's own)
``SENTIO_ALPACA_STREAM_URL``    the market-data stream, the whole ``ws(s)://`` URL
``SENTIO_ALPACA_TRADING_URL``   the trading REST API (default the paper API)
==============================  ===================================================

The address variables exist for a proxy or a test server; alpaca-py adds ``/v2/...`` to the
REST addresses itself, so they are given without it (``http://127.0.0.1:8080``).
"""

from __future__ import annotations

import datetime
import functools
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sentio.core.clock import NEW_YORK
from sentio.core.errors import BarsError, OptionError, SentioError, excerpt
from sentio.core.files import atomic_output
from sentio.data.importers import ReadOptions
from sentio.data.ingest import MAX_GAP_LIMIT_MIN, ImportReport, import_files
from sentio.data.schema import MAX_SYMBOL, VALUE_FIELDS, Bars, valid_symbol
from sentio.data.segments import DEFAULT_MAX_GAP_MIN
from sentio.data.trading_calendar import FIRST_YEAR, sessions_between
from sentio.data.validate import REPAIR_MODES

ENV_KEY_ID = "APCA_API_KEY_ID"
ENV_SECRET_KEY = "APCA_API_SECRET_KEY"
ENV_DATA_URL = "SENTIO_ALPACA_DATA_URL"
ENV_STREAM_URL = "SENTIO_ALPACA_STREAM_URL"
ENV_TRADING_URL = "SENTIO_ALPACA_TRADING_URL"
INSTALL_HINT = "pip install 'sentio[alpaca]'"
SOURCES = ("alpaca",)
FEEDS = ("iex", "sip")  # IEX: the free plan's feed (one exchange); SIP: every US exchange
RETRY_ATTEMPTS = 5  # tries after an HTTP 429/504 (alpaca-py's default is 3)
RETRY_WAIT_S = 3  # seconds between them (alpaca-py's default, kept)
HTTP_TIMEOUT_S = 30.0  # per HTTP request; alpaca-py sets none, so a silent server hung forever
PART_COLUMNS = ("ts", "symbol", *VALUE_FIELDS)
PART_SCHEMA = pa.schema(
    [("ts", pa.int64()), ("symbol", pa.string()), *[(f, pa.float64()) for f in VALUE_FIELDS]]
)
_FIELDS = {"o": "open", "h": "high", "l": "low", "c": "close", "v": "volume"}


# ---------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class AlpacaSettings:
    """Keys and server addresses for alpaca-py's clients (``None``: alpaca-py's default)."""

    key_id: str
    secret_key: str = field(repr=False)
    data_url: str | None = None
    stream_url: str | None = None
    trading_url: str | None = None


def alpaca_settings(
    env: Mapping[str, str] | None = None, error: type[SentioError] = OptionError
) -> AlpacaSettings:
    """Read the keys and addresses from ``env`` (default ``os.environ``).

    A missing key or an address that is not a URL raises ``error`` with one line naming the
    variable.

    >>> s = alpaca_settings({"APCA_API_KEY_ID": "k", "APCA_API_SECRET_KEY": "s",
    ...                      "SENTIO_ALPACA_DATA_URL": "http://127.0.0.1:8080/"})
    >>> s.key_id, s.data_url, s.trading_url
    ('k', 'http://127.0.0.1:8080', None)
    >>> try:
    ...     alpaca_settings({"APCA_API_KEY_ID": "k"})
    ... except OptionError as exc:
    ...     print(str(exc)[:64])
    APCA_API_SECRET_KEY is not set: export your Alpaca API key id in
    """
    env = os.environ if env is None else env
    keys = {}
    for name in (ENV_KEY_ID, ENV_SECRET_KEY):
        value = env.get(name, "").strip()
        if not value:
            raise error(
                f"{name} is not set: export your Alpaca API key id in {ENV_KEY_ID} and its "
                f"secret in {ENV_SECRET_KEY} (paper-trading keys for the paper broker)"
            )
        keys[name] = value
    return AlpacaSettings(
        key_id=keys[ENV_KEY_ID],
        secret_key=keys[ENV_SECRET_KEY],
        data_url=_url(env, ENV_DATA_URL, ("http", "https"), error),
        stream_url=_url(env, ENV_STREAM_URL, ("ws", "wss"), error),
        trading_url=_url(env, ENV_TRADING_URL, ("http", "https"), error),
    )


def _url(
    env: Mapping[str, str], name: str, schemes: tuple[str, ...], error: type[SentioError]
) -> str | None:
    text = env.get(name, "").strip()
    if not text:
        return None
    parsed = urlparse(text)
    if parsed.scheme not in schemes or not parsed.netloc:
        wanted = " or ".join(f"{s}://" for s in schemes)
        raise error(f"{name}: {excerpt(text)} is not a {wanted} address (e.g. {schemes[0]}://HOST)")
    return text.rstrip("/")


def require_alpaca(error: type[SentioError] = OptionError) -> None:
    """Raise ``error`` naming the extra when alpaca-py is not installed."""
    try:
        import alpaca  # noqa: F401  (only whether it imports)
    except ImportError as exc:
        raise error(f"alpaca-py is not installed ({exc}); install it with {INSTALL_HINT}") from exc


def with_timeout(client, seconds: float = HTTP_TIMEOUT_S):
    """Give every HTTP request of an alpaca-py REST client a timeout (it sets none)."""
    session = client._session  # alpaca-py 0.44: a requests.Session, no timeout option
    session.request = functools.partial(session.request, timeout=seconds)
    return client


def data_client(settings: AlpacaSettings):
    """alpaca-py's ``StockHistoricalDataClient`` returning raw JSON, with Sentio's retry policy
    and request timeout."""
    from alpaca.data.historical.stock import StockHistoricalDataClient

    client = StockHistoricalDataClient(
        settings.key_id, settings.secret_key, raw_data=True, url_override=settings.data_url
    )
    # alpaca-py 0.44 retries the codes in _retry_codes (429, 504) _retry times, _retry_wait s
    # apart (alpaca/common/rest.py, RESTClient._request); the constructor does not expose them.
    client._retry = RETRY_ATTEMPTS
    client._retry_wait = RETRY_WAIT_S
    return with_timeout(client)


# ---------------------------------------------------------------------------- the request


@dataclass(frozen=True)
class DownloadRequest:
    """What ``sentio data download`` was asked for (the flags, checked by :meth:`check`)."""

    symbol: str
    start: str  # first New York date, YYYY-MM-DD (inclusive)
    end: str  # last New York date, YYYY-MM-DD (inclusive)
    source: str = "alpaca"
    feed: str = "iex"
    max_gap_min: int = DEFAULT_MAX_GAP_MIN
    repair: str = "refuse"

    def check(self) -> list[str]:
        """Refuse a bad flag with one line naming it; return the trading days to fetch.

        >>> DownloadRequest("QQQ", "2025-01-02", "2025-01-06").check()
        ['2025-01-02', '2025-01-03', '2025-01-06']
        >>> try:
        ...     DownloadRequest("QQQ", "2025-01-06", "2025-01-02").check()
        ... except OptionError as exc:
        ...     print(exc)
        --end: 2025-01-02 is before --start 2025-01-06
        """
        if self.source not in SOURCES:
            raise OptionError(
                f"must be one of {', '.join(SOURCES)}, got {excerpt(self.source)}", flag="--source"
            )
        if not valid_symbol(self.symbol):
            raise OptionError(
                f"a symbol is 1 to {MAX_SYMBOL} characters without spaces or control "
                f"characters, got {excerpt(self.symbol)}",
                flag="--symbol",
            )
        if self.feed not in FEEDS:
            raise OptionError(
                f"must be one of {', '.join(FEEDS)}, got {excerpt(self.feed)}", flag="--feed"
            )
        if not 0 <= self.max_gap_min <= MAX_GAP_LIMIT_MIN:
            raise OptionError(
                f"must be 0 to {MAX_GAP_LIMIT_MIN} minutes, got {self.max_gap_min}",
                flag="--max-gap",
            )
        if self.repair not in REPAIR_MODES:
            raise OptionError(
                f"must be one of {', '.join(REPAIR_MODES)}, got {excerpt(self.repair)}",
                flag="--repair",
            )
        first, last = _date(self.start, "--start"), _date(self.end, "--end")
        if last < first:
            raise OptionError(f"{last} is before --start {first}", flag="--end")
        today = pd.Timestamp.now(tz=NEW_YORK).date()
        if last > today:
            raise OptionError(
                f"{last} is after today ({today} in New York): give the last day whose session "
                "has closed",
                flag="--end",
            )
        sessions = sessions_between(first, last)
        if len(sessions) == 0:
            raise OptionError(
                f"no NYSE trading day from {first} to {last} (weekends and holidays only)",
                flag="--end",
            )
        if sessions.close_ns[-1] > time.time_ns():
            close = pd.Timestamp(int(sessions.close_ns[-1]), tz="UTC").tz_convert(NEW_YORK)
            raise OptionError(
                f"the session of {sessions.dates[-1].date()} closes at {close:%Y-%m-%d %H:%M} "
                "New York, after now: give the last day whose session has closed",
                flag="--end",
            )
        return [str(d.date()) for d in sessions.dates]


def _date(text: str, flag: str) -> datetime.date:
    try:
        day = datetime.date.fromisoformat(text.strip())
    except ValueError as exc:
        raise OptionError(f"{excerpt(text)} is not a date YYYY-MM-DD", flag=flag) from exc
    if day.year < FIRST_YEAR:
        raise OptionError(f"must be {FIRST_YEAR}-01-01 or later, got {day}", flag=flag)
    return day


# ---------------------------------------------------------------------------- the download


@dataclass
class DownloadReport:
    """What a download did: days fetched now, days whose part an earlier run had left, days
    without any bar (not saved), parts refetched because they could not be read, and the
    import of the parts."""

    days: list[str]
    fetched: list[str]
    reused: list[str]
    empty: list[str]
    damaged: list[str]
    parts_dir: Path
    imported: ImportReport


def parts_dir(out: str | Path) -> Path:
    """The side folder of ``out`` that holds its finished days (``OUT.parts``).

    >>> parts_dir("data/qqq.parquet").as_posix()
    'data/qqq.parquet.parts'
    """
    out = Path(out)
    return out.with_name(out.name + ".parts")


def part_path(folder: Path, request: DownloadRequest, day: str) -> Path:
    """The part of one day; its name holds every parameter that changes its content."""
    return folder / f"{request.symbol}_{request.feed}_{day}.parquet"


def download(
    request: DownloadRequest,
    out: str | Path,
    settings: AlpacaSettings,
    on_day: Callable[[str, str], None] | None = None,
) -> tuple[Bars, DownloadReport]:
    """Fetch the missing days into parts, then import every part (see the module doc).

    ``on_day(day, what)`` is called after each day, ``what`` being ``fetched``, ``reused`` or
    ``empty`` (for a progress bar). Nothing is written to ``out``: the caller writes the table.
    """
    days = request.check()
    folder = parts_dir(out)
    client = None
    fetched, reused, empty, damaged = [], [], [], []
    for day in days:
        path = part_path(folder, request, day)
        what = "reused" if path.exists() and _part_ok(path) else "fetched"
        if what == "fetched":
            if path.exists():
                damaged.append(day)
                path.unlink()
            client = client or data_client(settings)
            frame = fetch_day(client, request, day, done=len(fetched) + len(reused), of=len(days))
            if len(frame):
                _write_part(frame, path)
            else:
                what = "empty"
        {"reused": reused, "fetched": fetched, "empty": empty}[what].append(day)
        if on_day is not None:
            on_day(day, what)
    paths = [part_path(folder, request, day) for day in days if day not in empty]
    if not paths:
        raise BarsError(
            f"Alpaca has no {request.feed} bar of {request.symbol} on any trading day from "
            f"{days[0]} to {days[-1]} (a ticker it does not know, or dates before it listed?)",
            file=f"alpaca {request.symbol}",
        )
    bars, imported = import_files(
        paths,
        ReadOptions(),
        repair=request.repair,
        max_gap_min=request.max_gap_min,
        interval_s=60,
    )
    bars.meta["download"] = {
        "source": request.source,
        "symbol": request.symbol,
        "feed": request.feed,
        "start": days[0],
        "end": days[-1],
        "adjustment": "raw",
    }
    report = DownloadReport(days, fetched, reused, empty, damaged, folder, imported)
    return bars, report


def fetch_day(client, request: DownloadRequest, day: str, done: int = 0, of: int = 1):
    """One New York calendar day of 1-minute bars as a part frame (rows as delivered).

    A value that is not a number or a time that cannot be read is refused here, naming the day,
    the row (1 = the first bar Alpaca sent) and the field; every other rule runs in the import.
    """
    from alpaca.common.exceptions import APIError
    from alpaca.data.enums import Adjustment, DataFeed
    from alpaca.data.requests import StockBarsRequest
    from alpaca.data.timeframe import TimeFrame
    from requests.exceptions import RequestException

    where = f"alpaca {request.symbol} {day}"
    begin = pd.Timestamp(day, tz=NEW_YORK)
    query = StockBarsRequest(
        symbol_or_symbols=request.symbol,
        timeframe=TimeFrame.Minute,
        start=begin.to_pydatetime(),
        # Alpaca's end is inclusive: the last microsecond of the New York day
        end=(begin + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)).to_pydatetime(),
        feed=DataFeed(request.feed),
        adjustment=Adjustment.RAW,
    )
    resume = (
        f"{done} of {of} day(s) are saved; run the same command again to fetch the rest"
        if done
        else "run the same command again to retry"
    )
    try:
        raw = client.get_stock_bars(query)
    except APIError as exc:
        raise BarsError(_api_message(exc, request, resume), file=where) from exc
    except RequestException as exc:
        raise BarsError(
            f"cannot reach the Alpaca data API ({excerpt(str(exc), 160)}); check the network "
            f"or {ENV_DATA_URL}; {resume}",
            file=where,
        ) from exc
    except ValueError as exc:  # a reply that is not the documented JSON
        raise BarsError(
            f"the Alpaca data API sent a reply that is not bar data ({excerpt(str(exc), 160)})",
            file=where,
        ) from exc
    if not isinstance(raw, dict):
        raise BarsError("the Alpaca data API sent a reply that is not bar data", file=where)
    return _part_frame(raw.get(request.symbol) or [], request.symbol, where)


def _api_message(exc, request: DownloadRequest, resume: str) -> str:
    status = getattr(exc, "status_code", None)
    try:
        text = exc.message
    except (ValueError, KeyError, TypeError):
        text = str(exc)
    text = " ".join(str(text).split())
    text = text if len(text) <= 160 else text[:157] + "..."
    if status in (401, 403):
        hint = f"check {ENV_KEY_ID} and {ENV_SECRET_KEY}"
        if request.feed == "sip" and status == 403:
            hint += " (the sip feed needs a plan that includes it; --feed iex is free)"
        return f"the Alpaca data API refused the request (HTTP {status}: {text}); {hint}"
    if status == 429:
        return (
            f"rate limited (HTTP 429) after {RETRY_ATTEMPTS} retries {RETRY_WAIT_S} s apart; "
            f"{resume}"
        )
    return f"the Alpaca data API answered HTTP {status}: {text}; {resume}"


def _part_frame(bars: list, symbol: str, where: str) -> pd.DataFrame:
    n = len(bars)
    ts = np.zeros(n, dtype=np.int64)
    values = {name: np.zeros(n, dtype=np.float64) for name in VALUE_FIELDS}
    for i, bar in enumerate(bars):
        if not isinstance(bar, dict):
            raise BarsError(
                f"a bar is {excerpt(bar)}, not an object",
                file=where,
                row=i + 1,
                rule="non_numeric",
            )
        ts[i] = _bar_time(bar.get("t"), where, i + 1)
        for key, name in _FIELDS.items():
            value = bar.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                what = "missing" if value is None else f"{excerpt(value)}, not a number"
                raise BarsError(
                    f"{name} ({key!r}) is {what}",
                    file=where,
                    row=i + 1,
                    field=name,
                    rule="non_numeric",
                )
            values[name][i] = float(value)
    return pd.DataFrame({"ts": ts, "symbol": np.full(n, symbol, dtype=object), **values})


def _bar_time(value, where: str, row: int) -> int:
    stamp = None
    if isinstance(value, str):
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, OverflowError):
            stamp = None
    if stamp is None or stamp is pd.NaT or stamp.tzinfo is None:
        raise BarsError(
            f"cannot read the time {excerpt(value)} (Alpaca sends RFC 3339 with an offset)",
            file=where,
            row=row,
            field="ts",
            rule="bad_timestamp",
        )
    return int(stamp.tz_convert("UTC").as_unit("ns").value)


def _write_part(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(frame, schema=PART_SCHEMA, preserve_index=False)
    with atomic_output(path, flag="--out") as tmp:
        pq.write_table(table, tmp)


def _part_ok(path: Path) -> bool:
    """True for a part a finished earlier run wrote (readable, with the part's columns)."""
    try:
        return pq.read_schema(path).names == list(PART_COLUMNS)
    except Exception:  # pyarrow raises several types for a damaged file
        return False


__all__ = [
    "AlpacaSettings",
    "DownloadReport",
    "DownloadRequest",
    "ENV_DATA_URL",
    "ENV_KEY_ID",
    "ENV_SECRET_KEY",
    "ENV_STREAM_URL",
    "ENV_TRADING_URL",
    "FEEDS",
    "INSTALL_HINT",
    "SOURCES",
    "alpaca_settings",
    "data_client",
    "download",
    "fetch_day",
    "part_path",
    "parts_dir",
    "require_alpaca",
    "with_timeout",
]
