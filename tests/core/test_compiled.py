"""A read-only install (source folder and home both unwritable) still runs the numba kernels:
numba is pointed at a private cache folder instead of crashing at import (issue 12)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sentio

# Imports every numba module (the crash happened at decoration time), then compiles and runs
# the synthetic market and the feature step.
SCRIPT = """
import sentio
from sentio.backtest import execution
from sentio.data.synth.generate import SynthConfig, generate
from sentio.features import FeatureEngine
print(sentio.__file__)
market = generate(SynthConfig(seed=1, days=2))
values = FeatureEngine("intraday_default").batch(market.bars["QQQ"])
print("computed", values.shape)
"""


def test_read_only_install_compiles_into_a_private_cache(tmp_path):
    source = Path(sentio.__file__).parent
    package = tmp_path / "pkg"
    shutil.copytree(source, package / "sentio", ignore=shutil.ignore_patterns("__pycache__"))
    mounted = tmp_path / "ro"
    mounted.mkdir()
    mount = subprocess.run(
        ["mount", "--bind", "-o", "ro", str(package), str(mounted)], capture_output=True, text=True
    )
    if mount.returncode != 0:
        pytest.skip(f"a read-only bind mount is not available here: {mount.stderr.strip()}")
    try:
        assert not os.access(mounted / "sentio", os.W_OK) or os.geteuid() == 0
        temp = tmp_path / "tmp"
        temp.mkdir()
        env = {
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(mounted),
            "HOME": str(mounted / "no-home"),  # inside the read-only mount: not creatable
            "TMPDIR": str(temp),
        }
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert str(mounted) in done.stdout  # the read-only copy was the one imported
        assert "computed" in done.stdout
        caches = list(temp.glob("sentio-numba-*/**/*.nbi"))
        assert caches, "numba did not cache into the private folder"
    finally:
        subprocess.run(["umount", str(mounted)], check=False)
