"""The cost rule's fit (issue 16 section 3; docs/strategy.md): everything from the VALIDATION
split, nothing from the test part.

The rule itself is ``strategy.signal.cost_wanted``: enter when the expected gain over the label
horizon, ``exposure x m(p)``, exceeds ``enter_margin`` round trips of the instruments held; keep
while it covers ``stay_margin`` round trips. Here its numbers are fitted:

1. ``m(p)``, QQQ's expected h-bar log return given the probability: the validation bars cut by
   their p into :data:`BINS` equal-count bins, the mean forward return per bin, made
   non-decreasing by weighted isotonic regression (pool adjacent violators). Bins rather than a
   line because nothing says the relation is linear or symmetric (a model may be informative in
   one tail only) and a line fitted to noisy returns is led by the extremes; monotone because
   the rule's premise is that a higher P(up) never means a lower expected move, and a model that
   breaks it is pooled towards a flat ``m`` that pays for nothing.
2. Round trips in return units (:func:`round_trip_fraction`): commission twice, the SEC and
   FINRA fees of the sale and two half-spreads, over the position's value, for a position of
   the whole capital in each instrument at its median validation price, with the default rates
   of ``strategy.costs.CostModel`` (:data:`RATES`; a test checks the arithmetic against the
   backtest's execution). Prices the
   training data lack (the siblings of a QQQ-only file) are QQQ's times the built-in market's
   start-price ratio, and the record says which were assumed.
3. The margins, the minimum hold and the cooldown: every point of :data:`GRID` is run through
   the strategy itself (``strategy.run_strategy``: session end, hysteresis by the stay margin,
   hold, flip through flat and cooldown all count) over the validation bars and scored by its
   mean net return per session (:func:`net_per_session`: exposure times QQQ's next-bar return,
   less half a round trip per unit of weight traded; an approximation of the backtest's
   accounting that needs no fills). The scores are cross-fitted: alternate sessions are
   traded with the ``m(p)`` fitted on the others, since a table fitted on the very bars it
   trades finds edges in noise. The best point is kept with the ``m(p)`` of every validation
   bar. It trades only when the session bootstrap's 95 % interval of its mean net per session
   lies above zero, over at least :data:`MIN_SESSIONS` sessions; otherwise the rule is
   recorded with ``trade: false`` (and ``why``) and never enters.
"""

from __future__ import annotations

import itertools

import numpy as np

from sentio.data.synth.generate import SIBLINGS, SynthConfig
from sentio.features.inputs import clock_columns
from sentio.strategy import StrategyConfig, allocate, run_strategy
from sentio.strategy.allocation import LEVERAGE
from sentio.strategy.costs import TICK, CostModel
from sentio.strategy.signal import minutes_left
from sentio.train.evaluate import session_interval
from sentio.train.samples import LabelSpec, label_bars

SYMBOLS = tuple(LEVERAGE)  # the instruments, in the allocation's order
CAPITAL = 100_000.0  # $ per position: strattest's default capital
# the cost model's dated default rates (sentio.strategy.costs), the half-spread apart
RATES = CostModel().model_dump(exclude={"half_spread_bp"})
# a sibling's price when the data has none: QQQ's times the built-in market's start ratio
PRICE_RATIO = {s.symbol: s.start_price / SynthConfig().start_price for s in SIBLINGS}
BINS = 10
STREAM = "train.costrule.trade"  # random stream of the validation net's bootstrap
MIN_SESSIONS = 10  # validation sessions below which no interval is trusted (as strattest's verdict)
GRID = {
    "enter_margin": (0.25, 0.5, 1.0, 2.0),  # round trips the expected gain must exceed
    "stay_margin": (-1.0, -0.5, 0.0),  # round trips the gain must still cover to stay
    "min_hold_bars": (1, None),  # None: the label horizon
    "cooldown_bars": (0, None),
}


def isotonic(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least-squares non-decreasing fit of ``y`` (pool adjacent violators).

    >>> isotonic(np.array([1.0, 3.0, 2.0, 4.0]), np.ones(4)).tolist()
    [1.0, 2.5, 2.5, 4.0]
    """
    blocks: list[list[float]] = []  # [mean, weight, count]
    for value, weight in zip(y, w, strict=True):
        blocks.append([float(value), float(weight), 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    return np.repeat([b[0] for b in blocks], [int(b[2]) for b in blocks])


def fit_move(p: np.ndarray, forward: np.ndarray, bins: int = BINS) -> dict:
    """The table of ``m(p)`` (module doc, step 1) from bars with both a probability and a
    forward return: bin centres (mean p), monotone mean forward log returns, bar counts.

    >>> p = np.repeat([0.4, 0.5, 0.6], 2)
    >>> fit_move(p, np.array([-2.0, 0.0, 3.0, -1.0, 1.0, 3.0]), bins=3)["log_return"]
    [-1.0, 1.0, 2.0]
    """
    ok = np.isfinite(p) & np.isfinite(forward)
    p, forward = p[ok], forward[ok]
    if not len(p):  # nothing to learn from (a fold of one session): no move at all
        return {"p": [0.5], "log_return": [0.0], "bars": [0], "method": "no bars: m = 0"}
    edges = np.quantile(p, np.linspace(0, 1, bins + 1)[1:-1])
    index = np.searchsorted(edges, p, side="right")
    used = np.unique(index)
    counts = np.array([np.sum(index == b) for b in used], dtype=np.float64)
    centres = [float(p[index == b].mean()) for b in used]
    means = np.array([forward[index == b].mean() for b in used])
    return {
        "p": centres,
        "log_return": [float(v) for v in isotonic(means, counts)],
        "bars": [int(c) for c in counts],
        "method": f"mean forward log return in {len(used)} equal-count bins of p, isotonic",
    }


def round_trip_fraction(
    price: float,
    value: float = CAPITAL,
    rates: dict | None = None,
    half_spread: float | None = None,
) -> float:
    """Cost of buying and then selling ``value`` $ of an instrument at ``price``, as a fraction
    of the shares' value at that price: each fill at the price moved by the half-spread
    (default half a tick), the commission of each order (per share, at least the minimum, at
    most a fraction of the fill's notional), and the SEC fee and FINRA TAF of the sale; the
    arithmetic backtest/execution.py applies per fill.

    >>> round(round_trip_fraction(400.0) * 1e4, 3)  # QQQ at $400, $100,000: basis points
    0.782
    """
    r = {**RATES, **(rates or {})}
    shares = np.floor(value / price)
    if shares < 1:
        return float("inf")
    h = (TICK / 2) / price if half_spread is None else half_spread
    bought, sold = shares * price * (1 + h), shares * price * (1 - h)

    def commission(notional: float) -> float:
        fee = max(r["commission_min"], r["commission_per_share"] * shares)
        return min(fee, r["commission_max_fraction"] * notional)

    sale_fees = r["sec_fee_per_million"] * 1e-6 * sold + min(
        r["taf_per_share"] * shares, r["taf_max"]
    )
    total = commission(bought) + commission(sold) + sale_fees + (bought - sold)
    return float(total / (shares * price))


def round_trips(
    prices: dict[str, float],
    capital: float = CAPITAL,
    rates: dict | None = None,
    half_spread: dict[str, float] | None = None,
) -> tuple[dict[str, float], dict[str, float], list[str]]:
    """(round trip per instrument, the price used for each, the instruments whose price was
    assumed from QQQ's: :data:`PRICE_RATIO`)."""
    used, assumed = {}, []
    for symbol in SYMBOLS:
        if symbol in prices:
            used[symbol] = float(prices[symbol])
        else:
            used[symbol] = float(prices["QQQ"]) * PRICE_RATIO[symbol]
            assumed.append(symbol)
    spread = half_spread or {}
    costs = {s: round_trip_fraction(used[s], capital, rates, spread.get(s)) for s in SYMBOLS}
    return costs, used, assumed


def with_costs(
    fit: dict,
    prices: dict[str, float],
    capital: float = CAPITAL,
    rates: dict | None = None,
    half_spread: dict[str, float] | None = None,
) -> dict:
    """``fit`` with its round trips priced again: at other ``prices`` (e.g. the traded bars'
    medians), ``capital``, ``rates`` (keys of :data:`RATES`) or ``half_spread`` (fraction of
    the price per instrument; default half a tick). The margins stay as fitted: they count
    round trips, whatever a round trip costs.

    >>> fit = {"round_trip": {}, "costs": {}}
    >>> round(with_costs(fit, {"QQQ": 400.0})["round_trip"]["QQQ"] * 1e4, 3)
    0.782
    """
    costs, used, assumed = round_trips(prices, capital, rates, half_spread)
    record = {
        "capital": capital,
        "prices": used,
        "prices_assumed": assumed,
        "rates": {**RATES, **(rates or {})},
        "half_spread": half_spread or "half a tick at each price",
    }
    return {**fit, "round_trip": costs, "costs": record}


def decision_bars(rows: np.ndarray, segment: np.ndarray, seq_len: int) -> tuple:
    """(every bar from the first to the last of a part's sample ``rows``, which of them have a
    model input). The part's samples leave out dead-zone bars and the session's last
    ``horizon`` bars, which the strategy trades all the same. A bar has an input when its
    window lies in its segment and a sample row of that segment precedes it or is it
    (readiness only grows within a segment: ``model.windows.valid_windows``).

    >>> bars, has = decision_bars(np.array([3, 5, 9]), np.array([0] * 7 + [1] * 4), 2)
    >>> bars.tolist(), has.tolist()
    ([3, 4, 5, 6, 7, 8, 9], [True, True, True, True, False, False, True])
    """
    rows = np.asarray(rows)
    bars = np.arange(rows[0], rows[-1] + 1)
    start = bars - seq_len + 1
    inside = (start >= 0) & (segment[np.maximum(start, 0)] == segment[bars])
    before = rows[np.searchsorted(rows, bars, side="right") - 1]  # the last sample row <= bar
    return bars, inside & (segment[before] == segment[bars])


def net_per_session(
    exposure: np.ndarray, close: np.ndarray, session: np.ndarray, costs: dict[str, float]
) -> np.ndarray:
    """Net return of each session of an exposure path (module doc, step 3): the exposure
    decided at a bar's close earns QQQ's next-bar return within the session; every change of
    an instrument's weight costs half its round trip per unit of weight.

    >>> costs = dict.fromkeys(SYMBOLS, 0.002)
    >>> net = net_per_session(np.array([1.0, 0.0, 0.0]), np.array([100.0, 101.0, 102.0]),
    ...                       np.zeros(3, int), costs)
    >>> round(float(net[0]), 6)  # +1 % held one bar, one round trip of 0.2 %
    0.008
    """
    levels = {e: allocate(e) for e in np.unique(exposure)}
    weights = np.array([[levels[e][s] for s in SYMBOLS] for e in exposure])
    side = np.array([costs[s] / 2 for s in SYMBOLS])
    traded = np.abs(np.diff(np.vstack([np.zeros(4), weights]), axis=0)) @ side
    same = np.r_[session[1:] == session[:-1], False]
    gain = np.zeros(len(close))
    gain[:-1] = np.where(same[:-1], exposure[:-1] * (close[1:] / close[:-1] - 1.0), 0.0)
    days, where = np.unique(session, return_inverse=True)
    return np.bincount(where, gain - traded, minlength=len(days))


def grid_points(horizon: int, grid: dict = GRID) -> list[dict]:
    """Every combination of :data:`GRID` (None = the label horizon), duplicates dropped.

    >>> len(grid_points(5)), grid_points(1)[0]
    (48, {'enter_margin': 0.25, 'stay_margin': -1.0, 'min_hold_bars': 1, 'cooldown_bars': 0})
    """
    names = list(grid)
    values = [[horizon if v is None else v for v in grid[n]] for n in names]
    points = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]
    return [p for i, p in enumerate(points) if p not in points[:i]]


def cross_move(p: np.ndarray, forward: np.ndarray, fold: np.ndarray, k: int) -> dict:
    """m(p) fitted on the bars outside fold ``k``, as arrays (faster to interpolate): the
    table that trades fold ``k`` while the grid is scored (module doc, step 3)."""
    move = fit_move(p[fold != k], forward[fold != k])
    return {"p": np.asarray(move["p"]), "log_return": np.asarray(move["log_return"])}


def why(low: float, high: float, sessions: int) -> str:
    """The fit's decision in words (``trade`` true only in the last case).

    >>> why(0.01, 0.2, 4)
    'does not trade: 4 validation sessions are fewer than the 10 an interval needs'
    """
    if sessions < MIN_SESSIONS:
        return (
            f"does not trade: {sessions} validation sessions are fewer than the "
            f"{MIN_SESSIONS} an interval needs"
        )
    interval = f"[{100 * low:+.3f}%, {100 * high:+.3f}%]"
    if low <= 0:
        return f"does not trade: the best net per validation session {interval} includes zero"
    return f"trades: the best net per validation session {interval} excludes zero"


def fit_cost_rule(
    p: np.ndarray,
    close: np.ndarray,
    ts: np.ndarray,
    horizon: int,
    segment: np.ndarray | None = None,
    prices: dict[str, float] | None = None,
    capital: float = CAPITAL,
    rates: dict | None = None,
    config: StrategyConfig | None = None,
    grid: dict = GRID,
    seed: int = 0,
) -> dict:
    """``thresholds["cost"]``: the cost rule fitted on the validation bars (module doc).

    ``p``, ``close``, ``ts`` and ``segment`` are every bar of the validation sessions in time
    order (``p`` NaN where the model gave none); ``prices`` the median price of each instrument
    the data has (default: QQQ's median ``close``); ``config`` the strategy settings it will
    trade with (``long_exposure``, ``flat_last_minutes``); ``seed`` the bootstrap's."""
    p, close = np.asarray(p, np.float64), np.asarray(close, np.float64)
    ts = np.asarray(ts, np.int64)
    segment = np.zeros(len(ts), np.int64) if segment is None else np.asarray(segment)
    session = clock_columns(ts)[1]
    forward, _ = label_bars(close, segment, session, LabelSpec(horizon=horizon))
    priced = with_costs({}, prices or {"QQQ": float(np.median(close))}, capital, rates)
    costs = priced["round_trip"]
    config = (config or StrategyConfig()).model_copy(update={"rule": "cost"})
    base = {"move": fit_move(p, forward), "round_trip": costs, "trade": True}
    left = minutes_left(ts)
    fold = np.unique(session, return_inverse=True)[1] % 2  # alternate sessions
    moves = [cross_move(p, forward, fold, k) for k in (0, 1)]
    scored = []
    for point in grid_points(horizon, grid):
        exposure = np.zeros(len(p))
        for k in (0, 1):  # each fold's sessions traded with the other fold's m(p)
            rows = fold == k
            fit = {**base, **point, "move": moves[k]}
            exposure[rows] = run_strategy(p[rows], left[rows], config, {"cost": fit})[0]
        net = net_per_session(exposure, close, session, costs)
        scored.append((float(net.mean()), net, float(np.abs(np.diff(exposure)).sum()), point))
    best, net, turnover, point = max(scored, key=lambda s: s[0])  # the first of equal scores
    low, high = session_interval(lambda r: float(net[r].mean()), np.arange(len(net)), seed, STREAM)
    sessions = len(net)
    return {
        **base,
        **point,
        "trade": bool(low > 0 and sessions >= MIN_SESSIONS),
        "why": why(low, high, sessions),
        "horizon_bars": horizon,
        "fitted_on": "validation bars: m(p) from their forward returns; margins, hold and "
        "cooldown by mean net return per session over the grid",
        "validation": {
            "sessions": sessions,
            "bars": len(ts),
            "bars_with_probability": int(np.isfinite(p).sum()),
            "mean_net_per_session_pct": 100 * best,
            "net_per_session_ci95_pct": [100 * low, 100 * high],
            "exposure_traded_per_session": turnover / sessions,
            "grid_points": len(scored),
        },
        "costs": priced["costs"],
    }


__all__ = [
    "BINS",
    "CAPITAL",
    "GRID",
    "MIN_SESSIONS",
    "PRICE_RATIO",
    "RATES",
    "STREAM",
    "SYMBOLS",
    "cross_move",
    "decision_bars",
    "fit_cost_rule",
    "fit_move",
    "grid_points",
    "isotonic",
    "net_per_session",
    "round_trip_fraction",
    "round_trips",
    "why",
    "with_costs",
]
