"""REGIME: the market regime of each bar, from bars <= t only (docs/regimes.md).

A spec's ``regimes`` block (``sentio.features.regimes``) adds one REGIME column per regime
name, ``regime_<name>``: the probability that bar t is in that regime given the bars up to t.
Each column advances the same two trailing inputs over its own state:

- ``vol``: realised volatility, the root mean square of the last ``vol_window`` one-minute log
  returns inside sessions (a session's first bar counts log(close/open), so an overnight gap
  never looks like a volatile minute);
- ``trend``: the log return of the close over the last ``trend_window`` bars (390: about one
  session, i.e. the end of the previous session, the overnight gap and today so far).

and then labels them:

- ``rules`` (kind 0): volatile when vol > vol_cut, else bull when trend > trend_high, bear when
  trend < trend_low, sideways otherwise; the column is 1.0 for the label, 0.0 for the others;
- ``hmm`` (kind 1): a Gaussian HMM over (ln vol, trend) applied by forward filtering only,
  alpha_t(k) = P(state k | inputs up to t); never smoothed, which would look ahead;
- ``inputs`` (kind 2): the two inputs themselves (columns ``regime_vol``, ``regime_trend``),
  what the labellers are fitted on.

Every column is 0 before row ``max(vol_window, trend_window)`` of a segment; the hmm columns
are declared valid ``burn`` rows later (the filter's start is forgotten by then). The
fitted numbers sit in the op's state as constants (``sentio.features.regimes.constants``), so
the batch and stream drivers run one formula and a saved stream state carries them along.
"""

from __future__ import annotations

import math

import numpy as np

from sentio.features.ops.base import F0, F1, Op, Warmup, kernel

RULES, HMM, INPUTS = 0, 1, 2
# Slots at the start of a REGIME state: kind, regimes K, vol window, trend window, filter
# started, then [sum of squares, previous log close, ring(vol window)], ring(trend window),
# the fitted constants and the filter's K log probabilities.
HEAD = 5
LOG_2PI = math.log(2.0 * math.pi)


def state_size(params: dict) -> int:
    """Slots of one REGIME column: header, the two input rings, constants, filter."""
    k = int(params["regimes"])
    return HEAD + 2 + int(params["window"]) + int(params["trend_window"]) + constant_size(k) + k


@kernel
def constant_size(k):
    """Fitted constants: rules 3 (vol cut, trend low, trend high); hmm K log start, K x K log
    transition, K x 2 means, K x 3 inverse covariances (a, b, c of [[a, b], [b, c]]) and K
    log normalisers; room for the larger of the two."""
    return max(3, k * k + 7 * k)


def warm_rows(params: dict) -> int:
    """First valid row: both rings full, plus the hmm filter's ``burn`` bars (its start
    probabilities weigh on its first labels; ``sentio.features.regimes.HMM_BURN``)."""
    return max(int(params["window"]), int(params["trend_window"])) + int(params["burn"])


@kernel
def regime(s, o, open_, close, session_start, part, i):
    """Advance one REGIME column by one bar; returns its value (module doc)."""
    kind, k = int(s[o]), int(s[o + 1])
    vw, tw = int(s[o + 2]), int(s[o + 3])
    # vol: RMS of intraday one-minute log returns over a ring of vw squares.
    v0 = o + HEAD
    now = math.log(max(np.float64(close), 1e-12))  # float64 logs: a minute's return is ~1e-4
    before = math.log(max(np.float64(open_), 1e-12)) if session_start or i == 0 else s[v0 + 1]
    r = now - before
    s[v0 + 1] = now
    slot = v0 + 2 + np.int64(np.uint64(i) % np.uint64(vw))
    squares = s[v0] + r * r
    if i >= vw:
        squares -= s[slot]
    s[v0], s[slot] = squares, r * r
    # trend: ln close_i - ln close_{i-tw}.
    t0 = v0 + 2 + vw
    tslot = t0 + np.int64(np.uint64(i) % np.uint64(tw))
    trend = np.float32(now - s[tslot]) if i >= tw else F0
    s[tslot] = now
    if i < vw or i < tw:
        return F0
    vol = np.float32(math.sqrt(max(squares, 0.0) / vw))
    c = t0 + tw
    if kind == INPUTS:
        return vol if part == 0 else trend
    if kind == RULES:
        label = 2  # sideways
        if np.float64(vol) > s[c]:
            label = 3  # volatile
        elif np.float64(trend) > s[c + 2]:
            label = 0  # bull
        elif np.float64(trend) < s[c + 1]:
            label = 1  # bear
        return F1 if label == part else F0
    # HMM: forward filter in logs; constants laid out as in constant_size.
    log_start, log_trans = c, c + k
    means, inv, norm = c + k + k * k, c + k + k * k + 2 * k, c + k + k * k + 5 * k
    alpha = c + constant_size(k)
    x1 = math.log(max(np.float64(vol), 1e-12))
    x2 = np.float64(trend)
    new = np.empty(k)
    for j in range(k):
        d1, d2 = x1 - s[means + 2 * j], x2 - s[means + 2 * j + 1]
        a, b, cc = s[inv + 3 * j], s[inv + 3 * j + 1], s[inv + 3 * j + 2]
        log_b = s[norm + j] - 0.5 * (a * d1 * d1 + 2.0 * b * d1 * d2 + cc * d2 * d2)
        if s[o + 4] == 0.0:
            new[j] = s[log_start + j] + log_b
        else:
            top = -np.inf
            for m in range(k):
                top = max(top, s[alpha + m] + s[log_trans + m * k + j])
            if top == -np.inf:  # unreachable from every state (zero transitions): P = 0
                new[j] = -np.inf
                continue
            total = 0.0
            for m in range(k):
                total += math.exp(s[alpha + m] + s[log_trans + m * k + j] - top)
            new[j] = log_b + top + math.log(total)
    top = new.max()
    total = 0.0
    for j in range(k):
        total += math.exp(new[j] - top)
    for j in range(k):
        s[alpha + j] = new[j] - top - math.log(total)
    s[o + 4] = 1.0
    return np.float32(math.exp(s[alpha + part]))


OPS = [
    Op(
        "REGIME",
        38,
        "oc",
        {"window": 120, "trend_window": 390, "regimes": 4, "burn": 0},
        state_size,
        lambda p, src: Warmup(warm_rows(p)),
        "rows before max(vol window, trend window)",  # + burn: written, not yet valid
        "P(regime | bars <= t) of one regime: written by a spec's `regimes` block, never listed "
        "in `features` (docs/regimes.md).",
        origin="sentio",
        clock=True,
    ),
]

__all__ = ["HEAD", "HMM", "INPUTS", "OPS", "RULES", "constant_size", "regime", "state_size"]
