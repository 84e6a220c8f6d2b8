"""Audit databases read back as runs, one :class:`~sentio.runs.run.Run` per recorded run, and
without writing a byte.

``saudit`` opens a database read-only too, but to read one in WAL mode SQLite may create its
``-shm`` index beside it (docs/audit.md). ``sentio runs`` walks folders that other programs
own, so it opens nothing it might change: a finished database (rollback journal) with
``mode=ro``; a WAL-mode database whose ``-wal`` file is gone (every commit merged into the main
file) as an immutable file; and one whose ``-wal`` file is still there (a writer recording, or
killed) is reported, not opened. Rows are checked like ``saudit`` checks them
(``sentio.audit.store.row_problem``, ``parse_payload``), and only four kinds of rows are read:
run_start, run_end, block_end and the last event.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from sentio.audit.store import SCHEMA_VERSION, AuditError, parse_payload, row_problem
from sentio.core.errors import excerpt
from sentio.report.audited import judged, run_seed
from sentio.runs.fields import flatten, numbers
from sentio.runs.folders import verdict_numbers
from sentio.runs.run import Problem, Run, RunsError

SQLITE_MAGIC = b"SQLite format 3\x00"
TABLES = {"schema_version", "runs", "events"}
COLUMNS = "seq, ts, kind, payload, prev_hash, hash"


def is_sqlite(path: Path) -> bool:
    """Whether the file starts with SQLite's header (an unreadable file is not one)."""
    try:
        with path.open("rb") as handle:
            return handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


@contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection that cannot write ``path`` nor create anything beside it."""
    with path.open("rb") as handle:
        header = handle.read(100)
    wal = len(header) > 18 and header[18] == 2  # the file format's read version: 2 is WAL
    log = Path(f"{path}-wal")
    if wal and log.exists():
        raise RunsError(
            f"{path}: its write-ahead log {log.name} is beside it (a writer is recording, or "
            "was killed); sentio runs reads nothing it would have to write beside: read it "
            f"with `saudit list --db {path}`"
        )
    mode = "mode=ro&immutable=1" if wal else "mode=ro"
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?{mode}", uri=True)
    except sqlite3.Error as exc:
        raise RunsError(f"{path}: cannot open the database ({exc})") from None
    try:
        yield db
    except sqlite3.Error as exc:
        raise RunsError(f"{path}: cannot read the database ({exc})") from None
    finally:
        db.close()


def read_audit(path: Path) -> list[Run | Problem] | None:
    """Every run in the audit database ``path``, oldest first (a run that cannot be read is a
    Problem in its place); None when the file is SQLite but not an audit database."""
    with read_only(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables >= TABLES:
            return None
        version = db.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise RunsError(
                f"{path}: schema version {excerpt(version)} is newer than this sentio's "
                f"{SCHEMA_VERSION}; upgrade sentio"
            )
        entries: list[Run | Problem] = []
        listed = db.execute("SELECT run_id, started_at, status, head FROM runs ORDER BY rowid")
        for run_id, started, status, head in listed.fetchall():
            try:
                entries.append(_run(db, path, run_id, started, status, head))
            except (AuditError, RunsError) as exc:
                entries.append(Problem(f"{path}#{run_id}", str(exc)))
        return entries


def _rows(db: sqlite3.Connection, run_id: str, where: str) -> list[tuple[int, str, dict]]:
    """``(seq, kind, payload)`` of the run's events matching ``where``, each row checked as
    saudit checks it (an edited row is an AuditError naming run and seq)."""
    query = f"SELECT {COLUMNS} FROM events WHERE run_id = ? AND {where}"
    out = []
    for row in db.execute(query, (run_id,)).fetchall():
        problem = row_problem(row)
        if problem:
            raise AuditError(f"run {excerpt(run_id)}, seq {excerpt(row[0])}: {problem}")
        out.append((row[0], row[2], parse_payload(run_id, row[0], row[3])))
    return out


def _run(db, path: Path, run_id: str, started: str, status: str, head: str | None) -> Run:
    first = _rows(db, run_id, "seq = 0")
    if not first or first[0][1] != "run_start":
        raise AuditError(f"run {excerpt(run_id)}: seq 0 is not its run_start event")
    start = first[0][2]
    last = _rows(db, run_id, "seq = (SELECT max(seq) FROM events WHERE run_id = ?1)")
    end = last[0][2] if last and last[0][1] == "run_end" else None
    blocks = [p for _, _, p in _rows(db, run_id, "kind = 'block_end' ORDER BY seq")]
    command = str(start.get("command", "strattest"))
    try:
        judged = _verdict(command, start, end, blocks) if status == "complete" else None
        model, data = start.get("model") or {}, start.get("data") or {}
        hashes = {
            "head": head,  # written when the run ended: None for an incomplete run
            "model.manifest_hash": model.get("manifest_hash"),
            "model.spec_hash": model.get("spec_hash"),
            "data.qqq_bars_sha256": data.get("qqq_bars_sha256"),
        }
        hashes |= {f"data.{f['path']}": f.get("sha256") for f in data.get("files", [])}
        figures = numbers((end or {}).get("summary") or {}) | numbers(
            {"parity": (end or {}).get("parity") or {}, "blocks_run": len(blocks)}
        )
        config = flatten(start.get("config") or {}) | {
            "command": command,
            "in_sample": start.get("in_sample"),
            "model.path": model.get("path"),
        }
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise AuditError(
            f"run {excerpt(run_id)}: a recorded payload lacks or mistypes a field "
            f"({excerpt(exc, 80)})"
        ) from None
    strategy = ((end or {}).get("summary") or {}).get("strategy") or {}
    return Run(
        f"audit/{command}",
        str(path),
        run_id=str(run_id),
        when=started or None,
        net_mean_pct=strategy.get("mean_rpb_pct"),
        verdict=judged.kind if judged else ("incomplete" if status != "complete" else None),
        config=config,
        hashes=hashes,
        numbers=figures | (verdict_numbers(judged.to_dict()) if judged else {}),
    )


def _verdict(command: str, start: dict, end: dict | None, blocks: list[dict]):
    """The verdict strattest printed, computed again as the report computes it
    (:func:`sentio.report.audited.judged`)."""
    summary = (end or {}).get("summary") or {}
    if not blocks:
        return None
    unit = "session" if command == "walk-forward" else "block"
    return judged(summary, pd.DataFrame(blocks), unit, run_seed(start))


__all__ = ["is_sqlite", "read_audit", "read_only"]
