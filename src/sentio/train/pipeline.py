"""``sentio train`` from top to bottom: bars -> features -> samples -> split -> train ->
evaluate -> export -> artifact. Every step is recorded in the artifact."""

from __future__ import annotations

import dataclasses
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sentio import __version__
from sentio.core.clock import build_time
from sentio.core.environment import environment
from sentio.core.errors import ArtifactError, BarsError, OptionError, OutputError, SentioError
from sentio.core.files import check_output
from sentio.core.hashing import content_hash, sha256_file
from sentio.data import read_bars
from sentio.data.levels import shifts_between
from sentio.data.synth.generate import SynthConfig, generate
from sentio.features import FeatureEngine
from sentio.features.inputs import as_input, clock_columns
from sentio.features.regimes import NAMES, RegimeBlock
from sentio.model.artifact import (
    LEGACY_CLIP,
    json_bytes,
    load_verified,
    npy_bytes,
    write_artifact,
)
from sentio.model.config import TFAConfig
from sentio.model.signing import SigningKey
from sentio.train.chunks import run_starts
from sentio.train.config import CHECKPOINT, TrainConfig
from sentio.train.costrule import decision_bars, fit_cost_rule
from sentio.train.evaluate import (
    edge,
    evaluate,
    fit_logistic,
    fit_thresholds,
    logistic_inputs,
    predict_logistic,
    quantiles,
    sigmoid,
)
from sentio.train.machine import pin_cpu, require_torch, training_platform
from sentio.train.regimes import (
    by_regime,
    check_labeller,
    fit_block,
    refuse_regime_spec,
    regime_frame,
    regime_weights,
    synthetic_top_up,
)
from sentio.train.samples import (
    LabelSpec,
    SampleError,
    SampleReport,
    Samples,
    Split,
    select_samples,
    split_by_session,
    valid_windows,
    windows,
)

PARITY_WINDOWS = 256
CAUSAL_PARITY_ROWS = 64  # logits per recorded stretch of a causal model (4 stretches: 256)


def causal_stretch_starts(starts: np.ndarray, rows: np.ndarray, length: int) -> np.ndarray:
    """First rows of up to 4 stretches of ``length`` ready rows, each ending at one of
    ``rows`` (evenly spread) and lying in one run of ready rows."""
    fits = rows[starts[rows] <= rows - length + 1]
    if not len(fits):
        raise SampleError(f"no run of {length} ready rows ends in the test part")
    ends = fits[np.linspace(0, len(fits) - 1, min(4, len(fits))).astype(int)]
    return ends - length + 1


ARTIFACT_SCHEMA = "2.0"


@dataclass
class TrainRun:
    """Everything one training run depends on (recorded in model.meta.json)."""

    data: list[str]  # canonical Parquet files, or ["builtin"]
    output: Path
    model: TFAConfig = field(default_factory=TFAConfig)
    train: TrainConfig | None = None  # None: TrainConfig() (torch is imported only to train)
    label: LabelSpec = field(default_factory=LabelSpec)
    feature_spec: str = "feature_spec_55_minimal"
    symbol: str = "QQQ"
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    builtin: SynthConfig = field(default_factory=lambda: SynthConfig(days=120))
    checkpoints: Path | None = None
    resume: bool = False
    cpu_capability: str = "native"  # sentio.train.machine.CHOICES; the CLI pins avx2 ("auto")
    signing_key: SigningKey | None = None  # signs the artifact (signature.json) when given
    # Walk-forward and the retrainer (issue 14): samples only from NYSE sessions first..last
    # (inclusive; bars after ``last`` are not read, bars before ``first`` only warm features
    # up); None: every session.
    sessions: tuple[int, int] | None = None
    warm_start: Path | None = None  # an artifact whose weights start training (same network)
    # Regimes (issue 15, docs/regimes.md): ``regime_labeller`` ("rules"/"hmm"; with
    # ``multi_regime`` and None: the spec's own block's, else rules) is fitted on the
    # training split and scores every part per regime; with ``multi_regime`` its columns also
    # enter the model, training balances the regimes, and ``synthetic_mix`` > 0 tops rare
    # regimes up with built-in market samples (training only).
    regime_labeller: str | None = None
    multi_regime: bool = False
    synthetic_mix: float = 0.0
    # `sentio train --config FILE`: the resolved settings and the file's path and sha256
    # (sentio.cli.configfile.Resolved.to_dict), recorded in model.meta.json only when a file
    # was used, so a run without one writes the same bytes as before
    invocation: dict | None = None

    @property
    def checkpoint_dir(self) -> Path:
        """Where the per-epoch checkpoint goes: ``--resume``'s folder or ``<output>.ckpt``."""
        return self.checkpoints or self.output.with_name(self.output.name + ".ckpt")


@dataclass
class Prepared:
    """Features, samples and the split: what training and evaluation read."""

    engine: FeatureEngine
    frame: pd.DataFrame
    features: np.ndarray
    samples: Samples
    report: SampleReport
    split: Split
    data_record: dict
    regime: np.ndarray | None = None  # (N,) regime index per bar (NAMES order), -1: none yet
    block: RegimeBlock | None = None  # the fitted labeller
    ready: np.ndarray | None = None  # (N,) bool: every feature past its warm-up

    def starts(self) -> np.ndarray:
        """Each row's first row of its run of ready rows (``chunks.run_starts``): where a
        causal model's context may begin."""
        return run_starts(self.frame["segment"].to_numpy(np.int64), self.ready)


def load_bars(run: TrainRun) -> tuple[pd.DataFrame, dict]:
    """One symbol's canonical rows, and a record of where they came from (hashes)."""
    if run.data == ["builtin"]:
        market = generate(run.builtin)
        frame = market.bars[run.symbol].of(run.symbol)
        return frame, {"source": "builtin", "synth": run.builtin.record()}
    frames, files, tables = [], [], []
    for index, name in enumerate(run.data):
        bars = read_bars(name)
        if run.symbol not in bars.symbols:  # one import per symbol: the siblings' files
            continue
        tables.append((str(name), bars))
        rows = bars.of(run.symbol).copy()
        rows["segment"] = rows["segment"].astype(np.int64) + index * 1_000_000
        frames.append(rows)
        files.append({"path": str(name), "sha256": sha256_file(name), "rows": len(rows)})
    if not frames:
        raise BarsError(f"no {run.symbol} bars in {', '.join(map(str, run.data))}; give its file")
    frame = pd.concat(frames, ignore_index=True).sort_values("ts", kind="stable")
    if frame["ts"].duplicated().any():
        raise BarsError(f"files {run.data} overlap in time for {run.symbol}; give disjoint files")
    record = {"source": "files", "files": files}
    # a volume or price scale that changes between files (docs/data.md "Level shifts"): warned,
    # recorded when present (so the fingerprint of a run without one is unchanged)
    shifts = [s.message() for s in shifts_between(tables, run.symbol)]
    if shifts:
        record["level_shifts"] = shifts
    return frame.reset_index(drop=True), record


def prepare(run: TrainRun) -> Prepared:
    frame, record = load_bars(run)
    session = clock_columns(frame["ts"].to_numpy(np.int64))[1]
    usable = np.ones(len(frame), dtype=bool)
    if run.sessions is not None:
        first, last = run.sessions
        frame = frame[session <= last].reset_index(drop=True)  # nothing after the window
        session = session[session <= last]
        usable = session >= first  # earlier bars only warm the features up
        record = {**record, "sessions": [int(first), int(last)]}
        if not usable.any():
            raise BarsError(f"no {run.symbol} bars in NYSE sessions {first}..{last}")
    engine = FeatureEngine(run.feature_spec)
    given = engine.spec.regimes  # a spec's own block: its windows are kept, its numbers refitted
    if run.multi_regime:
        engine = FeatureEngine(engine.spec.with_regimes(None))
    else:
        refuse_regime_spec(engine.spec)
    computed = engine.compute(as_input(frame))
    segment = frame["segment"].to_numpy(np.int64)
    samples, report = select_samples(
        frame["close"].to_numpy(np.float64),
        segment,
        session,
        computed.ready & usable,
        run.model.seq_len,
        run.label,
    )
    embargo = run.label.horizon + run.model.reach  # no label or context shared across parts
    split = split_by_session(samples, session, run.fractions, embargo)
    report.removed["embargo between splits"] = split.embargoed
    prep = Prepared(
        engine, frame, computed.values, samples, report, split, record, ready=computed.ready
    )
    if not (run.regime_labeller or run.multi_regime):
        return prep
    # --regime-labeller, else the spec's own block's labeller, else rules
    labeller = run.regime_labeller or (
        given.labeller if given is not None and given.labeller in ("rules", "hmm") else "rules"
    )
    windows = (120, 390) if given is None else (given.vol_window, given.trend_window)
    return with_regimes(prep, run, usable, labeller, windows)


def with_regimes(
    prep: Prepared, run: TrainRun, usable: np.ndarray, labeller: str, windows: tuple[int, int]
) -> Prepared:
    """Fit the labeller on the training split's bars (up to its last decision bar) and label
    every bar; a multi-regime run's engine gets the labeller as its spec's ``regimes`` block
    (its columns last), and its windows that reach back before the columns' warm-up are
    dropped (reported). ``windows``: the labeller inputs' (vol window, trend window)."""
    seed = (run.train or TrainConfig()).seed
    last_train = int(prep.samples.rows[prep.split.train[-1]])
    fit = usable & (np.arange(len(prep.frame)) <= last_train)
    ts = prep.frame["ts"].to_numpy(np.int64)
    first = int(np.flatnonzero(fit)[0]) if fit.any() else 0
    record = {"first_ts": int(ts[first]), "last_ts": int(ts[last_train]), "split": "train"}
    block = fit_block(labeller, prep.frame, fit, seed, record, windows)
    regime = regime_frame(block, prep.frame)["regime_id"].to_numpy(np.int64)  # -1: not yet
    if not run.multi_regime:  # reporting only: the model and its samples stay as they are
        return dataclasses.replace(prep, regime=regime, block=block)
    # the model reads the columns: a window must be past their warm-up from its first row
    spec = prep.engine.spec.with_regimes(block)
    labelled = FeatureEngine(spec).compute(as_input(prep.frame))
    engine, features = FeatureEngine(spec), labelled.values
    segment = prep.frame["segment"].to_numpy(np.int64)
    has = valid_windows(segment, labelled.ready, run.model.seq_len)[prep.samples.rows]
    dropped = int((~has).sum())
    if dropped:
        keep = np.flatnonzero(has)
        index = np.full(len(has), -1)
        index[keep] = np.arange(len(keep))
        old = prep.samples
        samples = Samples(old.rows[keep], old.labels[keep], old.forward_return[keep])
        parts = (prep.split.train, prep.split.validation, prep.split.test)
        split = Split(*(index[part][has[part]] for part in parts), prep.split.embargoed)
        if not all(len(part) for part in (split.train, split.validation, split.test)):
            raise SampleError("a part has no samples past the regime labeller's warm-up")
        prep = dataclasses.replace(prep, samples=samples, split=split)
    prep.report.removed["before the regime labeller's warm-up"] = dropped
    return dataclasses.replace(
        prep,
        engine=engine,
        features=features,
        regime=regime,
        block=block,
        ready=labelled.ready,
    )


def covered_rows(n: int, rows: np.ndarray, seq_len: int) -> np.ndarray:
    """Mask of the ``n`` rows that the windows ending at ``rows`` cover."""
    covered = np.zeros(n, dtype=bool)
    for offset in range(seq_len):
        covered[rows - offset] = True
    return covered


def normalisation(
    features: np.ndarray, rows: np.ndarray, seq_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (float32) of every feature over the rows the training windows cover."""
    used = features[covered_rows(len(features), rows, seq_len)].astype(np.float64)
    mean, std = used.mean(axis=0), used.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


def feature_ranges(features: np.ndarray, rows: np.ndarray, seq_len: int) -> dict:
    """Each feature's smallest and largest value over the rows the training windows cover
    (the rows :func:`normalisation` uses): the artifact's record of what the model saw, against
    which serving counts bars whose features leave it."""
    used = features[covered_rows(len(features), rows, seq_len)].astype(np.float64)
    return {
        "fitted_on": "train windows' rows",
        "min": [float(v) for v in used.min(axis=0)],
        "max": [float(v) for v in used.max(axis=0)],
    }


def ranges(prep: Prepared) -> dict:
    """Row numbers and timestamps (ns UTC, ISO) of each part, for the artifact."""
    ts = prep.frame["ts"].to_numpy(np.int64)
    out = {}
    for name in ("train", "validation", "test"):
        rows = prep.samples.rows[getattr(prep.split, name)]
        out[name] = {
            "samples": len(rows),
            "positive": int(prep.samples.labels[getattr(prep.split, name)].sum()),
            "first_row": int(rows[0]),
            "last_row": int(rows[-1]),
            "first_ts": int(ts[rows[0]]),
            "last_ts": int(ts[rows[-1]]),
            "first_time": pd.Timestamp(int(ts[rows[0]]), tz="UTC").isoformat(),
            "last_time": pd.Timestamp(int(ts[rows[-1]]), tz="UTC").isoformat(),
        }
    return out


def versions() -> dict:
    import onnx
    import onnxruntime
    import torch

    return {
        "sentio": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def path_option(value: str, flag: str) -> Path:
    """A folder flag's value as a Path. An empty value is refused: ``Path("")`` is ``.``, and
    training would quietly write into (or resume from) the current folder.

    >>> path_option("runs/v2", "--output")
    PosixPath('runs/v2')
    """
    if not value.strip():
        raise OptionError("is empty; give a folder path", flag=flag)
    return Path(value)


def check_paths(run: TrainRun) -> None:
    """Refuse, before any bar is read, an --output or checkpoint folder that training could
    not write at its end (issue 12 section 3: a run once failed there after 8 minutes)."""
    if run.output.name in ("", ".", ".."):  # "." or "/": no name to create, none for .ckpt
        raise OutputError(
            f"{run.output} names no new folder; give one such as artifacts/TFA/v2",
            flag="--output",
        )
    out = check_output(run.output, flag="--output", directory=True)
    if out.exists() and any(out.iterdir()):
        raise OutputError(f"{out} exists and is not empty; choose a new folder", flag="--output")
    ckpt = run.checkpoint_dir
    if run.resume:
        if not (ckpt / CHECKPOINT).is_file():
            raise OptionError(f"{ckpt} holds no {CHECKPOINT} to resume from", flag="--resume")
        check_output(ckpt, flag="--resume", directory=True)
        return
    check_output(ckpt, flag="--output", directory=True)
    if (ckpt / CHECKPOINT).exists():
        # training would overwrite the checkpoint of an earlier (perhaps killed) run
        raise OutputError(
            f"{ckpt} holds the checkpoint of an earlier run: continue it with --resume {ckpt}, "
            "or remove it",
            flag="--output",
        )


def check_regimes(run: TrainRun) -> None:
    """The regime options fit together (docs/regimes.md)."""
    check_labeller(run.regime_labeller)
    if run.synthetic_mix and not run.multi_regime:
        raise OptionError("tops up a multi-regime run; add --multi-regime", flag="--synthetic-mix")
    if not 0 <= run.synthetic_mix <= 10:
        raise OptionError(f"must be 0 to 10, got {run.synthetic_mix:g}", flag="--synthetic-mix")
    if run.model.regime_experts and not run.multi_regime:
        raise OptionError("a regime experts head needs --multi-regime", flag="--regime-model")
    if run.model.regime_experts not in (0, len(NAMES)):
        raise OptionError(f"an experts head has {len(NAMES)} experts", flag="--regime-model")
    if run.model.causal and run.model.regime_experts:
        raise OptionError(
            "the causal presets have one plain head; use --regime-model embedding or a "
            "window preset",
            flag="--regime-model",
        )
    if run.model.causal and run.synthetic_mix:
        raise OptionError(
            "tops up window samples; the causal presets train on chunks of real rows",
            flag="--synthetic-mix",
        )


def ready(run: TrainRun) -> str:
    """Every check that needs no bar, in order: the regime options, output paths, the CPU pin
    (set before torch starts), the train extra. Returns the resolved pin."""
    check_regimes(run)
    check_paths(run)
    pinned = pin_cpu(run.cpu_capability)
    require_torch()
    return pinned


def _write(run: TrainRun, files: dict[str, bytes]) -> None:
    """Write the artifact; a failure after training says how to keep the work."""
    try:
        write_artifact(run.output, files, key=run.signing_key)
    except (SentioError, OSError) as exc:
        reason = " ".join(str(exc).split())
        raise ArtifactError(
            f"training finished but the artifact could not be written ({reason}); the trained "
            f"weights are in {run.checkpoint_dir}: rerun with the same flags plus --resume "
            f"{run.checkpoint_dir} --output NEW_DIR to write it without training again",
            file=str(run.output),
        ) from exc


def artifact_hash(folder: Path) -> str:
    """The manifest hash of the artifact in ``folder`` (what a warm start started from)."""
    return sha256_file(Path(folder) / "manifest.json")


def start_from(model, run: TrainRun, spec_hash: str) -> None:
    """Load the weights of ``run.warm_start`` into ``model`` (its normalisation stays the one
    just fitted on this run's training rows). The network and the feature spec must match."""
    import io

    import torch

    meta = load_verified(run.warm_start)
    if meta["config"] != run.model.to_dict() or meta["expects"]["spec_hash"] != spec_hash:
        raise OptionError(
            f"{run.warm_start} has another network or feature spec than this run; a warm start "
            "needs the same preset, sequence length and feature spec",
            flag="--warm-start",
        )
    if run.model.causal:
        from sentio.model.causal import state_from_runtime
        from sentio.model.weights import from_bytes

        path = Path(run.warm_start) / "model.safetensors"
        weights = state_from_runtime(from_bytes(path.read_bytes(), str(path)))
    else:
        scripted = torch.jit.load(io.BytesIO((Path(run.warm_start) / "model.pt").read_bytes()))
        weights = {k: v for k, v in scripted.state_dict().items() if k not in ("mean", "std")}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if set(missing) != {"mean", "std"} or unexpected:
        raise ArtifactError(
            f"model.pt's weights do not fit the network (missing {missing}, extra {unexpected})",
            file=str(run.warm_start),
        )


@dataclass(frozen=True)
class Mix:
    """What the trainer reads: the features, samples and split (the real ones, plus any
    synthetic top-up appended to the training part) and the per-sample weights."""

    features: np.ndarray
    samples: Samples
    split: Split
    weights: np.ndarray | None
    synthetic: dict | None


def regime_mix(run: TrainRun, prep: Prepared, seed: int) -> Mix:
    """Balanced weights and the synthetic top-up of a multi-regime run (module regimes.py);
    a plain run trains on the prepared data unweighted."""
    if not run.multi_regime:
        return Mix(prep.features, prep.samples, prep.split, None, None)
    samples, split = prep.samples, prep.split
    regime = prep.regime[samples.rows[split.train]]
    if run.synthetic_mix <= 0:
        return Mix(prep.features, samples, split, regime_weights(regime), None)
    top = synthetic_top_up(
        prep.engine, regime, run.synthetic_mix, run.model.seq_len, run.label, seed
    )
    offset, first = len(prep.features), len(samples.rows)
    joined = Samples(
        np.r_[samples.rows, top.samples.rows + offset],
        np.r_[samples.labels, top.samples.labels].astype(np.float32),
        np.r_[samples.forward_return, top.samples.forward_return],
    )
    extra = first + np.arange(len(top.samples.rows))
    split = Split(np.r_[split.train, extra], split.validation, split.test, split.embargoed)
    weights = regime_weights(np.r_[regime, top.regime])
    record = {**top.record, "samples": len(extra), "used_in": "training only"}
    return Mix(np.vstack([prep.features, top.features]), joined, split, weights, record)


def regime_metrics(run: TrainRun, prep: Prepared, probabilities: dict, mix: Mix, seed: int):
    """metrics.json's ``regimes``: each part's scores per regime and the training shares."""
    session = clock_columns(prep.frame["ts"].to_numpy(np.int64))[1]
    rows = {
        name: prep.samples.rows[getattr(prep.split, name)]
        for name in ("train", "validation", "test")
    }
    train_regime = prep.regime[rows["train"]]
    out = {
        "labeller": prep.block.labeller,
        "in_model": run.multi_regime,
        "train_share": {name: float(np.mean(train_regime == i)) for i, name in enumerate(NAMES)},
    }
    out["unlabelled"] = {}  # decision bars before the labeller's warm-up: in no regime
    for name in ("validation", "test"):
        y = prep.samples.labels[getattr(prep.split, name)].astype(np.float64)
        out[name] = by_regime(
            y, probabilities[name], prep.regime[rows[name]], session[rows[name]], seed
        )
        out["unlabelled"][name] = int((prep.regime[rows[name]] < 0).sum())
    if mix.synthetic is not None:
        out["synthetic"] = mix.synthetic
    return out


def regime_record(run: TrainRun, prep: Prepared, mix: Mix) -> dict:
    """model.meta.json's ``regimes``: the labeller, how it enters the model, the weights."""
    record = {
        "labeller": prep.block.labeller,
        "names": list(NAMES),
        "fitted_on": prep.block.fitted_on,
        "in_model": run.multi_regime,
    }
    if run.multi_regime:
        record |= {
            "columns": list(prep.block.columns),
            "model": "experts" if run.model.regime_experts else "embedding",
            "weights": "balanced: a training sample of regime r weighs n / (R n_r)",
            "synthetic_mix": run.synthetic_mix,
            "original_cpp": "not loadable: the original C++ engine has no REGIME op, so it "
            "cannot compute this model's regime columns (model.pt and metadata.json load, "
            "but their inputs cannot be made)",
        }
    return record


def fit_cost_rule_on_validation(run: TrainRun, prep: Prepared, model, seed: int) -> dict:
    """The cost rule (docs/strategy.md), fitted on every decision bar of the validation range:
    the model's probability there, the closes and the label horizon (train/costrule.py)."""
    from sentio.train.trainer import predict_logits

    T = run.model.seq_len  # noqa: N806
    segment = prep.frame["segment"].to_numpy(np.int64)
    bars, has = decision_bars(prep.samples.rows[prep.split.validation], segment, T)
    p_bars = np.full(len(bars), np.nan)
    starts = prep.starts() if run.model.causal else None
    p_bars[has] = sigmoid(predict_logits(model, prep.features, bars[has], T, "cpu", starts=starts))
    return fit_cost_rule(
        p_bars,
        prep.frame["close"].to_numpy(np.float64)[bars],
        prep.frame["ts"].to_numpy(np.int64)[bars],
        run.label.horizon,
        segment=segment[bars],
        seed=seed,
    )


def run_training(run: TrainRun, report: Callable[[str, dict], None] | None = None) -> dict:
    """Train, evaluate, export and write the artifact; returns metrics.json's content."""
    pinned = ready(run)
    import torch

    from sentio.model.causal import CausalTFA
    from sentio.model.export import export, export_causal
    from sentio.model.tfa import TFA
    from sentio.train.trainer import predict_logits, setup_determinism, train

    cfg = run.train or TrainConfig()
    platform_record = training_platform(pinned, run.cpu_capability)
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise OptionError("no CUDA device is visible to torch", flag="--device")
    prep = prepare(run)
    T = run.model.seq_len  # noqa: N806 (the paper's name for the window length)
    split, samples = prep.split, prep.samples
    mean, std = normalisation(prep.features, samples.rows[split.train], T)
    if run.multi_regime:  # regime columns enter as they are: 0/1 (rules) or probabilities
        mean[-len(NAMES) :], std[-len(NAMES) :] = 0.0, 1.0
    mix = regime_mix(run, prep, cfg.seed)
    setup_determinism(cfg.seed, cfg.threads)
    network = CausalTFA if run.model.causal else TFA
    model = network(run.model, torch.from_numpy(mean), torch.from_numpy(std))
    starts = prep.starts() if run.model.causal else None
    if run.warm_start is not None:
        start_from(model, run, prep.engine.content_hash)
    fingerprint = content_hash(
        {
            "model": run.model.to_dict(),
            "train": cfg.to_dict(),
            "label": dataclasses.asdict(run.label),
            "spec": prep.engine.content_hash,
            "data": prep.data_record,
            "fractions": list(run.fractions),
            "cpu": pinned,  # resuming under other kernels would mix two sets of roundings
            "warm_start": None if run.warm_start is None else artifact_hash(run.warm_start),
            **(
                {"regimes": [prep.block.to_json_dict(), run.multi_regime, run.synthetic_mix]}
                if prep.block is not None
                else {}
            ),
        }
    )
    checkpoints = run.checkpoint_dir
    result = train(
        model,
        mix.features,
        mix.samples,
        mix.split,
        cfg,
        checkpoints,
        fingerprint=fingerprint,
        resume=run.resume,
        report=report,
        weights=mix.weights,
        starts=starts,
    )
    model.load_state_dict(result.state)
    model.cpu().eval()

    # Evaluation: the model, a logistic regression on the last row, the base rate.
    last_rows = logistic_inputs(prep.features, mean, std, run.model.clip)
    train_idx = samples.rows[split.train]
    weights = fit_logistic(last_rows[train_idx], samples.labels[split.train].astype(np.float64))
    parts, probabilities = {}, {}
    for name in ("validation", "test"):
        rows, y = samples.rows[getattr(split, name)], samples.labels[getattr(split, name)]
        p_model = sigmoid(predict_logits(model, prep.features, rows, T, "cpu", starts=starts))
        probabilities[name] = p_model
        parts[name] = (y.astype(np.float64), p_model, predict_logistic(weights, last_rows[rows]))
    train_rate = float(samples.labels[split.train].mean())
    # the kept (best) epoch's model on validation: is there any evidence of an edge?
    session = clock_columns(prep.frame["ts"].to_numpy(np.int64))[1]
    y_val, p_val, _ = parts["validation"]
    val_days = session[samples.rows[split.validation]]
    metrics = {
        "evaluation": evaluate(parts, train_rate),
        "edge": edge(y_val, p_val, val_days, train_rate, cfg.seed, "validation"),
        "train_positive_rate": train_rate,
        "level_shifts": prep.data_record.get("level_shifts", []),
        "validation_probability_quantiles": quantiles(probabilities["validation"]),
        "samples": prep.report.to_dict(),
        "history": result.history,
        "best_epoch": result.best_epoch,
    }
    if prep.block is not None:
        metrics["regimes"] = regime_metrics(run, prep, probabilities, mix, cfg.seed)
    cost_rule = fit_cost_rule_on_validation(run, prep, model, cfg.seed)

    # Export, checked on recorded real windows (evenly spread over the test part).
    test_rows = samples.rows[split.test]
    pick = test_rows[
        np.linspace(0, len(test_rows) - 1, min(PARITY_WINDOWS, len(test_rows))).astype(int)
    ]
    saved_at = build_time().isoformat()
    spec = prep.engine.spec
    version = f"tfa-{fingerprint[7:19]}"
    onnx_meta = {
        "model_type": "TFA",
        "version": version,
        "spec_hash": spec.content_hash,
        "seq_len": str(T),
        "feature_count": str(len(spec.names)),
        "output": "logit",
    }
    if run.model.causal:  # recorded stretches of rows instead of windows, no ONNX graph
        length = T + CAUSAL_PARITY_ROWS - 1  # T - 1 rows fill the cache, then 64 logits
        first = causal_stretch_starts(starts, test_rows, length)
        recorded = windows(prep.features, first + length - 1, length)
        weights_bytes, parity = export_causal(model, recorded)
        parity["rows"] = [int(r) for r in first]
        model_files = {"model.safetensors": weights_bytes, "parity_rows.npy": npy_bytes(recorded)}
        model_type, framework = "TFA-causal", "pytorch -> sentio causal runtime (numba)"
    else:
        recorded = windows(prep.features, pick, T)
        onnx_bytes, pt_bytes, parity = export(model, recorded, onnx_meta, onnx_meta)
        parity["rows"] = [int(r) for r in pick]
        model_files = {
            "model.onnx": onnx_bytes,
            "model.pt": pt_bytes,
            "parity_windows.npy": npy_bytes(recorded),
        }
        model_type, framework = "TFA", "pytorch -> onnx + torchscript"
    meta = {
        "model_type": model_type,
        "version": version,
        "schema_version": ARTIFACT_SCHEMA,
        "saved_at": saved_at,
        "framework": framework,
        "feature_count": len(spec.names),
        "sequence_length": T,
        "d_model": run.model.d_model,
        "nhead": run.model.nhead,
        "num_layers": run.model.num_layers,
        "config": run.model.to_dict(),
        **({"reach_rows": run.model.reach} if run.model.causal else {}),
        "train_config": cfg.to_dict(),
        "expects": {
            "input_dim": len(spec.names),
            "feature_names": list(spec.names),
            "spec_hash": spec.content_hash,
            "emit_from": spec.emit_from,
            "pad_value": spec.pad_value,
            "dtype": "float32",
            "output": "logit",
            "seq_len": T,
        },
        "label": {
            "instrument": run.symbol,
            "horizon_bars": run.label.horizon,
            "deadzone_bp": run.label.deadzone_bp,
            "definition": "1 if ln(close[t+h]/close[t]) > deadzone, 0 if < -deadzone, else "
            "excluded; never across a session end or a segment",
        },
        "normalization": {
            "inside_graph": True,
            "fitted_on": "train windows' rows",
            "mean": [float(v) for v in mean],
            "std": [float(v) for v in std],
            "clip": run.model.clip,
        },
        "feature_ranges": feature_ranges(prep.features, samples.rows[split.train], T),
        # the logistic-regression baseline, so that `sentio model evaluate` scores it on new
        # bars: p = sigmoid(z @ weights[:-1] + weights[-1]), z the last row normalised as
        # above and clipped to +/- clip
        "baseline": {
            "logistic_last_row": {
                "weights": [float(v) for v in weights],
                "input": "last row, (x - normalization.mean) / normalization.std, clipped",
            }
        },
        "data": {
            **prep.data_record,
            "rows": len(prep.frame),
            "splits": ranges(prep),
            "fractions": list(run.fractions),
            "embargo_bars": run.label.horizon + run.model.reach,
        },
        "seed": cfg.seed,
        **({"invocation": run.invocation} if run.invocation is not None else {}),
        # the artifact it started from, by its identity (a path would differ between copies)
        "warm_start": None
        if run.warm_start is None
        else {"manifest_sha256": artifact_hash(run.warm_start)},
        "fingerprint": fingerprint,
        "thresholds": {
            **fit_thresholds(probabilities["validation"]),
            "validation_range": ranges(prep)["validation"],
            "validation_probability_quantiles": metrics["validation_probability_quantiles"],
            "cost": cost_rule,
        },
        "metrics": {
            part: {
                k: metrics["evaluation"][part]["model"][k]
                for k in ("auc", "log_loss", "brier", "accuracy")
            }
            for part in ("validation", "test")
        },
        "parity": parity,
        **({"regimes": regime_record(run, prep, mix)} if prep.block is not None else {}),
        "versions": versions(),
        "environment": environment(),  # machine, CPU instruction set, library versions
        "training_platform": platform_record,  # the kernels torch ran and what was pinned
    }
    legacy = {
        "schema_version": "1.0",
        "saved_at": saved_at,
        "framework": "torchscript",
        "feature_names": list(spec.names),
        # The network normalises inside its graph (the real statistics are in model.meta.json);
        # 0 / 1 here make a legacy loader's own normalisation the identity, not a second one,
        # and the original ModelRegistryTS clips AFTER (x - mean) / std, so the clip must be a
        # finite float32 bound no raw feature reaches (issue 12 section 5), not the network's.
        "mean": [0.0] * len(spec.names),
        "std": [1.0] * len(spec.names),
        "clip": [-LEGACY_CLIP, LEGACY_CLIP],
        "actions": ["DOWN", "UP"],
        "seq_len": T,
        "input_layout": "BTF",
        "format": "torchscript",
    }
    files = {
        **model_files,
        "model.meta.json": json_bytes(meta),
        **({} if run.model.causal else {"metadata.json": json_bytes(legacy)}),
        "feature_spec.json": spec.to_json().encode("utf-8"),
        "metrics.json": json_bytes(metrics),
    }
    _write(run, files)
    return metrics


__all__ = [
    "Mix",
    "Prepared",
    "TrainRun",
    "check_paths",
    "check_regimes",
    "load_bars",
    "normalisation",
    "path_option",
    "prepare",
    "ready",
    "regime_metrics",
    "regime_mix",
    "regime_record",
    "with_regimes",
    "run_training",
]
