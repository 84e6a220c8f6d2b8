"""The edge verdict (``sentio.train.evaluate.edge``, issue 16 section 2).

Oracles: hand-made labels and probabilities whose AUC, log losses and session-bootstrap
intervals are known without the code (a constant or a perfect predictor gives the same figure
on every resample), and planted truths: the built-in market with a strong planted signal has
an edge, the one without any (signal strength 0) has none.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from sentio.data.synth.generate import SynthConfig
from sentio.train.evaluate import EDGE_MIN_SESSIONS, edge
from tests.cli.badinput import run_script
from tests.conftest import tiny_run

SESSIONS, PER = 20, 20
Y = np.tile([0.0, 1.0], SESSIONS * PER // 2)  # half up in every session
DAYS = np.repeat(np.arange(SESSIONS), PER)
LN2 = math.log(2)


def test_a_constant_one_half_has_no_edge():
    out = edge(Y, np.full(len(Y), 0.5), DAYS, 0.5, seed=1)
    # every resample: AUC 0.5 (all tied), log loss ln 2 for the model and the base rate alike
    assert out["auc"] == 0.5 and out["auc_ci95"] == [0.5, 0.5]
    assert out["log_loss"] == pytest.approx(LN2, abs=1e-15)
    assert out["base_rate_log_loss"] == pytest.approx(LN2, abs=1e-15)
    assert out["log_loss_gain_ci95"] == pytest.approx([0.0, 0.0], abs=1e-15)
    assert out["verdict"] == "none"
    assert "includes 0.5 and log loss 0.6931 is not better" in out["reason"]
    assert (out["sessions"], out["samples"]) == (SESSIONS, len(Y))


def test_a_perfect_predictor_has_an_edge():
    p = np.where(Y > 0, 0.9, 0.1)
    out = edge(Y, p, DAYS, 0.5, seed=1)
    gain = LN2 + math.log(0.9)  # base rate ln 2, model -ln 0.9 on every bar and resample
    assert out["auc"] == 1.0 and out["auc_ci95"] == [1.0, 1.0]
    assert out["log_loss_gain"] == pytest.approx(gain, abs=1e-12)
    assert out["log_loss_gain_ci95"] == pytest.approx([gain, gain], abs=1e-12)
    assert out["verdict"] == "present"
    assert out["reason"].startswith("validation AUC 1.000 [1.000, 1.000] lies above 0.5 and")


def test_ranking_without_calibration_is_weak():
    # ranks perfectly (AUC 1) but says 0.98 on every down bar: log loss far above ln 2
    p = np.where(Y > 0, 0.99, 0.98)
    out = edge(Y, p, DAYS, 0.5, seed=1)
    assert out["auc_ci95"] == [1.0, 1.0]
    assert out["log_loss"] == pytest.approx(-(math.log(0.99) + math.log(0.02)) / 2, abs=1e-12)
    assert out["verdict"] == "weak" and "lies above 0.5 but log loss" in out["reason"]


def test_calibration_without_ranking_is_weak():
    # training saw 30 % up bars; 0.5 everywhere ranks nothing but beats that constant here
    out = edge(Y, np.full(len(Y), 0.5), DAYS, 0.3, seed=1)
    base = -(math.log(0.3) + math.log(0.7)) / 2
    assert out["base_rate_log_loss"] == pytest.approx(base, abs=1e-12)
    assert out["log_loss_gain_ci95"] == pytest.approx([base - LN2] * 2, abs=1e-12)
    assert out["verdict"] == "weak"
    assert "includes 0.5 but log loss 0.6931 beats the base rate's 0.7803" in out["reason"]


def test_an_auc_below_one_half_is_no_edge():
    out = edge(Y, np.where(Y > 0, 0.1, 0.9), DAYS, 0.5, seed=1)
    assert out["auc_ci95"] == [0.0, 0.0] and out["verdict"] == "none"
    assert "lies below 0.5" in out["reason"]


def test_too_few_sessions_cannot_show_an_edge():
    few = DAYS < EDGE_MIN_SESSIONS - 1  # one session short
    out = edge(Y[few], np.where(Y[few] > 0, 0.9, 0.1), DAYS[few], 0.5, seed=1)
    assert out["auc"] == 1.0 and out["auc_ci95"] is None and out["verdict"] == "none"
    assert f"({EDGE_MIN_SESSIONS - 1} sessions; at least {EDGE_MIN_SESSIONS}" in out["reason"]


def check_numbers(metrics: dict) -> None:
    """The verdict's figures are the validation part's recorded scores."""
    out, val = metrics["edge"], metrics["evaluation"]["validation"]
    assert out["part"] == "validation" and out["samples"] == val["model"]["n"]
    assert out["auc"] == val["model"]["auc"]
    assert out["log_loss"] == val["model"]["log_loss"]
    assert out["base_rate_log_loss"] == val["base_rate"]["log_loss"]
    assert out["sessions"] >= EDGE_MIN_SESSIONS


# the tiny network of tests/conftest.py tiny_run on 70 built-in sessions of market seed 4
# (11 validation sessions), through the console script
TINY = ["--builtin-days", "70", "--seed", "4", "--epochs", "3", "--batch-size", "128"]
TINY += ["--learning-rate", "1e-3", "--sequence-length", "8", "--d-model", "16", "--nhead", "2"]
TINY += ["--num-layers", "1", "--horizon", "3", "--no-progress"]


def test_a_planted_signal_is_an_edge_and_the_commands_say_it(tmp_path):
    """`sentio train` on a strongly planted market: the verdict is "present", its summary
    prints metrics.json's verdict, and `sentio model info` shows it (text and --json)."""
    out = tmp_path / "tfa"
    done = run_script("sentio", "train", "--output", str(out), "--signal-strength", "0.5", *TINY)
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    check_numbers(metrics)
    verdict = metrics["edge"]
    assert verdict["verdict"] == "present", verdict["reason"]
    assert verdict["auc_ci95"][0] > 0.5 and verdict["log_loss_gain_ci95"][0] > 0
    said = f"edge: present - {verdict['reason']}"
    assert said in " ".join(done.stdout.split())  # rich may wrap the line
    info = run_script("sentio", "model", "info", str(out), "--json")
    assert info.returncode == 0, info.stderr[-2000:]
    assert json.loads(info.stdout)["edge"] == verdict
    text = run_script("sentio", "model", "info", str(out))
    assert text.returncode == 0, text.stderr[-2000:]
    assert "present - validation AUC" in " ".join(text.stdout.split())


def test_the_null_market_has_no_edge(tmp_path):
    pytest.importorskip("torch", reason="training needs the train extra")
    from sentio.train.pipeline import run_training

    run = dataclasses.replace(
        tiny_run(tmp_path / "tfa", seed=4), builtin=SynthConfig(seed=4, days=70)
    )
    metrics = run_training(run)
    assert json.loads((run.output / "metrics.json").read_text())["edge"] == metrics["edge"]
    check_numbers(metrics)
    out = metrics["edge"]
    assert out["verdict"] == "none", out["reason"]
    assert out["auc_ci95"][0] <= 0.5 and out["log_loss_gain_ci95"][0] <= 0
