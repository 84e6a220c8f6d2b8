"""The REGIME op and the spec's ``regimes`` block (docs/regimes.md): causal, one formula in batch
and stream, and equal to independent oracles (numpy for the inputs and the rules; hmmlearn's own
posterior for the forward filter)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sentio.core.errors import SpecError
from sentio.data.synth.generate import SynthConfig, generate
from sentio.features import FeatureEngine
from sentio.features.inputs import as_input, clock_columns
from sentio.features.regimes import NAMES, RegimeBlock, fit_rules, labels_of
from sentio.features.spec import load_spec, parse_spec
from sentio.features.state import StreamState


@pytest.fixture(scope="module")
def market():
    """40 sessions of the built-in market (all four regimes), one segment."""
    return generate(SynthConfig(seed=5, days=40)).bars["QQQ"].of("QQQ")


def engine_for(block: dict, features: list | None = None) -> FeatureEngine:
    return FeatureEngine(parse_spec({"features": features or [], "regimes": block}, "test"))


@pytest.fixture(scope="module")
def inputs(market):
    return engine_for({"labeller": "inputs"}).compute(as_input(market))


@pytest.fixture(scope="module")
def rules_block(inputs):
    ready = inputs.ready
    params = fit_rules(inputs.values[ready, 0], inputs.values[ready, 1])
    return {"labeller": "rules", "rules": params.model_dump()}


@pytest.fixture(scope="module")
def hmm_block(inputs, market):
    pytest.importorskip("hmmlearn", reason="the hmm labeller is a train extra")
    from sentio.train.regimes import fit_block

    fit = np.arange(len(market)) < len(market) * 0.7
    return fit_block("hmm", market, fit, seed=3).to_json_dict()


def oracle_inputs(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """RMS of the last 120 intraday 1-minute log returns (a session's first bar: close/open) and
    the 390-bar log return, from the float32 prices the engine reads, by a convolution in numpy
    (the engine keeps a running sum over a ring); NaN before row 390."""
    logc = np.log(frame["close"].to_numpy(np.float32).astype(np.float64))
    logo = np.log(frame["open"].to_numpy(np.float32).astype(np.float64))
    session = clock_columns(frame["ts"].to_numpy(np.int64))[1]
    first = np.r_[True, session[1:] != session[:-1]]
    r = np.where(first, logc - logo, logc - np.r_[np.nan, logc[:-1]])
    squares = np.convolve(r * r, np.ones(120), mode="full")[: len(r)]
    vol = np.sqrt(squares / 120)
    trend = logc - np.r_[np.full(390, np.nan), logc[:-390]]
    vol[:390] = np.nan
    return vol, trend


def test_the_inputs_equal_numpy(market, inputs):
    vol, trend = oracle_inputs(market)
    ready = inputs.ready
    assert ready.sum() == len(market) - 390 and not ready[:390].any()
    # float64 sums rounded to float32 at the end
    np.testing.assert_allclose(inputs.values[ready, 0], vol[ready], rtol=1e-6)
    np.testing.assert_allclose(inputs.values[ready, 1], trend[ready], rtol=1e-6, atol=1e-9)


def test_rules_label_by_their_cut_points(market, inputs, rules_block):
    values = engine_for(rules_block).compute(as_input(market)).values
    labels = labels_of(values)
    cuts = rules_block["rules"]
    vol, trend = inputs.values[:, 0].astype(np.float64), inputs.values[:, 1].astype(np.float64)
    expected = np.select(
        [vol > cuts["vol_cut"], trend > cuts["trend_high"], trend < cuts["trend_low"]],
        [3, 0, 1],
        default=2,
    )
    ready = inputs.ready
    assert (labels[~ready] == -1).all()
    np.testing.assert_array_equal(labels[ready], expected[ready])
    assert set(np.unique(values)) <= {0.0, 1.0}
    # fitted as quantiles of these bars: volatile is the top quarter
    assert abs(np.mean(labels[ready] == 3) - 0.25) < 0.01


def test_the_hmm_filter_equals_hmmlearns_posterior_at_the_last_bar(market, inputs, hmm_block):
    """At the last bar of a prefix the smoothed posterior IS the filtered one, so hmmlearn's
    predict_proba on bars <= t is an independent oracle of P(state | bars <= t)."""
    from hmmlearn.hmm import GaussianHMM

    h = hmm_block["hmm"]
    model = GaussianHMM(n_components=4, covariance_type="full")
    model.startprob_ = np.asarray(h["start"])
    model.transmat_ = np.asarray(h["transition"])
    model.means_ = np.asarray(h["means"])
    model.covars_ = np.asarray(h["covars"])
    ready = np.flatnonzero(inputs.ready)
    x = np.column_stack(
        [np.log(inputs.values[ready, 0].astype(np.float64)), inputs.values[ready, 1]]
    )
    values = engine_for(hmm_block).compute(as_input(market)).values
    for end in (0, 1, 17, 500, 3000, len(ready) - 1):
        oracle = model.predict_proba(x[: end + 1])[-1]
        np.testing.assert_allclose(values[ready[end]], oracle, atol=2e-6)
    np.testing.assert_allclose(values[ready].sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("which", ["rules_block", "hmm_block"])
def test_labels_before_a_cut_never_change(market, which, request):
    """Cut the series at many points: every label and probability before the cut is what the
    whole series gives (the labeller is causal)."""
    engine = engine_for(request.getfixturevalue(which))
    full = engine.compute(as_input(market)).values
    cuts = np.random.default_rng(0).integers(391, len(market), 25)
    for cut in [391, 392, 800, *cuts.tolist()]:
        part = engine.compute(as_input(market.iloc[:cut])).values
        np.testing.assert_array_equal(part, full[:cut])


@pytest.mark.parametrize("which", ["rules_block", "hmm_block"])
def test_stream_equals_batch_and_survives_save_restore(market, which, request):
    engine = engine_for(request.getfixturevalue(which), [{"op": "LOGRET", "name": "logret"}])
    data = as_input(market)
    batch = engine.compute(data).values
    stream = engine.stream()
    half = len(data) // 2
    rows = [stream.update_row(data.rows[r], int(data.segment[r])) for r in range(half)]
    stream = StreamState.from_json(engine, stream.to_json())
    rows += [stream.update_row(data.rows[r], int(data.segment[r])) for r in range(half, len(data))]
    np.testing.assert_array_equal(np.array(rows), batch)
    assert engine.names[-4:] == tuple(f"regime_{n}" for n in NAMES)


def test_the_spec_hash_covers_the_fitted_numbers(rules_block):
    base = load_spec("intraday_default")
    one = base.with_regimes(RegimeBlock.model_validate(rules_block))
    moved = json.loads(json.dumps(rules_block))
    moved["rules"]["vol_cut"] *= 1.001
    other = base.with_regimes(RegimeBlock.model_validate(moved))
    assert len({base.content_hash, one.content_hash, other.content_hash}) == 3
    assert parse_spec(json.loads(one.to_json()), "again").content_hash == one.content_hash


@pytest.mark.parametrize(
    ("block", "field"),
    [
        ({"labeller": "rules"}, "regimes"),
        ({"labeller": "magic"}, "regimes.labeller"),
        ({"labeller": "inputs", "vol_windw": 5}, "regimes.vol_windw"),
        ({"labeller": "inputs", "vol_window": 0}, "regimes.vol_window"),
        (
            {
                "labeller": "hmm",
                "hmm": {
                    "start": [0.25] * 4,
                    "transition": [[0.25] * 4] * 4,
                    "means": [[0, 0]] * 4,
                    "covars": [[[1, 2], [2, 1]]] * 4,
                },
            },
            "regimes",
        ),
    ],
)
def test_a_broken_regimes_block_is_refused_naming_its_field(block, field):
    with pytest.raises(SpecError) as caught:
        parse_spec({"features": [{"op": "LOGRET"}], "regimes": block}, "spec.json")
    assert f"field {field}" in str(caught.value) or field in str(caught.value)


def test_regime_columns_come_only_from_the_block():
    with pytest.raises(SpecError, match="regimes"):
        parse_spec({"features": [{"op": "REGIME"}]}, "spec.json")
    with pytest.raises(SpecError, match="rename"):
        parse_spec(
            {
                "features": [{"op": "LOGRET", "name": "regime_vol"}],
                "regimes": {"labeller": "inputs"},
            },
            "spec.json",
        )
