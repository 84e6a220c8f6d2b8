"""A spec compiled to a program, and the ONE driver that advances features over bars.

The program is plain arrays (so numba can take it): per feature a row of ``codes`` (op code,
source slot, state offset, integer parameters) and of ``fparams`` (float parameters), plus the
state of a fresh segment (``init``). ``run_part`` reads a block of input rows, advances the
engine header over them (row index, session starts, the `logret` source) and hands each run
of same-op features to ``run_op``, the one dispatch from op code to op kernel. Batch runs it
over a series (its features split over threads by ``parallel.py``); a stream runs it over
each arriving row (``state.py``). No formula exists anywhere else.

Every feature owns a disjoint span of the state and reads only the header's values, so the
order in which features are advanced, and on which thread, cannot change a bit: each feature
still sees its bars in order, through the same float32 operations (tests/features/
test_parallel.py runs 1, 2 and more threads against each other).

Input row layout (float64): open, high, low, close, volume, minute since the session open
(NaN without a clock), session number (-1 without a clock).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numba import njit

from sentio.features.ops.base import (
    F0,
    H_LAST_SESSION,
    H_LOGRET,
    H_N,
    H_SESSION_START,
    H_SESSIONS,
    HEADER,
    Warmup,
    ema_alpha,
    window_sma,
)
from sentio.features.ops.oscillators import (
    adx,
    cci,
    mfi,
    moves,
    rsi_step,
    stochastic_d,
    stochastic_k,
    wilder,
    williams_r,
)
from sentio.features.ops.prices import ema_step, logret, logret_n, macd, momentum, roc
from sentio.features.ops.regime import regime
from sentio.features.ops.session import hl_range, rel_volume, vwap_dist
from sentio.features.ops.volatility import (
    atr,
    bollinger,
    garman_klass,
    parkinson,
    prefix_sums,
    volatility,
    zscore,
)
from sentio.features.ops.volume import (
    ad_line,
    bid_ask_ratio,
    close_location,
    market_depth,
    obv,
    price_impact,
    spread_bp,
    vpt,
)
from sentio.features.regimes import constants
from sentio.features.registry import REGISTRY, SOURCE_WARMUP, SOURCES
from sentio.features.spec import Feature, FeatureSpec

ROW_WIDTH = 7
R_OPEN, R_HIGH, R_LOW, R_CLOSE, R_VOLUME, R_MINUTE, R_SESSION = range(ROW_WIDTH)

# Columns of ``codes``.
C_OP, C_SRC, C_OFF, C_W, C_AUX, C_COL = range(6)

# Op codes as module globals: numba freezes them into the compiled dispatch.
IDENT = REGISTRY["IDENT"].code
LOGRET = REGISTRY["LOGRET"].code
EMA = REGISTRY["EMA"].code
RSI = REGISTRY["RSI"].code
ZWIN = REGISTRY["ZWIN"].code
SMA = REGISTRY["SMA"].code
MOMENTUM = REGISTRY["MOMENTUM"].code
ROC = REGISTRY["ROC"].code
VOLATILITY = REGISTRY["VOLATILITY"].code
PARKINSON = REGISTRY["PARKINSON"].code
GARMAN_KLASS = REGISTRY["GARMAN_KLASS"].code
ATR = REGISTRY["ATR"].code
BB_UPPER = REGISTRY["BOLLINGER_UPPER"].code
BB_LOWER = REGISTRY["BOLLINGER_LOWER"].code
MACD_LINE = REGISTRY["MACD_LINE"].code
MACD_HISTOGRAM = REGISTRY["MACD_HISTOGRAM"].code
STOCH_K = REGISTRY["STOCHASTIC_K"].code
STOCH_D = REGISTRY["STOCHASTIC_D"].code
WILLIAMS_R = REGISTRY["WILLIAMS_R"].code
CCI = REGISTRY["CCI"].code
ADX = REGISTRY["ADX"].code
OBV = REGISTRY["OBV"].code
VPT = REGISTRY["VPT"].code
AD_LINE = REGISTRY["AD_LINE"].code
MFI = REGISTRY["MFI"].code
SPREAD_BP = REGISTRY["SPREAD_BP"].code
PRICE_IMPACT = REGISTRY["PRICE_IMPACT"].code
ORDER_FLOW = REGISTRY["ORDER_FLOW"].code
MARKET_DEPTH = REGISTRY["MARKET_DEPTH"].code
BID_ASK_RATIO = REGISTRY["BID_ASK_RATIO"].code
LOGRET_N = REGISTRY["LOGRET_N"].code
HL_RANGE = REGISTRY["HL_RANGE"].code
VWAP_DIST = REGISTRY["VWAP_DIST"].code
MINUTES = REGISTRY["MINUTES_SINCE_OPEN"].code
REL_VOLUME = REGISTRY["REL_VOLUME"].code
REGIME = REGISTRY["REGIME"].code


@dataclass(frozen=True)
class Program:
    """A compiled spec. ``warm_bars``/``warm_sessions`` hold each feature's warm-up."""

    names: tuple[str, ...]
    codes: np.ndarray  # (F, 6) int64, grouped by op; C_COL is the feature's output column
    fparams: np.ndarray  # (F, 3) float64
    init: np.ndarray  # (S,) float64: the state at the start of a segment
    warmups: tuple[Warmup, ...]
    clock: bool  # some op needs bar times

    @cached_property  # read once per streamed bar: built once
    def warm_bars(self) -> np.ndarray:
        return np.array([w.bars for w in self.warmups], dtype=np.int64)

    @cached_property
    def warm_sessions(self) -> np.ndarray:
        return np.array([w.sessions for w in self.warmups], dtype=np.int64)


def compile_spec(spec: FeatureSpec) -> Program:
    """Lay out the state of every feature and encode its op and parameters.

    Features run grouped by op (stable within an op), each writing its own output column:
    the step's branch on the op code is then predictable, which made the 55-feature spec
    ~1.4x faster than running them in spec order (bench/features.py).
    """
    count = len(spec.features)
    codes = np.zeros((count, 6), dtype=np.int64)
    fparams = np.zeros((count, 3), dtype=np.float64)
    offset = HEADER
    warmups = [
        feature.op.warmup(feature.params, SOURCE_WARMUP[feature.source])
        for feature in spec.features
    ]
    order = sorted(range(count), key=lambda j: spec.features[j].op.code)
    init_parts = {}  # state offset -> constants laid there (REGIME columns)
    for f, column in enumerate(order):
        feature = spec.features[column]
        op, p = feature.op, feature.params
        codes[f, C_OP] = op.code
        codes[f, C_SRC] = SOURCES.index(feature.source)
        codes[f, C_OFF] = offset
        codes[f, C_W] = int(p.get("window", 0))
        codes[f, C_AUX] = _aux(feature, spec)
        codes[f, C_COL] = column
        fparams[f] = _float_params(feature)
        if op.name == "REGIME":
            init_parts[offset] = constants(spec.regimes)
        offset += op.state_size(p)
    init = np.zeros(offset, dtype=np.float64)
    init[H_LAST_SESSION] = -1.0
    for start, values in init_parts.items():
        init[start : start + len(values)] = values
    return Program(
        names=spec.names,
        codes=codes,
        fparams=fparams,
        init=init,
        warmups=tuple(warmups),
        clock=any(f.op.clock for f in spec.features),
    )


def _aux(feature: Feature, spec: FeatureSpec) -> int:
    """The second integer parameter: d_period, or which output of a multi-output op."""
    name = feature.op.name
    if name == "REGIME":
        return spec.regimes.columns.index(feature.name)
    if name == "STOCHASTIC_D":
        return int(feature.params["d_period"])
    for suffix, part in (("UPPER", 0), ("MIDDLE", 1), ("LOWER", 2)):
        if name == f"BOLLINGER_{suffix}":
            return part
    for suffix, part in (("LINE", 0), ("SIGNAL", 1), ("HISTOGRAM", 2)):
        if name == f"MACD_{suffix}":
            return part
    return 0


def _float_params(feature: Feature) -> tuple[float, float, float]:
    """EMA alpha; BOLLINGER k; MACD's three alphas (all exact float32 values)."""
    p, name = feature.params, feature.op.name
    if name == "EMA":
        return (float(ema_alpha(int(p["window"]))), 0.0, 0.0)
    if name.startswith("BOLLINGER"):
        return (float(np.float32(p["k"])), 0.0, 0.0)
    if name.startswith("MACD"):
        return tuple(float(ema_alpha(int(p[key]))) for key in ("fast", "slow", "signal"))
    return (0.0, 0.0, 0.0)


# Rows per block of the driver: the header of a block is computed once, then each run of
# same-op features sweeps the block (one op dispatch per run and block, not per feature and
# bar), the features inside the row loop so that independent features overlap in the CPU.
# 16 to 4096 rows timed the same within noise (55-feature spec, 1,000,000 bars); 128 keep a
# block's sources and output rows in the L1/L2 cache.
BLOCK = 128

# The driver's parts, inlined into it by numba (not only by LLVM): a call of a separately
# compiled function counts a reference to every array it takes, on entry and on exit, which
# cost ~0.3 us of a stream update (3.45 against 3.1 us).
inlined = njit(error_model="numpy", inline="always")

# Columns of a block's sources (float32), in the order of registry.SOURCES, so that a feature's
# C_SRC indexes them directly.
S_OPEN, S_HIGH, S_LOW, S_CLOSE, S_VOLUME, S_LOGRET = range(6)


@inlined
def header(hdr, rows, r0, r1, src, idx, start, sessions):
    """Advance the engine header ``hdr`` over rows r0..r1-1 and lay out what the ops read of
    row ``r0 + k``: ``src[k]`` its sources, ``idx[k]`` its index within the segment,
    ``start[k]`` whether it starts a session, ``sessions[k]`` the session starts seen."""
    for r in range(r0, r1):
        k = r - r0
        i = int(hdr[H_N])
        c = np.float32(rows[r, R_CLOSE])
        src[k, S_OPEN] = np.float32(rows[r, R_OPEN])
        src[k, S_HIGH] = np.float32(rows[r, R_HIGH])
        src[k, S_LOW] = np.float32(rows[r, R_LOW])
        src[k, S_CLOSE] = c
        # The original cast volume to an unsigned integer, truncating fractions (docs/ops.md).
        src[k, S_VOLUME] = np.float32(math.floor(rows[r, R_VOLUME]))
        minute, session = rows[r, R_MINUTE], rows[r, R_SESSION]
        # A session starts when the session number changes; the segment's first bar counts only
        # if it is the session's first minute (else the session was joined midway).
        begins = session >= 0.0 and session != hdr[H_LAST_SESSION] and (i > 0 or minute == 0.0)
        hdr[H_SESSION_START] = 1.0 if begins else 0.0
        if begins:
            hdr[H_SESSIONS] += 1.0
        hdr[H_LAST_SESSION] = session
        src[k, S_LOGRET] = logret(hdr, H_LOGRET, c, i)
        idx[k], start[k], sessions[k] = i, begins, hdr[H_SESSIONS]
        hdr[H_N] = i + 1


# The three ops of most features (EMA, RSI, ZWIN) do not go through the per-feature loop below.
# EMA and RSI run as lanes: a run's states are read once per block into contiguous arrays,
# every row advances them all in one loop over the features that LLVM compiles to SIMD
# instructions (8 float32 at a time), and the states are written back after the block; a row
# where some RSI still seeds (i <= p) takes each feature's whole step (``rsi_step``) instead.
# ZWIN runs one feature at a time over the block's rows: its prefix sums are a scan, but its
# z-scores are independent across rows, so that loop is the SIMD one (4 float64 at a time).
# Every path calls the ops' own formulas (``ema_step``, ``moves`` and ``wilder``,
# ``prefix_sums`` and ``zscore``) with the same float32 and float64 operations in the same
# order: where the values live changes, not a bit of them (tests/features/test_lanes.py,
# test_golden.py). ZWIN's ring slot advances by one a row instead of a 64-bit integer modulo
# (i mod w) a feature and row. One thread, 1,000,000 bars, CPU seconds with the bar header:
# 32 EMA 0.142 -> 0.068, 10 RSI 0.090 -> 0.057, 11 ZWIN 0.134 -> 0.087 (docs/features.md).
@inlined
def common(codes, g0, m, column, step):
    """``codes[g0 + f, column]`` when it is ``codes[g0, column] + f * step`` for every f (one
    source for all: step 0; adjacent output columns: step 1), else -1."""
    first = codes[g0, column]
    for f in range(1, m):
        if codes[g0 + f, column] != first + f * step:
            return -1
    return first


@inlined
def sources(codes, g0, m, src, k, x, s0):
    """``x[f]``: the source value of feature g0 + f at block row k (all ``s0`` unless -1)."""
    if s0 >= 0:
        v = src[k, s0]
        for f in range(m):
            x[f] = v
    else:
        for f in range(m):
            x[f] = src[k, codes[g0 + f, C_SRC]]


@inlined
def put(out, row, codes, g0, m, y, c0):
    """Write ``y[f]`` to feature g0 + f's output column of ``out[row]`` (c0 + f unless -1)."""
    if c0 >= 0:
        for f in range(m):
            out[row, c0 + f] = y[f]
    else:
        for f in range(m):
            out[row, codes[g0 + f, C_COL]] = y[f]


@inlined
def ema_lanes(codes, fparams, g0, g1, state, n, src, idx, out, base, lane32):
    """EMA features g0..g1-1 over a block. State: [e] each."""
    m = g1 - g0
    e, alpha, x = lane32[0], lane32[1], lane32[2]
    s0, c0 = common(codes, g0, m, C_SRC, 0), common(codes, g0, m, C_COL, 1)
    for f in range(m):
        e[f] = np.float32(state[codes[g0 + f, C_OFF]])
        alpha[f] = np.float32(fparams[g0 + f, 0])
    for k in range(n):
        sources(codes, g0, m, src, k, x, s0)
        i = idx[k]
        for f in range(m):
            e[f] = ema_step(e[f], x[f], alpha[f], i)
        put(out, base + k, codes, g0, m, e, c0)
    for f in range(m):
        state[codes[g0 + f, C_OFF]] = e[f]


@inlined
def rsi_lanes(codes, g0, g1, state, n, src, idx, out, base, lane32):
    """RSI features g0..g1-1 over a block. State: [prev x, RU, RD] each."""
    m = g1 - g0
    s0, c0 = common(codes, g0, m, C_SRC, 0), common(codes, g0, m, C_COL, 1)
    prev, ru, rd, x, y = lane32[0], lane32[1], lane32[2], lane32[3], lane32[4]
    keep, period = lane32[5], lane32[6]
    seeded = 0  # from this row on every feature is past its seed
    for f in range(m):
        o, p = codes[g0 + f, C_OFF], codes[g0 + f, C_W]
        prev[f], ru[f], rd[f] = state[o], state[o + 1], state[o + 2]
        keep[f], period[f] = p - 1, p
        seeded = max(seeded, p + 1)
    for k in range(n):
        sources(codes, g0, m, src, k, x, s0)
        i = idx[k]
        if i >= seeded:
            for f in range(m):
                up, down = moves(prev[f], x[f])
                ru[f], rd[f], y[f] = wilder(ru[f], rd[f], up, down, keep[f], period[f])
                prev[f] = x[f]
        else:
            for f in range(m):
                p = codes[g0 + f, C_W]
                ru[f], rd[f], y[f] = rsi_step(prev[f], ru[f], rd[f], x[f], p, i)
                prev[f] = x[f]
        put(out, base + k, codes, g0, m, y, c0)
    for f in range(m):
        o = codes[g0 + f, C_OFF]
        state[o], state[o + 1], state[o + 2] = prev[f], ru[f], rd[f]


@inlined
def zwin_rows(codes, g0, g1, state, n, src, idx, out, base, rows64, x, y):
    """ZWIN features g0..g1-1 over a block, one feature at a time, SIMD across the rows.
    State: [S, Q, ring(w) of S, ring(w) of Q] each; row i's ring slot is i mod w (as
    ``ring_index``), and holds S and Q of row i - w until row i writes its own.

    Per feature: the prefix sums of the block's rows (a scan, ``prefix_sums``), S and Q of
    w rows before each row (from the block itself, or from the ring for its first w rows), then
    every row's ``zscore`` in one loop with no dependence between rows."""
    total, squares, old_total, old_squares = rows64[0], rows64[1], rows64[2], rows64[3]
    i0 = idx[0]
    for f in range(g0, g1):
        o, w, s, j = codes[f, C_OFF], codes[f, C_W], codes[f, C_SRC], codes[f, C_COL]
        ring = o + 2
        t, q = state[o], state[o + 1]
        for k in range(n):
            x[k] = src[k, s]
            t, q = prefix_sums(t, q, x[k])
            total[k], squares[k] = t, q
        state[o], state[o + 1] = t, q
        slot = i0 % w  # ring slot of row i0 + k, advanced with k
        for k in range(min(n, w)):
            old_total[k], old_squares[k] = state[ring + slot], state[ring + w + slot]
            slot = slot + 1 if slot + 1 < w else 0
        for k in range(w, n):
            old_total[k], old_squares[k] = total[k - w], squares[k - w]
        first = min(n, max(0, w - i0))  # rows before it have no full window yet: 0
        for k in range(first):
            y[k] = F0
        for k in range(first, n):
            y[k] = zscore(total[k], squares[k], old_total[k], old_squares[k], x[k], w)
        for k in range(n):
            out[base + k, j] = y[k]
        k0 = max(0, n - w)  # the ring keeps the last w rows
        slot = (i0 + k0) % w
        for k in range(k0, n):
            state[ring + slot], state[ring + w + slot] = total[k], squares[k]
            slot = slot + 1 if slot + 1 < w else 0


@inlined
def run_op(
    op, codes, fparams, g0, g1, state, rows, r0, n, src, idx, start, sessions, out, base, lane32,
    rows64, rows32
):  # fmt: skip
    """Features g0..g1-1, all of op ``op``, over the n rows of a block from row r0, row
    ``r0 + k`` written to ``out[base + k]``: the ONE dispatch from op code to op kernel.

    Per feature: state offset ``s``, window ``w``, output column ``j``, source value ``x``.
    Array elements, not column views: a view is a reference-counted array, and its counting
    cost a quarter of the batch (0.55 against 0.41 s of CPU, 55 features, 1,000,000 bars).
    """
    if op == EMA:
        ema_lanes(codes, fparams, g0, g1, state, n, src, idx, out, base, lane32)
    elif op == RSI:
        rsi_lanes(codes, g0, g1, state, n, src, idx, out, base, lane32)
    elif op == ZWIN and n == BLOCK:  # a full block: LLVM compiles the loops for 128 rows
        zwin_rows(codes, g0, g1, state, BLOCK, src, idx, out, base, rows64, rows32[0], rows32[1])
    elif op == ZWIN:
        zwin_rows(codes, g0, g1, state, n, src, idx, out, base, rows64, rows32[0], rows32[1])
    elif op == IDENT:
        for k in range(n):
            for f in range(g0, g1):
                out[base + k, codes[f, C_COL]] = src[k, codes[f, C_SRC]]
    elif op == LOGRET:
        for k in range(n):
            for f in range(g0, g1):
                s, j, x = codes[f, C_OFF], codes[f, C_COL], src[k, codes[f, C_SRC]]
                out[base + k, j] = logret(state, s, x, idx[k])
    elif op in (SMA, MOMENTUM, ROC, VOLATILITY, LOGRET_N):
        for k in range(n):
            for f in range(g0, g1):
                s, w = codes[f, C_OFF], codes[f, C_W]
                j, x = codes[f, C_COL], src[k, codes[f, C_SRC]]
                if op == SMA:
                    y = window_sma(state, s, x, w, idx[k])
                elif op == MOMENTUM:
                    y = momentum(state, s, x, w, idx[k])
                elif op == ROC:
                    y = roc(state, s, x, w, idx[k])
                elif op == VOLATILITY:
                    y = volatility(state, s, x, w, idx[k])
                else:
                    y = logret_n(state, s, x, w, idx[k])
                out[base + k, j] = y
    elif (op >= BB_UPPER and op <= BB_LOWER) or (op >= MACD_LINE and op <= MACD_HISTOGRAM):
        for k in range(n):
            for f in range(g0, g1):
                s, w = codes[f, C_OFF], codes[f, C_W]
                j, x = codes[f, C_COL], src[k, codes[f, C_SRC]]
                a0, a1 = np.float32(fparams[f, 0]), np.float32(fparams[f, 1])
                a2, part = np.float32(fparams[f, 2]), codes[f, C_AUX]
                if op <= BB_LOWER:
                    y = bollinger(state, s, x, w, a0, part, idx[k])
                else:
                    y = macd(state, s, x, a0, a1, a2, part, idx[k])
                out[base + k, j] = y
    else:  # ops on bar fields rather than on the feature's source
        for k in range(n):
            o, h, lo, c = src[k, S_OPEN], src[k, S_HIGH], src[k, S_LOW], src[k, S_CLOSE]
            v, i, minute = src[k, S_VOLUME], idx[k], rows[r0 + k, R_MINUTE]
            for f in range(g0, g1):
                s, w, aux = codes[f, C_OFF], codes[f, C_W], codes[f, C_AUX]
                if op == PARKINSON:
                    y = parkinson(state, s, h, lo, w, i)
                elif op == GARMAN_KLASS:
                    y = garman_klass(state, s, o, h, lo, c, w, i)
                elif op == ATR:
                    y = atr(state, s, h, lo, c, w, i)
                elif op == STOCH_K:
                    y = stochastic_k(state, s, h, lo, c, w, i)
                elif op == STOCH_D:
                    y = stochastic_d(state, s, h, lo, c, w, aux, i)
                elif op == WILLIAMS_R:
                    y = williams_r(state, s, h, lo, c, w, i)
                elif op == CCI:
                    y = cci(state, s, h, lo, c, w, i)
                elif op == ADX:
                    y = adx(state, s, h, lo, c, w, i)
                elif op == OBV:
                    y = obv(state, s, c, v, i)
                elif op == VPT:
                    y = vpt(state, s, c, v, i)
                elif op == AD_LINE:
                    y = ad_line(state, s, h, lo, c, v)
                elif op == MFI:
                    y = mfi(state, s, h, lo, c, v, w, i)
                elif op == SPREAD_BP:
                    y = spread_bp(h, lo)
                elif op == PRICE_IMPACT:
                    y = price_impact(state, s, c, v, i)
                elif op == ORDER_FLOW:
                    y = close_location(h, lo, c) * v
                elif op == MARKET_DEPTH:
                    y = market_depth(h, lo, v)
                elif op == BID_ASK_RATIO:
                    y = bid_ask_ratio(h, lo, c)
                elif op == HL_RANGE:
                    y = hl_range(state, s, h, lo, c, w, i)
                elif op == VWAP_DIST:
                    y = vwap_dist(state, s, h, lo, c, v, start[k])
                elif op == MINUTES:
                    y = np.float32(minute) if minute >= 0.0 else np.float32(0.0)
                elif op == REL_VOLUME:
                    y = rel_volume(state, s, v, minute, sessions[k], w)
                elif op == REGIME:
                    y = regime(state, s, o, c, start[k], aux, i)
                else:  # unreachable: compile_spec only emits registered codes, a test runs each
                    y = np.float32(np.nan)
                out[base + k, codes[f, C_COL]] = y


@njit(cache=True, error_model="numpy", nogil=True)  # nogil: parallel.py runs it on threads
def run_part(
    codes, fparams, f0, f1, init, state, hdr, rows, segment, lo, hi, out, counters, emit_from,
    pad, compat
):  # fmt: skip
    """The driver: features f0..f1-1 over rows lo..hi-1 into ``out``, block by block.

    ``hdr`` is this part's own copy of the engine header, advanced over the rows (each part
    of a threaded batch advances one, the same way). The features' state is one span of
    ``state``; it restarts from ``init`` at each segment change after row ``lo`` (the caller
    handles a change at ``lo``). In compatibility mode the original's alignment policy
    follows: rows before ``emit_from`` (counted from the segment start) become ``pad``, later
    non-finite values 0 (the original's sanitize_and_ready). ``counters[r]``, when it has
    rows, receives (row index within the segment, session starts seen) for the warm-up report.
    """
    count = codes.shape[0]
    a = codes[f0, C_OFF] if f0 < count else init.shape[0]
    b = codes[f1, C_OFF] if f1 < count else init.shape[0]
    size = max(1, min(BLOCK, hi - lo))
    src = np.empty((size, len(SOURCES)), dtype=np.float32)
    idx = np.empty(size, dtype=np.int64)
    start = np.empty(size, dtype=np.bool_)
    sessions = np.empty(size, dtype=np.float64)
    lane32 = np.empty((7, max(count, 1)), dtype=np.float32)  # scratch: lanes
    rows64 = np.empty((4, size), dtype=np.float64)  # and rows
    rows32 = np.empty((2, size), dtype=np.float32)
    # Part of the features shares every output row with the other parts' threads: it fills a
    # block of its own and copies it out, run by run of adjacent columns. Two threads writing
    # side by side into one array took ~1.4x the time of two writing into separate arrays
    # (false sharing of cache lines; 55 features, 1,000,000 bars).
    whole = f0 == 0 and f1 == count
    block = out if whole else np.empty((size, out.shape[1]), dtype=np.float32)
    columns = runs = np.empty(0, dtype=np.int64)
    if not whole:
        columns = np.sort(codes[f0:f1, C_COL])
        runs = np.flatnonzero(np.diff(columns) != 1) + 1  # where adjacent columns break off
    r0 = lo
    while r0 < hi:
        if r0 > lo and segment[r0] != segment[r0 - 1]:
            state[a:b] = init[a:b]
            hdr[:] = init[:HEADER]
        r1 = r0 + 1
        while r1 < hi and r1 - r0 < size and segment[r1] == segment[r0]:
            r1 += 1
        n, base = r1 - r0, r0 if whole else 0
        header(hdr, rows, r0, r1, src, idx, start, sessions)
        g0 = f0
        while g0 < f1:  # each run of features with one op
            g1 = g0 + 1
            while g1 < f1 and codes[g1, C_OP] == codes[g0, C_OP]:
                g1 += 1
            op = codes[g0, C_OP]
            run_op(op, codes, fparams, g0, g1, state, rows, r0, n, src, idx, start, sessions,
                   block, base, lane32, rows64, rows32)  # fmt: skip
            g0 = g1
        if compat:
            for k in range(n):
                for f in range(f0, f1):
                    j = codes[f, C_COL]
                    if idx[k] < emit_from:
                        block[base + k, j] = pad
                    elif not np.isfinite(block[base + k, j]):
                        block[base + k, j] = 0.0
        if not whole:
            for q in range(len(runs) + 1):
                c0 = columns[runs[q - 1]] if q > 0 else columns[0]
                c1 = columns[runs[q] - 1] + 1 if q < len(runs) else columns[-1] + 1
                for k in range(n):
                    for j in range(c0, c1):
                        out[r0 + k, j] = block[k, j]
        if counters.shape[0]:
            for k in range(n):
                counters[r0 + k, 0] = idx[k]
                counters[r0 + k, 1] = int(sessions[k])
        r0 = r1


__all__ = ["BLOCK", "ROW_WIDTH", "Program", "compile_spec", "header", "run_op", "run_part"]
