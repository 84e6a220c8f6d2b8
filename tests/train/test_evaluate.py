"""Evaluation figures against brute-force and hand oracles."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sentio.train.evaluate import auc, brier, calibration, fit_logistic, log_loss, predict_logistic


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5)), min_size=2, max_size=40))
def test_auc_equals_the_pairwise_definition(pairs):
    y = np.array([float(a) for a, _ in pairs])
    s = np.array([float(b) for _, b in pairs])  # small integers: many ties
    pos, neg = s[y == 1], s[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        assert np.isnan(auc(y, s))
        return
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert auc(y, s) == wins / (len(pos) * len(neg))


def test_losses_by_hand():
    y = np.array([1.0, 0.0])
    p = np.array([0.8, 0.4])
    assert log_loss(y, p) == -(np.log(0.8) + np.log(0.6)) / 2
    assert brier(y, p) == (0.04 + 0.16) / 2
    table = calibration(y, p)
    assert [row["count"] for row in table if row["count"]] == [1, 1]


def test_logistic_regression_recovers_known_weights():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20_000, 2))
    p = 1 / (1 + np.exp(-(1.5 * x[:, 0] - 0.5 * x[:, 1] + 0.25)))
    y = (rng.random(20_000) < p).astype(float)
    w = fit_logistic(x, y, l2=0.0)
    assert np.allclose(w, [1.5, -0.5, 0.25], atol=0.06)
    assert predict_logistic(w, x).shape == (20_000,)


# FIXED (found by the Ray backend's byte-identity test): the weights depended on the BLAS
# thread count, so a Ray worker (OMP_NUM_THREADS=1) wrote another metrics.json than this
# process; fit_logistic now runs BLAS on one thread.
def test_logistic_baseline_does_not_depend_on_blas_threads():
    import threadpoolctl

    rng = np.random.default_rng(0)
    x = rng.standard_normal((20_000, 56))
    y = (rng.random(20_000) < 0.5).astype(np.float64)
    weights = []
    for threads in (1, 2):
        with threadpoolctl.threadpool_limits(threads):
            weights.append(fit_logistic(x, y))
    assert np.array_equal(weights[0], weights[1])
