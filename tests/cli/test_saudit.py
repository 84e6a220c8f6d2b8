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
    human = saudit("verify", "--db", str(db))
    assert human.returncode == 0 and "OK" in human.stdout


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
        for seq, _, kind, payload, _, _ in events[fill[0] :]:
            if seq == fill[0]:
                doc = json.loads(payload)
                doc["price"] = round(doc["price"] * 0.99, 4)
                payload = json.dumps(doc, sort_keys=True, separators=(",", ":"))
            digest = chain_hash(prev, kind, payload)
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
    assert done.returncode == 1 and "removed from the end" in done.stdout


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
    for line in lines:  # hashlib only: sha256(prev_hash + kind + payload)
        assert line["prev_hash"] == prev
        text = prev + line["kind"] + line["payload_canonical"]
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
    for command in ("summary", "trades", "positions", "list"):
        assert saudit(command, "--db", str(db)).returncode == 0, command


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
    assert done.returncode == 2 and "--audit records historical runs" in done.stderr
