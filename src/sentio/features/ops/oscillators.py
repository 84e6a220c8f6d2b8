"""Bounded oscillators: RSI, STOCHASTIC_K/D, WILLIAMS_R, CCI, MFI, and ADX.

Semantics: docs/ops.md. RSI's details are proven by the golden files. ADX is the
one deliberate difference: the original returned DX (its averaging loop added the same DX p
times); ours is Wilder's ADX as TA-Lib computes it, and tests/features check it against TA-Lib.
"""

from __future__ import annotations

import numpy as np

from sentio.features.ops.base import (
    EPS_DEN,
    F0,
    F3,
    F100,
    Op,
    Warmup,
    cmax,
    cmin,
    kernel,
    ring_index,
    settle,
    window_sma,
)
from sentio.features.ops.volatility import true_range

EPS_RSI = np.float32(1e-12)
CCI_SCALE = np.float32(0.015)


@kernel
def moves(prev, x):
    """(up, down) move of x from ``prev``; a NaN stays NaN, as std::max did."""
    d = x - prev
    return cmax(d, F0), cmax(-d, F0)


@kernel
def wilder(ru, rd, up, down, keep, period):
    """One Wilder step of RSI after its seed: RU_i = (RU_{i-1} keep + up_i)/period, likewise
    RD (keep = p - 1, period = p, float32); rs = RU/RD if RD > 1e-12 else 0 (no down moves
    gives 0, not 100). Returns (RU, RD, RSI)."""
    ru = (ru * keep + up) / period
    rd = (rd * keep + down) / period
    rs = ru / rd if rd > EPS_RSI else F0
    return ru, rd, F100 - F100 / (np.float32(1.0) + rs)


@kernel
def rsi_step(prev, ru, rd, x, p, i):
    """Wilder RSI; rows 0..p are 0 (row p is not emitted).

    Seed RU_p = (float32 left-to-right sum of up_1..up_p)/p, likewise RD; then ``wilder``.
    The formula on values (float32 ``prev`` x, RU and RD before row i): returns (RU, RD, y).
    """
    y = F0
    if i > 0:
        up, down = moves(prev, x)
        if i < p:
            ru, rd = ru + up, rd + down
        elif i == p:
            ru, rd = (ru + up) / np.float32(p), (rd + down) / np.float32(p)
        else:
            ru, rd, y = wilder(ru, rd, up, down, np.float32(p - 1), np.float32(p))
    return ru, rd, y


@kernel
def highest_lowest(s, o, high, low, n, i):
    """Record H, L of row i in two rings of n and return (max H, min L) over the last
    min(i+1, n) rows. State: 2n."""
    k = i % n
    s[o + k], s[o + n + k] = high, low
    top, bottom = np.float32(s[o]), np.float32(s[o + n])
    for j in range(1, min(i + 1, n)):
        top = cmax(top, np.float32(s[o + j]))
        bottom = cmin(bottom, np.float32(s[o + n + j]))
    return top, bottom


@kernel
def stochastic_k(s, o, high, low, close, k, i):
    """100 (C - LL)/(HH - LL) over rows i-k..i (k+1 bars) if HH > LL else 0; 0 for i < k."""
    top, bottom = highest_lowest(s, o, high, low, k + 1, i)
    if i < k or not top > bottom:
        return F0
    return F100 * (close - bottom) / (top - bottom)


@kernel
def stochastic_d(s, o, high, low, close, k, d, i):
    """SMA_d of %K (its warm-up zeros included); 0 for i < k. State: %K (2k+2), SMA (1+d)."""
    value = stochastic_k(s, o, high, low, close, k, i)
    mean = window_sma(s, o + 2 * (k + 1), value, d, i)
    return mean if i >= k else F0


@kernel
def williams_r(s, o, high, low, close, p, i):
    """-100 (HH - C)/(HH - LL) over rows i-p..i (p+1 bars) if HH > LL else 0; 0 for i < p."""
    top, bottom = highest_lowest(s, o, high, low, p + 1, i)
    if i < p or not top > bottom:
        return F0
    return -F100 * (top - close) / (top - bottom)


@kernel
def cci(s, o, high, low, close, p, i):
    """TP = (H+L+C)/3; (TP - SMA_p(TP)) / (0.015 MD), MD = mean |TP_j - SMA| over the window;
    0 when MD <= 1e-8 and for i < p. State: ring(p) of TP."""
    tp = (high + low + close) / F3
    s[ring_index(o, i, p)] = tp
    if i < p:
        return F0
    total = 0.0
    for j in range(p):
        total += s[o + j]
    mean = np.float32(total / p)
    dev = F0
    for j in range(p):
        dev += abs(np.float32(s[o + j]) - mean)
    dev = dev / np.float32(p)
    if not dev > EPS_DEN:
        return F0
    return (tp - mean) / (CCI_SCALE * dev)


@kernel
def mfi(s, o, high, low, close, volume, p, i):
    """100 - 100/(1 + pos/neg) over j = i-p+1..i, money flow TP_j V_j signed by TP_j vs
    TP_{j-1}; 0 when neg <= 1e-8 and for i < p. State: [prev TP, ring(p) pos, ring(p) neg]."""
    tp = (high + low + close) / F3
    flow = tp * volume
    k = ring_index(o + 1, i, p)
    prev = np.float32(s[o])
    s[k] = flow if i > 0 and tp > prev else F0
    s[k + p] = flow if i > 0 and tp < prev else F0
    s[o] = tp
    if i < p:
        return F0
    pos, neg = 0.0, 0.0
    for j in range(p):
        pos += s[o + 1 + j]
        neg += s[o + 1 + p + j]
    if not neg > EPS_DEN:
        return F0
    return F100 - F100 / (np.float32(1.0) + np.float32(pos / neg))


@kernel
def adx(s, o, high, low, close, p, i):
    """Wilder's ADX as TA-Lib computes it (not the original's DX, see the module doc).

    +DM/-DM/TR summed over rows 1..p-1, then Wilder-smoothed (S <- S - S/p + new) from row p;
    DX_i = 100 |DI+ - DI-| / (DI+ + DI-); ADX at row 2p-1 = mean(DX_p..DX_{2p-1}), then
    ADX_i = (ADX_{i-1}(p-1) + DX_i)/p; 0 for i < 2p-1.
    State: [prev H, prev L, prev C, S+DM, S-DM, S TR, sum DX / ADX].
    """
    y = F0
    if i > 0:
        up = high - np.float32(s[o])
        down = np.float32(s[o + 1]) - low
        plus = up if up > F0 and up > down else F0
        minus = down if down > F0 and down > up else F0
        tr = true_range(high, low, np.float32(s[o + 2]))
        sp, sm, st = np.float32(s[o + 3]), np.float32(s[o + 4]), np.float32(s[o + 5])
        period = np.float32(p)
        if i < p:
            sp, sm, st = sp + plus, sm + minus, st + tr
        else:
            sp = sp - sp / period + plus
            sm = sm - sm / period + minus
            st = st - st / period + tr
            dx = F0
            if st != F0:
                di_plus, di_minus = F100 * (sp / st), F100 * (sm / st)
                both = di_plus + di_minus
                if both != F0:
                    dx = F100 * (abs(di_minus - di_plus) / both)
            acc = np.float32(s[o + 6])
            if i < 2 * p - 1:
                acc = acc + dx
            elif i == 2 * p - 1:
                acc = (acc + dx) / period
                y = acc
            else:
                acc = (acc * np.float32(p - 1) + dx) / period
                y = acc
            s[o + 6] = acc
        s[o + 3], s[o + 4], s[o + 5] = sp, sm, st
    s[o], s[o + 1], s[o + 2] = high, low, close
    return y


def _w(p: dict) -> int:
    return int(p["window"])


def _wilder(p: dict) -> int:
    return settle(1 - 1 / _w(p))


OPS = [
    Op(
        "RSI",
        4,
        "src",
        {"window": 14},
        lambda p: 3,
        lambda p, src: Warmup(src + _w(p) + _wilder(p)),
        "rows 0..p (row p is not emitted)",
        "Wilder RSI seeded with the mean of the first p moves; no down moves gives 0 (quirk).",
    ),
    Op(
        "STOCHASTIC_K",
        19,
        "hlc",
        {"window": 14},
        lambda p: 2 * (_w(p) + 1),
        lambda p, src: Warmup(_w(p)),
        "rows before k",
        "100 (C - LL)/(HH - LL) over the k+1 bars i-k..i; 0 when HH = LL.",
    ),
    Op(
        "STOCHASTIC_D",
        20,
        "hlc",
        {"window": 14, "d_period": 3},
        lambda p: 2 * (_w(p) + 1) + 1 + int(p["d_period"]),
        lambda p, src: Warmup(_w(p) + int(p["d_period"]) - 1),
        "rows before k",
        "SMA_d of STOCHASTIC_K (its zero rows included).",
    ),
    Op(
        "WILLIAMS_R",
        21,
        "hlc",
        {"window": 14},
        lambda p: 2 * (_w(p) + 1),
        lambda p, src: Warmup(_w(p)),
        "rows before p",
        "-100 (HH - C)/(HH - LL) over the p+1 bars i-p..i.",
    ),
    Op(
        "CCI",
        22,
        "hlc",
        {"window": 20},
        _w,
        lambda p, src: Warmup(_w(p)),
        "rows before p",
        "(TP - SMA_p(TP)) / (0.015 mean |TP - SMA_p(TP)|), TP = (H+L+C)/3.",
    ),
    Op(
        "ADX",
        23,
        "hlc",
        {"window": 14},
        lambda p: 7,
        # two Wilder stages (DM and TR sums, then ADX itself) carry the seed: a double pole
        lambda p, src: Warmup(2 * _w(p) - 1 + settle(1 - 1 / _w(p), stages=2)),
        "rows before 2p-1",
        "Wilder's ADX (TA-Lib's seeding); the original returned DX instead.",
        origin="fixed",
    ),
    Op(
        "MFI",
        27,
        "hlcv",
        {"window": 14},
        lambda p: 1 + 2 * _w(p),
        lambda p, src: Warmup(_w(p)),
        "rows before p",
        "100 - 100/(1 + pos/neg), money flow TP V signed by the change of TP; 0 if neg = 0.",
    ),
]

__all__ = [
    "OPS",
    "adx",
    "cci",
    "highest_lowest",
    "mfi",
    "moves",
    "rsi_step",
    "stochastic_d",
    "stochastic_k",
    "wilder",
]
