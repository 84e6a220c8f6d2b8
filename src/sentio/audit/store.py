"""The append-only, hash-chained audit store (SQLite, WAL).

Each run is one chain: event ``seq`` carries ``hash = sha256(prev_hash + kind + payload)``
(hex strings and the canonical JSON payload, UTF-8), and the first event's ``prev_hash`` is
the run's genesis, ``sha256("sentio-audit-genesis:" + run_id)``. Events are inserted in
batched transactions; a run that never reached its end stays marked ``running`` in the runs
table and is reported ``incomplete``. A changed byte, a deleted or a swapped row breaks the
chain at a seq that :func:`verify_chain` names.

>>> store = AuditStore(":memory:")
>>> store.start_run("r1", {"seed": 7})
>>> store.append("r1", [(0, "bar", {"p": 0.5})])
>>> store.end_run("r1") == store.head("r1")
True
>>> verify_chain(store, "r1").ok
True
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sentio.core.errors import SentioError
from sentio.core.hashing import canonical_json

SCHEMA_VERSION = 1
MIGRATIONS = {
    1: [
        "CREATE TABLE runs (run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, "
        "status TEXT NOT NULL, config TEXT NOT NULL, head TEXT)",
        "CREATE TABLE events (run_id TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL, "
        "kind TEXT NOT NULL, payload TEXT NOT NULL, prev_hash TEXT NOT NULL, "
        "hash TEXT NOT NULL, PRIMARY KEY (run_id, seq))",
        "CREATE INDEX events_kind ON events (run_id, kind, seq)",
        "CREATE INDEX events_ts ON events (run_id, ts)",
    ]
}


class AuditError(SentioError):
    """An audit database that cannot be used as asked (unknown run, newer schema, ...)."""


def genesis(run_id: str) -> str:
    return hashlib.sha256(f"sentio-audit-genesis:{run_id}".encode()).hexdigest()


def chain_hash(prev_hash: str, kind: str, payload: str) -> str:
    return hashlib.sha256((prev_hash + kind + payload).encode("utf-8")).hexdigest()


class AuditStore:
    """One SQLite database; ``start_run`` / ``append`` / ``end_run`` write, the rest read."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = str(path)
        if not create and self.path != ":memory:" and not Path(self.path).is_file():
            raise AuditError(
                f"{self.path}: no audit database here (record one with "
                "`sentio strattest --audit DB`, or give --db)"
            )
        self.db = sqlite3.connect(self.path)
        if self.path != ":memory:":
            self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = self.db.execute("SELECT max(version) FROM schema_version").fetchone()
        version = row[0] or 0
        if version > SCHEMA_VERSION:
            raise AuditError(
                f"{self.path}: schema version {version} is newer than this "
                f"sentio's {SCHEMA_VERSION}; upgrade sentio"
            )
        with self.db:
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[step]:
                    self.db.execute(statement)
                self.db.execute("INSERT INTO schema_version VALUES (?)", (step,))
        self._tail: dict[str, tuple[int, str]] = {}

    def start_run(self, run_id: str, config: dict[str, Any], started_at: str = "") -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO runs VALUES (?, ?, 'running', ?, NULL)",
                (run_id, started_at, canonical_json(config).decode()),
            )
        self._tail[run_id] = (0, genesis(run_id))

    def append(self, run_id: str, events: list[tuple[int, str, dict[str, Any]]]) -> None:
        """Append ``(ts, kind, payload)`` events in one transaction."""
        seq, prev = self._tail.get(run_id) or self._resume(run_id)
        rows = []
        for ts, kind, payload in events:
            body = canonical_json(payload).decode()
            digest = chain_hash(prev, kind, body)
            rows.append((run_id, seq, int(ts), kind, body, prev, digest))
            seq, prev = seq + 1, digest
        with self.db:
            self.db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        self._tail[run_id] = (seq, prev)

    def end_run(self, run_id: str) -> str:
        """Mark the run complete and return its chain head."""
        head = self.head(run_id)
        with self.db:
            self.db.execute(
                "UPDATE runs SET status = 'complete', head = ? WHERE run_id = ?", (head, run_id)
            )
        return head

    def head(self, run_id: str) -> str:
        row = self.db.execute(
            "SELECT hash FROM events WHERE run_id = ? ORDER BY seq DESC LIMIT 1", (run_id,)
        ).fetchone()
        return row[0] if row else genesis(run_id)

    def runs(self) -> list[dict[str, Any]]:
        """Every run with its status (``incomplete``: started, never ended) and head."""
        out = []
        for run_id, started, status, head in self.db.execute(
            "SELECT run_id, started_at, status, head FROM runs ORDER BY rowid"
        ):
            out.append(
                {
                    "run_id": run_id,
                    "started_at": started,
                    "status": "incomplete" if status == "running" else status,
                    "head": head or self.head(run_id),
                }
            )
        return out

    def run(self, run_id: str | None = None) -> dict[str, Any]:
        """One run (default: the newest) with its recorded run_start payload as ``config``."""
        query = "SELECT run_id, started_at, status, config, head FROM runs"
        row = (
            self.db.execute(query + " WHERE run_id = ?", (run_id,)).fetchone()
            if run_id
            else self.db.execute(query + " ORDER BY rowid DESC LIMIT 1").fetchone()
        )
        if row is None:
            known = ", ".join(r["run_id"] for r in self.runs()) or "none"
            raise AuditError(
                f"{self.path}: no run {run_id!r} (runs: {known})"
                if run_id
                else f"{self.path}: no runs recorded yet"
            )
        run_id, started, status, config, head = row
        return {
            "run_id": run_id,
            "started_at": started,
            "status": "incomplete" if status == "running" else status,
            "config": json.loads(config),
            "recorded_head": head,
            "head": self.head(run_id),
            "events": self.count(run_id),
        }

    def count(self, run_id: str) -> int:
        return self.db.execute(
            "SELECT count(*) FROM events WHERE run_id = ?", (run_id,)
        ).fetchone()[0]

    def events(self, run_id: str) -> list[tuple]:
        return self.db.execute(
            "SELECT seq, ts, kind, payload, prev_hash, hash FROM events "
            "WHERE run_id = ? ORDER BY seq",
            (run_id,),
        ).fetchall()

    def _resume(self, run_id: str) -> tuple[int, str]:
        row = self.db.execute("SELECT count(*) FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if not row[0]:
            raise AuditError(f"{self.path}: no run {run_id!r}")
        events = self.events(run_id)
        return (len(events), events[-1][5]) if events else (0, genesis(run_id))


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    events: int
    first_bad_seq: int | None = None
    reason: str = ""


def verify_chain(store: AuditStore, run_id: str) -> ChainCheck:
    """Walk the chain: seqs 0..n-1 without a gap, each prev_hash the previous hash (the first
    the genesis), each hash recomputed from its row."""
    prev = genesis(run_id)
    events = store.events(run_id)
    for expected, (seq, _ts, kind, payload, prev_hash, digest) in enumerate(events):
        if seq != expected:
            return ChainCheck(False, len(events), expected, f"seq {expected} is missing")
        if prev_hash != prev:
            return ChainCheck(
                False,
                len(events),
                seq,
                "prev_hash does not link to seq "
                f"{seq - 1}'s hash (a row was removed, reordered or rewritten)",
            )
        if chain_hash(prev_hash, kind, payload) != digest:
            return ChainCheck(
                False,
                len(events),
                seq,
                "hash does not match the row's kind and payload (the row was changed)",
            )
        prev = digest
    return ChainCheck(True, len(events))


__all__ = [
    "SCHEMA_VERSION",
    "AuditError",
    "AuditStore",
    "ChainCheck",
    "chain_hash",
    "genesis",
    "verify_chain",
]
