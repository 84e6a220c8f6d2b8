"""Refusals every command shares, through the real console scripts (issue 12): a bad
SOURCE_DATE_EPOCH, a single-value option given twice, file names that are not UTF-8."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cli.badinput import assert_refused, run_script, script


@pytest.mark.parametrize("value", ["garbage", "", "nan", "1e9", "1700000000.5", "-5", "9" * 20])
def test_a_bad_source_date_epoch_is_refused_before_any_work(tmp_path, value):
    out = tmp_path / "m"
    done = run_script(
        "sentio", "data", "synth", "--days", "2", "--out", str(out),
        env={"SOURCE_DATE_EPOCH": value},
    )  # fmt: skip
    assert_refused(done, "SOURCE_DATE_EPOCH", "whole seconds")
    assert not out.exists()


@pytest.mark.parametrize(
    ("script", "args", "flag"),
    [
        ("sentio", ["data", "synth", "--days", "2", "--days", "3", "--out", "m"], "--days"),
        ("sentio", ["data", "synth", "--days=2", "--days", "3", "--out", "m"], "--days"),
        (
            "sentio",
            ["data", "import", "x.csv", "--out", "a.parquet", "--out", "b.parquet"],
            "--out",
        ),
        ("sentio", ["strattest", "--cache", "--no-cache"], "--cache"),
        ("saudit", ["list", "--db", "a.db", "--db", "b.db"], "--db"),
    ],
)
def test_a_single_value_option_given_twice_is_refused(tmp_path, script, args, flag):
    done = run_script(script, *args, cwd=tmp_path)
    assert_refused(done, flag, "more than once")
    assert list(tmp_path.iterdir()) == []


def test_repeatable_options_may_repeat(tmp_path):
    """`--data` is declared repeatable: giving it twice reaches the command's own checks."""
    done = run_script("sentio", "strattest", "--data", "a.parquet", "--data", "b.parquet",
                      cwd=tmp_path)  # fmt: skip
    message = assert_refused(done, "--data")
    assert "more than once" not in message


def test_a_file_name_that_is_not_utf8_is_one_line(tmp_path):
    name = os.fsdecode(b"QQQ_bad\xff.csv")
    (tmp_path / name).write_text("datetime,open,high,low,close,volume\n")
    out = os.fsdecode(b"o\xfe.parquet")
    done = run_script("sentio", "data", "import", name, "--out", out, cwd=tmp_path)
    assert_refused(done)
    assert sorted(os.listdir(tmp_path)) == [name]


def test_an_artifact_under_a_non_utf8_path_loads(tmp_path, tiny_artifact):
    """ONNX Runtime is handed the model's bytes, so the path's encoding does not matter."""
    target = Path(tmp_path / os.fsdecode(b"t\xff"))
    shutil.copytree(tiny_artifact, target)
    done = subprocess.run([script("sentio"), "model", "info", str(target)], capture_output=True)
    assert done.returncode == 0, done.stderr[-2000:]  # bytes: the path itself is printed
