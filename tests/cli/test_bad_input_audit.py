"""Bad invocations of ``saudit`` through the real console script: each is refused with exit 2
and one line naming the flag or the --db file and what is wrong, with no traceback, and the
database is left byte for byte as it was (same bytes, same modification time; no schema
written into an unrelated or empty file).

The databases are small and made here with the store API (no model needed). Cases that need a
folder the command cannot write run as user ``nobody`` (we are root, for whom permissions do not
bind); they are skipped, with the reason, where ``setpriv`` cannot switch user.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest

from sentio.audit import AuditStore
from sentio.audit.store import chain_hash, genesis
from tests.cli.badinput import Case, assert_refused, run_script, script

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def make_db(path: Path) -> Path:
    """A valid audit database: one complete run of a run_start, 5 bar events and a run_end."""
    store = AuditStore(path)
    start = {"model": {"path": "m"}, "data": {"files": []}, "blocks_run": 1}
    store.start_run("r1", start)
    bar = {"block": 0, "p_seq": 0.5, "p_stream": 0.5, "diff": 0.0, "signal": "flat"}
    bar |= {"reason": "warmup", "positions": {"QQQ": 0}, "equity": 1e5}
    bars = [(60 * i, "bar", bar) for i in range(5)]
    store.append("r1", [(0, "run_start", start), *bars, (300, "run_end", {"events": 7})])
    store.end_run("r1")
    store.close()
    return path


def prepare(kind: str, folder: Path) -> Path:
    """The --db file of a case: ``kind`` says what is wrong with it."""
    db = folder / "audit.db"
    if kind == "text":
        db.write_text("timestamp,open\n2024-01-02,1.0\n")
    elif kind == "empty":
        db.write_bytes(b"")
    elif kind == "unrelated":
        with sqlite3.connect(db) as con:
            con.execute("CREATE TABLE prices (ts INTEGER, close REAL)")
            con.execute("INSERT INTO prices VALUES (1, 2.0)")
        con.close()
    elif kind != "missing":
        make_db(db)
        with sqlite3.connect(db) as con:
            if kind == "dropped":
                con.execute("DROP TABLE events")
            elif kind == "not-json":
                con.execute("UPDATE events SET payload = '{\"p_seq\": 0.5,' WHERE seq = 3")
            elif kind == "run-start-not-json":
                con.execute("UPDATE events SET payload = 'nan' WHERE seq = 0")
            elif kind in EDITS:  # one column of seq 3 retyped, as `sqlite3 DB "update ..."` can
                column, value = EDITS[kind]
                con.execute(f"UPDATE events SET {column} = ? WHERE seq = 3", (value,))
        con.close()
        if kind.endswith("-rehashed"):
            rehash(db)
    return db


# What an edit can put into one column of an events row (SQLite stores any value anywhere).
EDITS = {
    "ts-text": ("ts", "x"),
    "ts-huge": ("ts", 2**63 - 1),  # past pandas' last date once New York's offset is added
    "kind-unknown": ("kind", "bogus"),
    "kind-blob": ("kind", b"bar"),
    "hash-not-hex": ("hash", "zz"),
    "too-deep": ("payload", "[" * 100_000 + "]" * 100_000),  # past Python's recursion limit
    "too-deep-rehashed": ("payload", '{"a":' * 500 + "1" + "}" * 500),  # json parses it
    "bar-lacks-equity-rehashed": ("payload", '{"block":0,"p_seq":0.5,"positions":{"QQQ":1}}'),
}


def rehash(db: Path) -> None:
    """Recompute run r1's chain and head after an edit: a forger's rehash, so that only the
    replay (which parses every payload) can find it."""
    with sqlite3.connect(db) as con:
        prev = genesis("r1")
        rows = con.execute("SELECT seq, ts, kind, payload FROM events ORDER BY seq").fetchall()
        for seq, ts, kind, payload in rows:
            digest = chain_hash(prev, kind, ts, payload)
            con.execute(
                "UPDATE events SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, seq)
            )
            prev = digest
        con.execute("UPDATE runs SET head = ?", (prev,))
    con.close()


def fingerprint(folder: Path) -> dict:
    """Every file of the folder with its bytes and modification time."""
    return {
        p.name: (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def assert_untouched(folder: Path, before: dict) -> None:
    """The files are as they were and none was added: the writer left a finished database as
    one file in rollback mode, which a reader opens without a -wal or -shm beside it."""
    after = fingerprint(folder)
    for name, was in before.items():
        assert after.get(name) == was, f"{name} changed"
    assert set(after) == set(before), set(after) - set(before)


CASES = [
    Case("db-missing", ["list"], ["--db", "no audit database"], script="missing"),
    Case("db-a-directory", ["list", "--db", "{dir}"], ["--db", "not a file"], script="valid"),
    Case("db-not-sqlite", ["trades"], ["--db", "not a SQLite database"], script="text"),
    Case("db-empty-file", ["list"], ["--db", "empty database"], script="empty"),
    Case(
        "db-unrelated-sqlite",
        ["verify"],
        ["--db", "not a Sentio audit database", "prices"],
        script="unrelated",
    ),
    Case(
        "db-dropped-table", ["signal-flow"], ["--db", "table 'events' is missing"], script="dropped"
    ),
    Case("payload-not-json", ["signal-flow"], ["run 'r1', seq 3", "not JSON"], script="not-json"),
    Case(
        "run-start-not-json", ["list"], ["run 'r1', seq 0", "not JSON"], script="run-start-not-json"
    ),
    Case("run-unknown", ["verify", "--run", "st-nope"], ["no run 'st-nope'", "r1"], script="valid"),
    Case(
        "since-unreadable",
        ["signal-flow", "--since", "2024-13-45 10:00"],
        ["--since", "2024-13-45"],
        script="valid",
    ),
    Case(
        "since-dst-gap",
        ["signal-flow", "--since", "2024-03-10 02:30"],
        ["--since", "nonexistent"],
        script="valid",
    ),
    Case(
        "since-huge",
        ["signal-flow", "--since", "x" * 5000],
        ["--since", "characters"],
        script="valid",
    ),
    Case(
        "run-id-huge",  # echoed as a bounded excerpt (issue 12, finding 14)
        ["signal-flow", "--run", "r" * 100_000],
        ["no run", "100002 characters", "r1"],
        script="valid",
    ),
    # a column an edit retyped: the readers name run and seq (verify: see below)
    Case("ts-text", ["signal-flow"], ["run 'r1', seq 3", "ts is 'x'"], script="ts-text"),
    Case(
        "ts-out-of-range",
        ["export"],
        ["run 'r1', seq 3", "ts 9223372036854775807"],
        script="ts-huge",
    ),
    Case("kind-unknown", ["trades"], ["run 'r1', seq 3", "kind is 'bogus'"], script="kind-unknown"),
    Case("kind-not-text", ["summary"], ["run 'r1', seq 3", "kind is b'bar'"], script="kind-blob"),
    Case(
        "hash-not-hex",
        ["positions"],
        ["seq 3", "hash is 'zz'", "64 hexadecimal"],
        script="hash-not-hex",
    ),
    Case("payload-too-deep", ["summary"], ["run 'r1', seq 3", "deeper than 32"], script="too-deep"),
    Case(
        "payload-lacks-a-field",  # rehashed, so only the field's absence shows
        ["positions"],
        ["run 'r1', seq 3", "bar payload lacks", "equity"],
        script="bar-lacks-equity-rehashed",
    ),
    Case("max-negative", ["trades", "--max", "-1"], ["--max"], script="valid"),
    Case("sample-zero", ["verify", "--sample", "0"], ["--sample"], script="valid"),
    Case("format-unknown", ["export", "--format", "xml"], ["--format"], script="valid"),
    Case("out-is-the-db", ["export", "--out", "{db}"], ["--out", "same file"], script="valid"),
    Case(
        "out-links-to-the-db",
        ["export", "--out", "{dir}/link.db"],
        ["--out", "same file"],
        script="valid",
    ),
    Case("out-is-the-wal", ["export", "--out", "{db}-wal"], ["--out", "same file"], script="valid"),
    Case("out-a-directory", ["export", "--out", "{dir}"], ["--out", "directory"], script="valid"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_a_bad_invocation_is_refused_and_the_database_untouched(case, tmp_path):
    db = prepare(case.script, tmp_path)
    if case.id == "out-links-to-the-db":
        (tmp_path / "link.db").symlink_to(db)
    if case.id == "out-is-the-wal":
        Path(f"{db}-wal").write_bytes(b"")  # as a reader's SQLite may leave it
    before = fingerprint(tmp_path)
    args = [a.replace("{db}", str(db)).replace("{dir}", str(tmp_path)) for a in case.args]
    if "--db" not in args:
        args += ["--db", str(db)]
    done = run_script("saudit", *args, cwd=tmp_path)
    assert_refused(done, *case.says)
    assert_untouched(tmp_path, before)
    if case.script == "missing":
        assert not db.exists()


def test_a_payload_that_is_not_json_fails_verify_at_its_seq(tmp_path):
    """verify is the one reader for which an edited row is a finding, not a usage error: it
    exits 1 and names the seq (here the chain already breaks there: the hash no longer
    matches)."""
    db = prepare("not-json", tmp_path)
    done = run_script("saudit", "verify", "--db", str(db))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "FAILED at seq 3" in done.stdout


@pytest.mark.parametrize(
    "kind, says",
    [
        ("ts-text", "ts is 'x' (str)"),  # ts is not hashed: this check is its only guard
        ("ts-huge", "ts 9223372036854775807 lies outside"),
        ("kind-blob", "kind is b'bar'"),
        ("hash-not-hex", "hash is 'zz'"),
        ("too-deep", "hash does not match"),  # the chain breaks at the edited row first
        ("too-deep-rehashed", "nests deeper than 32"),  # rehashed: the replay parses it
    ],
)
def test_an_edited_column_fails_verify_at_its_seq(kind, says, tmp_path):
    """verify reports an edited row as a finding (exit 1, the seq named), never a traceback."""
    db = prepare(kind, tmp_path)
    done = run_script("saudit", "verify", "--db", str(db))
    assert done.returncode == 1, (done.stdout[-2000:], done.stderr[-2000:])
    assert "Traceback" not in done.stderr and done.stderr == ""
    assert "FAILED at seq 3" in done.stdout and says in done.stdout, done.stdout


def test_no_reader_adds_a_file_beside_a_finished_database(tmp_path):
    """The writer leaves a finished database as one file in rollback mode (header bytes 18-19
    are 1, 1 in the SQLite file format; WAL is 2, 2), so every reader, verify included, leaves
    the folder listing and every byte as they were: no -wal, no -shm."""
    db = make_db(tmp_path / "audit.db")
    assert db.read_bytes()[18:20] == b"\x01\x01"
    before = fingerprint(tmp_path)
    # summary needs a real run_end: test_saudit checks it on an audited strattest run
    for command in ("list", "signal-flow", "trades", "positions", "export"):
        done = run_script("saudit", command, "--db", str(db))
        assert done.returncode == 0, (command, done.stderr[-2000:])
    assert run_script("saudit", "verify", "--db", str(db)).returncode == 1  # not a real run
    assert fingerprint(tmp_path) == before


@pytest.fixture
def world_dir():
    """A folder user nobody can read (under /tmp, whose parents it can traverse); its numba
    cache folder is writable by nobody (imports compile nothing, but numba wants a locator)."""
    folder = Path(tempfile.mkdtemp(prefix="saudit-ro-", dir="/tmp"))
    folder.chmod(0o755)
    cache = folder / "numba"
    cache.mkdir()
    cache.chmod(0o777)
    probe = subprocess.run([*NOBODY, "true"], capture_output=True)
    if probe.returncode != 0:
        shutil.rmtree(folder)
        pytest.skip(f"cannot run as user nobody here: {probe.stderr.decode().strip()}")
    yield folder
    shutil.rmtree(folder)


def as_nobody(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(folder / "numba"), "HOME": str(folder)}
    return subprocess.run(
        [*NOBODY, script("saudit"), *args],
        capture_output=True,
        text=True,
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


def test_out_into_a_read_only_folder_is_refused(world_dir):
    data = world_dir / "data"
    data.mkdir()
    db = make_db(data / "audit.db")
    locked = world_dir / "locked"
    locked.mkdir()  # root's, 755: nobody cannot write into it
    before = fingerprint(data)
    done = as_nobody(world_dir, "export", "--db", str(db), "--out", str(locked / "events.jsonl"))
    assert_refused(done, "--out", "permission denied", str(locked))
    assert fingerprint(data) == before and not any(locked.iterdir())


@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_readers_work_in_a_read_only_folder_and_write_nothing(world_dir, mode):
    """In a folder the reader cannot write: a finished database (rollback mode) is read as it
    is; a WAL database with no -wal file (all commits merged: a database of an older sentio,
    or left in WAL by overlapping writers) is read through ``immutable=1``. Nothing created."""
    data = world_dir / "data"
    data.mkdir()
    db = make_db(data / "audit.db")
    if mode == "wal":
        with sqlite3.connect(db) as con:
            con.execute("PRAGMA journal_mode=WAL")
        con.close()  # the last connection: SQLite merges and removes the -wal and -shm
    header = {"delete": b"\x01\x01", "wal": b"\x02\x02"}[mode]  # the SQLite file format
    assert db.read_bytes()[18:20] == header and sorted(os.listdir(data)) == ["audit.db"]
    before = fingerprint(data)
    for command in (["list", "--json"], ["trades", "--max", "0"], ["export"]):
        done = as_nobody(world_dir, *command, "--db", str(db))
        assert done.returncode == 0, (command, done.stderr[-2000:])
    assert '"run_id": "r1"' in as_nobody(world_dir, "list", "--json", "--db", str(db)).stdout
    assert fingerprint(data) == before


def test_a_pending_write_ahead_log_in_a_read_only_folder_is_named(world_dir):
    """A -wal file holding commits (a writer still open, or killed) in a folder the reader
    cannot write: SQLite cannot open it read-only there; the message says so and what to do."""
    data = world_dir / "data"
    data.mkdir()
    db = data / "audit.db"
    writer = AuditStore(db)  # kept open: its commits stay in audit.db-wal
    writer.start_run("r1", {"seed": 7})
    writer.append("r1", [(0, "run_start", {"model": {}, "data": {}})])
    shutil.copy(db, world_dir / "copy.db")
    shutil.copy(f"{db}-wal", world_dir / "copy.db-wal")
    writer.close()
    (world_dir / "copy.db").chmod(0o644)
    (world_dir / "copy.db-wal").chmod(0o644)
    before = fingerprint(world_dir)
    done = as_nobody(world_dir, "list", "--db", str(world_dir / "copy.db"))
    assert_refused(done, "--db", "write-ahead log", "copy the folder")
    assert fingerprint(world_dir) == before
