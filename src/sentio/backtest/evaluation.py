"""``sentio model evaluate``: what an artifact recorded, or its scores on new bars.

Without bars, :func:`recorded` reads the artifact's ``metrics.json`` (per part the model, the
logistic regression and the base rate; the per-regime table when the run had one). With bars,
:func:`evaluate_on` scores the model out of sample only:

- bars: the label instrument's rows of the files, read and joined as ``sentio train --data``
  reads them (``sentio.train.pipeline.load_bars``);
- out of sample: every bar up to the artifact's validation end (``model.meta.json``
  data.splits.validation.last_ts) and the ``data.embargo_bars`` bars after it are skipped,
  the rule that separates training's parts (``split_by_session``);
- label: the artifact's label (horizon, dead zone; ``sentio.train.samples.label_bars``);
- probability: the serving path (``SequenceContext.calculate_probability``); a bar without
  one (no full valid window yet) is skipped and counted;
- scores: AUC, log loss and accuracy with 95 % session-bootstrap intervals
  (``train.regimes.scores_with_intervals``), the base rate (the training positive rate)
  beside them, and per regime (``train.regimes.by_regime``) under the model's own labeller
  (a multi-regime model) or a labeller fitted on the bars up to the validation end, which the
  model already saw, never on a scored bar (a plain model given ``regime_labeller``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sentio.core.errors import OptionError
from sentio.features.inputs import clock_columns
from sentio.features.regimes import RegimeError
from sentio.infer import SequenceContext, load_model
from sentio.model.artifact import load_verified, read_json
from sentio.train.evaluate import log_loss
from sentio.train.pipeline import TrainRun, load_bars
from sentio.train.regimes import (
    by_regime,
    check_labeller,
    fit_block,
    regime_frame,
    scores_with_intervals,
)
from sentio.train.samples import LabelSpec, label_bars, outside_deadzone

PARTS = ("validation", "test")
PREDICTORS = ("model", "logistic_last_row", "base_rate")
RECORDED = ("auc", "log_loss", "accuracy", "n")


def recorded(directory: str | Path) -> dict:
    """What the artifact recorded in ``metrics.json``: per part and predictor the AUC, log
    loss, accuracy and n; the training positive rate; the ``regimes`` section or None. The
    artifact is verified first (ArtifactError naming the file otherwise); nothing is written."""
    directory = Path(directory)
    load_verified(directory)
    metrics = read_json(directory, "metrics.json")
    evaluation = metrics.get("evaluation", {})
    parts = {
        part: {
            who: {k: evaluation[part][who][k] for k in RECORDED}
            for who in PREDICTORS
            if who in evaluation.get(part, {})
        }
        for part in PARTS
        if part in evaluation
    }
    return {
        "model": str(directory),
        "source": "metrics.json",
        "parts": parts,
        "train_positive_rate": metrics.get("train_positive_rate"),
        "regimes": metrics.get("regimes"),
    }


@dataclass(frozen=True)
class Evaluation:
    """A model's scores on the out-of-sample labelled bars of some files.

    ``bars`` counts every bar read and where each went (``in_sample_skipped``,
    ``unlabelled``: the label crosses a session end, a segment or the data end, or lies in
    the dead zone; ``no_probability``: no full valid window; ``scored``). ``overall`` is
    :func:`sentio.train.regimes.scores_with_intervals`; ``base_rate`` the training positive
    rate as a constant predictor on the same bars; ``regimes`` None or the labeller, what it
    was fitted on, the scored bars before its warm-up and ``by_regime`` per name.
    """

    model: str
    data: list[str]
    symbol: str
    label: dict  # horizon_bars, deadzone_bp (the artifact's)
    seed: int
    out_of_sample_after: dict  # validation_last_ts, embargo_bars, first_ts (first bar kept)
    bars: dict
    scored_ts: dict  # first_ts, last_ts (int64 ns UTC, bar start) of the scored bars
    overall: dict
    base_rate: dict
    regimes: dict | None

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate_on(
    directory: str | Path,
    data: list[str],
    regime_labeller: str | None = None,
    seed: int | None = None,
) -> Evaluation:
    """Score the artifact in ``directory`` on the out-of-sample labelled bars of the files
    ``data`` (module doc). ``seed`` (default: the artifact's) seeds the bootstrap and an HMM
    labeller. OptionError naming ``--data`` when no bar is left to score, ``--regime-labeller``
    when one is given for a multi-regime model or cannot be fitted."""
    check_labeller(regime_labeller)
    directory = Path(directory)
    loaded = load_model(directory)  # verifies the artifact (ArtifactError otherwise)
    meta = read_json(directory, "model.meta.json")
    metrics = read_json(directory, "metrics.json")
    block = loaded.engine.spec.regimes
    if block is not None and regime_labeller is not None:
        raise OptionError(
            f"this multi-regime model labels regimes with its own {block.labeller} labeller "
            "(fitted on its training split); drop --regime-labeller",
            flag="--regime-labeller",
        )
    if list(data) == ["builtin"]:
        raise OptionError("give canonical Parquet files (sentio data import)", flag="--data")
    seed = int(meta.get("seed", 7)) if seed is None else seed
    label = meta["label"]
    spec = LabelSpec(horizon=int(label["horizon_bars"]), deadzone_bp=float(label["deadzone_bp"]))
    symbol = str(label.get("instrument", "QQQ"))
    frame, _ = load_bars(TrainRun(data=[str(d) for d in data], output=Path(), symbol=symbol))
    ts = frame["ts"].to_numpy(np.int64)
    seen = int(meta["data"]["splits"]["validation"]["last_ts"])
    embargo = int(meta["data"]["embargo_bars"])
    # training keeps a test row r when r - last_validation_row > embargo (split_by_session)
    first = min(int(np.searchsorted(ts, seen, side="right")) + embargo, len(ts))
    files = ", ".join(map(str, data))
    if first == len(ts):
        raise OptionError(
            f"all {len(ts):,} {symbol} bars of {files} lie in the model's data (up to its "
            f"validation end {_iso(seen)} and {embargo} bars after it); give bars after that",
            flag="--data",
        )
    session = clock_columns(ts)[1]
    ret, ok = label_bars(
        frame["close"].to_numpy(np.float64), frame["segment"].to_numpy(np.int64), session, spec
    )
    labelled = ok & outside_deadzone(ret, spec)
    labelled[:first] = False
    p = SequenceContext(loaded).calculate_probability(frame)
    keep = labelled & ~np.isnan(p)
    if not keep.any():
        raise OptionError(
            f"none of the {len(ts) - first:,} {symbol} bars of {files} after the model's data "
            f"(from {_iso(int(ts[first]))}) has a label and a probability; give more bars",
            flag="--data",
        )
    rows = np.flatnonzero(keep)
    y = (ret[rows] > 0).astype(np.float64)
    prob, days = p[rows], session[rows]
    rate = float(metrics["train_positive_rate"])
    majority = 1.0 if rate >= 0.5 else 0.0
    regimes = None
    if block is None and regime_labeller is not None:
        fit = ts <= seen  # the bars the model already saw, never a scored one
        record = {"split": "--data bars up to the validation end"}
        if fit.any():
            record |= {"first_ts": int(ts[0]), "last_ts": int(ts[fit][-1])}
        try:
            block = fit_block(regime_labeller, frame, fit, seed, record)
        except RegimeError as exc:
            raise OptionError(
                f"cannot fit it on the --data bars up to the validation end {_iso(seen)}: {exc}",
                flag="--regime-labeller",
            ) from exc
        source = "fitted on the --data bars up to the model's validation end"
    else:
        source = "the model's own (fitted on its training split)"
    if block is not None:
        regime = regime_frame(block, frame)["regime_id"].to_numpy(np.int64)[rows]
        regimes = {
            "labeller": block.labeller,
            "source": source,
            "fitted_on": block.fitted_on,
            "before_warm_up": int((regime < 0).sum()),
            "by_regime": by_regime(y, prob, regime, days, seed),
        }
    return Evaluation(
        model=str(directory),
        data=[str(d) for d in data],
        symbol=symbol,
        label={"horizon_bars": spec.horizon, "deadzone_bp": spec.deadzone_bp},
        seed=seed,
        out_of_sample_after={
            "validation_last_ts": seen,
            "embargo_bars": embargo,
            "first_ts": int(ts[first]),
        },
        bars={
            "total": len(ts),
            "in_sample_skipped": first,
            "unlabelled": int((~labelled[first:]).sum()),
            "no_probability": int((labelled & np.isnan(p)).sum()),
            "scored": len(rows),
        },
        scored_ts={"first_ts": int(ts[rows[0]]), "last_ts": int(ts[rows[-1]])},
        overall=scores_with_intervals(y, prob, days, seed, "backtest.evaluation.overall"),
        base_rate={
            "train_positive_rate": rate,
            "log_loss": log_loss(y, np.full(len(y), rate)),
            "accuracy": float(np.mean(y == majority)),
        },
        regimes=regimes,
    )


def _iso(ts_ns: int) -> str:
    return pd.Timestamp(ts_ns, tz="UTC").isoformat()


__all__ = ["Evaluation", "evaluate_on", "recorded"]
