"""Outputs are never half-written and never land where they must not (issue 12, section 2).

- A symlink planted at the old fixed temporary name ``<out>.tmp`` is not followed.
- Output into a read-only folder is one ``--out`` line (run as user nobody: root writes anyway).
- kill -9 of a running ``sentio data import`` or ``sentio features compute`` leaves the previous
  output byte for byte or the complete new one (compared with an uninterrupted run), and no
  stray file that looks like an output.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from sentio.data import read_bars, write_bars
from sentio.data.synth import SynthConfig, generate
from tests.cli.badinput import assert_refused, run_script, script

# A temporary file of sentio.core.files.atomic_output: hidden, named after its target, ".tmp".
TEMP = re.compile(r"^\..+\.[^.]+\.tmp$")


def test_a_symlink_at_the_old_fixed_temp_name_is_not_followed(tmp_path):
    bars = generate(SynthConfig(seed=1, days=1)).bars["QQQ"]
    victim = tmp_path / "unrelated.txt"
    victim.write_text("keep me")
    out = tmp_path / "out.parquet"
    (tmp_path / "out.parquet.tmp").symlink_to(victim)  # the name write_bars used before
    write_bars(bars, out)
    assert victim.read_text() == "keep me"
    assert read_bars(out).frame.equals(bars.frame)


def test_a_symlink_at_the_target_is_replaced_not_written_through(tmp_path):
    bars = generate(SynthConfig(seed=1, days=1)).bars["QQQ"]
    victim = tmp_path / "unrelated.txt"
    victim.write_text("keep me")
    out = tmp_path / "out.parquet"
    out.symlink_to(victim)
    write_bars(bars, out)
    assert victim.read_text() == "keep me" and not out.is_symlink()


def _as_nobody() -> list[str]:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run a command as user nobody")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_output_into_a_read_only_folder_is_one_line():
    prefix = _as_nobody()
    folder = Path(tempfile.mkdtemp())  # not pytest's tmp_path: that one is private to root
    try:
        folder.chmod(0o755)
        source = folder / "QQQ_ok.csv"
        source.write_text(
            "datetime,open,high,low,close,volume\n2025-09-15 09:30:00,100,101,99,100.5,1000\n"
        )
        source.chmod(0o644)
        locked = folder / "locked"
        locked.mkdir(mode=0o555)
        locked.chmod(0o555)
        numba_cache = folder / "numba"  # numba needs somewhere writable to cache kernels
        numba_cache.mkdir(mode=0o777)
        numba_cache.chmod(0o777)
        env = {**os.environ, "HOME": str(numba_cache), "NUMBA_CACHE_DIR": str(numba_cache)}
        done = subprocess.run(
            [*prefix, script("sentio"), "data", "import", str(source), "--out",
             str(locked / "o.parquet")],
            capture_output=True, text=True, env=env, cwd=folder, timeout=300,
        )  # fmt: skip
        if "Operation not permitted" in done.stderr and "setpriv" in done.stderr:
            pytest.skip(f"setpriv is not allowed here: {done.stderr.strip()}")
        assert_refused(done, "--out", "permission denied")
        assert list(locked.iterdir()) == []
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _kill_after(args: list[str], delay: float, cwd: Path) -> None:
    process = subprocess.Popen(
        [script("sentio"), *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)


def _assert_old_or_new(folder: Path, out: Path, old: bytes, new: bytes, keep: set[str]) -> None:
    got = out.read_bytes()
    assert got in (old, new), f"{out.name}: {len(got)} bytes, neither the old nor the new file"
    strays = [p.name for p in folder.iterdir() if p.name not in keep and not TEMP.match(p.name)]
    assert strays == [], strays


@pytest.fixture(scope="module")
def big_inputs(tmp_path_factory):
    """A 250-session market as a CSV (for import) and as a canonical table (for features)."""
    folder = tmp_path_factory.mktemp("big")
    frame = generate(SynthConfig(seed=5, days=250)).bars["QQQ"].frame
    csv = folder / "QQQ_big.csv"
    frame.assign(ts_utc="", ts_nyt_epoch=frame["ts"] // 10**9)[
        ["ts_utc", "ts_nyt_epoch", "open", "high", "low", "close", "volume"]
    ].to_csv(csv, index=False)
    table = folder / "QQQ.parquet"
    write_bars(generate(SynthConfig(seed=5, days=250)).bars["QQQ"], table)
    return csv, table


# Delays from before the interpreter has started to after a typical run has finished, so that
# kills land while reading, while computing and while writing.
DELAYS = (0.3, 0.6, 0.9, 1.2, 1.5, 1.8, 2.4, 4.0)


@pytest.mark.parametrize("command", ["import", "features"])
def test_kill_9_leaves_the_old_output_or_the_complete_new_one(command, big_inputs, tmp_path):
    csv, table = big_inputs
    if command == "import":
        args = ["data", "import", str(csv), "--out"]
    else:
        args = ["features", "compute", "--spec", "intraday_default", "--data", str(table), "--out"]
    reference = tmp_path / "reference.parquet"
    done = run_script("sentio", *args, str(reference))
    assert done.returncode == 0, done.stderr
    new = reference.read_bytes()
    old = b"the user's previous output, which a failed run must leave as it is"
    for delay in DELAYS:
        folder = tmp_path / f"after_{delay}"
        folder.mkdir()
        out = folder / "out.parquet"
        out.write_bytes(old)
        _kill_after([*args, str(out)], delay, folder)
        _assert_old_or_new(folder, out, old, new, {"out.parquet"})
