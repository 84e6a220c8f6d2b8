"""Training with regimes (``sentio train --multi-regime``): fit the labeller on the training
split, weigh each regime equally, optionally top up rare regimes with built-in market tracks,
and score every part per regime (docs/regimes.md).

Balanced sampling rule: a training sample of regime r weighs ``n / (R * n_r)``, with n the
training samples, n_r those of regime r and R the regimes present, so every present regime
carries the same total weight and the mean weight is 1.

>>> regime_weights(np.array([0, 0, 0, 1])).tolist()
[0.6666666666666666, 0.6666666666666666, 0.6666666666666666, 2.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sentio.core.errors import OptionError, excerpt
from sentio.core.seeding import rng_for
from sentio.data.synth.generate import SynthConfig, generate
from sentio.features import FeatureEngine
from sentio.features.inputs import as_input, clock_columns
from sentio.features.regimes import (
    LABELLERS,
    MIN_FIT_BARS,
    NAMES,
    RegimeBlock,
    RegimeError,
    fit_hmm,
    fit_rules,
    labels_of,
)
from sentio.features.spec import FeatureSpec, parse_spec
from sentio.train.evaluate import auc, log_loss, session_interval
from sentio.train.samples import LabelSpec, Samples, select_samples

MAX_SYNTHETIC_DAYS = 2_000  # per regime: a top-up beyond 8 years of sessions is a typo


def inputs_spec(vol_window: int = 120, trend_window: int = 390) -> FeatureSpec:
    """A spec of the two labeller inputs alone (columns regime_vol, regime_trend)."""
    block = {"labeller": "inputs", "vol_window": vol_window, "trend_window": trend_window}
    return parse_spec({"features": [], "regimes": block}, origin="regime inputs")


def fit_block(
    labeller: str,
    frame,
    fit: np.ndarray,
    seed: int,
    record: dict | None = None,
    windows: tuple[int, int] = (120, 390),
) -> RegimeBlock:
    """Fit ``labeller`` ("rules" or "hmm") on the bars of ``frame`` where ``fit`` is True
    (and the inputs are past their warm-up); ``record`` says what they were; ``windows`` are
    the inputs' (vol window, trend window)."""
    data = as_input(frame)
    computed = FeatureEngine(inputs_spec(*windows)).compute(data)
    use = fit & computed.ready
    if use.sum() < MIN_FIT_BARS:
        raise RegimeError(
            f"{int(use.sum()):,} bars past the labeller's warm-up to fit it on; it needs "
            f"{MIN_FIT_BARS:,} (give more sessions)"
        )
    vol, trend = computed.values[use, 0], computed.values[use, 1]
    fitted_on = {"bars": int(use.sum()), **(record or {})}
    sizes = {"vol_window": windows[0], "trend_window": windows[1]}
    if labeller == "rules":
        rules = fit_rules(vol, trend)
        return RegimeBlock(labeller="rules", rules=rules, fitted_on=fitted_on, **sizes)
    lengths = runs(np.flatnonzero(use), data.segment[use])
    fitted_on["seed"] = seed
    hmm = fit_hmm(vol, trend, lengths, seed)
    return RegimeBlock(labeller="hmm", hmm=hmm, fitted_on=fitted_on, **sizes)


def regime_frame(block: RegimeBlock, frame) -> pd.DataFrame:
    """The label of every bar of one symbol's canonical ``frame`` under a fitted ``block``:
    ``ts``, ``regime`` (name, "" before the warm-up), ``regime_id`` (-1 before it) and the
    probability columns ``p_<name>`` (0/1 for rules), by the same engine op a model uses. The
    warm-up is the columns' declared one (an hmm filter's burn-in included): before it a bar
    has no label and its ``p_*`` are 0."""
    spec = parse_spec({"features": [], "regimes": block.to_json_dict()}, origin="regimes")
    computed = FeatureEngine(spec).compute(as_input(frame))
    values = np.where(computed.ready[:, None], computed.values, np.float32(0))
    ids = labels_of(values)
    out = pd.DataFrame(
        {
            "ts": frame["ts"].to_numpy(np.int64),
            "regime": np.asarray(("", *NAMES), dtype=object)[ids + 1],
            "regime_id": ids.astype(np.int8),
        }
    )
    for k, name in enumerate(NAMES):
        out[f"p_{name}"] = values[:, k]
    return out


def runs(rows: np.ndarray, segment: np.ndarray) -> list[int]:
    """Lengths of the runs of consecutive rows of one segment.

    >>> runs(np.array([3, 4, 5, 9, 10]), np.array([0, 0, 0, 0, 1]))
    [3, 1, 1]
    """
    breaks = np.flatnonzero((np.diff(rows) != 1) | (np.diff(segment) != 0)) + 1
    return np.diff(np.r_[0, breaks, len(rows)]).tolist()


def regime_weights(regime: np.ndarray) -> np.ndarray:
    """Per-sample weights of the balanced sampling rule (module doc)."""
    present, counts = np.unique(regime, return_counts=True)
    per = dict(zip(present.tolist(), counts.tolist(), strict=True))
    n, r = len(regime), len(present)
    return np.array([n / (r * per[g]) for g in regime.tolist()], dtype=np.float64)


def sample_regimes(features: np.ndarray, rows: np.ndarray, columns: int = len(NAMES)):
    """The regime index (NAMES order) of each decision row: its regime columns' largest."""
    return labels_of(features[rows, -columns:])


@dataclass(frozen=True)
class TopUp:
    """Built-in market samples that top up rare regimes: their feature rows (to append after
    the real ones), samples (rows into those), regimes and a record of what was generated."""

    features: np.ndarray
    samples: Samples
    regime: np.ndarray
    record: dict


def synthetic_top_up(
    engine: FeatureEngine,
    real_regime: np.ndarray,
    ratio: float,
    seq_len: int,
    label: LabelSpec,
    seed: int,
) -> TopUp:
    """``ratio`` x the real training samples from built-in market tracks of the regimes rarer
    than 1/R (each in proportion to its shortfall), labelled by the fitted labeller; only a
    track's samples the labeller puts in the wanted regime are kept. Seeds come from ``seed``
    and the regime name (recorded)."""
    if not 0 < ratio <= 10:
        raise OptionError(f"must be in (0, 10], got {ratio:g}", flag="--synthetic-mix")
    share = np.bincount(real_regime[real_regime >= 0], minlength=len(NAMES)) / len(real_regime)
    shortfall = np.maximum(1 / len(NAMES) - share, 0.0)
    want = np.floor(ratio * len(real_regime) * shortfall / max(shortfall.sum(), 1e-12))
    parts, record = [], {"ratio": ratio, "tracks": []}
    offset, features = 0, []
    for index in np.flatnonzero(want > 0):
        name, need = NAMES[index], int(want[index])
        track_seed = int(rng_for(seed, f"train.synthetic-mix.{name}").integers(0, 2**31))
        days = min(MAX_SYNTHETIC_DAYS, 12 + math.ceil(need / 300))
        market = generate(SynthConfig(seed=track_seed, days=days, regime=name))
        qqq = market.bars["QQQ"].of("QQQ")
        computed = engine.compute(as_input(qqq))
        session = clock_columns(qqq["ts"].to_numpy(np.int64))[1]
        samples, _ = select_samples(
            qqq["close"].to_numpy(np.float64),
            qqq["segment"].to_numpy(np.int64),
            session,
            computed.ready,
            seq_len,
            label,
        )
        regime = sample_regimes(computed.values, samples.rows)
        keep = np.flatnonzero(regime == index)[:need]
        parts.append(
            (samples.rows[keep] + offset, samples.labels[keep], samples.forward_return[keep])
        )
        features.append(computed.values)
        offset += len(computed.values)
        record["tracks"].append(
            {"regime": name, "seed": track_seed, "days": days, "wanted": need, "kept": len(keep)}
        )
    if not parts:
        empty = Samples(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0))
        width = len(engine.names)
        return TopUp(np.zeros((0, width), np.float32), empty, np.zeros(0, np.int64), record)
    rows, labels, returns = (np.concatenate(p) for p in zip(*parts, strict=True))
    values = np.vstack(features)
    return TopUp(values, Samples(rows, labels, returns), sample_regimes(values, rows), record)


def by_regime(
    y: np.ndarray, p: np.ndarray, regime: np.ndarray, session: np.ndarray, seed: int
) -> dict:
    """AUC, log loss and accuracy of probabilities ``p`` per regime, each with its session-
    bootstrap 95 % interval and the samples and sessions behind it."""
    out = {}
    for index, name in enumerate(NAMES):
        rows = np.flatnonzero(regime == index)
        if len(rows) == 0:
            out[name] = {"samples": 0, "sessions": 0}
            continue
        out[name] = scores_with_intervals(
            y[rows], p[rows], session[rows], seed, f"train.regimes.{name}"
        )
    return out


def scores_with_intervals(y, p, session, seed: int, stream: str) -> dict:
    """AUC, log loss and accuracy of ``p`` with session-bootstrap 95 % intervals."""
    hit = ((p > 0.5) == (y > 0.5)).astype(np.float64)
    q = np.clip(p, 1e-12, 1 - 1e-12)
    loss = -(y * np.log(q) + (1 - y) * np.log(1 - q))

    def interval(statistic) -> list[float]:
        return list(session_interval(statistic, session, seed, stream))

    return {
        "samples": len(y),
        "sessions": len(np.unique(session)),
        "positive_rate": float(y.mean()),
        "auc": auc(y, p),
        "auc_ci95": interval(lambda r: auc(y[r], p[r])),
        "log_loss": log_loss(y, p),
        "log_loss_ci95": interval(lambda r: float(loss[r].mean())),
        "accuracy": float(hit.mean()),
        "accuracy_ci95": interval(lambda r: float(hit[r].mean())),
    }


def refuse_regime_spec(spec: FeatureSpec, flag: str = "--feature-spec") -> None:
    """A plain model's spec may not carry a ``regimes`` block: its labeller was fitted on other
    data (perhaps on bars after this run's training split) and the run would train on its
    columns without recording them. ``--multi-regime`` fits a new one instead."""
    if spec.regimes is not None:
        raise OptionError(
            f"{spec.origin} carries a regimes block (a multi-regime model's spec?); a plain "
            "model does not read regime columns: give --multi-regime (the labeller is fitted "
            "anew on the training split) or a spec without the block",
            flag=flag,
        )


def check_labeller(labeller: str | None) -> None:
    """``--regime-labeller`` names one of LABELLERS (or is not given)."""
    if labeller is not None and labeller not in LABELLERS:
        raise OptionError(
            f"must be rules or hmm, got {excerpt(labeller)}", flag="--regime-labeller"
        )


__all__ = [
    "MAX_SYNTHETIC_DAYS",
    "RegimeError",
    "TopUp",
    "by_regime",
    "check_labeller",
    "fit_block",
    "inputs_spec",
    "regime_frame",
    "refuse_regime_spec",
    "regime_weights",
    "runs",
    "sample_regimes",
    "scores_with_intervals",
    "synthetic_top_up",
]
