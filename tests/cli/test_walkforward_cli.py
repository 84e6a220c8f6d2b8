"""``sentio strattest tfa --mode walk-forward`` end to end through the real console script, with
its audit: the JSON document agrees with the files it wrote, the audited chain verifies with
``saudit verify``, holds one swap event per change of model, and a forger who changes a swap's
thresholds (rehashing the chain) is caught by the decision replay.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch", reason="torch is a train extra")

from tests.cli.badinput import run_script  # noqa: E402
from tests.cli.test_saudit import rewrite, rows  # noqa: E402

TINY = [
    "--data", "builtin", "--builtin-days", "30", "--signal-strength", "0.3",
    "--signal-flip-every", "8", "--train-window", "5d", "--retrain-every", "3d",
    "--shadow-sessions", "1", "--epochs", "1", "--sequence-length", "16", "--d-model", "16",
    "--nhead", "2", "--num-layers", "1", "--horizon", "1", "--label-deadzone-bp", "0",
    "--feature-spec", "intraday_default",
]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wfcli")
    args = ["strattest", "tfa", "--mode", "walk-forward", *TINY, "--out", str(tmp / "run"),
            "--audit", str(tmp / "audit.db"), "--json"]  # fmt: skip
    done = run_script("sentio", *args, cwd=tmp)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    return tmp, json.loads(done.stdout)


def test_the_document_is_the_report_on_disk(run):
    tmp, document = run
    written = json.loads((tmp / "run" / "walkforward.json").read_text())
    assert {k: v for k, v in document.items() if k not in ("out", "audit")} == written
    assert len(written["folds"]) == len(written["schedule"]) >= 3
    for fold in written["folds"]:
        assert (tmp / "run" / fold["candidate"] / "manifest.json").is_file()
    sessions = (tmp / "run" / "sessions.csv").read_text().splitlines()
    assert len(sessions) - 1 == written["sessions"]


def test_the_audit_verifies_and_holds_every_swap(run):
    tmp, document = run
    db = tmp / "audit.db"
    done = run_script("saudit", "verify", "--db", str(db), "--full")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK" in done.stdout
    events = rows(db)
    swaps = [json.loads(e[3]) for e in events if e[2] == "swap"]
    changes = [f["active"] for f in document["folds"]]
    expected = sum(1 for a, b in zip(changes, changes[1:], strict=False) if a != b)
    assert len(swaps) == expected
    for swap in swaps:
        fold = document["folds"][swap["fold"]]
        assert swap["version"] == fold["candidate"] and swap["gate"]["promote"]
        assert swap["to_manifest"] == fold["candidate_manifest_sha256"]


def test_a_forged_swap_is_caught(run, tmp_path):
    tmp, _ = run
    db = tmp_path / "audit.db"
    db.write_bytes((tmp / "audit.db").read_bytes())
    seq = next(e[0] for e in rows(db) if e[2] == "swap")

    def change(doc):  # a swapped-in model that would never trade
        doc["thresholds"] = {**doc["thresholds"], "long": 2.0, "short": -1.0}

    rewrite(db, seq, change)
    done = run_script("saudit", "verify", "--db", str(db))
    assert done.returncode == 1, done.stdout
    assert "decide()" in done.stdout or "thresholds" in done.stdout
