"""``sentio strattest tfa`` (also ``sencli strattest tfa``): block backtests with costs.

The command reads: resolve the settings (defaults, then ``--config FILE``, then the flags
given: ``sentio.cli.configfile``), check them and build the config (:func:`checked_job`:
which mode each setting belongs to, then ``StrattestConfig.from_settings``, every bad value
naming its flag, or the file and the setting), run the mode, print. The run itself lives in
``sentio.backtest``; here are the checks that concern the command line as a whole (which mode a
flag belongs to, outputs that would overwrite an input) and the printing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer

from sentio.backtest import flags
from sentio.backtest.metrics import STRATTEST_FIGURES, SUMMARY_FIGURES
from sentio.backtest.strattest import StrattestConfig
from sentio.cli.configfile import Resolved, config_option, resolve, show_option
from sentio.cli.output import (
    console,
    figure,
    figure_rows,
    inputs_range_line,
    json_text,
    new_york,
    print_json,
    small_sample_note,
    table,
)
from sentio.cli.recording import (
    check_report,
    check_tracking,
    report_option,
    track_option,
    tracking_uri,
    wrote,
)
from sentio.core.errors import OptionError, OutputError, excerpt
from sentio.core.files import atomic_output, check_output, write_bytes_atomic

FIGURES = SUMMARY_FIGURES  # saudit summary reads them from here too
REPORT_FIGURES = STRATTEST_FIGURES
MODES = ("historical", "simulation", "walk-forward")
OUT_FILES = ("blocks.parquet", "bars.parquet", "fills.parquet", "summary.json")
MAX_TRACKS = 100
MAX_SIMULATED_BARS = 2_000_000  # per track: about 20 years of 1-minute sessions
BANNER = "IN-SAMPLE: these bars include the model's training or validation period. "


def strattest_command(
    ctx: typer.Context,
    strategy: str = typer.Argument("tfa", help="Strategy to test (only tfa exists)."),
    mode: str = typer.Option(
        "historical",
        "--mode",
        help="historical: the model's out-of-sample bars; simulation: "
        "fresh seeded tracks of the built-in market; walk-forward: retrain on a rolling window "
        "of past sessions and trade each fold's model on the next sessions (docs/walkforward.md).",
    ),
    tracks: int | None = typer.Option(
        None, "--tracks", help="Simulation only: tracks per regime (default 3)."
    ),
    regime: list[str] | None = typer.Option(
        None,
        "--regime",
        help="Simulation only: bull, bear, sideways, volatile or mixed (default); repeatable.",
    ),
    blocks: int | None = typer.Option(
        None, "--blocks", help="Blocks to run (the last ones), >= 1 (default 5)."
    ),
    block_size: int | None = typer.Option(
        None, "--block-size", help="Bars per block, >= 2 (default 480)."
    ),
    model: Path | None = typer.Option(
        None, "--model", help="Artifact directory (default: the newest under artifacts/TFA)."
    ),
    data: list[str] | None = typer.Option(
        None,
        "--data",
        help="Historical only: canonical Parquet files, QQQ plus any of TQQQ/PSQ/SQQQ "
        "(missing ones are simulated from QQQ and labelled); default 'builtin': the model's own "
        "built-in market. Repeatable.",
    ),
    fill: str = typer.Option(
        "next-open",
        "--fill",
        help="next-open (default) or close (optimistic: fills at the "
        "signal bar's close, and every report says so).",
    ),
    capital: float = typer.Option(
        100_000.0, "--capital", help="Fresh capital per block, $100 to $1e12."
    ),
    rule: str = typer.Option(
        "fitted",
        "--rule",
        help="Signal rule: fitted (validation quantiles), adaptive, bands or cost (enters "
        "only when the expected move pays the round trip; docs/strategy.md).",
    ),
    commission_per_share: float = typer.Option(
        0.005, "--commission-per-share", help="$/share, 0 to 1."
    ),
    commission_min: float = typer.Option(1.0, "--commission-min", help="$ per order, 0 to 1000."),
    sec_fee_per_million: float = typer.Option(
        27.80,
        "--sec-fee-per-million",
        help="SEC Section 31 fee on sells, $ per $1M, 0 to 10000 (docs/backtest.md: dates).",
    ),
    taf_per_share: float = typer.Option(
        0.000166, "--taf-per-share", help="FINRA TAF, $/share, 0 to 1."
    ),
    half_spread_bp: list[str] | None = typer.Option(
        None,
        "--half-spread-bp",
        help="SYMBOL=BP for each of QQQ, TQQQ, PSQ, SQQQ, repeatable (default: half a cent "
        "tick at each instrument's median price).",
    ),
    seed: int = typer.Option(7, "--seed", help="Seed of the bootstrap interval, >= 0."),
    allow_in_sample: bool = typer.Option(
        False,
        "--allow-in-sample",
        help="Historical only: also use bars up to the model's validation end (every output "
        "then says IN-SAMPLE).",
    ),
    cache: bool = typer.Option(
        True, "--cache/--no-cache", help="Reuse cached probabilities (each file checked)."
    ),
    by_regime: bool = typer.Option(
        False,
        "--by-regime",
        help="Historical only: also split the strategy's and buy-and-hold's returns by regime "
        "(bull, bear, sideways, volatile) of each bar's decision bar (docs/regimes.md).",
    ),
    regime_labeller: str | None = typer.Option(
        None,
        "--regime-labeller",
        help="With --by-regime and a plain model: rules (default) or hmm, fitted on the QQQ "
        "bars before the first traded bar (a multi-regime model uses its own).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print every number as JSON."),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Historical: write per-block, per-bar and fill tables (Parquet) and "
        "summary.json into this directory (each file replaced atomically). Walk-forward "
        "(required): a new or empty run folder for every fold's artifact, walkforward.json "
        "and sessions.csv.",
    ),
    audit: Path | None = typer.Option(
        None,
        "--audit",
        help="Historical and walk-forward: record the run into this audit database (SQLite; "
        "created if "
        "absent): config, hashes, both inference paths per bar, signals, orders, fills, block "
        "and run ends. Read it with `saudit`.",
    ),
    train_window: str | None = typer.Option(
        None,
        "--train-window",
        help="Walk-forward: sessions each fold trains on, like 60 or 60d (a d is one NYSE "
        "session; default 60).",
    ),
    retrain_every: str | None = typer.Option(
        None, "--retrain-every", help="Walk-forward: sessions between retrainings (default 5d)."
    ),
    warm_start: bool = typer.Option(
        False,
        "--warm-start",
        help="Walk-forward: each fold starts from the weights of the model trading before it "
        "(folds then train one after another); default: from scratch.",
    ),
    shadow_sessions: int | None = typer.Option(
        None,
        "--shadow-sessions",
        help="Walk-forward: sessions after each training window, trained on by neither model, "
        "on which the gate compares candidate and incumbent (default 5).",
    ),
    gate_margin: float | None = typer.Option(
        None,
        "--gate-margin",
        help="Walk-forward: log loss a candidate may lose to the incumbent and still replace it "
        "(default 0).",
    ),
    preset_name: str | None = typer.Option(
        None,
        "--preset",
        help="Walk-forward: model preset of every fold: quick, default, causal-quick or "
        "causal-default (default quick).",
    ),
    epochs: int | None = typer.Option(
        None, "--epochs", help="Walk-forward: training epochs per fold (default 3)."
    ),
    sequence_length: int | None = typer.Option(
        None, "--sequence-length", help="Walk-forward: window length (default: the preset's)."
    ),
    d_model: int | None = typer.Option(
        None, "--d-model", help="Walk-forward: model width (default: the preset's)."
    ),
    nhead: int | None = typer.Option(
        None, "--nhead", help="Walk-forward: attention heads (default: the preset's)."
    ),
    num_layers: int | None = typer.Option(
        None, "--num-layers", help="Walk-forward: blocks (default: the preset's)."
    ),
    horizon: int | None = typer.Option(
        None, "--horizon", help="Walk-forward: label, bars ahead (default 5)."
    ),
    deadzone_bp: float | None = typer.Option(
        None,
        "--label-deadzone-bp",
        help="Walk-forward: label, |forward return| <= this many basis points is left "
        "unlabelled (default 1).",
    ),
    learning_rate: float | None = typer.Option(
        None, "--learning-rate", help="Walk-forward: peak AdamW rate (default 3e-4)."
    ),
    batch_size: int | None = typer.Option(
        None, "--batch-size", help="Walk-forward: windows per step (default 256)."
    ),
    threads: int | None = typer.Option(
        None, "--threads", help="Walk-forward: torch intra-op threads per fold (default 1)."
    ),
    feature_spec: str | None = typer.Option(
        None,
        "--feature-spec",
        help="Walk-forward: spec file or shipped spec name (default feature_spec_55_minimal).",
    ),
    builtin_days: int | None = typer.Option(
        None,
        "--builtin-days",
        help="Walk-forward on --data builtin: sessions of the built-in market (default 120).",
    ),
    signal_strength: float | None = typer.Option(
        None,
        "--signal-strength",
        help="Walk-forward on --data builtin: planted signal of the market (default 0: none).",
    ),
    signal_flip_every: int | None = typer.Option(
        None,
        "--signal-flip-every",
        help="Walk-forward on --data builtin: the planted signal changes sign every N "
        "sessions (default 0: never).",
    ),
    cpu_capability: str | None = typer.Option(
        None,
        "--cpu-capability",
        help="Walk-forward: CPU kernels the folds' training may use (as `sentio train`; "
        "default auto).",
    ),
    backend: str | None = typer.Option(
        None,
        "--backend",
        help="Walk-forward: local (one fold after another) or ray (folds as Ray tasks; the "
        "extra sentio\\[ray]); the results are the same bytes (default local).",
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        help="Walk-forward with --backend ray: a Ray cluster's address (default: start a local "
        "Ray).",
    ),
    report: Path | None = report_option(),
    track: str | None = track_option(),
    config: Path | None = config_option(),
    show_config: bool = show_option(),
) -> None:
    """Run the TFA strategy over the last N blocks with real costs; compare with buy-and-hold
    QQQ and with staying flat over the same blocks."""
    run = resolve(ctx, config, command_line_only=COMMAND_LINE_ONLY)
    with run.checking():  # a bad value the file gave names the file and the setting
        job = checked_job(strategy, run, out, audit, show_config)
    if show_config:
        run.show()
        return
    s = run.settings
    record = _recording(job, report, track, out, audit, run)
    if job.mode == "walk-forward":
        from sentio.cli.walkforward_output import walk_forward

        backend = s["backend"] or "local"
        walk_forward(job.config, job.walk, out, audit, backend, s["ray_address"], json_out, record)
    elif job.mode == "simulation":
        _simulation(job.config, job.tracks, job.regimes, json_out)
    else:
        record.check()
        _historical_run(strategy, job.config, s, out, audit, json_out, record)


@dataclass(frozen=True)
class Recording:
    """What a run adds to its work: the HTML report and the MLflow run (None: not asked)."""

    report: Path | None
    uri: str | None
    settings: dict

    def files(self, *paths: Path | None) -> list[Path]:
        """The files to log with the run: those written (summary, report)."""
        return [p for p in (*paths, self.report) if p is not None and Path(p).is_file()]

    def check(self) -> None:
        """The tracking store reachable and writable: called after the run's own outputs
        are checked and before its work (a refused run leaves no store behind)."""
        if self.uri is not None:
            check_tracking(self.uri)


def _recording(job, report, track, out, audit, run: Resolved) -> Recording:
    """--report checked before any work, --track's URI read (a simulation writes nothing).
    The report is none of the run's inputs (the --config file included) and none of the
    files it writes (--out's, the audit's with its -wal and -shm)."""
    if job.mode == "simulation":
        for flag, given in (("--report", report), ("--track", track)):
            if given is not None:
                raise OptionError(
                    "applies to --mode historical and walk-forward; simulation records nothing",
                    flag=flag,
                )
        return Recording(None, None, run.settings)
    written = [] if audit is None else [audit, *(Path(f"{audit}{x}") for x in ("-wal", "-shm"))]
    if job.mode == "walk-forward":  # the fold models do not exist yet: the data and outputs
        inputs = [Path(d) for d in job.config.data if d != "builtin"]
        _report_outside(report, out, "the walk-forward run folder (new or empty)")
    else:
        inputs = _inputs(job.config)
        written += [] if out is None else [out / name for name in OUT_FILES]
    config_file = None if run.file is None else Path(run.file.path)
    check_report(report, *inputs, config_file, out, *written)
    return Recording(report, tracking_uri(track), run.settings)


def _report_outside(report: Path | None, folder: Path | None, what: str) -> None:
    if report is None or folder is None:
        return
    if Path(folder).resolve() in Path(report).resolve().parents:
        raise OptionError(f"{report} lies in {what}; write it beside the folder", flag="--report")


# What stays on the command line: outputs and how the result is shown (docs/config.md).
COMMAND_LINE_ONLY = ("out", "audit", "json_out", "report", "track")


@dataclass(frozen=True)
class Job:
    """One strattest run, checked: its mode, its config and the mode's own settings."""

    mode: str
    config: StrattestConfig
    walk: dict = field(default_factory=dict)  # walk-forward: from_flags's keywords given
    tracks: int = 0  # simulation: tracks per regime
    regimes: tuple[str, ...] = ()  # simulation


def checked_job(
    strategy: str, run: Resolved, out: Path | None, audit: Path | None, show: bool
) -> Job:
    """Every setting checked, before any work: which mode each belongs to, then the config
    (every bad value names its flag); with ``show`` (--show-config) the outputs are not
    checked (nothing is written)."""
    s = run.settings
    mode = s["mode"]
    if strategy != "tfa":
        raise OptionError(f"only tfa exists; got {excerpt(strategy)}", flag="STRATEGY")
    if mode not in MODES:
        raise OptionError(f"must be one of {', '.join(MODES)}; got {excerpt(mode)}", flag="--mode")
    walk = flags.walk_forward_flags(s)
    _check_by_regime(mode, s)
    _check_mode_flags(mode, s, out, audit)
    _check_walk_flags(mode, s, walk, out, show)
    _check_walk_inputs(mode, s, walk, out, audit)
    config = StrattestConfig.from_settings(s, run.file)
    if mode == "walk-forward":
        _walk_forward_config(config, walk)
        return Job(mode, config, walk=walk)
    if mode == "simulation":
        tracks = 3 if s["tracks"] is None else s["tracks"]  # None: not given
        regimes = _regimes(s["regime"] or ["mixed"], tracks, config)
        return Job(mode, config, tracks=tracks, regimes=regimes)
    if not show:
        _check_outputs(config, out, audit)
    _check_model_labeller(config, s["by_regime"], s["regime_labeller"])
    return Job(mode, config)


def _walk_forward_config(config, walk: dict):
    """The walk-forward config of these settings (checked; the run builds it again)."""
    from sentio.backtest.walkforward import WalkForwardConfig

    given = {"cpu_capability": "auto", **walk}  # as `sentio train`: AVX2 and AVX-512 alike
    return WalkForwardConfig.from_flags(strattest=config, **given)


def _historical_run(
    strategy: str, config, s: dict, out: Path | None, audit: Path | None, json_out: bool,
    record: Recording,
) -> None:  # fmt: skip
    """Run one historical strattest; write --out (and --report), log --track, print the
    report or the JSON document."""
    result, recorded = _historical(config, audit, json_out)
    document = _document(config, result, recorded)
    if s["by_regime"]:  # a report: the audit is unchanged
        document["by_regime"] = _by_regime(result, s["regime_labeller"])
    if out is not None:
        _write_out(out, result, document)
    if record.report is not None:
        from sentio.report import report_strattest

        report_strattest(result, record.report, by_regime=document.get("by_regime"))
    if record.uri is not None:
        import tempfile

        from sentio.runs.tracking import log_backtest

        with tempfile.TemporaryDirectory(prefix="sentio-track-") as scratch:
            summary = Path(scratch) / "summary.json"  # the document, as --out writes it
            summary.write_text(json_text(document) + "\n")
            mlflow_run = log_backtest(
                record.uri,
                document,
                kind="strattest",
                settings=record.settings,
                files=record.files(summary),
            )
        document["tracked"] = {"uri": record.uri, "run_id": mlflow_run}
    if json_out:
        print_json(document)
        return
    _report(strategy, config, result, recorded, audit)
    if s["by_regime"]:
        _print_by_regime(document["by_regime"])
    if record.report is not None:
        wrote(f"report: {record.report}", json_out)
    if record.uri is not None:
        wrote(f"tracked: MLflow run {document['tracked']['run_id']} at {record.uri}", json_out)


def _check_by_regime(mode: str, s: dict) -> None:
    """--by-regime splits one historical run; --regime-labeller belongs to it."""
    from sentio.train.regimes import check_labeller

    if not s["by_regime"]:
        if s["regime_labeller"] is not None:
            raise OptionError("applies with --by-regime only", flag="--regime-labeller")
        return
    if mode != "historical":
        raise OptionError(
            f"splits a historical run (one model on --data); not --mode {mode}",
            flag="--by-regime",
        )
    for flag, given in (("--tracks", s["tracks"] is not None), ("--regime", bool(s["regime"]))):
        if given:
            raise OptionError(
                f"splits a historical run by the labelled regime of each bar; {flag} belongs "
                "to --mode simulation",
                flag="--by-regime",
            )
    check_labeller(s["regime_labeller"])


def _check_model_labeller(config, by_regime: bool, regime_labeller: str | None) -> None:
    """Before any work: a multi-regime model labels with its own labeller."""
    from sentio.backtest.regimes import check_labeller
    from sentio.backtest.strattest import BacktestError, newest_artifact

    if by_regime and regime_labeller is not None:
        try:
            model = config.model or newest_artifact()
        except BacktestError:
            return  # the run refuses it, naming the flag
        check_labeller(model, regime_labeller)


def _by_regime(result, regime_labeller: str | None) -> dict:
    from sentio.backtest.regimes import strattest_by_regime

    return strattest_by_regime(result, regime_labeller).to_dict()


def _print_by_regime(report: dict) -> None:
    """The --by-regime table: per regime, the strategy and buy-and-hold on the same bars."""
    record = report["labeller"]
    fitted = record.get("fitted_on") or {}
    if "first_traded_time" in record:
        span = fitted.get("bars_before", {})
        where = (
            f"fitted on {fitted.get('bars', 0):,} QQQ bars before the first traded bar "
            f"({new_york(span['first_time'])} .. {new_york(span['last_time'])} New York)"
        )
    else:
        where = f"the model's own, fitted on its {fitted.get('split', 'training')} split"
    rows = []
    for name, runs in report["regimes"].items():
        for who, f in runs.items():
            rows.append(
                [
                    name,
                    who,
                    f["bars"],
                    f["sessions"],
                    figure(f["total_return_pct"]),
                    figure(f["mean_session_return_pct"]),
                    figure(tuple(f["session_return_ci95_pct"])),
                    figure(f["sharpe"]),
                    figure(f["max_drawdown_pct"]),
                ]
            )
    columns = ["regime", "who", "bars", "sessions", "total return %", "mean / session %"]
    title = f"by regime: {record['labeller']} labeller, {where}"
    columns += ["95% CI %", "Sharpe (sessions)", "max drawdown %"]
    console.print(table(title, columns, rows, left=2))
    if report["unlabelled_bars"]:
        console.print(
            f"{report['unlabelled_bars']} of {report['traded_bars']} traded bars lie before the "
            "labeller's warm-up and are in no regime",
            style="yellow",
        )


def _check_mode_flags(mode: str, s: dict, out: Path | None, audit: Path | None) -> None:
    """A flag that the chosen mode would ignore is an error, never silently dropped."""
    tracks, regime = s["tracks"] is not None, bool(s["regime"])
    if mode == "walk-forward":
        for flag, given in {"--tracks": tracks, "--regime": regime,
                            "--allow-in-sample": s["allow_in_sample"]}.items():  # fmt: skip
            if given:
                raise OptionError(
                    "does not apply to --mode walk-forward (every traded bar is after its "
                    "model's training)",
                    flag=flag,
                )
        return
    if mode == "historical":
        for flag, given in {"--tracks": tracks, "--regime": regime}.items():
            if given:
                raise OptionError(
                    "applies to --mode simulation only; this run is historical", flag=flag
                )
        return
    only_historical = {
        "--data": bool(s["data"]),
        "--allow-in-sample": s["allow_in_sample"],
        "--out": out is not None,
        "--audit": audit is not None,
    }
    for flag, given in only_historical.items():
        if given:
            raise OptionError(
                "applies to --mode historical only; simulation runs fresh built-in tracks "
                "and records or writes nothing",
                flag=flag,
            )


def _check_walk_flags(mode: str, s: dict, walk: dict, out: Path | None, show: bool) -> None:
    """Walk-forward's own flags only with --mode walk-forward; and there no --model (every
    fold trains its own) and no blocks (every traded session is a block)."""
    backend, ray_address = s["backend"], s["ray_address"]
    given = list(walk) + [k for k in ("backend", "ray_address") if s[k]]
    if mode != "walk-forward":
        for name in given:
            raise OptionError(
                f"applies to --mode walk-forward only; this run is {mode}",
                flag=flags.walk_forward_flag(name),
            )
        return
    for name in ("model", "blocks", "block_size"):
        if s[name] is not None:
            raise OptionError(
                "does not apply to --mode walk-forward: every fold trains its own model and "
                "every traded session is one block",
                flag="--" + name.replace("_", "-"),
            )
    if out is None and not show:
        raise OptionError(
            "walk-forward needs a run folder for the folds' artifacts and its report",
            flag="--out",
        )
    if backend is not None and backend not in ("local", "ray"):
        raise OptionError(f"must be local or ray; got {excerpt(backend)}", flag="--backend")
    if ray_address is not None and backend != "ray":
        raise OptionError("applies to --backend ray only", flag="--ray-address")


def _check_walk_inputs(mode: str, s: dict, walk: dict, out: Path | None,
                       audit: Path | None) -> None:  # fmt: skip
    """Walk-forward flags that the run as given would ignore: the built-in market's settings
    with data files, Ray with folds that must train one after another; and an audit database
    inside the run folder (the folder must be new or empty)."""
    if mode != "walk-forward":
        return
    if s["data"] and s["data"] != ["builtin"]:
        for name in ("builtin_days", "signal_strength", "signal_flip_every"):
            if walk.get(name) is not None:
                raise OptionError(
                    "applies to --data builtin only; drop it or the --data files",
                    flag="--" + name.replace("_", "-"),
                )
    if s["backend"] == "ray" and walk.get("warm_start"):
        raise OptionError(
            "with --warm-start each fold starts from the one before, so the folds train one "
            "after another and Ray has nothing to spread; drop one of them",
            flag="--backend",
        )
    if audit is not None and out is not None:
        inside = Path(audit).resolve().is_relative_to(Path(out).resolve())
        if inside:
            raise OptionError(
                f"{audit} lies inside the run folder {out}, which must be new or empty; put the "
                "audit database elsewhere",
                flag="--audit",
            )


def _regimes(regimes: list[str], tracks: int, config) -> tuple[str, ...]:
    from sentio.backtest.strattest import REGIMES

    for name in regimes:
        if name not in REGIMES:
            raise OptionError(
                f"must be among {', '.join(REGIMES)}; got {excerpt(name)}", flag="--regime"
            )
        if regimes.count(name) > 1:
            raise OptionError(f"{name} is given twice", flag="--regime")
    if not 1 <= tracks <= MAX_TRACKS:
        raise OptionError(f"must be between 1 and {MAX_TRACKS}; got {tracks}", flag="--tracks")
    bars = config.blocks * config.block_size
    if bars > MAX_SIMULATED_BARS:  # each track is generated in memory
        raise OptionError(
            f"--blocks x --block-size is {bars:,} simulated bars per track; at most "
            f"{MAX_SIMULATED_BARS:,}",
            flag="--blocks",
        )
    return tuple(regimes)


def _inputs(config) -> list[Path]:
    """What a run reads: the model directory, its files and the data files."""
    from sentio.backtest.strattest import newest_artifact

    model = Path(config.model or newest_artifact())
    files = [p for p in model.iterdir() if p.is_file()] if model.is_dir() else []
    return [model, *files, *(Path(d) for d in config.data if d != "builtin")]


def _check_outputs(config, out: Path | None, audit: Path | None) -> None:
    """Before any work: no output may be (or be written into) an input of this run."""
    inputs = _inputs(config)
    if audit is not None:
        check_output(audit, *inputs, flag="--audit")
    if out is not None:
        check_output(out, *inputs, audit, flag="--out", directory=True)
        for name in OUT_FILES:
            check_output(out / name, *inputs, audit, flag="--out")


def _historical(config, audit: Path | None, json_out: bool):
    from rich.progress import Progress

    from sentio.backtest.strattest import historical_plan, run_strattest

    with Progress(console=console, transient=True, disable=json_out) as bar:
        tasks = {"blocks": bar.add_task("blocks", total=None)}
        if audit is None:
            result = run_strattest(
                config,
                lambda done, total: bar.update(tasks["blocks"], completed=done, total=total),
            )
            return result, None
        from sentio.audit import AuditError, AuditStore, audited_strattest

        tasks["audit"] = bar.add_task("audit", total=None)
        try:
            store = AuditStore(audit)
        except AuditError as exc:
            raise OptionError(str(exc), flag="--audit") from None
        result, run_id = audited_strattest(
            historical_plan(config),
            store,
            progress=lambda stage, done, total: bar.update(
                tasks[stage], completed=done, total=total
            ),
        )
    recorded = {
        "db": str(audit),
        "run_id": run_id,
        "events": store.count(run_id),
        "head": store.head(run_id),
    }
    store.close()  # the last writer out leaves a single-file database (rollback journal)
    return result, recorded


def _document(config, result, recorded) -> dict:
    """Every number of a historical run, JSON-ready (``--json`` and summary.json)."""
    from sentio.backtest.strattest import figures_of
    from sentio.core.hashing import sha256_file

    return {
        "in_sample": result.in_sample,
        "fill": config.fill,
        "optimistic_fill": config.fill == "close",
        "model": str(result.model),
        # the model's identity as the audit records it (sha256 of manifest.json)
        "model_manifest_hash": sha256_file(Path(result.model) / "manifest.json"),
        "data": list(config.data),
        "inputs": result.inputs,
        "data_range": list(result.data_range),
        "simulated": result.simulated,
        "blocks_asked": result.blocks_asked,
        "blocks_run": result.blocks_run,
        "config": config.model_dump(mode="json"),
        "summary": figures_of(result),
        "costs": {k: v.to_dict() for k, v in result.costs.items()},
        "verdict": result.verdict.to_dict() if result.verdict else None,
        "blocks": result.per_block.to_dict(orient="records"),
        "inputs_range": result.inputs_range,
        "probability_cache": result.cache,
        "audit": recorded,
    }


def _write_out(out: Path, result, document: dict) -> None:
    """Each file replaced atomically (a kill leaves the old file or the complete new one);
    summary.json last, so it is never newer than the tables it describes."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {out}: {exc.strerror or exc}", flag="--out") from exc
    tables = {"blocks": result.per_block, "bars": result.per_bar, "fills": result.fills}
    for name, frame in tables.items():
        with atomic_output(out / f"{name}.parquet") as tmp:
            frame.to_parquet(tmp)
    write_bytes_atomic(out / "summary.json", (json_text(document) + "\n").encode())


def _report(strategy: str, config, result, recorded, audit) -> None:
    """The human-readable report; every time in New York."""
    from sentio.backtest.strattest import describe_inputs, figures_of

    if result.in_sample:
        console.print(BANNER, style="bold red")
    simulated = [s for s, flag in result.simulated.items() if flag]
    start, end = (new_york(t) for t in result.data_range)
    console.print(
        f"{describe_inputs(result.inputs)}; blocks {start} .. {end} New York; fill {config.fill}"
        + (" (OPTIMISTIC: at the signal bar's close)" if config.fill == "close" else "")
        + f"; costs: {config.costs.describe()}; simulated: {', '.join(simulated) or 'none'}",
        soft_wrap=True,
    )
    _cache_note(result.cache)
    _range_note(result.inputs_range)
    if result.blocks_run < result.blocks_asked:
        console.print(
            f"only {result.blocks_run} of {result.blocks_asked} blocks fit outside the "
            "model's data; ran those",
            style="yellow",
        )
    columns = {k: v | result.costs[k].to_dict() for k, v in figures_of(result).items()}
    blocks = "block" if result.blocks_run == 1 else "blocks"
    title = f"strattest {strategy}: {result.blocks_run} {blocks} of {config.block_size} bars"
    rows = figure_rows(REPORT_FIGURES, columns)
    console.print(table(title, ["figure", *columns], rows, left=1))
    _small_note(columns["strategy"])
    _print_blocks(result.per_block)
    console.print(result.verdict.text, soft_wrap=True)
    if recorded is not None:
        console.print(
            f"audit: run {recorded['run_id']}, {recorded['events']} events, chain head "
            f"{recorded['head']} in {audit} (check it: saudit verify --db {audit} "
            f"--run {recorded['run_id']})",
            soft_wrap=True,
        )
    if result.in_sample:
        console.print(BANNER, style="bold red")


def _print_blocks(blocks) -> None:
    """The per-block table: span, warm-up bars, return, fills, costs whole, turnover."""
    rows = [
        [
            row.block,
            new_york(row.start),
            new_york(row.end),
            row.warmup_bars,
            f"{row.return_pct:.3f}",
            row.fills,
            f"{row.fees:.2f}",
            f"{row.spread:.2f}",
            f"{row.costs:.2f}",
            f"{row.turnover:.2f}",
            f"{row.buy_and_hold_return_pct:.3f}",
        ]
        for row in blocks.itertuples()
    ]
    columns = ["block", "start (New York)", "end (New York)", "warm-up bars", "return %",
               "fills", "fees $", "spread $", "costs $", "turnover",
               "buy-and-hold %"]  # fmt: skip
    console.print(table("blocks", columns, rows, left=3))
    warm = int(blocks["warmup_bars"].sum())
    if warm:
        console.print(
            f"{warm} bars inside the blocks have no probability (the model's window is not "
            "full or valid there: a gap in the data starts it again); the strategy stays flat "
            "on them",
            style="yellow",
        )


def _small_note(summary: dict) -> None:
    """Under a figures table: what the mark on Sharpe, Sortino and Calmar means."""
    note = small_sample_note(summary)
    if note is not None:
        console.print(note, style="yellow", soft_wrap=True)


def _range_note(report: dict | None) -> None:
    """The inputs' range line (a warning when many bars lie beyond the training ranges)."""
    line = inputs_range_line(report)
    if line is not None:
        console.print(line[0], style=line[1], soft_wrap=True)


def _cache_note(cache: dict) -> None:
    """Say when cached probabilities were refused (recomputed) or could not be written."""
    if cache.get("rejected"):
        console.print(
            f"probability cache: {len(cache['rejected'])} file(s) could not be trusted and "
            f"were recomputed and replaced ({cache['rejected'][0]})",
            style="yellow",
            soft_wrap=True,
        )
    if cache.get("unwritten"):
        console.print(
            f"probability cache: not written ({cache['unwritten'][0]}); --no-cache skips it",
            style="yellow",
            soft_wrap=True,
        )


def _simulation(config, tracks: int, regimes: tuple[str, ...], json_out: bool) -> None:
    from sentio.backtest.strattest import describe_inputs, regime_summary, run_simulation

    with console.status(f"{tracks} fresh track(s) x {len(regimes)} regime(s)"):
        results = run_simulation(config, tracks, regimes)
    first = results[regimes[0]][0]
    document = {
        "mode": "simulation",
        "model": str(first.model),
        "inputs": first.inputs,
        "fill": config.fill,
        "optimistic_fill": config.fill == "close",
        "simulated": True,
        "regimes": {r: regime_summary(results[r], config) for r in regimes},
        "config": config.model_dump(mode="json"),
    }
    if json_out:
        print_json(document)
        return
    console.print(
        f"{describe_inputs(first.inputs)}; every instrument simulated; fill {config.fill}"
        + (" (OPTIMISTIC: at the signal bar's close)" if config.fill == "close" else "")
        + f"; costs: {config.costs.describe()}",
        soft_wrap=True,
    )
    for r, s in document["regimes"].items():
        columns = {k: s[k] | s["costs"][k] for k in s["costs"]}
        title = (
            f"strattest tfa --mode simulation, {r}: {s['tracks']} track(s), "
            f"{s['strategy']['blocks']} blocks of {config.block_size} bars"
        )
        rows = figure_rows(REPORT_FIGURES, columns)
        console.print(table(title, ["figure", *columns], rows, left=1))
        _small_note(s["strategy"])
        _range_note(s["inputs_range"])
        console.print(s["verdict"]["text"], soft_wrap=True)
