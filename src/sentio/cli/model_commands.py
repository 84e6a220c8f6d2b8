"""``sentio train`` and ``sentio model info|verify|sign|parity``."""

from __future__ import annotations

from pathlib import Path

import typer

from sentio.cli.configfile import Resolved, config_option, resolve, show_option
from sentio.cli.output import console, new_york, print_json, table
from sentio.cli.recording import check_tracking, track_option, tracking_uri, wrote
from sentio.core.errors import OptionError, excerpt
from sentio.data.synth.generate import SynthConfig
from sentio.infer.ranges import describe as describe_ranges
from sentio.model.artifact import info, sign, verify
from sentio.model.config import PRESETS, ModelConfigError, preset
from sentio.model.signing import ENV_KEY, ENV_KEY_FILE, signing_key
from sentio.train.evaluate import checked_edge
from sentio.train.machine import CHOICES
from sentio.train.samples import LabelSpec

app = typer.Typer(help="Model artifacts: inspect, verify, sign.")

KEY_HELP = (
    f"Signing key file (HMAC-SHA256, >= 16 bytes); default: the file named by {ENV_KEY_FILE}, "
    f"else the value of {ENV_KEY}."
)


def train_command(
    ctx: typer.Context,
    data: list[str] = typer.Option(
        ["builtin"],
        "--data",
        help="Canonical Parquet file(s) with QQQ bars, or 'builtin' for "
        "the synthetic market. Repeatable.",
    ),
    feature_spec: str = typer.Option(
        "feature_spec_55_minimal", "--feature-spec", help="Spec file or shipped spec name."
    ),
    output: str = typer.Option(
        "artifacts/TFA/v1", "--output", help="Artifact directory to create (must not exist)."
    ),
    preset_name: str | None = typer.Option(
        None, "--preset", help=f"Model preset: {', '.join(PRESETS)} (default: default)."
    ),
    quick: bool = typer.Option(
        False,
        "--quick",
        help="The quick path: quick preset, 3 epochs, 60 built-in sessions "
        "unless --data is given (about 2 minutes on 2 cores).",
    ),
    epochs: int | None = typer.Option(
        None,
        "--epochs",
        min=1,
        help="Passes over the training split (default 10; early stopping may end sooner).",
    ),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Windows per step."),
    learning_rate: float = typer.Option(3e-4, "--learning-rate", help="Peak AdamW rate."),
    sequence_length: int | None = typer.Option(
        None, "--sequence-length", min=1, help="T, feature rows per window (preset: 48)."
    ),
    d_model: int | None = typer.Option(None, "--d-model", min=1, help="Embedding width."),
    nhead: int | None = typer.Option(None, "--nhead", min=1, help="Attention heads."),
    num_layers: int | None = typer.Option(None, "--num-layers", min=1, help="Blocks."),
    horizon: int = typer.Option(5, "--horizon", min=1, help="Label: bars ahead."),
    deadzone_bp: float = typer.Option(
        1.0,
        "--label-deadzone-bp",
        min=0.0,
        help="Label: |forward return| <= this (basis points) is left unlabelled.",
    ),
    seed: int = typer.Option(7, "--seed", help="Seed of initialisation, dropout, shuffling."),
    threads: int = typer.Option(1, "--threads", min=1, help="torch intra-op threads."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    builtin_days: int | None = typer.Option(
        None,
        "--builtin-days",
        min=10,
        help="Sessions of the built-in market (--data builtin; default 120, 60 with --quick).",
    ),
    signal_strength: float | None = typer.Option(
        None, "--signal-strength", help="Planted signal of the built-in market (default 0: none)."
    ),
    resume: str | None = typer.Option(
        None,
        "--resume",
        help="Checkpoint directory of a killed run (<output>.ckpt): continue "
        "it; same flags and data required.",
    ),
    cpu_capability: str = typer.Option(
        "auto",
        "--cpu-capability",
        help=f"CPU kernels torch, MKL and oneDNN may use: {', '.join(CHOICES)}. auto: avx2 where "
        "the CPU has it, so AVX2 and AVX-512 machines train alike; native: the CPU's best.",
    ),
    key_file: Path | None = typer.Option(None, "--key-file", help=KEY_HELP),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress."),
    multi_regime: bool = typer.Option(
        False,
        "--multi-regime",
        help="Regime-aware model (docs/regimes.md): the labeller, fitted on the training split, "
        "adds one column per regime (bull, bear, sideways, volatile) that enters the model; "
        "training weighs every regime equally; metrics.json scores each part per regime.",
    ),
    regime_labeller: str | None = typer.Option(
        None,
        "--regime-labeller",
        help="rules (trailing volatility and trend against training quantiles) or hmm (Gaussian "
        "HMM, forward filtered). With --multi-regime the default is the --feature-spec's own "
        "regimes block's labeller, else rules; alone, it only scores metrics.json per regime "
        "(the model is unchanged).",
    ),
    regime_model: str = typer.Option(
        "embedding",
        "--regime-model",
        help="--multi-regime: how the regime enters: embedding (its columns go through the "
        "input projection, a learned embedding added to each row) or experts (one head per "
        "regime, gated by the decision bar's regime).",
    ),
    synthetic_mix: float = typer.Option(
        0.0,
        "--synthetic-mix",
        help="--multi-regime: top up regimes rarer than 1/4 of the training samples with "
        "RATIO x that many samples from built-in market tracks of those regimes (training only, "
        "never validation or test; recorded in metrics.json). 0 to 10; default 0.",
    ),
    enable_realtime: bool = typer.Option(
        False,
        "--enable-realtime",
        help="Run the retrainer (docs/live.md): train candidates on the closed sessions of "
        "--bars as --policy says, gate them against --registry's current model, publish them, "
        "promote the ones the gate passes. Training flags given here override the policy file.",
    ),
    policy: Path | None = typer.Option(
        None,
        "--policy",
        help="--enable-realtime: TOML or JSON file of RetrainPolicy fields and training settings "
        "(named as the flags without dashes).",
    ),
    bars: Path | None = typer.Option(
        None, "--bars", help="--enable-realtime: the bar store of `sentio live --bar-store`."
    ),
    registry: Path | None = typer.Option(
        None, "--registry", help="--enable-realtime: the model registry to publish into."
    ),
    history: list[Path] = typer.Option(
        [],
        "--history",
        help="--enable-realtime: canonical Parquet of the bars before the store (the first "
        "model's data; features warm up on it). Repeatable.",
    ),
    poll: float | None = typer.Option(
        None,
        "--poll",
        min=0.01,
        max=86_400.0,
        help="--enable-realtime: seconds between checks, 0.01 to 86,400 (default 60).",
    ),
    once: bool = typer.Option(
        False, "--once", help="--enable-realtime: one check, then exit (scripts, cron)."
    ),
    max_retrains: int | None = typer.Option(
        None, "--max-retrains", min=1, help="--enable-realtime: stop after N trainings."
    ),
    track: str | None = track_option(),
    config: Path | None = config_option(),
    show_config: bool = show_option(),
) -> None:
    """Train a TFA model and write its artifact (ONNX + TorchScript + metadata + manifest);
    with --enable-realtime, keep a model registry's current model retrained while trading."""
    from sentio.train.pipeline import check_regimes, ready

    given = {name for name in ctx.params if _given(ctx, name)}
    if enable_realtime:
        for flag, name in (
            ("--config", "config"),
            ("--show-config", "show_config"),
            ("--track", "track"),
        ):
            if name in given:
                raise OptionError("the retrainer's settings file is --policy", flag=flag)
        _realtime(ctx, given, key_file)
        return
    stray = sorted(given & set(REALTIME_ONLY))
    if stray:
        raise OptionError(
            "applies to --enable-realtime only; add --enable-realtime or drop it",
            flag=REALTIME_ONLY[stray[0]],
        )
    run = resolve(ctx, config, command_line_only=TRAIN_COMMAND_LINE)
    with run.checking():  # a bad value the file gave names the file and the setting
        training = train_run(run, output, resume, key_file)
        check_regimes(training)
    if show_config:
        run.show()
        return
    uri = tracking_uri(track)  # its form now; the store once the outputs are fine
    ready(training)  # paths, CPU pin and the train extra, before any bar is read
    if uri is not None:
        check_tracking(uri)  # a store that cannot be written costs no training
    metrics = _train_with_progress(training, progress)
    _print_training(metrics, training, output)
    if uri is not None:
        from sentio.runs.tracking import log_training

        mlflow_run = log_training(uri, training.output, settings=run.settings)
        wrote(f"tracked: MLflow run {mlflow_run} at {uri}", False)


# What stays on the command line (docs/config.md): where the artifact goes, how to resume,
# the signing key, the progress bar, and the retrainer's flags (its settings file is --policy).
TRAIN_COMMAND_LINE = ("output", "resume", "key_file", "progress", "track", "enable_realtime",
                      "policy", "bars", "registry", "history", "poll", "once",
                      "max_retrains")  # fmt: skip


def train_run(run: Resolved, output: str, resume: str | None, key_file: Path | None):
    """The TrainRun of ``sentio train``'s resolved settings, checked before any bar is read:
    an option that would be silently ignored is an error (issue 12 section 3). A run whose
    settings came from a --config file records them, and the file, in model.meta.json."""
    from sentio.train.config import TrainConfig
    from sentio.train.pipeline import TrainRun, path_option

    s = run.settings
    if s["quick"] and s["preset"] is not None:
        raise OptionError(
            f"--quick trains the quick preset; drop --quick or --preset {s['preset']}",
            flag="--preset",
        )
    builtin = s["data"] == ["builtin"]
    for name in ("builtin_days", "signal_strength"):
        if s[name] is not None and not builtin:
            raise OptionError(
                "applies to --data builtin only; drop it or the --data files",
                flag="--" + name.replace("_", "-"),
            )
    output_dir = path_option(output, "--output")
    checkpoints = None if resume is None else path_option(resume, "--resume")
    if s["regime_model"] not in REGIME_MODELS:
        raise OptionError(
            f"must be {' or '.join(REGIME_MODELS)}, got {excerpt(s['regime_model'])}",
            flag="--regime-model",
        )
    # a file may pin the default (--show-config writes every setting); any other value, or
    # the flag itself, would be ignored without --multi-regime
    typed = run.source["regime_model"] == "command line"
    if not s["multi_regime"] and (typed or s["regime_model"] != "embedding"):
        raise OptionError("applies with --multi-regime only", flag="--regime-model")
    model = _network(s)
    quick = s["quick"]
    epochs = s["epochs"] if s["epochs"] is not None else 3 if quick else 10
    days = s["builtin_days"] if s["builtin_days"] is not None else 60 if quick else 120
    recorded = {"invocation": run.to_dict()} if run.file is not None else {}
    return TrainRun(
        data=list(s["data"]),
        output=output_dir,
        model=model,
        train=TrainConfig(
            epochs=epochs,
            batch_size=s["batch_size"],
            learning_rate=s["learning_rate"],
            seed=s["seed"],
            threads=s["threads"],
            device=s["device"],
        ),
        label=LabelSpec(horizon=s["horizon"], deadzone_bp=s["label_deadzone_bp"]),
        feature_spec=s["feature_spec"],
        builtin=SynthConfig(seed=s["seed"], days=days, signal_strength=s["signal_strength"] or 0.0),
        checkpoints=checkpoints,
        resume=checkpoints is not None,
        cpu_capability=s["cpu_capability"],
        signing_key=signing_key(key_file),
        regime_labeller=s["regime_labeller"],
        multi_regime=s["multi_regime"],
        synthetic_mix=s["synthetic_mix"],
        **recorded,
    )


def _network(s: dict):
    """The network of the settings: the preset with the fields given."""
    try:
        return preset(
            "quick" if s["quick"] else s["preset"] or "default",
            seq_len=s["sequence_length"],
            d_model=s["d_model"],
            nhead=s["nhead"],
            num_layers=s["num_layers"],
            regime_experts=REGIME_MODELS[s["regime_model"]] if s["multi_regime"] else None,
        )
    except ModelConfigError as exc:  # "--flag: why": an OptionError, so a file's is named
        flag, sep, why = str(exc).partition(": ")
        if sep and flag.startswith("--"):
            raise OptionError(why, flag=flag) from None
        raise


def _print_training(metrics: dict, run, output: str) -> None:
    """The evaluation table, the per-regime table, the sample counts, warnings and the edge."""
    rows = []
    for part in ("validation", "test"):
        for who, scores in metrics["evaluation"][part].items():
            rows.append(
                [
                    part,
                    who,
                    scores["n"],
                    f"{scores['auc']:.4f}",
                    f"{scores['log_loss']:.4f}",
                    f"{scores['brier']:.4f}",
                    f"{scores['accuracy']:.4f}",
                    f"{scores['majority_class_accuracy']:.4f}",
                ]
            )
    console.print(
        table(
            "Evaluation (nothing was chosen on the test part)",
            ["part", "predictor", "n", "AUC", "log loss", "Brier", "accuracy", "majority"],
            rows,
            left=2,
        )
    )
    if "regimes" in metrics:
        _regime_table(metrics["regimes"])
    if run.multi_regime:
        console.print(
            "regime model: the original C++ code cannot load it (it has no REGIME op to compute "
            "the regime columns); model.meta.json regimes.original_cpp says so"
        )
    counts = metrics["samples"]
    console.print(
        f"samples: {counts['samples']} of {counts['bars']} bars, "
        f"{counts['positive'] / max(counts['samples'], 1):.1%} positive; removed: "
        + "; ".join(f"{k}: {v}" for k, v in counts["removed"].items())
    )
    for shift in metrics.get("level_shifts", []):
        console.print(f"warning: {shift}", markup=False, highlight=False, soft_wrap=True)
    console.print(edge_line(metrics["edge"]), markup=False, highlight=False)
    signed = " signed" if run.signing_key else ""
    console.print(f"wrote{signed} {output} (best epoch {metrics['best_epoch']})")


def edge_line(edge: dict | None) -> str:
    """The edge verdict as one line (metrics.json ``edge``; docs/model.md "Edge").

    >>> edge_line({"verdict": "none", "reason": "validation AUC 0.502 [0.490, 0.520] includes 0.5"})
    'edge: none - validation AUC 0.502 [0.490, 0.520] includes 0.5'
    >>> edge_line(None)
    'edge: not recorded (an artifact trained before the verdict existed)'
    """
    if edge is None:
        return "edge: not recorded (an artifact trained before the verdict existed)"
    return f"edge: {edge['verdict']} - {edge['reason']}"


REGIME_MODELS = {"embedding": 0, "experts": 4}  # --regime-model -> TFAConfig.regime_experts


def _regime_table(regimes: dict) -> None:
    """metrics.json's per-regime scores as one table (docs/regimes.md)."""
    rows = []
    for part in ("validation", "test"):
        for name, s in regimes[part].items():
            if not s["samples"]:
                rows.append([part, name, 0, 0, "-", "-", "-"])
                continue
            rows.append(
                [
                    part,
                    name,
                    s["samples"],
                    s["sessions"],
                    f"{s['auc']:.4f} ({s['auc_ci95'][0]:.4f}..{s['auc_ci95'][1]:.4f})",
                    f"{s['log_loss']:.4f}",
                    f"{s['accuracy']:.4f}",
                ]
            )
    title = f"Per regime ({regimes['labeller']} labeller fitted on the training split"
    title += ", in the model)" if regimes["in_model"] else ", not in the model)"
    console.print(
        table(
            title,
            ["part", "regime", "n", "sessions", "AUC (95% session CI)", "log loss", "accuracy"],
            rows,
            left=2,
        )
    )
    if "synthetic" in regimes:
        kept = sum(t["kept"] for t in regimes["synthetic"]["tracks"])
        console.print(f"synthetic top-up: {kept} training samples from built-in market tracks")


# --enable-realtime's own flags, and the one-shot flags it refuses (parameter -> flag)
REALTIME_ONLY = {
    "policy": "--policy",
    "bars": "--bars",
    "registry": "--registry",
    "history": "--history",
    "poll": "--poll",
    "once": "--once",
    "max_retrains": "--max-retrains",
}
ONE_SHOT = {
    "data": "--data (the retrainer trains on --history and --bars)",
    "output": "--output (candidates go into --registry)",
    "resume": "--resume",
    "quick": '--quick (give preset = "quick" in --policy)',
    "builtin_days": "--builtin-days",
    "signal_strength": "--signal-strength",
    "progress": "--progress/--no-progress",
    "multi_regime": "--multi-regime",
    "regime_labeller": "--regime-labeller",
    "regime_model": "--regime-model",
    "synthetic_mix": "--synthetic-mix",
}
# training flags that override a policy file's key of the same meaning (parameter -> key)
OVERRIDES = {
    "preset_name": "preset",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "learning_rate": "learning_rate",
    "sequence_length": "sequence_length",
    "d_model": "d_model",
    "nhead": "nhead",
    "num_layers": "num_layers",
    "horizon": "horizon",
    "deadzone_bp": "label_deadzone_bp",
    "seed": "seed",
    "threads": "threads",
    "device": "device",
    "feature_spec": "feature_spec",
    "cpu_capability": "cpu_capability",
}


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the parameter ``name`` was given (not its default). By the source's name: typer
    may run on click or on its own copy of it, each with its own ParameterSource enum."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _realtime(ctx: typer.Context, given: set[str], key_file: Path | None) -> None:
    """``sentio train --enable-realtime``: the flags -> a Retrainer, run until stopped."""
    from sentio.backtest.retrainer import WORK, Retrainer, RetrainerConfig, read_policy

    refused = sorted(given & set(ONE_SHOT))
    if refused:
        flag, _, why = ONE_SHOT[refused[0]].partition(" ")
        raise OptionError(f"makes no sense with --enable-realtime {why}".rstrip(), flag=flag)
    p = ctx.params
    for name in ("bars", "registry"):
        if p[name] is None:
            raise OptionError("is required with --enable-realtime", flag=REALTIME_ONLY[name])
    doc = read_policy(p["policy"]) if p["policy"] is not None else {}
    doc.update({OVERRIDES[n]: p[n] for n in sorted(given & set(OVERRIDES))})
    source = str(p["policy"]) if p["policy"] is not None else "the flags"
    opts = {param.name: param.opts[0] for param in ctx.command.params if param.opts}
    flags = {OVERRIDES[n]: opts[n] for n in given & set(OVERRIDES)}  # key -> the flag given
    config = RetrainerConfig.from_settings(
        doc,
        source,
        flags,
        bar_store=p["bars"],
        registry=p["registry"],
        work=p["registry"] / WORK,
        history=tuple(p["history"]),
        signing_key=signing_key(key_file),
    )

    def say(line: str) -> None:
        console.print(line, markup=False, highlight=False, soft_wrap=True)

    retrainer = Retrainer(config, say)
    if p["once"]:
        result = retrainer.check()
        say(result.line())
        if result.action == "failed":
            raise typer.Exit(1)
        return
    done = retrainer.run(p["poll"] or 60.0, p["max_retrains"])
    why = f"{retrainer.stopped_by}: " if retrainer.stopped_by else ""
    say(f"retrainer: {why}stopped after {done} training(s)")


def _train_with_progress(run, show: bool) -> dict:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from sentio.train.pipeline import run_training

    if not show:
        return run_training(run)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("training", total=1, info="")
        state = {"val": ""}

        def report(event: str, values: dict) -> None:
            if event == "start":
                bar.update(task, total=values["steps"], completed=values["done"])
            elif event == "step":
                bar.update(task, advance=1, info=f"loss {values['loss']:.4f}{state['val']}")
            elif event == "epoch":
                state["val"] = f"  val AUC {values['val_auc']:.4f} (epoch {values['epoch']})"

        return run_training(run, report)


@app.command("info")
def info_command(
    directory: Path = typer.Argument(..., help="Artifact directory."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    key_file: Path | None = typer.Option(None, "--key-file", help=KEY_HELP),
) -> None:
    """Summarise an artifact: shape, spec, label, data ranges, test metrics, signature."""
    summary = info(directory, signing_key(key_file))
    summary["edge"] = _recorded_edge(directory, summary)
    if json_out:
        print_json(summary)
    else:
        _info_table(directory, summary)
    if summary["manifest"].startswith("FAILED"):
        raise typer.Exit(1)  # a file differs from its manifest: shown, and the exit says so


def _recorded_edge(directory: Path, summary: dict) -> dict | None:
    """metrics.json's edge verdict (None when absent, or when the manifest failed: the file
    may then be anything)."""
    from sentio.model.artifact import read_json

    if summary["manifest"].startswith("FAILED"):
        return {"verdict": "unknown", "reason": "not read: the artifact failed verification"}
    return checked_edge(
        read_json(directory, "metrics.json").get("edge"), str(directory / "metrics.json")
    )


def _info_table(directory: Path, summary: dict) -> None:
    skip = ("splits", "saved_at", "edge")
    rows = [[k, _cell(v)] for k, v in summary.items() if k not in skip]
    rows.append(["edge", edge_line(summary["edge"]).removeprefix("edge: ")])
    rows.insert(3, ["saved_at (New York)", new_york(summary["saved_at"])])
    for part, r in summary["splits"].items():
        span = f"{new_york(r['first_time'])} .. {new_york(r['last_time'])} New York"
        rows.append([f"{part} samples", f"{r['samples']} ({span})"])
    console.print(table(f"Artifact {directory}", ["field", "value"], rows, left=2))


def _cell(value) -> str:
    """A table cell: a mapping as ``key: value`` pairs, a float with 4 decimals, never a repr."""
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


@app.command("verify")
def verify_command(
    directory: Path = typer.Argument(..., help="Artifact directory."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    key_file: Path | None = typer.Option(None, "--key-file", help=KEY_HELP),
) -> None:
    """Check the files, manifest, signature (with a key), metadata, the legacy metadata.json
    and the recorded windows through ONNX Runtime and TorchScript.

    Exits 1 when any check fails; a check that could not run says "not checked".
    """
    checks = verify(directory, signing_key(key_file), torchscript=True)
    if json_out:
        print_json([c.__dict__ for c in checks])
    else:
        console.print(
            table(
                f"Verify {directory}",
                ["check", "result", "detail"],
                [[c.name, _result(c), c.detail] for c in checks],
                left=3,
            )
        )
    if not all(c.passed for c in checks):
        raise typer.Exit(1)


def _result(check) -> str:
    if not check.checked:
        return "not checked"
    return "pass" if check.passed else "FAIL"


@app.command("sign")
def sign_command(
    directory: Path = typer.Argument(..., help="Artifact directory."),
    key_file: Path | None = typer.Option(None, "--key-file", help=KEY_HELP),
) -> None:
    """Write signature.json (HMAC-SHA256 of manifest.json) for an artifact that passes its
    checks. Sign only an artifact you trust: the signature vouches for its current bytes."""
    key = signing_key(key_file)
    if key is None:
        raise OptionError(
            f"no signing key: give --key-file, or set {ENV_KEY_FILE} or {ENV_KEY}",
            flag="--key-file",
        )
    doc = sign(directory, key)
    console.print(f"signed {directory} (HMAC-SHA256, key id {doc['key_id']}, from {key.source})")


@app.command("parity")
def parity_command(
    directory: Path = typer.Argument(..., help="Artifact directory."),
    data: Path = typer.Option(..., "--data", help="Canonical bar table (Parquet)."),
    symbol: str = typer.Option("QQQ", "--symbol", help="Symbol of the table to run."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Run both inference paths (sequence and stream) over DATA and compare every bar.

    Exits 1 when any probability differs.
    """
    from sentio.data import read_bars
    from sentio.infer import compare

    frame = read_bars(data).of(symbol)
    with console.status(f"running both paths over {len(frame)} bars"):
        report, _, _ = compare(directory, frame)
    if json_out:
        print_json(report.to_dict())
    else:
        console.print(
            table(
                f"Parity {directory} on {data} ({symbol})",
                ["measure", "value"],
                [[k, v] for k, v in report.to_dict().items()],
                left=1,
            )
        )
    if not report.identical:
        raise typer.Exit(1)


@app.command("evaluate")
def evaluate_command(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., help="Artifact directory."),
    data: list[Path] = typer.Option(
        [],
        "--data",
        help="Canonical Parquet file(s) with the model's instrument (QQQ), as `sentio train "
        "--data` reads them. Repeatable. Scores the model on every labelled bar outside its own "
        "data (its first training bar to its validation end, and the embargo either side): "
        "bars before and after it, out of sample only. Without it: what the artifact recorded "
        "(metrics.json).",
    ),
    warmup: list[Path] = typer.Option(
        [],
        "--warmup",
        help="--data: canonical Parquet file(s) of earlier bars that warm the features and the "
        "model's window up but are never scored; they must end before the first --data bar. "
        "Repeatable.",
    ),
    regime_labeller: str | None = typer.Option(
        None,
        "--regime-labeller",
        help="--data, plain model: score per regime with rules or hmm, fitted on the given bars "
        "inside the model's own data (never on a scored bar). A multi-regime model uses its "
        "own labeller.",
    ),
    seed: int | None = typer.Option(
        None,
        "--seed",
        min=0,
        max=2**63 - 1,
        help="--data: seed of the session bootstrap and an hmm labeller (default: the artifact's).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Score a model: what its artifact recorded, or its scores on any bars (--data).

    Without --data: metrics.json's scores per part, the edge verdict (and per
    regime).

    With --data: the model, the logistic regression trained with it and the
    base rate on the labelled bars outside the model's own data: AUC, log loss,
    Brier and accuracy with 95% session block bootstrap intervals, calibration,
    AUC by half and by week (and per regime), and the edge verdict. Reads only.
    The --json keys are listed in docs/model.md.
    """
    from sentio.backtest.evaluation import evaluate_on, recorded
    from sentio.train.regimes import check_labeller

    check_labeller(regime_labeller)
    if not data:
        for name, flag in (
            ("regime_labeller", "--regime-labeller"),
            ("seed", "--seed"),
            ("warmup", "--warmup"),
        ):
            if _given(ctx, name):
                raise OptionError("applies with --data only; add --data FILE", flag=flag)
        doc = recorded(directory)
        if json_out:
            print_json(doc)
        else:
            _recorded_tables(doc)
        return
    with console.status(f"scoring {directory}"):
        result = evaluate_on(
            directory, [str(d) for d in data], regime_labeller, seed, [str(w) for w in warmup]
        )
    if json_out:
        print_json(result.to_dict())
    else:
        _evaluation_tables(result.to_dict())


def _recorded_tables(doc: dict) -> None:
    rows = [
        [part, who, s["n"], f"{s['auc']:.4f}", f"{s['log_loss']:.4f}", f"{s['accuracy']:.4f}"]
        for part, predictors in doc["parts"].items()
        for who, s in predictors.items()
    ]
    console.print(
        table(
            f"Recorded at training ({doc['model']}/metrics.json)",
            ["part", "predictor", "n", "AUC", "log loss", "accuracy"],
            rows,
            left=2,
        )
    )
    _say(edge_line(doc["edge"]))
    if doc["regimes"] is not None:
        _regime_table(doc["regimes"])


def _say(line: str) -> None:
    console.print(line, markup=False, highlight=False)


def _interval(s: dict, key: str) -> str:
    if s.get(key) is None:
        return "-"
    if s.get(f"{key}_ci95") is None:
        return f"{s[key]:.4f}"
    low, high = s[f"{key}_ci95"]
    return f"{s[key]:.4f} ({low:.4f}..{high:.4f})"


def _evaluation_tables(doc: dict) -> None:
    """``model evaluate --data``'s human output: scores, edge, calibration, halves, weeks,
    regimes, and where every bar went."""
    s, base = doc["overall"], doc["base_rate"]
    n = [s["samples"], s["sessions"]]
    scores = ("auc", "log_loss", "brier", "accuracy")
    rows = [["model", *n, *(_interval(s, k) for k in scores)]]
    logistic = doc["logistic_last_row"]
    if logistic is not None:
        rows.append(["logistic regression", *n, *(_interval(logistic, k) for k in scores)])
    majority = "up" if base["majority_class"] else "down"
    rows.append(
        [f"base rate {base['train_positive_rate']:.4f} (majority: {majority})", *n, "0.5000"]
        + [_interval(base, k) for k in scores[1:]]
    )
    span = f"{new_york(doc['scored_ts']['first_ts'])} .. {new_york(doc['scored_ts']['last_ts'])}"
    console.print(
        table(
            f"Out of sample: {doc['model']} on {', '.join(doc['data'])} ({span} New York)",
            ["predictor", "n", "sessions", "AUC", "log loss", "Brier", "accuracy"],
            rows,
            left=1,
        )
    )
    if logistic is None:
        _say(f"logistic regression: not scored: {doc['logistic_last_row_reason']}")
    _say(f"intervals (in brackets): {doc['intervals']}")
    _say(edge_line(doc["edge"]))
    _calibration_table(doc["calibration"])
    _time_tables(doc)
    if doc["regimes"] is not None:
        _evaluation_regimes(doc["regimes"])
    _bars_line(doc)


def _calibration_table(cal: dict) -> None:
    rows = []
    logistic = cal["logistic_last_row"] or [None] * len(cal["model"])
    for m, g in zip(cal["model"], logistic, strict=True):
        row = [m["bin"], m["count"], _num(m["mean_predicted"]), _num(m["observed_rate"])]
        if g is not None:
            row += [g["count"], _num(g["mean_predicted"]), _num(g["observed_rate"])]
        rows.append(row)
    columns = ["p bin", "model n", "mean p", "observed up"]
    if cal["logistic_last_row"] is not None:
        columns += ["logistic n", "mean p", "observed up"]
    console.print(table("Calibration (probability bins)", columns, rows, left=1))


def _num(value) -> str:
    """A figure with 4 decimals; "-" for none (an empty bin, a week with one class)."""
    return "-" if value is None or value != value else f"{value:.4f}"


def _time_tables(doc: dict) -> None:
    rows = []
    for h in doc["by_half"]:
        span = "-"
        if h["samples"]:
            span = f"{new_york(h['first_ts'])} .. {new_york(h['last_ts'])}"
        auc = _interval(h, "auc") if h["samples"] else "-"
        logistic = _interval(h, "logistic_auc") if h["samples"] else "-"
        rows.append([h["half"], span, h["sessions"], h["samples"], auc, logistic])
    console.print(
        table(
            "AUC by half of the scored sessions (New York)",
            ["half", "span", "sessions", "n", "model AUC", "logistic AUC"],
            rows,
            left=2,
        )
    )
    rows = [
        [w["week"], w["sessions"], w["samples"], _num(w["auc"]), _num(w["logistic_auc"])]
        for w in doc["by_week"]
    ]
    console.print(
        table(
            "AUC by ISO week (New York dates; no interval: 5 sessions at most)",
            ["week", "sessions", "n", "model AUC", "logistic AUC"],
            rows,
            left=1,
        )
    )


def _evaluation_regimes(regimes: dict) -> None:
    rows = []
    logistic = regimes["by_regime_logistic"] or {}
    for name, r in regimes["by_regime"].items():
        if not r["samples"]:
            rows.append([name, 0, 0, "-", "-", "-", "-"])
            continue
        g = logistic.get(name)
        row = [name, r["samples"], r["sessions"], _interval(r, "auc")]
        row += [_interval(r, "log_loss"), _interval(r, "accuracy")]
        rows.append(row + [_interval(g, "auc") if g else "-"])
    console.print(
        table(
            f"Per regime ({regimes['labeller']} labeller: {regimes['source']})",
            ["regime", "n", "sessions", "AUC", "log loss", "accuracy", "logistic AUC"],
            rows,
            left=1,
        )
    )
    if regimes["before_warm_up"]:
        _say(f"{regimes['before_warm_up']} scored bars before the labeller's warm-up")


def _bars_line(doc: dict) -> None:
    bars, model = doc["bars"], doc["model_data"]
    warm = ""
    if doc["warmup"]:
        carried = "carried on into" if bars["warmup_joined"] else "NOT contiguous with"
        warm = f"{bars['warmup']:,} --warmup bars (never scored; {carried} the --data bars); "
    _say(
        f"scored {bars['scored']:,} of {bars['total']:,} {doc['symbol']} bars "
        f"({bars['scored_before_model_data']:,} before the model's data, "
        f"{bars['scored_after_model_data']:,} after it); {warm}skipped "
        f"{bars['in_sample_skipped']:,} in-sample bars (the model's data: first training bar "
        f"{new_york(model['train_first_ts'])} to validation end "
        f"{new_york(model['validation_last_ts'])} New York, and {model['embargo_bars']} bars "
        f"either side), {bars['unlabelled']:,} without a label (session end, segment, data end "
        f"or dead zone), {bars['no_probability']:,} without a probability (warm-up)"
    )
    if doc.get("inputs_range"):
        _say(describe_ranges(doc["inputs_range"]))


REGISTRY_HELP = "Registry folder (versions/, current.json, history.jsonl)."


@app.command("publish")
def publish_command(
    directory: Path = typer.Argument(..., help="Artifact directory to publish."),
    registry: Path = typer.Option(..., "--registry", help=REGISTRY_HELP),
    note: str = typer.Option("", "--note", help="Why it is published (kept in the history)."),
) -> None:
    """Verify an artifact and copy it into the registry as its next version (not current)."""
    from sentio.model.versions import ModelRegistry

    version = ModelRegistry(registry).publish(directory, note)
    console.print(f"published {directory} as {version} in {registry}")


@app.command("promote")
def promote_command(
    version: str = typer.Argument(..., help="The version to make current (see history)."),
    registry: Path = typer.Option(..., "--registry", help=REGISTRY_HELP),
    reason: str = typer.Option("", "--reason", help="Why (kept in the history)."),
) -> None:
    """Point the registry's current model at VERSION (atomically)."""
    from sentio.model.versions import ModelRegistry

    before = ModelRegistry(registry).promote(version, reason)
    console.print(f"current: {version} (was {before or 'none'})")


@app.command("rollback")
def rollback_command(
    registry: Path = typer.Option(..., "--registry", help=REGISTRY_HELP),
    reason: str = typer.Option("", "--reason", help="Why (kept in the history)."),
) -> None:
    """Point the registry's current model back at the version it replaced."""
    from sentio.model.versions import ModelRegistry

    back = ModelRegistry(registry).rollback(reason)
    console.print(f"current: {back} (rolled back)")


@app.command("history")
def history_command(
    registry: Path = typer.Option(..., "--registry", help=REGISTRY_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every publish, promote and rollback of a registry, and its current version (reads only)."""
    from sentio.model.versions import ModelRegistry, RegistryError

    if not registry.is_dir():
        raise RegistryError(f"{registry} is not a registry folder", flag="--registry")
    store = ModelRegistry(registry)
    doc = {"current": store.current(), "versions": store.versions(), "history": store.history()}
    if json_out:
        print_json(doc)
        return
    rows = [
        [new_york(e["at"]), e["action"], e["version"], e.get("previous") or "", e["reason"]]
        for e in doc["history"]
    ]
    console.print(
        table(
            f"registry {registry}: current {doc['current'] or 'none'}",
            ["at (New York)", "action", "version", "previous", "reason"],
            rows,
            left=5,
        )
    )
