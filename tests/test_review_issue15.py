"""Review of issue 15 (regimes): each test showed one defect (as a strict xfail) and now guards
its fix. Oracles: the documented contracts (a plain run's record as before the
change, the engine's declared warm-up, ``--regime-labeller`` alone leaving the model alone,
every regime model recording what it is)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from sentio.core.errors import SentioError
from sentio.data.synth.generate import SynthConfig, generate
from sentio.features import FeatureEngine, parse_spec
from sentio.features.checks import check_warmup
from sentio.features.inputs import as_input
from sentio.features.regimes import labels_of
from sentio.model.config import TFAConfig
from sentio.train.samples import LabelSpec

# SynthConfig's fields at 5450fad, the commit before issue 15: a plain run on the built-in market
# recorded exactly these (model.meta.json data.synth, and the training fingerprint over them).
SYNTH_KEYS_BEFORE = {
    "seed",
    "days",
    "start",
    "signal_strength",
    "signal_flip_every",
    "drift",
    "regime",
    "start_price",
    "financing_rate",
    "tracking_noise_bp",
}


SHORT_SPEC = {
    "features": [
        {"op": "LOGRET", "source": "close"},
        {"op": "VOLATILITY", "source": "logret", "window": 20},
    ]
}


def test_a_plain_builtin_runs_record_is_the_one_before_regimes(tmp_path):
    from sentio.train.pipeline import TrainRun, load_bars

    run = TrainRun(data=["builtin"], output=tmp_path / "x", builtin=SynthConfig(seed=3, days=10))
    _, record = load_bars(run)
    assert set(record["synth"]) == SYNTH_KEYS_BEFORE


def test_a_labeller_alone_keeps_every_training_sample(tmp_path):
    pytest.importorskip("torch", reason="torch is a train extra")
    from sentio.train.pipeline import TrainRun, prepare

    spec = tmp_path / "short.json"  # warm-up 21 bars: far shorter than the labeller's 390
    spec.write_text(json.dumps(SHORT_SPEC))
    plain = TrainRun(
        data=["builtin"],
        output=tmp_path / "out",
        model=TFAConfig(d_model=16, nhead=2, num_layers=1, seq_len=8),
        label=LabelSpec(horizon=1, deadzone_bp=0.0),
        feature_spec=str(spec),
        builtin=SynthConfig(seed=3, days=12),
    )
    a = prepare(plain)
    b = prepare(dataclasses.replace(plain, regime_labeller="rules"))
    for part in ("train", "validation", "test"):
        rows_a = a.samples.rows[getattr(a.split, part)]
        rows_b = b.samples.rows[getattr(b.split, part)]
        assert np.array_equal(rows_a, rows_b), part


def test_an_hmm_spec_passes_the_engines_warm_up_check():
    pytest.importorskip("hmmlearn", reason="the hmm labeller is a train extra")
    from sentio.train.regimes import fit_block

    qqq = generate(SynthConfig(seed=11, days=20)).bars["QQQ"].of("QQQ")
    block = fit_block("hmm", qqq, np.ones(len(qqq), dtype=bool), seed=7)
    engine = FeatureEngine(parse_spec({"features": [], "regimes": block.to_json_dict()}))
    data = as_input(qqq)
    batch = engine.compute(data).values
    warm = engine.program.warm_bars.max()  # the declared warm-up: 390 rows
    for offset in (97, 390, 1500):  # the label of a bar past the warm-up: not where data began
        later = engine.compute(data.slice(offset, len(data))).values
        moved = np.flatnonzero(labels_of(batch[offset + warm :]) != labels_of(later[warm:]))
        assert len(moved) == 0, f"start +{offset}: labels differ at rows {moved + warm}"
    result = check_warmup(engine, data, batch, (1, 97, 390, 1500))  # `sentio features check`
    assert result.passed, result.detail


def test_a_spec_with_a_regimes_block_is_refused_or_recorded(tmp_path):
    pytest.importorskip("torch", reason="torch is a train extra")
    from sentio.train.config import TrainConfig
    from sentio.train.pipeline import TrainRun, run_training
    from sentio.train.regimes import fit_block

    market = SynthConfig(seed=3, days=12)
    qqq = generate(market).bars["QQQ"].of("QQQ")
    block = fit_block("rules", qqq, np.ones(len(qqq), dtype=bool), seed=7)  # every bar
    spec = tmp_path / "with_regimes.json"
    spec.write_text(parse_spec(SHORT_SPEC).with_regimes(block).to_json())
    run = TrainRun(
        data=["builtin"],
        output=tmp_path / "model",
        model=TFAConfig(d_model=16, nhead=2, num_layers=1, seq_len=8),
        train=TrainConfig(epochs=1, seed=7),
        label=LabelSpec(horizon=1, deadzone_bp=0.0),
        feature_spec=str(spec),
        builtin=market,
    )
    try:
        run_training(run)
    except SentioError:
        return  # refused, naming the spec: fixed
    meta = json.loads((tmp_path / "model" / "model.meta.json").read_text())
    assert "regimes" in meta, "a model reading REGIME columns does not say so"
