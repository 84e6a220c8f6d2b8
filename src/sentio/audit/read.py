"""Reading a recorded run back: the views behind ``saudit signal-flow | trades | positions |
summary | export``. Every view is built from the events alone (never from the runs table's
copy of the config, which is not chained)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd

from sentio.audit.store import AuditError, AuditStore, row_problem
from sentio.core.clock import NEW_YORK
from sentio.core.clock import ny_minute as new_york
from sentio.core.errors import excerpt


@dataclass(frozen=True)
class Event:
    seq: int
    ts: int
    kind: str
    payload: dict
    prev_hash: str
    hash: str
    raw: str  # the payload exactly as hashed (canonical JSON)


def load(store: AuditStore, run_id: str) -> list[Event]:
    """Every event of a run; a row whose columns an edit retyped (``row_problem``: text in
    ``ts``, an unknown kind, ...) or whose payload is not a JSON object is an AuditError naming
    the file, the run and the seq."""
    events = []
    for row in store.events(run_id):
        seq, ts, kind, payload, prev, digest = row
        problem = row_problem(row)
        if problem:
            raise AuditError(
                f"{store.path}: run {excerpt(run_id)}, seq {excerpt(seq)}: {problem}; the row "
                "was edited (saudit verify names the first bad seq)"
            )
        events.append(
            Event(seq, ts, kind, store.parse(run_id, seq, payload), prev, digest, payload)
        )
    return events


@contextmanager
def fields(run_id: str, seq: object, kind: str = "event") -> Iterator[None]:
    """A payload field that is missing or of the wrong type (a rehashed edit) becomes an
    AuditError naming run and seq, never a traceback.

    >>> with fields("r", 4, "bar"):  # doctest: +IGNORE_EXCEPTION_DETAIL
    ...     {}["equity"]
    Traceback (most recent call last):
    AuditError: run 'r', seq 4: the bar payload lacks or mistypes a field (KeyError('equity'))...
    """
    at = seq if isinstance(seq, str) else f"seq {excerpt(seq)}"  # or words: "its run_end"
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise AuditError(
            f"run {excerpt(run_id)}, {at}: the {kind} payload lacks or mistypes a "
            f"field ({excerpt(exc, 80)}); the row was edited (saudit verify names the first bad "
            "seq)"
        ) from None


def parse_since(text: str) -> int:
    """A time as nanoseconds since the epoch; a time without a zone is New York time.

    >>> new_york(parse_since("2024-03-27 08:00"))
    '2024-03-27 08:00'
    """
    example = "(e.g. '2024-03-27 15:00', New York time)"
    try:
        stamp = pd.Timestamp(text)
        if stamp is pd.NaT:
            raise ValueError("not a time")
        if stamp.tzinfo is None:
            # a wall time that does not exist or exists twice (daylight saving) is refused
            stamp = stamp.tz_localize(NEW_YORK, ambiguous="raise", nonexistent="raise")
        return int(stamp.tz_convert("UTC").as_unit("ns").value)
    except (ValueError, TypeError, OverflowError) as exc:
        reason = " ".join(str(exc).split())[:120]
        raise AuditError(
            f"--since: cannot read {excerpt(text)} as a time {example}: {reason}"
        ) from None


def describe_trade(e: dict, price: bool = False) -> str:
    """``BUY 120 TQQQ`` (``@ 51.2300`` appended for a fill)."""
    text = f"{e['side'].upper()} {e['qty']} {e['symbol']}"
    return text + (f" @ {e['price']:.4f}" if price else "")


def holding(positions: dict) -> str:
    """Non-zero holdings, ``flat`` when none.

    >>> holding({"QQQ": 0, "TQQQ": 120, "PSQ": 0, "SQQQ": 0}), holding({"QQQ": 0})
    ('TQQQ 120', 'flat')
    """
    held = [f"{s} {n}" for s, n in positions.items() if n]
    return ", ".join(held) or "flat"


def flow(events: list[Event], run_id: str = "") -> list[dict]:
    """One row per recorded bar, in time order: both probabilities, their difference, the
    signal, its reason, the orders decided and the fills done at that bar, holdings, equity."""
    rows: dict[int, dict] = {}
    for event in events:
        if event.kind not in ("bar", "order", "fill"):
            continue
        row = rows.setdefault(event.ts, {"ts": event.ts, "orders": [], "fills": []})
        with fields(run_id, event.seq, event.kind):
            if event.kind == "bar":
                row.update(event.payload, seq=event.seq)
            elif event.kind == "order":
                row["orders"].append(describe_trade(event.payload))
            else:
                row["fills"].append(describe_trade(event.payload, price=True))
    return [rows[t] for t in sorted(rows) if "seq" in rows[t]]


def select(rows: list, count: int, oldest: bool) -> list:
    """The newest ``count`` rows (the oldest with ``oldest``), kept in time order."""
    if count <= 0:
        return list(rows)
    return rows[:count] if oldest else rows[-count:]


def fills(events: list[Event]) -> list[dict]:
    return [{"seq": e.seq, "ts": e.ts, **e.payload} for e in events if e.kind == "fill"]


def position_changes(events: list[Event], run_id: str = "") -> list[dict]:
    """Bars whose holdings differ from the bar before (each block starts flat)."""
    out, before, block = [], None, None
    for e in events:
        if e.kind != "bar":
            continue
        with fields(run_id, e.seq, e.kind):
            if e.payload["block"] != block:
                block, before = e.payload["block"], dict.fromkeys(e.payload["positions"], 0)
            if e.payload["positions"] != before:
                out.append(
                    {
                        "seq": e.seq,
                        "ts": e.ts,
                        "block": block,
                        **e.payload["positions"],
                        "equity": e.payload["equity"],
                    }
                )
                before = e.payload["positions"]
    return out


def summary(run: dict, events: list[Event]) -> dict:
    """The run's identity (from its run_start event), its end figures and its blocks."""
    start = next((e.payload for e in events if e.kind == "run_start"), {})
    last = next((e for e in events if e.kind == "run_end"), None)
    end = last.payload if last else None
    with fields(run["run_id"], last.seq if last else "", "run_end"):
        figures = (end["summary"], end["parity"]) if end else (None, None)
    return {
        "run_id": run["run_id"],
        "status": run["status"],
        "started_at": run["started_at"],
        "events": len(events),
        "head": run["head"],
        "model": start.get("model"),
        "data": start.get("data"),
        "config": start.get("config"),
        "in_sample": start.get("in_sample"),
        "versions": start.get("versions"),
        "blocks": [e.payload for e in events if e.kind == "block_end"],
        "summary": figures[0],
        "parity": figures[1],
    }


def export_rows(run_id: str, events: list[Event]) -> list[dict]:
    """Every event with its chain fields and time in UTC; ``payload`` as an object and
    ``payload_canonical`` as the exact string hashed, so that anyone can recompute
    ``hash = sha256(prev_hash + kind + "|" + ts + "|" + payload_canonical)``."""
    return [
        {
            "run_id": run_id,
            "seq": e.seq,
            "ts": e.ts,
            "time_utc": pd.Timestamp(e.ts, tz="UTC").isoformat(),
            "kind": e.kind,
            "payload": e.payload,
            "payload_canonical": e.raw,
            "prev_hash": e.prev_hash,
            "hash": e.hash,
        }
        for e in events
    ]


__all__ = [
    "Event",
    "export_rows",
    "fields",
    "fills",
    "flow",
    "load",
    "new_york",
    "parse_since",
    "position_changes",
    "select",
    "summary",
]
