"""Compile the feature engine's numba kernels once, ahead of the first command that needs them.

``python -m sentio.features.warm`` (the Makefile's install targets run it) runs a batch and a
stream update over a few bars, which compiles the one driver every spec runs
(``program.run_part``, every op inlined) and saves it in numba's on-disk cache; the next process
loads it instead of compiling (bench/features.py measures both, docs/features.md, "Speed").

Where the cache lives is numba's choice: ``NUMBA_CACHE_DIR`` when set; else ``__pycache__``
beside the source when this process may write there; else the user's cache folder
(``~/.cache/numba``); else a private temporary folder (``sentio.core.compiled``). numba uses
only a cache folder it can write to, so a read-only install warmed by its installer still
compiles once per user: each user runs this once, or all share a writable ``NUMBA_CACHE_DIR``.
The cache is tied to this CPU and these numba and source versions; numba compiles again by
itself when any of them changes.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from sentio.features.engine import FeatureEngine
from sentio.features.inputs import from_arrays
from sentio.features.program import run_part

BARS = 64


@dataclass(frozen=True)
class WarmResult:
    """How the kernels became ready: ``compiled`` (False: loaded from the cache), the seconds
    it took, and the cache folder (None: numba keeps no cache for them)."""

    compiled: bool
    seconds: float
    cache_dir: str | None


def warm() -> WarmResult:
    """Compile, or load from numba's cache, every kernel a feature engine runs."""
    start = time.perf_counter()
    misses = sum(run_part.stats.cache_misses.values())
    engine = FeatureEngine("feature_spec_55_minimal")
    close = 100.0 + np.sin(np.arange(BARS) / 7.0)
    bars = from_arrays(close, close + 0.5, close - 0.5, close, np.full(BARS, 1e3))
    engine.batch(bars)  # the batch and the stream run one driver with the same argument types
    engine.stream().update_row(bars.rows[0], 0)
    stats = run_part.stats
    compiled = sum(stats.cache_misses.values()) > misses
    return WarmResult(compiled, time.perf_counter() - start, stats.cache_path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sentio.features.warm", description=__doc__.splitlines()[0]
    )
    parser.parse_args(argv)
    result = warm()
    how = "compiled" if result.compiled else "loaded from the cache"
    print(f"feature kernels {how} in {result.seconds:.1f} s (cache: {result.cache_dir})")


if __name__ == "__main__":
    main()


__all__ = ["WarmResult", "main", "warm"]
