"""``strattest --by-regime``: the per-regime split against hand computations, end to end through
the real console script on the built-in market (a plain and a multi-regime quick model), and
its bad invocations (exit 2, one line naming the flag)."""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pandas as pd
import pytest

from sentio.backtest.regimes import attributed_returns, figures, returns_by_regime
from sentio.features.regimes import NAMES
from tests.cli.badinput import Case, assert_refused, run_script

# ---------------------------------------------------------------- the pure function, by hand


def test_constant_returns_per_regime_compound_by_formula():
    # bull: +0.1 % per bar, 3 bars in session 1 and 2 in session 2; bear: -0.2 % per bar,
    # 4 bars in session 2; sideways: none; volatile: +0.5 % once in each of sessions 1..3
    regime = np.array([0, 0, 3, 0, 0, 0, 1, 1, 3, 1, 1, 3])
    session = np.array([1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 3])
    per_regime = {0: 0.001, 1: -0.002, 3: 0.005}
    strategy = np.array([per_regime[g] for g in regime])
    qqq = -strategy
    out = returns_by_regime(strategy, qqq, regime, session, seed=3)

    bull = out["bull"]["strategy"]
    assert (bull.bars, bull.sessions) == (5, 2)
    assert bull.total_return_pct == pytest.approx(100 * (1.001**5 - 1), rel=1e-12)
    s1, s2 = 1.001**3 - 1, 1.001**2 - 1  # bull bars 0, 1, 3 in session 1; 4, 5 in session 2
    assert bull.mean_session_return_pct == pytest.approx(100 * (s1 + s2) / 2, rel=1e-12)
    assert bull.max_drawdown_pct == 0.0  # only gains
    assert bull.sharpe == pytest.approx(
        statistics.mean([s1, s2]) / statistics.stdev([s1, s2]) * math.sqrt(252), rel=1e-9
    )
    bear = out["bear"]["strategy"]
    assert (bear.bars, bear.sessions) == (4, 1)
    assert bear.total_return_pct == pytest.approx(100 * (0.998**4 - 1), rel=1e-12)
    assert bear.max_drawdown_pct == pytest.approx(100 * (0.998**4 - 1), rel=1e-12)
    assert math.isnan(bear.sharpe)  # one session: no standard deviation
    # buy-and-hold is the mirror image here: -0.1 % per bull bar, falling all the way
    assert out["bull"]["buy_and_hold_qqq"].total_return_pct == pytest.approx(
        100 * (0.999**5 - 1), rel=1e-12
    )
    assert out["bull"]["buy_and_hold_qqq"].max_drawdown_pct == pytest.approx(
        100 * (0.999**5 - 1), rel=1e-12
    )
    # volatile: one bar in each of three sessions, each +0.5 %: every session the same, so
    # every bootstrap draw gives the same mean and the interval collapses onto it
    volatile = out["volatile"]["strategy"]
    assert (volatile.bars, volatile.sessions) == (3, 3)
    assert volatile.mean_session_return_pct == pytest.approx(0.5, rel=1e-12)
    low, high = volatile.session_return_ci95_pct
    assert low == pytest.approx(0.5, rel=1e-12) and high == pytest.approx(0.5, rel=1e-12)
    assert sum(out[n]["strategy"].bars for n in NAMES) == len(regime)


def test_a_regime_without_bars_has_zeros_and_does_not_crash():
    out = returns_by_regime(
        np.array([0.01, -0.01]), np.array([0.0, 0.0]), np.array([0, 0]), np.array([1, 2]), 0
    )
    for name in ("bear", "sideways", "volatile"):
        for who in ("strategy", "buy_and_hold_qqq"):
            f = out[name][who]
            assert (f.bars, f.sessions, f.total_return_pct, f.max_drawdown_pct) == (0, 0, 0, 0)
            assert math.isnan(f.mean_session_return_pct) and math.isnan(f.sharpe)
    # unlabelled bars (-1) are in no regime
    out = returns_by_regime(np.zeros(3), np.zeros(3), np.array([-1, -1, 2]), np.zeros(3), 0)
    assert [out[n]["strategy"].bars for n in NAMES] == [0, 0, 1, 0]


def test_the_session_interval_brackets_the_mean_of_varied_sessions():
    rng = np.random.default_rng(11)
    session = np.repeat(np.arange(40), 30)
    returns = rng.normal(0.0002, 0.001, len(session))
    f = figures(returns, session, seed=5, stream="test")
    daily = [np.prod(1 + returns[session == d]) - 1 for d in range(40)]
    assert f.mean_session_return_pct == pytest.approx(100 * statistics.mean(daily), rel=1e-9)
    low, high = f.session_return_ci95_pct
    half = 1.96 * statistics.stdev(daily) / math.sqrt(40) * 100  # normal-theory half width
    assert low < f.mean_session_return_pct < high
    assert (high - low) / 2 == pytest.approx(half, rel=0.25)


def test_attributed_returns_compound_to_each_block():
    rng = np.random.default_rng(2)
    block = np.repeat(np.arange(3), 50)
    equity = 1000 * np.cumprod(1 + rng.normal(0, 0.002, len(block)))
    close = 300 * np.cumprod(1 + rng.normal(0, 0.001, len(block)))
    strategy, qqq = attributed_returns(equity, close, block, capital=1000.0)
    for b in range(3):
        rows = np.flatnonzero(block == b)
        # the block's return: its last equity against its fresh capital
        assert np.prod(1 + strategy[rows]) == pytest.approx(equity[rows[-1]] / 1000.0, rel=1e-12)
        assert np.prod(1 + qqq[rows]) == pytest.approx(close[rows[-1]] / close[rows[0]], 1e-12)
        assert strategy[rows[-1]] == 0.0 and qqq[rows[-1]] == 0.0  # the block ends flat
        # a bar's P&L runs from its own close to the next one
        assert qqq[rows[0]] == pytest.approx(close[rows[1]] / close[rows[0]] - 1, rel=1e-12)


# ---------------------------------------------------------------- end to end


def train(out, *extra):
    done = run_script(
        "sentio",
        "train",
        "--quick",
        *extra,
        "--output",
        str(out),
        "--epochs",
        "1",
        "--no-progress",
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    pytest.importorskip("torch", reason="training the test models needs the train extra")
    root = tmp_path_factory.mktemp("by-regime")
    return {"plain": train(root / "plain"), "multi": train(root / "multi", "--multi-regime")}


def by_regime_run(model, tmp_path):
    out = tmp_path / "run"
    done = run_script(
        "sentio",
        "strattest",
        "tfa",
        "--model",
        str(model),
        "--by-regime",
        "--json",
        "--no-cache",
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout), pd.read_parquet(out / "bars.parquet")


def check_totals(report, bars):
    split = report["by_regime"]
    traded = report["blocks_run"] * report["config"]["block_size"]
    assert len(bars) == traded == split["traded_bars"]
    assert split["unlabelled_bars"] == 0  # the built-in market's traded bars are past warm-up
    for who in ("strategy", "buy_and_hold_qqq"):
        counts = [split["regimes"][n][who]["bars"] for n in NAMES]
        assert sum(counts) == traded
    assert all(
        split["regimes"][n]["strategy"]["bars"] == split["regimes"][n]["buy_and_hold_qqq"]["bars"]
        for n in NAMES
    )
    # buy-and-hold: the regimes' totals compound to QQQ over the traded bars, block by block
    # from the first traded close to the last (the per-block closes, not the per-bar split)
    compounded = math.prod(
        1 + split["regimes"][n]["buy_and_hold_qqq"]["total_return_pct"] / 100 for n in NAMES
    )
    closes = [g["close_QQQ"].to_numpy() for _, g in bars.groupby("block")]
    assert compounded == pytest.approx(math.prod(c[-1] / c[0] for c in closes), rel=1e-9)
    # the strategy: the regimes' totals compound to strattest's own block returns
    compounded = math.prod(
        1 + split["regimes"][n]["strategy"]["total_return_pct"] / 100 for n in NAMES
    )
    blocks = math.prod(1 + b["return_pct"] / 100 for b in report["blocks"])
    assert compounded == pytest.approx(blocks, rel=1e-9)
    return split


def test_plain_model_labeller_is_fitted_before_the_first_traded_bar(models, tmp_path):
    report, bars = by_regime_run(models["plain"], tmp_path)
    split = check_totals(report, bars)
    record = split["labeller"]
    first = int(bars["ts"].min())
    assert record["labeller"] == "rules" and "before the first traded bar" in record["source"]
    assert record["first_traded_ts"] == first
    assert record["fitted_on"]["bars_before"]["last_ts"] < first
    assert pd.Timestamp(record["first_traded_time"]) == pd.Timestamp(report["data_range"][0])
    assert record["fitted_on"]["bars"] >= 1000


def test_multi_regime_model_uses_its_own_labeller(models, tmp_path):
    report, bars = by_regime_run(models["multi"], tmp_path)
    split = check_totals(report, bars)
    spec = json.loads((models["multi"] / "feature_spec.json").read_text())
    record = split["labeller"]
    assert "model's own" in record["source"]
    assert record["labeller"] == spec["regimes"]["labeller"]
    assert record["fitted_on"] == spec["regimes"]["fitted_on"]


def test_the_table_follows_the_usual_report(models, tmp_path):
    done = run_script(
        "sentio",
        "strattest",
        "tfa",
        "--model",
        str(models["plain"]),
        "--by-regime",
        "--regime-labeller",
        "hmm",
        "--no-cache",
        cwd=tmp_path,
        env={"COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    text = done.stdout
    assert text.index("blocks") < text.index("by regime: hmm labeller")
    for name in NAMES:
        assert name in text[text.index("by regime") :]


# ---------------------------------------------------------------- bad input

CASES = [
    Case("walk-forward", ["--by-regime", "--mode", "walk-forward"], ["--by-regime", "historical"]),
    Case("tracks", ["--by-regime", "--tracks", "2"], ["--by-regime", "--tracks"]),
    Case("regime", ["--by-regime", "--regime", "bull"], ["--by-regime", "--regime"]),
    Case("labeller-alone", ["--regime-labeller", "hmm"], ["--regime-labeller", "--by-regime"]),
    Case(
        "labeller-typo", ["--by-regime", "--regime-labeller", "xyz"], ["--regime-labeller", "xyz"]
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_invocations_are_refused_in_one_line(case, tmp_path):
    done = run_script(case.script, "strattest", "tfa", *case.args, cwd=tmp_path)
    assert_refused(done, *case.says)


def test_regime_labeller_with_a_multi_regime_model_is_refused(models, tmp_path):
    done = run_script(
        "sentio",
        "strattest",
        "tfa",
        "--model",
        str(models["multi"]),
        "--by-regime",
        "--regime-labeller",
        "hmm",
        cwd=tmp_path,
    )
    assert_refused(done, "--regime-labeller", "own")
