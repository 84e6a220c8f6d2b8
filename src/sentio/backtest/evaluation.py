"""``sentio model evaluate``: what an artifact recorded, or its scores on any bars.

Without bars, :func:`recorded` reads the artifact's ``metrics.json`` (per part the model, the
logistic regression and the base rate; the edge verdict; the per-regime table when the run had
one). With bars, :func:`evaluate_on` scores the model out of sample only (issue 16):

- bars: the label instrument's rows of the ``--data`` files, read and joined as
  ``sentio train --data`` reads them (``sentio.train.pipeline.load_bars``);
- warm-up: the optional ``--warmup`` files hold earlier bars (ending before the first --data
  bar). Features and probabilities are computed over warm-up + data as one series (the
  segment carries on across the join when the bars are contiguous by the import's rule,
  ``assign_segments``); only --data bars are ever scored;
- out of sample: the model's own data is every bar from its first training bar
  (``model.meta.json`` data.splits.train.first_ts) to its validation end
  (data.splits.validation.last_ts), widened by ``data.embargo_bars`` bars on a side where the
  given bars continue it (the rule that separates training's parts, ``split_by_session``: no
  scored label or window overlaps a training or validation one). Those bars are skipped; bars
  before and after are scored (the test part is out of sample: never trained on, never
  selected on);
- label: the artifact's label (horizon, dead zone; ``sentio.train.samples.label_bars``);
- probability: the serving path (``SequenceContext.calculate_probability``); a bar without
  one (no full valid window yet) is skipped and counted;
- predictors: the model; the logistic regression trained with it (model.meta.json
  ``baseline.logistic_last_row``: the last row normalised by ``normalization`` mean and std,
  clipped, as training computed it; None with a reason for an artifact without it); the
  base rate (the training positive rate as a constant; its majority class for accuracy);
- scores: AUC, log loss, Brier and accuracy, each with a 95 % session block bootstrap
  interval (``INTERVALS``), the calibration table, AUC by half and by ISO week, per regime
  (``train.regimes.by_regime``) under the model's own labeller (a multi-regime model) or one
  fitted on bars inside the model's data (never on a scored bar; ``regime_labeller``), and
  the edge verdict (``train.evaluate.edge``) on the scored bars.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sentio.core.clock import NEW_YORK
from sentio.core.errors import ArtifactError, OptionError, excerpt
from sentio.data import assign_segments, read_bars
from sentio.features.inputs import as_input, clock_columns
from sentio.features.regimes import RegimeError
from sentio.infer import SequenceContext, load_model
from sentio.model.artifact import load_verified, model_rows, read_json
from sentio.train.evaluate import (
    RESAMPLES,
    auc,
    brier,
    calibration,
    checked_edge,
    edge,
    log_loss,
    logistic_inputs,
    predict_logistic,
    session_interval,
)
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
INTERVALS = (
    f"95 % session block bootstrap ({RESAMPLES:,} draws of whole sessions with replacement): "
    "each label spans the next horizon bars, so neighbouring labels overlap and the bars of one "
    "session move together; an i.i.d. bootstrap over bars would give intervals too narrow, so "
    "whole sessions are resampled"
)
STREAM = "backtest.evaluation.overall"  # the model's intervals; the edge verdict reads them


def recorded(directory: str | Path) -> dict:
    """What the artifact recorded in ``metrics.json``: per part and predictor the AUC, log
    loss, accuracy and n; the training positive rate; the ``edge`` verdict (None for an
    artifact trained before it existed); the ``regimes`` section or None. The artifact is
    verified first (ArtifactError naming the file otherwise); nothing is written."""
    directory = Path(directory)
    load_verified(directory)
    metrics = read_json(directory, "metrics.json")
    origin = str(directory / "metrics.json")
    evaluation = _table(metrics.get("evaluation", {}), origin, "evaluation")
    parts = {}
    for part in PARTS:
        if part in evaluation:
            scored = _table(evaluation[part], origin, f"evaluation.{part}")
            parts[part] = {
                who: {
                    k: _figure(_table(scored[who], origin, f"evaluation.{part}.{who}").get(k),
                               origin, f"evaluation.{part}.{who}.{k}")
                    for k in RECORDED
                }
                for who in PREDICTORS
                if who in scored
            }  # fmt: skip
    return {
        "model": str(directory),
        "source": "metrics.json",
        "parts": parts,
        "train_positive_rate": _figure(
            metrics.get("train_positive_rate"), origin, "train_positive_rate"
        ),
        "edge": checked_edge(metrics.get("edge"), origin),
        "regimes": metrics.get("regimes"),
    }


def _table(value, origin: str, where: str) -> dict:
    """A JSON object of ``metrics.json`` (ArtifactError naming the file and the key if not)."""
    if not isinstance(value, dict):
        raise ArtifactError(f"{origin}: {where} must be an object, got {excerpt(value)}")
    return value


def _figure(value, origin: str, where: str):
    """A recorded figure: a number, or null for an undefined one (ArtifactError otherwise)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ArtifactError(f"{origin}: {where} must be a number, got {excerpt(value)}")
    return value


@dataclass(frozen=True)
class Evaluation:
    """A model's scores on the out-of-sample labelled bars of some files (``--json``).

    Keys (stable; ts are int64 ns UTC bar starts):

    - ``model``, ``data``, ``warmup`` (paths), ``symbol``, ``seed``, ``label`` (horizon_bars,
      deadzone_bp: the artifact's);
    - ``model_data``: the model's own bars: ``train_first_ts``, ``validation_last_ts``,
      ``embargo_bars``, and ``skipped_first_ts``/``skipped_last_ts``, the --data bars skipped
      for it (None when none lie there);
    - ``bars``: ``total`` (--data bars), ``warmup`` (warm-up bars, never scored),
      ``warmup_joined`` (the first --data bar continues the warm-up's segment; None without
      warm-up), ``in_sample_skipped``, ``unlabelled`` (label across a session end, a segment
      or the data end, or in the dead zone), ``no_probability`` (no full valid window),
      ``scored``, ``scored_before_model_data``, ``scored_after_model_data``;
    - ``scored_ts``: first_ts, last_ts of the scored bars;
    - ``overall`` (the model), ``logistic_last_row`` (or None; ``logistic_last_row_reason``
      says why): samples, sessions, positive_rate, auc, log_loss, brier, accuracy, each score
      with ``<score>_ci95`` [low, high];
    - ``base_rate``: train_positive_rate, majority_class, log_loss, brier, accuracy (of the
      majority class), each with ``_ci95``;
    - ``intervals``: how the intervals were made and why (``INTERVALS``);
    - ``calibration``: {"model", "logistic_last_row"}: 10 bins of count, mean_predicted,
      observed_rate (``train.evaluate.calibration``);
    - ``by_half``: the first and second half of the scored sessions: half, sessions, samples,
      first_ts, last_ts, auc, auc_ci95, logistic_auc, logistic_auc_ci95;
    - ``by_week``: per ISO week (New York dates, "2025-W38"): week, sessions, samples, auc,
      logistic_auc;
    - ``edge``: ``train.evaluate.edge`` on the scored bars (verdict none|weak|present, reason,
      the numbers; its AUC interval is ``overall``'s, drawn from the same stream);
    - ``regimes``: None, or labeller, source, fitted_on, before_warm_up, ``by_regime`` (the
      model) and ``by_regime_logistic`` (None without the baseline), per regime name;
    - ``inputs_range``: the out-of-distribution counts (``sentio.infer.ranges``) over the
      scored bars, or None.
    """

    model: str
    data: list[str]
    warmup: list[str]
    symbol: str
    label: dict
    seed: int
    model_data: dict
    bars: dict
    scored_ts: dict
    overall: dict
    logistic_last_row: dict | None
    logistic_last_row_reason: str | None
    base_rate: dict
    intervals: str
    calibration: dict
    by_half: list[dict]
    by_week: list[dict]
    edge: dict
    regimes: dict | None
    inputs_range: dict | None = None  # sentio.infer.ranges over the scored bars

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Series:
    """Warm-up and data bars as one series: ``frame`` (warm-up rows first), ``first_data``
    (the row of the first --data bar) and whether the segment carries across the join."""

    frame: pd.DataFrame
    first_data: int
    joined: bool | None


def check_files(data: list[str], warmup: list[str]) -> None:
    """Every ``--data`` and ``--warmup`` file exists (OptionError naming the flag)."""
    for flag, files in (("--data", data), ("--warmup", warmup)):
        for name in files:
            if Path(name).is_dir():
                raise OptionError(f"{name}: is a directory; give a Parquet file", flag=flag)
            if not Path(name).is_file():
                raise OptionError(f"{name}: file not found", flag=flag)


def read_series(data: list[str], warmup: list[str], symbol: str) -> Series:
    """The ``--data`` bars after the ``--warmup`` bars (module doc). OptionError naming the
    flag for a missing file, or warm-up bars that do not end before the first --data bar."""
    check_files(data, warmup)
    frame, _ = load_bars(TrainRun(data=list(data), output=Path(), symbol=symbol))
    if not warmup:
        return Series(frame, 0, None)
    warm, _ = load_bars(TrainRun(data=list(warmup), output=Path(), symbol=symbol))
    last, first = int(warm["ts"].iloc[-1]), int(frame["ts"].iloc[0])
    if last >= first:
        raise OptionError(
            f"its {symbol} bars end at {_iso(last)}, not before the first --data bar "
            f"{_iso(first)}; give warm-up bars that end before the --data bars",
            flag="--warmup",
        )
    # the data's segments after the warm-up's; the first one continues the warm-up's last
    # when the import would have put the two bars in one segment
    meta = read_bars(data[0]).meta
    pair = assign_segments(
        np.array([last, first]), int(meta["interval_s"]), int(meta.get("max_gap_min", 5))
    )
    joined = bool(pair.segment[0] == pair.segment[1])
    segment = frame["segment"].to_numpy(np.int64)
    shifted = segment - segment.min() + int(warm["segment"].max()) + 1
    if joined:
        shifted[segment == segment[0]] = int(warm["segment"].iloc[-1])
    frame = frame.assign(segment=shifted)
    return Series(pd.concat([warm, frame], ignore_index=True), len(warm), joined)


def logistic_probabilities(
    meta: dict, features: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray | None, str | None]:
    """The training-time logistic regression's probabilities at ``rows`` (its input: the last
    row, normalised by the artifact's mean and std and clipped, as ``run_training`` made it),
    or None and why."""
    baseline = meta.get("baseline", {}).get("logistic_last_row")
    if baseline is None:
        return None, (
            "model.meta.json has no baseline.logistic_last_row (an artifact written before "
            "issue 16); retrain it to score the logistic regression"
        )
    norm = meta["normalization"]
    z = logistic_inputs(features[rows], norm["mean"], norm["std"], norm["clip"])
    return predict_logistic(np.asarray(baseline["weights"], np.float64), z), None


def with_brier(y: np.ndarray, p: np.ndarray, days: np.ndarray, seed: int, stream: str) -> dict:
    """AUC, log loss, accuracy (``scores_with_intervals``) and the Brier score, each with its
    session-bootstrap 95 % interval (one stream: the same resampled sessions for all four)."""
    out = scores_with_intervals(y, p, days, seed, stream)
    interval = session_interval(lambda r: brier(y[r], p[r]), days, seed, stream)
    return out | {"brier": brier(y, p), "brier_ci95": list(interval)}


def base_rate_scores(y: np.ndarray, rate: float, days: np.ndarray, seed: int) -> dict:
    """The training positive rate as a constant: log loss and Brier; accuracy of always
    predicting the training majority class; each with its session-bootstrap interval."""
    majority = 1.0 if rate >= 0.5 else 0.0
    p, hit = np.full(len(y), rate), (y == majority).astype(np.float64)
    stream = "backtest.evaluation.base_rate"

    def interval(statistic) -> list[float]:
        return list(session_interval(statistic, days, seed, stream))

    return {
        "train_positive_rate": rate,
        "majority_class": majority,
        "log_loss": log_loss(y, p),
        "log_loss_ci95": interval(lambda r: log_loss(y[r], p[r])),
        "brier": brier(y, p),
        "brier_ci95": interval(lambda r: brier(y[r], p[r])),
        "accuracy": float(hit.mean()),
        "accuracy_ci95": interval(lambda r: float(hit[r].mean())),
    }


def by_half(y, p, q, days, ts, seed: int) -> list[dict]:
    """AUC (with its interval) of the model ``p`` and the logistic regression ``q`` (or None)
    over the first and the second half of the scored sessions (the first gets the odd one)."""
    order = np.unique(days)
    cut = (len(order) + 1) // 2
    out = []
    for name, chosen in (("first", order[:cut]), ("second", order[cut:])):
        rows = np.flatnonzero(np.isin(days, chosen))
        entry = {"half": name, "sessions": len(chosen), "samples": len(rows)}
        if len(rows):
            stream = f"backtest.evaluation.half.{name}"
            entry |= {"first_ts": int(ts[rows[0]]), "last_ts": int(ts[rows[-1]])}
            entry |= _auc_entry("auc", y[rows], p[rows], days[rows], seed, stream)
            entry |= _auc_entry(
                "logistic_auc", y[rows], None if q is None else q[rows], days[rows], seed, stream
            )
        out.append(entry)
    return out


def _auc_entry(key: str, y, p, days, seed: int, stream: str) -> dict:
    """``{key: AUC, key_ci95: its session-bootstrap interval}`` (None for no ``p``)."""
    if p is None:
        return {key: None, f"{key}_ci95": None}
    interval = session_interval(lambda r: auc(y[r], p[r]), days, seed, stream)
    return {key: auc(y, p), f"{key}_ci95": list(interval)}


def by_week(y, p, q, days, ts) -> list[dict]:
    """AUC of the model ``p`` and the logistic regression ``q`` (or None) per ISO week of the
    New York dates (no interval: a week holds at most five sessions)."""
    iso = pd.to_datetime(ts, utc=True).tz_convert(NEW_YORK).isocalendar()
    weeks = np.array([f"{a}-W{b:02d}" for a, b in zip(iso["year"], iso["week"], strict=True)])
    out = []
    for week in dict.fromkeys(weeks.tolist()):  # time order
        rows = weeks == week
        out.append(
            {
                "week": week,
                "sessions": len(np.unique(days[rows])),
                "samples": int(rows.sum()),
                "auc": auc(y[rows], p[rows]),
                "logistic_auc": None if q is None else auc(y[rows], q[rows]),
            }
        )
    return out


def evaluate_on(
    directory: str | Path,
    data: list[str],
    regime_labeller: str | None = None,
    seed: int | None = None,
    warmup: list[str] | None = None,
) -> Evaluation:
    """Score the artifact in ``directory`` on the out-of-sample labelled bars of the files
    ``data``, features warmed on the files ``warmup`` (module doc). ``seed`` (default: the
    artifact's) seeds the bootstrap and an HMM labeller. OptionError naming ``--data`` when
    no bar is left to score, ``--warmup`` for warm-up bars that do not end before the data,
    ``--regime-labeller`` when one is given for a multi-regime model or cannot be fitted."""
    check_labeller(regime_labeller)
    directory, warmup = Path(directory), [str(w) for w in warmup or []]
    if list(data) != ["builtin"]:
        check_files([str(d) for d in data], warmup)  # before the slower model load
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
    data = [str(d) for d in data]
    series = read_series(data, warmup, symbol)
    frame, first_data = series.frame, series.first_data
    ts = frame["ts"].to_numpy(np.int64)
    session = clock_columns(ts)[1]
    lo, hi = model_rows(meta, ts, session)
    outside = np.arange(len(ts)) >= first_data
    outside[lo:hi] = False
    in_model = np.zeros(len(ts), dtype=bool)
    in_model[max(lo, first_data) : hi] = True
    splits = meta["data"]["splits"]
    train_first, seen = int(splits["train"]["first_ts"]), int(splits["validation"]["last_ts"])
    files, total = ", ".join(data), len(ts) - first_data
    if not outside.any():
        raise OptionError(
            f"all {total:,} {symbol} bars of {files} lie in the model's data (its first "
            f"training bar {_iso(train_first)} to its validation end {_iso(seen)}, and "
            f"{meta['data']['embargo_bars']} bars either side); give bars before or after it",
            flag="--data",
        )
    ret, ok = label_bars(
        frame["close"].to_numpy(np.float64), frame["segment"].to_numpy(np.int64), session, spec
    )
    has_label = ok & outside_deadzone(ret, spec)
    labelled = has_label & outside
    context = SequenceContext(loaded)
    p = context.calculate_probability(frame)
    keep = labelled & ~np.isnan(p)
    if not keep.any():
        raise OptionError(
            f"none of the {int(outside.sum()):,} {symbol} bars of {files} outside the model's "
            "data (its first training bar to its validation end, and the embargo) has a label "
            "and a probability; give more bars (or --warmup bars before them)",
            flag="--data",
        )
    rows = np.flatnonzero(keep)
    y = (ret[rows] > 0).astype(np.float64)
    prob, days = p[rows], session[rows]
    features = loaded.engine.compute(as_input(frame)).values
    q, why = logistic_probabilities(meta, features, rows)
    rate = float(metrics["train_positive_rate"])
    overall = with_brier(y, prob, days, seed, STREAM)
    base = base_rate_scores(y, rate, days, seed)
    regimes = regime_section(
        block, regime_labeller, frame, (ts >= train_first) & (ts <= seen), rows, y, prob, q, seed
    )
    skipped = np.flatnonzero(in_model)
    return Evaluation(
        model=str(directory),
        data=data,
        warmup=warmup,
        symbol=symbol,
        label={"horizon_bars": spec.horizon, "deadzone_bp": spec.deadzone_bp},
        seed=seed,
        model_data={
            "train_first_ts": train_first,
            "validation_last_ts": seen,
            "embargo_bars": int(meta["data"]["embargo_bars"]),
            "skipped_first_ts": int(ts[skipped[0]]) if len(skipped) else None,
            "skipped_last_ts": int(ts[skipped[-1]]) if len(skipped) else None,
        },
        bars={
            "total": total,
            "warmup": first_data,
            "warmup_joined": series.joined,
            "in_sample_skipped": len(skipped),
            "unlabelled": int((outside & ~has_label).sum()),
            "no_probability": int((labelled & np.isnan(p)).sum()),
            "scored": len(rows),
            "scored_before_model_data": int((rows < lo).sum()),
            "scored_after_model_data": int((rows >= hi).sum()),
        },
        scored_ts={"first_ts": int(ts[rows[0]]), "last_ts": int(ts[rows[-1]])},
        overall=overall,
        logistic_last_row=None
        if q is None
        else with_brier(y, q, days, seed, "backtest.evaluation.logistic"),
        logistic_last_row_reason=why,
        base_rate=base,
        intervals=INTERVALS,
        calibration={
            "model": calibration(y, prob),
            "logistic_last_row": None if q is None else calibration(y, q),
        },
        by_half=by_half(y, prob, q, days, ts[rows], seed),
        by_week=by_week(y, prob, q, days, ts[rows]),
        edge=edge(y, prob, days, rate, seed, "out-of-sample", STREAM),  # overall's AUC interval
        regimes=regimes,
        inputs_range=context.range_report(keep),
    )


def regime_section(block, labeller, frame, fit, rows, y, p, q, seed: int) -> dict | None:
    """Per-regime scores of the model (and the logistic regression) under the model's own
    labeller or ``labeller`` fitted on the bars ``fit`` (inside the model's data: bars it
    already saw, never a scored one); None when neither applies."""
    if block is None and labeller is None:
        return None
    source = "the model's own (fitted on its training split)"
    if block is None:
        ts = frame["ts"].to_numpy(np.int64)
        record = {"split": "bars inside the model's data (first training bar to validation end)"}
        if fit.any():
            record |= {"first_ts": int(ts[fit][0]), "last_ts": int(ts[fit][-1])}
        try:
            block = fit_block(labeller, frame, fit, seed, record)
        except RegimeError as exc:
            raise OptionError(
                f"cannot fit it on the --warmup/--data bars inside the model's data: {exc}",
                flag="--regime-labeller",
            ) from exc
        source = "fitted on the given bars inside the model's data"
    regime = regime_frame(block, frame)["regime_id"].to_numpy(np.int64)[rows]
    days = clock_columns(frame["ts"].to_numpy(np.int64))[1][rows]
    return {
        "labeller": block.labeller,
        "source": source,
        "fitted_on": block.fitted_on,
        "before_warm_up": int((regime < 0).sum()),
        "by_regime": by_regime(y, p, regime, days, seed),
        "by_regime_logistic": None if q is None else by_regime(y, q, regime, days, seed),
    }


def _iso(ts_ns: int) -> str:
    return pd.Timestamp(ts_ns, tz="UTC").isoformat()


__all__ = [
    "INTERVALS",
    "Evaluation",
    "Series",
    "evaluate_on",
    "logistic_probabilities",
    "read_series",
    "recorded",
]
