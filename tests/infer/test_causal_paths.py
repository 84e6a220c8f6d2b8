"""The two inference paths of a causal artifact: bit-identical on every real QQQ file and the
built-in market (one compiled step serves both), missing before T ready rows, cached, saved
with its caches and restored, switched (its caches rebuilt from the ring, bit for bit), started
from history at any cut, continued by ``probabilities_after`` from a snapshot, refused when
its weights are damaged, and torch-free. The oracle of each path is the other, plus the
torch network for the numbers (``sentio model verify``'s runtime parity)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch", reason="training the test artifacts needs the train extra")

from sentio.core.errors import ArtifactError, ParityError, StateError  # noqa: E402
from sentio.core.hashing import sha256_file  # noqa: E402
from sentio.data import import_files  # noqa: E402
from sentio.data.synth.generate import SynthConfig, generate  # noqa: E402
from sentio.features.inputs import as_input  # noqa: E402
from sentio.infer import SequenceContext, StreamContext, compare, load_model  # noqa: E402
from sentio.infer.parity import bars_of, stream_probabilities  # noqa: E402
from sentio.infer.seq import probabilities_after  # noqa: E402
from sentio.model import MANIFEST  # noqa: E402
from sentio.model.config import TFAConfig  # noqa: E402
from sentio.train.pipeline import run_training  # noqa: E402
from tests.conftest import compare_without_torch, real_file, tiny_run  # noqa: E402

REAL_QQQ = [
    "ibkr/QQQ_1min.csv",
    "ibkr/QQQ_5min.csv",
    "polygon/QQQ_RTH_NH_2025-08-08_2025-09-12.csv",
    "lse/QQQ_1min.parquet",
]
CAUSAL = TFAConfig(d_model=16, nhead=2, num_layers=2, seq_len=8, family="causal")


def causal_run(out, seed=3):
    run = tiny_run(out, seed=seed)
    run.model = CAUSAL
    return run


@pytest.fixture(scope="module")
def causal(tmp_path_factory):
    out = tmp_path_factory.mktemp("causal") / "a"
    run_training(causal_run(out))
    return out


@pytest.fixture(scope="module")
def causal_sibling(tmp_path_factory):
    out = tmp_path_factory.mktemp("causal") / "b"
    run_training(causal_run(out, seed=11))
    return out


@pytest.fixture(scope="module")
def builtin_qqq():
    return generate(SynthConfig(seed=21, days=15)).bars["QQQ"].of("QQQ")


def test_the_artifact_has_weights_and_no_onnx_and_verifies(causal):
    names = json.loads((causal / MANIFEST).read_text())["files"]
    assert set(names) == {
        "model.safetensors",
        "model.meta.json",
        "feature_spec.json",
        "metrics.json",
        "parity_rows.npy",
    }
    meta = json.loads((causal / "model.meta.json").read_text())
    assert meta["model_type"] == "TFA-causal" and meta["config"]["family"] == "causal"
    assert meta["reach_rows"] == 2 * 7 + 1
    assert meta["data"]["embargo_bars"] == 3 + 15  # horizon + reach, not horizon + T
    done = subprocess.run(
        [sys.executable, "-m", "sentio", "model", "verify", str(causal)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "runtime parity" in done.stdout and "FAIL" not in done.stdout


@pytest.mark.parametrize("relative", REAL_QQQ)
def test_paths_are_bit_identical_on_every_real_qqq_file(relative, causal):
    bars, _ = import_files([real_file(relative)])
    report, seq, _ = compare(causal, bars.of("QQQ"))
    assert report.identical and report.max_abs_diff == 0.0, report
    assert report.compared > 0.8 * report.bars


def test_paths_are_bit_identical_on_the_builtin_market(causal, builtin_qqq):
    report, seq, stream = compare(causal, builtin_qqq)
    assert report.identical and report.compared > 5000
    assert (np.isnan(seq) == np.isnan(stream)).all()
    model = load_model(causal)
    warm = int(model.engine.compute(builtin_qqq).valid_from.max())
    first = warm + model.seq_len - 1  # T ready rows: the window rule of the window presets
    assert np.isnan(seq[:first]).all() and not np.isnan(seq[first:]).any()


def test_probabilities_are_cached(tmp_path, causal, builtin_qqq):
    context = SequenceContext(causal, cache_dir=tmp_path)
    first = context.calculate_probability(builtin_qqq)
    again = context.calculate_probability(builtin_qqq)
    assert context.cache_hits == 1 and np.array_equal(first, again, equal_nan=True)


def test_saved_with_its_caches_restored_and_switched(causal, causal_sibling, builtin_qqq, artifact):
    half = len(builtin_qqq) // 2
    whole = stream_probabilities(StreamContext(causal), builtin_qqq)
    first = StreamContext(causal)
    stream_probabilities(first, builtin_qqq.iloc[:half])
    saved = json.loads(first.to_json())
    assert set(saved["causal"]) == {"keys", "values", "clock", "logit"}
    restored = StreamContext.from_json(causal, first.to_json())
    rest = stream_probabilities(restored, builtin_qqq.iloc[half:])
    assert np.array_equal(rest, whole[half:], equal_nan=True)
    # another causal model on the same spec: its caches are rebuilt from the ring's rows, and
    # from then on it gives exactly what a context that ran it from the start gives
    reference = stream_probabilities(StreamContext(causal_sibling), builtin_qqq)
    switched = StreamContext.from_json(causal, first.to_json())
    switched.switch(causal_sibling)
    tail = stream_probabilities(switched, builtin_qqq.iloc[half:])
    assert np.array_equal(tail, reference[half:], equal_nan=True)
    other = StreamContext.from_json(causal_sibling, first.to_json(), other_model=True)
    assert np.array_equal(
        stream_probabilities(other, builtin_qqq.iloc[half:]), reference[half:], equal_nan=True
    )
    # to a window model (it needs T = 8 rows of the 15 kept), and not back: the window
    # context keeps 8 rows, the causal model needs 15
    to_window = StreamContext.from_json(causal, first.to_json())
    to_window.switch(artifact)
    window_ref = stream_probabilities(StreamContext(artifact), builtin_qqq)
    ahead = stream_probabilities(to_window, builtin_qqq.iloc[half:])
    assert np.array_equal(ahead, window_ref[half:], equal_nan=True)
    with pytest.raises(ParityError, match="needs 15 rows, this context keeps 8"):
        to_window.switch(causal)
    with pytest.raises(StateError, match="holds 8 rows; this model needs 15"):
        StreamContext.from_json(causal, to_window.to_json(), other_model=True)


def test_a_context_started_from_history_continues_bit_for_bit(causal):
    bars, _ = import_files([real_file("lse/QQQ_1min.parquet")])
    frame = bars.of("QQQ")
    data = as_input(frame)
    seq = SequenceContext(causal).calculate_probability(frame)
    model = load_model(causal)
    reach = model.reach
    changes = np.flatnonzero(np.diff(data.segment)) + 1
    cuts = [0, 3, reach - 1, reach, reach + 1]
    for start in changes[:2]:
        first = int(start + np.flatnonzero(~np.isnan(seq[start:]))[0])
        cuts += [int(start) + d for d in (-1, 0, 1, reach)]
        cuts += [first + d for d in (-reach, -1, 0, 1, 100)]
    for cut in cuts:
        context = StreamContext.from_history(model, data.slice(0, cut))
        got = stream_probabilities(context, frame.iloc[cut : cut + 600])
        assert np.array_equal(got, seq[cut : cut + 600], equal_nan=True), cut


def test_the_sequence_path_continues_a_snapshot_bit_for_bit(causal, builtin_qqq):
    model = load_model(causal)
    context = StreamContext(model)
    cut = 3000
    for bar in bars_of(builtin_qqq.iloc[:cut]):
        context.on_bar(bar)
    snapshot = context.snapshot()
    after = probabilities_after(model, snapshot, as_input(builtin_qqq.iloc[cut : cut + 800]))
    stream = stream_probabilities(context, builtin_qqq.iloc[cut : cut + 800])
    assert np.array_equal(after, stream, equal_nan=True) and not np.isnan(after).all()


def test_damaged_weights_are_refused_by_name(tmp_path, causal):
    flipped = tmp_path / "flipped"
    shutil.copytree(causal, flipped)
    data = bytearray((flipped / "model.safetensors").read_bytes())
    data[-5] ^= 1
    (flipped / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="model.safetensors: sha256 differs"):
        SequenceContext(flipped)
    # a consistent forgery (manifest re-hashed): the recorded rows catch the changed weight
    manifest = json.loads((flipped / MANIFEST).read_text())
    manifest["files"]["model.safetensors"] = sha256_file(flipped / "model.safetensors")
    (flipped / MANIFEST).write_text(json.dumps(manifest))
    data[-5] ^= 1
    data[-1] ^= 0x20  # the top byte of the last float (std of the last feature): its exponent
    (flipped / "model.safetensors").write_bytes(bytes(data))
    manifest["files"]["model.safetensors"] = sha256_file(flipped / "model.safetensors")
    (flipped / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="runtime parity|not finite"):
        StreamContext(flipped)


def test_both_paths_run_where_torch_cannot_be_imported(causal):
    identical, compared = compare_without_torch(causal)
    assert identical and compared > 500


def test_a_warm_start_from_a_causal_artifact(tmp_path, causal):
    run = causal_run(tmp_path / "warm")
    run.warm_start = causal
    run.train = type(run.train)(epochs=1, batch_size=128, learning_rate=1e-3, seed=3)
    run_training(run)
    meta = json.loads((tmp_path / "warm" / "model.meta.json").read_text())
    assert meta["warm_start"]["manifest_sha256"] == sha256_file(causal / MANIFEST)


def test_one_net_stepped_from_several_threads_gives_each_its_own_bits(causal):
    """The audit steps one loaded model from a thread pool (review of issue 18): each
    thread's states must not share buffers."""
    from concurrent.futures import ThreadPoolExecutor

    net = load_model(causal).net
    rng = np.random.default_rng(4)
    series = [rng.normal(0, 1, (3000, net.features)).astype(np.float32) for _ in range(4)]
    want = [net.run(net.state(), rows) for rows in series]

    def stepped(rows):
        state = net.state()
        return np.array([net.step(state, rows[i : i + 1], True, False) for i in range(len(rows))])

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(stepped, series))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "damage",
    [
        lambda c: c.pop("logit"),
        lambda c: c.update(logit="abc"),
        lambda c: c.update(keys="AAAA"),
        lambda c: c.update(clock=[99, 1]),
    ],
)
def test_a_damaged_saved_causal_state_is_one_state_error(causal, builtin_qqq, damage):
    context = StreamContext(causal)
    stream_probabilities(context, builtin_qqq.iloc[:1200])
    doc = json.loads(context.to_json())
    damage(doc["causal"])
    with pytest.raises(StateError, match="saved causal"):
        StreamContext.from_json(causal, json.dumps(doc))


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda m: m["config"].update(clip="x"), "config.clip"),
        (lambda m: m["config"].update(ff_mult=None), "config.ff_mult"),
        # T = 0: refused before any array is sized (the recorded rows no longer fit)
        (lambda m: m.update(sequence_length=0), "sequence_length|C - T \\+ 1"),
    ],
)
def test_bad_values_in_a_causal_meta_are_one_line_naming_the_file(tmp_path, causal, change, words):
    forged = tmp_path / "forged"
    shutil.copytree(causal, forged)
    meta = json.loads((forged / "model.meta.json").read_text())
    change(meta)
    (forged / "model.meta.json").write_text(json.dumps(meta))
    manifest = json.loads((forged / MANIFEST).read_text())
    manifest["files"]["model.meta.json"] = sha256_file(forged / "model.meta.json")
    (forged / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=f"(model.meta.json|parity_rows.npy): .*({words})"):
        load_model(forged)
    done = subprocess.run(
        [sys.executable, "-m", "sentio", "model", "verify", str(forged)],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "Traceback" not in done.stdout + done.stderr
