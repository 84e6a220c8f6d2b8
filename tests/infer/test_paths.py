"""The two inference paths: bit-identical on real and built-in bars, missing (never 0.5) before
a valid window, cached, saved and restored, switched, refused when anything disagrees, and
torch-free."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from sentio.core.errors import ArtifactError, ParityError
from sentio.core.hashing import sha256_file
from sentio.data import import_files
from sentio.data.synth.generate import SynthConfig, generate
from sentio.infer import SequenceContext, StreamContext, compare, load_model
from sentio.infer.parity import stream_probabilities
from sentio.model import MANIFEST
from tests.conftest import compare_without_torch, real_file

REAL_QQQ = [
    "ibkr/QQQ_1min.csv",
    "ibkr/QQQ_5min.csv",
    "polygon/QQQ_RTH_NH_2025-08-08_2025-09-12.csv",
    "lse/QQQ_1min.parquet",
]


@pytest.fixture(scope="module")
def builtin_qqq():
    return generate(SynthConfig(seed=21, days=15)).bars["QQQ"].of("QQQ")


@pytest.mark.parametrize("relative", REAL_QQQ)
def test_paths_are_bit_identical_on_every_real_qqq_file(relative, artifact):
    bars, _ = import_files([real_file(relative)])
    report, seq, _ = compare(artifact, bars.of("QQQ"))
    assert report.identical and report.max_abs_diff == 0.0, report
    assert report.compared > 0.8 * report.bars


def test_paths_are_bit_identical_on_the_builtin_market(artifact, builtin_qqq):
    report, seq, stream = compare(artifact, builtin_qqq)
    assert report.identical and report.compared > 5000
    assert (np.isnan(seq) == np.isnan(stream)).all()


def test_missing_before_the_first_valid_window_never_a_fake_half(artifact, builtin_qqq):
    model = load_model(artifact)
    p = SequenceContext(model).calculate_probability(builtin_qqq)
    warm = int(model.engine.compute(builtin_qqq).valid_from.max())  # ema_200: 691 bars
    first = warm + model.seq_len - 1  # the first window whose rows are all valid
    assert np.isnan(p[:first]).all() and not np.isnan(p[first:]).any()
    assert not (p == 0.5).any()


def test_sequence_context_follows_the_original_rules_with_model_pt(artifact, builtin_qqq):
    """TfaSeqContext: window = feature rows i-T+1..i, probability = sigmoid(logit); computed
    here from feature_spec.json and model.pt by hand, as the C++ runtime would."""
    torch = pytest.importorskip("torch")
    model = load_model(artifact)
    features = model.engine.batch(builtin_qqq)
    scripted = torch.jit.load(artifact / "model.pt")
    p = SequenceContext(model).calculate_probability(builtin_qqq)
    t = model.seq_len
    for i in (1000, 2500, len(p) - 1):
        with torch.no_grad():
            logit = scripted(torch.from_numpy(features[None, i - t + 1 : i + 1])).item()
        assert p[i] == pytest.approx(1 / (1 + np.exp(-logit)), abs=1e-6)


def test_probabilities_are_cached_by_model_data_and_spec(tmp_path, artifact, builtin_qqq):
    context = SequenceContext(artifact, cache_dir=tmp_path)
    first = context.calculate_probability(builtin_qqq)
    again = context.calculate_probability(builtin_qqq)
    assert context.cache_hits == 1 and np.array_equal(first, again, equal_nan=True)
    shifted = builtin_qqq.assign(close=builtin_qqq["close"] * 1.0001)
    context.calculate_probability(shifted)
    assert context.cache_hits == 1 and len(list(tmp_path.glob("*.prob"))) == 2


def test_stream_context_saves_restores_and_switches(artifact, sibling, other_spec, builtin_qqq):
    half = len(builtin_qqq) // 2
    whole = stream_probabilities(StreamContext(artifact), builtin_qqq)
    first = StreamContext(artifact)
    stream_probabilities(first, builtin_qqq.iloc[:half])
    restored = StreamContext.from_json(artifact, first.to_json())
    rest = stream_probabilities(restored, builtin_qqq.iloc[half:])
    assert np.array_equal(rest, whole[half:], equal_nan=True)
    # switch between two bars to a model on the same spec: its probabilities from then on are
    # exactly those of a context that ran the new model from the start
    switched = StreamContext.from_json(artifact, first.to_json())
    switched.switch(sibling)
    tail = stream_probabilities(switched, builtin_qqq.iloc[half:])
    reference = stream_probabilities(StreamContext(sibling), builtin_qqq)
    assert np.array_equal(tail, reference[half:], equal_nan=True)
    with pytest.raises(ParityError, match="spec"):
        switched.switch(other_spec)


def forge(tmp_path, source, name, edit):
    """Copy an artifact, edit one file, and re-hash the manifest (a consistent forgery)."""
    target = tmp_path / name.replace(".", "_")
    shutil.copytree(source, target)
    path = target / name
    edit(path)
    manifest = json.loads((target / MANIFEST).read_text())
    manifest["files"][name] = sha256_file(path)
    (target / MANIFEST).write_text(json.dumps(manifest))
    return target


def edit_json(change):
    def edit(path):
        doc = json.loads(path.read_text())
        change(doc)
        path.write_text(json.dumps(doc))

    return edit


def test_refusals_name_what_differs(tmp_path, artifact):
    flipped = tmp_path / "flipped"
    shutil.copytree(artifact, flipped)
    data = bytearray((flipped / "model.onnx").read_bytes())
    data[100] ^= 1
    (flipped / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="model.onnx: sha256 differs"):
        SequenceContext(flipped)
    (flipped / "model.onnx").unlink()
    with pytest.raises(ArtifactError, match="model.onnx is missing"):
        StreamContext(flipped)

    def rename_feature(doc):
        doc["features"][3]["name"] = "ema_renamed"
        doc.pop("content_hash")

    cases = {
        "feature_spec.json": (rename_feature, "spec_hash"),
        "metadata.json": (lambda d: d.update(seq_len=9), "sequence lengths"),
        "model.meta.json": (lambda d: d["expects"].update(dtype="float64"), "dtype"),
    }
    for name, (change, words) in cases.items():
        forged = forge(tmp_path, artifact, name, edit_json(change))
        with pytest.raises((ArtifactError, ParityError), match=words):
            load_model(
                forged, door="model.meta.json" if name != "metadata.json" else "metadata.json"
            )


def test_both_paths_run_where_torch_cannot_be_imported(artifact):
    identical, compared = compare_without_torch(artifact)
    assert identical and compared > 500


def test_a_context_started_from_history_continues_bit_for_bit(artifact):
    """``from_history`` (features advanced over the history in one call, the last T bars
    pushed) then ``on_bar`` equals the sequence path, whatever the cut: before the warm-up,
    around T, and just before, at and after segment changes of the LSE file."""
    from sentio.features.inputs import as_input

    bars, _ = import_files([real_file("lse/QQQ_1min.parquet")])
    frame = bars.of("QQQ")
    data = as_input(frame)
    seq = SequenceContext(artifact).calculate_probability(frame)
    model = load_model(artifact, door="metadata.json")
    changes = np.flatnonzero(np.diff(data.segment)) + 1
    assert len(changes) >= 2
    cuts = [0, 3, model.seq_len - 1, model.seq_len, model.seq_len + 1]
    for start in changes[:2]:  # around the segment change and its first valid window
        first = int(start + np.flatnonzero(~np.isnan(seq[start:]))[0])
        cuts += [int(start) + d for d in (-1, 0, 1, model.seq_len)]
        cuts += [first + d for d in (-model.seq_len, -1, 0, 1, 100)]
    informative = 0  # cuts whose next 1000 bars mostly carry a probability
    for cut in cuts:
        context = StreamContext.from_history(model, data.slice(0, cut))
        got = stream_probabilities(context, frame.iloc[cut : cut + 1000])
        want = seq[cut : cut + 1000]
        assert np.array_equal(got, want, equal_nan=True), cut
        informative += int((~np.isnan(want)).sum() > 500)
    assert informative >= 5
