"""Feature engine speed: batch on one and two threads, stream, and the first use of a new
process (numba compiling or loading its kernels), side by side with peers.

Workload: the 55-feature minimal spec (32 EMA, 10 RSI, 11 ZWIN of logret, close, logret) on a
seeded random walk of one-minute bars (prices near 100, times on real NYSE sessions).

Peers, each computing the same set (32 EMA + 10 RSI + 11 rolling z-scores of logret):
- batch: TA-Lib's EMA and RSI over the arrays, plus a numpy cumulative-sum z-score;
- stream: TA-Lib's stream API (``talib.stream``: the last value from the recent history, here
  the last 400 bars) with numpy z-scores over the window, and talipp's incremental indicators
  (EMA, RSI, and SMA + StdDev for the z-score).
The peers run in float64 without the original engine's float32 semantics; the point is cost,
not equality (tests/features/test_oracles.py checks equality where the definitions agree).
Sentio's stream is timed on ``update(Bar)``, the calendar lookup of the bar time included.

First use: seconds from a new process's start (imports included) to its first batch and stream
row, with an empty numba cache (it compiles), with the cache a previous process left, and
after the shipped warm-up step (``python -m sentio.features.warm``, itself timed), each in a
cache folder of its own (``NUMBA_CACHE_DIR``).

Per op: the spec's EMA, RSI and ZWIN features each alone (an engine of that op's features; its
CPU includes the bar header every engine computes) against the peer's part for them.

Run: ``.venv/bin/python bench/features.py [--bars 1000000]``. Prints three tables, the machine
and its load (a shared machine's other tenants slow every figure: the fastest of repeats is the
least disturbed).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from common import print_machine, print_table, timed

from sentio.core.domain import Bar
from sentio.data import sessions_from
from sentio.features import FeatureEngine, from_arrays, load_spec, parse_spec
from sentio.features.parallel import run_batch

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


def talib_ema(close: np.ndarray) -> None:
    import talib

    for p in spec_windows()[0]:
        talib.EMA(close, p)


def talib_rsi(close: np.ndarray) -> None:
    import talib

    for p in spec_windows()[1]:
        talib.RSI(close, p)


def numpy_zscores(close: np.ndarray) -> None:
    logret = np.r_[0.0, np.diff(np.log(close))]
    s1, s2 = np.cumsum(np.r_[0.0, logret]), np.cumsum(np.r_[0.0, logret * logret])
    for w in spec_windows()[2]:
        mu = (s1[w:] - s1[:-w]) / w
        sd = np.sqrt(np.maximum((s2[w:] - s2[:-w]) / w - mu * mu, 0))
        np.divide(logret[w - 1 :] - mu, sd, out=np.zeros_like(mu), where=sd > 1e-8)


def talib_batch(close: np.ndarray) -> None:
    talib_ema(close)
    talib_rsi(close)
    numpy_zscores(close)


def one_op(op: str) -> FeatureEngine:
    """An engine of the spec's features of one op only (one thread)."""
    entries = [
        {"name": f.name, "op": f.op.name, "source": f.source, **f.params}
        for f in load_spec(SPEC).features
        if f.op.name == op
    ]
    return FeatureEngine(parse_spec({"features": entries}, origin=f"{SPEC} {op}"), threads=1)


def cpu_fastest(fn, repeats: int = 7) -> float:
    """Fastest CPU seconds of this process over ``repeats`` runs of a one-thread ``fn``."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def thread_cpu(engine: FeatureEngine, data, threads: int, repeats: int = 7) -> tuple[float, float]:
    """(busiest thread, all threads) CPU seconds of the batch, from the fastest of ``repeats``
    batches: the busiest thread's is the batch's wall time on as many free cores, which a
    shared machine's wall clock cannot show (each batch writes a fresh output array, as
    ``engine.batch`` does)."""
    p, n = engine.program, len(data)

    def once() -> list[float]:
        values = np.empty((n, len(p.names)), dtype=np.float32)
        counters = np.empty((n, 2), dtype=np.int64)
        pad = np.float32(engine.spec.pad_value)
        return run_batch(
            p, p.init.copy(), data.rows, data.segment, values, counters, engine.spec.emit_from,
            pad, engine.compat, threads=threads,
        )  # fmt: skip

    once()
    fastest = min((once() for _ in range(repeats)), key=max)
    return max(fastest), sum(fastest)


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


FIRST_RESULT = (
    "import time; t = time.perf_counter();"
    "import numpy as np; from sentio.features import FeatureEngine, from_arrays;"
    "c = 100 + np.sin(np.arange(500.0)); e = FeatureEngine('{spec}');"
    "e.batch(from_arrays(c, c, c, c, c)); s = e.stream(); s.update_row(np.r_[c[:5], 0, -1], 0);"
    "print(time.perf_counter() - t)"
)


def first_use() -> dict[str, float]:
    """Seconds to the first features of a new process: with an empty numba cache, with the
    cache the previous process left, after the warm-up step; and the warm-up step's own
    seconds (the whole process)."""
    code = FIRST_RESULT.format(spec=SPEC)  # one driver holds every op, whatever the spec
    with tempfile.TemporaryDirectory() as cold, tempfile.TemporaryDirectory() as warmed:

        def run(cache: str, *args: str) -> float:
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, *args],
                env=dict(os.environ, NUMBA_CACHE_DIR=cache),
                capture_output=True,
                text=True,
                check=True,
            )
            return float(done.stdout) if args[0] == "-c" else time.perf_counter() - start

        empty = run(cold, "-c", code)
        reused = run(cold, "-c", code)
        step = run(warmed, "-m", "sentio.features.warm")
        after = run(warmed, "-c", code)
    return {"empty": empty, "reused": reused, "step": step, "after": after}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000, help="bars for the batch rows")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    bars = random_walk(args.bars)
    data = from_arrays(*(bars[k] for k in FIELDS), ts=bars["ts"])
    batch = {
        threads: timed(lambda e=FeatureEngine(SPEC, threads=threads): e.batch(data))
        for threads in (1, 2)
    }
    peer_batch, peer_batch_med = timed(lambda: talib_batch(bars["close"]))
    cpu = {threads: thread_cpu(FeatureEngine(SPEC), data, threads) for threads in (1, 2)}
    peer_cpu = cpu_fastest(lambda: talib_batch(bars["close"]))
    close = bars["close"]
    per_op = [
        (f"{len(one_op(op).program.names)} {op}", thread_cpu(one_op(op), data, 1)[0], peer,
         cpu_fastest(lambda fn=fn: fn(close)))
        for op, peer, fn in (
            ("EMA", "TA-Lib EMA", talib_ema),
            ("RSI", "TA-Lib RSI", talib_rsi),
            ("ZWIN", "numpy z-scores", numpy_zscores),
        )
    ]  # fmt: skip
    engine = FeatureEngine(SPEC)
    ours_mean, ours_p99 = stream_sentio(bars, engine)
    talib_mean, talib_p99 = stream_talib(bars["close"])
    talipp_mean, talipp_p99 = stream_talipp(bars["close"])
    first = first_use()

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
    talib = "TA-Lib + numpy"
    table = [("measure", "work", "sentio", "peer", "peer time", "sentio / peer")]
    for threads, (fastest, median) in batch.items():
        label = f"batch, {threads} thread{'s' if threads > 1 else ''}"
        table.append(row(f"{label}, fastest of 7", n, fastest, talib, peer_batch, "s", 3))
        table.append(row(f"{label}, median of 7", n, median, talib, peer_batch_med, "s", 3))
    for threads, (busiest, _) in cpu.items():
        label = f"batch, {threads} thread{'s' if threads > 1 else ''}, busiest thread's CPU"
        table.append(row(label, n, busiest, f"{talib} (CPU)", peer_cpu, "s", 3))
    table += [
        row("stream update, mean", "1 bar", ours_mean, "TA-Lib stream", talib_mean, "us", 1),
        row("stream update, p99", "1 bar", ours_p99, "TA-Lib stream", talib_p99, "us", 1),
        row("stream update, mean", "1 bar", ours_mean, "talipp", talipp_mean, "us", 1),
        row("stream update, p99", "1 bar", ours_p99, "talipp", talipp_p99, "us", 1),
    ]
    print_table(table[0], table[1:])
    print()
    print_table(
        ("one op alone, 1 thread, CPU seconds (the bar header included)", "sentio", "peer",
         "peer time", "sentio / peer"),
        [(label, f"{ours:.3f} s", peer, f"{theirs:.3f} s", f"{ours / theirs:.3g}x")
         for label, ours, peer, theirs in per_op],
    )  # fmt: skip
    print()
    print_table(
        ("first use: a new process to its first features (imports included)", "seconds"),
        [
            ("empty numba cache (numba compiles the driver)", f"{first['empty']:.2f}"),
            ("cache left by the previous process", f"{first['reused']:.2f}"),
            ("after `python -m sentio.features.warm`", f"{first['after']:.2f}"),
            ("the warm-up step itself (a whole process)", f"{first['step']:.2f}"),
        ],
    )
    print(
        f"\n(two threads' CPU in all: {cpu[2][1]:.3f} s, {cpu[2][1] / cpu[1][1]:.2f}x one's; "
        f"goals: batch <= 1.0x TA-Lib + numpy, stream mean <= 10 us; load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on "
        f"{len(os.sched_getaffinity(0))} CPUs)"
    )
    print_machine()


if __name__ == "__main__":
    main()
