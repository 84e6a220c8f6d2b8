"""Bad-input attack on issue 17's commands: ``sentio report --run DIR | --audit DB [--run ID]
--out FILE``, ``sentio runs list|show|compare`` and the MLflow helpers of
``sentio.runs.tracking``.

Every user error must exit 2 with one ``error:`` line naming the flag, file or field, write
nothing on an input, and a reading command must leave nothing behind. Each defect class the
attack found (each was a strict xfail until fixed) has its test below: a hand-edited run file
whose field has the wrong type (a Traceback when the page was drawn), ``--out`` onto the
model the report replays, the ``-wal``/``-shm`` files a refused ``report --audit`` left
beside the database, messages that named a flag ``report`` does not have or a folder for an
empty ``--run``, a zero-block run drawn as a report, and tracking URIs or stores that
escaped as raw Python exceptions. The rest of each class (every field and rule the report's
readers check, ``sentio.report.checks``) is checked in-process: the CLI prints the same
OptionError as one line.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.cli.badinput import assert_refused, run_script


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def run(tiny_artifact, tmp_path_factory) -> dict[str, Path]:
    """A one-block strattest run folder and its audit, made from a private copy of the tiny
    artifact (a defect below overwrites a model file: never the shared one)."""
    root = tmp_path_factory.mktemp("attack17")
    model = root / "model"
    shutil.copytree(tiny_artifact, model)
    done = run_script(
        "sentio", "strattest", "--model", str(model), "--blocks", "1", "--rule", "adaptive",
        "--out", str(root / "run"), "--audit", str(root / "a.db"), "--no-cache", cwd=root,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return {"root": root, "model": model, "run": root / "run", "db": root / "a.db"}


def edited_run(run: dict, folder: Path, change) -> Path:
    """A copy of the run folder with ``change(summary)`` applied to its summary.json."""
    out = folder / "run"
    shutil.copytree(run["run"], out)
    doc = json.loads((out / "summary.json").read_text())
    change(doc)
    (out / "summary.json").write_text(json.dumps(doc))
    return out


def walk_forward(folder: Path, change) -> Path:
    """A hand-made walk-forward run folder (docs/walkforward.md) with ``change(doc)`` applied
    to walkforward.json; the unchanged folder is reported (tests/report/test_report_data.py)."""
    folder.mkdir()
    pd.DataFrame(
        {
            "date": ["2024-01-02", "2024-01-03"],
            "walk_forward_return_pct": [0.5, -1.0],
            "single_return_pct": [0.1, 0.2],
            "buy_and_hold_return_pct": [1.0, -2.0],
            "walk_forward_costs": [10.0, 12.0],
            "walk_forward_turnover": [3.0, 4.0],
        }
    ).to_csv(folder / "sessions.csv", index=False)
    figures = {"blocks": 2, "mean_rpb_pct": -0.25, "rpb_ci95_pct": [-1.0, 0.5], "days": 2}
    doc = {
        "config": {
            "strattest": {"capital": 50_000.0, "fill": "next-open"},
            "policy": {"train_window": 6, "shadow_sessions": 1, "retrain_every": 2},
        },
        "folds": [{"fold": 0, "promoted": True, "gate_reason": "ok", "oos": {"auc": 0.5}}],
        "summary": {"walk_forward": figures, "buy_and_hold_qqq": figures},
        "costs": {"walk_forward": {"costs": 22.0}},
        "verdict": {"text": "verdict: too few", "mean_pct": -0.25, "ci95_pct": [-1.0, 0.5]},
    }
    change(doc)
    (folder / "walkforward.json").write_text(json.dumps(doc))
    return folder


# --- the defects the attack found ---------------------------------------------------------------

SUMMARY_TYPES = [  # summary.json fields that pass reading and crash drawing the page
    ("strategy_string", lambda d: d["config"].__setitem__("strategy", "x")),  # thresholds_of
    ("verdict_interval_string", lambda d: d["verdict"].__setitem__("ci95_pct", "x")),  # figures
]


@pytest.mark.parametrize("change", [c[1] for c in SUMMARY_TYPES], ids=[c[0] for c in SUMMARY_TYPES])
def test_report_a_hand_edited_summary_of_the_wrong_type(run, tmp_path, change):
    folder = edited_run(run, tmp_path, change)
    out = tmp_path / "r.html"
    done = run_script("sentio", "report", "--run", str(folder), "--out", str(out))
    assert_refused(done, "--run", "summary.json")
    assert not out.exists()


WALK_TYPES = [
    ("summary_string", lambda d: d.__setitem__("summary", "x")),
    ("out_of_sample_string", lambda d: d.__setitem__("out_of_sample", "x")),
]


@pytest.mark.parametrize("change", [c[1] for c in WALK_TYPES], ids=[c[0] for c in WALK_TYPES])
def test_report_a_hand_edited_walk_forward_of_the_wrong_type(tmp_path, change):
    folder = walk_forward(tmp_path / "wf", change)
    out = tmp_path / "r.html"
    done = run_script("sentio", "report", "--run", str(folder), "--out", str(out))
    assert_refused(done, "--run", "walkforward.json")
    assert not out.exists()


def test_report_out_onto_the_model_it_replays(run, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(run["model"], model)
    folder = edited_run(run, tmp_path, lambda d: d.__setitem__("model", str(model)))
    target = model / "model.meta.json"
    before = sha(target)
    done = run_script("sentio", "report", "--run", str(folder), "--out", str(target))
    assert sha(target) == before, "the model's model.meta.json was replaced by the HTML page"
    assert_refused(done, "--out", "model.meta.json")


def test_report_of_an_audit_without_runs_writes_nothing(tmp_path):
    from sentio.audit import AuditStore

    db = tmp_path / "empty.db"
    AuditStore(db).db.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]
    done = run_script("sentio", "report", "--audit", str(db), "--out", str(tmp_path / "r.html"))
    assert_refused(done, "--audit", "no runs")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]


def test_report_of_a_missing_audit_names_reports_own_flag(tmp_path):
    done = run_script(
        "sentio", "report", "--audit", str(tmp_path / "none.db"), "--out", str(tmp_path / "r.html")
    )
    message = assert_refused(done, "--audit", "none.db")
    assert "--db" not in message, message


def test_report_audit_with_an_empty_run_id(run, tmp_path):
    done = run_script(
        "sentio", "report", "--audit", str(run["db"]), "--run", "", "--out",
        str(tmp_path / "r.html"),
    )  # fmt: skip
    message = assert_refused(done, "--run")
    assert "is a folder" not in message and "empty" in message, message


def test_report_of_a_run_with_its_blocks_emptied(run, tmp_path):
    folder = edited_run(run, tmp_path, lambda d: None)
    blocks = pd.read_parquet(folder / "blocks.parquet")
    blocks.iloc[:0].to_parquet(folder / "blocks.parquet")
    out = tmp_path / "r.html"
    done = run_script("sentio", "report", "--run", str(folder), "--out", str(out))
    assert_refused(done, "--run", "blocks.parquet")
    assert not out.exists()


TRACKING_URIS = [  # a --track (or SENTIO_MLFLOW_TRACKING_URI) value: a raw exception today
    ("unclosed_ipv6", "https://[::1"),  # ValueError: Invalid IPv6 URL
    ("unknown_user_home", "~no-such-user-attack17/mlruns"),  # RuntimeError from expanduser
]


@pytest.mark.parametrize("uri", [c[1] for c in TRACKING_URIS], ids=[c[0] for c in TRACKING_URIS])
def test_tracking_uri_refuses_with_one_line(uri):
    from sentio.core.errors import OptionError
    from sentio.runs.tracking import tracking_uri

    with pytest.raises(OptionError, match="--track"):
        tracking_uri(uri)


def test_logging_to_a_corrupt_file_store_is_a_tracking_error(tmp_path):
    pytest.importorskip("mlflow", reason="experiment tracking needs the extra sentio[mlflow]")
    from sentio.runs.tracking import TrackingError, log_backtest, tracking_uri

    store = tmp_path / "mlruns"
    (store / "0").mkdir(parents=True)
    (store / "0" / "meta.yaml").write_text(":::garbage\n")
    summary = {"config": {"capital": 1.0}, "blocks": [], "summary": {}, "verdict": {}}
    with pytest.raises(TrackingError, match="mlruns"):
        log_backtest(tracking_uri(str(store)), summary, kind="strattest")


# --- the rest of each class, in-process: every field and rule the readers check -------------


def _set(path: str, value):
    """A change to a JSON document: ``path`` (dotted) set to ``value``."""

    def change(doc: dict) -> None:
        *parents, last = path.split(".")
        for key in parents:
            doc = doc[key]
        doc[last] = value

    return change


def _table(name: str, column: str, value):
    """A change to a run folder's Parquet table: ``column`` of its first row set to
    ``value`` (None: the column dropped)."""

    def change(folder: Path) -> None:
        table = pd.read_parquet(folder / name)
        if value is None:
            table = table.drop(columns=column)
        else:  # text makes the column text; a float, floats; a whole number keeps it whole
            if not isinstance(value, int):
                table[column] = table[column].astype(object if isinstance(value, str) else float)
            table.loc[0, column] = value
        table.to_parquet(folder / name)

    return change


RUN_EDITS = [  # (id, change of the copied run folder, file and field the line must name)
    ("summary-string", lambda f: _json(f, _set("summary", "x")), "summary.json", "summary"),
    ("costs-string", lambda f: _json(f, _set("costs", "x")), "summary.json", "costs"),
    ("verdict-string", lambda f: _json(f, _set("verdict", "x")), "summary.json", "verdict"),
    ("figure-object", lambda f: _json(f, _set("summary.strategy.sharpe", {})), "summary.json",
     "summary.strategy.sharpe"),
    ("verdict-mean-text", lambda f: _json(f, _set("verdict.mean_pct", "x")), "summary.json",
     "verdict.mean_pct"),
    ("capital-zero", lambda f: _json(f, _set("config.capital", 0)), "summary.json",
     "config.capital"),
    ("capital-missing", lambda f: _json(f, lambda d: d["config"].pop("capital")), "summary.json",
     "config.capital"),
    ("model-number", lambda f: _json(f, _set("model", 3)), "summary.json", "model"),
    ("regimes-list", lambda f: _json(f, _set("by_regime", {"regimes": {"calm": []}})),
     "summary.json", "by_regime.regimes.calm"),
    ("return-text", _table("blocks.parquet", "return_pct", "x"), "blocks.parquet", "return_pct"),
    ("return-missing", _table("blocks.parquet", "return_pct", None), "blocks.parquet",
     "return_pct"),
    ("return-nan", _table("blocks.parquet", "return_pct", np.nan), "blocks.parquet",
     "return_pct"),
    ("return-inf", _table("blocks.parquet", "return_pct", np.inf), "blocks.parquet",
     "return_pct"),
    ("hold-inf", _table("blocks.parquet", "buy_and_hold_return_pct", -np.inf), "blocks.parquet",
     "buy_and_hold_return_pct"),
    ("equity-nan", _table("bars.parquet", "equity", np.nan), "bars.parquet", "equity"),
    ("equity-zero", _table("bars.parquet", "equity", 0.0), "bars.parquet", "equity"),
    ("equity-negative", _table("bars.parquet", "equity", -5.0), "bars.parquet", "equity"),
    ("close-zero", _table("bars.parquet", "close_QQQ", 0.0), "bars.parquet", "close_QQQ"),
    ("probability-above-1", _table("bars.parquet", "probability", 1.5), "bars.parquet",
     "probability"),
    ("probability-below-0", _table("bars.parquet", "probability", -0.1), "bars.parquet",
     "probability"),
    ("probability-missing", _table("bars.parquet", "probability", None), "bars.parquet",
     "probability"),
    ("bars-of-another-block", _table("bars.parquet", "block", 7), "bars.parquet",
     "blocks.parquet"),
]  # fmt: skip


def _json(folder: Path, change) -> None:
    doc = json.loads((folder / "summary.json").read_text())
    change(doc)
    (folder / "summary.json").write_text(json.dumps(doc))


def refused_in_process(call, *says: str) -> str:
    """``call()`` raises a SentioError (the CLI's one line, exit 2) saying ``says``, and no
    numpy RuntimeWarning on the way."""
    from sentio.core.errors import SentioError

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(SentioError) as caught:
            call()
    message = str(caught.value)
    assert "\n" not in message
    for word in says:
        assert word in message, (word, message)
    return message


@pytest.mark.parametrize(("edit", "file", "field"), [c[1:] for c in RUN_EDITS],
                         ids=[c[0] for c in RUN_EDITS])  # fmt: skip
def test_every_edited_field_of_a_run_folder_is_one_line(run, tmp_path, edit, file, field):
    from sentio.report import report_run

    folder = tmp_path / "run"
    shutil.copytree(run["run"], folder)
    edit(folder)
    out = tmp_path / "r.html"
    refused_in_process(lambda: report_run(folder, out), "--run", file, field)
    assert not out.exists()


def test_warm_up_bars_without_a_probability_are_drawn(run, tmp_path):
    """A NaN probability (a warm-up bar has none) is not an error: five planted ones are
    drawn, left out of the histogram of the scored bars."""
    from sentio.report import report_run

    folder = tmp_path / "run"
    shutil.copytree(run["run"], folder)
    bars = pd.read_parquet(folder / "bars.parquet")
    bars.loc[:4, "probability"] = np.nan
    bars.to_parquet(folder / "bars.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        page = report_run(folder, tmp_path / "r.html").read_text()
    assert f"probability histogram ({len(bars) - 5:,} scored bars)" in page


WALK_EDITS = [  # (id, change of walkforward.json, field) and sessions.csv changes below
    ("costs-string", _set("costs", "x"), "costs"),
    ("verdict-string", _set("verdict", "x"), "verdict"),
    ("interval-of-three", _set("verdict.ci95_pct", [1, 2, 3]), "verdict.ci95_pct"),
    ("folds-of-numbers", _set("folds", [1]), "folds[0]"),
    ("capital-text", _set("config.strattest.capital", "1e5"), "config.strattest.capital"),
    ("policy-list", _set("config.policy", []), "config.policy"),
]
SESSION_EDITS = [  # (id, change of sessions.csv, field)
    ("return-text", lambda t: t.assign(walk_forward_return_pct=["x", "y"]),
     "walk_forward_return_pct"),
    ("return-missing", lambda t: t.drop(columns="walk_forward_return_pct"),
     "walk_forward_return_pct"),
    ("return-inf", lambda t: t.assign(walk_forward_return_pct=[np.inf, 1.0]), "return_pct"),
    ("no-session", lambda t: t.iloc[:0], "no session"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "field"), [c[1:] for c in WALK_EDITS],
                         ids=[c[0] for c in WALK_EDITS])  # fmt: skip
def test_every_edited_field_of_a_walk_forward_run_is_one_line(tmp_path, change, field):
    from sentio.report import report_run

    folder = walk_forward(tmp_path / "wf", change)
    refused_in_process(lambda: report_run(folder, tmp_path / "r.html"), "walkforward.json", field)


@pytest.mark.parametrize(("change", "field"), [c[1:] for c in SESSION_EDITS],
                         ids=[c[0] for c in SESSION_EDITS])  # fmt: skip
def test_every_edited_column_of_sessions_csv_is_one_line(tmp_path, change, field):
    from sentio.report import report_run

    folder = walk_forward(tmp_path / "wf", lambda d: None)
    change(pd.read_csv(folder / "sessions.csv")).to_csv(folder / "sessions.csv", index=False)
    refused_in_process(lambda: report_run(folder, tmp_path / "r.html"), "sessions.csv", field)


def test_report_out_onto_a_data_file_it_replays(run, tmp_path):
    """A run on a data file: --out onto that file is refused before anything is written."""
    from sentio.report import report_run

    data = tmp_path / "qqq.parquet"
    data.write_bytes(b"bars")
    folder = edited_run(run, tmp_path, lambda d: d.__setitem__("data", [str(data)]))
    refused_in_process(lambda: report_run(folder, data), "--out", "qqq.parquet")
    assert data.read_bytes() == b"bars"


AUDIT_EDITS = [  # (id, kind of the event edited, JSON path, new value as SQL, words)
    ("equity-negative", "bar", "$.equity", "-1.0", ["--audit", "equity", "positive"]),
    ("p-seq-above-1", "bar", "$.p_seq", "2.0", ["--audit", "probability", "[0, 1]"]),
    ("p-stream-below-0", "bar", "$.p_stream", "-0.5", ["--audit", "p_stream", "[0, 1]"]),
    ("return-null", "block_end", "$.return_pct", "json('null')", ["--audit", "return_pct"]),
    ("return-text", "block_end", "$.return_pct", "'x'", ["block_end", "seq"]),
    ("capital-text", "run_start", "$.config.capital", "'x'", ["--audit", "config.capital"]),
]


@pytest.mark.parametrize(("kind", "path", "value", "says"), [c[1:] for c in AUDIT_EDITS],
                         ids=[c[0] for c in AUDIT_EDITS])  # fmt: skip
def test_every_edited_field_of_an_audited_run_is_one_line(run, tmp_path, kind, path, value, says):
    """The report reads an audit's payloads without verifying its chain (saudit verify
    does): an edited payload is one line naming the run, the field and the rule."""
    import sqlite3

    from sentio.report import report_audit

    db = tmp_path / "a.db"
    shutil.copy(run["db"], db)
    with sqlite3.connect(db) as edit:
        first = "SELECT min(seq) FROM events WHERE kind = ?"
        edit.execute(
            f"UPDATE events SET payload = json_set(payload, '{path}', {value}) "
            f"WHERE kind = ? AND seq = ({first})",
            (kind, kind),
        )
    edit.close()
    out = tmp_path / "r.html"
    refused_in_process(lambda: report_audit(db, out), *says)
    assert not out.exists()
