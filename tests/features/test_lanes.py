"""EMA, RSI and ZWIN run as SIMD lanes over blocks of rows (program.py): states gathered per
block, a steady-state loop across features (EMA, RSI) or across rows (ZWIN), rows where a
feature still seeds taken one feature at a time, ZWIN's ring slot advanced a row at a time.

Oracle: the formulas of docs/ops.md restated here in numpy float32 scalars, one bar at a time
(no blocks, no lanes, rings indexed by i - w), on inputs chosen to hit every addressing case:
features of one op reading different sources with other ops between their columns ("mixed"),
or one source and adjacent columns in runs wider than the 8 SIMD lanes ("adjacent"); windows
of 1 to 300 (shorter than, equal to and longer than a 128-row block); segment changes inside a
block and on a block edge, a segment shorter than every window; NaN and infinite highs; the
features split between two threads anywhere (runs of one op cut too). The golden files prove
the same formulas against the original C++ engine on real bars.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sentio.features import FeatureEngine, from_arrays, parse_spec
from sentio.features.parallel import run_batch

F32 = np.float32
MIXED = {
    "EMA": (("open", 1), ("close", 5), ("low", 300), ("close", 128)),
    "RSI": (("high", 2), ("close", 14), ("volume", 140), ("close", 127)),
    "ZWIN": (("close", 3), ("volume", 128), ("close", 130), ("high", 300), ("low", 1)),
}
WINDOWS = (1, 2, 3, 5, 14, 40, 127, 128, 129, 200, 300)  # 11 a run: wider than 8 lanes
ADJACENT = {op: tuple(("high", w) for w in WINDOWS) for op in ("EMA", "RSI", "ZWIN")}
N = 2_000
SEGMENTS = (77, 77 + 128 * 3, 77 + 128 * 3 + 20, 1_200, 1_280)  # inside, edge, short
NON_FINITE = {300: np.nan, 301: np.inf, 900: -np.inf, 1_500: np.nan}  # rows of `high`


def spec_and_names(layout: str):
    """The spec and (op, source, window, name) of each feature under test."""
    entries, names = [], []
    for op, features in (MIXED if layout == "mixed" else ADJACENT).items():
        for source, window in features:
            name = f"{op}_{source}_{window}"
            entries.append({"name": name, "op": op, "source": source, "window": window})
            if layout == "mixed":  # another op's column between two of this run's
                entries.append({"name": f"sma_{name}", "op": "SMA", "source": "close", "window": 3})
            names.append((op, source, window, name))
    return parse_spec({"features": entries}, origin=layout), names


def ema(x, w):
    alpha, e, out = F32(2) / F32(w + 1), F32(0), []
    for i, v in enumerate(x):
        e = v if i == 0 else alpha * v + (F32(1) - alpha) * e
        out.append(e)
    return out


def rsi(x, p):
    prev = ru = rd = F32(0)
    out = []
    for i, v in enumerate(x):
        y = F32(0)
        if i > 0:
            d = v - prev
            up, down = (F32(0) if d < 0 else d), (F32(0) if -d < 0 else -d)
            if i < p:
                ru, rd = ru + up, rd + down
            elif i == p:
                ru, rd = (ru + up) / F32(p), (rd + down) / F32(p)
            else:
                ru = (ru * F32(p - 1) + up) / F32(p)
                rd = (rd * F32(p - 1) + down) / F32(p)
                rs = ru / rd if rd > F32(1e-12) else F32(0)
                y = F32(100) - F32(100) / (F32(1) + rs)
        prev = v
        out.append(y)
    return out


def zwin(x, w):
    sums, squares, out = [0.0], [0.0], []  # prefix sums before row 0, after each row
    for i, v in enumerate(x):
        sums.append(sums[-1] + float(v))
        squares.append(squares[-1] + float(v * v))  # the square in float32, summed in double
        z = F32(0)
        if i >= w:
            mu = (sums[-1] - sums[-1 - w]) / w
            var = (squares[-1] - squares[-1 - w]) / w - mu * mu
            var = var if var > 0.0 else 0.0  # a NaN variance counts as none, as in C++
            sd = F32(math.sqrt(var))
            if sd > F32(1e-8):
                z = F32((float(v) - mu) / float(sd))
        out.append(z)
    return out


@pytest.fixture(scope="module")
def bars():
    rng = np.random.default_rng(5)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, N)))
    open_ = close * (1 + rng.normal(0, 2e-4, N))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 5e-4, N)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 5e-4, N)))
    volume = rng.integers(0, 50_000, N) + 0.75  # the engine floors volume, as the original did
    for row, value in NON_FINITE.items():
        high[row] = value
    segment = np.searchsorted(np.array(SEGMENTS), np.arange(N), side="right")
    fields = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
    return fields, segment


def expected_columns(fields, names):
    sources = {k: v.astype(np.float32) for k, v in fields.items()}
    sources["volume"] = np.floor(fields["volume"]).astype(np.float32)
    cuts = [0, *SEGMENTS, N]
    formulas = {"EMA": ema, "RSI": rsi, "ZWIN": zwin}
    with np.errstate(all="ignore"):  # NaN and inf move through the float32 steps as in C++
        for op, source, window, name in names:
            parts = [
                formulas[op](list(sources[source][a:b]), window)
                for a, b in zip(cuts[:-1], cuts[1:], strict=True)
            ]
            yield name, np.array([v for part in parts for v in part], dtype=np.float32)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("layout", ["mixed", "adjacent"])
def test_lanes_equal_the_formulas_bar_by_bar(bars, layout, threads):
    fields, segment = bars
    spec, names = spec_and_names(layout)
    data = from_arrays(*(fields[k] for k in ("open", "high", "low", "close", "volume")),
                       segment=segment)  # fmt: skip
    program = FeatureEngine(spec).program
    values = np.empty((N, len(program.names)), dtype=np.float32)
    counters = np.empty((N, 2), dtype=np.int64)
    # min_rows=1: two threads even on 2,000 rows; the cost split cuts runs of one op
    run_batch(program, program.init.copy(), data.rows, data.segment, values, counters, 0,
              F32(0), False, threads=threads, min_rows=1)  # fmt: skip
    for name, expected in expected_columns(fields, names):
        column = values[:, program.names.index(name)]
        mismatch = np.flatnonzero(column.view(np.uint32) != expected.view(np.uint32))
        assert mismatch.size == 0, f"{name}: first differing rows {mismatch[:5]}"
    assert np.isnan(values).any()  # the non-finite highs reached some feature
