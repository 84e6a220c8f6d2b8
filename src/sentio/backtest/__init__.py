"""Backtest: block simulation, execution and costs, accounting, metrics, reports.

``metrics`` (every figure, defined once; docs/metrics.md), ``execution`` (the compiled
accounting loop: next-open or close fills, whole shares, costs, blocks that start flat with
fresh capital and end flat), ``strattest`` (historical and simulation modes), ``gate`` (a
candidate model against the incumbent on unseen sessions), ``walkforward`` (the retraining
policy replayed over history), ``retrainer`` (the same policy while ``sentio live`` trades),
``cluster`` (Ray tasks) and ``sweep`` (grids of walk-forward runs). The modules that train
import torch only when they train.
"""

from sentio.backtest.execution import simulate
from sentio.backtest.metrics import Summary, summarize

__all__ = ["Summary", "simulate", "summarize"]
