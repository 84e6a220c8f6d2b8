"""signature.json: an HMAC-SHA256 of the manifest under the user's key. It catches the edit a
recomputed manifest hides (thresholds moved: exposure 49% -> 96% in the issue), and every loader
checks it when a key is configured."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("torch", reason="the tiny artifact is trained (train extra)")

from sentio.core.errors import ArtifactError, OptionError
from sentio.core.hashing import sha256_file
from sentio.model import FILES, MANIFEST, SIGNATURE, SigningKey, info, load_verified, sign, verify
from sentio.model.artifact import write_artifact
from sentio.model.signing import ENV_KEY, ENV_KEY_FILE, signing_key

KEY = SigningKey(b"k" * 32, "test key")
OTHER = SigningKey(b"o" * 32, "another key")


def signed_copy(tmp_path, source, name="signed"):
    target = tmp_path / name
    shutil.copytree(source, target)
    sign(target, KEY)
    return target


def move_thresholds(directory):
    """The issue's attack: edit model.meta.json's thresholds and recompute the manifest. The
    forged value is a valid one (long lowered to short: trade far more often), so only the
    signature can tell; an out-of-range value fails the metadata check (test_verify.py)."""
    path = directory / "model.meta.json"
    meta = json.loads(path.read_text())
    meta["thresholds"]["long"] = meta["thresholds"]["short"]
    path.write_text(json.dumps(meta))
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest["files"]["model.meta.json"] = sha256_file(path)
    (directory / MANIFEST).write_text(json.dumps(manifest))


def signature_check(directory, key):
    return next(c for c in verify(directory, key) if c.name == "signature")


def test_a_signed_artifact_verifies_and_info_says_so(tmp_path, tiny_artifact, monkeypatch):
    monkeypatch.delenv(ENV_KEY, raising=False)
    monkeypatch.delenv(ENV_KEY_FILE, raising=False)
    art = signed_copy(tmp_path, tiny_artifact)
    assert json.loads((art / MANIFEST).read_text())["files"].keys() == set(FILES)  # not listed
    assert all(c.passed for c in verify(art, KEY))
    assert signature_check(art, KEY).detail.startswith("signed and verified")
    assert info(art, KEY)["signature"] == "signed and verified"
    assert info(art)["signature"] == "signed, not checked (no key)"
    assert info(tiny_artifact)["signature"] == "unsigned"
    unchecked = signature_check(art, None)
    assert unchecked.passed and not unchecked.checked


def test_edited_thresholds_with_a_recomputed_manifest_fail_the_signature(tmp_path, tiny_artifact):
    art = signed_copy(tmp_path, tiny_artifact)
    move_thresholds(art)
    # without a key the forgery is consistent: the manifest cannot tell (docs/model.md)
    assert [c.name for c in verify(art, None) if not c.passed] == []
    check = signature_check(art, KEY)
    assert not check.passed and "manifest.json was edited after signing" in check.detail
    assert info(art, KEY)["signature"].startswith("signature does not verify")


def test_every_loader_checks_the_signature_when_a_key_is_configured(
    tmp_path, tiny_artifact, monkeypatch
):
    from sentio.infer.registry import load_model

    forged = signed_copy(tmp_path, tiny_artifact, "forged")
    move_thresholds(forged)
    monkeypatch.setenv(ENV_KEY, KEY.secret.decode())
    for loader in (load_verified, load_model):
        with pytest.raises(ArtifactError, match="signature: signature.json does not match"):
            loader(forged)
        with pytest.raises(ArtifactError, match="unsigned, but a signing key is configured"):
            loader(tiny_artifact)
    good = signed_copy(tmp_path, tiny_artifact, "good")
    assert load_model(good).seq_len == 8


def test_another_key_is_named_as_such(tmp_path, tiny_artifact):
    art = signed_copy(tmp_path, tiny_artifact)
    check = signature_check(art, OTHER)
    assert not check.passed and f"configured {OTHER.key_id}" in check.detail


def test_signing_refuses_a_broken_artifact(tmp_path, tiny_artifact):
    art = tmp_path / "broken"
    shutil.copytree(tiny_artifact, art)
    (art / "metrics.json").write_text("{}")
    with pytest.raises(ArtifactError, match="not signed: manifest fails"):
        sign(art, KEY)
    assert not (art / SIGNATURE).exists()


def test_write_artifact_signs_when_given_a_key(tmp_path, tiny_artifact):
    files = {name: (tiny_artifact / name).read_bytes() for name in FILES}
    out = write_artifact(tmp_path / "new", files, key=KEY)
    assert (out / SIGNATURE).exists() and signature_check(out, KEY).passed
    assert not signature_check(out, OTHER).passed


def test_the_key_comes_from_a_flag_a_file_or_the_environment(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("f" * 20 + "\n")  # an editor's newline is not part of the key
    assert signing_key(key_file, env={}).secret == b"f" * 20
    assert signing_key(None, env={ENV_KEY_FILE: str(key_file)}).secret == b"f" * 20
    assert signing_key(None, env={ENV_KEY: "e" * 16}).secret == b"e" * 16
    assert signing_key(None, env={}) is None
    with pytest.raises(OptionError, match="--key-file: .* is not a file"):
        signing_key(tmp_path / "absent", env={})
    with pytest.raises(OptionError, match=f"{ENV_KEY}: the signing key has 5 bytes"):
        signing_key(None, env={ENV_KEY: "short"})
    assert "fffff" not in repr(signing_key(key_file, env={}))  # the secret is never shown
