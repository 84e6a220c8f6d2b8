"""``strattest --by-regime``: the strategy's and buy-and-hold QQQ's returns split by regime.

A traded bar belongs to the regime of its decision bar (the bar at whose close the decision is
made: the bar itself, docs/architecture.md section 2), and its P&L is the equity change from
that close to the next bar's close inside the block. So a block's first bar also carries what
happened between the block's start and its close (fees of a fill at the close), and a block's
last bar carries nothing (the block ends flat there); the attributed returns of a block
compound to its return. Buy-and-hold QQQ gets the same treatment on the same bars: the
close-to-next-close return of QQQ, 0 at a block's last bar.

Per regime (``NAMES``), for each of the two: the bars and sessions, the total return of those
bars compounded, the mean per-session return (a session's bars of that regime compounded)
with its session-bootstrap 95 % interval (``train.evaluate.session_interval``; the strategy
and buy-and-hold draw the same sessions), the Sharpe of the per-session returns
(``metrics.sharpe``: x sqrt(252)) and the max drawdown of the regime's bar returns chained in
time order (``metrics.max_drawdown``). A regime without bars has zeros for its counts, total
and drawdown, and no mean, interval or Sharpe (NaN: undefined, printed n/a, JSON null).

The labels: a multi-regime model's own labeller (its feature spec's ``regimes`` block); for a
plain model a labeller fitted (``train.regimes.fit_block``) on the QQQ bars before the first
traded bar, never on a traded bar.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from sentio.backtest.metrics import daily_returns, max_drawdown, sharpe
from sentio.core.errors import OptionError, SentioError
from sentio.features import parse_spec
from sentio.features.inputs import clock_columns
from sentio.features.regimes import LABELLERS, NAMES, RegimeBlock, RegimeError
from sentio.model.artifact import read_json
from sentio.train.evaluate import session_interval
from sentio.train.regimes import fit_block, regime_frame

WHO = ("strategy", "buy_and_hold_qqq")


@dataclass(frozen=True)
class RegimeFigures:
    """One regime's figures for one run (``*_pct``: fractions x 100)."""

    bars: int  # traded bars whose decision bar has this regime
    sessions: int  # sessions with at least one such bar
    total_return_pct: float  # those bars' returns compounded
    mean_session_return_pct: float  # mean over sessions of the session's bars compounded
    session_return_ci95_pct: tuple[float, float]  # session-bootstrap 95 % interval of the mean
    sharpe: float  # of the per-session returns, x sqrt(252)
    max_drawdown_pct: float  # of the bar returns chained in time order (<= 0)

    def to_dict(self) -> dict:
        return asdict(self)


def attributed_returns(
    equity: np.ndarray, close: np.ndarray, block: np.ndarray, capital: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per traded bar: the strategy's return from its decision to the next bar's close, and
    QQQ's close-to-next-close return; both 0 at a block's last bar. ``equity``, ``close`` and
    ``block`` are the traded bars in time order (``StrattestResult.per_bar``), every block
    starting from ``capital``.

    >>> s, q = attributed_returns(np.array([100.0, 110.0, 99.0, 100.0, 120.0]),
    ...     np.array([10.0, 11.0, 12.1, 20.0, 15.0]), np.array([0, 0, 0, 1, 1]), 100.0)
    >>> s.round(3).tolist(), q.round(3).tolist()
    ([0.1, -0.1, 0.0, 0.2, 0.0], [0.1, 0.1, 0.0, -0.25, 0.0])
    """
    equity = np.asarray(equity, dtype=np.float64)
    close = np.asarray(close, dtype=np.float64)
    block = np.asarray(block)
    n = len(equity)
    strategy, qqq = np.zeros(n), np.zeros(n)
    if n == 0:
        return strategy, qqq
    first = np.r_[True, block[1:] != block[:-1]]
    last = np.r_[block[1:] != block[:-1], True]
    base = np.where(first, capital, equity)  # a block's first bar: from its fresh capital
    inner = ~last
    nxt = np.flatnonzero(inner) + 1
    strategy[inner] = equity[nxt] / base[inner] - 1.0
    qqq[inner] = close[nxt] / close[inner] - 1.0
    return strategy, qqq


def figures(returns: np.ndarray, session: np.ndarray, seed: int, stream: str) -> RegimeFigures:
    """The figures of one run's bar ``returns`` (time order) with their ``session`` labels.

    >>> f = figures(np.array([0.01, 0.01, -0.02]), np.array([5, 5, 6]), 0, "x")
    >>> f.bars, f.sessions, round(f.total_return_pct, 4), round(f.mean_session_return_pct, 4)
    (3, 2, -0.0302, 0.005)
    >>> figures(np.zeros(0), np.zeros(0, int), 0, "x").sharpe
    nan
    """
    returns = np.asarray(returns, dtype=np.float64)
    if len(returns) == 0:
        nan = float("nan")
        return RegimeFigures(0, 0, 0.0, nan, (nan, nan), nan, 0.0)
    # a session's bars of this regime compounded (they are consecutive: bars in time order)
    per_session = daily_returns(returns, np.asarray(session))
    ones = np.arange(len(per_session))  # one row per session: resampling rows resamples them
    low, high = session_interval(lambda r: float(per_session[r].mean()), ones, seed, stream)
    return RegimeFigures(
        bars=len(returns),
        sessions=len(per_session),
        total_return_pct=100 * float(np.prod(1.0 + returns) - 1.0),
        mean_session_return_pct=100 * float(per_session.mean()),
        session_return_ci95_pct=(100 * low, 100 * high),
        sharpe=sharpe(per_session),
        max_drawdown_pct=100 * max_drawdown(returns),
    )


def returns_by_regime(
    strategy: np.ndarray, qqq: np.ndarray, regime: np.ndarray, session: np.ndarray, seed: int
) -> dict[str, dict[str, RegimeFigures]]:
    """Per regime name (``NAMES``; ``regime`` holds its index, -1 for an unlabelled bar, which
    no regime counts), the figures of the strategy's and buy-and-hold QQQ's bar returns.

    >>> out = returns_by_regime(np.array([0.01, 0.02, 0.0]), np.array([0.0, 0.01, 0.03]),
    ...     np.array([0, 1, 0]), np.array([1, 1, 2]), seed=7)
    >>> [out[n]["strategy"].bars for n in NAMES]
    [2, 1, 0, 0]
    >>> round(out["bull"]["buy_and_hold_qqq"].total_return_pct, 6)
    3.0
    """
    out = {}
    for index, name in enumerate(NAMES):
        rows = np.flatnonzero(np.asarray(regime) == index)
        stream = f"backtest.regimes.{name}"  # the same draws for both: paired sessions
        out[name] = {
            who: figures(np.asarray(r)[rows], np.asarray(session)[rows], seed, stream)
            for who, r in zip(WHO, (strategy, qqq), strict=True)
        }
    return out


def model_regimes(model) -> RegimeBlock | None:
    """The regimes block of the artifact's feature spec (None: a plain model)."""
    spec = read_json(model, "feature_spec.json")
    return parse_spec(spec, origin=f"{model}/feature_spec.json").regimes


def check_labeller(model, labeller: str | None) -> None:
    """Refuse ``--regime-labeller`` for a multi-regime model (its own labeller is used) and a
    name that is not a labeller. An unreadable artifact is left to the run to refuse, which
    names the model and the data."""
    if labeller is None:
        return
    if labeller not in LABELLERS:
        raise OptionError(
            f"must be one of {', '.join(LABELLERS)}; got {labeller!r}", flag="--regime-labeller"
        )
    try:
        own = model_regimes(model)
    except SentioError:
        return
    if own is not None:
        raise OptionError(
            f"{model} is a multi-regime model: its own {own.labeller} labeller labels the "
            "bars; drop --regime-labeller",
            flag="--regime-labeller",
        )


@dataclass(frozen=True)
class RegimeReport:
    """``strattest --by-regime``: which labeller, the traded bars and the figures."""

    labeller: dict  # which labeller and what it was fitted on
    traded_bars: int
    unlabelled_bars: int  # traded bars before the labeller's warm-up (in no regime)
    regimes: dict[str, dict[str, RegimeFigures]]

    def to_dict(self) -> dict:
        return {
            "labeller": self.labeller,
            "traded_bars": self.traded_bars,
            "unlabelled_bars": self.unlabelled_bars,
            "regimes": {
                name: {who: f.to_dict() for who, f in runs.items()}
                for name, runs in self.regimes.items()
            },
        }


def _iso(ts: int) -> str:
    return pd.Timestamp(int(ts), tz="UTC").isoformat()


def label_market(result, labeller: str | None) -> tuple[np.ndarray, dict]:
    """The regime index of every bar of ``result.market`` and the labeller's record."""
    market = result.market
    own = model_regimes(result.model)
    if own is not None:
        record = {
            "labeller": own.labeller,
            "source": "the model's own (its feature spec's regimes block)",
            "fitted_on": own.fitted_on,
        }
        return regime_frame(own, market)["regime_id"].to_numpy(np.int64), record
    ts = market["ts"].to_numpy(np.int64)
    first = int(result.per_bar["ts"].iloc[0])
    before = ts < first
    name = labeller or "rules"
    span = {"first_ts": int(ts[0]), "last_ts": int(ts[before][-1])} if before.any() else {}
    span |= {k.replace("ts", "time"): _iso(v) for k, v in span.items()}
    try:
        block = fit_block(name, market, before, result.config.seed, {"bars_before": span})
    except RegimeError as exc:
        raise OptionError(
            f"the {name} labeller is fitted on the QQQ bars before the first traded bar "
            f"({_iso(first)}): {exc}; give --data with more bars before the traded ones",
            flag="--by-regime",
        ) from None
    record = {
        "labeller": name,
        "source": "fitted by strattest on the QQQ bars before the first traded bar",
        "first_traded_ts": first,
        "first_traded_time": _iso(first),
        "fitted_on": block.fitted_on,
    }
    return regime_frame(block, market)["regime_id"].to_numpy(np.int64), record


def strattest_by_regime(result, labeller: str | None = None) -> RegimeReport:
    """Split a historical strattest ``result`` by regime (module doc)."""
    regime_all, record = label_market(result, labeller)
    bars = result.per_bar
    ts = bars["ts"].to_numpy(np.int64)
    row = pd.Index(result.market["ts"].to_numpy(np.int64)).get_indexer(ts)
    regime = regime_all[row]
    strategy, qqq = attributed_returns(
        bars["equity"].to_numpy(),
        bars["close_QQQ"].to_numpy(),
        bars["block"].to_numpy(),
        result.config.capital,
    )
    session = clock_columns(ts)[1]
    figures_of = returns_by_regime(strategy, qqq, regime, session, result.config.seed)
    return RegimeReport(record, len(ts), int((regime < 0).sum()), figures_of)


__all__ = [
    "RegimeFigures",
    "RegimeReport",
    "WHO",
    "attributed_returns",
    "check_labeller",
    "figures",
    "label_market",
    "model_regimes",
    "returns_by_regime",
    "strattest_by_regime",
]
