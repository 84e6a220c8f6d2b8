"""Outputs never destroy what is at the target: an input, a device, a FIFO (issue 12).

Oracle: the file system itself (stat of the target before and after)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from sentio.core.errors import OutputError
from sentio.core.files import atomic_output, check_output


@pytest.fixture
def specials(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    out = {"fifo": fifo}
    null = tmp_path / "null"
    try:
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a private /dev/null
        out["device"] = null
    except PermissionError:
        pass  # not root: the FIFO still covers the class
    return out


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_special_file_at_the_target_is_refused_and_kept(specials, kind):
    if kind not in specials:
        pytest.skip("creating a device node needs root")
    target = specials[kind]
    before = os.stat(target)
    with pytest.raises(OutputError, match="not a regular file"):
        check_output(target, flag="--out")
    with pytest.raises(OutputError, match="not a regular file"), atomic_output(target) as tmp:
        tmp.write_bytes(b"data")
    after = os.stat(target)
    assert (after.st_mode, after.st_ino, after.st_rdev) == (
        before.st_mode,
        before.st_ino,
        before.st_rdev,
    )
    assert sorted(p.name for p in target.parent.iterdir()) == sorted(
        p.name for p in specials.values()
    )  # no temporary file left behind


def test_a_symlink_to_a_device_is_refused_by_the_check(specials, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(specials["fifo"])
    with pytest.raises(OutputError, match="not a regular file"):
        check_output(link, flag="--out")


def test_the_console_script_refuses_a_fifo_out(specials, tmp_path):
    """Through `sentio data synth` (its --out is a folder): a FIFO named as that folder."""
    done = subprocess.run(
        [sys.executable, "-m", "sentio", "data", "synth", "--out", str(specials["fifo"])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert stat.S_ISFIFO(os.stat(specials["fifo"]).st_mode)
