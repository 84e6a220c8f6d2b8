"""Sentio from Python: the commands as functions, for notebooks, scripts and `examples/`.

Each function calls what its command calls and returns the object that command prints, so a
notebook and the command line see the same numbers:

| function | command | returns |
|---|---|---|
| `synth` | `sentio data synth` | the generated `Market` (and its files with `out`) |
| `import_bars` | `sentio data import` | the canonical `Bars` and the `ImportReport` |
| `train` | `sentio train` | `TrainResult`: the artifact's path and its metrics.json |
| `evaluate` | `sentio model evaluate` | the evaluation document (the dict `--json` prints) |
| `strattest` | `sentio strattest tfa` | `StrattestResult` (historical mode) |
| `report` | `sentio report` | the path of the self-contained HTML report |
| `live` | `sentio live` | the live run's final summary (the dict `--json` ends with) |

Keyword arguments are the command's flags without dashes (`--block-size` is `block_size`)
with the same defaults; paths may be `str` or `Path`. Nothing is printed. A value a user can
get wrong raises a `sentio.core.errors.SentioError` subclass (`OptionError`, `BarsError`,
`ArtifactError`, ...) whose one-line message names the flag that argument stands for
(`--capital: ...` for `capital=`), as the command says it; nothing here calls `sys.exit`.

Not wrapped (use the command, or the module named): `strattest --mode simulation` and
`--mode walk-forward` (`sentio.backtest.strattest.run_simulation`, `sentio.backtest.walkforward`),
`--by-regime` (`sentio.backtest.regimes`), `sentio sweep` and `sentio train --enable-realtime`.

This module sits on top of every stage, beside `sentio.cli` (which it never imports).
docs/api.md shows it at work; `make docs` renders this reference into build/docs/.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sentio.backtest.strattest import StrattestConfig, StrattestResult
from sentio.core.errors import OptionError, excerpt
from sentio.core.files import check_output
from sentio.data import DEFAULT_MAX_GAP_MIN, Bars, ImportReport
from sentio.data.synth import Market

__docformat__ = "numpy"  # pdoc (make docs) reads the docstrings as numpydoc

__all__ = [
    "TrainResult",
    "evaluate",
    "import_bars",
    "live",
    "report",
    "strattest",
    "synth",
    "train",
]

PathLike = str | Path
Files = PathLike | Sequence[PathLike]
REGIME_MODELS = ("embedding", "experts")  # `sentio train --regime-model`


def _names(files: Files) -> list[str]:
    """One path or several, as the list of strings the stages take.

    >>> _names("q.parquet"), _names([Path("a.parquet"), "b.parquet"])
    (['q.parquet'], ['a.parquet', 'b.parquet'])
    """
    if isinstance(files, str | Path):
        return [str(files)]
    return [str(f) for f in files]


def synth(
    out: PathLike | None = None,
    *,
    seed: int = 7,
    days: int = 250,
    start: str = "2024-01-02",
    signal_strength: float = 0.0,
    signal_flip_every: int = 0,
    drift: bool = False,
    regime: str = "mixed",
) -> Market:
    """Generate the built-in synthetic market (`sentio data synth`).

    Parameters
    ----------
    out : str or Path, optional
        Folder to write `QQQ.parquet`, `TQQQ.parquet`, `PSQ.parquet`, `SQQQ.parquet` and
        `regimes.parquet` into (created); None writes nothing.
    seed, days, start, signal_strength, signal_flip_every, drift, regime
        As the flags of `sentio data synth` (docs/synthetic_market.md): the one seed, the
        number of NYSE sessions, the first session on or after `start`, the planted signal.

    Returns
    -------
    Market
        `bars` (symbol -> `Bars`; the siblings marked simulated), `regimes` (a label per
        bar) and `config`.

    Examples
    --------
    >>> market = synth(seed=3, days=2)
    >>> sorted(market.bars), len(market.bars["QQQ"].frame)
    (['PSQ', 'QQQ', 'SQQQ', 'TQQQ'], 780)
    """
    from sentio.data.synth import SynthConfig, generate, write_market

    if out is not None:
        check_output(Path(out), directory=True)
    config = SynthConfig(
        seed=seed,
        days=days,
        start=start,
        signal_strength=signal_strength,
        signal_flip_every=signal_flip_every,
        drift=drift,
        regime=regime,
    )
    market = generate(config)
    if out is not None:
        write_market(market, Path(out))
    return market


def import_bars(
    files: Files,
    out: PathLike | None = None,
    *,
    symbol: str | None = None,
    ts_col: str | None = None,
    tz: str | None = None,
    ts_unit: str | None = None,
    max_gap: int = DEFAULT_MAX_GAP_MIN,
    split: Sequence[str] = (),
    repair: str = "refuse",
    interval: str | None = None,
) -> tuple[Bars, ImportReport]:
    """Turn vendor files into one canonical, validated bar table (`sentio data import`).

    Parameters
    ----------
    files : str, Path or a sequence of them
        Polygon or IBKR CSV, Parquet, or any CSV with `ts_col` (docs/data.md).
    out : str or Path, optional
        Canonical Parquet file to write; None keeps the table in memory only.
    symbol, ts_col, tz, ts_unit, max_gap, repair, interval
        As `--symbol`, `--ts-col`, `--tz`, `--ts-unit`, `--max-gap`, `--repair` (refuse
        or drop) and `--interval` of `sentio data import`.
    split : sequence of str
        `"DATE:RATIO"` strings, as `--split`.

    Returns
    -------
    tuple of (Bars, ImportReport)
        `bars.frame` is the canonical table (`ts` int64 ns UTC, the bar's start); the
        report holds what each file gave and dropped, segments, holes and level shifts.

    Raises
    ------
    BarsError
        A row that breaks a rule (naming file, row, field and rule), unless `repair="drop"`.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.TemporaryDirectory()
    >>> csv = Path(folder.name) / "bars.csv"
    >>> _ = csv.write_text(
    ...     "time,open,high,low,close,volume\\n"
    ...     "2025-03-03 09:30,500.0,500.5,499.8,500.2,1200\\n"
    ...     "2025-03-03 09:31,500.2,500.4,500.0,500.1,900\\n"
    ...     "2025-03-03 08:00,499.0,499.5,498.8,499.2,50\\n"  # pre-market: dropped
    ... )
    >>> bars, report = import_bars(csv, Path(folder.name) / "q.parquet", symbol="QQQ",
    ...                            ts_col="time", tz="America/New_York")
    >>> bars.frame[["symbol", "close"]].values.tolist()
    [['QQQ', 500.2], ['QQQ', 500.1]]
    >>> report.interval_s, report.files[0].extended_hours
    (60, 1)
    >>> folder.cleanup()
    """
    from sentio.data import ReadOptions, Split, import_files, write_bars
    from sentio.data.ingest import parse_interval
    from sentio.data.validate import REPAIR_MODES

    names = _names(files)
    if repair not in REPAIR_MODES:
        raise OptionError(
            f"must be one of {', '.join(REPAIR_MODES)}; got {excerpt(repair)}", flag="--repair"
        )
    if out is not None:
        check_output(Path(out), *names)
    bars, imported = import_files(
        names,
        ReadOptions(symbol=symbol, ts_col=ts_col, tz=tz, ts_unit=ts_unit),
        repair=repair,
        max_gap_min=max_gap,
        splits=[Split.parse(s) for s in split],
        interval_s=None if interval is None else parse_interval(interval),
    )
    if out is not None:
        write_bars(bars, Path(out))
    return bars, imported


@dataclass(frozen=True)
class TrainResult:
    """What `sentio train` prints: the artifact it wrote and its metrics.json.

    `metrics["evaluation"]` scores the model, the logistic regression and the base rate on
    the validation and test parts; `metrics["edge"]` is the edge verdict;
    `metrics["history"]` the per-epoch losses and validation scores (docs/model.md).
    """

    artifact: Path  # the artifact directory (ONNX + TorchScript + metadata + manifest)
    metrics: dict[str, Any]  # metrics.json's content

    @property
    def edge(self) -> dict[str, Any]:
        """The edge verdict: `verdict` (none, weak or present), `reason` and its numbers."""
        return self.metrics["edge"]


# `sentio train`'s lower bounds on numbers (its flags' min=), checked here too before any
# work (tests/api compares this table with the command's).
TRAIN_MINIMA: dict[str, tuple[str, float]] = {
    "epochs": ("--epochs", 1),
    "batch_size": ("--batch-size", 1),
    "sequence_length": ("--sequence-length", 1),
    "d_model": ("--d-model", 1),
    "nhead": ("--nhead", 1),
    "num_layers": ("--num-layers", 1),
    "horizon": ("--horizon", 1),
    "deadzone_bp": ("--label-deadzone-bp", 0.0),
    "threads": ("--threads", 1),
    "builtin_days": ("--builtin-days", 10),
}


def train(
    data: Files = "builtin",
    *,
    output: PathLike = "artifacts/TFA/v1",
    feature_spec: str = "feature_spec_55_minimal",
    preset: str | None = None,
    quick: bool = False,
    epochs: int | None = None,
    batch_size: int = 256,
    learning_rate: float = 3e-4,
    sequence_length: int | None = None,
    d_model: int | None = None,
    nhead: int | None = None,
    num_layers: int | None = None,
    horizon: int = 5,
    deadzone_bp: float = 1.0,
    seed: int = 7,
    threads: int = 1,
    device: str = "cpu",
    builtin_days: int | None = None,
    signal_strength: float | None = None,
    resume: PathLike | None = None,
    cpu_capability: str = "auto",
    key_file: PathLike | None = None,
    multi_regime: bool = False,
    regime_labeller: str | None = None,
    regime_model: str = "embedding",
    synthetic_mix: float = 0.0,
    progress: Callable[[str, dict], None] | None = None,
) -> TrainResult:
    """Train a TFA model and write its artifact (`sentio train`; needs `sentio[train]`).

    Parameters
    ----------
    data : str, Path or a sequence of them
        Canonical Parquet file(s) with QQQ bars, or `"builtin"`: the synthetic market of
        `builtin_days` sessions seeded by `seed`, with `signal_strength`.
    output : str or Path
        Artifact directory to create (new or empty).
    preset : str, optional
        `"quick"` or `"default"` (None: default).
    quick : bool
        As `--quick`: the quick preset, 3 epochs, 60 built-in sessions.
    epochs, batch_size, learning_rate, seed, threads, device
        As the flags of `sentio train` (docs/model.md).
    sequence_length, d_model, nhead, num_layers, horizon
        The window and network, as their flags; None: the preset's value.
    deadzone_bp : float
        As `--label-deadzone-bp`.
    builtin_days, signal_strength, resume, key_file
        As `--builtin-days`, `--signal-strength`, `--resume` and `--key-file`.
    multi_regime, regime_labeller, regime_model, synthetic_mix
        As the regime flags (docs/regimes.md).
    cpu_capability : str
        As `--cpu-capability`. `"auto"` pins AVX2 kernels, which torch reads once when it
        starts: in a process where torch has already started (an earlier `import torch`,
        say), pass `"native"`.
    progress : callable, optional
        Called as `progress(event, values)`: `"start"` (steps, done), `"step"` (loss),
        `"epoch"` (val_auc, epoch).

    Returns
    -------
    TrainResult

    Examples
    --------
    A conflict is refused before any work:

    >>> train(quick=True, preset="default")
    Traceback (most recent call last):
    sentio.core.errors.OptionError: --preset: --quick trains the quick preset; drop quick or preset

    A tiny model on 12 built-in sessions takes seconds (real runs use the presets):

    >>> trained = train(output="runs/tiny", builtin_days=12, d_model=16, nhead=2,
    ...                 num_layers=1, sequence_length=8, epochs=3)  # doctest: +SKIP
    >>> trained.edge["verdict"]  # doctest: +SKIP
    'none'
    """
    from sentio.data.synth.generate import SynthConfig
    from sentio.features.regimes import NAMES
    from sentio.model.config import preset as model_preset
    from sentio.model.signing import signing_key
    from sentio.train.config import TrainConfig
    from sentio.train.pipeline import TrainRun, path_option, run_training
    from sentio.train.samples import LabelSpec

    names = _names(data)
    builtin = names == ["builtin"]
    given = locals()
    for name, (flag, least) in TRAIN_MINIMA.items():
        if given[name] is not None and given[name] < least:
            raise OptionError(f"must be >= {least}, got {given[name]}", flag=flag)
    if quick and preset is not None:
        raise OptionError("--quick trains the quick preset; drop quick or preset", flag="--preset")
    for flag, value in (("--builtin-days", builtin_days), ("--signal-strength", signal_strength)):
        if value is not None and not builtin:
            raise OptionError(
                "applies to data='builtin' only; drop it or the data files", flag=flag
            )
    if regime_model not in REGIME_MODELS:
        raise OptionError(
            f"must be {' or '.join(REGIME_MODELS)}, got {excerpt(regime_model)}",
            flag="--regime-model",
        )
    if regime_model != "embedding" and not multi_regime:
        raise OptionError("applies with multi_regime=True only", flag="--regime-model")
    output_dir = path_option(str(output), "--output")
    checkpoints = None if resume is None else path_option(str(resume), "--resume")
    experts = len(NAMES) if regime_model == "experts" else 0
    run = TrainRun(
        data=names,
        output=output_dir,
        model=model_preset(
            "quick" if quick else preset or "default",
            seq_len=sequence_length,
            d_model=d_model,
            nhead=nhead,
            num_layers=num_layers,
            regime_experts=experts if multi_regime else None,
        ),
        train=TrainConfig(
            epochs=epochs if epochs is not None else 3 if quick else 10,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
            threads=threads,
            device=device,
        ),
        label=LabelSpec(horizon=horizon, deadzone_bp=deadzone_bp),
        feature_spec=feature_spec,
        builtin=SynthConfig(
            seed=seed,
            days=builtin_days if builtin_days is not None else 60 if quick else 120,
            signal_strength=signal_strength or 0.0,
        ),
        checkpoints=checkpoints,
        resume=checkpoints is not None,
        cpu_capability=cpu_capability,
        signing_key=signing_key(key_file),
        regime_labeller=regime_labeller,
        multi_regime=multi_regime,
        synthetic_mix=synthetic_mix,
    )
    return TrainResult(artifact=output_dir, metrics=run_training(run, progress))


def evaluate(
    model: PathLike,
    data: Files = (),
    *,
    warmup: Files = (),
    regime_labeller: str | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """Score a model (`sentio model evaluate`): what its artifact recorded, or its scores
    on any bars outside its own data.

    Parameters
    ----------
    model : str or Path
        Artifact directory.
    data : str, Path or a sequence of them
        Canonical Parquet file(s) with the model's instrument (QQQ); none: what the
        artifact recorded (metrics.json).
    warmup, regime_labeller, seed
        As `--warmup`, `--regime-labeller` and `--seed` (with `data` only).

    Returns
    -------
    dict
        The document `sentio model evaluate --json` prints. With `data`: the model, the
        logistic regression and the base rate with 95 % session-bootstrap intervals
        (`overall`, `logistic_last_row`, `base_rate`), `calibration`, `by_half`,
        `by_week`, the `edge` verdict and where every bar went (`bars`); the keys are
        listed in `sentio.backtest.evaluation.Evaluation`. Without: `parts` (validation,
        test) as recorded at training and the `edge` verdict.

    Examples
    --------
    >>> evaluate("no/such/model")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    sentio.core.errors.ArtifactError: ...no/such/model...
    >>> evaluate("runs/tiny")["edge"]["verdict"]  # doctest: +SKIP
    'none'
    >>> doc = evaluate("runs/tiny", "market/QQQ.parquet")  # doctest: +SKIP
    >>> doc["overall"]["auc"], doc["overall"]["auc_ci95"]  # doctest: +SKIP
    (0.512..., [0.488..., 0.540...])
    """
    from sentio.backtest.evaluation import evaluate_on, recorded

    names, warm = _names(data), _names(warmup)
    if not names:
        for flag, given in (
            ("--warmup", warm),
            ("--regime-labeller", regime_labeller),
            ("--seed", seed),
        ):
            if given is not None and given != []:  # seed=0 is given too
                raise OptionError("applies with data only; give data files", flag=flag)
        return recorded(model)
    if seed is not None and seed < 0:
        raise OptionError(f"must be >= 0, got {seed}", flag="--seed")
    return evaluate_on(model, names, regime_labeller, seed, warm).to_dict()


def strattest(
    model: PathLike | None = None,
    data: Files = (),
    *,
    blocks: int = 5,
    block_size: int = 480,
    capital: float = 100_000.0,
    fill: str = "next-open",
    rule: str = "fitted",
    commission_per_share: float = 0.005,
    commission_min: float = 1.0,
    sec_fee_per_million: float = 27.80,
    taf_per_share: float = 0.000166,
    half_spread_bp: Sequence[str] = (),
    seed: int = 7,
    allow_in_sample: bool = False,
    cache: bool = True,
    audit: PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> StrattestResult:
    """Backtest the TFA strategy over the last blocks outside the model's data, with
    costs, beside buy-and-hold QQQ and staying flat (`sentio strattest tfa`, historical).

    Parameters
    ----------
    model : str or Path, optional
        Artifact directory; None: the newest under `artifacts/TFA`.
    data : str, Path or a sequence of them
        Canonical Parquet files, QQQ plus any of TQQQ, PSQ, SQQQ (missing ones simulated
        from QQQ); none: the model's own built-in market.
    blocks, block_size, capital, fill, rule, seed, allow_in_sample
        As the flags of `sentio strattest` (docs/backtest.md, docs/strategy.md).
    commission_per_share, commission_min, sec_fee_per_million, taf_per_share
        The costs, as their flags.
    half_spread_bp : sequence of str
        `"SYMBOL=BP"` for each of QQQ, TQQQ, PSQ, SQQQ; none: half a cent at each
        instrument's median price.
    cache : bool
        Reuse probabilities cached in `.sentio-cache` under the current folder.
    audit : str or Path, optional
        SQLite audit database to record the run into (created if absent); read it with
        `saudit`, or draw it with `report(out, audit=...)` (its newest run).
    progress : callable, optional
        Called as `progress(done, total)` after each block.

    Returns
    -------
    StrattestResult
        `summary` (strategy, buy_and_hold_qqq, flat: `Summary` figures), `costs`,
        `verdict` (its `text` is the command's verdict line), and the `per_block`,
        `per_bar`, `fills` and `orders` tables.

    Examples
    --------
    >>> strattest(capital=5)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    sentio.core.errors.OptionError: --capital: Input should be greater than or equal to 100...
    >>> result = strattest("runs/tiny", blocks=2, rule="adaptive")  # doctest: +SKIP
    >>> print(result.verdict.text)  # doctest: +SKIP
    verdict: no edge shown — 2 blocks are too few to judge (at least 10); ...
    """
    from sentio.backtest.strattest import historical_plan, newest_artifact, run_strattest

    config = StrattestConfig.from_flags(
        model=None if model is None else Path(model),
        data=_names(data),
        blocks=blocks,
        block_size=block_size,
        capital=capital,
        fill=fill,
        rule=rule,
        seed=seed,
        allow_in_sample=allow_in_sample,
        cache=cache,
        commission_per_share=commission_per_share,
        commission_min=commission_min,
        sec_fee_per_million=sec_fee_per_million,
        taf_per_share=taf_per_share,
        half_spread_bp=list(half_spread_bp),
    )
    if audit is None:
        return run_strattest(config, progress)
    from sentio.audit import AuditError, AuditStore, audited_strattest

    artifact = Path(config.model or newest_artifact())
    inputs = [artifact, *(p for p in artifact.iterdir() if p.is_file())]
    check_output(Path(audit), *inputs, *(Path(d) for d in config.data if d != "builtin"),
                 flag="--audit")  # fmt: skip
    try:
        store = AuditStore(audit)
    except AuditError as exc:
        raise OptionError(str(exc), flag="--audit") from None
    try:
        blocks_done = (lambda stage, done, total: progress(done, total)) if progress else None
        result, _ = audited_strattest(historical_plan(config), store, progress=blocks_done)
    finally:
        store.close()  # the last writer out leaves a single-file database
    return result


def report(
    out: PathLike,
    *,
    result: StrattestResult | None = None,
    run: PathLike | None = None,
    audit: PathLike | None = None,
    run_id: str | None = None,
) -> Path:
    """Write one self-contained HTML report (`sentio report`; needs `sentio[report]`).

    Parameters
    ----------
    out : str or Path
        The HTML file to write (atomically; all JavaScript and data inline, so opening it
        makes no network request).
    result : StrattestResult, optional
        A `strattest` result in memory.
    run : str or Path, optional
        A `strattest --out` folder, or a walk-forward run folder.
    audit : str or Path, optional
        An audit database.
    run_id : str, optional
        The audit's run to draw (default: its newest).

    Give exactly one of `result`, `run` and `audit`. The plots and tables: docs/report.md.

    Returns
    -------
    Path
        The report written.

    Examples
    --------
    >>> report("report.html")
    Traceback (most recent call last):
    sentio.core.errors.OptionError: give exactly one of result, run or audit; got none
    >>> report("report.html", result=strattest("runs/tiny", blocks=2))  # doctest: +SKIP
    PosixPath('report.html')
    """
    given = [n for n, v in (("result", result), ("run", run), ("audit", audit)) if v is not None]
    if len(given) != 1:
        raise OptionError(
            f"give exactly one of result, run or audit; got {' and '.join(given) or 'none'}"
        )
    if run_id is not None and audit is None:
        raise OptionError("picks a run of an audit database; give audit too", flag="--run")
    from sentio.report import report_audit, report_run, report_strattest

    if result is not None:
        return report_strattest(result, Path(out))
    if run is not None:
        return report_run(Path(run), Path(out))
    return report_audit(Path(audit), Path(out), run_id=run_id)


def live(
    feed: str,
    *,
    model: PathLike | None = None,
    broker: str = "paper",
    audit: PathLike | None = None,
    state: PathLike | None = None,
    history: PathLike | None = None,
    max_gap: int = DEFAULT_MAX_GAP_MIN,
    blocks: int | None = None,
    block_size: int = 480,
    capital: float = 100_000.0,
    fill: str = "next-open",
    rule: str = "fitted",
    allocation: str = "blend",
    commission_per_share: float = 0.005,
    commission_min: float = 1.0,
    sec_fee_per_million: float = 27.80,
    taf_per_share: float = 0.000166,
    half_spread_bp: Sequence[str] = (),
    max_gross_exposure: float = 3.0,
    max_order_value: float | None = None,
    max_orders_per_minute: int = 8,
    max_daily_loss: float | None = None,
    dry_run: bool = False,
    flatten_on_exit: bool = True,
    kill_file: PathLike | None = None,
    expire_after: int | None = None,
    bar_store: PathLike | None = None,
    registry: PathLike | None = None,
    allow_model_change: bool = False,
    adopt_broker_positions: bool = False,
    allow_in_sample: bool = False,
    poll: float = 1.0,
    seed: int = 7,
    on_bar: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    """Trade the model bar by bar from a feed through a broker (`sentio live`).

    Runs until the feed ends, `kill_file` appears or SIGTERM/SIGINT arrives (signals are
    caught when called from the main thread), then flattens (unless
    `flatten_on_exit=False`) and ends the run.

    Parameters
    ----------
    feed : str
        `replay:FILE[@SPEED]` (canonical Parquet, or `builtin` for the model's own market;
        SPEED x real time or `max`, the default), `csv-tail:FILE`, `jsonl:-` or `alpaca`.
    model, broker, audit, state, history, max_gap
        As the flags of `sentio live` (docs/live.md).
    blocks, block_size, capital, fill, rule, allocation
        The trading, as their flags. `blocks=N` on a replay trades strattest's last N
        blocks, each with fresh capital, as `strattest` does.
    commission_per_share, commission_min, sec_fee_per_million, taf_per_share, half_spread_bp
        The costs, as their flags.
    max_gross_exposure, max_order_value, max_orders_per_minute, max_daily_loss
        The risk limits, as their flags.
    dry_run, flatten_on_exit, kill_file, expire_after, bar_store, registry
        The run's control and model updates, as their flags.
    allow_model_change, adopt_broker_positions, allow_in_sample, poll, seed
        Restarts, the replay's bars, the feed's wait and the bootstrap, as their flags.
    on_bar : callable, optional
        Called after every bar with the status a `--json` line holds (ts, p, exposure,
        orders, positions, cash, equity, faults, refused, lag_s).

    Returns
    -------
    dict
        run_id, stop_reason, counts, positions, cash, equity, bars, fills, blocks and
        metrics (strattest's figures over the run), as `--json`'s final line.

    Examples
    --------
    >>> live("jsonl:-", max_daily_loss=120)
    Traceback (most recent call last):
    sentio.core.errors.OptionError: --max-daily-loss: Input should be less than 100, got 120
    >>> done = live("replay:builtin", model="runs/tiny", blocks=2)  # doctest: +SKIP
    >>> done["stop_reason"], done["blocks"]  # doctest: +SKIP
    ('the feed ended', 2)
    """
    from sentio.live.config import LiveConfig

    settings = {
        "model": model,
        "feed": feed,
        "broker": broker,
        "history": history,
        "max_gap": max_gap,
        "blocks": blocks,
        "block_size": block_size,
        "capital": capital,
        "fill": fill,
        "rule": rule,
        "allocation": allocation,
        "commission_per_share": commission_per_share,
        "commission_min": commission_min,
        "sec_fee_per_million": sec_fee_per_million,
        "taf_per_share": taf_per_share,
        "half_spread_bp": list(half_spread_bp),
        "max_gross_exposure": max_gross_exposure,
        "max_order_value": max_order_value,
        "max_orders_per_minute": max_orders_per_minute,
        "max_daily_loss": max_daily_loss,
        "dry_run": dry_run,
        "flatten_on_exit": flatten_on_exit,
        "kill_file": kill_file,
        "registry": registry,
        "expire_after": expire_after,
        "bar_store": bar_store,
        "allow_in_sample": allow_in_sample,
        "poll": poll,
        "seed": seed,
    }
    config = LiveConfig.from_settings(settings)
    from sentio.live.loop import LiveLoop

    loop = None
    try:
        loop = LiveLoop(
            config,
            state_dir=None if state is None else Path(state),
            audit=None if audit is None else Path(audit),
            on_bar=on_bar,
            allow_model_change=allow_model_change,
            adopt_broker_positions=adopt_broker_positions,
        )
        return loop.run()
    finally:
        if loop is not None and loop.store is not None:
            loop.store.close()
