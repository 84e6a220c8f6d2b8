"""What every op shares: the registry entry type, warm-up as data, float32 constants, the header.

An op is one small numba kernel that advances one feature by one bar over its slice of a float64
state vector, plus one :class:`Op` entry (name, inputs, parameters, warm-up, state size, doc).
Float32 values are stored in the float64 state exactly (every float32 is a float64), so one
array holds the whole engine state and saves without pickle.

Arithmetic is float32 as in the original C++ engine (docs/ops.md, conventions): every
constant below is a ``np.float32`` so that numba never promotes an expression to float64 by
accident, and numba's default (no fastmath) never contracts a multiply-add into an FMA.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numba import njit

F0 = np.float32(0.0)
F1 = np.float32(1.0)
F2 = np.float32(2.0)
F3 = np.float32(3.0)
F100 = np.float32(100.0)
EPS_LOG = np.float32(1e-12)  # LOGRET and ROC clamp prices below this (docs/ops.md)
EPS_DEN = np.float32(1e-8)  # "guarded to 0 when a denominator is <= 1e-8" (docs/ops.md)

# Every kernel and driver is compiled with this: cached on disk, and with numpy's error model,
# i.e. IEEE division as in C++ (x / 0 gives inf or nan, as the original did) instead of a
# Python ZeroDivisionError check before every division, which also cost ~15 % of the batch.
kernel = njit(cache=True, error_model="numpy")

# Engine header: the first HEADER slots of the state vector, shared by all ops of one engine.
H_N = 0  # bars seen in this segment before the current one (= the current row index)
H_SESSIONS = 1  # session starts seen in this segment (see engine.advance_header)
H_LAST_SESSION = 2  # session number of the previous bar (-1: none, or no clock)
H_LOGRET = 3  # state of the built-in `logret` source (previous log close)
H_SESSION_START = 4  # 1.0 when the current bar starts a session, else 0.0
HEADER = 5

# A recursive op (EMA, Wilder) forgets where the segment started once the weight of its seed
# falls below SEED_WEIGHT; that is its declared warm-up (warm-up is data: architecture rule 6).
SEED_WEIGHT = 1e-3


@dataclass(frozen=True)
class Warmup:
    """From which row of a segment a feature is valid.

    ``bars``: the first valid row index within a segment. ``sessions``: session starts that must
    have been seen in the segment as well (session-anchored ops). ``anchored``: the value is a
    running total whose LEVEL depends on where the segment started; only its changes are
    comparable between two starts.
    """

    bars: int
    sessions: int = 0
    anchored: bool = False


@dataclass(frozen=True)
class Op:
    """One registry entry. ``params`` maps each parameter to its default (None: required)."""

    name: str
    code: int
    inputs: str  # "src" (the feature's source) or the bar fields it reads, e.g. "hlc"
    params: dict[str, float | int | None]
    state_size: Callable[[dict], int]
    warmup: Callable[[dict, int], Warmup]  # (params, first valid row of the source)
    zeros: str  # the rows the op itself writes as 0 (the original's warm-up)
    doc: str
    origin: str = "original"  # "original", "fixed" (differs from the original, says why), "sentio"
    clock: bool = False  # needs bar times (minutes since the open, session numbers)
    extra: dict = field(default_factory=dict)


def settle(decay: float, stages: int = 1) -> int:
    """Bars until a seed passed through ``stages`` first-order filters of pole ``decay``
    weighs less than SEED_WEIGHT: the smallest k with C(k + stages - 1, stages - 1) decay^k
    below it (one stage: decay^k; two cascaded stages, as in ADX: (k + 1) decay^k).

    >>> settle(0.5)
    10
    >>> settle(1 - 2 / 21)  # EMA 20: (19/21)^69 is still 1.0003e-3
    70
    >>> settle(1 - 1 / 14, stages=2)  # ADX 14
    162
    """
    k = 0
    while math.comb(k + stages - 1, stages - 1) * decay**k >= SEED_WEIGHT:
        k += 1
    return k


def ema_alpha(period: int) -> np.float32:
    """alpha = 2.f / (p + 1.f), computed in float32 (proven by the golden files, EMA)."""
    return np.float32(2.0) / np.float32(period + 1)


@kernel
def log_price(x):
    """float32 ln(max(x, 1e-12)): numba's float32 math.log calls the platform logf, which is
    what the original used; numpy's float32 log differs by 1 ulp on ~4 % of prices."""
    return math.log(EPS_LOG if x < EPS_LOG else x)


@kernel
def cmax(a, b):
    """std::max(a, b) as C++ defines it, ``a < b ? b : a``: a NaN in ``a`` is kept."""
    return b if a < b else a


@kernel
def cmin(a, b):
    """std::min(a, b) as C++ defines it, ``b < a ? b : a``."""
    return b if b < a else a


@kernel
def ring_index(offset, i, size):
    """Slot of row ``i`` in a ring of ``size`` values starting at ``offset``; before it is
    overwritten it holds the value of row ``i - size``. (Unsigned: Python's signed modulo
    costs extra sign fix-ups in the hottest line of ZWIN.)"""
    return offset + np.int64(np.uint64(i) % np.uint64(size))


@kernel
def window_sma(s, o, x, w, i):
    """SMA over x[i-w+1..i]: a double running sum over a ring; 0 before row w-1; x if w <= 1.

    State: [sum, ring(w)] = 1 + w slots. Shared by SMA, BOLLINGER, PARKINSON, GARMAN_KLASS and
    STOCHASTIC_D, so that each is the same formula (docs/architecture.md, house rule 3).
    """
    if w <= 1:
        return x
    k = ring_index(o + 1, i, w)
    total = s[o] + np.float64(x)
    if i >= w:
        total -= s[k]
    s[o] = total
    s[k] = x
    if i < w - 1:
        return F0
    return np.float32(total / w)
