"""probability -> signal -> target exposure, one bar at a time, as a pure function.

``decide(p, minutes_left, config, thresholds, state) -> (Decision, state)`` is the only
implementation; ``run_strategy`` loops it over a series (backtests) and the live loop calls it
per bar. Rules (``StrategyConfig.rule``):
- ``fitted``: long if p >= thresholds["long"], short if p <= thresholds["short"]; thresholds
  fitted on validation probabilities at training time and read from the artifact;
- ``adaptive`` (the original): over the last 250 probabilities, long if p >= max(0.505, q70),
  short if p <= min(0.495, q30); warm-up until 250 were seen;
- ``bands`` (the original map): >= 0.70 strong long, >= 0.55 long, <= 0.45 short,
  <= 0.30 strong short;
- ``cost`` (issue 16, docs/strategy.md): long (short) when the expected gain of the position
  over the label horizon, ``exposure x m(p)`` with ``m`` the validation split's expected QQQ log
  return given p, exceeds ``enter_margin`` times the round trip's cost of the instruments it
  holds; kept while the gain still covers ``stay_margin`` times that cost. ``m``, the costs, the
  margins, the hold and the cooldown are fitted at training (``sentio.train.costrule``) and read
  from ``thresholds["cost"]``.
Then, in this order: flat in the last ``flat_last_minutes`` of the session; hysteresis (a
position is kept until p crosses its entry threshold by ``hysteresis``; the cost rule keeps it
by its stay margin instead); a minimum hold; a long <-> short flip goes flat first; a cooldown
after every change before a new entry (the cost rule uses its fitted hold and cooldown).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sentio.core.domain import Reason
from sentio.core.errors import OptionError
from sentio.strategy.allocation import LEVERAGE, allocate

RULES = ("fitted", "adaptive", "bands", "cost")
NO_COST_FIT = (
    "cost needs a model whose training fitted the cost rule (thresholds.cost in "
    "model.meta.json); retrain the model, or choose another rule"
)


class StrategyConfig(BaseModel):
    """Signal rules; every field has a default, a unit and one line of meaning."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str = Field("fitted", pattern="^(fitted|adaptive|bands|cost)$")  # see the module doc
    long_exposure: float = Field(1.0, ge=0, le=3)  # exposure of a LONG signal (QQQ = 1)
    strong_exposure: float = Field(3.0, ge=0, le=3)  # exposure of a STRONG signal (TQQQ = 3)
    hysteresis: float = Field(0.01, ge=0)  # probability margin before leaving a position
    min_hold_bars: int = Field(5, ge=0)  # bars a position is held at least (entry included)
    cooldown_bars: int = Field(5, ge=0)  # bars after a change before a new entry
    flat_last_minutes: int = Field(10, ge=0)  # flat this many minutes before the close
    adaptive_window: int = Field(250, ge=2)  # probabilities the adaptive rule remembers
    bands: tuple[float, float, float, float] = (0.30, 0.45, 0.55, 0.70)  # the original map


@dataclass(frozen=True)
class Decision:
    exposure: float  # target exposure in [-3, +3]: +1 = one unit of QQQ per unit of capital
    reason: Reason


@dataclass(frozen=True)
class StrategyState:
    exposure: float = 0.0
    held_bars: int = 0  # bars since the current exposure was taken
    since_change: int = 10**9  # bars since the exposure last changed
    history: tuple[float, ...] = field(default=())  # adaptive rule's recent probabilities


def wanted(
    p: float, config: StrategyConfig, thresholds: dict, state: StrategyState
) -> tuple[float, Reason, bool]:
    """(exposure the rule wants, reason, whether hysteresis may keep the current position)."""
    if config.rule == "cost":
        fit = thresholds.get("cost")
        if fit is None:
            raise OptionError(NO_COST_FIT, flag="--rule")
        return cost_wanted(p, config, fit, state.exposure)
    if config.rule == "fitted":
        long_at, short_at = thresholds["long"], thresholds["short"]
    elif config.rule == "adaptive":
        if len(state.history) < config.adaptive_window:
            return 0.0, Reason.WARMUP, False
        recent = np.array(state.history)
        long_at = max(0.505, float(np.quantile(recent, 0.70)))
        short_at = min(0.495, float(np.quantile(recent, 0.30)))
    else:
        strong_short, short_at, long_at, strong_long = config.bands
    current = state.exposure
    keep = (current > 0 and p >= long_at - config.hysteresis) or (
        current < 0 and p <= short_at + config.hysteresis
    )
    if config.rule == "bands":
        if p >= strong_long:
            return config.strong_exposure, Reason.STRONG_LONG, keep
        if p <= strong_short:
            return -config.strong_exposure, Reason.STRONG_SHORT, keep
    if p >= long_at:
        return config.long_exposure, Reason.LONG, keep
    if p <= short_at:
        return -config.long_exposure, Reason.SHORT, keep
    return 0.0, Reason.INSIDE_BAND, keep


def expected_move(p: float, fit: dict) -> float:
    """The cost rule's ``m(p)``: QQQ's expected log return over the label horizon given the
    probability, interpolated in the fitted table (flat beyond its ends).

    >>> expected_move(0.75, {"move": {"p": [0.5, 1.0], "log_return": [0.0, 4.0]}})
    2.0
    """
    move = fit["move"]
    return float(np.interp(p, move["p"], move["log_return"]))


def round_trip(exposure: float, fit: dict) -> float:
    """Cost of opening and closing ``exposure`` as a fraction of capital: the instruments'
    weights (blend allocation) times each one's round-trip cost (``fit["round_trip"]``,
    fractions of the value traded).

    >>> round_trip(-1.0, {"round_trip": {"QQQ": 1e-4, "TQQQ": 3e-4, "PSQ": 5e-4, "SQQQ": 9e-4}})
    0.0005
    """
    costs = fit["round_trip"]
    return _round_trip(float(exposure), tuple(costs[s] for s in LEVERAGE))


@lru_cache(maxsize=1024)
def _round_trip(exposure: float, costs: tuple[float, ...]) -> float:
    """:func:`round_trip` for costs in LEVERAGE's order (cached: it runs at every bar)."""
    weights = allocate(exposure)
    return sum(weights[s] * c for s, c in zip(LEVERAGE, costs, strict=True) if weights[s])


def cost_wanted(p: float, config: StrategyConfig, fit: dict, current: float) -> tuple:
    """The cost rule (module doc): (exposure wanted, reason, whether the current position
    still covers its stay margin). Only the side the expected move points to can pay its
    costs (``enter_margin`` >= 0); a fit that found no net edge on validation never enters."""
    m = expected_move(p, fit)
    keep = current != 0 and current * m >= fit["stay_margin"] * round_trip(current, fit)
    e = config.long_exposure if m > 0 else -config.long_exposure
    if fit["trade"] and e * m > fit["enter_margin"] * round_trip(e, fit):
        return e, Reason.LONG if e > 0 else Reason.SHORT, keep
    return 0.0, Reason.INSIDE_BAND, keep


def limits(config: StrategyConfig, thresholds: dict) -> tuple[int, int]:
    """(minimum hold, cooldown) in bars: the cost rule's fitted ones, else the config's."""
    if config.rule == "cost":
        fit = thresholds["cost"]
        return fit["min_hold_bars"], fit["cooldown_bars"]
    return config.min_hold_bars, config.cooldown_bars


def decide(
    p: float,
    minutes_left: float,
    config: StrategyConfig,
    thresholds: dict,
    state: StrategyState,
) -> tuple[Decision, StrategyState]:
    """One bar: probability ``p`` (NaN = missing) and the minutes from this bar's close to the
    session close; returns the decision and the next state."""
    history = state.history
    if not math.isnan(p) and config.rule == "adaptive":
        history = (history + (float(p),))[-config.adaptive_window :]
    current = state.exposure
    if minutes_left < config.flat_last_minutes:
        target, reason = 0.0, Reason.SESSION_END
    elif math.isnan(p):
        target, reason = 0.0, Reason.WARMUP
    else:
        target, reason, keep = wanted(p, config, thresholds, state)
        if reason == Reason.INSIDE_BAND and keep:
            target, reason = current, Reason.HOLD
        min_hold, cooldown = limits(config, thresholds)
        young = state.held_bars + 1 < min_hold  # the entry bar counts as held
        if target != current and current != 0 and young:
            target, reason = current, Reason.MIN_HOLD
        elif target * current < 0:
            target, reason = 0.0, Reason.FLIP_THROUGH_FLAT
        elif current == 0 and target != 0 and state.since_change < cooldown:
            target, reason = 0.0, Reason.COOLDOWN
    changed = target != current
    next_state = StrategyState(  # not dataclasses.replace: this runs at every bar
        exposure=target,
        held_bars=0 if changed else state.held_bars + 1,
        since_change=0 if changed else state.since_change + 1,
        history=history,
    )
    return Decision(target, reason), next_state


def minutes_left(ts: np.ndarray, interval_s: int = 60) -> np.ndarray:
    """Minutes from each bar's close (start + interval) to its session's close; -inf outside
    a session (such a bar is always flat)."""
    from sentio.data.trading_calendar import locate

    inside, _, _, close_ns = locate(np.asarray(ts, dtype=np.int64))
    left = minutes_to_close(np.asarray(ts, dtype=np.int64), close_ns, interval_s)
    return np.where(inside, left, -np.inf)


def minutes_to_close(ts, close_ns, interval_s: int = 60):
    """Minutes from the close of the bar starting at ``ts`` to ``close_ns`` (arrays or
    scalars): the one formula behind :func:`minutes_left` (a live loop passes one bar and its
    session's close).

    >>> minutes_to_close(0, 600 * 10**9)
    9.0
    """
    return (close_ns - ts - interval_s * 1_000_000_000) / 6e10


def run_strategy(
    probabilities: np.ndarray,
    minutes_left: np.ndarray,
    config: StrategyConfig,
    thresholds: dict,
    state: StrategyState | None = None,
) -> tuple[np.ndarray, list[Reason], StrategyState]:
    """``decide`` over a series: (exposure per bar, reason per bar, final state)."""
    state = state or StrategyState()
    exposure = np.zeros(len(probabilities))
    reasons = []
    for i, (p, left) in enumerate(zip(probabilities, minutes_left, strict=True)):
        decision, state = decide(float(p), float(left), config, thresholds, state)
        exposure[i] = decision.exposure
        reasons.append(decision.reason)
    return exposure, reasons, state


__all__ = [
    "NO_COST_FIT",
    "RULES",
    "Decision",
    "StrategyConfig",
    "StrategyState",
    "cost_wanted",
    "decide",
    "expected_move",
    "limits",
    "minutes_left",
    "minutes_to_close",
    "round_trip",
    "run_strategy",
    "wanted",
]
