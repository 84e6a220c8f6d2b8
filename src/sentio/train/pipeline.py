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
from sentio.data.synth.generate import SynthConfig, generate
from sentio.features import FeatureEngine
from sentio.features.inputs import as_input, clock_columns
from sentio.model.artifact import (
    LEGACY_CLIP,
    json_bytes,
    load_verified,
    npy_bytes,
    write_artifact,
)
from sentio.model.config import TFAConfig
from sentio.model.signing import SigningKey
from sentio.train.config import CHECKPOINT, TrainConfig
from sentio.train.evaluate import (
    evaluate,
    fit_logistic,
    fit_thresholds,
    predict_logistic,
    quantiles,
    sigmoid,
)
from sentio.train.machine import pin_cpu, require_torch, training_platform
from sentio.train.samples import (
    LabelSpec,
    SampleReport,
    Samples,
    Split,
    select_samples,
    split_by_session,
    windows,
)

PARITY_WINDOWS = 256
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


def load_bars(run: TrainRun) -> tuple[pd.DataFrame, dict]:
    """One symbol's canonical rows, and a record of where they came from (hashes)."""
    if run.data == ["builtin"]:
        market = generate(run.builtin)
        frame = market.bars[run.symbol].of(run.symbol)
        return frame, {"source": "builtin", "synth": dataclasses.asdict(run.builtin)}
    frames, files = [], []
    for index, name in enumerate(run.data):
        bars = read_bars(name)
        if run.symbol not in bars.symbols:  # one import per symbol: the siblings' files
            continue
        rows = bars.of(run.symbol).copy()
        rows["segment"] = rows["segment"].astype(np.int64) + index * 1_000_000
        frames.append(rows)
        files.append({"path": str(name), "sha256": sha256_file(name), "rows": len(rows)})
    if not frames:
        raise BarsError(f"no {run.symbol} bars in {', '.join(map(str, run.data))}; give its file")
    frame = pd.concat(frames, ignore_index=True).sort_values("ts", kind="stable")
    if frame["ts"].duplicated().any():
        raise BarsError(f"files {run.data} overlap in time for {run.symbol}; give disjoint files")
    return frame.reset_index(drop=True), {"source": "files", "files": files}


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
    embargo = run.label.horizon + run.model.seq_len
    split = split_by_session(samples, session, run.fractions, embargo)
    report.removed["embargo between splits"] = split.embargoed
    return Prepared(engine, frame, computed.values, samples, report, split, record)


def normalisation(
    features: np.ndarray, rows: np.ndarray, seq_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (float32) of every feature over the rows the training windows cover."""
    covered = np.zeros(len(features), dtype=bool)
    for offset in range(seq_len):
        covered[rows - offset] = True
    used = features[covered].astype(np.float64)
    mean, std = used.mean(axis=0), used.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


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


def ready(run: TrainRun) -> str:
    """Every check that needs no bar, in order: output paths, the CPU pin (set before torch
    starts), the train extra. Returns the resolved pin."""
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
    scripted = torch.jit.load(io.BytesIO((Path(run.warm_start) / "model.pt").read_bytes()))
    weights = {k: v for k, v in scripted.state_dict().items() if k not in ("mean", "std")}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if set(missing) != {"mean", "std"} or unexpected:
        raise ArtifactError(
            f"model.pt's weights do not fit the network (missing {missing}, extra {unexpected})",
            file=str(run.warm_start),
        )


def run_training(run: TrainRun, report: Callable[[str, dict], None] | None = None) -> dict:
    """Train, evaluate, export and write the artifact; returns metrics.json's content."""
    pinned = ready(run)
    import torch

    from sentio.model.export import export
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
    setup_determinism(cfg.seed, cfg.threads)
    model = TFA(run.model, torch.from_numpy(mean), torch.from_numpy(std))
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
        }
    )
    checkpoints = run.checkpoint_dir
    result = train(
        model,
        prep.features,
        samples,
        split,
        cfg,
        checkpoints,
        fingerprint=fingerprint,
        resume=run.resume,
        report=report,
    )
    model.load_state_dict(result.state)
    model.cpu().eval()

    # Evaluation: the model, a logistic regression on the last row, the base rate.
    last_rows = (prep.features.astype(np.float64) - mean) / std
    last_rows = np.clip(last_rows, -run.model.clip, run.model.clip)
    train_idx = samples.rows[split.train]
    weights = fit_logistic(last_rows[train_idx], samples.labels[split.train].astype(np.float64))
    parts, probabilities = {}, {}
    for name in ("validation", "test"):
        rows, y = samples.rows[getattr(split, name)], samples.labels[getattr(split, name)]
        p_model = sigmoid(predict_logits(model, prep.features, rows, T, "cpu"))
        probabilities[name] = p_model
        parts[name] = (y.astype(np.float64), p_model, predict_logistic(weights, last_rows[rows]))
    train_rate = float(samples.labels[split.train].mean())
    metrics = {
        "evaluation": evaluate(parts, train_rate),
        "train_positive_rate": train_rate,
        "validation_probability_quantiles": quantiles(probabilities["validation"]),
        "samples": prep.report.to_dict(),
        "history": result.history,
        "best_epoch": result.best_epoch,
    }

    # Export, checked on recorded real windows (evenly spread over the test part).
    test_rows = samples.rows[split.test]
    pick = test_rows[
        np.linspace(0, len(test_rows) - 1, min(PARITY_WINDOWS, len(test_rows))).astype(int)
    ]
    parity_windows = windows(prep.features, pick, T)
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
    onnx_bytes, pt_bytes, parity = export(model, parity_windows, onnx_meta, onnx_meta)
    parity["rows"] = [int(r) for r in pick]
    meta = {
        "model_type": "TFA",
        "version": version,
        "schema_version": ARTIFACT_SCHEMA,
        "saved_at": saved_at,
        "framework": "pytorch -> onnx + torchscript",
        "feature_count": len(spec.names),
        "sequence_length": T,
        "d_model": run.model.d_model,
        "nhead": run.model.nhead,
        "num_layers": run.model.num_layers,
        "config": run.model.to_dict(),
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
        "data": {
            **prep.data_record,
            "rows": len(prep.frame),
            "splits": ranges(prep),
            "fractions": list(run.fractions),
            "embargo_bars": run.label.horizon + T,
        },
        "seed": cfg.seed,
        # the artifact it started from, by its identity (a path would differ between copies)
        "warm_start": None
        if run.warm_start is None
        else {"manifest_sha256": artifact_hash(run.warm_start)},
        "fingerprint": fingerprint,
        "thresholds": {
            **fit_thresholds(probabilities["validation"]),
            "validation_range": ranges(prep)["validation"],
            "validation_probability_quantiles": metrics["validation_probability_quantiles"],
        },
        "metrics": {
            part: {
                k: metrics["evaluation"][part]["model"][k]
                for k in ("auc", "log_loss", "brier", "accuracy")
            }
            for part in ("validation", "test")
        },
        "parity": parity,
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
        "model.onnx": onnx_bytes,
        "model.pt": pt_bytes,
        "model.meta.json": json_bytes(meta),
        "metadata.json": json_bytes(legacy),
        "feature_spec.json": spec.to_json().encode("utf-8"),
        "metrics.json": json_bytes(metrics),
        "parity_windows.npy": npy_bytes(parity_windows),
    }
    _write(run, files)
    return metrics


__all__ = [
    "Prepared",
    "TrainRun",
    "check_paths",
    "load_bars",
    "normalisation",
    "path_option",
    "prepare",
    "ready",
    "run_training",
]
