"""Review of issue 16 ("Evidence"): each defect the review found, now fixed, as a test.

Oracles are independent of the code under review: hand-built summaries, the Bonferroni rule the
sweep itself states, counts of the bars a run actually traded, and the plain requirement that one
run's rows of a block are one contiguous stretch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sentio.backtest.metrics import bootstrap_mean_interval, verdict

# --------------------------------------------------------------------------------------------
# Pure checks (no model): the verdicts a user reads.
# --------------------------------------------------------------------------------------------


def _sweep_folder(out: Path, returns_pct: np.ndarray, tried: int, seed: int = 7) -> None:
    """``tried`` variants' walkforward.json + sessions.csv as run_walkforward writes them; every
    variant has the same session returns (so variant 0 is "the best" of ``tried``)."""
    low, high = bootstrap_mean_interval(returns_pct / 100, seed)
    summary = {
        "blocks": len(returns_pct),
        "mean_rpb_pct": float(returns_pct.mean()),
        "rpb_ci95_pct": [100 * low, 100 * high],
        "sharpe": 1.0,
        "max_drawdown_pct": -1.0,
    }
    hold = {"blocks": len(returns_pct), "mean_rpb_pct": 0.0, "rpb_ci95_pct": [-0.1, 0.1]}
    dates = pd.bdate_range("2024-02-01", periods=len(returns_pct)).strftime("%Y-%m-%d")
    for number in range(tried):
        folder = out / "variants" / f"{number:03d}"
        folder.mkdir(parents=True)
        report = {
            "summary": {
                "walk_forward": summary,
                "single_model": {"mean_rpb_pct": 0.0},
                "buy_and_hold_qqq": hold,
            },
            "out_of_sample": {"walk_forward": {"auc": 0.5, "auc_ci95": [0.49, 0.51]}},
            "folds": [],
            "sessions": len(returns_pct),
            "schedule": [{"trade": [100, 100 + len(returns_pct)]}],
            "config": {"strattest": {"seed": seed}},
        }
        (folder / "walkforward.json").write_text(json.dumps(report))
        pd.DataFrame({"date": dates, "walk_forward_return_pct": returns_pct}).to_csv(
            folder / "sessions.csv", index=False
        )


def test_sweep_verdict_does_not_call_the_best_of_many_an_edge(tmp_path):
    from sentio.backtest.sweep import Grid, summarize_sweep

    tried = 20
    # 30 sessions, mean about 2.4 standard errors above zero: the 95 % interval excludes zero,
    # the Bonferroni interval at 1 - 0.05 / 20 (z about 3.0) does not
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(30)
    returns = 0.25 * (noise - noise.mean()) / noise.std(ddof=1) + 0.25 * 2.4 / np.sqrt(30)
    _sweep_folder(tmp_path, returns, tried)
    grid = Grid(tmp_path / "grid.toml", {}, {"seed": list(range(tried))})
    document = summarize_sweep(grid, tmp_path)
    assert document["variants_tried"] == tried
    assert document["best"]["session_return_ci95_pct"][0] > 0  # precondition: 95 % excludes 0
    assert document["best"]["edge"] is False  # precondition: the sweep's own corrected rule
    # the verdict line printed under "best variant NNN:" must not contradict it
    assert document["verdict"]["kind"] != "edge"


def test_verdict_of_a_copy_of_buy_and_hold_is_not_edge():
    """Oracle: a strategy whose every block return IS buy-and-hold's has a paired difference of
    exactly zero, so whatever its own interval says, it shows no edge over buy-and-hold."""
    from sentio.backtest.metrics import paired_difference

    rpb = np.linspace(0.0005, 0.0035, 30)  # a rising market: every block positive
    hold = {"blocks": 30, "mean_rpb_pct": 0.20, "rpb_ci95_pct": (0.05, 0.35)}
    judged = verdict(dict(hold), hold, over=paired_difference(rpb, rpb, seed=0))
    assert judged.kind != "edge", judged.text
    assert "no edge over buy-and-hold" in judged.text


# --------------------------------------------------------------------------------------------
# With the tiny artifact (tests/conftest.py): what strattest and model evaluate count.
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def later_file(tmp_path_factory) -> Path:
    """Three built-in sessions from 2024-03-01, after the tiny model's January data."""
    from sentio.data import write_bars
    from sentio.data.synth.generate import SynthConfig, generate

    path = tmp_path_factory.mktemp("review16_later") / "qqq.parquet"
    write_bars(generate(SynthConfig(seed=5, days=3, start="2024-03-01")).bars["QQQ"], path)
    return path


def test_strattest_range_report_counts_the_traded_bars(tiny_artifact, later_file):
    pytest.importorskip("torch")
    from sentio.backtest.strattest import StrattestConfig, run_strattest

    config = StrattestConfig(
        model=tiny_artifact, data=(str(later_file),), blocks=2, block_size=200, cache_dir=None
    )
    result = run_strattest(config)
    traded_with_p = int(np.isfinite(result.per_bar["probability"]).sum())
    assert traded_with_p == result.blocks_run * 200 - int(result.per_block["warmup_bars"].sum())
    assert result.inputs_range["bars"] == traded_with_p


@pytest.fixture(scope="module")
def warm_and_data(tmp_path_factory) -> dict[str, Path]:
    """Built-in sessions from 2023-12-26 over the tiny model's data (2024-01-02 ..) and after:
    the first 3 as a --warmup file, the rest as --data."""
    from sentio.data import Bars, write_bars
    from sentio.data.synth.generate import SynthConfig, generate

    tmp = tmp_path_factory.mktemp("review16_eval")
    bars = generate(SynthConfig(seed=5, days=22, start="2023-12-26")).bars["QQQ"]
    ts = bars.frame["ts"].to_numpy(np.int64)
    day = pd.to_datetime(ts, utc=True).tz_convert("America/New_York").strftime("%Y-%m-%d")
    cut = np.unique(day)[3]
    out = {"warm": tmp / "warm.parquet", "data": tmp / "data.parquet"}
    for name, rows in (("warm", day < cut), ("data", day >= cut)):
        write_bars(Bars(bars.frame[rows].reset_index(drop=True), bars.meta), out[name])
    return out


def test_model_evaluate_range_report_counts_out_of_sample_bars_only(tiny_artifact, warm_and_data):
    pytest.importorskip("torch")
    from sentio.backtest.evaluation import evaluate_on

    result = evaluate_on(
        tiny_artifact, [str(warm_and_data["data"])], warmup=[str(warm_and_data["warm"])]
    ).to_dict()
    bars = result["bars"]
    assert bars["in_sample_skipped"] > 0 and bars["warmup"] > 0  # precondition
    # every bar the report counts must be a --data bar outside the model's data
    assert result["inputs_range"]["bars"] <= bars["total"] - bars["in_sample_skipped"]


def test_strattest_blocks_around_the_model_data_are_contiguous(tiny_artifact, tmp_path):
    pytest.importorskip("torch")
    from sentio.backtest.strattest import StrattestConfig, historical_plan, run_strattest
    from sentio.data import write_bars
    from sentio.data.synth.generate import SynthConfig, generate

    path = tmp_path / "around.parquet"  # 4 sessions before the model's data, 7 after it
    write_bars(generate(SynthConfig(seed=5, days=22, start="2023-12-26")).bars["QQQ"], path)
    config = StrattestConfig(model=tiny_artifact, data=(str(path),), blocks=10, cache_dir=None)
    plan = historical_plan(config)
    for b in range(plan.blocks_run):
        rows = np.flatnonzero(plan.block == b)
        assert rows[-1] - rows[0] + 1 == len(rows), f"block {b} is not one stretch of bars"
    run_strattest(config)  # and the report is made


def test_strattest_skips_the_embargo_after_the_validation_end(tiny_artifact, tmp_path):
    pytest.importorskip("torch")
    from sentio.backtest.evaluation import model_rows
    from sentio.backtest.strattest import StrattestConfig, historical_plan
    from sentio.data import write_bars
    from sentio.data.synth.generate import SynthConfig, generate
    from sentio.features.inputs import clock_columns

    path = tmp_path / "on.parquet"  # the model's sessions and 4 after them, contiguous
    write_bars(generate(SynthConfig(seed=5, days=16, start="2024-01-02")).bars["QQQ"], path)
    config = StrattestConfig(
        model=tiny_artifact, data=(str(path),), blocks=100_000, block_size=10, cache_dir=None
    )
    plan = historical_plan(config)  # every eligible bar in some block
    ts = plan.qqq["ts"].to_numpy(np.int64)
    lo, hi = model_rows(plan.meta, ts, clock_columns(ts)[1])
    traded = np.flatnonzero(plan.block >= 0)
    assert hi < len(ts) and len(traded)  # precondition: bars after the model's data
    assert not ((traded >= lo) & (traded < hi)).any()
