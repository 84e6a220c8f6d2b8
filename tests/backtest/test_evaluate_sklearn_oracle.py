"""`sentio model evaluate` on real bars against scikit-learn (issue 16 section 4).

The tiny artifact (trained on the built-in market) scores the first 15 sessions of the real
IBKR QQQ 1-minute file: the first 3 as --warmup, the next 12 as --data. The labels and
probabilities are recomputed from the uncut 15 sessions (tests/backtest/
test_evaluate_any_bars.py ``oracle``), and scikit-learn's roc_auc_score, log_loss and
brier_score_loss on them must equal the command's figures (scikit-learn is a test oracle
only; it comes with the train extra through hmmlearn).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sentio.data import Bars, import_files, write_bars
from tests.backtest.test_evaluate_any_bars import ny_dates, oracle
from tests.cli.badinput import run_script
from tests.conftest import real_file

SESSIONS, WARM = 15, 3


def test_figures_equal_scikit_learns(tiny_artifact, tmp_path):
    metrics = pytest.importorskip(
        "sklearn.metrics", reason="scikit-learn is the oracle (sentio[train] brings it)"
    )
    bars, _ = import_files([real_file("ibkr/QQQ_1min.csv")])
    day = ny_dates(bars.frame["ts"].to_numpy(np.int64))
    first = np.unique(day)[:SESSIONS]
    paths = {name: tmp_path / f"{name}.parquet" for name in ("all", "warm", "data")}
    chosen = {"all": first, "warm": first[:WARM], "data": first[WARM:]}
    for name, days in chosen.items():
        write_bars(
            Bars(bars.frame[np.isin(day, days)].reset_index(drop=True), bars.meta), paths[name]
        )
    args = ["--data", str(paths["data"]), "--warmup", str(paths["warm"]), "--json"]
    done = run_script("sentio", "model", "evaluate", str(tiny_artifact), *args)
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads(done.stdout)
    first_data = int(pd.read_parquet(paths["data"])["ts"].min())
    want = oracle(tiny_artifact, paths["all"], first_data)
    y = want["y"]
    assert doc["bars"]["scored"] == len(y) > 3000 and doc["bars"]["warmup_joined"] is True
    assert doc["bars"]["in_sample_skipped"] == 0  # real bars lie long after the model's data
    rate = np.full(len(y), want["rate"])
    for got, p in (
        (doc["overall"], want["p"]),
        (doc["logistic_last_row"], want["q"]),
        (doc["base_rate"], rate),
    ):
        if "auc" in got:
            assert got["auc"] == pytest.approx(metrics.roc_auc_score(y, p), abs=1e-12)
        assert got["log_loss"] == pytest.approx(metrics.log_loss(y, p), abs=1e-12)
        assert got["brier"] == pytest.approx(metrics.brier_score_loss(y, p), abs=1e-12)
