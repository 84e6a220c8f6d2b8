"""The batch driver on several threads: the features split into contiguous ranges of about
equal cost, each range run over every row by ``program.run_part`` on a thread of its own.

Results do not depend on the thread count (program.py says why; tests/features/
test_parallel.py compares 1, 2, 3 and 7 threads byte for byte). The threads are Python threads
running a ``nogil`` kernel, not numba's ``prange``: the audit calls the batch driver from
several worker threads at once, and numba's built-in threading layer (workqueue, the one that
is always there; the OpenMP layer needs an OpenMP runtime on the system, TBB a package)
terminates the process on concurrent parallel calls, while numba's docs call GNU OpenMP's
pool unsafe across a fork. A thread costs ~0.08 ms to start and join, so a batch under
``MIN_ROWS`` rows a thread (~5 ms of work) stays on the caller's thread.

How many threads (docs/features.md, "Speed"): the engine's ``threads`` if given, else
``NUMBA_NUM_THREADS``, else ``OMP_NUM_THREADS`` (Ray sets 1 in a worker it is not told
otherwise about; ``backtest.cluster.worker_env`` hands its workers this process's count),
else the CPUs this process may run on (its affinity: ``taskset``, a container's cpuset).
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np

from sentio.core.errors import OptionError, excerpt
from sentio.features.ops.base import HEADER
from sentio.features.program import (
    ADX,
    BB_LOWER,
    BB_UPPER,
    C_OP,
    C_W,
    CCI,
    EMA,
    HL_RANGE,
    IDENT,
    MFI,
    REGIME,
    REL_VOLUME,
    RSI,
    STOCH_D,
    STOCH_K,
    WILLIAMS_R,
    ZWIN,
    Program,
    run_part,
)

MIN_ROWS = 16_384  # rows per thread below which a second thread costs more than it saves
THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS")

# Rough cost of one bar of one feature, in units of 3.8 ns (an EMA's before the SIMD lanes):
# EMA, RSI and ZWIN timed alone over 1,000,000 bars, header excluded (1.3, 3.2 and 5.6 ns a bar
# here since the lanes), the others estimated from their arithmetic; ops that scan their window
# every bar add a cost per window slot. Only the split of the features between threads depends
# on it, never a value.
COST = {IDENT: 0.3, EMA: 0.35, RSI: 0.85, ZWIN: 1.5, ADX: 3.0, REGIME: 6.0}
COST_DEFAULT = 2.0
PER_SLOT = {STOCH_K: 0.25, STOCH_D: 0.25, WILLIAMS_R: 0.25, HL_RANGE: 0.25, CCI: 0.5, MFI: 0.5}
PER_SLOT |= {REL_VOLUME: 0.3, BB_UPPER: 0.0, BB_LOWER: 0.0}


def feature_threads(environ: dict[str, str] | None = None) -> int:
    """Threads a batch may use: the first of ``THREAD_VARIABLES`` that is set, else the CPUs
    this process may run on.

    >>> feature_threads({"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "4"})
    1
    >>> feature_threads({"OMP_NUM_THREADS": "3"})
    3
    """
    environ = os.environ if environ is None else environ
    for name in THREAD_VARIABLES:
        text = environ.get(name, "").strip()
        if text:
            return _positive(text, name)
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _positive(text: str, name: str) -> int:
    """The (first) thread count of a variable; OpenMP allows a list per nesting level."""
    try:
        value = int(text.split(",")[0])
    except ValueError:
        value = 0
    if value < 1:
        raise OptionError(f"must be a whole number of threads >= 1, got {excerpt(text)}", flag=name)
    return value


def feature_costs(program: Program) -> np.ndarray:
    """(F,) relative cost per bar of each feature, in program order."""
    ops, windows = program.codes[:, C_OP], program.codes[:, C_W]
    return np.array(
        [
            COST.get(int(op), COST_DEFAULT) + PER_SLOT.get(int(op), 0.0) * int(w)
            for op, w in zip(ops, windows, strict=True)
        ]
    )


def split(costs: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """Contiguous ranges (start, stop) of the features, at most ``parts``, of about equal
    total cost; each cut falls where the running cost is nearest its share.

    >>> split(np.array([1.0, 1.0, 1.0, 1.0]), 2)
    [(0, 2), (2, 4)]
    >>> split(np.array([1.0, 1.0, 6.0]), 2)
    [(0, 2), (2, 3)]
    >>> split(np.array([5.0]), 3)
    [(0, 1)]
    """
    count = len(costs)
    before = np.concatenate([[0.0], np.cumsum(costs)])  # cost of features 0..j-1
    cuts = [0]
    for share in before[-1] * np.arange(1, parts) / parts:
        j = int(np.argmin(np.abs(before - share)))
        if cuts[-1] < j < count:
            cuts.append(j)
    cuts.append(count)
    return list(zip(cuts[:-1], cuts[1:], strict=True))


def run_batch(
    program: Program,
    state: np.ndarray,
    rows: np.ndarray,
    segment: np.ndarray,
    values: np.ndarray,
    counters: np.ndarray,
    emit_from: int,
    pad: np.float32,
    compat: bool,
    threads: int = 1,
    min_rows: int = MIN_ROWS,
) -> list[float]:
    """Advance ``state`` over every row into ``values`` (N, F) and ``counters`` (N, 2),
    restarting it from ``program.init`` at each segment change after row 0, on up to
    ``threads`` threads (fewer when the batch has under ``min_rows`` rows a thread).

    Returns the CPU seconds of each thread's part: the longest is the batch's time on free
    cores, whatever else shares the machine (bench/features.py)."""
    n = len(rows)
    parts = max(1, min(threads, n // max(min_rows, 1)))
    ranges = split(feature_costs(program), parts) if parts > 1 else [(0, len(program.names))]
    headers = [state[:HEADER].copy() for _ in ranges]  # before any thread moves the header
    no_counters = np.empty((0, 2), dtype=np.int64)
    seconds = [0.0] * len(ranges)

    def run(part: int) -> None:
        f0, f1 = ranges[part]
        start = time.thread_time()
        run_part(
            program.codes,
            program.fparams,
            f0,
            f1,
            program.init,
            state,
            headers[part],
            rows,
            segment,
            0,
            n,
            values,
            counters if part == 0 else no_counters,
            emit_from,
            pad,
            compat,
        )
        seconds[part] = time.thread_time() - start

    failures: list[BaseException] = []

    def helper(part: int) -> None:
        try:
            run(part)
        except BaseException as exc:  # handed to the caller's thread, raised there
            failures.append(exc)

    helpers = [threading.Thread(target=helper, args=(part,)) for part in range(1, len(ranges))]
    for thread in helpers:
        thread.start()
    try:
        run(0)
    finally:
        for thread in helpers:
            thread.join()
    if failures:
        raise failures[0]
    state[:HEADER] = headers[0]
    return seconds


__all__ = ["MIN_ROWS", "THREAD_VARIABLES", "feature_costs", "feature_threads", "run_batch", "split"]
