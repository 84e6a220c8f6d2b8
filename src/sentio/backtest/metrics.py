"""Every backtest figure, defined once (docs/metrics.md gives the formulas in words).

The strattest report, its JSON and the audit's replay all call these functions; nothing else
computes a metric. Inputs are plain arrays so that the accounting loop, vectorbt cross-checks
and tests can all feed them.

>>> round(arb(np.array([0.01, 0.01]), blocks_per_year=10.0), 6)
0.104622
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from sentio.core.seeding import rng_for

TRADING_DAYS = 252  # per year
MONTH_DAYS = 21  # trading days per month
BOOTSTRAP_SAMPLES = 10_000


def blocks_per_year(bars_per_session: float, block_size: int) -> float:
    """252 x bars per session / block size (docs/architecture.md section 8)."""
    return TRADING_DAYS * bars_per_session / block_size


def geometric_mean_return(returns: np.ndarray) -> float:
    """(prod(1 + r))^(1/n) - 1: the per-block return that compounds to the same total."""
    returns = np.asarray(returns, dtype=np.float64)
    if len(returns) == 0:
        return float("nan")
    return float(np.exp(np.mean(np.log1p(returns))) - 1.0)


def arb(block_returns: np.ndarray, blocks_per_year: float) -> float:
    """Annualised return from blocks: (1 + geometric mean RPB)^(blocks per year) - 1."""
    return (1.0 + geometric_mean_return(block_returns)) ** blocks_per_year - 1.0


def mpr(block_returns: np.ndarray, bars_per_session: float, block_size: int) -> float:
    """Monthly projected return: the geometric mean RPB compounded over 21 trading days."""
    per_month = MONTH_DAYS * bars_per_session / block_size
    return (1.0 + geometric_mean_return(block_returns)) ** per_month - 1.0


def daily_returns(bar_returns: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Compound per-bar returns into one return per trading day (``day`` labels each bar;
    consecutive equal labels form a day)."""
    bar_returns = np.asarray(bar_returns, dtype=np.float64)
    if len(bar_returns) == 0:
        return np.zeros(0)
    starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
    growth = np.multiply.reduceat(1.0 + bar_returns, starts)
    return growth - 1.0


def sharpe(daily: np.ndarray) -> float:
    """mean / std (ddof 1) of daily returns x sqrt(252); risk-free rate 0."""
    if len(daily) < 2 or np.std(daily, ddof=1) == 0:
        return float("nan")
    return float(np.mean(daily) / np.std(daily, ddof=1) * math.sqrt(TRADING_DAYS))


def sortino(daily: np.ndarray) -> float:
    """mean / downside deviation of daily returns x sqrt(252); downside deviation =
    sqrt(mean(min(r, 0)^2)) over all days."""
    downside = math.sqrt(float(np.mean(np.minimum(daily, 0.0) ** 2))) if len(daily) else 0.0
    if downside == 0:
        return float("nan")
    return float(np.mean(daily) / downside * math.sqrt(TRADING_DAYS))


def max_drawdown(bar_returns: np.ndarray) -> float:
    """Largest fall of the compounded equity from its running peak, as a negative fraction.

    >>> max_drawdown(np.array([0.1, -0.5, 0.2]))
    -0.5
    """
    equity = np.cumprod(1.0 + np.r_[0.0, np.asarray(bar_returns, dtype=np.float64)])
    return float(np.min(equity / np.maximum.accumulate(equity) - 1.0))


def bootstrap_mean_interval(
    values: np.ndarray, seed: int, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (10,000 resamples from the named stream)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return float("nan"), float("nan")
    rng = rng_for(seed, "backtest.metrics.bootstrap")
    means = values[rng.integers(0, len(values), (BOOTSTRAP_SAMPLES, len(values)))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


@dataclass(frozen=True)
class Summary:
    """The figures over all blocks (units in the names: *_pct are fractions x 100)."""

    blocks: int
    mean_rpb_pct: float
    rpb_ci95_pct: tuple[float, float]
    arb_pct: float
    mpr_pct: float
    sharpe: float
    sortino: float
    max_drawdown_pct: float
    calmar: float
    trades: int
    win_rate_pct: float
    profit_factor: float
    avg_holding_bars: float
    exposure_pct: float
    turnover: float  # traded notional / starting capital, per block
    fees: float  # currency

    def to_dict(self) -> dict:
        return asdict(self)


def summarize(
    block_returns: np.ndarray,
    bar_returns: np.ndarray,
    day: np.ndarray,
    trade_pnl: np.ndarray,
    trade_bars: np.ndarray,
    in_market: np.ndarray,
    traded_notional: float,
    fees: float,
    capital: float,
    bars_per_session: float,
    block_size: int,
    seed: int,
) -> Summary:
    """All figures from one run's per-block returns, per-bar returns (blocks chained),
    round-trip trades and the bars in the market."""
    per_year = blocks_per_year(bars_per_session, block_size)
    daily = daily_returns(bar_returns, day)
    annual = arb(block_returns, per_year)
    drawdown = max_drawdown(bar_returns)
    gains, losses = trade_pnl[trade_pnl > 0].sum(), -trade_pnl[trade_pnl < 0].sum()
    low, high = bootstrap_mean_interval(block_returns, seed)
    n_blocks = len(block_returns)
    return Summary(
        blocks=n_blocks,
        mean_rpb_pct=100 * float(np.mean(block_returns)) if n_blocks else float("nan"),
        rpb_ci95_pct=(100 * low, 100 * high),
        arb_pct=100 * annual,
        mpr_pct=100 * mpr(block_returns, bars_per_session, block_size),
        sharpe=sharpe(daily),
        sortino=sortino(daily),
        max_drawdown_pct=100 * drawdown,
        calmar=annual / abs(drawdown) if drawdown < 0 else float("nan"),
        trades=len(trade_pnl),
        win_rate_pct=100 * float(np.mean(trade_pnl > 0)) if len(trade_pnl) else float("nan"),
        profit_factor=float(gains / losses) if losses > 0 else float("nan"),
        avg_holding_bars=float(np.mean(trade_bars)) if len(trade_bars) else float("nan"),
        exposure_pct=100 * float(np.mean(in_market)) if len(in_market) else float("nan"),
        turnover=traded_notional / (capital * n_blocks) if n_blocks else float("nan"),
        fees=float(fees),
    )


__all__ = [
    "Summary",
    "arb",
    "blocks_per_year",
    "bootstrap_mean_interval",
    "daily_returns",
    "geometric_mean_return",
    "max_drawdown",
    "mpr",
    "sharpe",
    "sortino",
    "summarize",
]
