"""Review of issue 17 (report, runs/tracking, api): each defect found is a test here (a strict
xfail until it was fixed; every one passes now). The oracles are the command line (its flags
and their limits), the run's own record (strattest's figures), the URI standard (RFC 8089) and
MLflow's own switch for its telemetry."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sentio import api
from sentio.core.errors import OptionError

REPO = Path(__file__).resolve().parents[1]


# --- MLflow: a local file store must not phone home nor write outside the URI ---------------

TELEMETRY_PROBE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from sentio.runs.tracking import log_backtest, tracking_uri
    doc = {"config": {"seed": 3}, "summary": {"walk_forward": {"mean_rpb_pct": 0.1}},
           "folds": [], "verdict": {"kind": "no edge"}}
    log_backtest(tracking_uri(sys.argv[1]), doc, kind="walk-forward")
    from mlflow.telemetry.client import get_telemetry_client
    print(json.dumps({"telemetry_client": get_telemetry_client() is not None}))
    """
)
# variables that make MLflow itself switch its telemetry off (mlflow.telemetry.utils): a user's
# shell has none of them
CI_MARKERS = ("PYTEST_CURRENT_TEST", "CI", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL",
              "BUILDKITE", "TRAVIS", "CIRCLECI", "TF_BUILD", "DO_NOT_TRACK",
              "MLFLOW_DISABLE_TELEMETRY")  # fmt: skip


def test_logging_to_a_local_store_sends_no_telemetry_and_writes_only_the_store(tmp_path):
    pytest.importorskip("mlflow", reason="tracking needs the mlflow extra")
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in CI_MARKERS}
    env |= {"HOME": str(home), "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [sys.executable, "-c", TELEMETRY_PROBE, str(tmp_path / "store")],
        capture_output=True, text=True, env=env, cwd=work, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    written = sorted(str(p.relative_to(tmp_path)) for p in home.rglob("*"))
    written += sorted(str(p.relative_to(tmp_path)) for p in work.rglob("*"))
    assert written == []  # nothing outside the store: no ~/.config/mlflow/telemetry.json
    assert json.loads(done.stdout.splitlines()[-1]) == {"telemetry_client": False}


@pytest.mark.parametrize(
    "given",
    ["file:{p}", "file://localhost{p}", "file://{q}"],
    ids=["file-colon-path", "localhost", "percent-encoded"],
)
def test_every_file_uri_form_names_the_folder_it_names(given, tmp_path):
    from sentio.runs.tracking import tracking_uri

    folder = tmp_path / "my runs"
    uri = given.format(p=folder, q=folder.as_uri().removeprefix("file://"))
    assert tracking_uri(uri) == folder.as_uri()  # RFC 8089: all three name this folder


# --- the audited report: the same run, the same figures ------------------------------------


@pytest.fixture(scope="module")
def audited(tiny_artifact, tmp_path_factory):
    """One tiny audited strattest (2 blocks of 200 bars, adaptive rule: it trades)."""
    db = tmp_path_factory.mktemp("review17") / "a.db"
    result = api.strattest(tiny_artifact, blocks=2, block_size=200, rule="adaptive",
                           cache=False, audit=db)  # fmt: skip
    return result, db


def test_the_audited_report_marks_annualised_figures_from_too_few_days(audited):
    pytest.importorskip("bokeh", reason="the report draws with Bokeh")
    from sentio.report.audited import from_audit

    result, db = audited
    own = result.samples["strategy"]  # strattest's own record of the run's trading days
    assert own.small_sample  # 400 bars: about one trading day
    figures = from_audit(db).summary["strategy"]
    assert (figures.get("days"), figures.get("small_sample")) == (own.days, own.small_sample)


# --- sentio.api: every check the command makes ---------------------------------------------


@pytest.mark.parametrize(
    ("argument", "flag"),
    [
        ({"horizon": 0}, "--horizon"),
        ({"deadzone_bp": -1.0}, "--label-deadzone-bp"),
        ({"builtin_days": 5}, "--builtin-days"),
    ],  # fmt: skip
    ids=["horizon", "deadzone", "builtin-days"],
)
def test_train_refuses_what_the_command_refuses(argument, flag, tmp_path, monkeypatch):
    import sentio.train.pipeline as pipeline

    def reached(*_, **__):
        raise RuntimeError("reached training")

    monkeypatch.setattr(pipeline, "run_training", reached)
    with pytest.raises(OptionError, match=flag):
        api.train(output=tmp_path / "model", **argument)


def test_evaluate_refuses_seed_zero_without_data(tiny_artifact):
    with pytest.raises(OptionError, match="--seed"):
        api.evaluate(tiny_artifact, seed=0)


def test_evaluate_refuses_a_negative_seed_before_any_work(tiny_artifact, monkeypatch):
    import sentio.backtest.evaluation as evaluation

    def reached(*_, **__):
        raise RuntimeError("reached scoring")

    monkeypatch.setattr(evaluation, "evaluate_on", reached)
    with pytest.raises(OptionError, match="--seed"):
        api.evaluate(tiny_artifact, "later.parquet", seed=-1)


# --- docs the code contradicts ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "flag"),
    [(["train"], "--track"), (["strattest"], "--track"), (["strattest"], "--report")],
    ids=["train-track", "strattest-track", "strattest-report"],
)
def test_the_documented_tracking_and_report_flags_exist(command, flag):
    from sentio.cli.app import app

    done = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    assert re.search(rf"{flag}(?![\w-])", done.output)  # --track, not --tracks
