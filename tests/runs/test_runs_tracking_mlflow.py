"""Experiment tracking with the real mlflow library against a local file store in a temporary
folder, read back with ``mlflow.MlflowClient``; the expected values come from the artifact's
own files (metrics.json, model.meta.json, manifest.json) and the strattest's JSON document."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sentio.core.errors import OptionError
from sentio.runs.tracking import (
    ENV_URI,
    TrackingError,
    check_tracking,
    log_backtest,
    log_training,
    tracking_uri,
)
from tests.runs.built import strattest_run, walkforward_doc

mlflow = pytest.importorskip("mlflow", reason="tracking needs the mlflow extra")

MLFLOW_VARS = (
    "MLFLOW_ALLOW_FILE_STORE",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
)


@pytest.fixture
def uri(tmp_path, monkeypatch) -> str:
    """A file store in tmp_path, no MLflow variable set beforehand."""
    for name in MLFLOW_VARS:
        monkeypatch.delenv(name, raising=False)
    return tracking_uri(str(tmp_path / "mlruns"))


@contextmanager
def reader(uri: str) -> Iterator:
    """A client reading the file store (the test allows the file store itself, as the module
    does around its own calls)."""
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield mlflow.MlflowClient(tracking_uri=uri)
    finally:
        del os.environ["MLFLOW_ALLOW_FILE_STORE"]


def test_training_logs_params_epochs_final_scores_and_the_artifact(uri, tiny_artifact):
    settings = {"quick": False, "output": tiny_artifact}
    run_id = log_training(uri, tiny_artifact, settings=settings)
    assert all(name not in os.environ for name in MLFLOW_VARS)  # set only around the calls
    meta = json.loads((tiny_artifact / "model.meta.json").read_text())
    metrics = json.loads((tiny_artifact / "metrics.json").read_text())
    manifest = hashlib.sha256((tiny_artifact / "manifest.json").read_bytes()).hexdigest()

    with reader(uri) as mlc:
        run = mlc.get_run(run_id)
        histories = {
            key: [(m.step, m.value) for m in mlc.get_metric_history(run_id, key)]
            for key in ("val_auc", "val_log_loss", "train_loss_weighted")
        }
        listed = {a.path for a in mlc.list_artifacts(run_id, "artifact")}
        assert log_training(uri, tiny_artifact, settings=settings) == run_id  # not twice
        experiment = mlc.get_experiment_by_name("sentio")
        assert len(mlc.search_runs([experiment.experiment_id])) == 1
    params = run.data.params
    assert params["model.d_model"] == str(meta["config"]["d_model"])
    assert params["train.learning_rate"] == str(meta["train_config"]["learning_rate"])
    assert params["label.horizon_bars"] == str(meta["label"]["horizon_bars"])
    assert params["settings.output"] == str(tiny_artifact)
    assert all(len(v) <= 500 for v in params.values())

    for key, logged in histories.items():  # step = epoch, values as metrics.json records
        assert logged == [(row["epoch"], row[key]) for row in metrics["history"]]
    assert listed == {f"artifact/{p.name}" for p in tiny_artifact.iterdir()}
    final = run.data.metrics
    assert final["validation.auc"] == metrics["evaluation"]["validation"]["model"]["auc"]
    assert final["test.log_loss"] == metrics["evaluation"]["test"]["model"]["log_loss"]
    tags = run.data.tags
    assert tags["sentio.artifact_hash"] == manifest
    assert tags["sentio.edge"] == metrics["edge"]["verdict"]
    assert tags["sentio.seed"] == str(meta["seed"])
    assert run.info.run_name == f"train-{manifest[:12]}"


def test_backtests_log_figures_per_block_verdict_and_files(
    uri, tiny_artifact, tmp_path_factory, tmp_path
):
    root, document = strattest_run(tmp_path_factory, tiny_artifact)
    run_id = log_backtest(uri, document, kind="strattest", files=[root / "st" / "summary.json"])
    walk = walkforward_doc()
    report = tmp_path / "walkforward.json"
    report.write_text(json.dumps(walk))
    wf_id = log_backtest(uri, walk, kind="walk-forward", settings={"seed": 3}, files=[report])
    with reader(uri) as mlc:
        run, wf = mlc.get_run(run_id), mlc.get_run(wf_id)
        blocks = [(m.step, m.value) for m in mlc.get_metric_history(run_id, "block.return_pct")]
        folds = [(m.step, m.value) for m in mlc.get_metric_history(wf_id, "fold.return_pct")]
        artifacts = [a.path for a in mlc.list_artifacts(run_id)]
    strategy = document["summary"]["strategy"]
    assert run.data.metrics["strategy.mean_rpb_pct"] == strategy["mean_rpb_pct"]
    assert (
        run.data.metrics["costs.strategy.commissions"]
        == document["costs"]["strategy"]["commissions"]
    )
    assert run.data.params["strategy.rule"] == "adaptive"
    assert run.data.tags["sentio.verdict"] == document["verdict"]["kind"]
    assert run.data.tags["sentio.audit_head"] == document["audit"]["head"]

    assert blocks == [(b["block"], b["return_pct"]) for b in document["blocks"]]
    assert artifacts == ["summary.json"]
    assert folds == [(0, -0.4), (1, 0.1)]
    assert wf.data.metrics["out_of_sample.walk_forward.auc"] == 0.51
    assert wf.data.params == {"seed": "3"}
    assert wf.data.tags["sentio.verdict"] == "no edge"


def test_an_unreachable_server_is_one_line_quickly(tiny_artifact):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for attempt in (check_tracking, lambda uri: log_training(uri, tiny_artifact)):
        started = time.monotonic()
        with pytest.raises(TrackingError) as caught:
            attempt(f"http://127.0.0.1:{port}")
        assert time.monotonic() - started < 15  # no retries: MLflow's default takes minutes
        message = str(caught.value)
        assert "\n" not in message and f"127.0.0.1:{port}" in message
        assert "cannot reach the server" in message


def test_the_uri_and_a_missing_extra(monkeypatch, tmp_path, tiny_artifact):
    monkeypatch.delenv(ENV_URI, raising=False)
    assert tracking_uri(None) is None
    monkeypatch.setenv(ENV_URI, "http://tracker:5000")
    assert tracking_uri(None) == "http://tracker:5000"
    assert tracking_uri(str(tmp_path)) == tmp_path.resolve().as_uri()
    with pytest.raises(OptionError, match="--track"):
        tracking_uri("")
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow now fails
    with pytest.raises(TrackingError, match=r"pip install 'sentio\[mlflow\]'"):
        log_training(Path(tmp_path).as_uri(), tiny_artifact)


def test_names_that_become_one_key_stay_apart(uri):
    """MLflow's key characters turn ``a:b`` and ``a;b`` into ``a_b``: three settings are
    three params, each with its own value (MLflow refuses a batch with a key twice)."""
    settings = {"data.a:b": 1, "data.a;b": 2, "data.a_b": 3}
    run_id = log_backtest(uri, walkforward_doc(), kind="walk-forward", settings=settings)
    with reader(uri) as mlc:
        params = mlc.get_run(run_id).data.params
    assert len(params) == 3 and sorted(params.values()) == ["1", "2", "3"]
    assert params["data.a_b"] == "3"  # a name MLflow accepts is kept as it is


@pytest.mark.parametrize(
    ("track", "env", "says"),
    [
        ("sqlite:///runs.db", None, "--track"),
        ("databricks", None, "--track"),
        (None, "s3://bucket/mlruns", ENV_URI),
        (None, "https://[::1", ENV_URI),
    ],
    ids=["sqlite", "databricks", "env-s3", "env-ipv6"],
)
def test_a_store_sentio_does_not_log_to_is_refused_naming_its_source(monkeypatch, track, env, says):
    monkeypatch.delenv(ENV_URI, raising=False)
    if env is not None:
        monkeypatch.setenv(ENV_URI, env)
    with pytest.raises(OptionError) as caught:
        tracking_uri(track)
    assert str(caught.value).startswith(f"{says}: ")


def test_a_file_store_error_names_the_whole_path_and_the_variable(tmp_path, monkeypatch):
    """A store under a file cannot be made: the line says why with the whole path (a space
    in it), names the variable that gave it, and does not speak of a server."""
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder\n")
    monkeypatch.setenv(ENV_URI, str(blocker / "my runs"))
    with pytest.raises(TrackingError) as caught:
        check_tracking(tracking_uri(None))
    message = str(caught.value)
    assert str(blocker) in message and f"({ENV_URI})" in message, message
    assert "server" not in message and "\n" not in message, message
