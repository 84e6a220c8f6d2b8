"""The model registry: versioned artifacts, an atomic ``current`` pointer, promote, rollback
and a history (``sentio model publish|promote|rollback|history``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from sentio.core.errors import ArtifactError
from sentio.model.versions import ModelRegistry, RegistryError
from tests.cli.badinput import assert_refused, run_script


def test_publish_promote_rollback_and_history(tmp_path, tiny_artifact, retrained_artifact):
    registry = ModelRegistry(tmp_path / "reg")
    first = registry.publish(tiny_artifact, "the first")
    assert registry.publish(tiny_artifact) == first  # the same bytes are one version
    other = registry.publish(retrained_artifact, "retrained")
    assert registry.versions() == [first, other] and first.startswith("0001-")
    assert registry.current() is None
    assert registry.promote(first, "go live") is None
    assert registry.promote(other, "better", gate={"auc": 0.53}) == first
    assert registry.current() == other
    manifest = (retrained_artifact / "manifest.json").read_bytes()
    assert (registry.path(other) / "manifest.json").read_bytes() == manifest
    assert registry.rollback("worse live") == first and registry.current() == first
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback()  # the first was promoted over none
    actions = [(e["action"], e["version"], e.get("previous")) for e in registry.history()]
    assert actions == [
        ("publish", first, None),
        ("publish", other, None),
        ("promote", first, None),
        ("promote", other, first),
        ("rollback", first, other),
    ]
    assert registry.history()[3]["gate"] == {"auc": 0.53}


def test_a_changed_version_is_refused_when_handed_out(tmp_path, tiny_artifact):
    registry = ModelRegistry(tmp_path / "reg")
    version = registry.publish(tiny_artifact)
    registry.promote(version)
    manifest = registry.versions_dir / version / "manifest.json"
    manifest.write_bytes(manifest.read_bytes() + b" ")
    with pytest.raises(ArtifactError, match="was changed"):
        registry.current()


def test_a_tampered_artifact_is_not_published(tmp_path, tiny_artifact):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_artifact, copy)
    (copy / "model.onnx").write_bytes((copy / "model.onnx").read_bytes() + b"x")
    with pytest.raises(ArtifactError):
        ModelRegistry(tmp_path / "reg").publish(copy)
    assert not (tmp_path / "reg" / "versions").exists() or not any(
        (tmp_path / "reg" / "versions").iterdir()
    )


def test_a_kill_while_promoting_leaves_one_pointer_or_the_other(
    tmp_path, tiny_artifact, retrained_artifact
):
    """The pointer is renamed into place: killed at any moment, a reader finds the old
    version or the new one, whole. A child process promotes back and forth while this one
    reads; then it is killed with SIGKILL."""
    registry = ModelRegistry(tmp_path / "reg")
    a, b = registry.publish(tiny_artifact), registry.publish(retrained_artifact)
    registry.promote(a)
    code = (
        "import sys; from sentio.model.versions import ModelRegistry\n"
        f"r = ModelRegistry({str(tmp_path / 'reg')!r})\n"
        f"while True:\n    r.promote({b!r}); r.promote({a!r})\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        seen = set()
        for _ in range(300):
            seen.add(registry.current())
        assert seen <= {a, b}
    finally:
        child.kill()
        child.wait()
    assert registry.current() in (a, b)
    assert json.loads(registry.pointer.read_text())["version"] in (a, b)
    leftovers = [p for p in registry.folder.iterdir() if p.name.startswith(".")]
    assert len(leftovers) <= 1  # at most the temporary file of the write the kill cut


def test_the_commands(tmp_path, tiny_artifact, retrained_artifact):
    reg = str(tmp_path / "reg")
    done = run_script("sentio", "model", "publish", str(tiny_artifact), "--registry", reg)
    assert done.returncode == 0, done.stderr
    first = ModelRegistry(reg).versions()[0]
    assert (
        run_script(
            "sentio", "model", "publish", str(retrained_artifact), "--registry", reg
        ).returncode
        == 0
    )
    other = ModelRegistry(reg).versions()[1]
    for version in (first, other):
        done = run_script("sentio", "model", "promote", version, "--registry", reg)
        assert done.returncode == 0, done.stderr
    assert run_script("sentio", "model", "rollback", "--registry", reg).returncode == 0
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "reg").rglob("*")}
    shown = run_script("sentio", "model", "history", "--registry", reg, "--json")
    doc = json.loads(shown.stdout)
    assert doc["current"] == first and doc["versions"] == [first, other]
    assert [e["action"] for e in doc["history"]][-1] == "rollback"
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "reg").rglob("*")} == before  # reads


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["promote", "0099-abcdefabcdef", "--registry", "{reg}"], ["no version", "0099"]),
        (["rollback", "--registry", "{reg}"], ["nothing to roll back to"]),
        (["history", "--registry", "{tmp}/nowhere"], ["--registry", "not a registry"]),
        (["publish", "{tmp}/nowhere", "--registry", "{reg}"], ["nowhere"]),
        (["publish", "{art}", "--registry", "{file}"], ["--registry", "is a file"]),
    ],
)
def test_bad_registry_input_is_one_line(tmp_path, tiny_artifact, args, says):
    reg = tmp_path / "reg"
    ModelRegistry(reg).promote(ModelRegistry(reg).publish(tiny_artifact))
    (tmp_path / "file").write_text("x")
    values = {"reg": str(reg), "tmp": str(tmp_path), "art": str(tiny_artifact),
              "file": str(tmp_path / "file")}  # fmt: skip
    done = run_script("sentio", "model", *[a.format(**values) for a in args], cwd=tmp_path)
    assert_refused(done, *says)
