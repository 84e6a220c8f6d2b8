"""Backtest speed: the compiled accounting loop against vectorbt and backtesting.py on the same
signals, and the wall time of ``strattest --blocks 5`` with a cold and a warm probability cache.

Workload: 1,000,000 one-minute bars of four instruments (seeded random walks), target weights
from a seeded exposure signal that changes every 30 bars on average (QQQ/TQQQ/PSQ/SQQQ blends),
480-bar blocks, next-open fills, the default costs.
- vectorbt: ``Portfolio.from_orders`` with the same target weights (``targetpercent``, cash
  shared over the four columns, sells first), close fills, one portfolio (no block resets);
- backtesting.py: one instrument (QQQ) with the same exposure sign, on 100,000 bars (it is a
  Python loop per bar; its rate is what is compared).
The engines differ in details (block resets, fill price, cost model), so this compares cost of
computation, not results; tests/backtest/test_strattest.py compares results with vectorbt.

Run: ``.venv/bin/python bench/backtest.py``. Prints one table (needs an artifact for the
strattest rows: ``sentio train --quick --output demo/tfa``, as ``make demo`` does).
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from common import print_table, timed

from sentio.backtest.costs import CostModel
from sentio.backtest.execution import simulate
from sentio.strategy import allocate

N = 1_000_000
BT_BARS = 100_000
SYMBOLS = ("QQQ", "TQQQ", "PSQ", "SQQQ")


def market(n: int, seed: int = 3):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 5e-4, (n, 4)), axis=0))
    open_ = close * np.exp(rng.normal(0, 1e-4, (n, 4)))
    changes = rng.random(n) < 1 / 30
    level = rng.choice([-3.0, -1.0, 0.0, 1.0, 2.0, 3.0], n)
    exposure = pd.Series(np.where(changes, level, np.nan)).ffill().fillna(0.0).to_numpy()
    table = {e: [allocate(e)[s] for s in SYMBOLS] for e in np.unique(exposure)}
    weights = np.array([table[e] for e in exposure])
    return open_, close, exposure, weights


def run_vectorbt(close, weights):
    import vectorbt as vbt

    columns = pd.RangeIndex(4)
    vbt.Portfolio.from_orders(
        close=pd.DataFrame(close, columns=columns),
        size=pd.DataFrame(weights, columns=columns),
        size_type="targetpercent",
        init_cash=100_000.0,
        cash_sharing=True,
        group_by=True,
        call_seq="auto",
        fees=1e-5,
        freq="1min",
    ).value()


def run_backtesting(open_, close, exposure):
    from backtesting import Backtest, Strategy

    index = pd.date_range("2001-01-02", periods=len(close), freq="min")
    frame = pd.DataFrame(
        {
            "Open": open_,
            "High": np.maximum(open_, close),
            "Low": np.minimum(open_, close),
            "Close": close,
            "Volume": 1_000.0,
        },
        index=index,
    )
    side = np.sign(exposure)

    class Follow(Strategy):
        def init(self):
            self.side = self.I(lambda: side, name="side")

        def next(self):
            want = self.side[-1]
            if want > 0 and not self.position.is_long:
                self.position.close()
                self.buy(size=0.99)
            elif want < 0 and not self.position.is_short:
                self.position.close()
                self.sell(size=0.99)
            elif want == 0 and self.position:
                self.position.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Backtest(frame, Follow, cash=100_000_000, commission=1e-5, finalize_trades=True).run()


def strattest_times() -> tuple[float, float] | None:
    from sentio.backtest.strattest import StrattestConfig, run_strattest

    model = Path("demo/tfa")
    if not (model / "manifest.json").exists():
        return None
    with tempfile.TemporaryDirectory() as cache:
        config = StrattestConfig(model=model, blocks=5, cache_dir=Path(cache))
        start = time.perf_counter()
        run_strattest(config)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        run_strattest(config)
        warm = time.perf_counter() - start
    return cold, warm


def main() -> None:
    open_, close, exposure, weights = market(N)
    block = np.arange(N, dtype=np.int64) // 480
    costs, spreads = CostModel().vector(), CostModel().half_spreads(list(SYMBOLS), close)
    ours = timed(
        lambda: simulate(weights, open_, close, block, True, 100_000.0, costs, spreads), repeats=3
    )[0]
    vbt = timed(lambda: run_vectorbt(close, weights), repeats=1)[0]
    small = slice(0, BT_BARS)
    bt = timed(
        lambda: run_backtesting(open_[small, 0], close[small, 0], exposure[small]), repeats=1
    )[0]
    rows = [
        (
            "accounting loop",
            f"{N:,} bars x 4",
            f"{N / ours / 1e6:.2f} M bars/s",
            "vectorbt from_orders",
            f"{N / vbt / 1e6:.2f} M bars/s",
            f"{vbt / ours:.1f}x",
        ),
        (
            "accounting loop",
            f"{N:,} bars x 4",
            f"{N / ours / 1e6:.2f} M bars/s",
            "backtesting.py (1 instrument)",
            f"{BT_BARS / bt / 1e6:.3f} M bars/s",
            f"{(N / ours) / (BT_BARS / bt):.0f}x",
        ),
    ]
    times = strattest_times()
    if times:
        cold, warm = times
        rows.append(
            (
                "strattest --blocks 5",
                "demo/tfa, built-in",
                f"{warm:.2f} s warm cache",
                "same, cold cache",
                f"{cold:.2f} s",
                f"{cold / warm:.1f}x",
            )
        )
    head = ("measure", "work", "sentio", "peer", "peer", "sentio faster by")
    print_table(head, rows)
    print("(one thread; fastest of 3 for sentio, one run for the peers; goal >= 5 M bars/s)")


if __name__ == "__main__":
    main()
