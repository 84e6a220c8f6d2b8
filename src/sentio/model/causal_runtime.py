"""The causal TFA's torch-free runtime: one compiled per-row step, two drivers.

The causal network (``sentio.model.causal``, torch) attends, at every layer, from a row to itself
and the T-1 rows before it in its segment. Streaming keeps, per layer, the keys and values of the
last T rows (a ring), so a new bar costs one row's projections and MLP plus attention over T
cached rows: O(L (d^2 + T d)) instead of the window model's O(L T d^2).

ONE compiled function, :func:`_run`, advances the state by one feature row at a time. The
stream context calls it with one row, the sequence context with a whole series: the same code,
so the two paths give the same bits on every bar (tests/infer/test_causal_parity.py), as the
feature engine's batch and stream drivers do. Every sum runs in a fixed order (matrix-vector
products accumulate over the input index in ascending order, vectorised across outputs only;
attention over the cached rows oldest first), so the result does not depend on where a row
sits in a batch.

The state is data (saved with a stream context): ``keys`` (L, D, T) and ``values`` (L, T, D)
float32 and ``clock`` int64 [next slot, rows held (<= T)]. A prediction is valid once T consecutive
ready rows of a segment have been fed (the window rule of the window family). Rows further
back than :func:`context_rows` no longer change anything: a state rebuilt from the last
``context_rows`` rows of a segment equals, bit for bit, one that saw the whole segment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from sentio.model.config import context_rows

# The weights, in the order the kernel takes them; each (name, shape) is checked on load.
# Matrices are stored input-major, (in, out): y[j] = b[j] + sum_k x[k] W[k, j].
WEIGHTS = (
    "mean",  # (F,) training split's feature mean
    "std",  # (F,)
    "embed_w",  # (F, D)
    "embed_b",  # (D,)
    "ln1_w",  # (L, D)
    "ln1_b",  # (L, D)
    "qkv_w",  # (L, D, 3D)
    "qkv_b",  # (L, 3D)
    "rel",  # (L, H, T) attention bias by distance 0..T-1 (0: the row itself)
    "proj_w",  # (L, D, D)
    "proj_b",  # (L, D)
    "ln2_w",  # (L, D)
    "ln2_b",  # (L, D)
    "fc_w",  # (L, D, FF)
    "fc_b",  # (L, FF)
    "out_w",  # (L, FF, D)
    "out_b",  # (L, D)
    "lnf_w",  # (D,)
    "lnf_b",  # (D,)
    "head_w",  # (D,)
    "head_b",  # (1,)
)
LN_EPS = 1e-5  # torch.nn.LayerNorm's default


kernel = njit(cache=True, error_model="numpy", nogil=True)


@kernel
def _layer_norm(x, w, b, out):  # (D,) -> (D,), torch's formula: biased variance
    n = x.shape[0]
    mean = np.float32(0.0)
    for i in range(n):
        mean += x[i]
    mean = mean / np.float32(n)
    var = np.float32(0.0)
    for i in range(n):
        d = x[i] - mean
        var += d * d
    var = var / np.float32(n)
    inv = np.float32(1.0) / np.float32(math.sqrt(var + np.float32(LN_EPS)))
    for i in range(n):
        out[i] = (x[i] - mean) * inv * w[i] + b[i]


@kernel
def _affine(x, w, b, out):  # (K,) @ (K, N) + (N,) -> (N,)
    """Each out[j] accumulates x[k] w[k, j] over k in ascending order, one add at a time
    (four k per pass over out, the same adds in the same order: fewer loads and stores)."""
    n, depth = out.shape[0], x.shape[0]
    for j in range(n):
        out[j] = np.float32(0.0)
    k = 0
    while k + 4 <= depth:
        x0, x1, x2, x3 = x[k], x[k + 1], x[k + 2], x[k + 3]
        w0, w1, w2, w3 = w[k], w[k + 1], w[k + 2], w[k + 3]
        for j in range(n):
            out[j] = (((out[j] + x0 * w0[j]) + x1 * w1[j]) + x2 * w2[j]) + x3 * w3[j]
        k += 4
    while k < depth:
        xk, wk = x[k], w[k]
        for j in range(n):
            out[j] += xk * wk[j]
        k += 1
    for j in range(n):
        out[j] += b[j]


@kernel
def _run(
    mean, std, clip, embed_w, embed_b, ln1_w, ln1_b, qkv_w, qkv_b, rel, proj_w, proj_b,
    ln2_w, ln2_b, fc_w, fc_b, out_w, out_b, lnf_w, lnf_b, head_w, head_b,
    keys, values, clock, rows, feed, reset, out,
):  # fmt: skip
    """Advance the state over ``rows`` (N, F) float32: before row i, ``reset[i]`` empties the
    cache (a new segment); ``feed[i]`` puts the row through the network (a ready row), else
    the cache is emptied (warm-up). ``out[i]``: the logit once T rows are held, else NaN.
    ``keys`` (L, D, T) and ``values`` (L, T, D) are rings over T slots."""
    n_layers, d, t_len = keys.shape
    heads = rel.shape[1]
    hd = d // heads
    ff = fc_w.shape[2]
    scale = np.float32(1.0 / math.sqrt(hd))
    z = np.empty(rows.shape[1], np.float32)
    h = np.empty(d, np.float32)
    a = np.empty(d, np.float32)
    qkv = np.empty(3 * d, np.float32)
    y = np.empty(d, np.float32)
    o = np.empty(d, np.float32)
    m = np.empty(ff, np.float32)
    score = np.empty(t_len, np.float32)  # by slot
    p = np.empty(t_len, np.float32)  # by age order, oldest first
    for i in range(rows.shape[0]):
        if reset[i] or not feed[i]:
            clock[0] = 0
            clock[1] = 0
        if not feed[i]:
            out[i] = np.nan
            continue
        for f in range(z.shape[0]):  # normalise and clip, as the window graph does
            v = (rows[i, f] - mean[f]) / std[f]
            z[f] = min(max(v, -clip), clip)
        _affine(z, embed_w, embed_b, h)
        slot = clock[0]
        held = min(clock[1] + 1, t_len)
        first = slot - held + 1 + t_len  # the oldest held row's slot, plus T (kept >= 0)
        for layer in range(n_layers):
            _layer_norm(h, ln1_w[layer], ln1_b[layer], a)
            _affine(a, qkv_w[layer], qkv_b[layer], qkv)
            for j in range(d):
                keys[layer, j, slot] = qkv[d + j]
                values[layer, slot, j] = qkv[2 * d + j]
            for head in range(heads):
                base = head * hd
                for s in range(t_len):  # q . k for every slot: ascending e, across slots
                    score[s] = np.float32(0.0)
                for e in range(hd):
                    qe = qkv[base + e]
                    ke = keys[layer, base + e]
                    for s in range(t_len):
                        score[s] += qe * ke[s]
                top = np.float32(-np.inf)
                for c in range(held):  # oldest first; the row itself is at distance 0
                    p[c] = score[(first + c) % t_len] * scale + rel[layer, head, held - 1 - c]
                    top = max(top, p[c])
                total = np.float32(0.0)
                for c in range(held):
                    p[c] = np.float32(math.exp(p[c] - top))
                    total += p[c]
                for e in range(hd):
                    y[base + e] = np.float32(0.0)
                for c in range(held):
                    weight = p[c] / total
                    vs = values[layer, (first + c) % t_len]
                    for e in range(hd):
                        y[base + e] += weight * vs[base + e]
            _affine(y, proj_w[layer], proj_b[layer], o)
            for j in range(d):
                h[j] += o[j]
            _layer_norm(h, ln2_w[layer], ln2_b[layer], a)
            _affine(a, fc_w[layer], fc_b[layer], m)
            for j in range(ff):  # ReLU
                m[j] = max(m[j], np.float32(0.0))
            _affine(m, out_w[layer], out_b[layer], o)
            for j in range(d):
                h[j] += o[j]
        clock[0] = (slot + 1) % t_len
        clock[1] = held
        if held < t_len:
            out[i] = np.nan
            continue
        _layer_norm(h, lnf_w, lnf_b, a)
        acc = np.float32(0.0)
        for j in range(d):
            acc += a[j] * head_w[j]
        out[i] = acc + head_b[0]


def _plain(row: np.ndarray) -> bool:
    """A row of the type the fast path was compiled for: (1, F) float32, C-contiguous and
    writable (numba types a read-only array differently). The state's arrays are always so:
    :meth:`CausalNet.state`, :meth:`CausalState.copy` and the stream context's restore make
    them."""
    flags = row.flags
    return flags.c_contiguous and flags.writeable and row.dtype == np.float32 and row.ndim == 2


@dataclass
class CausalState:
    """What the network remembers between rows: the caches and the clock."""

    keys: np.ndarray  # (L, D, T) float32: each layer's keys of the last T rows, by slot
    values: np.ndarray  # (L, T, D) float32: their values
    clock: np.ndarray  # int64 [next slot, rows held]

    def copy(self) -> CausalState:
        return CausalState(self.keys.copy(), self.values.copy(), self.clock.copy())

    @property
    def held(self) -> int:
        return int(self.clock[1])


class CausalNet:
    """The causal TFA's weights and its compiled step: ``run(state, rows, ...) -> logits``.

    ``weights``: name -> float32 array (:data:`WEIGHTS`); ``seq_len``, ``nhead``: T and H;
    ``clip``: the normalised-feature clip."""

    def __init__(self, weights: dict[str, np.ndarray], seq_len: int, nhead: int, clip: float):
        self.weights = {k: np.ascontiguousarray(weights[k], dtype=np.float32) for k in WEIGHTS}
        self.seq_len, self.nhead, self.clip = int(seq_len), int(nhead), float(clip)
        self.num_layers, self.d_model = self.weights["qkv_w"].shape[:2]
        self.features = self.weights["mean"].shape[0]
        self._args = tuple(self.weights[k] for k in WEIGHTS)
        self._args = self._args[:2] + (np.float32(self.clip),) + self._args[2:]
        # one row at a time (the stream context): the compiled function called without
        # numba's per-call type dispatch, which measured about as long as the step itself
        # with this many arguments (the types are fixed by now); the audit steps one net from
        # several threads, so each call has its own one-element buffers
        self._entry = None

    @property
    def context_rows(self) -> int:
        return context_rows(self.num_layers, self.seq_len)

    def state(self) -> CausalState:
        """An empty state (nothing held)."""
        layers, t, d = self.num_layers, self.seq_len, self.d_model
        return CausalState(
            np.zeros((layers, d, t), np.float32),
            np.zeros((layers, t, d), np.float32),
            np.zeros(2, np.int64),
        )

    def run(
        self,
        state: CausalState,
        rows: np.ndarray,
        feed: np.ndarray | None = None,
        reset: np.ndarray | None = None,
    ) -> np.ndarray:
        """(N,) float32 logits of ``rows`` (N, F), advancing ``state`` in place; NaN before T
        rows are held. ``feed`` (default all): rows that enter the network (False: a row in
        warm-up, which empties the state); ``reset`` (default none): rows that start a
        segment."""
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        n = len(rows)
        feed = np.ones(n, np.bool_) if feed is None else np.ascontiguousarray(feed, np.bool_)
        reset = np.zeros(n, np.bool_) if reset is None else np.ascontiguousarray(reset, np.bool_)
        out = np.empty(n, np.float32)
        _run(*self._args, state.keys, state.values, state.clock, rows, feed, reset, out)
        return out

    def step(self, state: CausalState, row: np.ndarray, ready: bool, reset: bool) -> np.float32:
        """The logit of one feature row (1, F) float32 C-contiguous and writable (NaN before T
        rows are held), advancing ``state``: :meth:`run` on one row, the same compiled code."""
        feed, new = np.array([ready], np.bool_), np.array([reset], np.bool_)
        out = np.empty(1, np.float32)
        args = (*self._args, state.keys, state.values, state.clock, row, feed, new, out)
        if self._entry is not None and _plain(row):
            self._entry(*args)
        else:
            _run(*args)  # dispatched: compiled or loaded, every type checked
            if _plain(row):
                self._entry = _run.overloads[tuple(_run.typeof_pyval(a) for a in args)].entry_point
        return out[0]

    def series(
        self,
        rows: np.ndarray,
        ready: np.ndarray,
        segment: np.ndarray,
        state: CausalState | None = None,
        before: int | None = None,
    ) -> np.ndarray:
        """(N,) float32 logits over a series: a segment change resets, a row in warm-up is not
        fed; NaN where fewer than T ready rows are held (the window rule,
        ``sentio.model.windows.valid_windows``). From an empty state, or carrying ``state`` on
        (advanced in place) from a row of segment ``before``."""
        segment = np.asarray(segment, dtype=np.int64)
        first = state is None or (before is not None and len(segment) and segment[0] != before)
        reset = np.r_[bool(first), segment[1:] != segment[:-1]][: len(segment)]
        return self.run(self.state() if state is None else state, rows, ready, reset)


__all__ = ["WEIGHTS", "CausalNet", "CausalState", "context_rows"]
