"""Price ops on one source: IDENT, LOGRET, LOGRET_N, EMA, SMA, MOMENTUM, ROC, MACD_*.

Semantics: docs/ops.md (original ops) and docs/ops.md (LOGRET_N, ours).
Each kernel takes (state, offset, source value, parameters..., row index within the segment).
"""

from __future__ import annotations

import numpy as np

from sentio.features.ops.base import (
    EPS_LOG,
    F0,
    F1,
    F100,
    Op,
    Warmup,
    ema_alpha,
    kernel,
    log_price,
    ring_index,
    settle,
    window_sma,
)


@kernel
def logret(s, o, x, i):
    """y_0 = 0; y_i = logf(max(x_i,1e-12)) - logf(max(x_{i-1},1e-12)), a float32 difference of
    two float32 logs, NOT log(x_i / x_{i-1}) (proven by the golden files). State: [prev log]."""
    now = log_price(x)
    y = now - np.float32(s[o]) if i > 0 else F0
    s[o] = now
    return y


@kernel
def logret_n(s, o, x, h, i):
    """ln x_i - ln x_{i-h} with the same float32 logs as LOGRET. State: ring(h) of logs."""
    now = log_price(x)
    k = ring_index(o, i, h)
    y = now - np.float32(s[k]) if i >= h else F0
    s[k] = now
    return y


@kernel
def ema_step(e, x, alpha, i):
    """e_0 = x_0; e_i = a*x_i + (1-a)*e_{i-1}, each product and the sum rounded to float32.
    ``e``: e_{i-1} (float32). The formula on values, for ``ema`` and the batch's lanes."""
    return x if i == 0 else alpha * x + (F1 - alpha) * e


@kernel
def ema(s, o, x, alpha, i):
    """EMA over its state: [e_{i-1}]."""
    e = ema_step(np.float32(s[o]), x, alpha, i)
    s[o] = e
    return e


@kernel
def momentum(s, o, x, w, i):
    """x_i - x_{i-w}; 0 for i < w. State: ring(w)."""
    k = ring_index(o, i, w)
    y = x - np.float32(s[k]) if i >= w else F0
    s[k] = x
    return y


@kernel
def roc(s, o, x, w, i):
    """100 (x_i - p) / p with p = max(x_{i-w}, 1e-12); 0 for i < w. State: ring(w)."""
    k = ring_index(o, i, w)
    y = F0
    if i >= w:
        prev = np.float32(s[k])
        prev = EPS_LOG if prev < EPS_LOG else prev
        y = F100 * (x - prev) / prev
    s[k] = x
    return y


@kernel
def macd(s, o, x, fast, slow, signal, part, i):
    """line = EMA_fast - EMA_slow (both seeded at x_0); signal = EMA_sig(line) seeded at
    line_0 = 0; hist = line - signal. ``part``: 0 line, 1 signal, 2 histogram. State: 3 EMAs."""
    line = ema(s, o, x, fast, i) - ema(s, o + 1, x, slow, i)
    sig = ema(s, o + 2, line, signal, i)
    if part == 0:
        return line
    if part == 1:
        return sig
    return line - sig


def _window(p: dict) -> int:
    return int(p["window"])


def _macd_warmup(p: dict, src: int, with_signal: bool) -> Warmup:
    bars = src + settle(1 - float(ema_alpha(int(p["slow"]))))
    if with_signal:
        bars += settle(1 - float(ema_alpha(int(p["signal"]))))
    return Warmup(bars)


MACD_PARAMS = {"fast": 12, "slow": 26, "signal": 9}

OPS = [
    Op(
        "IDENT",
        1,
        "src",
        {},
        lambda p: 0,
        lambda p, src: Warmup(src),
        "none",
        "The source value itself, as float32.",
    ),
    Op(
        "LOGRET",
        2,
        "src",
        {},
        lambda p: 1,
        lambda p, src: Warmup(src + 1),
        "row 0",
        "logf(max(x_i, 1e-12)) - logf(max(x_{i-1}, 1e-12)), the difference of two float32 logs.",
    ),
    Op(
        "EMA",
        3,
        "src",
        {"window": 20},
        lambda p: 1,
        lambda p, src: Warmup(src + settle(1 - float(ema_alpha(_window(p))))),
        "none (seeded with the first bar)",
        "alpha = 2/(p+1) in float32; e_0 = x_0; e_i = alpha x_i + (1 - alpha) e_{i-1}.",
    ),
    Op(
        "SMA",
        6,
        "src",
        {"window": 20},
        lambda p: 1 + _window(p),
        lambda p, src: Warmup(src + max(_window(p) - 1, 0)),
        "rows before w-1",
        "Mean of x_{i-w+1..i} from a double running sum; x itself when w <= 1.",
    ),
    Op(
        "MOMENTUM",
        7,
        "src",
        {"window": 5},
        _window,
        lambda p, src: Warmup(src + _window(p)),
        "rows before w",
        "x_i - x_{i-w}.",
    ),
    Op(
        "ROC",
        8,
        "src",
        {"window": 10},
        _window,
        lambda p, src: Warmup(src + _window(p)),
        "rows before w",
        "100 (x_i - p) / p with p = max(x_{i-w}, 1e-12).",
    ),
    Op(
        "MACD_LINE",
        16,
        "src",
        dict(MACD_PARAMS),
        lambda p: 3,
        lambda p, src: _macd_warmup(p, src, False),
        "none",
        "EMA_fast - EMA_slow, both seeded at x_0.",
    ),
    Op(
        "MACD_SIGNAL",
        17,
        "src",
        dict(MACD_PARAMS),
        lambda p: 3,
        lambda p, src: _macd_warmup(p, src, True),
        "none",
        "EMA_signal of the MACD line, seeded at line_0 = 0.",
    ),
    Op(
        "MACD_HISTOGRAM",
        18,
        "src",
        dict(MACD_PARAMS),
        lambda p: 3,
        lambda p, src: _macd_warmup(p, src, True),
        "none",
        "MACD line - MACD signal.",
    ),
    Op(
        "LOGRET_N",
        33,
        "src",
        {"window": None},
        _window,
        lambda p, src: Warmup(src + _window(p)),
        "rows before h",
        "Return over h bars: logf(max(x_i,1e-12)) - logf(max(x_{i-h},1e-12)) (LOGRET's logs).",
        origin="sentio",
    ),
]

__all__ = ["OPS", "ema", "ema_step", "logret", "logret_n", "macd", "momentum", "roc", "window_sma"]
