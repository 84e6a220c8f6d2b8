"""Feature engine speed: batch, stream, and numba compile/cache, side by side with peers.

Workload: the 55-feature minimal spec (33 EMA, 10 RSI, 11 ZWIN of logret, close, logret) on a
seeded random walk of one-minute bars (prices near 100, times on real NYSE sessions).

Peers, each computing the same set (33 EMA + 10 RSI + 11 rolling z-scores of logret):
- batch: TA-Lib's EMA and RSI over the arrays, plus a numpy cumulative-sum z-score;
- stream: TA-Lib's stream API (``talib.stream``: the last value from the recent history, here
  the last 400 bars) with numpy z-scores over the window, and talipp's incremental indicators
  (EMA, RSI, and SMA + StdDev for the z-score).
The peers run in float64 without the original engine's float32 semantics; the point is cost,
not equality (tests/features/test_oracles.py checks equality where the definitions agree).
Sentio's stream is timed on ``update(Bar)``, the calendar lookup of the bar time included.

Run: ``.venv/bin/python bench/features.py [--bars 1000000]``. Prints one table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from common import print_table, timed

from sentio.core.domain import Bar
from sentio.data import sessions_from
from sentio.features import FeatureEngine, from_arrays, load_spec

SPEC = "feature_spec_55_minimal"
STREAM_BARS = 20_000
TALIPP_BARS = 3_000
HISTORY = 400  # bars handed to TA-Lib's stream functions per update
FIELDS = ("open", "high", "low", "close", "volume")


def random_walk(n: int, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 8e-4, n)))
    wick = np.abs(rng.normal(0, 4e-4, (2, n)))
    sessions = sessions_from("2001-01-02", n // 210 + 2)  # half days have 210 minutes
    spans = zip(sessions.open_ns, sessions.close_ns, strict=True)
    ts = np.concatenate([np.arange(o, c, 60_000_000_000) for o, c in spans])[:n]
    return {
        "open": close,
        "high": close * (1 + wick[0]),
        "low": close * (1 - wick[1]),
        "close": close,
        "volume": rng.integers(1_000, 90_000, n).astype(np.float64),
        "ts": ts,
    }


def spec_windows() -> tuple[list[int], list[int], list[int]]:
    by_op: dict[str, list[int]] = {"EMA": [], "RSI": [], "ZWIN": []}
    for feature in load_spec(SPEC).features:
        if feature.op.name in by_op:
            by_op[feature.op.name].append(int(feature.params["window"]))
    return by_op["EMA"], by_op["RSI"], by_op["ZWIN"]


def talib_batch(close: np.ndarray) -> None:
    import talib

    emas, rsis, zwins = spec_windows()
    for p in emas:
        talib.EMA(close, p)
    for p in rsis:
        talib.RSI(close, p)
    logret = np.r_[0.0, np.diff(np.log(close))]
    s1, s2 = np.cumsum(np.r_[0.0, logret]), np.cumsum(np.r_[0.0, logret * logret])
    for w in zwins:
        mu = (s1[w:] - s1[:-w]) / w
        sd = np.sqrt(np.maximum((s2[w:] - s2[:-w]) / w - mu * mu, 0))
        np.divide(logret[w - 1 :] - mu, sd, out=np.zeros_like(mu), where=sd > 1e-8)


def mean_p99_us(samples: list[float]) -> tuple[float, float]:
    arr = np.array(samples) * 1e6
    return float(arr.mean()), float(np.percentile(arr, 99))


def stream_sentio(bars: dict, engine: FeatureEngine) -> tuple[float, float]:
    stream, times = engine.stream(), []
    feed = [
        Bar(int(bars["ts"][i]), *(float(bars[k][i]) for k in FIELDS)) for i in range(STREAM_BARS)
    ]
    for bar in feed[:1000]:
        stream.update(bar)
    for bar in feed[1000:]:
        start = time.perf_counter()
        stream.update(bar)
        times.append(time.perf_counter() - start)
    return mean_p99_us(times)


def stream_talib(close: np.ndarray) -> tuple[float, float]:
    from talib import stream

    emas, rsis, zwins = spec_windows()
    times = []
    for i in range(HISTORY, STREAM_BARS):
        start = time.perf_counter()
        window = close[i - HISTORY : i + 1]
        for p in emas:
            stream.EMA(window, p)
        for p in rsis:
            stream.RSI(window, p)
        logret = np.diff(np.log(window[-101:]))
        for w in zwins:
            tail = logret[-w:]
            sd = tail.std()
            _ = (tail[-1] - tail.mean()) / sd if sd > 1e-8 else 0.0
        times.append(time.perf_counter() - start)
    return mean_p99_us(times)


def stream_talipp(close: np.ndarray) -> tuple[float, float]:
    from talipp.indicators import EMA, RSI, SMA, StdDev

    emas, rsis, zwins = spec_windows()
    indicators = [EMA(period=p) for p in emas] + [RSI(period=p) for p in rsis]
    zscores = [(SMA(period=w), StdDev(period=w)) for w in zwins]
    times, prev = [], close[0]
    for i in range(TALIPP_BARS):
        start = time.perf_counter()
        x = float(close[i])
        for indicator in indicators:
            indicator.add(x)
        r = float(np.log(x / prev)) if i else 0.0
        for mean, sd in zscores:
            mean.add(r)
            sd.add(r)
            m, s = mean[-1], sd[-1]
            _ = (r - m) / s if m is not None and s else 0.0
        prev = x
        times.append(time.perf_counter() - start)
    return mean_p99_us(times[500:])


COMPILE_SNIPPET = (
    "import time; t = time.perf_counter();"
    "import numpy as np; from sentio.features import FeatureEngine, from_arrays;"
    "c = 100 + np.sin(np.arange(500.0)); e = FeatureEngine('{spec}');"
    "e.batch(from_arrays(c, c, c, c, c)); s = e.stream(); s.update_row(np.r_[c[:5], 0, -1], 0);"
    "print(time.perf_counter() - t)"
)


def compile_times() -> tuple[float, float, int]:
    """Seconds to first features in a fresh process with an empty numba cache, then in a
    second process with that cache; and how many cache files the first one wrote."""
    code = COMPILE_SNIPPET.format(spec=SPEC)  # the step compiles every op, whatever the spec
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)

        def run() -> float:
            done = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            )
            return float(done.stdout)

        first = run()
        files = sum(len(names) for _, _, names in os.walk(cache))
        second = run()
    return first, second, files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000, help="bars for the batch rows")
    args = parser.parse_args()
    bars = random_walk(args.bars)
    engine = FeatureEngine(SPEC)
    data = from_arrays(*(bars[k] for k in FIELDS), ts=bars["ts"])
    ours_batch, ours_batch_med = timed(lambda: engine.batch(data))
    peer_batch, peer_batch_med = timed(lambda: talib_batch(bars["close"]))
    ours_mean, ours_p99 = stream_sentio(bars, engine)
    talib_mean, talib_p99 = stream_talib(bars["close"])
    talipp_mean, talipp_p99 = stream_talipp(bars["close"])
    first, second, files = compile_times()

    def row(measure, work, ours, peer, theirs, unit, digits):
        ratio = f"{ours / theirs:.3g}x"
        return (
            measure,
            work,
            f"{ours:.{digits}f} {unit}",
            peer,
            f"{theirs:.{digits}f} {unit}",
            ratio,
        )

    n = f"{args.bars:,} bars"
    table = [
        ("measure", "work", "sentio", "peer", "peer time", "sentio / peer"),
        row("batch, fastest of 7", n, ours_batch, "TA-Lib + numpy", peer_batch, "s", 3),
        row("batch, median of 7", n, ours_batch_med, "TA-Lib + numpy", peer_batch_med, "s", 3),
        row("stream update, mean", "1 bar", ours_mean, "TA-Lib stream", talib_mean, "us", 1),
        row("stream update, p99", "1 bar", ours_p99, "TA-Lib stream", talib_p99, "us", 1),
        row("stream update, mean", "1 bar", ours_mean, "talipp", talipp_mean, "us", 1),
        row("stream update, p99", "1 bar", ours_p99, "talipp", talipp_p99, "us", 1),
        row("first use (compile)", "new process", first, "cache reused", second, "s", 2),
    ]
    print_table(table[0], table[1:])
    print(
        f"(one thread; the first process wrote {files} numba cache files, the second reused "
        "them; goals: batch <= 0.5 s, stream mean <= 10 us)"
    )


if __name__ == "__main__":
    main()
