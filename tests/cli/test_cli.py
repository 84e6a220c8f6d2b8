"""The commands as a user runs them: a subprocess, its exit code, stdout and stderr."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import real_file


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sentio", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_synth_then_info_then_align(tmp_path):
    out = tmp_path / "m"
    done = run("data", "synth", "--out", str(out), "--days", "3", "--seed", "1")
    assert done.returncode == 0, done.stderr
    assert "SIMULATED" in done.stdout
    info = run("data", "info", str(out / "QQQ.parquet"), "--json")
    assert info.returncode == 0, info.stderr
    (row,) = json.loads(info.stdout)
    assert row["simulated"] and row["sessions"] == 3 and row["bars"] == 3 * 390
    aligned = run(
        "data",
        "align",
        str(out / "QQQ.parquet"),
        str(out / "PSQ.parquet"),
        "--out",
        str(tmp_path / "a.parquet"),
        "--json",
    )
    assert aligned.returncode == 0, aligned.stderr
    assert json.loads(aligned.stdout)["rows_out_per_symbol"] == 3 * 390


def test_import_real_file_reports_as_json(tmp_path):
    path = real_file("polygon/QQQ_RTH_NH_2025-08-08_2025-09-12.csv")
    done = run("data", "import", str(path), "--out", str(tmp_path / "q.parquet"), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["rows_out"] == 9600 - 25 and report["files"][0]["symbols"] == ["QQQ"]


def test_bad_input_prints_the_rule_not_a_traceback(tmp_path):
    bad = tmp_path / "QQQ_x.csv"
    bad.write_text("datetime,open,high,low,close,volume\n2025-09-15 09:30:00,10,9,8,9.5,100\n")
    done = run("data", "import", str(bad), "--out", str(tmp_path / "o.parquet"))
    assert done.returncode == 2
    assert "row 2" in done.stderr and "high_below_open_close" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("command", "flags"),
    [
        (
            "import",
            [
                "--out",
                "--symbol",
                "--ts-col",
                "--tz",
                "--ts-unit",
                "--max-gap",
                "--split",
                "--repair",
                "--json",
            ],
        ),
        ("align", ["--out", "--json"]),
        ("info", ["--json"]),
        (
            "synth",
            [
                "--out",
                "--seed",
                "--days",
                "--start",
                "--signal-strength",
                "--drift",
                "--regime",
                "--calibration",
            ],
        ),
        ("calibrate", ["--out", "--volume-level-from"]),
    ],
)
def test_help_explains_every_flag(command, flags):
    done = run("data", command, "--help")
    assert done.returncode == 0
    for flag in flags:
        assert flag in done.stdout, flag


def test_aliases_exist_and_saudit_is_the_audit_group():
    sencli = subprocess.run(
        [sys.executable, "-c", "from sentio.cli.app import sencli_main; sencli_main()", "--help"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert sencli.returncode == 0 and "data" in sencli.stdout and "audit" in sencli.stdout
    saudit = subprocess.run(
        [sys.executable, "-c", "from sentio.cli.app import saudit_main; saudit_main()", "--help"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert saudit.returncode == 0
    for command in ("list", "signal-flow", "trades", "positions", "summary", "verify", "export"):
        assert command in saudit.stdout, command


def test_print_json_writes_null_for_nan_and_plain_numbers(capsys):
    """JSON has no NaN or Infinity (RFC 8259 section 6): a strict parser must read every
    ``--json`` output; numpy scalars and arrays print as the numbers they hold."""
    import numpy as np

    from sentio.cli.output import print_json

    print_json(
        {
            "sharpe": float("nan"),
            "calmar": np.float64("-inf"),
            "interval": (np.float32(0.5), float("inf")),
            "trades": np.int64(3),
            "flags": np.array([True, False]),
        }
    )
    text = capsys.readouterr().out

    def refuse(name):
        raise ValueError(name)

    doc = json.loads(text, parse_constant=refuse)
    assert doc == {
        "sharpe": None,
        "calmar": None,
        "interval": [0.5, None],
        "trades": 3,
        "flags": [True, False],
    }


def test_every_flag_of_every_command_has_help_text():
    """`--help` explains every flag: walk the whole click tree of `sentio` (and so `sencli`
    and `saudit`, which are the same commands)."""
    import typer

    from sentio.cli.app import app

    def walk(command, path):
        children = getattr(command, "commands", None)
        if children:
            for name, sub in children.items():
                yield from walk(sub, (*path, name))
        else:
            yield path, command

    missing, commands = [], list(walk(typer.main.get_command(app), ("sentio",)))
    assert len(commands) >= 20  # data x6, features x4, model x4+, audit x7, train, strattest
    for path, command in commands:
        assert (command.help or "").strip(), f"{' '.join(path)} has no description"
        for param in command.params:
            is_option = getattr(param, "param_type_name", "") == "option"
            if is_option and not (param.help or "").strip():
                missing.append(f"{' '.join(path)} {param.opts[0]}")
    assert not missing, f"flags without help: {missing}"
