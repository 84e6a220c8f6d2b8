"""What `verify` (and every loader) refuses: links and paths out of the artifact, malformed
manifests and metadata, a model.pt that is garbage or another model. Each case starts from a
copy of the tiny artifact; a forger who also recomputes the manifest is simulated by
:func:`rehash`."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("torch", reason="the tiny artifact is trained (train extra)")

import torch

from sentio.core.errors import ArtifactError
from sentio.core.hashing import sha256_file
from sentio.model import MANIFEST, info, load_verified, verify
from sentio.model import artifact as artifact_module


def copy(tmp_path, source, name="copy"):
    target = tmp_path / name
    shutil.copytree(source, target)
    return target


def rehash(directory):
    """Recompute manifest.json the way a forger would."""
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest["files"] = {name: sha256_file(directory / name) for name in manifest["files"]}
    (directory / MANIFEST).write_text(json.dumps(manifest))


def edit_json(path, change):
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


@pytest.fixture
def hashed(monkeypatch):
    """Every path the artifact module hashes."""
    seen = []
    original = artifact_module.sha256_file

    def record(path, *args, **kwargs):
        seen.append(str(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(artifact_module, "sha256_file", record)
    return seen


def test_a_symlinked_file_is_refused_before_anything_is_read(tmp_path, tiny_artifact, hashed):
    art = copy(tmp_path, tiny_artifact)
    outside = tmp_path / "outside.onnx"
    shutil.move(art / "model.onnx", outside)
    (art / "model.onnx").symlink_to(outside)  # same bytes: the hash alone would pass
    for call in (verify, load_verified, info):
        with pytest.raises(ArtifactError, match="model.onnx: is a symbolic link"):
            call(art)
    assert hashed == []


@pytest.mark.parametrize("path", ["../outside.bin", "/etc/hostname", "sub/model.onnx", ".."])
def test_a_manifest_path_leaving_the_directory_is_refused_unopened(
    tmp_path, tiny_artifact, hashed, path
):
    art = copy(tmp_path, tiny_artifact)
    (tmp_path / "outside.bin").write_bytes(b"x")
    edit_json(art / MANIFEST, lambda m: m["files"].__setitem__(path, "0" * 64))
    with pytest.raises(ArtifactError, match="not a plain file name inside the artifact"):
        verify(art)
    assert hashed == []


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        (MANIFEST, "[]", "must be a JSON object, got a list"),
        (MANIFEST, '"files"', "must be a JSON object, got a str"),
        (MANIFEST, "{}", "lacks the required key 'files'"),
        (MANIFEST, '{"files": []}', "key 'files' must be a dict"),
        (MANIFEST, '{"files": {"model.onnx": 5}}', "must be 64 lowercase hex digits"),
        (MANIFEST, "{not json", "not readable JSON"),
        ("model.meta.json", "\x00\xff binary", "not readable JSON"),
        (MANIFEST, '{"files": {}, "files": {}}', "key 'files' is written twice"),
    ],
)
def test_a_malformed_file_is_one_error_naming_it(tmp_path, tiny_artifact, name, content, says):
    art = copy(tmp_path, tiny_artifact)
    (art / name).write_text(content)
    if name != MANIFEST:
        rehash(art)
    with pytest.raises(ArtifactError, match=name) as caught:
        verify(art)
    assert says in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda m: m.pop("expects"), "lacks the required key 'expects'"),
        (lambda m: m["expects"].pop("spec_hash"), "lacks the required key 'expects.spec_hash'"),
        (lambda m: m.__setitem__("sequence_length", "8"), "key 'sequence_length' must be a int"),
        (lambda m: m["parity"].pop("logits_eager"), "parity.logits_eager"),
    ],
)
def test_model_meta_json_lacking_a_key_names_it(tmp_path, tiny_artifact, change, says):
    art = copy(tmp_path, tiny_artifact)
    edit_json(art / "model.meta.json", change)
    rehash(art)
    for call in (verify, load_verified):
        with pytest.raises(ArtifactError, match="model.meta.json") as caught:
            call(art)
        assert says in str(caught.value)


def test_a_missing_file_or_empty_directory_is_named(tmp_path, tiny_artifact):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    cases = {"missing": "no such artifact directory", "empty": "is empty", "file": "is a file"}
    for name, says in cases.items():
        with pytest.raises(ArtifactError, match=says):
            verify(tmp_path / name)


def test_a_truncated_onnx_is_refused_even_when_rehashed(tmp_path, tiny_artifact):
    art = copy(tmp_path, tiny_artifact)
    data = (art / "model.onnx").read_bytes()
    (art / "model.onnx").write_bytes(data[: len(data) // 3])
    assert [c.name for c in verify(art) if not c.passed] == ["manifest"]
    rehash(art)
    with pytest.raises(ArtifactError, match="model.onnx: ONNX Runtime cannot load"):
        verify(art)


def torchscript_check(directory):
    return next(c for c in verify(directory, torchscript=True) if c.name == "torchscript parity")


def test_model_pt_is_run_on_the_recorded_windows(tmp_path, tiny_artifact):
    good = torchscript_check(tiny_artifact)
    assert good.passed and good.checked and "256 recorded windows" in good.detail

    garbage = copy(tmp_path, tiny_artifact, "garbage")
    (garbage / "model.pt").write_bytes(b"PK\x03\x04 not a TorchScript archive" * 50)
    rehash(garbage)
    check = torchscript_check(garbage)
    assert not check.passed and "model.pt cannot run the recorded windows" in check.detail


def test_another_model_pt_is_caught_by_its_logits(tmp_path, tiny_artifact):
    """Another model: the same network with its weights scaled (the ONNX file is untouched,
    so only the TorchScript check can see it)."""
    other = copy(tmp_path, tiny_artifact, "other")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.load(str(other / "model.pt"))
        with torch.no_grad():
            for parameter in module.parameters():
                parameter.mul_(1.5)
        buffer = io.BytesIO()
        torch.jit.save(module, buffer)
    (other / "model.pt").write_bytes(buffer.getvalue())
    rehash(other)
    check = torchscript_check(other)
    assert not check.passed and "max |logit diff|" in check.detail
    worst = float(check.detail.split("max |logit diff| ")[1].split(" ")[0])
    assert worst > 1e-5
    assert load_verified(other)  # loaders run ONNX only; model.pt is checked by `model verify`


def test_verify_reports_torchscript_as_not_checked_without_torch(tmp_path, tiny_artifact):
    import subprocess
    import sys

    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ModuleNotFoundError(name, name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from sentio.model import verify\n"
        f"checks = verify({str(tiny_artifact)!r}, torchscript=True)\n"
        "print([(c.name, c.passed, c.checked, c.detail) for c in checks][-1])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "('torchscript parity', True, False, 'model.pt not checked (torch not installed)')" in (
        done.stdout
    )


def test_parity_windows_of_another_shape_are_named(tmp_path, tiny_artifact):
    art = copy(tmp_path, tiny_artifact)
    windows = np.load(art / "parity_windows.npy")
    np.save(art / "parity_windows.npy", windows[:10])
    rehash(art)
    with pytest.raises(ArtifactError, match="parity_windows.npy: shape"):
        verify(art)


def test_info_is_new_york_time_and_never_a_python_repr(tiny_artifact):
    """`model info` shows the label as words and every time in New York (issue 12)."""
    done = subprocess.run(
        [sys.executable, "-m", "sentio", "model", "info", str(tiny_artifact)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "New York" in done.stdout and "horizon_bars: 3" in done.stdout
    for sign in ("+00:00", "{'", "['"):
        assert sign not in done.stdout, sign


# --- hostile JSON and out-of-range values (issue 12, bad-input attack round 2) ----------------


@pytest.mark.parametrize("name", ["model.meta.json", MANIFEST])
def test_json_nested_past_the_stack_is_one_error_naming_the_file(tmp_path, tiny_artifact, name):
    """100,000 nested '[' exceed Python's recursion limit in json.loads (the attack's
    RecursionError); the reader turns that, and any depth past its cap, into one error."""
    for depth in (100_000, 40):  # past the interpreter's stack; past MAX_JSON_DEPTH only
        art = copy(tmp_path, tiny_artifact, f"deep{depth}")
        (art / name).write_text("[" * depth + "]" * depth)
        if name != MANIFEST:
            rehash(art)
        for call in (verify, load_verified, info):
            with pytest.raises(ArtifactError, match=f"{name}: not readable JSON") as caught:
                call(art)
            assert "nested deeper than 32 levels" in str(caught.value)


def test_a_string_that_is_not_text_is_refused_by_every_reader(tmp_path, tiny_artifact):
    """A JSON escape can hold a lone surrogate, which no UTF-8 terminal can print (the attack's
    UnicodeEncodeError in `model info`); it is refused on reading, naming the key."""
    art = copy(tmp_path, tiny_artifact)
    text = (art / "model.meta.json").read_text()
    (art / "model.meta.json").write_text(text.replace('"TFA"', '"T\\ud800"', 1))
    rehash(art)
    for call in (verify, load_verified, info):
        with pytest.raises(ArtifactError, match="model.meta.json: 'model_type': holds U") as caught:
            call(art)
        str(caught.value).encode("utf-8")  # the message itself is printable


def test_a_huge_manifest_name_is_shown_cut(tmp_path, tiny_artifact):
    art = copy(tmp_path, tiny_artifact)
    edit_json(art / MANIFEST, lambda m: m["files"].__setitem__("x" * 100_000, "0" * 64))
    with pytest.raises(ArtifactError, match="too long") as caught:
        verify(art)
    assert len(str(caught.value)) < 400 and "(100002 characters)" in str(caught.value)


def _splits_reversed(meta):
    splits = meta["data"]["splits"]
    splits["train"], splits["test"] = splits["test"], splits["train"]


def _config_disagrees(meta):
    meta["config"]["d_model"] = meta["d_model"] * 2


# Each forged value is refused by a rule of model.meta.json, independently of the manifest
# (recomputed): the strategy reads thresholds as probabilities with short <= long
# (sentio.strategy.signal), a label looks >= 1 bar ahead, strattest starts after the
# validation end (the splits must be in time order), std divides.
BAD_VALUES = [
    (lambda m: m["thresholds"].__setitem__("long", float("nan")), "thresholds.long", "nan"),
    (lambda m: m["thresholds"].update(long=0.1, short=0.9), "short 0.9 must not exceed", "0.1"),
    (lambda m: m["thresholds"].update(long=5.0, short=-3.0), "thresholds.long", "[0, 1]"),
    (lambda m: m["label"].__setitem__("horizon_bars", 0), "label.horizon_bars", ">= 1"),
    (lambda m: m["label"].__setitem__("deadzone_bp", -1), "label.deadzone_bp", ">= 0"),
    (_splits_reversed, "data.splits", "in time"),
    (lambda m: m["normalization"].__setitem__("std", [0.0] * 55), "normalization", "std > 0"),
    (lambda m: m.__setitem__("nhead", 3), "not divisible by nhead", "d_model"),
    (_config_disagrees, "config disagrees", "d_model"),
    (lambda m: m.__setitem__("saved_at", "yesterday"), "saved_at", "ISO"),
]


@pytest.mark.parametrize(("change", "rule", "says"), BAD_VALUES, ids=[b[1] for b in BAD_VALUES])
def test_an_out_of_range_value_fails_verify_and_every_loader(
    tmp_path, tiny_artifact, change, rule, says
):
    from sentio.infer.registry import load_model

    art = copy(tmp_path, tiny_artifact)
    edit_json(art / "model.meta.json", change)
    rehash(art)
    failed = [c for c in verify(art) if not c.passed]
    assert [c.name for c in failed] == ["metadata"]
    assert rule in failed[0].detail and says in failed[0].detail
    for loader in (load_verified, load_model, info):
        with pytest.raises(ArtifactError, match="model.meta.json") as caught:
            loader(art)
        assert rule in str(caught.value)


def test_legacy_mean_or_std_fails_the_loaders_not_only_verify(tmp_path, tiny_artifact):
    """The attack's std 0: `model verify` failed it but strattest and `model parity` loaded
    it. Only a binding clip is left to verify (loaders never read it, test_legacy_clip.py)."""
    from sentio.infer.registry import load_model

    for field, value in (("std", 0.0), ("mean", float("nan"))):
        art = copy(tmp_path, tiny_artifact, field)
        edit_json(art / "metadata.json", lambda m, f=field, v=value: m.__setitem__(f, [v] * 55))
        rehash(art)
        failed = [c for c in verify(art) if not c.passed]
        assert [c.name for c in failed] == ["metadata"] and "std 1" in failed[0].detail
        for loader in (load_verified, load_model, info):
            with pytest.raises(ArtifactError, match="metadata.json mean must be 0 and std 1"):
                loader(art)


def test_the_onnx_graph_shape_is_checked_against_model_meta_json(tmp_path, tiny_artifact):
    """A forger who changes T everywhere in the JSON files cannot change the graph: it was
    exported for windows of T=8 (tiny_run), F=55 (feature_spec_55_minimal)."""
    art = copy(tmp_path, tiny_artifact)

    def longer(meta):
        meta["sequence_length"] = meta["expects"]["seq_len"] = meta["config"]["seq_len"] = 9

    edit_json(art / "model.meta.json", longer)
    edit_json(art / "metadata.json", lambda m: m.__setitem__("seq_len", 9))
    rehash(art)
    (check,) = [c for c in verify(art) if not c.passed]
    assert "model.onnx takes windows of [8, 55] (T, F), model.meta.json says [9, 55]" in (
        check.detail
    )


def test_info_shows_a_failed_manifest(tmp_path, tiny_artifact):
    art = copy(tmp_path, tiny_artifact)
    (art / "model.onnx").write_bytes(b"\x00" * 100)  # manifest not recomputed
    assert info(art)["manifest"] == "FAILED: model.onnx: sha256 differs from manifest.json"
    assert info(tiny_artifact)["manifest"] == "7 files, every sha256 matches"
