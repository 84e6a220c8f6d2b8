"""The audit chain: tampering is found and named, identical runs share a head, and a killed
writer leaves a readable database with the run marked incomplete."""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from sentio.audit import AuditError, AuditStore, verify_chain
from sentio.audit.store import genesis


def filled(path, run="r", n=20) -> AuditStore:
    store = AuditStore(path)
    store.start_run(run, {"seed": 7})
    store.append(run, [(i, "bar", {"p": i / 100, "reason": "warmup"}) for i in range(n)])
    store.end_run(run)
    return store


def test_chain_by_hand(tmp_path):
    store = filled(tmp_path / "a.db", n=1)
    (row,) = store.events("r")
    payload = '{"p":0.0,"reason":"warmup"}'
    expected = hashlib.sha256((genesis("r") + "bar|0|" + payload).encode()).hexdigest()
    assert row[3] == payload and row[4] == genesis("r") and row[5] == expected
    assert verify_chain(store, "r").ok


def test_changed_byte_deleted_row_and_swapped_rows_are_named(tmp_path):
    path = tmp_path / "a.db"
    filled(path)
    db = sqlite3.connect(path)
    db.execute("UPDATE events SET payload = replace(payload, '0.07', '0.08') WHERE seq = 7")
    db.commit()
    check = verify_chain(AuditStore(path), "r")
    assert not check.ok and check.first_bad_seq == 7 and "changed" in check.reason

    path = tmp_path / "b.db"
    filled(path)
    db = sqlite3.connect(path)
    db.execute("DELETE FROM events WHERE seq = 11")
    db.commit()
    check = verify_chain(AuditStore(path), "r")
    assert not check.ok and check.first_bad_seq == 11 and "missing" in check.reason

    path = tmp_path / "c.db"
    filled(path)
    db = sqlite3.connect(path)
    rows = {
        seq: row
        for seq, *row in db.execute(
            "SELECT seq, ts, kind, payload, prev_hash, hash FROM events WHERE seq IN (4, 5)"
        )
    }
    for seq, other in ((4, 5), (5, 4)):
        db.execute(
            "UPDATE events SET ts=?, kind=?, payload=?, prev_hash=?, hash=? WHERE seq=?",
            (*rows[other], seq),
        )
    db.commit()
    check = verify_chain(AuditStore(path), "r")
    assert not check.ok and check.first_bad_seq == 4


def test_identical_runs_have_the_same_head(tmp_path):
    assert filled(tmp_path / "a.db").head("r") == filled(tmp_path / "b.db").head("r")
    assert filled(tmp_path / "c.db", n=21).head("r") != filled(tmp_path / "d.db").head("r")


def test_a_killed_writer_leaves_a_readable_database_and_an_incomplete_run(tmp_path):
    path = tmp_path / "killed.db"
    code = f"""
import os
from sentio.audit import AuditStore
store = AuditStore({str(path)!r})
store.start_run("k", {{"seed": 1}})
for batch in range(5):
    store.append("k", [(batch * 10 + i, "bar", {{"i": i}}) for i in range(10)])
os.kill(os.getpid(), 9)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == -9
    store = AuditStore(path)
    (run,) = store.runs()
    assert run["status"] == "incomplete"
    check = verify_chain(store, "k")
    assert check.ok and check.events == 50


WRITER = """
import sys, time
from pathlib import Path
from sentio.audit.store import AuditStore

db, go, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
while not go.exists():  # every process opens the new database at the same moment
    time.sleep(0.001)
store = AuditStore(db)
run = store.claim_run("st-same", {"writer": n})
for batch in range(10):
    store.append(run, [(batch * 50 + i, "bar", {"writer": n, "i": i}) for i in range(50)])
store.append(run, [(500, "run_end", {"events": 501})])
store.end_run(run)
print(run)
"""


def test_concurrent_writers_on_a_new_database_all_land(tmp_path):
    """Five processes create the schema of one new database, claim the same run name and
    append at once: none crashes (one BEGIN IMMEDIATE creates the schema, the others wait on
    the busy timeout), each gets its own run and every chain is complete and intact."""
    db, go, n = tmp_path / "new.db", tmp_path / "go", 5
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), str(go), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(n)
    ]
    time.sleep(1.5)  # let every interpreter reach its wait loop
    go.touch()
    outputs = [w.communicate(timeout=120) for w in writers]
    assert [w.returncode for w in writers] == [0] * n, [err[-800:] for _, err in outputs]
    names = sorted(out.strip() for out, _ in outputs)
    assert names == sorted(["st-same"] + [f"st-same-{k}" for k in range(2, n + 1)])
    store = AuditStore(db, create=False)
    runs = store.runs()
    assert sorted(r["run_id"] for r in runs) == names and {r["status"] for r in runs} == {
        "complete"
    }
    for run in runs:
        check = verify_chain(store, run["run_id"])
        assert check.ok and check.events == 501, (run, check)
        assert run["head"] == store.head(run["run_id"])
    # each writer's events stayed in its own run
    writers_seen = {
        r["run_id"]: {json.loads(e[3])["writer"] for e in store.events(r["run_id"])[:-1]}
        for r in runs
    }
    assert sorted(len(w) for w in writers_seen.values()) == [1] * n
    assert set().union(*writers_seen.values()) == set(range(n))


def test_a_reader_never_changes_the_file_it_refuses(tmp_path):
    """An empty file and an unrelated SQLite database are refused by a reader (named) and a
    writer (it would otherwise put its schema into someone else's database); the bytes stay."""
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE t (x)")
    con.close()
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (empty, other)}
    with pytest.raises(AuditError, match="empty database"):
        AuditStore(empty, create=False)
    with pytest.raises(AuditError, match="not a Sentio audit database"):
        AuditStore(other, create=False)
    with pytest.raises(AuditError, match="not a Sentio audit database"):
        AuditStore(other)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (empty, other)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db", "other.db"]


EXPORT = """
import sys
from sentio.cli.app import saudit_main
sys.argv = ["saudit", "export", "--db", sys.argv[1], "--out", sys.argv[2]]
saudit_main()
"""


def test_export_killed_mid_write_leaves_the_old_file(tmp_path):
    """SIGKILL while ``saudit export`` writes: the target keeps its old bytes (the new ones
    went to a temporary sibling, renamed only when complete); a full export then replaces it."""
    db = tmp_path / "big.db"
    store = AuditStore(db)
    store.start_run("r", {"seed": 1})
    for batch in range(24):
        store.append(
            "r", [(batch * 2500 + i, "bar", {"i": i, "pad": "x" * 40}) for i in range(2500)]
        )
    store.end_run("r")
    store.close()
    out = tmp_path / "events.jsonl"
    out.write_text("the old export\n")
    old = out.read_bytes()
    writer = subprocess.Popen([sys.executable, "-c", EXPORT, str(db), str(out)])
    seen = 0
    deadline = time.monotonic() + 120
    while writer.poll() is None and time.monotonic() < deadline:
        temps = list(tmp_path.glob(".events.jsonl.*.tmp"))
        if temps and temps[0].stat().st_size > 1_000_000:  # well into the 60,000 lines
            seen = temps[0].stat().st_size
            writer.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    writer.wait()
    assert seen and writer.returncode == -signal.SIGKILL, "the export was not caught mid-write"
    assert out.read_bytes() == old
    done = subprocess.run([sys.executable, "-c", EXPORT, str(db), str(out)], capture_output=True)
    assert done.returncode == 0, done.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 60_000 and json.loads(lines[-1])["seq"] == 59_999


def test_a_finished_database_leaves_wal_unless_another_connection_holds_it(tmp_path):
    """end_run switches the file back to a rollback journal (one file for readers); with a
    second connection open SQLite refuses at once, end_run neither fails nor waits, and the
    file stays in WAL mode (header bytes 18-19: 2, 2 WAL; 1, 1 rollback) until a writer that
    is alone ends or closes."""
    path = tmp_path / "a.db"
    store = AuditStore(path)
    other = sqlite3.connect(path)
    other.execute("SELECT count(*) FROM runs").fetchall()  # holds the WAL's shared memory
    started = time.monotonic()
    store.start_run("r", {"seed": 7})
    store.append("r", [(0, "bar", {"p": 0.5})])
    store.end_run("r")
    assert time.monotonic() - started < 5  # no busy wait (BUSY_TIMEOUT_S is 120 s)
    assert path.read_bytes()[18:20] == b"\x02\x02"
    other.close()
    store.close()
    assert path.read_bytes()[18:20] == b"\x01\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.db"]
    with pytest.raises(AuditError, match="unknown event kind 'bogus'"):
        AuditStore(path).append("r", [(1, "bogus", {})])


def test_a_moved_bar_time_breaks_the_chain_at_its_seq(tmp_path):
    """The event's time is hashed: one nanosecond moved, and nothing else, is named."""
    filled(tmp_path / "a.db").close()
    with sqlite3.connect(tmp_path / "a.db") as con:
        con.execute("UPDATE events SET ts = ts + 1 WHERE seq = 3")
    check = verify_chain(AuditStore(tmp_path / "a.db", create=False), "r")
    assert not check.ok and check.first_bad_seq == 3
