"""``sentio runs list|show|compare`` against the runs' own files: a trained artifact, a real
audited strattest (its --out folder and its audit database), planted walk-forward and sweep
documents, and entries that cannot be read. Every expected value is read from the run's files
(or the audit database, with sqlite3) by the test itself."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sentio.cli.app import app
from sentio.runs.catalog import read_ref
from sentio.runs.run import RunsError
from tests.cli.badinput import assert_refused, run_script
from tests.runs.built import strattest_run, sweep_doc, walkforward_doc, write_json


def sentio(*args: str) -> dict | str:
    """``sentio ARGS`` in this process; the parsed JSON with --json, else the text."""
    done = CliRunner().invoke(app, list(args))
    assert done.exit_code == 0, (done.output, done.exception)
    return json.loads(done.output) if "--json" in args else done.output


def recorded(db: Path, kind: str) -> tuple[str, dict]:
    """(runs.started_at, the payload of the run's ``kind`` event), read with sqlite3."""
    con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        started = con.execute("SELECT started_at FROM runs").fetchone()[0]
        payload = con.execute("SELECT payload FROM events WHERE kind = ?", (kind,)).fetchone()[0]
    finally:
        con.close()
    return started, json.loads(payload)


def snapshot(root: Path) -> dict:
    """Every file under root: bytes' sha256, size and modification time."""
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def tree(tiny_artifact, tmp_path_factory) -> tuple[Path, dict]:
    """A folder of runs as a user would have: artifacts/tfa, st/, audit.db, a walk-forward and
    a sweep folder, and a few things that are not readable runs."""
    built, document = strattest_run(tmp_path_factory, tiny_artifact)
    root = tmp_path_factory.mktemp("tree")
    shutil.copytree(tiny_artifact, root / "artifacts" / "tfa")
    shutil.copytree(built / "st", root / "st")
    shutil.copy(built / "audit.db", root / "audit.db")
    write_json(root / "wf" / "walkforward.json", walkforward_doc())
    write_json(root / "sweeps" / "s1" / "sweep.json", sweep_doc())
    (root / "broken").mkdir()
    (root / "broken" / "summary.json").write_text("{oops")
    write_json(root / "old" / "model.meta.json", {"config": {}})  # lacks every other key
    (root / "junk.db").write_bytes(b"SQLite format 3\x00" + b"\x07" * 200)
    other = sqlite3.connect(root / "other.sqlite")
    other.execute("CREATE TABLE t (x)")
    other.commit()
    other.close()
    return root, document


def test_list_finds_every_run_with_its_own_numbers(tree):
    root, document = tree
    doc = sentio("runs", "list", str(root), "--json")
    runs = {r["ref"]: r for r in doc["runs"]}
    art = root / "artifacts" / "tfa"
    meta = json.loads((art / "model.meta.json").read_text())
    edge = json.loads((art / "metrics.json").read_text())["edge"]
    model = runs[str(art)]
    assert (model["kind"], model["when"]) == ("model", meta["saved_at"])
    assert (model["auc"], model["edge"]) == (edge["auc"], edge["verdict"])

    summary = json.loads((root / "st" / "summary.json").read_text())
    st = runs[str(root / "st")]
    assert st["kind"] == "strattest" and st["when"] is None  # summary.json records no time
    assert st["net_mean_pct"] == summary["summary"]["strategy"]["mean_rpb_pct"]
    assert st["verdict"] == summary["verdict"]["kind"] == document["verdict"]["kind"]

    started, end = recorded(root / "audit.db", "run_end")
    (audit,) = [r for r in doc["runs"] if r["kind"] == "audit/strattest"]
    assert audit["ref"] == f"{root / 'audit.db'}#{document['audit']['run_id']}"
    assert audit["when"] == started
    assert audit["net_mean_pct"] == end["summary"]["strategy"]["mean_rpb_pct"]
    # the verdict recomputed from the audit's own events is the one strattest printed
    assert audit["verdict"] == document["verdict"]["kind"]

    wf, sweep = runs[str(root / "wf")], runs[str(root / "sweeps" / "s1")]
    assert (wf["auc"], wf["net_mean_pct"], wf["verdict"]) == (0.51, -0.15, "no edge")
    assert (sweep["auc"], sweep["net_mean_pct"]) == (0.52, 0.05)

    assert len(doc["runs"]) == 5  # the other SQLite file is no audit and not listed
    unreadable = {p["path"]: p["reason"] for p in doc["unreadable"]}
    assert set(unreadable) == {str(root / n) for n in ("broken", "old", "junk.db")}
    assert "summary.json" in unreadable[str(root / "broken")]
    assert "model.meta.json" in unreadable[str(root / "old")]

    table = sentio("runs", "list", str(root))
    assert table.count("unreadable: ") == 3 and "audit/strattest" in table


def test_show_reads_config_hashes_and_numbers_from_the_files(tree):
    root, document = tree
    summary = json.loads((root / "st" / "summary.json").read_text())
    shown = sentio("runs", "show", str(root / "st" / "summary.json"), "--json")
    assert shown["config"]["strategy.rule"] == "adaptive"
    assert shown["config"]["blocks"] == 2 and shown["config"]["costs.commission_min"] == 1.0
    figures = shown["numbers"]
    assert figures["strategy.mean_rpb_pct"] == summary["summary"]["strategy"]["mean_rpb_pct"]
    assert figures["strategy.rpb_ci95_pct.low"] == summary["summary"]["strategy"]["rpb_ci95_pct"][0]
    assert figures["costs.strategy.spread"] == summary["costs"]["strategy"]["spread"]
    digest = hashlib.sha256((root / "st" / "summary.json").read_bytes()).hexdigest()
    assert shown["hashes"]["summary.json"] == digest
    assert shown["hashes"]["audit.head"] == document["audit"]["head"]

    art = root / "artifacts" / "tfa"
    model = sentio("runs", "show", str(art), "--json")
    manifest = hashlib.sha256((art / "manifest.json").read_bytes()).hexdigest()
    _, start = recorded(root / "audit.db", "run_start")
    assert model["hashes"]["manifest"] == manifest == start["model"]["manifest_hash"]
    history = json.loads((art / "metrics.json").read_text())["history"]
    assert model["numbers"]["epochs_run"] == len(history)
    assert model["config"]["model.d_model"] == 16 and model["config"]["label.horizon_bars"] == 3

    run = sentio("runs", "show", str(root / "audit.db"), "--json")  # its newest (only) run
    assert run["run_id"] == document["audit"]["run_id"]
    assert run["hashes"]["head"] == document["audit"]["head"]
    assert run["numbers"]["parity.bars_differ"] == 0
    text = sentio("runs", "show", run["ref"])
    assert "parity.bars" in text and document["audit"]["run_id"] in text


def test_compare_marks_the_config_values_that_differ(tree, tmp_path):
    root, _ = tree
    summary = json.loads((root / "st" / "summary.json").read_text())
    summary["config"]["capital"] = 50_000.0
    write_json(tmp_path / "st2" / "summary.json", summary)
    refs = [str(root / "st"), str(tmp_path / "st2"), str(root / "audit.db")]
    doc = sentio("runs", "compare", *refs, "--json")
    rows = {(r["section"], r["field"]): r for r in doc["rows"]}
    assert rows["config", "capital"]["values"] == [100_000.0, 50_000.0, 100_000.0]
    assert rows["config", "capital"]["differs"]
    assert not rows["config", "strategy.rule"]["differs"]
    mean = summary["summary"]["strategy"]["mean_rpb_pct"]
    assert rows["numbers", "strategy.mean_rpb_pct"]["values"] == [mean] * 3
    assert rows["config", "command"]["values"] == [None, None, "strattest"]

    only = sentio("runs", "compare", *refs[:2], "--differences", "--json")
    assert {r["field"] for r in only["rows"] if r["section"] == "config"} == {"capital"}
    table = sentio("runs", "compare", *refs[:2])
    (line,) = [x for x in table.splitlines() if " capital " in x]
    assert "*" in line and "100000" in line and "50000" in line


def test_reading_never_writes(tree, tmp_path):
    """No byte, no modification time, no new file: not beside an audit database in WAL mode
    either (opened immutable), and one whose -wal file is still there is reported unread."""
    root, _ = tree
    wal = tmp_path / "wal"
    wal.mkdir()
    shutil.copy(root / "audit.db", wal / "merged.db")
    con = sqlite3.connect(wal / "merged.db")
    assert con.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    con.close()  # the last connection merges the log and removes -wal: WAL mode, one file
    shutil.copy(wal / "merged.db", wal / "live.db")
    (wal / "live.db-wal").write_bytes(b"")
    shutil.copytree(root, tmp_path / "tree")
    before = snapshot(tmp_path)
    doc = sentio("runs", "list", str(tmp_path), "--json")
    sentio("runs", "show", str(wal / "merged.db"))
    sentio("runs", "compare", str(tmp_path / "tree" / "st"), str(wal / "merged.db"), "--json")
    assert snapshot(tmp_path) == before
    assert f"{wal / 'merged.db'}#" in " ".join(r["ref"] for r in doc["runs"])
    (problem,) = [p for p in doc["unreadable"] if p["path"] == str(wal / "live.db")]
    assert "write-ahead log" in problem["reason"]


def test_an_edited_audit_row_is_one_line_for_its_run(tree, tmp_path):
    db = tmp_path / "edited.db"
    shutil.copy(tree[0] / "audit.db", db)
    con = sqlite3.connect(db)
    con.execute("UPDATE events SET payload = '{oops' WHERE seq = 0")
    con.commit()
    con.close()
    doc = sentio("runs", "list", str(tmp_path), "--json")
    assert doc["runs"] == []
    (problem,) = doc["unreadable"]
    assert problem["path"].startswith(f"{db}#st-") and "not JSON" in problem["reason"]


def test_a_bad_ref_is_one_line_naming_it(tree, tmp_path):
    """Through the console script: exit 2, one error line naming the REF; a run id that the
    database lacks names the runs it holds (in this process: the same RunsError path)."""
    missing = tmp_path / "nowhere"
    done = run_script("sentio", "runs", "compare", str(tree[0] / "st"), str(missing))
    assert_refused(done, str(missing))
    db = tree[0] / "audit.db"
    with pytest.raises(RunsError, match=r"no run 'st-nope' .* \(runs: 'st-"):
        read_ref(f"{db}#st-nope")
    with pytest.raises(RunsError, match="not a run folder"):
        read_ref(str(tmp_path))
