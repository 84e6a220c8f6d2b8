"""What `sentio train` refuses before it reads a bar (bad flag values, outputs it could not
write), what it says when writing fails after training, and the CPU pin."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from sentio.core.environment import environment
from sentio.core.errors import ArtifactError, OptionError, OutputError
from sentio.model.config import ModelConfigError, TFAConfig
from sentio.train.config import TrainConfig
from sentio.train.machine import resolve
from sentio.train.pipeline import TrainRun, check_paths


@pytest.mark.parametrize(
    ("field", "value", "flag"),
    [
        ("learning_rate", -0.001, "--learning-rate"),
        ("learning_rate", math.nan, "--learning-rate"),
        ("learning_rate", math.inf, "--learning-rate"),
        ("learning_rate", 0.0, "--learning-rate"),
        ("epochs", 0, "--epochs"),
        ("epochs", 10**9, "--epochs"),
        ("batch_size", -1, "--batch-size"),
        ("seed", -1, "--seed"),
        ("threads", 0, "--threads"),
        ("device", "tpu", "--device"),
        ("grad_clip", math.nan, "grad_clip"),
    ],
)
def test_a_bad_training_setting_names_its_flag(field, value, flag):
    with pytest.raises(OptionError) as caught:
        TrainConfig(**{field: value})
    assert str(caught.value).startswith(f"{flag}: ")


@pytest.mark.parametrize(
    ("field", "value", "flag"),
    [
        ("d_model", 10**9, "--d-model"),
        ("seq_len", 0, "--sequence-length"),
        ("nhead", -2, "--nhead"),
    ],
)
def test_a_model_shape_out_of_bounds_names_its_flag(field, value, flag):
    with pytest.raises(ModelConfigError, match=f"^{flag}: must be an integer in"):
        TFAConfig(**{field: value})


def run_into(output, **kwargs):
    return TrainRun(data=["builtin"], output=output, **kwargs)


def test_outputs_are_checked_before_training(tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    with pytest.raises(OutputError, match="--output: .* exists and is not empty"):
        check_paths(run_into(full))
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="--output: .* is a file"):
        check_paths(run_into(tmp_path / "file"))
    # an earlier run's checkpoint is never overwritten silently
    (tmp_path / "new.ckpt").mkdir()
    (tmp_path / "new.ckpt" / "last.pt").write_bytes(b"")
    with pytest.raises(OutputError, match="continue it with --resume"):
        check_paths(run_into(tmp_path / "new"))
    with pytest.raises(OptionError, match="--resume: .* holds no last.pt"):
        check_paths(run_into(tmp_path / "b", checkpoints=tmp_path / "none", resume=True))
    check_paths(run_into(tmp_path / "fresh"))  # a new folder is fine
    check_paths(run_into(tmp_path / "c", checkpoints=tmp_path / "new.ckpt", resume=True))


def test_a_write_failure_after_training_says_how_to_keep_the_work(tmp_path, monkeypatch):
    from sentio.train import pipeline

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pipeline, "write_artifact", full_disk)
    run = run_into(tmp_path / "out")
    with pytest.raises(ArtifactError) as caught:
        pipeline._write(run, {})
    message = str(caught.value)
    assert "No space left on device" in message
    assert f"--resume {tmp_path / 'out.ckpt'} --output NEW_DIR" in message


def test_an_unknown_cpu_capability_is_refused():
    with pytest.raises(OptionError, match="^--cpu-capability: must be one of auto, native"):
        resolve("avx3")


needs_avx2 = pytest.mark.skipif(
    "avx2" not in environment()["cpu_isa"], reason="the CPU has no AVX2 to pin"
)


@needs_avx2
def test_the_pin_reaches_torch_when_set_before_it_starts():
    """torch's own report (not our record) of the kernels it runs, in a fresh process."""
    pytest.importorskip("torch", reason="train extra")
    code = (
        "from sentio.train.machine import pin_cpu; pin_cpu('{}'); import torch;"
        "print(torch.backends.cpu.get_cpu_capability())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code.format("auto")], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "AVX2"


@needs_avx2
def test_a_pin_that_did_not_happen_is_refused_not_recorded(monkeypatch):
    torch = pytest.importorskip("torch", reason="train extra")
    from sentio.train.machine import training_platform

    if torch.backends.cpu.get_cpu_capability() == "AVX2":
        pytest.skip("torch already runs AVX2 kernels here; nothing to contradict the pin")
    with pytest.raises(OptionError, match="--cpu-capability: avx2 asks for avx2 kernels"):
        training_platform("avx2", "avx2")
    record = training_platform("native", "native")
    assert record["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert record["pinned"] == "native" and record["pin_env"] == {}


@pytest.mark.parametrize(
    ("extra", "flag", "words"),
    [
        (["--multi-regime", "--regime-model", "experts"], "--regime-model", "one plain head"),
        (["--multi-regime", "--synthetic-mix", "1"], "--synthetic-mix", "chunks of real rows"),
        (["--preset", "causal-huge"], "--preset", "unknown preset"),
    ],
)
def test_what_the_causal_presets_refuse_is_one_line_naming_the_flag(tmp_path, extra, flag, words):
    args = ["--preset", "causal-quick", *extra] if extra[0] != "--preset" else extra
    done = subprocess.run(
        [sys.executable, "-m", "sentio", "train", *args, "--output", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and flag in done.stderr and words in done.stderr
    assert not (tmp_path / "o").exists()
