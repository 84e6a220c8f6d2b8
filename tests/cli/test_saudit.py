"""``saudit`` as a user runs it (subprocesses): verify names the seq of a changed byte, a
deleted row, swapped rows, a rehashed forgery and a cut-off end; a killed run stays readable
and incomplete; signal-flow shows the newest rows and says so; export lets anyone recompute
the chain."""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import subprocess
import sys

import pytest

from sentio.audit import AuditStore, verify_run
from sentio.audit.store import chain_hash, genesis

pytest.importorskip("torch", reason="training the test artifact needs the train extra")


def sentio(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sentio", *args], capture_output=True, text=True, cwd=cwd
    )


def saudit(*args: str) -> subprocess.CompletedProcess:
    code = "from sentio.cli.app import saudit_main; saudit_main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def audited(tmp_path_factory, tiny_artifact):
    """3 audited in-sample blocks of the built-in market: (db, strattest's JSON report)."""
    tmp = tmp_path_factory.mktemp("saudit")
    db = tmp / "audit.db"
    done = sentio(
        "strattest", "tfa", "--model", str(tiny_artifact), "--blocks", "3",
        "--allow-in-sample", "--rule", "adaptive", "--no-cache", "--json", "--audit", str(db),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return db, json.loads(done.stdout)


def copy(db, tmp_path):
    out = tmp_path / "copy.db"
    with sqlite3.connect(db) as src, sqlite3.connect(out) as dst:
        src.backup(dst)
    return out


def rows(db, where="1"):
    with sqlite3.connect(db) as con:
        return con.execute(
            f"SELECT seq, ts, kind, payload, prev_hash, hash FROM events WHERE {where} ORDER BY seq"
        ).fetchall()


def test_an_untouched_run_verifies(audited):
    db, report = audited
    done = saudit("verify", "--db", str(db), "--json")
    verdict = json.loads(done.stdout)
    assert done.returncode == 0 and verdict["ok"], verdict
    assert verdict["run_id"] == report["audit"]["run_id"]
    assert verdict["checked"]["bars"] == 3 * 480 and verdict["checked"]["blocks"] == 3
    assert verdict["checked"]["parity"]["bars_differ"] == 0
    assert verdict["checked"]["decisions"] == 3 * 480 and verdict["unchecked"] == ""
    human = saudit("verify", "--db", str(db))
    assert human.returncode == 0 and "OK" in human.stdout and "NOT CHECKED" not in human.stdout


def test_a_finished_run_is_one_file_that_readers_leave_as_it_is(audited):
    """issue 12: the writer switches the database from WAL back to a rollback journal when the
    run ends (header bytes 18-19 are 1, 1 in the SQLite file format; WAL is 2, 2), so the
    folder holds the database alone and no reader adds a -wal or -shm or changes a byte."""
    db, _ = audited
    folder = db.parent
    assert sorted(p.name for p in folder.iterdir()) == ["audit.db"]
    assert db.read_bytes()[18:20] == b"\x01\x01"
    before = (db.read_bytes(), db.stat().st_mtime_ns)
    for command in ("list", "signal-flow", "trades", "positions", "summary", "export", "verify"):
        assert saudit(command, "--db", str(db)).returncode == 0, command
    assert sorted(p.name for p in folder.iterdir()) == ["audit.db"]
    assert (db.read_bytes(), db.stat().st_mtime_ns) == before


def test_a_changed_byte_is_named_by_its_seq(audited, tmp_path):
    db = copy(audited[0], tmp_path)
    seq, _, _, payload, _, _ = rows(db, "seq = 100")[0]
    at = payload.index('"equity":') + len('"equity":')
    digit = payload[at]
    changed = payload[:at] + ("1" if digit != "1" else "2") + payload[at + 1 :]
    with sqlite3.connect(db) as con:
        con.execute("UPDATE events SET payload = ? WHERE seq = 100", (changed,))
    done = saudit("verify", "--db", str(db))
    assert done.returncode == 1
    assert "seq 100" in done.stdout and "changed" in done.stdout


def test_a_deleted_row_and_swapped_rows_are_named(audited, tmp_path):
    db = copy(audited[0], tmp_path)
    with sqlite3.connect(db) as con:
        con.execute("DELETE FROM events WHERE seq = 200")
    done = saudit("verify", "--db", str(db), "--json")
    assert done.returncode == 1 and json.loads(done.stdout)["first_bad_seq"] == 200
    db = copy(audited[0], tmp_path / "..")
    (a, b) = rows(db, "seq IN (300, 301)")
    with sqlite3.connect(db) as con:
        for seq, row in ((300, b), (301, a)):
            con.execute(
                "UPDATE events SET ts = ?, kind = ?, payload = ?, prev_hash = ?, hash = ? "
                "WHERE seq = ?",
                (*row[1:], seq),
            )
    done = saudit("verify", "--db", str(db))
    assert done.returncode == 1 and "seq 300" in done.stdout


def test_a_rehashed_forgery_is_caught_by_the_replay(audited, tmp_path):
    """Someone changes a fill's price and recomputes every hash after it and the run's head:
    the chain is intact, but the cash the fill recorded no longer follows from it."""
    db = copy(audited[0], tmp_path)
    events = rows(db)
    fill = next(e for e in events if e[2] == "fill" and json.loads(e[3])["side"] == "buy")
    prev = events[fill[0] - 1][5] if fill[0] else genesis("")
    with sqlite3.connect(db) as con:
        for seq, ts, kind, payload, _, _ in events[fill[0] :]:
            if seq == fill[0]:
                doc = json.loads(payload)
                doc["price"] = round(doc["price"] * 0.99, 4)
                payload = json.dumps(doc, sort_keys=True, separators=(",", ":"))
            digest = chain_hash(prev, kind, ts, payload)
            con.execute(
                "UPDATE events SET payload = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (payload, prev, digest, seq),
            )
            prev = digest
        con.execute("UPDATE runs SET head = ?", (prev,))
    done = saudit("verify", "--db", str(db))
    assert done.returncode == 1
    assert f"seq {fill[0]}" in done.stdout and "cash" in done.stdout


def test_rows_cut_from_the_end_are_found(audited, tmp_path):
    db = copy(audited[0], tmp_path)
    last = rows(db)[-1][0]
    with sqlite3.connect(db) as con:
        con.execute("DELETE FROM events WHERE seq > ?", (last - 3,))
    done = saudit("verify", "--db", str(db))
    assert done.returncode == 1 and "not with its run_end" in done.stdout


def test_a_cut_tail_with_the_head_rewritten_fails(audited, tmp_path):
    """The attack of issue 12: delete the tail and write the last surviving hash as the head.
    The chain is intact and the head agrees, but a complete run must end with its run_end."""
    db = copy(audited[0], tmp_path)
    with sqlite3.connect(db) as con:
        con.execute("DELETE FROM events WHERE seq >= 1000")
        (head,) = con.execute("SELECT hash FROM events WHERE seq = 999").fetchone()
        con.execute("UPDATE runs SET head = ?", (head,))
    done = saudit("verify", "--db", str(db))
    assert done.returncode == 1
    assert "FAILED at seq 1000" in done.stdout and "seq 999" in done.stdout
    assert "not with its run_end" in done.stdout


def rewrite(db, seq: int, change) -> dict:
    """A forger's edit: ``change`` the payload at ``seq``, then recompute every later hash, the
    hash run_end names, the run's head and (for run_start) the runs table's copy, so that the
    chain is intact."""
    events = rows(db)
    (run_id,) = sqlite3.connect(db).execute("SELECT run_id FROM runs").fetchone()
    prev = events[seq - 1][5] if seq else genesis(run_id)
    with sqlite3.connect(db) as con:
        for at, ts, kind, payload, _, _ in events[seq:]:
            if at == seq:
                doc = json.loads(payload)
                change(doc)
                payload = json.dumps(doc, sort_keys=True, separators=(",", ":"))
                if seq == 0:
                    con.execute("UPDATE runs SET config = ?", (payload,))
                edited = doc
            if kind == "run_end":  # a thorough forger also rewrites the hash it names
                doc = json.loads(payload)
                doc["last_hash"] = prev
                payload = json.dumps(doc, sort_keys=True, separators=(",", ":"))
            digest = chain_hash(prev, kind, ts, payload)
            con.execute(
                "UPDATE events SET payload = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (payload, prev, digest, at),
            )
            prev = digest
        con.execute("UPDATE runs SET head = ?", (prev,))
    return edited


def a_bar(db, reason: str) -> tuple[int, dict]:
    """The seq and payload of the first bar with this reason and a probability."""
    for seq, _, _, payload, _, _ in rows(db, "kind = 'bar'"):
        doc = json.loads(payload)
        if doc["reason"] == reason and doc["p_seq"] is not None:
            return seq, doc
    raise AssertionError(f"no bar with reason {reason}")


def test_a_forged_reason_is_caught_by_replaying_the_decisions(audited, tmp_path):
    """The reason alone moves no money, so only the strategy's decide() can catch it."""
    db = copy(audited[0], tmp_path)
    seq, _ = a_bar(db, "inside_band")
    rewrite(db, seq, lambda doc: doc.update(reason="hold"))
    done = saudit("verify", "--db", str(db))
    assert done.returncode == 1
    assert f"FAILED at seq {seq}" in done.stdout and "decide()" in done.stdout


def test_a_forged_probability_is_caught_by_the_full_stream_rerun(audited, tmp_path):
    """p(seq) = p(stream) moved by 1e-9 on one bar (the paths still agree, the decision does
    not change, so the replay holds): the stream context on the recorded data gives the true
    probability, and --full re-runs every bar."""
    db = copy(audited[0], tmp_path)
    seq, doc = a_bar(db, "inside_band")
    p = doc["p_seq"] + 1e-9
    rewrite(db, seq, lambda d: d.update(p_seq=p, p_stream=p))
    replay_only = verify_run(AuditStore(db, create=False), stream=False)
    assert replay_only.ok, replay_only.problem  # the replay alone cannot see it
    done = saudit("verify", "--db", str(db), "--full")
    assert done.returncode == 1
    assert f"FAILED at seq {seq}" in done.stdout and "stream context" in done.stdout


def test_the_stream_rerun_is_seeded_and_full_covers_every_bar(audited):
    db = audited[0]
    verdict = json.loads(saudit("verify", "--db", str(db), "--json", "--seed", "5").stdout)
    assert verdict["ok"] and verdict["unchecked"] == ""
    stream = verdict["checked"]["stream"]
    # 3 blocks x 480 bars, plus the 250 probabilities the adaptive rule remembers from before
    # the first block (those of blocks 1 and 2 are recorded bars of the block before)
    assert stream == {"bars": 64, "of": 3 * 480 + 250, "mode": "seeded sample", "seed": 5}
    assert verdict["checked"]["decisions"] == 3 * 480
    full = json.loads(saudit("verify", "--db", str(db), "--json", "--full").stdout)
    assert full["ok"] and full["checked"]["stream"]["bars"] == 3 * 480 + 250


def test_an_absent_data_file_is_said_not_checked(audited, tmp_path):
    db = copy(audited[0], tmp_path)
    missing = str(tmp_path / "gone.parquet")

    def elsewhere(doc):
        doc["data"]["files"] = [{"path": missing, "sha256": "0" * 64}]

    rewrite(db, 0, elsewhere)
    done = saudit("verify", "--db", str(db))
    assert done.returncode == 3, done.stdout
    assert "OK" in done.stdout
    assert f"NOT CHECKED: stream re-run not checked: data file {missing} absent" in done.stdout


def test_list_shows_the_chained_run_start_not_the_runs_table(audited, tmp_path):
    """runs.config is outside the chain: an edit there changes nothing saudit shows, and
    verify names it."""
    db = copy(audited[0], tmp_path)
    with sqlite3.connect(db) as con:
        (config,) = con.execute("SELECT config FROM runs").fetchone()
        forged = json.loads(config)
        forged["model"]["path"] = "/somewhere/else"
        con.execute("UPDATE runs SET config = ?", (json.dumps(forged),))
    listed = json.loads(saudit("list", "--db", str(db), "--json").stdout)
    start = json.loads(rows(db, "seq = 0")[0][3])
    assert listed[0]["model"] == start["model"]["path"] != "/somewhere/else"
    done = saudit("verify", "--db", str(db))
    assert done.returncode == 1 and "runs table" in done.stdout


KILLER = """
import os, signal, sys
from pathlib import Path
from sentio.audit import AuditStore, audited_strattest
from sentio.backtest.strattest import StrattestConfig, historical_plan

config = StrattestConfig(model=Path(sys.argv[1]), blocks=3, allow_in_sample=True, cache_dir=None)

def progress(stage, done, total):
    if stage == "audit" and done == 2:  # two of three blocks written
        os.kill(os.getpid(), signal.SIGKILL)

audited_strattest(historical_plan(config), AuditStore(sys.argv[2]), progress=progress)
"""


def test_a_killed_run_is_readable_and_marked_incomplete(tmp_path, tiny_artifact):
    db = tmp_path / "killed.db"
    done = subprocess.run(
        [sys.executable, "-c", KILLER, str(tiny_artifact), str(db)], capture_output=True
    )
    assert done.returncode == -signal.SIGKILL
    listed = json.loads(saudit("list", "--db", str(db), "--json").stdout)
    assert [r["status"] for r in listed] == ["incomplete"]
    flow = saudit("signal-flow", "--db", str(db), "--max", "5", "--json")
    assert flow.returncode == 0
    assert "newest 5 of 960 bars" in json.loads(flow.stdout)["header"]
    verdict = saudit("verify", "--db", str(db), "--json")
    doc = json.loads(verdict.stdout)
    assert verdict.returncode == 1 and "incomplete" in doc["problem"]
    assert doc["first_bad_seq"] == doc["events"]  # the chain itself is intact
    # marked complete by hand, with the last hash as its head: still no run_end
    with sqlite3.connect(db) as con:
        (head,) = con.execute("SELECT hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        con.execute("UPDATE runs SET status = 'complete', head = ?", (head,))
    forged = saudit("verify", "--db", str(db))
    assert forged.returncode == 1 and "killed run was marked complete" in forged.stdout


def test_signal_flow_shows_the_newest_rows_and_says_which(audited):
    db = audited[0]
    bars = [r[1] for r in rows(db, "kind = 'bar'")]
    newest = json.loads(saudit("signal-flow", "--db", str(db), "--max", "4", "--json").stdout)
    assert newest["header"].startswith(f"signal flow of run {audited[1]['audit']['run_id']}")
    assert "the newest 4 of 1440 bars" in newest["header"]
    assert [r["ts"] for r in newest["rows"]] == bars[-4:]
    oldest = json.loads(
        saudit("signal-flow", "--db", str(db), "--max", "4", "--oldest", "--json").stdout
    )
    assert "the oldest 4 of 1440" in oldest["header"]
    assert [r["ts"] for r in oldest["rows"]] == bars[:4]
    traded = {r[1] for r in rows(db, "kind IN ('order', 'fill')")}
    trades = json.loads(
        saudit("signal-flow", "--db", str(db), "--max", "0", "--trades-only", "--json").stdout
    )
    assert {r["ts"] for r in trades["rows"]} == traded and traded
    table = saudit("signal-flow", "--db", str(db), "--max", "3")
    for column in ("p(seq)", "p(stream)", "diff", "signal", "reason", "equity"):
        assert column in table.stdout, column


def test_since_filters_by_new_york_time(audited):
    import pandas as pd

    db = audited[0]
    bars = [r[1] for r in rows(db, "kind = 'bar'")]
    cut = bars[700]
    local = pd.Timestamp(cut, tz="UTC").tz_convert("America/New_York").strftime("%Y-%m-%d %H:%M")
    shown = json.loads(
        saudit("signal-flow", "--db", str(db), "--since", local, "--max", "0", "--json").stdout
    )
    assert [r["ts"] for r in shown["rows"]] == bars[700:]
    assert f"since {local} New York" in shown["header"]


def test_export_lets_anyone_recompute_the_chain(audited, tmp_path):
    db, report = audited
    out = tmp_path / "events.jsonl"
    done = saudit("export", "--db", str(db), "--format", "jsonl", "--out", str(out))
    assert done.returncode == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    prev = genesis(report["audit"]["run_id"])
    for line in lines:  # hashlib only: sha256(prev_hash + kind + "|" + ts + "|" + payload)
        assert line["prev_hash"] == prev
        text = f"{prev}{line['kind']}|{line['ts']}|{line['payload_canonical']}"
        assert hashlib.sha256(text.encode()).hexdigest() == line["hash"]
        prev = line["hash"]
    assert prev == report["audit"]["head"] and len(lines) == report["audit"]["events"]
    csv_out = tmp_path / "events.csv"
    assert (
        saudit("export", "--db", str(db), "--format", "csv", "--out", str(csv_out)).returncode == 0
    )
    assert len(csv_out.read_text().splitlines()) == len(lines) + 1


def test_summary_trades_positions_and_list(audited):
    db, report = audited
    summary = json.loads(saudit("summary", "--db", str(db), "--json").stdout)
    assert summary["summary"]["strategy"]["fees"] == pytest.approx(
        report["summary"]["strategy"]["fees"], abs=5e-3
    )
    assert summary["parity"]["bars_differ"] == 0 and len(summary["blocks"]) == 3
    trades = json.loads(saudit("trades", "--db", str(db), "--max", "0", "--json").stdout)
    assert len(trades["rows"]) == len(rows(db, "kind = 'fill'"))
    positions = json.loads(saudit("positions", "--db", str(db), "--max", "0", "--json").stdout)
    assert positions["rows"] and all("equity" in r for r in positions["rows"])
    listed = json.loads(saudit("list", "--db", str(db), "--json").stdout)
    assert listed[0]["status"] == "complete" and listed[0]["head"] == report["audit"]["head"]
    for command in ("summary", "trades", "positions", "list", "signal-flow"):
        done = saudit(command, "--db", str(db))
        assert done.returncode == 0, command
        # one time zone (New York) and no Python reprs in human-readable output (issue 12)
        for sign in ("+00:00", "{'", "['", "T1", "T2"):
            assert sign not in done.stdout, (command, sign)


def test_bad_use_is_a_message_not_a_traceback(tmp_path, tiny_artifact, audited):
    missing = tmp_path / "nope.db"
    done = saudit("list", "--db", str(missing))
    assert done.returncode == 2 and "no audit database" in done.stderr
    assert "Traceback" not in done.stderr and not missing.exists()
    done = saudit("signal-flow", "--db", str(audited[0]), "--since", "yesterday-ish")
    assert done.returncode == 2 and "--since" in done.stderr and "Traceback" not in done.stderr
    done = saudit("verify", "--db", str(audited[0]), "--run", "st-nope")
    assert done.returncode == 2 and "no run 'st-nope'" in done.stderr
    done = sentio(
        "strattest", "tfa", "--model", str(tiny_artifact), "--mode", "simulation",
        "--audit", str(tmp_path / "a.db"),
    )  # fmt: skip
    assert done.returncode == 2 and "--audit" in done.stderr and "historical" in done.stderr
