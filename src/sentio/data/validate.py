"""The bar rules: every row of every input file is checked; nothing is ever changed silently.

Rules are checked in the order of :data:`RULES`; a row that breaks several is counted once,
under the first. By default the first offending row (in input order) is refused with its file,
row, field and rule; with ``repair="drop"`` every offending row is dropped and counted per rule.

Bars on a trading day but outside its regular session (pre-market, after-hours and the 16:00
post-close minute) are not errors: Sentio keeps the regular session only, so they are dropped and
counted under ``extended_hours`` in every report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sentio.core.clock import NS_PER_MINUTE, ny_time
from sentio.core.errors import BarsError
from sentio.data.importers import RawBars, is_non_finite_word
from sentio.data.schema import PRICE_FIELDS, VALUE_FIELDS
from sentio.data.trading_calendar import locate

RULES: dict[str, str] = {
    "non_numeric": "a price or volume is empty or not a number",
    "non_finite": "a price or volume is NaN or infinite",
    "bad_timestamp": "the time is missing, unparseable or not on a whole minute",
    "non_positive_price": "open, high, low or close is <= 0",
    "high_below_open_close": "high < max(open, close)",
    "low_above_open_close": "low > min(open, close)",
    "negative_volume": "volume < 0",
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


def check(raw: RawBars, repair: str = "refuse") -> Checked:
    """Apply every rule to ``raw``; refuse on the first violation unless ``repair == "drop"``."""
    if repair not in REPAIR_MODES:
        raise ValueError(f"repair must be one of {REPAIR_MODES}, got {repair!r}")
    n = len(raw)
    rule = np.full(n, -1, dtype=np.int16)
    field = np.full(n, -1, dtype=np.int16)  # index into ``fields``
    fields = (*VALUE_FIELDS, raw.ts_field)

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
    for k, f in enumerate(PRICE_FIELDS):
        mark("non_positive_price", v[f] <= 0, k)
    with np.errstate(invalid="ignore"):
        mark("high_below_open_close", v["high"] < np.maximum(v["open"], v["close"]), 1)
        mark("low_above_open_close", v["low"] > np.minimum(v["open"], v["close"]), 2)
    mark("negative_volume", v["volume"] < 0, 4)

    valid_ts = ~(raw.ts_bad | off_grid)
    # Rows without a usable time borrow a valid one for the calendar look-up; they are
    # already marked, so what the look-up says about them is never used.
    stand_in = raw.ts[valid_ts][0] if valid_ts.any() else 0
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
            f"{len(bad_rows)} row(s) in all break rules ({summary}); "
            "pass --repair drop to drop them and report the counts",
            file=raw.file_of(i),
            row=int(raw.rows[i]),
            field=fields[field[i]],
            rule=name,
        )
    return checked


def _scatter(n: int, where: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[where] = values
    return out


def _describe(raw: RawBars, i: int, name: str, field: str) -> str:
    v = {f: raw.values[f][i] for f in VALUE_FIELDS}
    if name in ("non_numeric", "non_finite"):
        text = raw.bad_text.get(field, {}).get(i, "")
        return f"{field} is {text!r}" if text else f"{field} is empty"
    if name == "bad_timestamp":
        if raw.ts_bad[i]:
            return f"cannot read the time {raw.ts_text.get(i, '')!r}"
        return f"time {ny_time(raw.ts[i : i + 1])[0]} is not on a whole minute"
    if name == "non_positive_price":
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
