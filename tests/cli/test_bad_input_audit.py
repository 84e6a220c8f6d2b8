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
from tests.cli.badinput import Case, assert_refused, run_script, script

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def make_db(path: Path) -> Path:
    """A valid audit database: one complete run of a run_start, 5 bar events and a run_end."""
    store = AuditStore(path)
    store.start_run("r1", {"seed": 7})
    start = {"model": {"path": "m"}, "data": {"files": []}, "blocks_run": 1}
    bars = [(60 * i, "bar", {"block": 0, "p_seq": 0.5, "p_stream": 0.5}) for i in range(5)]
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
        con.close()
    return db


def fingerprint(folder: Path) -> dict:
    """Every file of the folder with its bytes and modification time."""
    return {
        p.name: (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def assert_untouched(folder: Path, before: dict) -> None:
    """The files are as they were. The one thing a read may add is what SQLite itself makes to
    read a WAL database alongside writers (sqlite.org/wal.html): an -shm index and an EMPTY
    -wal (no page of the database written)."""
    after = fingerprint(folder)
    for name, was in before.items():
        assert after.get(name) == was, f"{name} changed"
    added = set(after) - set(before)
    assert added <= {"audit.db-shm", "audit.db-wal"}, added
    assert after.get("audit.db-wal", (b"",))[0] == b""


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
    if case.script in ("text", "empty", "unrelated"):  # not WAL: not even a side file
        assert fingerprint(tmp_path) == before
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


def test_readers_work_in_a_read_only_folder_and_write_nothing(world_dir):
    """A WAL database in a folder the reader cannot write, with no -wal file (all commits
    merged when the writer closed): read through ``immutable=1``, nothing created."""
    data = world_dir / "data"
    data.mkdir()
    db = make_db(data / "audit.db")
    assert db.read_bytes()[18:20] == b"\x02\x02"  # the header says WAL (sqlite file format)
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
