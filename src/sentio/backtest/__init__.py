"""Backtest: block simulation, execution and costs, accounting, metrics, reports.

Built so far: ``metrics`` (every figure, defined once; docs/metrics.md). The execution loop and
``strattest`` come with the rest of issue 6.
"""

from sentio.backtest.metrics import Summary, summarize

__all__ = ["Summary", "summarize"]
