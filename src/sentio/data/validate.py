"""The bar rules: every row of every input file is checked; nothing is ever changed silently.

Rules are checked in the order of :data:`RULES`; a row that breaks several is counted once,
under the first. By default the first offending row (in input order) is refused with its file,
row, field and rule; with ``repair="drop"`` every offending row is dropped and counted per rule.

Bars on a trading day but outside its regular session (pre-market, after-hours and the 16:00
post-close minute) are not errors: Sentio keeps the regular session only, so they are dropped and
counted under ``extended_hours`` in every report.

The same rules guard a canonical table when it is read (:func:`check_table`, called by
``read_bars``): a table edited after import is refused with the same row, field and rule.

Two bounds say what is plausible rather than what is consistent (issue 12: a bar dated 2200 and a
price of 1e308 were imported without a word):

- ``ts_out_of_range``: a bar starts before 1995 (the first year of the exchange calendar) or more
  than :data:`FUTURE_MARGIN_NS` after now. "Now" is the wall clock, never ``SOURCE_DATE_EPOCH``:
  that variable stamps reproducible builds with an old date, and real bars recorded after it
  would then be refused.
- ``price_too_large`` / ``volume_too_large``: above :data:`MAX_PRICE` or :data:`MAX_VOLUME`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sentio.core.clock import NEW_YORK, NS_PER_MINUTE, ny_time
from sentio.core.errors import BarsError, excerpt
from sentio.data.importers import RawBars, is_non_finite_word
from sentio.data.schema import MAX_SYMBOL, PRICE_FIELDS, VALUE_FIELDS, valid_symbol
from sentio.data.segments import assign_segments
from sentio.data.trading_calendar import FIRST_YEAR, locate

# A share price above a million dollars or more than ten trillion shares in one bar is a unit or
# parsing error, not a market: the highest US share price (BRK.A) is below 1e6, and a whole day
# of every US exchange trades about 1.5e10 shares.
MAX_PRICE = 1e6
MAX_VOLUME = 1e13
# A bar may start up to one day after the wall clock (clock skew, a feed ahead of its time zone).
FUTURE_MARGIN_NS = 24 * 3600 * 1_000_000_000
FIRST_TS = pd.Timestamp(f"{FIRST_YEAR}-01-01", tz=NEW_YORK).value  # the calendar's first day

RULES: dict[str, str] = {
    "non_numeric": "a price or volume is empty or not a number",
    "non_finite": "a price or volume is NaN or infinite",
    "bad_timestamp": "the time is missing, unparseable or not on a whole minute",
    "ts_out_of_range": f"the bar starts before {FIRST_YEAR} or more than a day after now",
    "missing_symbol": "the symbol is empty or missing",
    "bad_symbol": f"the symbol is over {MAX_SYMBOL} characters or holds a space or control "
    "character",
    "non_positive_price": "open, high, low or close is <= 0",
    "price_too_large": f"open, high, low or close is above {MAX_PRICE:,.0f}",
    "high_below_open_close": "high < max(open, close)",
    "low_above_open_close": "low > min(open, close)",
    "negative_volume": "volume < 0",
    "volume_too_large": f"volume is above {MAX_VOLUME:.0e}",
    "outside_session": "the bar's New York day has no NYSE session (weekend or holiday)",
    "duplicate_ts": "the same symbol and time appeared earlier in the input",
    "unsorted_ts": "the time is earlier than an earlier row's of the same symbol",
}
REPAIR_MODES = ("refuse", "drop")

_RULE_IDS = {name: i for i, name in enumerate(RULES)}


@dataclass
class Checked:
    """The outcome of checking one input: what is kept and why the rest is not."""

    keep: np.ndarray  # (N,) bool: valid, regular-session rows
    rule: np.ndarray  # (N,) int16: index into RULES of the first rule broken, -1 if none
    extended: np.ndarray  # (N,) bool: on a trading day, outside its regular session

    def dropped(self, rows: np.ndarray | slice = slice(None)) -> dict[str, int]:
        """Rows dropped per rule (only non-zero counts), over ``rows``."""
        counts = np.bincount(self.rule[rows][self.rule[rows] >= 0], minlength=len(RULES))
        return {name: int(c) for name, c in zip(RULES, counts, strict=True) if c}


def latest_ts() -> int:
    """The latest bar start accepted now (int64 ns UTC): the wall clock plus a day."""
    return time.time_ns() + FUTURE_MARGIN_NS


REPAIR_HINT = "pass --repair drop to drop them and report the counts"


def bar_rule(ts: int, o: float, h: float, lo: float, c: float, v: float) -> tuple[str, str] | None:
    """The first value rule (of :data:`RULES`, in their order) one arriving bar breaks, as
    (rule, field), or None: the live loop's per-bar form of :func:`check` (tests/data check
    that the two agree on every rule). Session and order rules belong to the caller.

    >>> t = 1754659800 * 10**9  # 2025-08-08 13:30 UTC
    >>> bar_rule(t, 10.0, 9.0, 8.0, 9.5, 100.0)
    ('high_below_open_close', 'high')
    >>> bar_rule(t, 10.0, 11.0, 9.0, 10.5, 100.0) is None
    True
    """
    values = {"open": o, "high": h, "low": lo, "close": c, "volume": v}
    for name, x in values.items():
        if not np.isfinite(x):
            return "non_finite", name
    if ts % NS_PER_MINUTE or not FIRST_TS <= ts <= latest_ts():
        return ("bad_timestamp" if ts % NS_PER_MINUTE else "ts_out_of_range"), "ts"
    for rule, bad in (
        ("non_positive_price", lambda x: x <= 0),
        ("price_too_large", lambda x: x > MAX_PRICE),
    ):
        for name in PRICE_FIELDS:
            if bad(values[name]):
                return rule, name
    if h < max(o, c):
        return "high_below_open_close", "high"
    if lo > min(o, c):
        return "low_above_open_close", "low"
    if v < 0:
        return "negative_volume", "volume"
    if v > MAX_VOLUME:
        return "volume_too_large", "volume"
    return None


def check(raw: RawBars, repair: str = "refuse", hint: str = REPAIR_HINT) -> Checked:
    """Apply every rule to ``raw``; refuse on the first violation unless ``repair == "drop"``.

    ``hint`` ends the refusal: what the user can do about it.
    """
    if repair not in REPAIR_MODES:
        raise ValueError(f"repair must be one of {REPAIR_MODES}, got {repair!r}")
    n = len(raw)
    rule = np.full(n, -1, dtype=np.int16)
    field = np.full(n, -1, dtype=np.int16)  # index into ``fields``
    fields = (*VALUE_FIELDS, raw.ts_field, "symbol")

    def mark(name: str, mask: np.ndarray, field_index) -> None:
        sel = mask & (rule < 0)
        rule[sel] = _RULE_IDS[name]
        field[sel] = field_index[sel] if isinstance(field_index, np.ndarray) else field_index

    v = raw.values
    for name in ("non_numeric", "non_finite"):
        for k, f in enumerate(VALUE_FIELDS):
            bad = np.zeros(n, dtype=bool)
            for i, text in raw.bad_text.get(f, {}).items():
                bad[i] = is_non_finite_word(text) == (name == "non_finite")
            mark(name, bad, k)
    off_grid = (raw.ts % NS_PER_MINUTE) != 0
    mark("bad_timestamp", raw.ts_bad | off_grid, len(VALUE_FIELDS))
    far = ~raw.ts_bad & ((raw.ts < FIRST_TS) | (raw.ts > latest_ts()))
    mark("ts_out_of_range", far, len(VALUE_FIELDS))
    no_symbol = pd.isna(raw.symbol) | (raw.symbol == "")
    mark("missing_symbol", no_symbol, len(fields) - 1)
    mark("bad_symbol", bad_symbols(raw.symbol), len(fields) - 1)
    for k, f in enumerate(PRICE_FIELDS):
        mark("non_positive_price", v[f] <= 0, k)
    for k, f in enumerate(PRICE_FIELDS):
        mark("price_too_large", v[f] > MAX_PRICE, k)
    with np.errstate(invalid="ignore"):
        mark("high_below_open_close", v["high"] < np.maximum(v["open"], v["close"]), 1)
        mark("low_above_open_close", v["low"] > np.minimum(v["open"], v["close"]), 2)
    mark("negative_volume", v["volume"] < 0, 4)
    mark("volume_too_large", v["volume"] > MAX_VOLUME, 4)

    valid_ts = ~(raw.ts_bad | off_grid | far)
    # Rows without a usable time borrow a valid one for the calendar look-up; they are
    # already marked, so what the look-up says about them is never used.
    stand_in = raw.ts[valid_ts][0] if valid_ts.any() else FIRST_TS
    on_day, _, open_ns, close_ns = locate(np.where(valid_ts, raw.ts, stand_in))
    mark("outside_session", valid_ts & ~on_day, len(VALUE_FIELDS))
    extended = (rule < 0) & on_day & ((raw.ts < open_ns) | (raw.ts >= close_ns))

    # Order rules among the rows still standing, per symbol, in input order.
    alive = np.flatnonzero((rule < 0) & ~extended)
    if len(alive):
        frame = pd.DataFrame({"symbol": raw.symbol[alive], "ts": raw.ts[alive]})
        dup = frame.duplicated(["symbol", "ts"]).to_numpy()
        mark("duplicate_ts", _scatter(n, alive, dup), len(VALUE_FIELDS))
        fresh = alive[~dup]
        frame = frame[~dup]
        # The latest time among the same symbol's EARLIER rows; a row before it is out of order.
        prev_max = (
            frame.groupby("symbol", sort=False)["ts"]
            .transform(lambda s: s.cummax().shift(1, fill_value=np.iinfo(np.int64).min))
            .to_numpy()
        )
        unsorted = frame["ts"].to_numpy() < prev_max
        mark("unsorted_ts", _scatter(n, fresh, unsorted), len(VALUE_FIELDS))

    bad_rows = np.flatnonzero(rule >= 0)
    checked = Checked(keep=(rule < 0) & ~extended, rule=rule, extended=extended)
    if len(bad_rows) and repair == "refuse":
        i = int(bad_rows[0])
        name = list(RULES)[rule[i]]
        summary = ", ".join(f"{k} {c}" for k, c in checked.dropped().items())
        raise BarsError(
            f"{_describe(raw, i, name, fields[field[i]])} [{RULES[name]}]; "
            f"{len(bad_rows)} row(s) in all break rules ({summary}); {hint}",
            file=raw.file_of(i),
            row=int(raw.rows[i]),
            field=fields[field[i]],
            rule=name,
        )
    return checked


def check_table(frame: pd.DataFrame, file: str) -> None:
    """Refuse a canonical table that breaks any bar rule, as the import would have.

    Rows are numbered from 1 in file order (the table is stored sorted by symbol and time).
    A canonical table holds regular-session bars only, so an extended-hours bar is refused
    too (rule ``extended_hours``). Vectorised: about as fast as reading the file.
    """
    n = len(frame)
    values = {f: frame[f].to_numpy(np.float64) for f in VALUE_FIELDS}
    # NaN and infinity keep their spelling so that they count as non_finite, not non_numeric.
    bad_text = {
        f: {int(i): str(values[f][i]) for i in np.flatnonzero(~np.isfinite(values[f]))}
        for f in VALUE_FIELDS
    }
    raw = RawBars(
        file=file,
        fmt="canonical",
        ts_field="ts",
        rows=np.arange(1, n + 1, dtype=np.int64),
        ts=frame["ts"].to_numpy(np.int64),
        ts_bad=np.zeros(n, dtype=bool),
        symbol=frame["symbol"].to_numpy(object),
        values=values,
        bad_text={f: cells for f, cells in bad_text.items() if cells},
    )
    fix = "re-import the vendor file with `sentio data import` (--repair drop drops such rows)"
    checked = check(raw, "refuse", hint=fix)
    if checked.extended.any():
        i = int(np.flatnonzero(checked.extended)[0])
        when = ny_time(raw.ts[i : i + 1])[0]
        raise BarsError(
            f"{when:%Y-%m-%d %H:%M} New York is outside the regular session; a canonical table "
            f"holds regular-session bars only ({int(checked.extended.sum())} such row(s)); {fix}",
            file=file,
            row=i + 1,
            field="ts",
            rule="extended_hours",
        )


INTERVAL_HINT = "give the bars' interval with --interval (for example --interval 1min)"


def check_interval(
    frame: pd.DataFrame,
    interval_s: int,
    file: str,
    rows: np.ndarray | None = None,
    hint: str = INTERVAL_HINT,
    need_one_step: bool = True,
) -> None:
    """Refuse bars that contradict the declared interval (``frame`` sorted by symbol, ts).

    Two signs, neither of which a few dropped rows can fake: bars closer together than the
    interval, or ten or more steps of which not one is a single interval (``need_one_step``).
    ``rows`` (the file's row number of each frame row) lets the first case name its row;
    ``hint`` ends the message.
    """
    ts = frame["ts"].to_numpy()
    same = frame["symbol"].to_numpy()[1:] == frame["symbol"].to_numpy()[:-1]
    steps = np.where(same, np.diff(ts), np.iinfo(np.int64).max)
    step_ns = interval_s * 1_000_000_000
    close = np.flatnonzero(steps < step_ns)
    if len(close):
        i = int(close[0])
        raise BarsError(
            f"bars {steps[i] / 1e9:g} s apart are closer than the {interval_s // 60}min "
            f"interval; {hint}",
            file=file,
            row=None if rows is None else int(rows[i + 1]),
            field=None if rows is None else "ts",
            rule="interval",
        )
    steps = steps[same]
    if need_one_step and len(steps) >= 10 and not (steps == step_ns).any():
        values, counts = np.unique(steps, return_counts=True)
        common = int(values[np.argmax(counts)]) // 1_000_000_000
        flag = f"--interval {common // 60}min" if common % 60 == 0 else "--interval"
        raise BarsError(
            f"no two consecutive bars are {interval_s // 60}min apart (the most common step "
            f"is {common} s): these are not {interval_s // 60}-minute bars; give {flag}",
            file=file,
            rule="interval",
        )


def check_layout(frame: pd.DataFrame, interval_s: int, max_gap_min: int, file: str) -> None:
    """Refuse a canonical table whose bars contradict its declared interval or whose
    ``segment`` column is not the one the import computes from the times and the calendar.

    A table edited after import (randomised or negative segments, 1-minute bars relabelled
    5-minute) was otherwise trained and backtested on (issue 12, round 2). Call after
    :func:`check_table`: the bars are then in session, sorted and unique per symbol.
    """
    order = frame.sort_values(["symbol", "ts"], kind="stable").index.to_numpy()
    ordered = frame.loc[order]
    reimport = "re-import the vendor file with `sentio data import` (and --interval if needed)"
    # Only the certain sign: a table may be sparse (an alignment keeps the common bars), and a
    # wrongly numbered sparse table is caught by the segment check below, naming its row.
    hint = f"metadata interval_s {interval_s} does not describe these bars; {reimport}"
    check_interval(ordered, interval_s, file, rows=order + 1, hint=hint, need_one_step=False)
    symbols = ordered["symbol"].to_numpy()
    starts = np.flatnonzero(np.r_[True, symbols[1:] != symbols[:-1], True])
    for a, b in zip(starts[:-1], starts[1:], strict=False):
        stored = ordered["segment"].to_numpy()[a:b]
        expected = assign_segments(ordered["ts"].to_numpy()[a:b], interval_s, max_gap_min).segment
        wrong = np.flatnonzero(stored != expected)
        if len(wrong):
            i = int(wrong[0])
            raise BarsError(
                f"segment {stored[i]}, but the times and the calendar give segment "
                f"{expected[i]} (segments count from 0 per symbol; a new one starts only after "
                f"a missing trading day or a gap over {max_gap_min} minutes); {reimport}",
                file=file,
                row=int(order[a + i]) + 1,
                field="segment",
                rule="segments",
            )


def bad_symbols(symbols: np.ndarray) -> np.ndarray:
    """(N,) bool: symbols too long or holding whitespace or control characters.

    >>> bad_symbols(np.array(["QQQ", "BRK.B", "QQQ\\nerror: x", "Q" * 33], dtype=object)).tolist()
    [False, False, True, True]
    """
    # Checked once per distinct symbol: a table holds millions of rows but a handful of symbols.
    unique = pd.unique(np.asarray(symbols, dtype=object))
    bad = [s for s in unique if isinstance(s, str) and s and not valid_symbol(s)]
    return np.isin(symbols, np.array(bad, dtype=object)) if bad else np.zeros(len(symbols), bool)


def _scatter(n: int, where: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[where] = values
    return out


def _describe(raw: RawBars, i: int, name: str, field: str) -> str:
    v = {f: raw.values[f][i] for f in VALUE_FIELDS}
    if name in ("non_numeric", "non_finite"):
        text = raw.bad_text.get(field, {}).get(i, "")
        return f"{field} is {excerpt(text)}" if text else f"{field} is empty"
    if name == "bad_timestamp":
        if raw.ts_bad[i]:
            return f"cannot read the time {excerpt(raw.ts_text.get(i, ''))}"
        return f"time {ny_time(raw.ts[i : i + 1])[0]} is not on a whole minute"
    if name == "ts_out_of_range":
        latest = ny_time(np.array([latest_ts()]))[0]
        when = raw.ts_text.get(i) or f"{ny_time(raw.ts[i : i + 1])[0]:%Y-%m-%d %H:%M} New York"
        return (
            f"time {excerpt(when)} is outside {FIRST_YEAR}-01-01 .. "
            f"{latest:%Y-%m-%d %H:%M} New York (now plus a day)"
        )
    if name == "missing_symbol":
        return "the symbol is empty"
    if name == "bad_symbol":
        return f"the symbol {excerpt(raw.symbol[i])} is not a ticker"
    if name in ("non_positive_price", "price_too_large", "volume_too_large"):
        return f"{field} is {v[field]:g}"
    if name == "high_below_open_close":
        return f"high {v['high']:g} < max(open {v['open']:g}, close {v['close']:g})"
    if name == "low_above_open_close":
        return f"low {v['low']:g} > min(open {v['open']:g}, close {v['close']:g})"
    if name == "negative_volume":
        return f"volume is {v['volume']:g}"
    when = ny_time(raw.ts[i : i + 1])[0]
    if name == "outside_session":
        return f"{when:%Y-%m-%d %H:%M} New York is on {when:%A %Y-%m-%d}, when NYSE is closed"
    if name == "duplicate_ts":
        return f"{raw.symbol[i]} {when:%Y-%m-%d %H:%M} New York appeared earlier"
    return f"{raw.symbol[i]} {when:%Y-%m-%d %H:%M} New York comes after a later time"
