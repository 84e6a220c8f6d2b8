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
# Sharpe, Sortino and Calmar annualised from fewer trading days than this carry a mark (issue 16:
# a Calmar of 139.8 from about 6 days): sqrt(252) or 252 / n magnifies a few days' noise.
MIN_DAYS = 20
# A verdict needs at least this many blocks: a percentile bootstrap of fewer values gives an
# interval too narrow to trust (two blocks "exclude zero" whenever both have the same sign).
MIN_VERDICT_BLOCKS = 10


def blocks_per_year(bars_per_session: float, block_size: int) -> float:
    """252 x bars per session / block size (docs/architecture.md section 8)."""
    return TRADING_DAYS * bars_per_session / block_size


def geometric_mean_return(returns: np.ndarray) -> float:
    """(prod(1 + r))^(1/n) - 1: the per-block return that compounds to the same total."""
    returns = np.asarray(returns, dtype=np.float64)
    if len(returns) == 0:
        return float("nan")
    return float(np.exp(np.mean(np.log1p(returns))) - 1.0)


def compounded(rate: float, periods: float) -> float:
    """(1 + rate)^periods - 1; inf where it overflows (short blocks compound tens of thousands
    of times a year: Python's ``**`` raised OverflowError there).

    >>> compounded(0.05, 32760.0), compounded(0.01, 2.0)
    (inf, 0.0201...)
    """
    with np.errstate(over="ignore"):
        return float(np.power(1.0 + rate, periods)) - 1.0


def arb(block_returns: np.ndarray, blocks_per_year: float) -> float:
    """Annualised return from blocks: (1 + geometric mean RPB)^(blocks per year) - 1."""
    return compounded(geometric_mean_return(block_returns), blocks_per_year)


def mpr(block_returns: np.ndarray, bars_per_session: float, block_size: int) -> float:
    """Monthly projected return: the geometric mean RPB compounded over 21 trading days."""
    per_month = MONTH_DAYS * bars_per_session / block_size
    return compounded(geometric_mean_return(block_returns), per_month)


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
    return float(np.min(drawdown(equity)))


def drawdown(equity: np.ndarray) -> np.ndarray:
    """Each point's fall from the running peak of ``equity`` (the first point is its own
    peak), as a negative fraction or 0: the series whose minimum ``max_drawdown`` is.

    >>> drawdown(np.array([100.0, 110.0, 55.0, 120.0])).tolist()
    [0.0, 0.0, -0.5, 0.0]
    """
    equity = np.asarray(equity, dtype=np.float64)
    return equity / np.maximum.accumulate(equity) - 1.0


def block_turnover(
    qty: np.ndarray, price: np.ndarray, fill_block: np.ndarray, blocks: np.ndarray, capital: float
) -> np.ndarray:
    """Each block's turnover: the traded notional of its fills (shares x fill price, buys
    and sells alike) over the capital, in the order of ``blocks`` (0 for a block without a
    fill; a fill of a block not listed is left out).

    >>> block_turnover(np.array([10, -10, 4]), np.array([100.0, 110.0, 50.0]),
    ...                np.array([0, 0, 2]), np.array([0, 1, 2]), 1000.0).tolist()
    [2.1, 0.0, 0.2]
    """
    notional = np.abs(np.asarray(qty, dtype=np.float64)) * np.asarray(price, dtype=np.float64)
    row = {b: i for i, b in enumerate(np.asarray(blocks).tolist())}
    at = np.array([row.get(b, -1) for b in np.asarray(fill_block).tolist()], dtype=np.int64)
    kept = at >= 0
    return np.bincount(at[kept], weights=notional[kept], minlength=len(blocks)) / capital


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
    fees: float  # commissions + regulatory fees, currency (the spread is in the fill prices)

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


@dataclass(frozen=True)
class SampleSize:
    """The trading days the annualised figures (Sharpe, Sortino, Calmar) rest on. Kept beside
    :class:`Summary`, not in it: audit runs record a Summary, and its fields stay the ones
    every recorded run has."""

    days: int
    small_sample: bool  # days < MIN_DAYS: Sharpe, Sortino and Calmar carry a mark

    def to_dict(self) -> dict:
        return asdict(self)


def sample_size(day: np.ndarray) -> SampleSize:
    """The trading days of a run's bars (``day`` labels each bar, as :func:`daily_returns`).

    >>> sample_size(np.array([3, 3, 4, 7]))
    SampleSize(days=3, small_sample=True)
    """
    days = len(daily_returns(np.zeros(len(day)), np.asarray(day)))
    return SampleSize(days, days < MIN_DAYS)


# The rows of every figures table, (label, key): one list for the CLI's tables, saudit's and
# the HTML report's. SUMMARY_FIGURES: Summary's figures as every audit run records them;
# COST_FIGURES: CostFigures; STRATTEST_FIGURES: strattest's table (the trading days before the
# annualised figures, the costs whole in place of fees, which left the spread out).
SUMMARY_FIGURES = [
    ("mean RPB %", "mean_rpb_pct"),
    ("RPB 95% CI %", "rpb_ci95_pct"),
    ("ARB %", "arb_pct"),
    ("MPR %", "mpr_pct"),
    ("Sharpe (daily)", "sharpe"),
    ("Sortino", "sortino"),
    ("max drawdown %", "max_drawdown_pct"),
    ("Calmar", "calmar"),
    ("trades", "trades"),
    ("win rate %", "win_rate_pct"),
    ("profit factor", "profit_factor"),
    ("avg holding (bars)", "avg_holding_bars"),
    ("exposure %", "exposure_pct"),
    ("turnover / block", "turnover"),
    ("fees $", "fees"),
]
COST_FIGURES = [
    ("fills", "fills"),
    ("commissions $", "commissions"),
    ("regulatory fees $", "regulatory_fees"),
    ("spread $", "spread"),
    ("costs $ (the three)", "costs"),
    ("costs / block % of capital", "costs_per_block_pct"),
]
STRATTEST_FIGURES = [
    *SUMMARY_FIGURES[:4],
    ("trading days", "days"),
    *(f for f in SUMMARY_FIGURES[4:] if f[1] != "fees"),
    *COST_FIGURES,
]
ANNUALISED = ("sharpe", "sortino", "calmar")  # from daily returns: marked when days are few


@dataclass(frozen=True)
class CostFigures:
    """What trading cost a run, whole (currency; ``costs_per_block_pct``: of the capital)."""

    fills: int
    commissions: float
    regulatory_fees: float  # SEC Section 31 + FINRA TAF, on sales
    spread: float  # the half-spread paid: shares x reference price x h
    costs: float  # the three summed
    costs_per_block_pct: float  # costs / (capital x blocks) x 100

    def to_dict(self) -> dict:
        return asdict(self)


def cost_figures(parts: dict[str, np.ndarray], capital: float, blocks: int) -> CostFigures:
    """Sum each fill's costs (``costs.split_fill_costs``: commissions, regulatory_fees, spread).

    >>> f = cost_figures({"commissions": np.array([1.0, 1.0]), "regulatory_fees": np.array(
    ...     [0.0, 0.5]), "spread": np.array([2.0, 2.0])}, capital=1000.0, blocks=2)
    >>> f.costs, f.costs_per_block_pct
    (6.5, 0.325)
    """
    total = {name: float(np.sum(parts[name])) for name in ("commissions", "regulatory_fees")}
    total["spread"] = float(np.sum(parts["spread"]))
    costs = sum(total.values())
    per_block = 100 * costs / (capital * blocks) if blocks else float("nan")
    fills = len(parts["spread"])
    return CostFigures(fills=fills, **total, costs=costs, costs_per_block_pct=per_block)


@dataclass(frozen=True)
class Verdict:
    """Whether a run shows an edge: its net mean return per block (or session) with the 95 %
    bootstrap interval, beside a baseline's (buy-and-hold), in one line of words (``text``).

    ``kind``: "edge" (the interval lies above zero and, when ``over`` is given, so does the
    interval of the paired per-block difference from the baseline: an always-long copy of
    buy-and-hold in a rising market is no edge), "loss" (below zero) or "no edge" (it includes
    zero, is undefined, or rests on fewer than ``MIN_VERDICT_BLOCKS`` blocks). ``corrected``:
    an interval corrected for choosing the best of ``tried`` variants (a sweep's Bonferroni
    interval), which then decides instead of ``ci95_pct``. ``tried`` > 1 without it: the line
    says the intervals are not corrected for the choice.
    """

    kind: str
    unit: str  # what one return is of: "block" or "session"
    count: int  # blocks (sessions) the mean is over
    mean_pct: float
    ci95_pct: tuple[float, float]
    baseline: str  # its name in words
    baseline_mean_pct: float
    baseline_ci95_pct: tuple[float, float]
    too_few: bool  # count < MIN_VERDICT_BLOCKS
    tried: int = 1
    # mean and 95 % interval of the paired difference (strategy - baseline) per block, or None
    over_pct: tuple[float, float, float] | None = None
    corrected_ci_pct: tuple[float, float] | None = None  # for the choice among ``tried``

    @property
    def text(self) -> str:
        unit = f"{self.unit}s" if self.count != 1 else self.unit
        mean = f"net mean per {self.unit} {_pct(self.mean_pct)} {_interval(self.ci95_pct)}"
        base = f"({self.baseline} {_pct(self.baseline_mean_pct)} "
        base += f"{_interval(self.baseline_ci95_pct)})"
        over = ""
        if self.over_pct is not None:
            over = (
                f"; over {self.baseline} {_pct(self.over_pct[0])} "
                f"{_interval(self.over_pct[1:])} per {self.unit}"
            )
        if self.too_few:
            head = (
                f"no edge shown — {self.count} {unit} {'is' if self.count == 1 else 'are'} too "
                f"few to judge (at least "
                f"{MIN_VERDICT_BLOCKS}); {mean} {base}"
            )
        elif self.kind == "edge":
            head = f"edge — {mean} excludes zero {base}{over}; {self.count} {unit}"
        elif self.kind == "loss":
            head = f"loss — {mean} lies below zero {base}; {self.count} {unit}"
        elif self.corrected_ci_pct is not None and self.ci95_pct[0] > 0:
            head = (
                f"no edge — {mean} excludes zero only before the correction for the "
                f"{self.tried} variants tried ({_interval(self.corrected_ci_pct)} includes "
                f"zero) {base}; {self.count} {unit}"
            )
        elif self.over_pct is not None and self.ci95_pct[0] > 0:
            head = (
                f"no edge over {self.baseline} — {mean} excludes zero {base}, but the paired "
                f"difference{over.removeprefix(f'; over {self.baseline}')} includes zero; "
                f"{self.count} {unit}"
            )
        else:
            head = f"no edge — {mean} includes zero {base}; {self.count} {unit}"
        if self.tried > 1 and self.corrected_ci_pct is None:
            head += (
                f"; best of {self.tried} variants tried; intervals are not corrected for the choice"
            )
        elif self.tried > 1:
            head += f"; best of {self.tried} variants tried (interval corrected for the choice)"
        return "verdict: " + head

    def to_dict(self) -> dict:
        return asdict(self) | {"text": self.text, "min_blocks": MIN_VERDICT_BLOCKS}


def _pct(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:+.3f}%"


def _interval(ci: tuple[float, float]) -> str:
    return f"[{_pct(ci[0])}, {_pct(ci[1])}]"


def verdict(
    strategy: dict | Summary,
    baseline: dict | Summary,
    unit: str = "block",
    tried: int = 1,
    baseline_name: str = "buy-and-hold",
    over: tuple[float, float, float] | None = None,
    corrected: tuple[float, float] | None = None,
) -> Verdict:
    """The verdict of a run from its summary and a baseline's (:class:`Summary` fields or
    their ``to_dict()``: ``blocks``, ``mean_rpb_pct``, ``rpb_ci95_pct``); ``over``: the paired
    difference from the baseline (:func:`paired_difference`); ``corrected``: the interval
    corrected for the choice among ``tried`` variants. A return per block is net of every
    cost, so the verdict is too.

    >>> print(verdict({"blocks": 22, "mean_rpb_pct": -0.12, "rpb_ci95_pct": (-0.31, 0.05)},
    ...     {"mean_rpb_pct": 0.08, "rpb_ci95_pct": (-0.4, 0.55)}).text)
    verdict: no edge — net mean per block -0.120% [-0.310%, +0.050%] includes zero (buy-and-hold +0.080% [-0.400%, +0.550%]); 22 blocks
    >>> verdict({"blocks": 30, "mean_rpb_pct": 0.2, "rpb_ci95_pct": (0.05, 0.35)},
    ...     {"mean_rpb_pct": 0.0, "rpb_ci95_pct": (0.0, 0.0)}).kind
    'edge'
    >>> verdict({"blocks": 30, "mean_rpb_pct": 0.2, "rpb_ci95_pct": (0.05, 0.35)},
    ...     {"mean_rpb_pct": 0.2, "rpb_ci95_pct": (0.05, 0.35)}, over=(0.0, -0.01, 0.01)).kind
    'no edge'
    >>> verdict({"blocks": 3, "mean_rpb_pct": 0.2, "rpb_ci95_pct": (0.1, 0.3)},
    ...     {"mean_rpb_pct": 0.0, "rpb_ci95_pct": (0.0, 0.0)}).kind
    'no edge'
    """  # noqa: E501
    strategy, baseline = (x if isinstance(x, dict) else x.to_dict() for x in (strategy, baseline))
    count = int(strategy.get("blocks") or 0)
    mean = _number(strategy.get("mean_rpb_pct"))
    low, high = (_number(x) for x in (strategy.get("rpb_ci95_pct") or (None, None)))
    judged_low, judged_high = (low, high) if corrected is None else map(_number, corrected)
    too_few = count < MIN_VERDICT_BLOCKS
    defined = all(math.isfinite(x) for x in (mean, judged_low, judged_high))
    beats = over is None or _number(over[1]) > 0
    if too_few or not defined or judged_low <= 0 <= judged_high:
        kind = "no edge"
    elif judged_low > 0:
        kind = "edge" if beats else "no edge"
    else:
        kind = "loss"
    return Verdict(
        kind=kind,
        unit=unit,
        count=count,
        mean_pct=mean,
        ci95_pct=(low, high),
        baseline=baseline_name,
        baseline_mean_pct=_number(baseline.get("mean_rpb_pct")),
        baseline_ci95_pct=tuple(_number(x) for x in (baseline.get("rpb_ci95_pct") or (None, None))),
        too_few=too_few,
        tried=tried,
        over_pct=None if over is None else tuple(map(_number, over)),
        corrected_ci_pct=None if corrected is None else tuple(map(_number, corrected)),
    )


def paired_difference(
    returns: np.ndarray, baseline: np.ndarray, seed: int
) -> tuple[float, float, float]:
    """Mean and 95 % bootstrap interval (:func:`bootstrap_mean_interval`) of the per-block
    (per-session) difference ``returns - baseline``, both as fractions; in percent.

    >>> paired_difference(np.full(12, 0.01), np.full(12, 0.01), 0)
    (0.0, 0.0, 0.0)
    """
    diff = np.asarray(returns, np.float64) - np.asarray(baseline, np.float64)
    if not len(diff):
        return float("nan"), float("nan"), float("nan")
    low, high = bootstrap_mean_interval(diff, seed)
    return 100 * float(diff.mean()), 100 * low, 100 * high


def _number(value) -> float:
    """A figure read from a summary or its JSON (None there stands for NaN)."""
    return float("nan") if value is None else float(value)


__all__ = [
    "ANNUALISED",
    "COST_FIGURES",
    "CostFigures",
    "MIN_DAYS",
    "MIN_VERDICT_BLOCKS",
    "STRATTEST_FIGURES",
    "SUMMARY_FIGURES",
    "SampleSize",
    "Summary",
    "Verdict",
    "arb",
    "blocks_per_year",
    "block_turnover",
    "bootstrap_mean_interval",
    "compounded",
    "cost_figures",
    "daily_returns",
    "drawdown",
    "geometric_mean_return",
    "max_drawdown",
    "mpr",
    "paired_difference",
    "sample_size",
    "sharpe",
    "sortino",
    "summarize",
    "verdict",
]
