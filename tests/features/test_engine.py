"""One engine, two drivers: stream == batch bit for bit, no look-ahead, warm-up as declared,
segments restart, state survives a save and restore.

The oracle for stream == batch and prefix is the engine itself driven the other way: the test
proves the two drivers agree at every bar (docs/architecture.md section 4). Declared warm-ups are
checked against hand computations from the ops table (docs/ops.md).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from sentio.core.domain import Bar
from sentio.core.errors import SpecError, StateError
from sentio.data import import_files, sessions_from
from sentio.features import FeatureEngine, StreamState, from_arrays, parse_spec
from sentio.features.checks import run_checks, same_bits, stream_rows, warmup_deviation
from tests.conftest import SHARED_DATA, real_file
from tests.features.all_ops import all_ops_spec

REAL_FILES = [
    "polygon/TQQQ_RTH_NH.csv",
    "polygon/SQQQ_RTH_NH.csv",
    "polygon/SPY_RTH_NH.csv",
    "polygon/QQQ_RTH_NH_2025-08-08_2025-09-12.csv",
    "ibkr/QQQ_1min.csv",
    "ibkr/QQQ_5min.csv",
    "ibkr/SPY_1min.csv",
    "ibkr/SPY_5min.csv",
    "ibkr/SQQQ_5min.csv",
    "ibkr/TQQQ_5min.csv",
    "lse/QQQ_1min.parquet",
    "lse/SPY_1min.parquet",
]


@pytest.fixture(scope="module")
def engine():
    return FeatureEngine(all_ops_spec())


def session_times(n: int, start: str = "2024-01-02") -> np.ndarray:
    """Bar starts of n one-minute bars over consecutive NYSE sessions (from 09:30)."""
    sessions = sessions_from(start, n // 210 + 2)
    ts = [
        np.arange(o, c, 60_000_000_000)
        for o, c in zip(sessions.open_ns, sessions.close_ns, strict=True)
    ]
    return np.concatenate(ts)[:n]


def series(close, volume=None, ts=True, segment=None):
    close = np.asarray(close, dtype=np.float64)
    volume = np.full(len(close), 1000.0) if volume is None else volume
    times = session_times(len(close)) if ts else None
    return from_arrays(close, close, close, close, volume, ts=times, segment=segment)


def random_walk(n: int, seed: int):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    high = close * (1 + np.abs(rng.normal(0, 5e-4, n)))
    low = close * (1 - np.abs(rng.normal(0, 5e-4, n)))
    volume = rng.integers(0, 50_000, n).astype(np.float64)
    return close, high, low, volume


ADVERSARIAL = {
    "constant": lambda: series(np.full(2000, 100.0)),
    "one_spike": lambda: series(np.where(np.arange(2000) == 700, 1e6, 100.0)),
    "one_dip": lambda: series(np.where(np.arange(2000) == 700, 1e-3, 100.0)),
    "zero_volume": lambda: series(100 + np.sin(np.arange(2000) / 9), np.zeros(2000)),
    "price_exactly_zero": lambda: series(np.where(np.arange(2000) % 500 == 3, 0.0, 50.0)),
    "no_clock": lambda: series(100 + np.sin(np.arange(500) / 5), ts=False),
}


@pytest.mark.parametrize("case", sorted(ADVERSARIAL))
def test_stream_equals_batch_on_adversarial_series(case, engine):
    data = ADVERSARIAL[case]()
    if not data.has_clock:
        engine = FeatureEngine(
            parse_spec(
                {
                    "features": [
                        e
                        for e in all_ops_spec().raw["features"]
                        if e["op"] not in ("VWAP_DIST", "MINUTES_SINCE_OPEN", "REL_VOLUME")
                    ]
                }
            )
        )
    batch = engine.batch(data)
    assert same_bits(stream_rows(engine, data), batch).all()
    compat = FeatureEngine(engine.spec, compat=True)
    assert same_bits(stream_rows(compat, data), compat.batch(data)).all()


def test_very_long_series_stream_equals_batch_and_running_sums_do_not_drift(engine):
    n = 300_000
    close, high, low, volume = random_walk(n, seed=5)
    data = from_arrays(close, high, low, close, volume, ts=session_times(n))
    batch = engine.batch(data)
    assert same_bits(stream_rows(engine, data), batch).all()
    # VOLATILITY and SMA keep add/subtract running sums; after 300k bars they still agree with
    # a fresh two-pass computation over the last window (oracle: numpy).
    names = engine.names
    c32 = close.astype(np.float32).astype(np.float64)
    before = c32[-21:-1]  # VOLATILITY(w) at the last row: the w bars before it (w = 20, 3)
    assert batch[-1, names.index("VOLATILITY_0_close")] == pytest.approx(before.std(), rel=1e-4)
    assert batch[-1, names.index("VOLATILITY_1_close")] == pytest.approx(
        before[-3:].std(), rel=1e-4
    )
    assert batch[-1, names.index("SMA_0_close")] == pytest.approx(c32[-20:].mean(), rel=1e-6)


@pytest.mark.parametrize("relative", REAL_FILES)
def test_every_check_passes_on_every_real_file(relative, engine):
    bars, _ = import_files([real_file(relative)])
    results = run_checks(engine, bars_input(bars), samples=10, offsets=(1, 97, 1500))
    failed = [r for r in results if not r.passed]
    assert not failed, failed


def bars_input(bars):
    from sentio.features.inputs import as_input

    return as_input(bars)


def test_real_file_list_is_complete():
    if not SHARED_DATA.exists():
        pytest.skip(f"real data not available: {SHARED_DATA} is absent")
    present = sorted(
        str(p.relative_to(SHARED_DATA))
        for p in SHARED_DATA.rglob("*")
        if p.suffix in (".csv", ".parquet")
    )
    assert present == sorted(REAL_FILES)


def test_prefix_rows_equal_full_rows_at_random_ends(engine):
    close, high, low, volume = random_walk(3000, seed=9)
    data = from_arrays(close, high, low, close, volume, ts=session_times(3000))
    full = engine.batch(data)
    for t in np.random.default_rng(3).integers(0, 3000, 25):
        assert same_bits(engine.batch(data.slice(0, t + 1))[-1], full[t]).all()


def test_later_start_agrees_after_declared_warmup_and_not_before(engine, synthetic_qqq):
    from sentio.features.inputs import as_input

    data = as_input(synthetic_qqq)
    full = engine.batch(data)
    worst, tol, _ = warmup_deviation(engine, data, full, 400)
    assert (worst <= tol).all(), [
        (engine.names[f], worst[f], tol[f]) for f in np.flatnonzero(worst > tol)
    ]
    # the tolerance has teeth: before their warm-up, seed-dependent features are off by more
    later = engine.compute(data.slice(400, len(data)))
    for name in ("EMA_0_close", "RSI_0_close", "ADX_0_None", "MACD_SIGNAL_0_close"):
        f = engine.names.index(name)
        first = int(later.valid_from[0, f])  # row index within the later series
        early = np.abs(full[400 : 400 + first // 2, f] - later.values[: first // 2, f]).max()
        assert early > tol[f], name


def test_declared_warmups_match_the_ops_table(synthetic_qqq):
    spec = parse_spec(
        {
            "features": [
                {"name": "z", "op": "ZWIN", "source": "logret", "window": 20},
                {"name": "e", "op": "EMA", "window": 20},
                {"name": "r", "op": "RSI", "window": 14},
                {"name": "a", "op": "ADX", "window": 14},
                {"name": "v", "op": "VWAP_DIST"},
                {"name": "rv", "op": "REL_VOLUME", "window": 3},
                {"name": "obv", "op": "OBV"},
            ]
        }
    )
    frame = FeatureEngine(spec).compute(synthetic_qqq)
    (valid,) = frame.valid_from
    # ZWIN: first window of logrets 1..20; EMA: seed weight (19/21)^k < 1e-3 from k = 69;
    # RSI: seed at row 14, then (13/14)^k < 1e-3 from k = 94; ADX: first value at 2p-1 = 27,
    # then two Wilder stages, (k+1)(13/14)^k < 1e-3 from k = 162; VWAP: the first bar is a
    # 09:30 open; REL_VOLUME(3): the 4th session's first bar.
    assert (19 / 21) ** 69 > 1e-3 > (19 / 21) ** 70
    assert (13 / 14) ** 93 > 1e-3 > (13 / 14) ** 94
    assert 162 * (13 / 14) ** 161 > 1e-3 > 163 * (13 / 14) ** 162
    assert valid.tolist() == [20, 70, 14 + 94, 27 + 162, 0, 3 * 390, 1]
    assert frame.ready.argmax() == 3 * 390 and not frame.ready[: 3 * 390].any()


def test_segments_restart_every_feature(engine):
    close, high, low, volume = random_walk(2400, seed=4)
    ts = session_times(2400)
    segment = np.repeat([0, 1, 2], [700, 1000, 700])
    whole = engine.compute(from_arrays(close, high, low, close, volume, ts=ts, segment=segment))
    for s, (a, b) in enumerate([(0, 700), (700, 1700), (1700, 2400)]):
        alone = engine.batch(
            from_arrays(close[a:b], high[a:b], low[a:b], close[a:b], volume[a:b], ts=ts[a:b])
        )
        assert same_bits(whole.values[a:b], alone).all()
        np.testing.assert_array_equal(
            np.where(whole.valid_from[s] >= 0, whole.valid_from[s] - a, -1),
            engine.compute(
                from_arrays(close[a:b], high[a:b], low[a:b], close[a:b], volume[a:b], ts=ts[a:b])
            ).valid_from[0],
        )
    assert whole.segment_starts.tolist() == [0, 700, 1700]


def test_catch_up_between_updates_leaves_the_same_bits(engine):
    """Bar-by-bar updates, a bulk catch-up, updates again, a catch-up across a segment change:
    the rows that follow equal the batch's, and a copy continues independently."""
    close, high, low, volume = random_walk(2400, seed=5)
    ts = session_times(2400)
    segment = np.repeat([0, 1], [1500, 900])
    data = from_arrays(close, high, low, close, volume, ts=ts, segment=segment)
    whole = engine.batch(data)
    stream = engine.stream()
    for r in range(300):
        stream.update_row(data.rows[r], 0)
    stream.catch_up(data.slice(300, 1200))
    twin = stream.copy()
    rows = [stream.update_row(data.rows[r], 0) for r in range(1200, 1400)]
    assert same_bits(np.array(rows), whole[1200:1400]).all()
    stream.catch_up(data.slice(1400, 1600))  # crosses into segment 1 at row 1500
    rows = [stream.update_row(data.rows[r], 1) for r in range(1600, 2400)]
    assert same_bits(np.array(rows), whole[1600:]).all()
    rows = [twin.update_row(data.rows[r], 0) for r in range(1200, 1500)]
    assert same_bits(np.array(rows), whole[1200:1500]).all()


def test_compat_mode_pads_each_segment_like_the_original():
    raw = {
        "features": [{"name": "e", "op": "EMA", "window": 3}],
        "alignment_policy": {"emit_from_index": 5, "pad_value": -1.0},
    }
    engine = FeatureEngine(parse_spec(raw), compat=True)
    data = series(np.arange(1.0, 13.0), ts=False, segment=np.repeat([0, 1], 6))
    values = engine.batch(data)[:, 0]
    assert values.tolist()[:5] == [-1.0] * 5 and values[5] != -1.0
    assert values.tolist()[6:11] == [-1.0] * 5 and values[11] != -1.0
    assert (FeatureEngine(parse_spec(raw)).batch(data)[:, 0] != -1.0).all()


def test_stream_update_takes_bars_and_reports_readiness(synthetic_qqq):
    engine = FeatureEngine("intraday_default")
    frame = synthetic_qqq.frame.iloc[:800]
    batch = engine.compute(frame)
    stream = engine.stream()
    for r, row in enumerate(frame.itertuples()):
        out = stream.update(
            Bar(row.ts, row.open, row.high, row.low, row.close, row.volume, row.segment)
        )
        assert same_bits(out, batch.values[r]).all()
        ready = stream.ready
        valid = batch.valid_from[0]
        np.testing.assert_array_equal(ready, (valid >= 0) & (r >= valid))
    assert stream.rows_seen == 800


def test_clock_ops_refuse_bars_without_times():
    engine = FeatureEngine("intraday_default")
    with pytest.raises(SpecError, match="need bar times"):
        engine.batch(series(np.full(10, 1.0), ts=False))
    with pytest.raises(SpecError, match="need bar times"):
        engine.stream().update(Bar(None, 1.0, 1.0, 1.0, 1.0, 1.0))


def test_saved_state_is_json_and_refuses_another_engine(engine):
    data = series(100 + np.sin(np.arange(900) / 4))
    stream = engine.stream()
    stream_rows(engine, data, 0, 450, stream)
    text = stream.to_json()
    doc = json.loads(text)
    assert doc["spec_hash"] == engine.content_hash and doc["format"].startswith("sentio.")
    restored = StreamState.from_json(engine, text)
    assert same_bits(stream_rows(engine, data, 450, 900, restored), engine.batch(data)[450:]).all()
    with pytest.raises(StateError, match="belongs to spec"):
        StreamState.from_json(FeatureEngine("intraday_default"), text)
    with pytest.raises(StateError, match="compat"):
        StreamState.from_json(FeatureEngine(engine.spec, compat=True), text)
    damaged = dict(doc, state=doc["state"][:-8] + "AAAAAAA=")
    with pytest.raises(StateError, match="checksum"):
        StreamState.from_json(engine, json.dumps(damaged))
    with pytest.raises(StateError, match="not a saved feature state"):
        StreamState.from_json(engine, "{}")
