"""Feeds for ``sentio live --feed``: where arriving bars come from.

- ``replay:FILE[@SPEED]`` (:class:`ReplayFeed`): canonical Parquet file(s) replayed in time
  order, every traded symbol at each minute (a sibling the files lack is simulated from QQQ
  as strattest does, and labelled); ``SPEED`` x real time on the exchange clock (``@60``: an
  hour a minute), ``@max`` (the default) as fast as the loop goes. The bars before the first
  replayed one are its history.
- ``csv-tail:FILE`` (:class:`CsvTailFeed`): a CSV another program appends bars to, in any
  format ``sentio data import`` reads; complete lines only (a half-written last line waits).
- ``jsonl:-`` (:class:`JsonlFeed`): JSON lines on standard input,
  ``{"ts": "2025-08-08T13:30:00Z" | <int ns>, "open": .., "high": .., "low": .., "close": ..,
  "volume": .., "symbol": "QQQ"}`` (symbol optional, QQQ by default).
- ``alpaca``: real-time bars through alpaca-py (``sentio.live.alpaca``, extra ``sentio[alpaca]``).

A feed yields bars exactly as they arrive, a :class:`~sentio.live.types.FeedFault` for a
message it cannot read, and ``None`` when nothing arrived for ``poll_s`` seconds. It never
reorders, repairs or drops: the loop's policies (docs/live.md) do that, counted and audited.
"""

from __future__ import annotations

import json
import math
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sentio.core.errors import OptionError, SentioError, excerpt
from sentio.data.importers import ReadOptions, read_file
from sentio.live.types import SYMBOLS, FeedBar, FeedFault

FEEDS = ("replay:FILE[@SPEED]", "csv-tail:FILE", "jsonl:-", "alpaca")


@dataclass(frozen=True)
class FeedSpec:
    """A parsed ``--feed`` value.

    >>> FeedSpec.parse("replay:bars.parquet@max")
    FeedSpec(kind='replay', target='bars.parquet', speed=inf)
    >>> FeedSpec.parse("replay:a.parquet@60").speed
    60.0
    >>> FeedSpec.parse("jsonl:-").kind
    'jsonl'
    """

    kind: str
    target: str = ""
    speed: float = math.inf

    @classmethod
    def parse(cls, text: str) -> FeedSpec:
        kind, _, rest = text.partition(":")
        if kind == "alpaca" and not rest:
            return cls("alpaca")
        if kind == "jsonl":
            if rest != "-":
                raise OptionError(
                    f"jsonl reads standard input only: give jsonl:-, not {excerpt(text)}",
                    flag="--feed",
                )
            return cls("jsonl", "-")
        if kind == "csv-tail" and rest:
            return cls("csv-tail", rest)
        if kind == "replay" and rest:
            target, at, speed = rest.rpartition("@") if "@" in rest else (rest, "", "max")
            if not target:
                raise OptionError(
                    f"replay needs a file: replay:FILE[@SPEED], got {excerpt(text)}", flag="--feed"
                )
            if speed == "max":
                return cls("replay", target, math.inf)
            try:
                value = float(speed)
            except ValueError:
                value = float("nan")
            if not (math.isfinite(value) and value > 0):
                raise OptionError(
                    f"replay speed must be a number > 0 or max, got {excerpt(speed)} "
                    "(replay:FILE@60 plays an hour a minute)",
                    flag="--feed",
                )
            return cls("replay", target, value)
        raise OptionError(
            f"unknown feed {excerpt(text)}; give one of {', '.join(FEEDS)}", flag="--feed"
        )


class ReplayFeed:
    """The rows ``[start, stop)`` of an aligned market (``tables``: symbol -> frame with ts,
    open, high, low, close, volume on QQQ's times), every symbol at each minute, QQQ first."""

    name = "replay"

    def __init__(
        self,
        tables: dict[str, pd.DataFrame],
        start: int,
        stop: int,
        *,
        speed: float = math.inf,
        label: str = "replay",
        poll_s: float = 1.0,
    ) -> None:
        self.tables, self.start, self.stop, self.speed = tables, start, stop, speed
        self.poll_s = poll_s
        self.label = label
        self.skip_until: int | None = None
        self._closed = False
        self._columns = {
            s: {c: frame[c].to_numpy() for c in ("ts", "open", "high", "low", "close", "volume")}
            for s, frame in tables.items()
        }

    def history(self) -> pd.DataFrame:
        """QQQ's bars before the first replayed one (the stream context warms up on them)."""
        return self.tables["QQQ"].iloc[: self.start]

    def resume_after(self, ts: int) -> None:
        self.skip_until = ts

    def __iter__(self) -> Iterator[FeedBar | FeedFault | None]:
        qqq = self._columns["QQQ"]["ts"]
        previous = None
        for row in range(self.start, self.stop):
            if self._closed:
                return
            ts = int(qqq[row])
            if self.skip_until is not None and ts <= self.skip_until:
                continue
            if math.isfinite(self.speed) and previous is not None:
                due = time.monotonic() + (ts - previous) / 1e9 / self.speed
                while (wait := due - time.monotonic()) > 0:  # idle ticks: the loop can stop
                    time.sleep(min(wait, self.poll_s))
                    if wait > self.poll_s:
                        yield None
            previous = ts
            for symbol in (s for s in SYMBOLS if s in self._columns):
                c = self._columns[symbol]
                yield FeedBar(
                    symbol,
                    ts,
                    float(c["open"][row]),
                    float(c["high"][row]),
                    float(c["low"][row]),
                    float(c["close"][row]),
                    float(c["volume"][row]),
                    f"{self.label}:row {row}",
                )

    def close(self) -> None:
        self._closed = True


class _Lines:
    """Lines from a blocking source on a thread, so iteration can time out (``None``)."""

    def __init__(self, stream, poll_s: float) -> None:
        self.queue: queue.Queue = queue.Queue(maxsize=10_000)
        self.poll_s = poll_s
        self.done = threading.Event()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        try:
            for line in stream:
                self.queue.put(line)
        finally:
            self.queue.put(None)

    def __iter__(self) -> Iterator[str | None]:
        while True:
            try:
                line = self.queue.get(timeout=self.poll_s)
            except queue.Empty:
                yield None  # idle
                continue
            if line is None:
                return
            yield line


class JsonlFeed:
    """One JSON object per line on standard input (or any text stream)."""

    name = "jsonl"

    def __init__(self, stream=None, poll_s: float = 1.0) -> None:
        self.stream = stream if stream is not None else sys.stdin
        self.poll_s = poll_s
        self.skip_until: int | None = None
        self._closed = False

    def history(self) -> pd.DataFrame | None:
        return None

    def resume_after(self, ts: int) -> None:
        self.skip_until = ts

    def __iter__(self) -> Iterator[FeedBar | FeedFault | None]:
        n = 0  # lines read (idle ticks are not lines)
        for line in _Lines(self.stream, self.poll_s):
            if self._closed:
                return
            if line is None:
                yield None
                continue
            n += 1
            if not line.strip():
                continue
            item = parse_json_bar(line, f"stdin:line {n}")
            if (
                isinstance(item, FeedBar)
                and self.skip_until is not None
                and (item.ts <= self.skip_until)
            ):
                continue
            yield item

    def close(self) -> None:
        self._closed = True


FIELDS = ("open", "high", "low", "close", "volume")


def parse_json_bar(line: str, source: str) -> FeedBar | FeedFault:
    """One JSON line as a bar, or a fault naming the field and the rule.

    >>> parse_json_bar('{"ts": "2025-08-08T13:30:00Z", "open": 1, "high": 2, "low": 0.5, '
    ...                '"close": 1.5, "volume": 10}', "stdin:line 1").ts
    1754659800000000000
    >>> parse_json_bar('{"ts": 1, "open": "x"}', "stdin:line 2").detail
    'open is missing or not a number'
    """
    try:
        doc = json.loads(line)
    except ValueError as exc:
        return FeedFault("malformed", f"not JSON ({exc.msg})", source)
    if not isinstance(doc, dict):
        return FeedFault("malformed", "not a JSON object", source)
    ts = _json_ts(doc.get("ts"))
    if ts is None:
        return FeedFault(
            "malformed",
            f"ts {excerpt(doc.get('ts'))} is not an ISO time with a "
            "zone or an integer of nanoseconds",
            source,
        )
    values = []
    for name in FIELDS:
        x = doc.get(name)
        if isinstance(x, bool) or not isinstance(x, int | float):
            return FeedFault("malformed", f"{name} is missing or not a number", source)
        values.append(float(x))
    symbol = doc.get("symbol", "QQQ")
    if not isinstance(symbol, str) or not symbol:
        return FeedFault("malformed", f"symbol {excerpt(symbol)} is not a name", source)
    return FeedBar(symbol, ts, *values, source)


def _json_ts(value) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value if -(2**63) < value < 2**63 else None  # int64 nanoseconds
    if isinstance(value, str):
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, TypeError):
            return None
        if stamp.tzinfo is None:
            return None
        return int(stamp.tz_convert("UTC").as_unit("ns").value)
    return None


class CsvTailFeed:
    """Bars appended to a CSV file by another program, read as ``sentio data import`` reads
    the file (its format is detected from the header). Only complete lines count; the file
    is polled every ``poll_s`` seconds. A file that shrinks (rewritten) is a fault and is
    read again from its start (bars already taken then arrive as duplicates)."""

    name = "csv-tail"

    def __init__(
        self, path: str | Path, poll_s: float = 1.0, options: ReadOptions = ReadOptions()
    ) -> None:
        self.path = Path(path)
        self.poll_s, self.options = poll_s, options
        self.skip_until: int | None = None
        self._closed = False
        if not self.path.is_file():
            raise OptionError(f"{self.path} is not a readable file", flag="--feed")

    def history(self) -> pd.DataFrame | None:
        return None

    def resume_after(self, ts: int) -> None:
        self.skip_until = ts

    def __iter__(self) -> Iterator[FeedBar | FeedFault | None]:
        header: bytes | None = None
        offset = 0
        row = 2  # the file row of the next new line (the header is row 1)
        with tempfile.TemporaryDirectory(prefix="sentio-tail-") as folder:
            copy = Path(folder) / self.path.name
            while not self._closed:
                try:
                    data = self._read_from(offset)
                except OSError as exc:
                    yield FeedFault(
                        "malformed", f"cannot read {self.path}: {exc.strerror}", str(self.path)
                    )
                    time.sleep(self.poll_s)
                    continue
                if data is None:  # shorter than what was read: rewritten
                    yield FeedFault(
                        "malformed",
                        f"{self.path} shrank; reading it again from its start",
                        str(self.path),
                    )
                    header, offset, row = None, 0, 2
                    continue
                end = data.rfind(b"\n") + 1  # complete lines only
                if header is None and end:
                    first = data.find(b"\n") + 1
                    header, data, end, offset = data[:first], data[first:], end - first, first
                if header is None or end <= 0:
                    yield None
                    time.sleep(self.poll_s)
                    continue
                chunk = data[:end]
                offset += end
                copy.write_bytes(header + chunk)
                yield from self._rows(copy, row)
                row += chunk.count(b"\n")

    def _read_from(self, offset: int) -> bytes | None:
        """The file's bytes from ``offset`` on (only what was appended is read), or None when
        the file is now shorter than ``offset`` (a rewrite of the same or a greater length is
        not seen: the file is meant to be appended to)."""
        with open(self.path, "rb") as source:
            source.seek(0, 2)
            if source.tell() < offset:
                return None
            source.seek(offset)
            return source.read()

    def _rows(self, copy: Path, first_row: int) -> Iterator[FeedBar | FeedFault]:
        """The bars of the new lines (written to ``copy`` after the header), ``first_row``
        being the file row of the first. Read together as the importer reads a file; when
        that fails, line by line, so one bad row is one fault naming its row and the good
        rows around it still arrive."""
        try:
            yield from self._bars(read_file(copy, self.options), first_row)
            return
        except SentioError:
            pass
        header, *lines = copy.read_bytes().splitlines(keepends=True)
        for k, line in enumerate(lines):
            row = first_row + k
            copy.write_bytes(header + line)
            try:
                raw = read_file(copy, self.options)
            except SentioError as exc:
                detail = str(exc).replace(f"{copy}: ", "").replace(str(copy), str(self.path))
                yield FeedFault("malformed", detail, f"{self.path}:row {row}")
                continue
            yield from self._bars(raw, row)

    def _bars(self, raw, first_row: int) -> Iterator[FeedBar | FeedFault]:
        for i in range(len(raw)):
            source = f"{self.path}:row {first_row + int(raw.rows[i]) - 2}"
            bad = [f for f in FIELDS if not np.isfinite(raw.values[f][i])]
            if raw.ts_bad[i] or bad:
                what = "the time" if raw.ts_bad[i] else f"{bad[0]}"
                yield FeedFault("malformed", f"{what} is missing or not a number", source)
                continue
            ts = int(raw.ts[i])
            if self.skip_until is not None and ts <= self.skip_until:
                continue
            v = raw.values
            symbol = str(raw.symbol[i]) if raw.symbol[i] else "QQQ"
            yield FeedBar(
                symbol,
                ts,
                float(v["open"][i]),
                float(v["high"][i]),
                float(v["low"][i]),
                float(v["close"][i]),
                float(v["volume"][i]),
                source,
            )

    def close(self) -> None:
        self._closed = True


__all__ = [
    "FEEDS",
    "FIELDS",
    "CsvTailFeed",
    "FeedSpec",
    "JsonlFeed",
    "ReplayFeed",
    "parse_json_bar",
]
