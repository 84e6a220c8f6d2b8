"""The fold schedule of a retraining policy, against a brute-force reading of its rule on real
NYSE sessions (holidays and half days included): every fold trains only on sessions before
the ones it trades, on exactly ``train_window`` of them, the traded sessions tile the rest of
the series once each, in order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentio.core.errors import OptionError
from sentio.data.trading_calendar import locate
from sentio.train.policy import RetrainPolicy, fold_schedule, sessions_of


def nyse_sessions(start: str, days: int) -> list[int]:
    """Session numbers of the NYSE days from ``start`` (10:00 New York each day)."""
    stamps = pd.date_range(start, periods=days, freq="D", tz="America/New_York") + pd.Timedelta(
        hours=10
    )
    inside, number, _, _ = locate(stamps.tz_convert("UTC").as_unit("ns").asi8)
    return sorted(set(number[inside].tolist()))


@given(
    window=st.integers(1, 40),
    every=st.integers(1, 20),
    shadow=st.integers(1, 6),
    days=st.integers(1, 200),
)
def test_folds_train_on_the_past_only_and_tile_the_rest(window, every, shadow, days):
    sessions = nyse_sessions("2024-11-01", days)  # Thanksgiving, Christmas, New Year inside
    policy = RetrainPolicy(train_window=window, retrain_every=every, shadow_sessions=shadow)
    folds = fold_schedule(sessions, policy)
    traded = []
    for k, fold in enumerate(folds):
        assert fold.number == k
        train = [s for s in sessions if fold.train[0] <= s <= fold.train[1]]
        gate = [s for s in sessions if fold.shadow[0] <= s <= fold.shadow[1]]
        trade = [s for s in sessions if fold.trade[0] <= s <= fold.trade[1]]
        assert len(train) == window and len(gate) == shadow and 1 <= len(trade) <= every
        assert max(train) < min(gate) and max(gate) < min(trade)  # the past only
        # the newest past: shadow sessions right before trading, training right before them
        assert sessions.index(min(trade)) == sessions.index(max(gate)) + 1
        assert sessions.index(min(gate)) == sessions.index(max(train)) + 1
        traded += trade
    assert traded == sessions[window + shadow :]  # every later session traded once, in order


def test_a_series_shorter_than_the_window_has_no_fold():
    assert fold_schedule(list(range(5)), RetrainPolicy(train_window=4, shadow_sessions=1)) == []


def test_the_schedule_does_not_depend_on_the_order_given():
    sessions = nyse_sessions("2025-01-02", 60)
    policy = RetrainPolicy(train_window=10, retrain_every=3)
    shuffled = list(np.random.default_rng(0).permutation(sessions))
    assert fold_schedule(shuffled, policy) == fold_schedule(sessions, policy)


@pytest.mark.parametrize("text", ["0", "-3", "5w", "", "d", "1.5d", "ten"])
def test_a_bad_span_names_its_flag(text):
    with pytest.raises(OptionError) as caught:
        sessions_of(text, "--train-window")
    assert caught.value.flag == "--train-window"


@pytest.mark.parametrize(("text", "sessions"), [("60d", 60), ("5", 5), ("3 sessions", 3)])
def test_a_span_is_sessions(text, sessions):
    assert sessions_of(text, "--train-window") == sessions
