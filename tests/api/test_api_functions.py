"""``sentio.api`` returns what the commands print (issue 17 part 4).

Oracles: the commands themselves (their defaults, the TrainRun `sentio train` builds, the
document `sentio model evaluate --json` prints), a hand-written CSV with hand-computed times,
the live loop's bar-by-bar replay (an independent path to strattest's figures), the audit's
replay from fills, and the files each call wrote.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sentio import api
from sentio.core.errors import OptionError, SentioError

# the network and label of tests/conftest.py's tiny_run
TINY = {"d_model": 16, "nhead": 2, "num_layers": 1, "sequence_length": 8, "horizon": 3}


def _cli_default(command, name: str):
    """The default a typer command declares for its parameter ``name`` (Ellipsis: required)."""
    info = inspect.signature(command).parameters[name].default
    return getattr(info, "default", info)


def _plain(value):
    """Paths as text and sequences as lists, so a default compares across the two."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _commands():
    from sentio.cli import backtest_commands, data_commands, live_commands, model_commands

    return [  # api function, typer command, api name -> command name, api-only arguments
        (api.synth, data_commands.synth_command, {}, {"out"}),  # api: None writes nothing
        (api.import_bars, data_commands.import_command, {}, set()),
        (api.train, model_commands.train_command, {"preset": "preset_name"}, {"progress"}),
        (api.evaluate, model_commands.evaluate_command, {"model": "directory"}, set()),
        (api.strattest, backtest_commands.strattest_command, {}, {"progress"}),
        (api.live, live_commands.live_command, {}, {"on_bar"}),
    ]


def test_every_argument_is_a_flag_with_the_commands_default():
    """Each keyword is the command's flag without dashes, and every default the command
    states is the function's: a notebook and the command line run the same thing."""
    checked = 0
    for function, command, renamed, own in _commands():
        flags = inspect.signature(command).parameters
        for name, param in inspect.signature(function).parameters.items():
            if name in own:
                continue
            cli_name = renamed.get(name, name)
            assert cli_name in flags, f"{function.__name__}({name}=) is no flag of its command"
            cli, mine = _cli_default(command, cli_name), param.default
            if cli in (None, ...) or mine is inspect.Parameter.empty:
                continue  # the command says "None: the default N", or the value is required
            if isinstance(cli, list) and isinstance(mine, str):
                mine = [mine]  # data="builtin" is --data builtin
            assert _plain(mine) == _plain(cli), f"{function.__name__}({name}=)"
            checked += 1
    assert checked > 50  # the loop compared (57 defaults when written)


def test_live_takes_every_setting_a_live_config_file_may_hold():
    from sentio.live.config import DEFAULTS

    own = {"audit", "state", "allow_model_change", "adopt_broker_positions", "on_bar"}
    params = inspect.signature(api.live).parameters
    assert set(params) - own == set(DEFAULTS)
    for name, value in DEFAULTS.items():
        if params[name].default is not inspect.Parameter.empty:
            assert _plain(params[name].default) == _plain(value), name


class _Captured(Exception):
    """Raised by the stand-in for run_training once it holds the run it was given."""


@pytest.mark.parametrize(
    ("flags", "arguments"),
    [
        (
            ["--builtin-days", "12", "--signal-strength", "0.05", "--d-model", "16"]
            + ["--nhead", "2", "--num-layers", "1", "--sequence-length", "8", "--horizon", "3"]
            + ["--label-deadzone-bp", "0.5", "--epochs", "2", "--batch-size", "64"]
            + ["--learning-rate", "0.001", "--seed", "3", "--cpu-capability", "native"],
            {"builtin_days": 12, "signal_strength": 0.05, **TINY, "deadzone_bp": 0.5}
            | {"epochs": 2, "batch_size": 64, "learning_rate": 0.001, "seed": 3}
            | {"cpu_capability": "native"},
        ),
        (["--quick"], {"quick": True}),
        (
            ["--preset", "quick", "--multi-regime", "--regime-model", "experts"]
            + ["--regime-labeller", "hmm", "--synthetic-mix", "0.5", "--data", "q.parquet"],
            {"preset": "quick", "multi_regime": True, "regime_model": "experts"}
            | {"regime_labeller": "hmm", "synthetic_mix": 0.5, "data": "q.parquet"},
        ),
    ],
    ids=["tiny", "quick", "experts"],
)
def test_train_builds_the_run_the_command_builds(flags, arguments, tmp_path, monkeypatch):
    """The same settings give the same TrainRun, field by field (model, trainer, label,
    built-in market, regimes, paths, kernels), as `sentio train` with those flags builds;
    both then hand it to the same run_training."""
    from typer.testing import CliRunner

    from sentio.cli.app import app
    from sentio.train import pipeline
    from sentio.train.machine import PINS

    runs = []

    def capture(run, report=None):
        runs.append(run)
        raise _Captured

    monkeypatch.setattr(pipeline, "run_training", capture)
    monkeypatch.chdir(tmp_path)  # the CLI's and the api's relative paths alike
    for name in {name for pin in PINS.values() for name in pin}:  # "auto" pins: undone after
        monkeypatch.delenv(name, raising=False)
    done = CliRunner().invoke(app, ["train", *flags, "--output", "cli", "--no-progress"])
    assert isinstance(done.exception, _Captured), done.output
    with pytest.raises(_Captured):
        api.train(output="api", **arguments)
    cli, mine = runs
    assert mine.output == Path("api") and cli.output == Path("cli")
    assert dataclasses.replace(mine, output=cli.output) == cli


def test_train_returns_the_artifact_and_its_metrics(monkeypatch, tmp_path):
    from sentio.train import pipeline

    metrics = {"edge": {"verdict": "none", "reason": "a stand-in"}, "best_epoch": 1}
    seen = []
    monkeypatch.setattr(
        pipeline, "run_training", lambda run, report: seen.append(report) or metrics
    )
    progress = print
    trained = api.train(output=tmp_path / "m", progress=progress, cpu_capability="native")
    assert trained == api.TrainResult(tmp_path / "m", metrics) and seen == [progress]
    assert trained.edge == metrics["edge"]


def test_evaluate_returns_the_document_the_command_prints(tiny_artifact, tmp_path):
    from typer.testing import CliRunner

    from sentio.cli.app import app
    from sentio.cli.output import json_text

    api.synth(tmp_path / "later", seed=5, days=10, start="2024-03-01")  # after the model's data
    bars = tmp_path / "later" / "QQQ.parquet"
    doc = api.evaluate(tiny_artifact, bars)
    args = ["model", "evaluate", str(tiny_artifact), "--data", str(bars), "--json"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert json.loads(json_text(doc)) == json.loads(done.stdout)
    assert doc["bars"]["in_sample_skipped"] == 0 and doc["bars"]["scored"] > 1000
    # without bars: what the artifact recorded, as metrics.json holds it
    recorded = api.evaluate(tiny_artifact)
    metrics = json.loads((tiny_artifact / "metrics.json").read_text())
    for part in ("validation", "test"):
        assert (
            recorded["parts"][part]["model"]["auc"] == metrics["evaluation"][part]["model"]["auc"]
        )


def test_strattest_equals_the_live_replay_and_its_audit_verifies(tiny_artifact, tmp_path):
    """The live loop trades the same blocks bar by bar (docs/live.md: equal to strattest to
    the cent); an audited run returns the same result and passes the audit's replay."""
    from sentio.audit import AuditStore, verify_run

    settings = {"blocks": 2, "block_size": 240, "rule": "adaptive"}
    result = api.strattest(tiny_artifact, cache=False, **settings)
    assert result.blocks_run == 2 and result.summary["strategy"].trades > 0
    statuses = []
    done = api.live("replay:builtin", model=tiny_artifact, on_bar=statuses.append, **settings)
    assert done["stop_reason"] == "the feed ended" and done["blocks"] == 2
    assert len(statuses) == done["bars"] == len(result.per_bar)
    strategy = result.summary["strategy"].to_dict()
    for figure in ("mean_rpb_pct", "trades", "fees", "turnover", "max_drawdown_pct"):
        assert done["metrics"][figure] == pytest.approx(strategy[figure], abs=1e-9), figure

    db = tmp_path / "audit.db"
    audited = api.strattest(tiny_artifact, cache=False, audit=db, **settings)
    assert audited.summary["strategy"].to_dict() == strategy
    store = AuditStore(db, create=False)
    try:
        assert len(store.runs()) == 1
        assert verify_run(store, stream=False).ok
    finally:
        store.close()


def test_import_bars_reads_a_generic_csv_as_the_rules_say(tmp_path):
    csv = tmp_path / "bars.csv"
    csv.write_text(
        "time,open,high,low,close,volume\n"
        "2025-03-03 09:30,500.0,500.5,499.8,500.2,1200\n"
        "2025-03-03 09:31,500.2,500.4,500.0,500.1,900\n"
        "2025-03-03 09:32,500.1,499.0,500.0,500.0,700\n"  # high below low: rule broken
        "2025-03-03 16:00,500.0,500.1,499.9,500.0,800\n"  # the close's minute: outside
    )
    options = {"symbol": "QQQ", "ts_col": "time", "tz": "America/New_York"}
    with pytest.raises(SentioError, match="row"):  # refused by default, naming the row
        api.import_bars(csv, **options)
    bars, report = api.import_bars(csv, tmp_path / "q.parquet", repair="drop", **options)
    # 09:30 New York on 3 March 2025 (EST, UTC-5) is 14:30 UTC
    first = int(datetime(2025, 3, 3, 14, 30, tzinfo=UTC).timestamp()) * 10**9
    assert bars.frame["ts"].tolist() == [first, first + 60 * 10**9]
    assert sum(report.files[0].dropped.values()) == 1 and report.files[0].extended_hours == 1
    from sentio.data import read_bars

    assert read_bars(tmp_path / "q.parquet").frame["close"].tolist() == [500.2, 500.1]


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda tmp: api.import_bars(tmp / "a.csv", repair="fix"), "--repair"),
        (lambda tmp: api.import_bars(tmp / "a.csv", tmp / "a.csv"), "a.csv"),
        (lambda tmp: api.train(tmp / "q.parquet", builtin_days=12), "--builtin-days"),
        (lambda tmp: api.train(regime_model="experts", output=tmp / "m"), "--regime-model"),
        (lambda tmp: api.train(output=" "), "--output"),
        (lambda tmp: api.evaluate(tmp, warmup=tmp / "w.parquet"), "--warmup"),
        (lambda tmp: api.strattest(rule="fited"), "--rule"),
        (lambda tmp: api.strattest(half_spread_bp=["QQQ"]), "--half-spread-bp"),
        (lambda tmp: api.live("replay:builtin", broker="alpaca-paper"), "--broker"),
        (lambda tmp: api.live("jsonl:-", blocks=2), "--blocks"),
        (lambda tmp: api.report(tmp / "r.html", run=tmp, audit=tmp), "run and audit"),
        (lambda tmp: api.report(tmp / "r.html", run=tmp, run_id="x"), "--run"),
    ],
)
def test_a_bad_argument_raises_one_line_naming_it(call, says, tmp_path):
    (tmp_path / "a.csv").write_text("time,open,high,low,close,volume\n")
    with pytest.raises(SentioError) as caught:
        call(tmp_path)
    assert says in str(caught.value) and "\n" not in str(caught.value)
    if isinstance(caught.value, OptionError) and caught.value.flag:
        assert caught.value.flag in str(caught.value)


def test_report_draws_a_result_and_an_audit(tiny_artifact, tmp_path):
    pytest.importorskip("bokeh", reason="the report needs the extra sentio[report]")
    db = tmp_path / "audit.db"
    result = api.strattest(tiny_artifact, blocks=1, rule="adaptive", cache=False, audit=db)
    for out, source in (("result.html", {"result": result}), ("audit.html", {"audit": db})):
        path = api.report(tmp_path / out, **source)
        assert path == tmp_path / out
        text = path.read_text()
        assert text.lstrip().lower().startswith("<!doctype html") and "<script" in text


def test_train_checks_the_commands_bounds_before_any_work(monkeypatch):
    """Every lower bound `sentio train` declares on a number (typer's min=) is api.train's
    too, refused naming the flag before training starts."""
    import sentio.train.pipeline as pipeline
    from sentio.cli import model_commands
    from sentio.core.errors import OptionError

    def reached(*args, **kwargs):
        raise AssertionError("reached training")

    monkeypatch.setattr(pipeline, "run_training", reached)
    bounds = {}
    for name, param in inspect.signature(model_commands.train_command).parameters.items():
        least = getattr(param.default, "min", None)
        if least is not None and name in inspect.signature(api.train).parameters:
            bounds[name] = (param.default.param_decls[0], least)
    assert bounds == api.TRAIN_MINIMA
    for name, (flag, least) in bounds.items():
        below = least - 1 if isinstance(least, int) else least - 0.5
        with pytest.raises(OptionError, match=flag):
            api.train(output="never/written", **{name: below})
