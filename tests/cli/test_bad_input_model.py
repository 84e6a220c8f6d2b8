"""Bad-input corpus for `sentio train` and `sentio model ...`, through the real console script:
one case per class of bad input (issue 12 sections 3 and 4). Each is refused with exit 2 and one
`error:` line naming the flag or file, before any training; a verify that runs and finds a
damaged artifact exits 1 with a FAIL row naming the file. Never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sentio.core.hashing import sha256_file
from tests.cli.badinput import assert_refused, run_script, script

# valid flags for a tiny run: every case below breaks exactly one thing
TINY = ["--d-model", "16", "--nhead", "2"]  # --data builtin is the default
TINY += ["--num-layers", "1", "--sequence-length", "8", "--epochs", "1", "--no-progress"]


def without(base: list[str], override: list[str]) -> list[str]:
    """``base`` less the flag/value pairs that ``override`` gives again (a flag given twice
    is itself refused, so a case replaces the tiny settings instead of repeating them)."""
    given = {a for a in override if a.startswith("--")}
    out, skip = [], False
    for i, arg in enumerate(base):
        if skip:
            skip = False
            continue
        if arg in given:
            has_value = i + 1 < len(base) and not base[i + 1].startswith("--")
            skip = has_value
            continue
        out.append(arg)
    return out


@dataclass
class Bad:
    """A bad invocation: ``args`` may hold ``{tmp}`` and ``{art}`` (a fresh copy of the tiny
    artifact, prepared by ``setup``); ``says`` are words the one message must contain."""

    id: str
    args: list[str]
    says: list[str]
    setup: Callable[[Path], None] | None = None
    env: dict = field(default_factory=dict)


def rehash(art: Path) -> None:
    """Recompute the manifest as a forger would, so only the deeper checks can object."""
    manifest = json.loads((art / "manifest.json").read_text())
    manifest["files"] = {name: sha256_file(art / name) for name in manifest["files"]}
    (art / "manifest.json").write_text(json.dumps(manifest))


def manifest_is_a_list(art: Path) -> None:
    (art / "manifest.json").write_text("[]")


def meta_lacks_expects(art: Path) -> None:
    meta = json.loads((art / "model.meta.json").read_text())
    del meta["expects"]
    (art / "model.meta.json").write_text(json.dumps(meta))
    rehash(art)


def onnx_is_a_symlink(art: Path) -> None:
    outside = art.parent / "elsewhere.onnx"
    shutil.move(art / "model.onnx", outside)
    (art / "model.onnx").symlink_to(outside)


def manifest_leaves_the_directory(art: Path) -> None:
    (art.parent / "secret.txt").write_text("not the artifact's")
    manifest = json.loads((art / "manifest.json").read_text())
    manifest["files"]["../secret.txt"] = sha256_file(art.parent / "secret.txt")
    (art / "manifest.json").write_text(json.dumps(manifest))


def onnx_truncated_and_rehashed(art: Path) -> None:
    data = (art / "model.onnx").read_bytes()
    (art / "model.onnx").write_bytes(data[: len(data) // 2])
    rehash(art)


def edit_meta(art: Path, change: Callable[[dict], None], name: str = "model.meta.json") -> None:
    doc = json.loads((art / name).read_text())
    change(doc)
    (art / name).write_text(json.dumps(doc))
    rehash(art)


def meta_nested_past_the_stack(art: Path) -> None:
    (art / "model.meta.json").write_text("[" * 100_000 + "]" * 100_000)
    rehash(art)


def manifest_nested_past_the_stack(art: Path) -> None:
    (art / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)


def meta_lone_surrogate(art: Path) -> None:
    text = (art / "model.meta.json").read_text()
    (art / "model.meta.json").write_text(text.replace('"TFA"', '"T\\ud800"', 1))
    rehash(art)


def manifest_huge_name(art: Path) -> None:
    manifest = json.loads((art / "manifest.json").read_text())
    manifest["files"]["x" * 100_000] = "0" * 64
    (art / "manifest.json").write_text(json.dumps(manifest))


def thresholds_nan(art: Path) -> None:
    edit_meta(art, lambda m: m["thresholds"].__setitem__("long", float("nan")))


def thresholds_swapped(art: Path) -> None:
    edit_meta(art, lambda m: m["thresholds"].update(long=0.1, short=0.9))


def legacy_std_zero(art: Path) -> None:
    edit_meta(art, lambda m: m.__setitem__("std", [0.0] * len(m["std"])), "metadata.json")


def non_empty_output(tmp: Path) -> None:
    (tmp / "out").mkdir()
    (tmp / "out" / "keep.txt").write_text("the user's file")


def stale_checkpoint(tmp: Path) -> None:
    (tmp / "out.ckpt").mkdir()
    (tmp / "out.ckpt" / "last.pt").write_bytes(b"an earlier run")


def a_file(tmp: Path) -> None:
    (tmp / "file").write_text("x")


def an_empty_dir(tmp: Path) -> None:
    (tmp / "empty").mkdir()


TRAIN = [
    Bad("negative learning rate", ["--learning-rate", "-0.001"], ["--learning-rate", "> 0"]),
    Bad("nan learning rate", ["--learning-rate", "nan"], ["--learning-rate", "nan"]),
    Bad("zero epochs", ["--epochs", "0"], ["--epochs"]),
    Bad("negative batch size", ["--batch-size", "-1"], ["--batch-size"]),
    Bad("negative seed", ["--seed", "-1"], ["--seed"]),
    Bad("huge model", ["--d-model", "1000000000"], ["--d-model", "4096"]),
    Bad("heads do not divide width", ["--nhead", "3"], ["divisible", "--nhead"]),
    Bad("unknown device", ["--device", "tpu"], ["--device", "tpu"]),
    Bad("quick with a preset", ["--quick", "--preset", "default"], ["--preset", "--quick"]),
    Bad("unknown preset", ["--preset", "huge"], ["--preset", "huge", "quick"]),
    Bad("unknown cpu capability", ["--cpu-capability", "avx3"], ["--cpu-capability", "avx2"]),
    Bad(
        "built-in market flag with files",
        ["--data", "{tmp}/bars.parquet", "--signal-strength", "0.1"],
        ["--signal-strength", "--data builtin"],
    ),
    Bad(
        "output not empty",
        ["--output", "{tmp}/out"],
        ["--output", "not empty"],
        setup=non_empty_output,
    ),
    Bad("output is a file", ["--output", "{tmp}/file"], ["--output", "is a file"], a_file),
    Bad(
        "an earlier run's checkpoint",
        ["--output", "{tmp}/out"],
        ["--output", "--resume", "out.ckpt"],
        stale_checkpoint,
    ),
    Bad("resume without a checkpoint", ["--resume", "{tmp}/none"], ["--resume", "last.pt"]),
    Bad("missing key file", ["--key-file", "{tmp}/no-key"], ["--key-file", "not a file"]),
    Bad("short signing key", [], ["SENTIO_SIGNING_KEY", "16"], env={"SENTIO_SIGNING_KEY": "abc"}),
    Bad("missing data file", ["--data", "{tmp}/absent.parquet"], ["absent.parquet"]),
    # Path("") is ".": an empty value would write into, or resume from, the current folder
    Bad("empty output", ["--output", ""], ["--output", "is empty"]),
    Bad("empty resume", ["--resume", ""], ["--resume", "is empty"]),
    Bad("output names no folder", ["--output", "."], ["--output", "names no new folder"]),
]

MODEL = [
    Bad("info of a missing dir", ["model", "info", "{tmp}/nothing"], ["no such", "nothing"]),
    Bad("info of a file", ["model", "info", "{tmp}/file"], ["is a file"], a_file),
    Bad("verify of an empty dir", ["model", "verify", "{tmp}/empty"], ["is empty"], an_empty_dir),
    Bad(
        "manifest is a list",
        ["model", "verify", "{art}"],
        ["manifest.json", "json object"],
        manifest_is_a_list,
    ),
    Bad(
        "meta lacks expects",
        ["model", "verify", "{art}"],
        ["model.meta.json", "'expects'"],
        meta_lacks_expects,
    ),
    Bad(
        "info when meta lacks expects",
        ["model", "info", "{art}"],
        ["model.meta.json", "'expects'"],
        meta_lacks_expects,
    ),
    Bad(
        "symlinked model.onnx",
        ["model", "verify", "{art}"],
        ["model.onnx", "symbolic link"],
        onnx_is_a_symlink,
    ),
    Bad(
        "manifest path leaving the directory",
        ["model", "verify", "{art}"],
        ["manifest.json", "../secret.txt", "plain file name"],
        manifest_leaves_the_directory,
    ),
    Bad(
        "truncated model.onnx, manifest recomputed",
        ["model", "verify", "{art}"],
        ["model.onnx", "onnx runtime cannot load"],
        onnx_truncated_and_rehashed,
    ),
    Bad("sign without a key", ["model", "sign", "{art}"], ["no signing key", "--key-file"]),
    Bad(
        "json nested past the stack",
        ["model", "verify", "{art}"],
        ["model.meta.json", "nested deeper than 32"],
        meta_nested_past_the_stack,
    ),
    Bad(
        "info of a manifest nested past the stack",
        ["model", "info", "{art}"],
        ["manifest.json", "nested deeper than 32"],
        manifest_nested_past_the_stack,
    ),
    Bad(
        "a string that is not text",
        ["model", "info", "{art}"],
        ["model.meta.json", "'model_type'", "U+D800"],
        meta_lone_surrogate,
    ),
    Bad(
        "a 100,000-character manifest name",
        ["model", "verify", "{art}"],
        ["manifest.json", "(100002 characters)", "too long"],
        manifest_huge_name,
    ),
    Bad(
        "info of a NaN threshold",
        ["model", "info", "{art}"],
        ["model.meta.json", "thresholds.long", "nan"],
        thresholds_nan,
    ),
    Bad(
        "strattest on swapped thresholds",
        ["strattest", "tfa", "--model", "{art}", "--blocks", "1", "--no-cache"],
        ["model.meta.json", "thresholds", "must not exceed"],
        thresholds_swapped,
    ),
    Bad(
        "strattest on a legacy std of 0",
        ["strattest", "tfa", "--model", "{art}", "--blocks", "1", "--no-cache"],
        ["metadata.json mean must be 0 and std 1"],
        legacy_std_zero,
    ),
]


def expand(args: list[str], tmp: Path, art: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp)).replace("{art}", str(art)) for a in args]


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTIO_SIGNING_KEY")}
    return {**env, **extra}


def run_case(case: Bad, tmp: Path, art: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [script("sentio"), *expand(case.args, tmp, art)],
        capture_output=True,
        text=True,
        cwd=tmp,
        env=clean_env(**case.env),
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


@pytest.mark.parametrize("case", TRAIN, ids=[c.id for c in TRAIN])
def test_train_refuses_before_training(case, tmp_path):
    if case.setup:
        case.setup(tmp_path)
    (tmp_path / "bars.parquet").write_bytes(b"")  # only named, never read: the flag fails first
    args = [*without(TINY + ["--output", "{tmp}/new"], case.args), *case.args]
    done = run_case(Bad(case.id, ["train", *args], case.says, env=case.env), tmp_path, tmp_path)
    assert_refused(done, *expand(case.says, tmp_path, tmp_path))
    assert not (tmp_path / "new").exists() and not (tmp_path / "new.ckpt").exists()
    if case.setup is non_empty_output:
        assert (tmp_path / "out" / "keep.txt").read_text() == "the user's file"


@pytest.fixture
def art(tmp_path, tiny_artifact):
    target = tmp_path / "art"
    shutil.copytree(tiny_artifact, target)
    return target


@pytest.mark.parametrize("case", MODEL, ids=[c.id for c in MODEL])
def test_model_commands_refuse_with_one_line(case, tmp_path, art):
    if case.setup:
        case.setup(art if "{art}" in " ".join(case.args) else tmp_path)
    assert_refused(run_case(case, tmp_path, art), *case.says)


def verify_fails(done: subprocess.CompletedProcess, check: str, *says: str) -> None:
    """`model verify` ran and found a damaged artifact: exit 1, a FAIL row, no traceback."""
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:], done.stdout[-2000:])
    assert "Traceback" not in done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if check in line]
    assert rows and "FAIL" in rows[0], done.stdout
    for word in says:
        assert word in done.stdout, (word, done.stdout)


def test_model_command_messages_stay_short(tmp_path, art):
    """The one line echoes a 100,000-character manifest name as a bounded excerpt."""
    manifest_huge_name(art)
    done = run_script("sentio", "model", "verify", str(art), env=clean_env())
    assert_refused(done, "manifest.json")
    assert len(done.stderr) + len(done.stdout) < 600, len(done.stderr)


@pytest.mark.parametrize(
    ("change", "says"),
    [(thresholds_swapped, "must not exceed long"), (legacy_std_zero, "std 1")],
    ids=["swapped thresholds", "legacy std 0"],
)
def test_verify_fails_a_forged_value_in_its_metadata_row(tmp_path, art, change, says):
    change(art)  # the manifest is recomputed: only the metadata rules can object
    done = run_script("sentio", "model", "verify", str(art), env=clean_env())
    verify_fails(done, "metadata", says)


def test_info_shows_a_failed_manifest_and_exits_1(tmp_path, art):
    (art / "model.onnx").write_bytes(os.urandom(4096))  # manifest not recomputed
    done = run_script("sentio", "model", "info", str(art), "--json", env=clean_env())
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)
    assert summary["manifest"] == "FAILED: model.onnx: sha256 differs from manifest.json"


def test_verify_fails_a_truncated_onnx_naming_it(tmp_path, art):
    data = (art / "model.onnx").read_bytes()
    (art / "model.onnx").write_bytes(data[:1000])
    verify_fails(
        run_script("sentio", "model", "verify", str(art), env=clean_env()), "manifest", "model.onnx"
    )


def test_verify_fails_a_garbage_model_pt(tmp_path, art):
    (art / "model.pt").write_bytes(os.urandom(4096))
    rehash(art)
    done = run_script("sentio", "model", "verify", str(art), env=clean_env())
    verify_fails(done, "torchscript parity", "model.pt cannot run")


def test_verify_fails_an_unsigned_artifact_when_a_key_is_configured(tmp_path, art):
    done = run_script(
        "sentio", "model", "verify", str(art), env=clean_env(SENTIO_SIGNING_KEY="k" * 20)
    )
    verify_fails(done, "signature", "unsigned")


def test_sign_then_edit_then_verify(tmp_path, art):
    key = tmp_path / "key"
    key.write_text("a-long-enough-secret-key\n")
    signed = run_script(
        "sentio", "model", "sign", str(art), "--key-file", str(key), env=clean_env()
    )
    assert signed.returncode == 0 and "signed" in signed.stdout, signed.stderr
    info = run_script(
        "sentio", "model", "info", str(art), "--key-file", str(key), "--json", env=clean_env()
    )
    assert json.loads(info.stdout)["signature"] == "signed and verified"
    meta = json.loads((art / "model.meta.json").read_text())
    meta["thresholds"]["long"] = 0.0  # the forgery, manifest recomputed
    (art / "model.meta.json").write_text(json.dumps(meta))
    rehash(art)
    done = run_script(
        "sentio", "model", "verify", str(art), "--key-file", str(key), env=clean_env()
    )
    verify_fails(done, "signature", "edited after signing")


# --- without the train extra ----------------------------------------------------------------

BLOCK_TORCH = """
import sys

class _NoTorch:
    # the train extra is not installed: torch (and onnx) cannot be imported
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "onnx"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoTorch())
"""


@pytest.fixture
def no_torch(tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(BLOCK_TORCH)
    return clean_env(PYTHONPATH=str(folder))


def test_train_without_the_train_extra_names_it(tmp_path, no_torch):
    done = run_script("sentio", "train", *TINY, "--output", str(tmp_path / "o"), env=no_torch)
    assert_refused(done, "training needs the train extra", "pip install 'sentio[train]'")


def test_verify_without_torch_says_model_pt_was_not_checked(art, no_torch):
    done = run_script("sentio", "model", "verify", str(art), env=no_torch)
    assert done.returncode == 0, done.stderr
    assert "not checked" in done.stdout and "torch not installed" in done.stdout


# --- folders this user cannot write (run as nobody: root writes anywhere) ---------------------


@pytest.fixture
def nobody_dir():
    """A world-readable folder outside pytest's private tmp, with a numba cache nobody can
    write (numba caches compiled features next to the sources, which nobody cannot)."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed: cannot run a command as an unprivileged user")
    folder = Path(tempfile.mkdtemp(prefix="sentio-nobody-"))
    folder.chmod(0o755)
    (folder / "numba").mkdir(mode=0o777)
    (folder / "numba").chmod(0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def as_nobody(folder: Path, *args: str) -> subprocess.CompletedProcess:
    command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", script("sentio")]
    done = subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        cwd=folder,
        env=clean_env(NUMBA_CACHE_DIR=str(folder / "numba"), HOME=str(folder)),
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    if "setpriv:" in done.stderr:
        pytest.skip(f"setpriv cannot switch user here: {done.stderr.strip()[:200]}")
    return done


def test_train_refuses_an_output_folder_it_cannot_write(nobody_dir):
    (nobody_dir / "ro").mkdir(mode=0o755)  # root's folder: nobody cannot write in it
    done = as_nobody(nobody_dir, "train", *TINY, "--output", str(nobody_dir / "ro" / "out"))
    assert_refused(done, "--output", "permission denied")


def test_train_refuses_a_checkpoint_folder_it_cannot_write(nobody_dir):
    ckpt = nobody_dir / "run.ckpt"
    ckpt.mkdir(mode=0o755)
    (ckpt / "last.pt").write_bytes(b"")
    (ckpt / "last.pt").chmod(0o644)
    writable = nobody_dir / "w"
    writable.mkdir(mode=0o777)
    writable.chmod(0o777)
    done = as_nobody(
        nobody_dir, "train", *TINY, "--output", str(writable / "out"), "--resume", str(ckpt)
    )
    assert_refused(done, "--resume", "permission denied")
