"""A CPU pin asked for after torch has started leaves the environment alone: torch read its
pin when it started, and a pin set later would reach only child processes (Ray workers),
which would then run other kernels than this process (and write other bytes)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import os, torch
from sentio.train.machine import pin_cpu
before = {k: v for k, v in os.environ.items() if k in ('ATEN_CPU_CAPABILITY', 'MKL_CBWR')}
pin_cpu('avx2')
after = {k: v for k, v in os.environ.items() if k in ('ATEN_CPU_CAPABILITY', 'MKL_CBWR')}
print(before == after)
"""


def test_a_pin_after_torch_started_changes_no_environment_variable():
    pytest.importorskip("torch", reason="the pin concerns torch (the train extra)")
    env = {"PATH": "/usr/bin:/bin"}  # no pin inherited from the shell
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "True"
