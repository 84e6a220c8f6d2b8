"""Out-of-distribution counts (sentio.infer.ranges) on every inference path: a numpy oracle of
the counts written from model.meta.json alone, prices shifted x1.6 so the price-level features
leave the tiny model's training range (planted: every scored bar beyond the clip), the sequence
and stream paths giving the same report, a cached run the same as a cold one, and an artifact
trained before the ranges were recorded."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sentio.data import Bars, import_files, write_bars
from sentio.data.synth.generate import SynthConfig, generate
from sentio.infer import SequenceContext, StreamContext, load_model
from sentio.infer.parity import stream_probabilities
from sentio.infer.ranges import MIN_BARS, WARN_SHARE
from sentio.model.artifact import MANIFEST, SIGNATURE, json_bytes, write_artifact
from tests.cli.badinput import assert_refused, run_script
from tests.conftest import real_file

PRICES = ["open", "high", "low", "close"]
KEYS = {"bars", "outside_training", "beyond_clip", "share_outside_training",
        "share_beyond_clip", "threshold_share", "warn", "rule", "top_features",
        "ranges_recorded"}  # fmt: skip


@pytest.fixture(scope="module")
def own_market():
    """The tiny artifact's own built-in market (seed 3), 12 sessions."""
    return generate(SynthConfig(seed=3, days=12)).bars["QQQ"].of("QQQ")


@pytest.fixture(scope="module")
def shifted(own_market):
    """The same bars at 1.6 times the price (as real QQQ near $600 is to the built-in $385)."""
    return own_market.assign(**{c: own_market[c] * 1.6 for c in PRICES})


def oracle(artifact, frame, p: np.ndarray) -> dict:
    """The counts from model.meta.json and the engine's features in float64, on the bars
    with a probability: independent of sentio.infer.ranges."""
    meta = json.loads((artifact / "model.meta.json").read_text())
    names = meta["expects"]["feature_names"]
    x = load_model(artifact).engine.batch(frame).astype(np.float64)[~np.isnan(p)]
    norm = meta["normalization"]
    z = (x - np.array(norm["mean"])) / np.array(norm["std"])
    beyond = np.abs(z) > norm["clip"]
    doc = {
        "bars": len(x),
        "beyond_clip": int(beyond.any(axis=1).sum()),
        "beyond_by_name": dict(zip(names, beyond.sum(axis=0).tolist(), strict=True)),
    }
    if "feature_ranges" in meta:
        ranges = meta["feature_ranges"]
        low, high = np.array(ranges["min"]), np.array(ranges["max"])
        doc["outside_training"] = int(((x < low) | (x > high)).any(axis=1).sum())
    return doc


def check_against(report: dict, truth: dict) -> None:
    assert report["bars"] == truth["bars"] > 0
    assert report["beyond_clip"] == truth["beyond_clip"]
    assert report["share_beyond_clip"] == pytest.approx(truth["beyond_clip"] / truth["bars"])
    if "outside_training" in truth:
        assert report["outside_training"] == truth["outside_training"]
        share = truth["outside_training"] / truth["bars"]
        assert report["share_outside_training"] == pytest.approx(share)
    named = dict(report["top_features"])  # the most often beyond the clip, each with its count
    counts = truth["beyond_by_name"]
    assert all(counts[name] == n for name, n in named.items())
    others = [n for name, n in counts.items() if name not in named]
    assert len(named) == min(5, sum(n > 0 for n in counts.values()))
    assert not named or min(named.values()) >= max(others, default=0)
    expected = truth["beyond_clip"] > WARN_SHARE * truth["bars"] and truth["bars"] >= MIN_BARS
    assert report["warn"] is expected


def test_counts_match_the_oracle_on_the_own_market_and_no_warning(tiny_artifact, own_market):
    context = SequenceContext(tiny_artifact)
    p = context.calculate_probability(own_market)
    report = context.range_report()
    assert set(report) >= KEYS and report["ranges_recorded"]
    check_against(report, oracle(tiny_artifact, own_market, p))
    assert not report["warn"]


def test_shifted_prices_put_every_scored_bar_beyond_the_clip(tiny_artifact, shifted):
    context = SequenceContext(tiny_artifact)
    p = context.calculate_probability(shifted)
    report = context.range_report()
    check_against(report, oracle(tiny_artifact, shifted, p))
    # planted: closes near $640 against a model trained near $400 with std of a few dollars
    assert report["beyond_clip"] == report["outside_training"] == report["bars"]
    assert report["share_beyond_clip"] == 1.0 and report["warn"]
    assert "close" in dict(report["top_features"])


def test_stream_path_counts_the_same_bars_as_the_sequence_path(tiny_artifact, shifted):
    half = len(shifted) // 2  # own prices, then shifted: a share strictly between 0 and 1
    frame = shifted.copy()
    frame.loc[: half - 1, PRICES] = frame.loc[: half - 1, PRICES] / 1.6
    seq = SequenceContext(tiny_artifact)
    p = seq.calculate_probability(frame)
    stream = StreamContext(tiny_artifact)
    q = stream_probabilities(stream, frame)
    assert np.array_equal(p, q, equal_nan=True)
    assert stream.range_report() == seq.range_report()
    assert 0 < seq.range_report()["share_beyond_clip"] < 1
    check_against(stream.range_report(), oracle(tiny_artifact, frame, p))
    again = stream.predict()  # asking twice for the last bar does not count it twice
    assert not np.isnan(again) and stream.range_report() == seq.range_report()


def test_a_cached_run_reports_what_a_cold_run_does(tmp_path, tiny_artifact, shifted):
    cold = SequenceContext(tiny_artifact)
    p = cold.calculate_probability(shifted)
    cached = SequenceContext(tiny_artifact, cache_dir=tmp_path)
    first = cached.calculate_probability(shifted)
    second = cached.calculate_probability(shifted)
    assert cached.cache_hits == 1
    assert np.array_equal(p, first, equal_nan=True) and np.array_equal(p, second, equal_nan=True)
    assert cached.range_report() == cold.range_report()


def rewritten(artifact, out, edit):
    """A copy of ``artifact`` whose model.meta.json ``edit`` changed, its manifest written again
    (an artifact as another version of sentio would have written it)."""
    files = {
        f.name: f.read_bytes()
        for f in artifact.iterdir()
        if f.is_file() and f.name not in (MANIFEST, SIGNATURE)
    }
    meta = json.loads(files["model.meta.json"])
    edit(meta)
    files["model.meta.json"] = json_bytes(meta)
    return write_artifact(out, files)


def test_an_artifact_without_ranges_counts_the_clip_only(tmp_path, tiny_artifact, shifted):
    """An artifact written before ``feature_ranges`` existed."""
    old = rewritten(tiny_artifact, tmp_path / "old", lambda meta: meta.pop("feature_ranges"))
    context = SequenceContext(old)
    p = context.calculate_probability(shifted)
    report = context.range_report()
    assert not report["ranges_recorded"]
    assert report["outside_training"] == 0 and report["share_outside_training"] is None
    check_against(report, oracle(old, shifted, p))
    assert report["warn"]


def test_a_builtin_trained_model_warns_on_real_qqq(tmp_path, tiny_artifact):
    """The motivating case the other way round (the tiny model trained on the built-in market
    near $400, scored on real QQQ near $600); the real file only, skipped without it."""
    bars, _ = import_files([real_file("ibkr/QQQ_1min.csv")])
    context = SequenceContext(tiny_artifact)
    p = context.calculate_probability(bars.of("QQQ"))
    report = context.range_report()
    check_against(report, oracle(tiny_artifact, bars.of("QQQ"), p))
    assert report["warn"] and report["share_beyond_clip"] > 0.5


def test_malformed_ranges_are_refused_in_one_line(tmp_path, tiny_artifact, own_market):
    def short(meta):
        meta["feature_ranges"]["min"] = meta["feature_ranges"]["min"][:-1]

    bad = rewritten(tiny_artifact, tmp_path / "bad", short)
    data = tmp_path / "qqq.parquet"
    write_bars(Bars(own_market, {"interval_s": 60, "max_gap_min": 5}), data)
    done = run_script("sentio", "model", "parity", str(bad), "--data", str(data))
    assert_refused(done, "model.meta.json", "feature_ranges.min", "55 finite numbers")
