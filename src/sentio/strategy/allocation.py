"""target exposure -> instruments: long in QQQ (1x) / TQQQ (3x), short in PSQ (-1x) / SQQQ (-3x).

Weights are shares of capital held in each instrument. An exposure e in [0, 1] is QQQ alone;
in (1, 3] a blend of QQQ and TQQQ with QQQ + 3 TQQQ = e and QQQ + TQQQ = 1 (``blend``), or
TQQQ alone at e/3 (``leveraged_only``); negative exposures mirror this with PSQ and SQQQ. The
gross exposure is capped; long and short instruments are never held together.

>>> allocate(2.0)
{'QQQ': 0.5, 'TQQQ': 0.5, 'PSQ': 0.0, 'SQQQ': 0.0}
>>> allocate(-0.5)
{'QQQ': 0.0, 'TQQQ': 0.0, 'PSQ': 0.5, 'SQQQ': 0.0}
"""

from __future__ import annotations

import math

LEVERAGE = {"QQQ": 1.0, "TQQQ": 3.0, "PSQ": -1.0, "SQQQ": -3.0}
MODES = ("blend", "leveraged_only", "unleveraged_only")


def allocate(exposure: float, mode: str = "blend", cap: float = 3.0) -> dict[str, float]:
    """Capital weights per instrument for a target exposure (clipped to +/-cap)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not math.isfinite(exposure):
        raise ValueError(f"exposure must be finite, got {exposure}")
    limit = min(cap, 1.0) if mode == "unleveraged_only" else min(cap, 3.0)
    e = max(-limit, min(limit, exposure))
    unit, lever = ("QQQ", "TQQQ") if e >= 0 else ("PSQ", "SQQQ")
    size = abs(e)
    weights = dict.fromkeys(LEVERAGE, 0.0)
    if mode == "leveraged_only":
        weights[lever] = size / 3.0
    elif size <= 1.0:
        weights[unit] = size
    else:
        weights[lever] = (size - 1.0) / 2.0
        weights[unit] = 1.0 - weights[lever]
    return weights


def exposure_of(weights: dict[str, float]) -> float:
    """The exposure a set of weights carries: sum of weight x leverage."""
    return sum(weights[name] * LEVERAGE[name] for name in weights)


__all__ = ["LEVERAGE", "MODES", "allocate", "exposure_of"]
