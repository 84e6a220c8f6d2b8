"""The promotion gate on sessions neither model trained on. Oracles: the rule the gate states
(promote iff the candidate's log loss is within the margin of the incumbent's), symmetry (a
model against itself ties and is promoted at margin 0), the log loss and AUC recomputed here
from the sequence path's probabilities and the labels' definition, and the AUC inside its own
session-bootstrap interval."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sentio.backtest.gate import GateError, shadow_gate
from sentio.backtest.strattest import StrattestConfig, market_tables
from sentio.features.inputs import clock_columns
from sentio.infer import SequenceContext
from sentio.model.artifact import read_meta


@pytest.fixture(scope="module")
def tables(tiny_artifact):
    return market_tables(StrattestConfig(model=tiny_artifact), read_meta(tiny_artifact))[0]


def test_the_decision_follows_its_rule(tiny_artifact, retrained_artifact, tables):
    config = StrattestConfig(cache_dir=None)
    a = shadow_gate(retrained_artifact, tiny_artifact, tables, shadow=1, config=config)
    b = shadow_gate(tiny_artifact, retrained_artifact, tables, shadow=1, config=config)
    assert a.samples == b.samples > 50 and a.sessions == b.sessions
    assert a.candidate == b.incumbent and a.incumbent == b.candidate  # the same numbers
    c, i = a.candidate["log_loss"], a.incumbent["log_loss"]
    assert a.promote == (c <= i) and b.promote == (i <= c) and c != i
    assert shadow_gate(
        retrained_artifact, tiny_artifact, tables, 1, config, margin=1.0
    ).promote  # generous
    for side in (a.candidate, a.incumbent):
        low, high = side["auc_ci95"]
        assert low <= side["auc"] <= high and math.isfinite(side["net_return_pct"])


def test_a_model_against_itself_ties_and_is_promoted(tiny_artifact, tables):
    same = shadow_gate(tiny_artifact, tiny_artifact, tables, 1, StrattestConfig(cache_dir=None))
    assert same.candidate == same.incumbent and same.promote


def test_the_figures_are_the_definitions(tiny_artifact, retrained_artifact, tables):
    """Log loss and AUC recomputed from scratch: labels = sign of ln(C[t+h]/C[t]) beyond the
    dead zone (the incumbent's recorded label: h bars, d bp), in the same session and segment,
    on the shadow session's bars."""
    decision = shadow_gate(
        retrained_artifact, tiny_artifact, tables, 1, StrattestConfig(cache_dir=None)
    )
    qqq = tables["QQQ"]
    close, seg = qqq["close"].to_numpy(), qqq["segment"].to_numpy()
    session = clock_columns(qqq["ts"].to_numpy(np.int64))[1]
    label = read_meta(tiny_artifact)["label"]
    h, dead = label["horizon_bars"], label["deadzone_bp"] * 1e-4
    rows = []
    for t in np.flatnonzero(session == decision.sessions[0]):
        if t + h < len(close) and session[t + h] == session[t] and seg[t + h] == seg[t]:
            r = math.log(close[t + h] / close[t])
            if abs(r) > dead:
                rows.append(t)
    p = SequenceContext(retrained_artifact).calculate_probability(qqq)
    q = SequenceContext(tiny_artifact).calculate_probability(qqq)
    rows = [t for t in rows if not (np.isnan(p[t]) or np.isnan(q[t]))]
    labels = np.array([1.0 if math.log(close[t + h] / close[t]) > 0 else 0.0 for t in rows])
    assert len(rows) == decision.samples
    pc = np.clip(p[rows], 1e-12, 1 - 1e-12)
    expected = -np.mean(labels * np.log(pc) + (1 - labels) * np.log(1 - pc))
    assert decision.candidate["log_loss"] == pytest.approx(expected, rel=1e-9)
    pos, neg = pc[labels == 1], pc[labels == 0]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert decision.candidate["auc"] == pytest.approx(pairs, rel=1e-9)


def test_too_few_unseen_sessions_are_refused(tiny_artifact, retrained_artifact, tables):
    with pytest.raises(GateError, match="whole sessions"):
        shadow_gate(retrained_artifact, tiny_artifact, tables, 50, StrattestConfig(cache_dir=None))
