"""`sentio model evaluate` through the real console script (sentio.backtest.evaluation).

A plain and a multi-regime quick model are trained on one 60-session synthetic file. Oracles:
- without --data, the figures are metrics.json's own (read here from the file);
- with --data, the scored bars are recomputed here from the file's timestamps and closes
  (bars after the validation end plus the embargo; log(C[t+h]/C[t]) beyond the dead zone
  within one New York date and segment; a serving-path probability), and the AUC from them
  with ``train.evaluate.auc``. Scoring the training file, they are also exactly the training
  pipeline's test part (its sample count and, for the multi-regime model, its per-regime
  counts in metrics.json), an independent record of the same selection.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sentio.data import Bars, read_bars, write_bars
from sentio.infer import SequenceContext
from sentio.train.evaluate import auc
from tests.cli.badinput import assert_refused, run_script

NAMES = ("bull", "bear", "sideways", "volatile")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("evaluate")
    done = run_script("sentio", "data", "synth", "--days", "60", "--seed", "3", "--out", str(tmp))
    assert done.returncode == 0, done.stderr
    out = {"data": tmp / "QQQ.parquet"}
    for name, extra in (("plain", []), ("multi", ["--multi-regime"])):
        out[name] = tmp / name
        args = ["train", "--quick", "--data", str(out["data"]), "--epochs", "1", "--no-progress"]
        done = run_script("sentio", *args, "--output", str(out[name]), *extra)
        assert done.returncode == 0, done.stderr[-2000:]
    return out


def evaluate(*args: str) -> dict:
    done = run_script("sentio", "model", "evaluate", *args, "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def read(folder: Path, name: str) -> dict:
    return json.loads((folder / name).read_text())


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("name", ["plain", "multi"])
def test_without_data_prints_what_metrics_json_holds(models, name, tmp_path):
    folder = models[name]
    before = files_of(folder)
    metrics = read(folder, "metrics.json")
    done = run_script("sentio", "model", "evaluate", str(folder), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    for part in ("validation", "test"):
        for who in ("model", "logistic_last_row", "base_rate"):
            want = metrics["evaluation"][part][who]
            assert doc["parts"][part][who] == {
                k: want[k] for k in ("auc", "log_loss", "accuracy", "n")
            }
    assert doc["train_positive_rate"] == metrics["train_positive_rate"]
    assert doc["regimes"] == metrics.get("regimes")  # the whole table, CIs and counts
    assert (doc["regimes"] is None) == (name == "plain")
    text = run_script("sentio", "model", "evaluate", str(folder), cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    test = metrics["evaluation"]["test"]["model"]
    assert f"{test['auc']:.4f}" in text.stdout and f"{test['log_loss']:.4f}" in text.stdout
    assert ("Per regime" in text.stdout) == (name == "multi")
    # a reading command: the artifact is unchanged and nothing appeared where it ran
    assert files_of(folder) == before and not any(tmp_path.iterdir())


def oracle(models: dict, name: str) -> dict:
    """The scored bars recomputed from the file alone (module doc)."""
    frame = pd.read_parquet(models["data"])
    frame = frame[frame["symbol"] == "QQQ"].sort_values("ts").reset_index(drop=True)
    meta = read(models[name], "model.meta.json")
    ts, close = frame["ts"].to_numpy(np.int64), frame["close"].to_numpy(np.float64)
    segment = frame["segment"].to_numpy()
    h, dead = meta["label"]["horizon_bars"], meta["label"]["deadzone_bp"] * 1e-4
    day = pd.to_datetime(ts, utc=True).tz_convert("America/New_York").strftime("%Y-%m-%d")
    day = np.asarray(day)
    n = len(ts)
    seen = meta["data"]["splits"]["validation"]["last_ts"]
    embargo = meta["data"]["embargo_bars"]
    # the model's data, first training bar to validation end, and the embargo either side
    start = max(int((ts < meta["data"]["splits"]["train"]["first_ts"]).sum()) - embargo, 0)
    end = int((ts <= seen).sum()) + embargo
    skipped = end - start
    ret = np.full(n, np.nan)
    same = (day[:-h] == day[h:]) & (segment[:-h] == segment[h:])
    ret[:-h] = np.where(same, np.log(close[h:] / close[:-h]), np.nan)
    p = SequenceContext(models[name]).calculate_probability(frame)
    outside = (np.arange(n) < start) | (np.arange(n) >= end)
    keep = outside & (np.abs(np.nan_to_num(ret)) > dead) & ~np.isnan(p)
    return {
        "skipped": skipped,
        "ts": ts[keep],
        "y": (ret[keep] > 0).astype(float),
        "p": p[keep],
        "seen": seen,
        "test_samples": meta["data"]["splits"]["test"]["samples"],
        "sessions": len(np.unique(day[keep])),
    }


def check_overall(doc: dict, want: dict, metrics: dict) -> None:
    n = len(want["y"])
    assert doc["bars"]["in_sample_skipped"] == want["skipped"]
    assert doc["bars"]["scored"] == doc["overall"]["samples"] == n == want["test_samples"]
    assert doc["scored_ts"] == {"first_ts": int(want["ts"][0]), "last_ts": int(want["ts"][-1])}
    assert doc["scored_ts"]["first_ts"] > want["seen"]  # out of sample only
    assert doc["overall"]["sessions"] == want["sessions"]
    assert doc["overall"]["auc"] == pytest.approx(auc(want["y"], want["p"]), abs=1e-12)
    low, high = doc["overall"]["auc_ci95"]
    assert low <= doc["overall"]["auc"] <= high
    assert doc["overall"]["positive_rate"] == pytest.approx(want["y"].mean())
    rate = metrics["train_positive_rate"]
    assert doc["base_rate"]["train_positive_rate"] == rate
    by_hand = -np.mean(want["y"] * np.log(rate) + (1 - want["y"]) * np.log(1 - rate))
    assert doc["base_rate"]["log_loss"] == pytest.approx(by_hand, rel=1e-12)


def test_plain_model_on_data_with_a_fitted_labeller(models):
    doc = evaluate(
        str(models["plain"]), "--data", str(models["data"]), "--regime-labeller", "rules"
    )
    want = oracle(models, "plain")
    check_overall(doc, want, read(models["plain"], "metrics.json"))
    regimes = doc["regimes"]
    assert regimes["labeller"] == "rules" and regimes["fitted_on"]["last_ts"] <= want["seen"]
    counts = [regimes["by_regime"][r]["samples"] for r in NAMES]
    assert sum(counts) + regimes["before_warm_up"] == len(want["y"])
    assert regimes["before_warm_up"] == 0  # 40 sessions warm the labeller up before these bars


def test_multi_regime_model_uses_its_own_labeller(models):
    doc = evaluate(str(models["multi"]), "--data", str(models["data"]))
    want = oracle(models, "multi")
    metrics = read(models["multi"], "metrics.json")
    check_overall(doc, want, metrics)
    regimes = doc["regimes"]
    assert regimes["labeller"] == "rules" and "own" in regimes["source"]
    counts = {r: regimes["by_regime"][r]["samples"] for r in NAMES}
    assert sum(counts.values()) == len(want["y"])
    # the same bars under the same labeller as the training pipeline's test part
    assert counts == {r: metrics["regimes"]["test"][r]["samples"] for r in NAMES}


def test_plain_model_text_output_has_no_regime_table(models):
    done = run_script(
        "sentio", "model", "evaluate", str(models["plain"]), "--data", str(models["data"])
    )
    assert done.returncode == 0, done.stderr
    want = read(models["plain"], "model.meta.json")["data"]["splits"]["test"]["samples"]
    assert f"scored {want:,} of 23,400 QQQ bars" in done.stdout
    assert "in-sample bars" in done.stdout and "Per regime" not in done.stdout


@pytest.fixture(scope="module")
def in_sample_file(models, tmp_path_factory) -> Path:
    """The training file cut after the session of the validation end: every bar in sample."""
    bars = read_bars(models["data"])
    seen = read(models["plain"], "model.meta.json")["data"]["splits"]["validation"]["last_ts"]
    day = pd.to_datetime(bars.frame["ts"], utc=True).dt.tz_convert("America/New_York").dt.date
    last = pd.Timestamp(seen, tz="UTC").tz_convert("America/New_York").date()
    path = tmp_path_factory.mktemp("cut") / "QQQ.parquet"
    write_bars(Bars(bars.frame[day <= last].reset_index(drop=True), bars.meta), path)
    return path


@pytest.mark.parametrize(
    "case",
    [
        ("multi", ["--data", "{data}", "--regime-labeller", "rules"], ["--regime-labeller", "own"]),
        ("plain", ["--data", "{data}", "--regime-labeller", "xyz"], ["--regime-labeller", "xyz"]),
        ("plain", ["--data", "{cut}"], ["--data", "validation end"]),
        ("plain", ["--regime-labeller", "rules"], ["--regime-labeller", "--data"]),
        ("missing", ["--data", "{data}"], ["no such artifact directory", "missing"]),
    ],
    ids=[
        "labeller-for-multi-regime",
        "labeller-xyz",
        "in-sample-only",
        "labeller-no-data",
        "no-model",
    ],
)
def test_bad_input_is_one_line(models, in_sample_file, tmp_path, case):
    name, args, says = case
    folder = models.get(name, tmp_path / "missing")
    fill = {"data": str(models["data"]), "cut": str(in_sample_file)}
    args = [a.format(**fill) for a in args]
    assert_refused(run_script("sentio", "model", "evaluate", str(folder), *args), *says)
