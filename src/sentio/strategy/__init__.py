"""Strategy: probability -> signal -> target exposure -> instruments (pure functions)."""

from sentio.strategy.allocation import LEVERAGE, MODES, allocate, exposure_of
from sentio.strategy.signal import (
    RULES,
    Decision,
    StrategyConfig,
    StrategyState,
    decide,
    expected_move,
    round_trip,
    run_strategy,
)

__all__ = [
    "Decision",
    "LEVERAGE",
    "MODES",
    "RULES",
    "StrategyConfig",
    "StrategyState",
    "allocate",
    "decide",
    "expected_move",
    "exposure_of",
    "round_trip",
    "run_strategy",
]
