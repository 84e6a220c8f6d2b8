"""The batch on several threads: the same bytes whatever the thread count, the split or the
callers running at once; the thread count read from the environment.

Oracles: the engine on one thread, and the stream driver (one row at a time, one thread),
whose equality with the single-thread batch test_engine.py and test_golden.py prove.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentio.core.errors import OptionError
from sentio.data import sessions_from
from sentio.features import FeatureEngine, from_arrays
from sentio.features import engine as engine_module
from sentio.features.checks import same_bits, stream_rows
from sentio.features.parallel import MIN_ROWS, feature_costs, feature_threads, run_batch, split
from sentio.features.program import run_part
from sentio.features.warm import warm
from tests.features.all_ops import all_ops_spec

N = 2 * MIN_ROWS + 1_234  # enough rows for two threads at the engine's own threshold


def market(n: int, seed: int, segments: tuple[int, ...] = ()):
    """n one-minute bars of a random walk on NYSE sessions; a new segment at each of
    ``segments``."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    high = close * (1 + np.abs(rng.normal(0, 5e-4, n)))
    low = close * (1 - np.abs(rng.normal(0, 5e-4, n)))
    volume = rng.integers(0, 50_000, n).astype(np.float64)
    days = sessions_from("2024-01-02", n // 210 + 2)
    spans = zip(days.open_ns, days.close_ns, strict=True)
    ts = np.concatenate([np.arange(o, c, 60_000_000_000) for o, c in spans])[:n]
    segment = np.searchsorted(np.array(segments, dtype=np.int64), np.arange(n), side="right")
    return from_arrays(close, high, low, close, volume, ts=ts, segment=segment)


@pytest.fixture(scope="module")
def bars():
    # segment changes inside a block, at a block edge and near the end
    return market(N, seed=21, segments=(5_000, 5_000 + 128 * 40, N - 300))


def run(engine: FeatureEngine, data, threads: int, min_rows: int = MIN_ROWS):
    """(values, counters, state after the last row) of ``engine`` on ``threads`` threads."""
    p, n = engine.program, len(data)
    values = np.empty((n, len(p.names)), dtype=np.float32)
    counters = np.empty((n, 2), dtype=np.int64)
    state = p.init.copy()
    run_batch(
        p,
        state,
        data.rows,
        data.segment,
        values,
        counters,
        engine.spec.emit_from,
        np.float32(engine.spec.pad_value),
        engine.compat,
        threads=threads,
        min_rows=min_rows,
    )
    return values, counters, state


@pytest.mark.parametrize("spec", ["feature_spec_55_minimal", "all_ops"])
@pytest.mark.parametrize("compat", [False, True])
def test_two_numba_threads_give_the_bytes_of_one(spec, compat, bars, monkeypatch):
    engine = FeatureEngine(all_ops_spec() if spec == "all_ops" else spec, compat=compat)
    monkeypatch.setenv("NUMBA_NUM_THREADS", "1")
    one = engine.compute(bars)
    one_state = engine._run(bars)[2]
    monkeypatch.setenv("NUMBA_NUM_THREADS", "2")
    two = engine.compute(bars)
    two_state = engine._run(bars)[2]
    assert one.values.tobytes() == two.values.tobytes()
    np.testing.assert_array_equal(one.valid_from, two.valid_from)
    assert one_state.tobytes() == two_state.tobytes()


@pytest.mark.parametrize("threads", [2, 3, 7])
def test_any_split_gives_the_bytes_of_one_thread(threads, bars):
    """Down to a few hundred rows a thread (min_rows=1), so every range of the all-ops spec
    meets the segment changes; counters and the state the stream continues from included."""
    engine = FeatureEngine(all_ops_spec())
    data = bars.slice(4_000, 6_000)  # holds the segment change at 5,000
    one = run(engine, data, threads=1)
    many = run(engine, data, threads=threads, min_rows=1)
    for a, b in zip(one, many, strict=True):
        assert a.tobytes() == b.tobytes()
    assert len(split(feature_costs(engine.program), threads)) == threads


def test_threaded_batch_equals_the_stream_bar_by_bar(bars):
    engine = FeatureEngine("feature_spec_55_minimal", threads=2)
    data = bars.slice(0, MIN_ROWS * 2 + 50)
    batch = engine.batch(data)
    streamed = stream_rows(engine, data)
    assert same_bits(streamed, batch).all()


def test_a_stream_continues_from_a_threaded_catch_up(bars):
    engine = FeatureEngine(all_ops_spec(), threads=2)
    whole = FeatureEngine(all_ops_spec(), threads=1).batch(bars)
    stream = engine.stream(bars.slice(0, N - 100))
    rows = [stream.update_row(bars.rows[r], int(bars.segment[r])) for r in range(N - 100, N)]
    assert same_bits(np.array(rows), whole[N - 100 :]).all()


def test_callers_on_several_threads_at_once_get_their_own_bytes(bars):
    """The audit runs catch-ups on worker threads at once: each batch, itself on two threads,
    equals the one-thread batch of its own slice."""
    engine = FeatureEngine("feature_spec_55_minimal", threads=2)
    single = FeatureEngine("feature_spec_55_minimal", threads=1)
    slices = [bars.slice(k * 300, k * 300 + 2 * MIN_ROWS + 10) for k in range(4)]
    results: list = [None] * len(slices)

    def work(k: int) -> None:
        results[k] = engine.batch(slices[k])

    workers = [threading.Thread(target=work, args=(k,)) for k in range(len(slices))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for k, data in enumerate(slices):
        assert results[k].tobytes() == single.batch(data).tobytes()


def test_a_short_batch_stays_on_the_callers_thread(monkeypatch):
    started = []
    real_start = threading.Thread.start

    def counting_start(self):
        started.append(self)
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    engine = FeatureEngine("feature_spec_55_minimal", threads=2)
    engine.batch(market(MIN_ROWS * 2 - 1, seed=3))
    assert started == []
    engine.batch(market(MIN_ROWS * 2, seed=3))
    assert len(started) == 1


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"NUMBA_NUM_THREADS": "1"}, 1),
        ({"NUMBA_NUM_THREADS": "3", "OMP_NUM_THREADS": "1"}, 3),
        ({"OMP_NUM_THREADS": "1"}, 1),  # a Ray worker not told otherwise
        ({"OMP_NUM_THREADS": "2,1"}, 2),  # OpenMP's list: one count per nesting level
        ({"NUMBA_NUM_THREADS": " ", "OMP_NUM_THREADS": "4"}, 4),
    ],
)
def test_thread_count_comes_from_the_environment(environ, expected):
    assert feature_threads(environ) == expected


def test_without_a_variable_the_thread_count_is_the_cpus_this_process_may_use():
    assert feature_threads({}) == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_thread_variable_is_one_line_naming_it(value):
    with pytest.raises(OptionError, match=r"^NUMBA_NUM_THREADS: .*got '"):
        feature_threads({"NUMBA_NUM_THREADS": value})


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_the_engine_refuses_a_thread_count_below_one(threads):
    with pytest.raises(OptionError, match="threads"):
        FeatureEngine("feature_spec_55_minimal", threads=threads)


def test_the_engine_asks_the_environment_at_each_batch(monkeypatch):
    asked = []
    real = engine_module.run_batch

    def spy(*args, **kwargs):
        asked.append(kwargs["threads"])
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_module, "run_batch", spy)
    engine = FeatureEngine("feature_spec_55_minimal")
    data = market(500, seed=1)
    for value in ("1", "5"):
        monkeypatch.setenv("NUMBA_NUM_THREADS", value)
        engine.batch(data)
    assert asked == [1, 5]


@given(
    costs=st.lists(st.floats(0.1, 50.0), min_size=1, max_size=60),
    parts=st.integers(1, 12),
)
def test_split_covers_every_feature_once_in_order(costs, parts):
    ranges = split(np.array(costs), parts)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(costs)
    assert all(a < b for a, b in ranges)
    assert all(ranges[i][1] == ranges[i + 1][0] for i in range(len(ranges) - 1))
    assert len(ranges) <= min(parts, len(costs))


def test_split_balances_the_55_feature_spec():
    """The EMAs, then the dearer RSIs and ZWINs: two halves within one feature's cost."""
    costs = feature_costs(FeatureEngine("feature_spec_55_minimal").program)
    (a, b), (c, d) = split(costs, 2)
    assert (a, d) == (0, 55) and b == c
    assert abs(costs[:b].sum() - costs[b:].sum()) <= costs.max()


def test_the_warm_up_step_leaves_the_driver_in_the_cache_it_names():
    """``python -m sentio.features.warm`` (the install targets run it): the folder it reports
    holds numba's index of the driver, which the next process loads instead of compiling."""
    result = warm()
    line = run_part.py_func.__code__.co_firstlineno  # numba names the index by it
    assert result.cache_dir is not None
    assert list(Path(result.cache_dir).glob(f"program.run_part-{line}.*.nbi"))
