"""``--config FILE.toml`` and ``--show-config`` (issue 17 part 2, docs/config.md).

Oracles: the values written into each file and typed on each command line by the test itself
(defaults, then the file, then the flags typed: a flag equal to its default still wins); the
sha256 of the file's bytes computed here with hashlib; the parsed TOML of ``--show-config``
read back by ``tomllib`` (the round trip resolves to the same settings). Errors go through the
real console script (one line, exit 2, the file and the setting named). The shipped examples
run through the console script, shrunk by flags, which also proves flag-over-file precedence
in the recorded configs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sentio.cli.app import app, main
from sentio.core.settings import toml_text
from tests.cli.badinput import assert_refused, run_script
from tests.live.conftest import audit_events

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def show(tmp_path: Path, words: list[str], typed: list[str], settings: dict | None) -> dict:
    """The parsed ``--show-config`` of ``words typed`` (in process: no work is done), with
    ``settings`` in a config file; and the round trip: the printed file, fed back alone,
    prints the same settings."""
    given = []
    if settings is not None:
        (tmp_path / "given.toml").write_text(toml_text(settings))
        given = ["--config", str(tmp_path / "given.toml")]
    first = CliRunner().invoke(app, [*words, *typed, *given, "--show-config"])
    assert first.exit_code == 0, (first.output, first.exception)
    resolved = tomllib.loads(first.stdout)
    (tmp_path / "shown.toml").write_text(first.stdout)
    again = ["--config", str(tmp_path / "shown.toml"), "--show-config"]
    second = CliRunner().invoke(app, [*words, *again])
    assert second.exit_code == 0, (second.output, second.exception)
    assert tomllib.loads(second.stdout) == resolved
    return resolved


SPREADS = ["QQQ=1", "TQQQ=1", "PSQ=1", "SQQQ=1"]
# (command words, settings in the file, flags typed, what must resolve)
CASES = {
    "train": (
        ["train"],
        {"epochs": 2, "seed": 3, "quick": True, "label_deadzone_bp": 2.5},
        ["--seed", "7"],  # the default, typed: wins over the file's 3
        {"epochs": 2, "seed": 7, "quick": True, "label_deadzone_bp": 2.5, "batch_size": 256},
    ),
    "strattest": (
        ["strattest"],
        {"capital": 50_000.0, "rule": "bands", "blocks": 3, "cache": False},
        ["--capital", "100000"],  # the default, typed
        {"capital": 100_000.0, "rule": "bands", "blocks": 3, "cache": False, "mode": "historical"},
    ),
    "walk-forward": (
        ["strattest"],
        {"mode": "walk-forward", "train_window": "40d", "epochs": 2, "preset": "quick"},
        ["--epochs", "1"],
        {"mode": "walk-forward", "train_window": "40d", "epochs": 1, "preset": "quick"},
    ),
    "live": (
        ["live"],
        {"feed": "jsonl:-", "max_daily_loss": 3.0, "half_spread_bp": SPREADS},
        ["--max-daily-loss", "2"],
        {"feed": "jsonl:-", "max_daily_loss": 2.0, "half_spread_bp": SPREADS},
    ),
    "data-import": (
        ["data", "import", "q.csv", "--out", "q.parquet"],
        {"tz": "UTC", "repair": "drop", "split": ["2024-01-02:0.5"]},
        ["--repair", "refuse"],  # the default, typed
        {"tz": "UTC", "repair": "refuse", "split": ["2024-01-02:0.5"], "max_gap": 5},
    ),
    "data-synth": (
        ["data", "synth"],
        {"days": 5, "signal_strength": 0.2, "drift": True},
        ["--days", "250"],  # the default, typed
        {"days": 250, "signal_strength": 0.2, "drift": True, "seed": 7},
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_file_then_flags_and_the_printed_file_reads_back_the_same(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # strattest's default model folder is relative: none here
    words, in_file, typed, expected = CASES[name]
    resolved = show(tmp_path, words, typed, in_file)
    assert {k: resolved.get(k) for k in expected} == expected
    # a setting nobody gave keeps its default, and an unset one is absent (a comment)
    untouched = {"train": "horizon", "strattest": "seed", "walk-forward": "fill",
                 "live": "poll", "data-import": "max_gap", "data-synth": "start"}  # fmt: skip
    defaults = {"horizon": 5, "seed": 7, "fill": "next-open", "poll": 1.0, "max_gap": 5,
                "start": "2024-01-02"}  # fmt: skip
    assert resolved[untouched[name]] == defaults[untouched[name]]


def test_without_a_file_show_config_prints_the_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    resolved = show(tmp_path, ["strattest"], [], None)
    assert resolved["capital"] == 100_000.0 and resolved["fill"] == "next-open"
    assert "blocks" not in resolved  # unset: strattest decides (5)


def test_a_json_file_is_read_as_the_same_toml_file(tmp_path):
    settings = {"days": 9, "regime": "bull", "drift": True}
    (tmp_path / "c.json").write_text(json.dumps(settings))
    (tmp_path / "c.toml").write_text(toml_text(settings))
    shown = []
    for name in ("c.json", "c.toml"):
        args = ["data", "synth", "--config", str(tmp_path / name), "--show-config"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        shown.append(tomllib.loads(result.stdout))
    assert shown[0] == shown[1]
    assert {k: shown[0][k] for k in settings} == settings


# -- refused in one line, exit 2, naming the file and the setting ---------------------------


def entry_point(args: list[str], cwd: Path, monkeypatch, capsys) -> subprocess.CompletedProcess:
    """``sentio ARGS`` through the console script's own entry point (``sentio.cli.app.main``)
    in this process: the same error handling as the script, without starting Python again."""
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["sentio", *args])
    with pytest.raises(SystemExit) as stopped:
        main()
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, stopped.value.code, captured.out, captured.err)


BAD = {
    "unknown": ("strattest", "captial = 5\n", ["'captial'", "did you mean 'capital'"]),
    "type": ("train", "epochs = true\n", ["epochs", "whole number", "true"]),
    "rule": ("strattest", "capital = 5\n", ["capital", "100", "5"]),
    "mode": ("strattest", "epochs = 2\n", ["epochs", "walk-forward only"]),
    "toml": ("train", 'seed = 3\nfeed "x"\n', ["not valid TOML", "line 2"]),
    "range": ("train", "learning_rate = 2.0\n", ["learning_rate", "<= 1", "2.0"]),
    "synth": ("data synth", "days = 0\n", ["days", "1 to 10,000", "0"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_file_is_refused_in_one_line(case, tmp_path, monkeypatch, capsys):
    command, text, says = BAD[case]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    done = entry_point([*command.split(), "--config", str(path)], tmp_path, monkeypatch, capsys)
    assert_refused(done, "--config", str(path), *says)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]  # nothing written


def test_the_console_script_refuses_a_folder_and_a_missing_file(tmp_path, monkeypatch, capsys):
    done = run_script("sentio", "train", "--config", str(tmp_path), cwd=tmp_path)
    assert_refused(done, "--config", str(tmp_path), "folder")
    missing = str(tmp_path / "nope.toml")
    done = entry_point(["strattest", "--config", missing], tmp_path, monkeypatch, capsys)
    assert_refused(done, "--config", missing, "does not exist")


# -- the examples, run and recorded --------------------------------------------------------


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recording(tmp: Path, *, report: bool) -> list[str]:
    """--track (and --report) when their extras are installed: the example runs double as the
    end-to-end tests of both flags (a skip would drop the example run too)."""
    extra = []
    if importlib.util.find_spec("mlflow") is not None:
        extra += ["--track", str(tmp / "mlruns")]
    if report and importlib.util.find_spec("bokeh") is not None:
        extra += ["--report", str(tmp / "report.html")]
    return extra


def mlflow_run(tmp: Path, stdout: str):
    """The MLflow run a command logged (its id from the `tracked:` line or the JSON), read
    back with MLflow's own client from the local store."""
    import os

    import mlflow

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        run_id = json.loads(stdout)["tracked"]["run_id"]
    except json.JSONDecodeError:
        run_id = stdout.split("tracked: MLflow run ")[1].split()[0]
    client = mlflow.MlflowClient(tracking_uri=(tmp / "mlruns").as_uri())
    return client, client.get_run(run_id)


def checked_report(tmp: Path) -> None:
    page = (tmp / "report.html").read_text()
    assert page.lstrip().lower().startswith("<!doctype html>") and "Bokeh" in page


def test_examples_train_records_the_resolved_settings_and_the_file(tmp_path):
    pytest.importorskip("torch", reason="training needs the train extra")
    config, out = EXAMPLES / "train.toml", tmp_path / "m"
    shrink = ["--epochs", "2", "--builtin-days", "12", "--sequence-length", "8", "--d-model",
              "16", "--nhead", "2", "--num-layers", "1", "--batch-size", "128"]  # fmt: skip
    track = recording(tmp_path, report=False)
    done = run_script("sentio", "train", "--config", str(config), *shrink, "--output", str(out),
                      "--no-progress", *track, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    if track:  # --track: each epoch of metrics.json's history is one step of the MLflow run
        client, logged = mlflow_run(tmp_path, done.stdout)
        history = json.loads((out / "metrics.json").read_text())["history"]
        steps = client.get_metric_history(logged.info.run_id, "val_log_loss")
        assert [(m.step, m.value) for m in steps] == [
            (h["epoch"], pytest.approx(h["val_log_loss"])) for h in history
        ]
        assert len(history) == 2
    meta = json.loads((out / "model.meta.json").read_text())
    given = tomllib.loads(config.read_text())
    recorded = meta["invocation"]
    assert recorded["config_file"] == {"path": str(config), "sha256": sha256(config)}
    assert recorded["settings"]["epochs"] == 2  # the flag
    assert meta["data"]["synth"]["days"] == 12 and meta["config"]["d_model"] == 16  # flags
    assert meta["train_config"]["epochs"] == 2
    assert meta["data"]["synth"]["signal_strength"] == given["signal_strength"]  # the file's
    assert meta["label"]["horizon_bars"] == given["horizon"] and meta["seed"] == given["seed"]


def run_start(db: Path) -> dict:
    [(_, _, payload)] = audit_events(db, "run_start")
    return payload


def test_examples_strattest_records_the_file_in_the_audit(tmp_path, tiny_artifact):
    config, db = EXAMPLES / "strattest.toml", tmp_path / "a.db"
    extra = recording(tmp_path, report=True)
    done = run_script("sentio", "strattest", "--config", str(config), "--model",
                      str(tiny_artifact), "--blocks", "2", "--block-size", "60", "--no-cache",
                      "--audit", str(db), "--json", *extra, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    document, given = json.loads(done.stdout), tomllib.loads(config.read_text())
    if "--report" in extra:
        checked_report(tmp_path)
    if "--track" in extra:  # the printed figures are the logged ones; the report goes with it
        client, logged = mlflow_run(tmp_path, done.stdout)
        mean = document["summary"]["strategy"]["mean_rpb_pct"]
        assert mean in [v for k, v in logged.data.metrics.items() if "mean_rpb_pct" in k]
        files = [f.path for f in client.list_artifacts(logged.info.run_id)]
        assert any(f.endswith("report.html") for f in files) == ("--report" in extra)
        assert "summary.json" in files  # the document, without --out too
    for recorded in (document["config"], run_start(db)["config"]):
        assert recorded["config_file"] == {"path": str(config), "sha256": sha256(config)}
        assert recorded["blocks"] == 2 and recorded["block_size"] == 60  # the flags
        assert recorded["cache_dir"] is None  # --no-cache over the file's cache = true
        assert recorded["costs"]["commission_min"] == given["commission_min"]  # the file's
        assert recorded["strategy"]["rule"] == given["rule"]


def test_examples_live_records_the_file_in_the_audit(tmp_path, tiny_artifact):
    config, db = EXAMPLES / "live.toml", tmp_path / "live.db"
    done = run_script("sentio", "live", "--config", str(config), "--model", str(tiny_artifact),
                      "--blocks", "1", "--block-size", "60", "--audit", str(db), "--json",
                      cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    payload, given = run_start(db), tomllib.loads(config.read_text())
    assert payload["config"]["config_file"] == {"path": str(config), "sha256": sha256(config)}
    assert payload["config"]["blocks"] == 1 and payload["config"]["block_size"] == 60
    assert payload["live"]["risk"]["max_daily_loss"] == given["max_daily_loss"]
    assert payload["live"]["feed"] == given["feed"]


def test_examples_walkforward_runs_shrunk(tmp_path):
    pytest.importorskip("torch", reason="training needs the train extra")
    config = EXAMPLES / "walkforward.toml"
    shrink = ["--builtin-days", "24", "--train-window", "5d", "--retrain-every", "3d",
              "--shadow-sessions", "1", "--epochs", "1", "--sequence-length", "16",
              "--d-model", "16", "--nhead", "2", "--num-layers", "1", "--horizon", "1",
              "--feature-spec", "intraday_default"]  # fmt: skip
    extra = recording(tmp_path, report=True)
    done = run_script("sentio", "strattest", "--config", str(config), *shrink, "--out",
                      str(tmp_path / "wf"), *extra, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    if "--report" in extra:
        checked_report(tmp_path)
    if "--track" in extra:
        _, logged = mlflow_run(tmp_path, done.stdout)
        assert logged.data.tags.get("sentio.kind", "walk-forward") == "walk-forward"
    recorded = json.loads((tmp_path / "wf" / "walkforward.json").read_text())["config"]
    given = tomllib.loads(config.read_text())
    assert recorded["strattest"]["config_file"]["sha256"] == sha256(config)
    assert recorded["policy"]["train_window"] == 5 and recorded["train"]["epochs"] == 1
    assert recorded["builtin"]["signal_flip_every"] == given["signal_flip_every"]  # the file's
    assert recorded["strattest"]["costs"]["commission_min"] == given["commission_min"]
