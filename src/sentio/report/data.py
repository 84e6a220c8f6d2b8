"""What a report draws, in one shape whatever it was read from: :class:`ReportData`.

A report can be made from a strattest result in memory, from a run folder (``strattest --out
DIR`` or a walk-forward run folder) or from an audited run; ``sentio.report.sources`` and
``sentio.report.audited`` turn each into a ReportData, and ``sentio.report.figures`` and
``sentio.report.page`` draw only ReportData, so the three paths draw the same figures.

The series a plot needs beyond the recorded ones are derived here, each once: the stitched
equity (the blocks chained, as the walk-forward sessions are), the drawdown, entries and exits,
and the label of each scored bar (QQQ's forward return at the model's horizon, by the
training's own rule, ``sentio.train.samples.label_bars``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sentio.backtest.metrics import drawdown
from sentio.core.errors import SentioError
from sentio.features.inputs import clock_columns
from sentio.train.samples import LabelSpec, label_bars, outside_deadzone

SYMBOLS = ("QQQ", "TQQQ", "PSQ", "SQQQ")
# One row per block (per session in a walk-forward run); a figure the source lacks is NaN.
BLOCK_COLUMNS = (
    "block",
    "start",  # ISO 8601 UTC (a date for a walk-forward session)
    "end",
    "return_pct",  # the strategy's return of the block, net of every cost
    "buy_and_hold_return_pct",
    "fills",
    "commissions",  # $, costs.split_fill_costs
    "regulatory_fees",  # $
    "spread",  # $
    "costs",  # $, the three
    "turnover",  # traded notional / capital
)
# One row per traded bar; NaN where the source lacks it (p_stream outside an audit, ...).
BAR_COLUMNS = (
    "ts",  # int64 ns UTC, the bar's start
    "block",
    "probability",  # p(seq): what the strategy traded on
    "p_stream",  # p(stream): the live path (audited runs)
    "exposure",  # target exposure decided at the bar's close
    "close_QQQ",
    "equity",  # the strategy's equity at the close, $ (each block starts at the capital)
    "equity_buy_and_hold",  # buy-and-hold QQQ's, $
    *(f"value_{s}" for s in SYMBOLS),  # $ held in each instrument at the close
    "label",  # 1 / 0: QQQ's forward return at the model's horizon up / down; NaN: no label
)


class ReportError(SentioError):
    """A report that cannot be made as asked (no Bokeh, an input that is not a run)."""


@dataclass
class ReportData:
    """Everything one report shows (module doc). Runs are named as strattest names them:
    ``strategy``, ``buy_and_hold_qqq``, ``flat`` (a walk-forward run: ``walk_forward``,
    ``single_model``, ``buy_and_hold_qqq``, ``flat``)."""

    title: str  # one line: which run this is
    source: str  # what was read
    unit: str  # what one return is of: "block" or "session"
    capital: float  # $ at the start of every block
    blocks: pd.DataFrame  # BLOCK_COLUMNS (+ ``single_return_pct`` in a walk-forward run)
    summary: dict[str, dict]  # run -> its figures (metrics.Summary fields, + days)
    costs: dict[str, dict]  # run -> metrics.CostFigures fields
    verdict: dict | None  # metrics.Verdict.to_dict()
    config: dict  # the run's config as recorded
    hashes: dict[str, str]  # what identifies the inputs: manifest, data, chain head
    bars: pd.DataFrame | None = None  # BAR_COLUMNS; None: the source has no bars
    thresholds: dict[str, float] = field(default_factory=dict)  # drawn under the probability
    parity: dict | None = None  # infer.parity.ParityReport.to_dict() of an audited run
    folds: list[dict] | None = None  # a walk-forward run's per-fold table
    out_of_sample: dict | None = None  # a walk-forward run's AUC of both models
    regimes: dict | None = None  # ``strattest --by-regime``'s report
    notes: list[str] = field(default_factory=list)  # what the report lacks, and why
    banners: list[str] = field(default_factory=list)  # IN-SAMPLE, OPTIMISTIC fills
    inputs: list[Path] = field(default_factory=list)  # every file read: never the output

    def stitched_equity(self) -> np.ndarray:
        """The strategy's equity per traded bar with the blocks chained (:func:`stitched`)."""
        bars = self.bars
        return stitched(bars["equity"].to_numpy(), bars["block"].to_numpy(), self.capital)

    def final_equity(self) -> float:
        """The stitched equity at the run's end: the capital grown by every block in turn."""
        if self.bars is not None:
            return float(self.stitched_equity()[-1])
        return float(self.capital * np.prod(1 + self.blocks["return_pct"].to_numpy(float) / 100))


def stitched(equity: np.ndarray, block: np.ndarray, capital: float) -> np.ndarray:
    """Equity with the blocks chained: every block starts with the same ``capital``, so each
    is scaled by the growth of the blocks before it (as the walk-forward sessions' stitched
    equity, docs/walkforward.md). ``block`` labels each row; a block's rows are contiguous.

    >>> stitched(np.array([100.0, 125.0, 100.0, 50.0]), np.array([0, 0, 1, 1]), 100.0).tolist()
    [100.0, 125.0, 125.0, 62.5]
    """
    equity = np.asarray(equity, np.float64)
    block = np.asarray(block)
    if not len(equity):
        return equity
    first = np.flatnonzero(np.r_[True, block[1:] != block[:-1]])
    last = np.r_[first[1:] - 1, len(block) - 1]
    before = np.r_[1.0, np.cumprod(equity[last] / capital)[:-1]]  # growth of earlier blocks
    return equity * np.repeat(before, np.diff(np.r_[first, len(block)]))


def drawdown_pct(equity: np.ndarray, start: float) -> np.ndarray:
    """Each point's fall from the running peak, % (<= 0), the ``start`` capital counted as
    the first peak (``backtest.metrics.drawdown``): its minimum is the max drawdown.

    >>> drawdown_pct(np.array([110.0, 55.0, 120.0]), 100.0).tolist()
    [0.0, -50.0, 0.0]
    >>> drawdown_pct(np.array([50.0]), 100.0).tolist()
    [-50.0]
    """
    return 100 * drawdown(np.r_[start, np.asarray(equity, np.float64)])[1:]


def entries_exits(exposure: np.ndarray, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows where a position is taken (flat before, not after) and where it is left (the
    reverse); every block starts flat. A long <-> short flip goes through flat first
    (docs/strategy.md), so it is an exit and then an entry.

    >>> entries_exits(np.array([0, 1, 1, 0, -1, 1]), np.array([0, 0, 0, 0, 0, 1]))
    (array([1, 4, 5]), array([3]))
    """
    exposure = np.asarray(exposure, np.float64)
    block = np.asarray(block)
    new = np.r_[True, block[1:] != block[:-1]]
    before = np.where(new, 0.0, np.r_[0.0, exposure[:-1]])
    entries = np.flatnonzero((before == 0) & (exposure != 0))
    exits = np.flatnonzero((before != 0) & (exposure == 0))
    return entries, exits


def labels(market: pd.DataFrame, ts: np.ndarray, label: dict) -> np.ndarray:
    """The label of each bar at ``ts``: 1.0 when QQQ's log return over the next
    ``horizon_bars`` bars lies above the dead zone, 0.0 below it, NaN when there is none
    (inside the dead zone, across a session end or a gap, past the data's end). ``market``:
    QQQ's rows (ts, close, segment) around the bars; ``label``: the artifact's label record
    (``model.meta.json``), applied by training's own rule (``train.samples.label_bars``)."""
    spec = LabelSpec(horizon=int(label["horizon_bars"]), deadzone_bp=float(label["deadzone_bp"]))
    market_ts = market["ts"].to_numpy(np.int64)
    session = clock_columns(market_ts)[1]
    ret, ok = label_bars(
        market["close"].to_numpy(np.float64), market["segment"].to_numpy(np.int64), session, spec
    )
    y = np.where(ok & outside_deadzone(ret, spec), (ret > 0).astype(np.float64), np.nan)
    row = pd.Index(market_ts).get_indexer(np.asarray(ts, np.int64))
    return np.where(row >= 0, y[row], np.nan)


def number(value) -> float:
    """A recorded figure as a float (None and anything not a number: NaN).

    >>> number(None), number("x"), number(2)
    (nan, nan, 2.0)
    """
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


__all__ = [
    "BAR_COLUMNS",
    "BLOCK_COLUMNS",
    "SYMBOLS",
    "ReportData",
    "ReportError",
    "drawdown_pct",
    "entries_exits",
    "labels",
    "number",
    "stitched",
]
