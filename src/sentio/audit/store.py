"""The append-only, hash-chained audit store (SQLite, WAL).

Each run is one chain: event ``seq`` carries
``hash = sha256(prev_hash + kind + "|" + ts + "|" + payload)`` (hex strings, the event's time as
decimal nanoseconds and the canonical JSON payload, UTF-8), and the first event's ``prev_hash`` is
the run's genesis, ``sha256("sentio-audit-genesis:" + run_id)``. Events are inserted in
batched transactions; a run that never reached its end stays marked ``running`` in the runs
table and is reported ``incomplete``. A changed byte, a deleted or a swapped row breaks the
chain at a seq that :func:`verify_chain` names.

Writers and readers (issue 12):

- a writer (``AuditStore(path)``) creates the schema and migrates it inside one
  ``BEGIN IMMEDIATE`` transaction and waits up to ``BUSY_TIMEOUT_S`` for a busy database, so
  several processes may record into one new file at once; every write is an immediate
  transaction (a deferred one that later upgrades to a write can fail instead of waiting);
- a writer refuses a file that is not an audit database (not SQLite, or someone else's tables)
  before it changes anything;
- a writer that ends a run switches the file back from WAL to a rollback journal
  (``journal_mode=DELETE``) when no other connection holds it, so a finished database is one
  file that readers open without side files; with another writer still connected SQLite
  refuses at once (SQLITE_BUSY) and the file stays in WAL mode until a later writer ends;
- a reader (``AuditStore(path, create=False)``) opens the file read-only (``mode=ro``) and never
  changes it. Only to read a WAL database (a writer still running or killed) may SQLite
  create its ``-shm`` index and an empty ``-wal`` next to it (sqlite.org/wal.html). A WAL
  database whose folder cannot be written, and that has no ``-wal`` file (every commit merged
  into the main file), is opened ``immutable=1``: SQLite cannot create its ``-shm`` there, and
  nothing is pending;
- a reader checks every column of every event it reads (``row_problem``) and refuses, naming
  the run and seq, a row a person edited into something the views cannot show.

>>> store = AuditStore(":memory:")
>>> store.start_run("r1", {"seed": 7})
>>> store.append("r1", [(0, "bar", {"p": 0.5})])
>>> store.end_run("r1") == store.head("r1")
True
>>> verify_chain(store, "r1").ok
True
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sentio.core.errors import SentioError, excerpt
from sentio.core.hashing import canonical_json

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 120.0  # a writer waits this long for another writer's transaction
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
# The event kinds the recorder writes (record.py), in the order a run holds them.
KINDS = ("run_start", "block_start", "fill", "bar", "order", "block_end", "run_end")
# What only a live run records (sentio live, docs/live.md): feed faults, risk refusals, broker
# acknowledgements, restarts, the exit.
LIVE_KINDS = ("feed_fault", "risk", "broker", "restart", "exit", "session_check", "swap")
# A recorded payload nests 4 levels at most (run_start, run_end); this bound keeps a forged
# 100,000-deep one from exhausting the stack of json (or of anything that walks the payload).
MAX_DEPTH = 32
# Bar times the views can convert: pandas' nanosecond range less a day at each end, so that
# the New York conversion never leaves it (pd.Timestamp.min/max are -/+ 9223372036854775807).
TS_MIN = -9_223_372_036_854_775_807 + 86_400 * 10**9
TS_MAX = 9_223_372_036_854_775_807 - 86_400 * 10**9
HEX64 = re.compile(r"[0-9a-f]{64}")
# The columns each table must have for this sentio to read it.
TABLES = {
    "schema_version": ("version",),
    "runs": ("run_id", "started_at", "status", "config", "head"),
    "events": ("run_id", "seq", "ts", "kind", "payload", "prev_hash", "hash"),
}


class AuditError(SentioError):
    """An audit database that cannot be used as asked (unknown run, newer schema, ...)."""


def genesis(run_id: str) -> str:
    return hashlib.sha256(f"sentio-audit-genesis:{run_id}".encode()).hexdigest()


def chain_hash(prev_hash: str, kind: str, ts: int, payload: str) -> str:
    """``sha256(prev_hash + kind + "|" + ts + "|" + payload)``: the event's time is inside the
    chain too (kind and ts never contain "|", so the fields cannot be shifted into each other).

    >>> chain_hash("0" * 64, "bar", 1, "{}")[:16]
    '1ca56b5c533b3360'
    """
    text = f"{prev_hash}{kind}|{int(ts)}|{payload}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_payload(run_id: str, seq: int, payload: str) -> dict:
    """A stored payload as a dict; anything else is an AuditError naming run and seq.

    >>> parse_payload("r", 3, '{"p":1}')
    {'p': 1}
    >>> parse_payload("r", 3, "{oops")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    AuditError: run 'r', seq 3: the payload is not JSON (...)
    >>> parse_payload("r", 3, "[" * 40 + "]" * 40)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    AuditError: run 'r', seq 3: the payload nests deeper than 32 levels (...)
    """
    where = f"run {excerpt(run_id)}, seq {seq}"
    edited = "the row was edited (saudit verify names the first bad seq)"
    if not isinstance(payload, str):
        raise AuditError(f"{where}: the payload is {type(payload).__name__}, not text; {edited}")
    try:
        doc = json.loads(payload)
    except RecursionError:
        doc = None  # nested past Python's own limit: refused as too deep just below
    except ValueError as exc:  # JSONDecodeError, or an integer of more than 4,300 digits
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise AuditError(
            f"{where}: the payload is not JSON ({excerpt(reason, 120)}); {edited}"
        ) from None
    if doc is None or depth(doc) > MAX_DEPTH:
        raise AuditError(
            f"{where}: the payload nests deeper than {MAX_DEPTH} levels (a recorded payload "
            f"nests 4 at most); {edited}"
        )
    if not isinstance(doc, dict):
        raise AuditError(
            f"{where}: the payload is a JSON {type(doc).__name__}, not an object; {edited}"
        )
    return doc


def depth(doc: object) -> int:
    """How deep lists and dicts nest in ``doc``, walked without recursion.

    >>> depth(1), depth({"a": [1, {"b": 2}]})
    (0, 3)
    """
    deepest, stack = 0, [(doc, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            level += 1
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                break  # deep enough to refuse: no need to walk the rest
            stack.extend(
                (child, level) for child in (node.values() if isinstance(node, dict) else node)
            )
    return deepest


def row_problem(row: tuple) -> str:
    """What is wrong with an events row ``(seq, ts, kind, payload, prev_hash, hash)`` as
    stored, or "" when every column has the type and range the recorder writes. SQLite keeps
    any value in any column, so an edited row may hold text in ``ts`` or a blob in ``kind``.

    >>> row_problem((5, 60, "bar", "{}", "0" * 64, "f" * 64))
    ''
    >>> row_problem((5, "x", "bar", "{}", "0" * 64, "f" * 64))
    "ts is 'x' (str), not a bar time in nanoseconds"
    """
    seq, ts, kind, payload, prev_hash, digest = row
    if type(seq) is not int or seq < 0:
        return f"seq is {excerpt(seq)}, not a count from 0"
    if type(ts) is not int:
        return f"ts is {excerpt(ts)} ({type(ts).__name__}), not a bar time in nanoseconds"
    if not TS_MIN <= ts <= TS_MAX:
        return f"ts {ts} lies outside the dates a bar time can hold (years 1677 to 2262)"
    if kind not in KINDS + LIVE_KINDS:
        return f"kind is {excerpt(kind)}, not one of {', '.join(KINDS + LIVE_KINDS)}"
    if not isinstance(payload, str):
        return f"the payload is {type(payload).__name__}, not text"
    for name, value in (("prev_hash", prev_hash), ("hash", digest)):
        if not isinstance(value, str) or not HEX64.fullmatch(value):
            return f"{name} is {excerpt(value)}, not 64 hexadecimal digits"
    return ""


class AuditStore:
    """One SQLite database; ``start_run`` / ``append`` / ``end_run`` write, the rest read.

    ``create=False`` opens an existing database read-only (the ``saudit`` commands).
    """

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = str(path)
        self.writable = create
        self._tail: dict[str, tuple[int, str]] = {}
        self.db = self._open_writer() if create else self._open_reader()

    # -- opening ---------------------------------------------------------------------------

    def _open_writer(self) -> sqlite3.Connection:
        memory = self.path == ":memory:"
        if not memory and Path(self.path).is_dir():
            raise AuditError(f"{self.path} is a directory; give a database file")
        try:
            # isolation_level=None: no implicit transactions; every write below is BEGIN IMMEDIATE
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise AuditError(f"{self.path}: cannot open the database ({exc})") from None
        self.db = db
        with self._errors():
            self._check_tables(allow_new=True)  # refuse someone else's file before changing it
            if not memory:
                db.execute("PRAGMA journal_mode=WAL")
            with self._write():
                self._check_tables(allow_new=True)
                self._migrate()
        return db

    def _open_reader(self) -> sqlite3.Connection:
        path = Path(self.path)
        if not path.exists():
            raise AuditError(
                f"{self.path}: no audit database here (record one with "
                "`sentio strattest --audit DB`, or give --db)"
            )
        if not path.is_file():
            raise AuditError(f"{self.path} is not a file; give the audit database file")
        uri = path.resolve().as_uri()
        try:
            self.db = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None)
            self._check_tables(allow_new=False)  # the first read: SQLite opens the file here
        except sqlite3.OperationalError as exc:
            code = getattr(exc, "sqlite_errorname", "")
            wal = Path(f"{self.path}-wal")
            if code not in ("SQLITE_READONLY_DIRECTORY", "SQLITE_CANTOPEN"):
                raise self._error(exc) from None
            if wal.exists():
                raise AuditError(
                    f"{self.path}: its write-ahead log {wal.name} holds commits not yet merged "
                    "into the database, and SQLite cannot open it read-only in this folder "
                    "(it needs to create its -shm file there); copy the folder somewhere "
                    "writable and read the copy"
                ) from None
            # Nothing pending in a log and a folder we cannot write: the main file is the
            # whole database, so it is read as an immutable file.
            self.db = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True)
            with self._errors():
                self._check_tables(allow_new=False)
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        return self.db

    def _check_tables(self, allow_new: bool) -> None:
        """Refuse a file that is not a Sentio audit database (or has lost a table)."""
        names = {
            row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        found = {
            name: [row[1] for row in self.db.execute(f"PRAGMA table_info({name})")]
            for name in TABLES
            if name in names
        }
        if not names:
            if allow_new:
                return
            raise AuditError(
                f"{self.path}: an empty database, not a Sentio audit database (it has no "
                "tables); record one with `sentio strattest --audit DB`"
            )
        if "schema_version" not in found:
            raise AuditError(
                f"{self.path}: not a Sentio audit database (it holds the tables "
                f"{', '.join(sorted(names)[:8])} and no schema_version)"
            )
        row = self.db.execute("SELECT max(version) FROM schema_version").fetchone()
        version = row[0] or 0
        if version > SCHEMA_VERSION:
            raise AuditError(
                f"{self.path}: schema version {version} is newer than this "
                f"sentio's {SCHEMA_VERSION}; upgrade sentio"
            )
        if version < SCHEMA_VERSION and allow_new:
            return  # the writer migrates it
        for table, columns in TABLES.items():
            if table not in found:
                raise AuditError(
                    f"{self.path}: the table {table!r} is missing (found: "
                    f"{', '.join(sorted(names)[:8])}); the database was damaged or edited"
                )
            missing = [c for c in columns if c not in found[table]]
            if missing:
                raise AuditError(
                    f"{self.path}: the table {table!r} lacks the columns {', '.join(missing)}"
                )

    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        version = self.db.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[step]:
                self.db.execute(statement)
            self.db.execute("INSERT INTO schema_version VALUES (?)", (step,))

    def _error(self, exc: sqlite3.Error) -> AuditError:
        code = getattr(exc, "sqlite_errorname", "")
        if code == "SQLITE_NOTADB":
            return AuditError(f"{self.path}: not a SQLite database (give the audit database)")
        if code.startswith("SQLITE_BUSY"):
            return AuditError(
                f"{self.path}: still locked by another writer after {BUSY_TIMEOUT_S:.0f} s"
            )
        if code.startswith("SQLITE_READONLY") or code.startswith("SQLITE_CANTOPEN"):
            return AuditError(f"{self.path}: cannot write the database here ({exc})")
        return AuditError(f"{self.path}: {exc}")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """SQLite errors become one AuditError line naming the file."""
        try:
            yield
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """One ``BEGIN IMMEDIATE`` transaction: takes the write lock first (waiting up to the
        busy timeout), so it never fails half way for a lock another writer holds."""
        with self._errors():
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._errors():
            return self.db.execute(sql, args).fetchall()

    # -- writing ---------------------------------------------------------------------------

    def start_run(self, run_id: str, config: dict[str, Any], started_at: str = "") -> None:
        with self._write():
            self._insert_run(run_id, config, started_at)

    def claim_run(self, base: str, config: dict[str, Any], started_at: str = "") -> str:
        """Start a run named ``base`` (``base-2``, ``-3`` ... when taken); the free name is
        found and taken in one transaction, so concurrent writers never collide."""
        with self._write():
            taken = {row[0] for row in self.db.execute("SELECT run_id FROM runs")}
            run_id, n = base, 1
            while run_id in taken:
                n += 1
                run_id = f"{base}-{n}"
            self._insert_run(run_id, config, started_at)
        return run_id

    def _insert_run(self, run_id: str, config: dict[str, Any], started_at: str) -> None:
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
            if kind not in KINDS + LIVE_KINDS:  # a reader would refuse the row: never write it
                raise AuditError(f"{self.path}: unknown event kind {excerpt(kind)}")
            body = canonical_json(payload).decode()
            digest = chain_hash(prev, kind, int(ts), body)
            rows.append((run_id, seq, int(ts), kind, body, prev, digest))
            seq, prev = seq + 1, digest
        with self._write():
            self.db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        self._tail[run_id] = (seq, prev)

    def end_run(self, run_id: str) -> str:
        """Mark the run complete and return its chain head."""
        head = self.head(run_id)
        with self._write():
            self.db.execute(
                "UPDATE runs SET status = 'complete', head = ? WHERE run_id = ?", (head, run_id)
            )
        self.leave_wal()
        return head

    def leave_wal(self) -> bool:
        """Switch the file from WAL to a rollback journal, so that the finished database is
        one file a reader opens without creating ``-wal``/``-shm`` beside it (issue 12).
        Best effort: while another connection holds the file SQLite refuses at once
        (SQLITE_BUSY, no busy wait) and the file stays in WAL mode, which is correct too; the
        last writer to end switches it. True when the file is in rollback mode now."""
        if not self.writable or self.path == ":memory:":
            return False
        try:
            mode = self.db.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
        except sqlite3.OperationalError:  # busy: another writer or reader is connected
            return False
        return mode == "delete"

    # -- reading ---------------------------------------------------------------------------

    def head(self, run_id: str) -> str:
        rows = self._query(
            "SELECT hash FROM events WHERE run_id = ? ORDER BY seq DESC LIMIT 1", (run_id,)
        )
        return rows[0][0] if rows else genesis(run_id)

    def runs(self) -> list[dict[str, Any]]:
        """Every run with its status (``incomplete``: started, never ended) and head."""
        out = []
        for run_id, started, status, head in self._query(
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

    def run(self, run_id: str | None = None, *, chained: bool = True) -> dict[str, Any]:
        """One run (default: the newest). ``config`` is its run_start payload as chained in
        the events (seq 0; not parsed with ``chained=False``), never the runs table's
        unchained copy (``table_config``, the text as stored)."""
        query = "SELECT run_id, started_at, status, config, head FROM runs"
        rows = (
            self._query(query + " WHERE run_id = ?", (run_id,))
            if run_id
            else self._query(query + " ORDER BY rowid DESC LIMIT 1")
        )
        if not rows:
            known = ", ".join(excerpt(r["run_id"], 40) for r in self.runs()[:20]) or "none"
            raise AuditError(
                f"{self.path}: no run {excerpt(run_id)} (runs: {known})"
                if run_id
                else f"{self.path}: no runs recorded yet"
            )
        run_id, started, status, config, head = rows[0]
        first = self._query(
            "SELECT kind, payload FROM events WHERE run_id = ? AND seq = 0", (run_id,)
        )
        start = {}
        if chained and first and first[0][0] == "run_start":
            start = self.parse(run_id, 0, first[0][1])
        return {
            "run_id": run_id,
            "started_at": started,
            "status": "incomplete" if status == "running" else status,
            "config": start,
            "table_config": config,
            "recorded_head": head,
            "head": self.head(run_id),
            "events": self.count(run_id),
        }

    def parse(self, run_id: str, seq: int, payload: str) -> dict:
        """A stored payload as a dict (``parse_payload``), errors naming this file too."""
        try:
            return parse_payload(run_id, seq, payload)
        except AuditError as exc:
            raise AuditError(f"{self.path}: {exc}") from None

    def count(self, run_id: str) -> int:
        return self._query("SELECT count(*) FROM events WHERE run_id = ?", (run_id,))[0][0]

    def events(self, run_id: str) -> list[tuple]:
        return self._query(
            "SELECT seq, ts, kind, payload, prev_hash, hash FROM events "
            "WHERE run_id = ? ORDER BY seq",
            (run_id,),
        )

    def close(self) -> None:
        self.leave_wal()
        self.db.close()

    def _resume(self, run_id: str) -> tuple[int, str]:
        if not self._query("SELECT count(*) FROM runs WHERE run_id = ?", (run_id,))[0][0]:
            raise AuditError(f"{self.path}: no run {excerpt(run_id)}")
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
    for expected, row in enumerate(events):
        seq, ts, kind, payload, prev_hash, digest = row
        problem = row_problem(row)
        if problem:  # a column retyped or out of range: named before any hash is computed
            at = seq if type(seq) is int else expected
            return ChainCheck(False, len(events), at, f"{problem} (the row was edited)")
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
        if chain_hash(prev_hash, kind, ts, payload) != digest:
            return ChainCheck(
                False,
                len(events),
                seq,
                "hash does not match the row's kind and payload (the row was changed)",
            )
        prev = digest
    return ChainCheck(True, len(events))


__all__ = [
    "BUSY_TIMEOUT_S",
    "KINDS",
    "LIVE_KINDS",
    "SCHEMA_VERSION",
    "AuditError",
    "AuditStore",
    "ChainCheck",
    "chain_hash",
    "genesis",
    "parse_payload",
    "row_problem",
    "verify_chain",
]
