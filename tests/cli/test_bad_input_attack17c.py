"""Bad-input attack on issue 17's run config files (``--config FILE.toml``, ``--show-config``,
docs/config.md) and on ``--report`` / ``--track`` beside them, through the real console script.

Every user error must exit 2 with one ``error:`` line naming the flag, or the file and the
setting a value came from; no Traceback; nothing written on an input or left behind by a
refused run; and ``--show-config``'s output read back by ``--config`` must resolve to the same
settings. The attack found the defect classes below, each a strict xfail until fixed. (It also
checked, and found sound: unknown keys and dashed keys, every wrong TOML type on every setting
of strattest, train, live, data import and data synth, nan/inf/2**70, tables and arrays of
tables, command-line-only keys, invalid TOML, a BOM, an empty file, a folder, a FIFO, a binary
file, a 10 MB file, duplicate JSON keys, ``--config`` twice, ``--config`` with
``--enable-realtime``, precedence of a flag equal to its default, mode-specific settings in a
file of another mode, and junk ``--track`` / ``SENTIO_MLFLOW_TRACKING_URI`` refused before
training.)
"""

from __future__ import annotations

import hashlib
import subprocess
import tomllib
from pathlib import Path

from tests.cli.badinput import assert_refused, run_script, script

SETTINGS = "blocks = 1\n"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def settings_file(folder: Path, text: str = SETTINGS, name: str = "run.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def show_config(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_script("sentio", *args, "--show-config", cwd=cwd)


# --- defects (each a strict xfail until fixed) ---------------------------------------------


def test_strattest_report_onto_its_config_file_is_refused(tiny_artifact, tmp_path):
    config = settings_file(tmp_path)
    before = sha(config)
    done = run_script(
        "sentio", "strattest", "--model", str(tiny_artifact), "--config", str(config),
        "--no-cache", "--report", str(config), cwd=tmp_path,
    )  # fmt: skip
    assert sha(config) == before, "the report was written over the --config file"
    assert_refused(done, "--report", "run.toml")


def test_data_import_out_onto_its_config_file_is_refused(tmp_path):
    bars = tmp_path / "bars.csv"
    bars.write_text("timestamp,open,high,low,close,volume\n2024-01-02 14:30:00+00:00,1,1,1,1,9\n")
    config = settings_file(tmp_path, 'symbol = "QQQ"\nts_col = "timestamp"\n', "import.toml")
    before = sha(config)
    done = run_script(
        "sentio", "data", "import", str(bars), "--config", str(config), "--out", str(config),
        cwd=tmp_path,
    )  # fmt: skip
    assert sha(config) == before, "the imported bars were written over the --config file"
    assert_refused(done, "--out", "import.toml")


def test_strattest_report_onto_a_file_of_its_own_out_is_refused(tiny_artifact, tmp_path):
    out = tmp_path / "run"
    done = run_script(
        "sentio", "strattest", "--model", str(tiny_artifact), "--blocks", "1", "--no-cache",
        "--out", str(out), "--report", str(out / "summary.json"), cwd=tmp_path,
    )  # fmt: skip
    assert_refused(done, "--report", "summary.json")
    assert not out.exists()


def test_a_deeply_nested_settings_file_is_refused_in_one_line(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000  # JSON's reader fails the same way on {"blocks": [[...]]}
    config = settings_file(tmp_path, f"blocks = {deep}\n", "deep.toml")
    assert_refused(show_config("strattest", "--config", str(config), cwd=tmp_path), "deep.")


def test_a_refused_train_leaves_no_tracking_store(tmp_path):
    output = tmp_path / "taken"
    output.mkdir()
    (output / "x").write_text("x")
    store = tmp_path / "store"
    done = run_script(
        "sentio", "train", "--quick", "--epochs", "1", "--builtin-days", "12",
        "--output", str(output), "--track", str(store), cwd=tmp_path,
    )  # fmt: skip
    assert_refused(done, "--output")
    assert not store.exists(), "the refused run created the tracking store"


def test_walk_forward_network_settings_from_a_file_name_the_file(tmp_path):
    """Also nhead, num_layers, sequence_length = 0 and preset = "x": each names its flag."""
    config = settings_file(tmp_path, 'mode = "walk-forward"\nd_model = 0\n')
    done = show_config("strattest", "--config", str(config), cwd=tmp_path)
    assert_refused(done, "--config", "run.toml", "d_model")


def test_data_synth_missing_calibration_names_the_file_and_setting(tmp_path):
    """``--calibration nope.json`` names no flag either: ``error: nope.json: cannot read...``."""
    config = settings_file(tmp_path, 'calibration = "nope.json"\n')
    done = show_config("data", "synth", "--config", str(config), cwd=tmp_path)
    assert_refused(done, "--config", "run.toml", "calibration")


def test_a_path_too_long_from_the_file_is_one_short_line(tmp_path):
    config = settings_file(tmp_path, f'model = "{"x" * 5000}"\n')
    done = show_config("strattest", "--config", str(config), cwd=tmp_path)
    assert_refused(done, "--config", "run.toml", "model")


def test_show_config_of_a_config_path_with_a_newline_is_toml(tmp_path):
    config = settings_file(tmp_path, "capital = 50000.0\n", "a\nb.toml")
    shown = show_config("strattest", "--config", str(config), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert tomllib.loads(shown.stdout)["capital"] == 50000.0  # what --config reads back


def test_show_config_of_a_path_that_is_not_utf8_is_toml_or_refused(tmp_path):
    data = tmp_path / "x\udcffy.parquet"  # the byte 0xff, as Python holds a Linux file name
    data.write_bytes(b"")
    argv = [script("sentio"), "strattest", "--data", str(data), "--show-config"]
    shown = subprocess.run(argv, capture_output=True, cwd=tmp_path, stdin=subprocess.DEVNULL)
    if shown.returncode == 2:  # refused: a settings file cannot hold that name
        assert b"Traceback" not in shown.stderr and len(shown.stderr.splitlines()) == 1
        return
    assert shown.returncode == 0, shown.stderr[-2000:]
    tomllib.loads(shown.stdout.decode("utf-8"))  # what --config reads back (UTF-8 TOML)


def test_a_json_null_for_a_setting_with_a_default_is_refused(tmp_path):
    config = settings_file(tmp_path, '{"capital": null}', "run.json")
    done = show_config("strattest", "--config", str(config), cwd=tmp_path)
    assert_refused(done, "--config", "run.json", "capital")


def test_live_audit_onto_a_text_file_names_the_flag(tiny_artifact, tmp_path):
    config = settings_file(tmp_path)
    done = run_script(
        "sentio", "live", "--model", str(tiny_artifact), "--feed", "replay:builtin@max",
        "--config", str(config), "--audit", str(config), cwd=tmp_path,
    )  # fmt: skip
    assert_refused(done, "--audit", "run.toml")
