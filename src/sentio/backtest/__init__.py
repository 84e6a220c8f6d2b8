"""Backtest: block simulation, execution and costs, accounting, metrics, reports.

Built so far (issue 6 in progress): ``metrics`` (every figure, defined once; docs/metrics.md)
and ``execution`` (the compiled accounting loop: next-open or close fills, whole shares, costs,
blocks that start flat with fresh capital and end flat). Dated cost defaults, ``strattest``,
simulation mode and the vectorbt cross-check come with the rest of issue 6.
"""

from sentio.backtest.execution import simulate
from sentio.backtest.metrics import Summary, summarize

__all__ = ["Summary", "simulate", "summarize"]
