"""Property-based tests (hypothesis): on any finite positive bar series every op of the
registry gives finite values of the right shape, deterministically, equal in stream and batch."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentio.features import FeatureEngine, from_arrays
from sentio.features.checks import same_bits, stream_rows
from tests.features.all_ops import all_ops_spec
from tests.features.test_engine import session_times

ENGINE = FeatureEngine(all_ops_spec())
TIMES = session_times(400)


@st.composite
def bar_series(draw):
    n = draw(st.integers(min_value=1, max_value=400))
    price = st.floats(min_value=0.01, max_value=1e4, allow_nan=False, allow_infinity=False)
    closes = np.array(draw(st.lists(price, min_size=n + 1, max_size=n + 1)))
    wick = np.array(draw(st.lists(st.floats(0, 0.05), min_size=n, max_size=n)))
    volume = np.array(draw(st.lists(st.floats(0, 1e7), min_size=n, max_size=n)))
    open_, close = closes[:-1], closes[1:]
    high = np.maximum(open_, close) * (1 + wick)
    low = np.minimum(open_, close) * (1 - wick)
    return from_arrays(open_, high, low, close, volume, ts=TIMES[:n])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bar_series())
def test_any_positive_series_gives_finite_deterministic_equal_outputs(data):
    first = ENGINE.batch(data)
    assert first.shape == (len(data), len(ENGINE.names)) and first.dtype == np.float32
    assert np.isfinite(first).all()
    assert same_bits(ENGINE.batch(data), first).all()
    assert same_bits(stream_rows(ENGINE, data), first).all()
