"""Labels, windows and splits against hand computations (docs/model.md, "Samples")."""

from __future__ import annotations

import numpy as np
import pytest

from sentio.train import LabelSpec, SampleError, Samples, select_samples, split_by_session
from sentio.train.samples import label_bars, windows


def test_label_is_the_forward_log_return_and_never_crosses_sessions_or_segments():
    close = np.array([100.0, 100.5, 101.0, 100.0, 99.0, 99.5, 99.0, 98.0])
    session = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    segment = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    ret, ok = label_bars(close, segment, session, LabelSpec(horizon=2))
    # t=0 -> t=2, t=1 -> t=3 stay in session 0; t=2,3 would cross into session 1;
    # t=4 -> 6 crosses into segment 1; t=5 -> 7 too; t=6,7 run off the end.
    assert ok.tolist() == [True, True, False, False, False, False, False, False]
    assert ret[0] == pytest.approx(np.log(101.0 / 100.0)) and np.isnan(ret[2])


def test_select_counts_every_rule_and_windows_stay_valid():
    n = 60
    close = 100 * np.exp(np.cumsum(np.tile([3e-4, -2e-4, 5e-5], 20)))
    segment = np.repeat([0, 1], [35, 25])
    session = np.repeat([0, 1, 2], 20)
    ready = np.ones(n, dtype=bool)
    ready[:5] = False  # warm-up of segment 0
    ready[35:40] = False  # and of segment 1
    spec = LabelSpec(horizon=1, deadzone_bp=1.0)
    samples, report = select_samples(close, segment, session, ready, 4, spec)
    for t in samples.rows:
        window = np.arange(t - 3, t + 1)
        assert ready[window].all() and (segment[window] == segment[t]).all()
        assert session[t + 1] == session[t] and segment[t + 1] == segment[t]
    assert np.allclose(np.abs(samples.forward_return) > 1e-4, True)  # deadzone applied
    removed = sum(report.removed.values())
    assert report.samples == len(samples.rows) == n - removed
    assert report.positive == int(samples.labels.sum())
    # 5 bp moves survive a 1 bp deadzone only when |r| > 1 bp: the 0.5 bp steps do not
    assert report.removed["inside the deadzone (|r| <= 1 bp)"] > 0


def test_split_is_chronological_with_an_embargo_between_parts():
    rows = np.arange(0, 2000, 3)
    session = np.repeat(np.arange(20), 100)  # 70/15/15 of 20 sessions: 14, 3, 3
    samples = Samples(rows, np.zeros(len(rows), np.float32), np.zeros(len(rows)))
    split = split_by_session(samples, session, (0.7, 0.15, 0.15), embargo_bars=53)
    train, val, test = (samples.rows[p] for p in (split.train, split.validation, split.test))
    assert train.max() < val.min() and val.max() < test.min()
    assert val.min() - train.max() > 53 and test.min() - val.max() > 53
    assert set(session[train]) == set(range(14)) and set(session[test]) == set(range(17, 20))
    # train ends at row 1398; validation rows 1401, 1404, ..., 1449 are within 53 bars of it
    # (17 rows); likewise test rows 1701..1749 after validation's last row 1698
    assert split.embargoed == 2 * 17


def test_too_short_data_is_refused_with_the_minimum():
    samples = Samples(np.arange(50), np.zeros(50, np.float32), np.zeros(50))
    with pytest.raises(SampleError, match="needs at least 7"):
        split_by_session(samples, np.repeat(np.arange(5), 10), (0.7, 0.15, 0.15), 10)


def test_windows_are_gathered_per_batch_from_one_matrix():
    features = np.arange(40, dtype=np.float32).reshape(20, 2)
    batch = windows(features, np.array([5, 19]), 3)
    assert batch.shape == (2, 3, 2)
    assert (
        batch[0].tolist() == features[3:6].tolist() and batch[1].tolist() == features[17:].tolist()
    )
