"""Strategy thresholds are fitted on validation probabilities only: changing every bar of the
test period moves the test metrics but not the thresholds (nor anything else fitted)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch is a train extra")

from sentio.data import write_bars  # noqa: E402
from sentio.data.schema import Bars  # noqa: E402
from sentio.data.synth.generate import SynthConfig, generate  # noqa: E402
from sentio.train.pipeline import run_training  # noqa: E402
from tests.conftest import tiny_run  # noqa: E402


def test_changing_test_period_data_does_not_move_the_thresholds(tmp_path):
    bars = generate(SynthConfig(seed=3, days=12)).bars["QQQ"]
    original = tmp_path / "original.parquet"
    write_bars(bars, original)
    run = tiny_run(tmp_path / "a")
    run.data = [str(original)]
    run_training(run)
    meta = json.loads((run.output / "model.meta.json").read_text())
    test_start = meta["data"]["splits"]["test"]["first_ts"]

    frame = bars.frame.copy()
    later = frame["ts"].to_numpy() >= test_start
    wobble = 1 + 0.01 * np.sin(np.arange(later.sum()) / 3.0)  # a different test period
    for column in ("open", "high", "low", "close"):
        frame.loc[later, column] = frame.loc[later, column].to_numpy() * wobble
    changed = tmp_path / "changed.parquet"
    write_bars(Bars(frame, bars.meta), changed)
    again = tiny_run(tmp_path / "b")
    again.data = [str(changed)]
    run_training(again)
    meta_b = json.loads((again.output / "model.meta.json").read_text())

    for key in ("long", "short", "validation_samples"):
        assert meta_b["thresholds"][key] == meta["thresholds"][key]
    assert meta_b["normalization"] == meta["normalization"]
    assert meta_b["metrics"]["validation"] == meta["metrics"]["validation"]
    assert meta_b["metrics"]["test"] != meta["metrics"]["test"]  # the change did reach the test
