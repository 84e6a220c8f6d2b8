"""probability -> signal -> target exposure, one bar at a time, as a pure function.

``decide(p, minutes_left, config, thresholds, state) -> (Decision, state)`` is the only
implementation; ``run_strategy`` loops it over a series (backtests) and the live loop calls it
per bar. Rules (``StrategyConfig.rule``):
- ``fitted``: long if p >= thresholds["long"], short if p <= thresholds["short"]; thresholds
  fitted on validation probabilities at training time and read from the artifact;
- ``adaptive`` (the original): over the last 250 probabilities, long if p >= max(0.505, q70),
  short if p <= min(0.495, q30); warm-up until 250 were seen;
- ``bands`` (the original map): >= 0.70 strong long, >= 0.55 long, <= 0.45 short,
  <= 0.30 strong short.
Then, in this order: flat in the last ``flat_last_minutes`` of the session; hysteresis (a
position is kept until p crosses its entry threshold by ``hysteresis``); a minimum hold; a
long <-> short flip goes flat first; a cooldown after every change before a new entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sentio.core.domain import Reason

RULES = ("fitted", "adaptive", "bands")


class StrategyConfig(BaseModel):
    """Signal rules; every field has a default, a unit and one line of meaning."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str = Field("fitted", pattern="^(fitted|adaptive|bands)$")  # see the module doc
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
) -> tuple[float, Reason, float, float]:
    """(exposure the rule wants, reason, long entry threshold, short entry threshold)."""
    if config.rule == "fitted":
        long_at, short_at = thresholds["long"], thresholds["short"]
    elif config.rule == "adaptive":
        if len(state.history) < config.adaptive_window:
            return 0.0, Reason.WARMUP, 1.0, 0.0
        recent = np.array(state.history)
        long_at = max(0.505, float(np.quantile(recent, 0.70)))
        short_at = min(0.495, float(np.quantile(recent, 0.30)))
    else:
        strong_short, short_at, long_at, strong_long = config.bands
        if p >= strong_long:
            return config.strong_exposure, Reason.STRONG_LONG, long_at, short_at
        if p <= strong_short:
            return -config.strong_exposure, Reason.STRONG_SHORT, long_at, short_at
    if p >= long_at:
        return config.long_exposure, Reason.LONG, long_at, short_at
    if p <= short_at:
        return -config.long_exposure, Reason.SHORT, long_at, short_at
    return 0.0, Reason.INSIDE_BAND, long_at, short_at


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
    if not np.isnan(p) and config.rule == "adaptive":
        history = (history + (float(p),))[-config.adaptive_window :]
    current = state.exposure
    if minutes_left < config.flat_last_minutes:
        target, reason = 0.0, Reason.SESSION_END
    elif np.isnan(p):
        target, reason = 0.0, Reason.WARMUP
    else:
        target, reason, long_at, short_at = wanted(p, config, thresholds, state)
        keep_long = current > 0 and p >= long_at - config.hysteresis
        keep_short = current < 0 and p <= short_at + config.hysteresis
        if reason == Reason.INSIDE_BAND and (keep_long or keep_short):
            target, reason = current, Reason.HOLD
        young = state.held_bars + 1 < config.min_hold_bars  # the entry bar counts as held
        if target != current and current != 0 and young:
            target, reason = current, Reason.MIN_HOLD
        elif target * current < 0:
            target, reason = 0.0, Reason.FLIP_THROUGH_FLAT
        elif current == 0 and target != 0 and state.since_change < config.cooldown_bars:
            target, reason = 0.0, Reason.COOLDOWN
    changed = target != current
    next_state = replace(
        state,
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
    "RULES",
    "Decision",
    "StrategyConfig",
    "StrategyState",
    "decide",
    "minutes_left",
    "minutes_to_close",
    "run_strategy",
    "wanted",
]
