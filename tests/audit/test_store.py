"""The audit chain: tampering is found and named, identical runs share a head, and a killed
writer leaves a readable database with the run marked incomplete."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys

from sentio.audit import AuditStore, verify_chain
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
    expected = hashlib.sha256((genesis("r") + "bar" + payload).encode()).hexdigest()
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
