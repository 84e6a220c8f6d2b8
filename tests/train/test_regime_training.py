"""``sentio train --multi-regime`` / ``--regime-labeller`` (docs/regimes.md): what enters the
model, what is weighted, what the synthetic top-up may touch, and what the artifact records."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch is a train extra")

from sentio.data.synth.generate import SynthConfig  # noqa: E402
from sentio.features.regimes import NAMES  # noqa: E402
from sentio.features.spec import load_spec  # noqa: E402
from sentio.model.config import TFAConfig  # noqa: E402
from sentio.train.config import TrainConfig  # noqa: E402
from sentio.train.pipeline import TrainRun, prepare, run_training  # noqa: E402
from sentio.train.regimes import regime_weights  # noqa: E402
from sentio.train.samples import LabelSpec  # noqa: E402


def recipe(out, **regimes) -> TrainRun:
    return TrainRun(
        data=["builtin"],
        output=out,
        model=TFAConfig(d_model=16, nhead=2, num_layers=1, seq_len=8),
        train=TrainConfig(epochs=1, seed=7),
        label=LabelSpec(horizon=1, deadzone_bp=0.0),
        feature_spec="intraday_default",
        builtin=SynthConfig(seed=3, days=40),
        **regimes,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("regime-training")
    out = {}
    for name, options in {
        "plain": {},
        "reported": {"regime_labeller": "rules"},
        "multi": {"regime_labeller": "rules", "multi_regime": True},
        "mixed": {"regime_labeller": "rules", "multi_regime": True, "synthetic_mix": 0.5},
    }.items():
        folder = root / name
        metrics = run_training(recipe(folder, **options))
        meta = json.loads((folder / "model.meta.json").read_text())
        out[name] = {"metrics": metrics, "meta": meta, "folder": folder}
    return out


def test_a_plain_run_records_no_regimes(runs):
    plain = runs["plain"]
    assert "regimes" not in plain["metrics"] and "regimes" not in plain["meta"]
    spec = json.loads((plain["folder"] / "feature_spec.json").read_text())
    assert "regimes" not in spec


def test_a_labeller_alone_scores_per_regime_and_leaves_the_model_alone(runs):
    plain, reported = runs["plain"], runs["reported"]
    assert reported["meta"]["expects"] == plain["meta"]["expects"]  # same inputs, same spec
    regimes = reported["metrics"]["regimes"]
    assert regimes["in_model"] is False
    for part in ("validation", "test"):
        total = sum(s["samples"] for s in regimes[part].values())
        assert total == reported["metrics"]["evaluation"][part]["model"]["n"]


def test_the_multi_regime_model_reads_four_unscaled_regime_columns(runs):
    multi, plain = runs["multi"], runs["plain"]
    names = multi["meta"]["expects"]["feature_names"]
    assert names[-4:] == [f"regime_{n}" for n in NAMES]
    assert names[:-4] == plain["meta"]["expects"]["feature_names"]
    norm = multi["meta"]["normalization"]
    assert norm["mean"][-4:] == [0.0] * 4 and norm["std"][-4:] == [1.0] * 4
    spec = load_spec(multi["folder"] / "feature_spec.json")
    assert spec.regimes.labeller == "rules"
    assert spec.content_hash == multi["meta"]["expects"]["spec_hash"]
    record = multi["meta"]["regimes"]
    assert record["in_model"] and record["model"] == "embedding"
    assert "not loadable" in record["original_cpp"]


def test_the_labeller_is_fitted_on_the_training_split_only(runs):
    meta = runs["multi"]["meta"]
    fitted = meta["regimes"]["fitted_on"]
    assert fitted["split"] == "train"
    assert fitted["last_ts"] <= meta["data"]["splits"]["train"]["last_ts"]
    assert fitted["last_ts"] < meta["data"]["splits"]["validation"]["first_ts"]


def test_synthetic_samples_reach_training_only(runs):
    multi, mixed = runs["multi"]["metrics"], runs["mixed"]["metrics"]
    for part in ("validation", "test"):
        assert mixed["evaluation"][part]["model"]["n"] == multi["evaluation"][part]["model"]["n"]
        assert mixed["regimes"][part].keys() == multi["regimes"][part].keys()
        for name in NAMES:
            assert (
                mixed["regimes"][part][name]["samples"] == multi["regimes"][part][name]["samples"]
            )
    synthetic = mixed["regimes"]["synthetic"]
    assert synthetic["used_in"] == "training only"
    share = multi["regimes"]["train_share"]
    rare = {name for name in NAMES if share[name] < 0.25}
    assert {t["regime"] for t in synthetic["tracks"]} == rare
    assert synthetic["samples"] == sum(t["kept"] for t in synthetic["tracks"]) > 0
    assert runs["mixed"]["meta"]["regimes"]["synthetic_mix"] == 0.5


def test_balanced_weights_give_every_regime_the_same_total():
    regime = np.random.default_rng(1).choice(4, 1000, p=[0.5, 0.3, 0.15, 0.05])
    w = regime_weights(regime)
    totals = [w[regime == g].sum() for g in range(4)]
    np.testing.assert_allclose(totals, 250.0)
    assert abs(w.mean() - 1.0) < 1e-12


def test_windows_before_the_labellers_warm_up_are_not_trained_on(tmp_path):
    """A LOGRET-only spec is ready after one bar; the regime columns after 390: a multi-regime
    run drops the windows in between and says so."""
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"features": [{"op": "LOGRET", "name": "logret"}]}))
    run = recipe(tmp_path / "x", regime_labeller="rules", multi_regime=True)
    run.feature_spec = str(spec)
    prep = prepare(run)
    assert prep.report.removed["before the regime labeller's warm-up"] > 0
    first = prep.samples.rows.min() - run.model.seq_len + 1
    assert (prep.features[first:, -4:] > 0).any(axis=1).all()


def test_a_multi_regime_rerun_writes_the_same_bytes(tmp_path, monkeypatch):
    """hmm labeller (EM from a fixed start, one BLAS thread), balanced weights and a synthetic
    top-up: two runs with one seed write every artifact file byte for byte the same."""
    pytest.importorskip("hmmlearn", reason="the hmm labeller is a train extra")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    options = {"regime_labeller": "hmm", "multi_regime": True, "synthetic_mix": 0.2}
    for name in ("a", "b"):
        run_training(recipe(tmp_path / name, **options))
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert "model.onnx" in files
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_model_info_says_whether_the_original_cpp_code_can_load_it(runs):
    from sentio.model.artifact import info

    assert "regimes" not in info(runs["plain"]["folder"])
    reported = info(runs["reported"]["folder"])["regimes"]
    assert reported == {"labeller": "rules", "in_model": False}
    multi = info(runs["multi"]["folder"])["regimes"]
    assert multi["in_model"] and multi["model"] == "embedding"
    assert multi["original_cpp"].startswith("not loadable")
