"""What every benchmark script shares: timing and the one-table printout."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

from sentio.core.environment import environment


def timed(fn: Callable[[], object], repeats: int = 7) -> tuple[float, float]:
    """(fastest, median) seconds of ``repeats`` runs after one warm-up run. The fastest is the
    least disturbed by other tenants of a shared machine."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def print_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Left-aligned columns, two spaces apart."""
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for row in [head, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


def print_machine() -> None:
    """The machine a benchmark ran on (``sentio.core.environment``), after its tables."""
    env = environment()
    print("\nmachine:")
    for key in ("machine", "system", "cpu_model", "cpu_count", "python"):
        print(f"  {key}: {env[key]}")
    print(f"  cpu_isa: {' '.join(env['cpu_isa'])}")
    print(f"  numpy_simd: {' '.join(env['numpy_simd'])}")
    print("  packages: " + ", ".join(f"{k} {v}" for k, v in env["packages"].items()))
    if env["env"]:
        print("  env: " + ", ".join(f"{k}={v}" for k, v in env["env"].items()))
