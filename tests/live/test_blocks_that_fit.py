"""``sentio live --blocks N`` asking for more blocks than fit trades the blocks strattest
trades, no more: both take the blocks from strattest's own plan (outside the model's data and
after the model's warm-up). Before, live picked a block inside the warm-up bars before the
model's first training bar, where strattest has no probability, and replayed the model's own
bars between its two blocks."""

from __future__ import annotations

from sentio.backtest.strattest import StrattestConfig
from sentio.strategy import StrategyConfig
from tests.live.test_parity import assert_same, live_run, strattest_run


def test_live_runs_only_the_blocks_strattest_runs(tmp_path, tiny_artifact):
    config = StrattestConfig(
        model=tiny_artifact, blocks=2, cache_dir=None, strategy=StrategyConfig(rule="adaptive")
    )
    result = strattest_run(tmp_path, config)
    assert result.blocks_run == 1  # 12 sessions: one 480-bar block fits outside the model's data
    final, db = live_run(
        tmp_path,
        "--model",
        str(tiny_artifact),
        "--feed",
        "replay:builtin@max",
        "--blocks",
        "2",
        "--rule",
        "adaptive",
    )
    assert final["bars"] == len(result.per_bar) == 480
    assert_same(result, final, db)
