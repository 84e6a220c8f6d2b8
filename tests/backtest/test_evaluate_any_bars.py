"""`sentio model evaluate --data FILE --warmup FILE` on any bars (issue 16 section 1).

The tiny artifact (tests/conftest.py: trained on 12 built-in sessions from 2024-01-02) is
scored on another built-in market that starts weeks before its data and ends after it, split
into a warm-up file (its first sessions) and a data file (the rest). Oracles, from the whole
uncut file and the artifact's recorded numbers alone:
- scored bars: every bar of the data file outside the model's data (first training bar to
  validation end, widened by embargo_bars bars either side), labelled as the model labels
  (log(C[t+h]/C[t]) beyond the dead zone within one New York date and segment), with a
  probability from the serving path run over the WHOLE file, which warm-up + data must equal;
- figures: AUC by pairwise counting, log loss and Brier by their formulas in numpy;
- the logistic baseline: sigmoid(z @ w + b) in numpy, z the feature row normalised by the
  recorded mean and std and clipped, w and b model.meta.json's recorded weights.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sentio.backtest import evaluation
from sentio.backtest.evaluation import evaluate_on, model_rows
from sentio.data import Bars, write_bars
from sentio.data.synth.generate import SynthConfig, generate
from sentio.features import FeatureEngine
from sentio.features.inputs import as_input, clock_columns
from sentio.features.spec import parse_spec
from sentio.infer import SequenceContext
from tests.cli.badinput import assert_refused, run_script

WARM_SESSIONS = 3


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """30 built-in sessions from 2023-12-15 (the model's data: 2024-01-03 .. 2024-01-16)."""
    tmp = tmp_path_factory.mktemp("any_bars")
    bars = generate(SynthConfig(seed=5, days=30, start="2023-12-15")).bars["QQQ"]
    day = ny_dates(bars.frame["ts"].to_numpy(np.int64))
    cut = np.unique(day)[WARM_SESSIONS]
    out = {"all": tmp / "all.parquet", "warm": tmp / "warm.parquet", "data": tmp / "data.parquet"}
    write_bars(bars, out["all"])
    for name, rows in (("warm", day < cut), ("data", day >= cut)):
        write_bars(Bars(bars.frame[rows].reset_index(drop=True), bars.meta), out[name])
    return out


def ny_dates(ts: np.ndarray) -> np.ndarray:
    return np.asarray(
        pd.to_datetime(ts, utc=True).tz_convert("America/New_York").strftime("%Y-%m-%d")
    )


def oracle(artifact: Path, path: Path, first_data_ts: int) -> dict:
    """The scored bars and both predictors' probabilities, from the whole file (module doc)."""
    frame = pd.read_parquet(path)
    frame = frame[frame["symbol"] == "QQQ"].sort_values("ts").reset_index(drop=True)
    meta = json.loads((artifact / "model.meta.json").read_text())
    ts, close = frame["ts"].to_numpy(np.int64), frame["close"].to_numpy(np.float64)
    segment, day = frame["segment"].to_numpy(), ny_dates(ts)
    h, dead = meta["label"]["horizon_bars"], meta["label"]["deadzone_bp"] * 1e-4
    ret = np.full(len(ts), np.nan)
    same = (day[:-h] == day[h:]) & (segment[:-h] == segment[h:])
    ret[:-h] = np.where(same, np.log(close[h:] / close[:-h]), np.nan)
    splits, embargo = meta["data"]["splits"], meta["data"]["embargo_bars"]
    start = int((ts < splits["train"]["first_ts"]).sum()) - embargo
    end = int((ts <= splits["validation"]["last_ts"]).sum()) + embargo
    index = np.arange(len(ts))
    p = SequenceContext(artifact).calculate_probability(frame)
    data = ts >= first_data_ts
    labelled = data & ((index < start) | (index >= end)) & (np.abs(np.nan_to_num(ret)) > dead)
    keep = labelled & ~np.isnan(p)
    # the logistic regression from its recorded weights
    spec = parse_spec(json.loads((artifact / "feature_spec.json").read_text()), origin="test")
    x = FeatureEngine(spec).compute(as_input(frame)).values.astype(np.float64)
    norm, w = meta["normalization"], np.array(meta["baseline"]["logistic_last_row"]["weights"])
    z = np.clip((x - np.array(norm["mean"])) / np.array(norm["std"]), -norm["clip"], norm["clip"])
    q = 1.0 / (1.0 + np.exp(-(z @ w[:-1] + w[-1])))
    return {
        "rows": np.flatnonzero(keep),
        "ts": ts[keep],
        "y": (ret[keep] > 0).astype(np.float64),
        "p": p[keep],
        "q": q[keep],
        "days": day[keep],
        "start": start,
        "end": end,
        "skipped": end - max(start, int((~data).sum())),
        "no_probability": int((labelled & np.isnan(p)).sum()),
        "rate": json.loads((artifact / "metrics.json").read_text())["train_positive_rate"],
    }


def pairwise_auc(y: np.ndarray, p: np.ndarray) -> float:
    pos, neg = p[y > 0], p[y == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def check_scores(got: dict, y: np.ndarray, p: np.ndarray) -> None:
    assert got["samples"] == len(y)
    assert got["auc"] == pytest.approx(pairwise_auc(y, p), abs=1e-12)
    want = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert got["log_loss"] == pytest.approx(want, rel=1e-12)
    assert got["brier"] == pytest.approx(np.mean((p - y) ** 2), rel=1e-12)
    assert got["accuracy"] == pytest.approx(np.mean((p > 0.5) == (y > 0.5)), rel=1e-12)
    for key in ("auc", "log_loss", "brier", "accuracy"):
        low, high = got[f"{key}_ci95"]
        assert low <= got[key] <= high


@pytest.fixture(scope="module")
def warmed(tiny_artifact, files) -> dict:
    return evaluate_on(tiny_artifact, [str(files["data"])], warmup=[str(files["warm"])]).to_dict()


def test_warmed_evaluation_scores_exactly_the_out_of_sample_bars(tiny_artifact, files, warmed):
    doc = warmed
    first_data = int(pd.read_parquet(files["data"])["ts"].min())
    want = oracle(tiny_artifact, files["all"], first_data)
    bars = doc["bars"]
    # the warm-up is read, joined to the data's segment and never scored
    assert bars["warmup"] == int((pd.read_parquet(files["warm"])["symbol"] == "QQQ").sum())
    assert bars["warmup_joined"] is True
    assert doc["scored_ts"]["first_ts"] == int(want["ts"][0]) >= first_data
    # bars inside the model's data are skipped; bars before and after it are scored
    assert bars["in_sample_skipped"] == want["skipped"]
    assert bars["scored"] == len(want["y"])
    before = int((want["rows"] < want["start"]).sum())
    assert bars["scored_before_model_data"] == before > 1000
    assert bars["scored_after_model_data"] == len(want["y"]) - before > 1000
    assert bars["no_probability"] == want["no_probability"] == 0  # the warm-up warmed them
    # the figures: the same probabilities as the serving path over the uncut file
    check_scores(doc["overall"], want["y"], want["p"])
    check_scores(doc["logistic_last_row"], want["y"], want["q"])
    assert doc["logistic_last_row_reason"] is None
    rate = want["rate"]
    base = -np.mean(want["y"] * math.log(rate) + (1 - want["y"]) * math.log(1 - rate))
    assert doc["base_rate"]["log_loss"] == pytest.approx(base, rel=1e-12)
    assert doc["base_rate"]["brier"] == pytest.approx(np.mean((rate - want["y"]) ** 2), rel=1e-12)
    assert doc["overall"]["sessions"] == len(np.unique(want["days"]))


def test_the_breakdowns_partition_the_scored_bars(tiny_artifact, files, warmed):
    doc = warmed
    first_data = int(pd.read_parquet(files["data"])["ts"].min())
    want = oracle(tiny_artifact, files["all"], first_data)
    y, p = want["y"], want["p"]
    # calibration: bins of width 0.1 counted here
    counts = np.bincount(np.minimum((p * 10).astype(int), 9), minlength=10)
    assert [b["count"] for b in doc["calibration"]["model"]] == counts.tolist()
    # halves: the first ceil(n/2) scored sessions, then the rest
    sessions = sorted(set(want["days"]))
    first = np.isin(want["days"], sessions[: (len(sessions) + 1) // 2])
    halves = doc["by_half"]
    assert [h["samples"] for h in halves] == [int(first.sum()), int((~first).sum())]
    assert halves[0]["auc"] == pytest.approx(pairwise_auc(y[first], p[first]), abs=1e-12)
    assert halves[1]["logistic_auc"] == pytest.approx(
        pairwise_auc(y[~first], want["q"][~first]), abs=1e-12
    )
    # weeks: ISO weeks of the New York dates, by the standard library
    weeks = ["{}-W{:02d}".format(*pd.Timestamp(d).date().isocalendar()[:2]) for d in want["days"]]
    assert [w["week"] for w in doc["by_week"]] == list(dict.fromkeys(weeks))
    assert sum(w["samples"] for w in doc["by_week"]) == len(y)
    # the verdict reads the reported AUC interval and the base rate's log loss
    verdict = doc["edge"]
    assert verdict["auc_ci95"] == doc["overall"]["auc_ci95"]
    assert verdict["base_rate_log_loss"] == doc["base_rate"]["log_loss"]
    assert verdict["part"] == "out-of-sample" and verdict["samples"] == len(y)
    above = verdict["auc_ci95"][0] > 0.5
    better = verdict["log_loss_gain_ci95"][0] > 0
    assert verdict["verdict"] == {2: "present", 1: "weak", 0: "none"}[above + better]
    assert "whole sessions" in doc["intervals"] and "overlap" in doc["intervals"]


def test_without_warmup_the_first_data_bars_only_warm_up(tiny_artifact, files, warmed):
    doc = evaluate_on(tiny_artifact, [str(files["data"])]).to_dict()
    assert doc["bars"]["warmup"] == 0 and doc["bars"]["warmup_joined"] is None
    assert doc["bars"]["no_probability"] > 0
    assert doc["scored_ts"]["first_ts"] > warmed["scored_ts"]["first_ts"]
    assert doc["bars"]["scored"] + doc["bars"]["no_probability"] == warmed["bars"]["scored"]


def test_the_embargo_applies_only_where_the_bars_continue_the_models_data(tiny_artifact):
    """The model's data: first training bar 2024-01-03, validation end 2024-01-16 (a Tuesday
    after the Martin Luther King Day holiday)."""
    meta = json.loads((tiny_artifact / "model.meta.json").read_text())
    embargo = meta["data"]["embargo_bars"]
    assert embargo < 30

    def rows(*dates: str) -> tuple[int, int]:  # 30 minutes from the open of each date
        ts = np.concatenate(
            [
                pd.date_range(f"{d} 09:30", periods=30, freq="min", tz="America/New_York")
                .tz_convert("UTC")
                .as_unit("ns")
                .asi8
                for d in dates
            ]
        )
        return model_rows(meta, ts, clock_columns(ts)[1])

    assert rows("2023-11-01", "2024-03-01") == (30, 30)  # months away: nothing skipped
    assert rows("2024-01-02", "2024-01-17") == (30 - embargo, 30 + embargo)  # adjacent sessions


def test_an_artifact_without_the_baseline_scores_the_rest(tiny_artifact, files, monkeypatch):
    """An artifact trained before issue 16 has no baseline weights: the logistic entries are
    None with the reason, never an error."""
    original = evaluation.read_json

    def older(directory, name):
        doc = original(directory, name)
        if name == "model.meta.json":
            doc = {k: v for k, v in doc.items() if k != "baseline"}
        return doc

    monkeypatch.setattr(evaluation, "read_json", older)
    doc = evaluate_on(tiny_artifact, [str(files["data"])], warmup=[str(files["warm"])]).to_dict()
    assert doc["logistic_last_row"] is None and "baseline" in doc["logistic_last_row_reason"]
    assert doc["calibration"]["logistic_last_row"] is None
    assert all(h["logistic_auc"] is None for h in doc["by_half"])
    assert all(w["logistic_auc"] is None for w in doc["by_week"])
    assert doc["overall"]["samples"] > 0 and doc["edge"]["verdict"] in ("none", "weak", "present")


def test_the_text_output_says_everything(tiny_artifact, files):
    done = run_script(
        "sentio", "model", "evaluate", str(tiny_artifact),
        "--data", str(files["data"]), "--warmup", str(files["warm"]),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    text = " ".join(done.stdout.split())
    for words in (
        "logistic regression",
        "base rate",
        "edge: ",
        "whole sessions are resampled",
        "Calibration",
        "AUC by half",
        "AUC by ISO week",
        "--warmup bars (never scored; carried on into the --data bars)",
        "before the model's data",
    ):
        assert words in text, words


@pytest.mark.parametrize(
    "case",
    [
        (["--data", "{data}", "--warmup", "{all}"], ["--warmup", "not before the first --data"]),
        (["--data", "{data}", "--warmup", "{tmp}/none.parquet"], ["--warmup", "not found"]),
        (["--data", "{tmp}/none.parquet"], ["--data", "not found"]),
        (["--warmup", "{warm}"], ["--warmup", "with --data only"]),
    ],
    ids=["overlapping", "missing-warmup", "missing-data", "warmup-alone"],
)
def test_bad_warmup_or_data_is_one_line(tiny_artifact, files, tmp_path, case):
    args, says = case
    fill = {**{k: str(v) for k, v in files.items()}, "tmp": str(tmp_path)}
    args = [a.format(**fill) for a in args]
    assert_refused(run_script("sentio", "model", "evaluate", str(tiny_artifact), *args), *says)


def test_evaluate_counts_inputs_outside_the_training_range(tiny_artifact, files, tmp_path):
    """Oracle: the tiny model's own built-in prices are in distribution (no warning), the same
    bars with every price x1.6 put its price-level features beyond the clip (the motivating
    case of issue 16: a model's inputs saturated without a word)."""
    own = evaluate_on(tiny_artifact, [str(files["data"])], warmup=[str(files["warm"])])
    assert own.inputs_range is not None and not own.inputs_range["warn"]
    bars = generate(SynthConfig(seed=5, days=30, start="2023-12-15")).bars["QQQ"]
    frame = bars.frame.copy()
    frame[["open", "high", "low", "close"]] *= 1.6
    shifted = tmp_path / "shifted.parquet"
    write_bars(Bars(frame, bars.meta), shifted)
    far = evaluate_on(tiny_artifact, [str(shifted)])
    assert far.inputs_range["warn"] and far.inputs_range["share_beyond_clip"] > 0.5
    done = run_script("sentio", "model", "evaluate", str(tiny_artifact), "--data", str(shifted))
    assert done.returncode == 0 and "WARNING inputs out of distribution" in done.stdout
