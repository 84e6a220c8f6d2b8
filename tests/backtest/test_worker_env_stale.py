"""Ray workers get the BLAS thread count this process computes with (threadpoolctl's report of
the running BLAS), not a variable set after the BLAS started: with a stale count, a worker
computes the logistic baseline's products in other pieces and writes other last bits than the
local backend."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import os, numpy
from threadpoolctl import threadpool_info
os.environ["OMP_NUM_THREADS"] = "1"  # set after numpy's BLAS started: it still runs its count
from sentio.backtest.cluster import worker_env
running = max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")
print(running, worker_env()["OMP_NUM_THREADS"])
"""


def test_workers_get_the_blas_threads_this_process_runs():
    pytest.importorskip("threadpoolctl", reason="threadpoolctl comes with the train extra")
    env = {"PATH": "/usr/bin:/bin"}  # no thread count inherited from the shell
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    running, handed = done.stdout.split()
    assert handed == running
