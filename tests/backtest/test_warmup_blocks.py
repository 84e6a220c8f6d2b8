"""Blocks are chosen from bars that have a probability (issue 16 section 3: a block of 470
warm-up bars out of 480 counted as a 0 % block and diluted the mean).

Oracle: the model's declared warm-up. The tiny model's features need ``warm_bars.max()`` rows
before the first ready one (the registry's declared warm-up) and its window ``seq_len`` rows,
so a file that starts after its validation end has ``warm_bars.max() + seq_len - 1`` bars
without a probability; blocks are counted back from the file's end and stop there.
"""

from __future__ import annotations

import numpy as np
import pytest

from sentio.backtest.strattest import (
    BacktestError,
    StrattestConfig,
    choose_blocks,
    historical_plan,
    run_strattest,
    scored,
)

pytest.importorskip("torch", reason="the test artifact needs the train extra")


def test_scored_bars_start_at_the_first_probability():
    eligible = np.array([0, 1, 1, 1, 1, 1, 1, 1], bool)
    p = np.array([0.5, np.nan, np.nan, np.nan, 0.4, 0.6, np.nan, 0.5])
    ready = scored(eligible, p)
    assert ready.tolist() == [False] * 4 + [True] * 4  # a later NaN stays: it is counted
    block, run = choose_blocks(ready, blocks=5, size=2)
    assert run == 2 and block.tolist() == [-1, -1, -1, -1, 0, 0, 1, 1]
    assert not scored(eligible, np.full(8, np.nan)).any()


@pytest.fixture(scope="module")
def later_file(tmp_path_factory, tiny_artifact):
    """Three built-in sessions from 2024-03-01, after the tiny model's January validation
    end: every bar is out of sample, the first ones are the model's warm-up."""
    from sentio.data import write_bars
    from sentio.data.synth.generate import SynthConfig, generate
    from sentio.infer.registry import load_model

    path = tmp_path_factory.mktemp("later") / "qqq.parquet"
    write_bars(generate(SynthConfig(seed=5, days=3, start="2024-03-01")).bars["QQQ"], path)
    model = load_model(tiny_artifact)
    warm = int(model.engine.program.warm_bars.max()) + model.seq_len - 1
    return path, warm


def test_no_block_holds_warm_up_bars(later_file, tiny_artifact):
    path, warm = later_file
    bars = 3 * 390
    config = StrattestConfig(
        model=tiny_artifact, data=(str(path),), blocks=10, block_size=200, cache_dir=None
    )
    result = run_strattest(config)
    # before: the last 5 blocks of all 1,170 bars, three of them (partly) warm-up
    assert result.blocks_run == (bars - warm) // 200 == 2
    assert result.per_block["warmup_bars"].tolist() == [0, 0]
    assert not np.isnan(result.per_bar["probability"]).any()
    rows = np.searchsorted(result.market["ts"].to_numpy(), result.per_bar["ts"].to_numpy())
    assert rows[0] == bars - 2 * 200 >= warm


def test_a_file_of_warm_up_only_is_refused_saying_so(later_file, tiny_artifact):
    path, warm = later_file
    config = StrattestConfig(
        model=tiny_artifact, data=(str(path),), blocks=1, block_size=500, cache_dir=None
    )
    with pytest.raises(BacktestError) as caught:
        historical_plan(config)
    message = str(caught.value)
    assert f"{3 * 390 - warm} bars lie outside the model's data" in message
    assert f"past the model's warm-up ({warm} before them have no probability yet)" in message


def test_each_block_counts_its_bars_without_a_probability():
    """A bar inside a block without a probability (a gap restarted the window) is counted."""
    from sentio.backtest.strattest import account
    from tests.backtest.test_costs_whole import plan

    p = np.array([0.9, np.nan, 0.9, np.nan, np.nan, 0.9])
    exposure = np.where(np.isnan(p), 0.0, 1.0)
    result = account(plan(), p, exposure, np.full(6, "", dtype=object), {})
    assert result.per_block["warmup_bars"].tolist() == [1, 2]
