"""A multi-regime model (hmm labeller, experts head) through both inference paths: its regime
columns are features of the same engine, so the sequence and stream paths still agree bit for
bit, on the built-in market and on every real QQQ file."""

from __future__ import annotations

import pytest

pytest.importorskip("hmmlearn", reason="the hmm labeller is a train extra")

from sentio.core.domain import Bar  # noqa: E402
from sentio.data import import_files  # noqa: E402
from sentio.data.synth.generate import SynthConfig, generate  # noqa: E402
from sentio.features.inputs import as_input  # noqa: E402
from sentio.infer import StreamContext, compare, load_model  # noqa: E402
from sentio.model.config import TFAConfig  # noqa: E402
from sentio.train.pipeline import run_training  # noqa: E402
from tests.conftest import real_file, tiny_run  # noqa: E402

REAL_QQQ = ["ibkr/QQQ_1min.csv", "lse/QQQ_1min.parquet"]


@pytest.fixture(scope="module")
def regime_artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("infer-regimes") / "mr"
    run = tiny_run(out)
    run.builtin = SynthConfig(seed=3, days=15)
    run.model = TFAConfig(d_model=16, nhead=2, num_layers=1, seq_len=8, regime_experts=4)
    run.regime_labeller, run.multi_regime = "hmm", True
    run_training(run)
    return out


def test_the_artifact_serves_the_regime_columns(regime_artifact):
    model = load_model(regime_artifact)
    assert model.engine.spec.regimes.labeller == "hmm"
    assert model.feature_names[-4:] == (
        "regime_bull",
        "regime_bear",
        "regime_sideways",
        "regime_volatile",
    )


def test_paths_are_bit_identical_on_the_builtin_market(regime_artifact):
    bars = generate(SynthConfig(seed=21, days=15)).bars["QQQ"].of("QQQ")
    report, _, _ = compare(regime_artifact, bars)
    assert report.identical and report.max_abs_diff == 0.0 and report.compared > 4000


@pytest.mark.parametrize("relative", REAL_QQQ)
def test_paths_are_bit_identical_on_real_qqq(relative, regime_artifact):
    bars, _ = import_files([real_file(relative)])
    report, _, _ = compare(regime_artifact, bars.of("QQQ"))
    assert report.identical and report.max_abs_diff == 0.0, report


def test_a_saved_stream_context_carries_the_filter(regime_artifact):
    data = as_input(generate(SynthConfig(seed=21, days=4)).bars["QQQ"].of("QQQ"))

    def bar_at(r: int) -> Bar:
        o, h, lo, c, v = (float(x) for x in data.rows[r, :5])
        return Bar(int(data.ts[r]), o, h, lo, c, v, int(data.segment[r]))

    whole = StreamContext(regime_artifact)
    half = len(data) // 2 + 7  # past the 390-bar warm-up: the filter is running
    first = StreamContext(regime_artifact)
    for r in range(len(data)):
        bar = bar_at(r)
        p = whole.on_bar(bar)
        if r < half:
            first.on_bar(bar)
            continue
        if r == half:
            first = StreamContext.from_json(regime_artifact, first.to_json())
        q = first.on_bar(bar)
        assert p == q or (p != p and q != q), r
