"""What auditing costs: ``sentio strattest --blocks 5`` with and without ``--audit DB``.

The audited run also streams every block bar through the stream context (the live path) and
writes ~2,600 hash-chained events; the goal (issue 7) is at most 25 % more wall time.

Measured two ways, runs alternated so that machine noise hits both alike:
- the command as a user runs it (a new process each time: interpreter, imports, model load,
  market, backtest, report), with a warm probability cache (the usual repeat run) and with
  ``--no-cache`` (a first run: the sequence path computes every window);
- in one process, ``backtest(plan)`` against ``audited_strattest(plan, store)``: the work
  itself, without interpreter start-up.

Run: ``.venv/bin/python bench/audit.py`` after ``make demo`` (it needs the demo/tfa artifact
and the built-in market it was trained on). Prints one table: median and fastest seconds, and
the median over pairs of (audited / plain) - 1, the figure least moved by a noisy machine.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import print_table

MODEL = Path("demo/tfa").resolve()  # run from the repository root
SENTIO = Path(sys.executable).with_name("sentio")
REPEATS = 7


def command(extra: list[str], cache: Path, db: Path | None) -> float:
    args = [str(SENTIO), "strattest", "tfa", "--model", str(MODEL), "--blocks", "5", "--json"]
    args += extra + (["--audit", str(db)] if db else [])
    start = time.perf_counter()  # the cache is .sentio-cache in the working directory
    done = subprocess.run(args, capture_output=True, text=True, cwd=cache.parent)
    elapsed = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{' '.join(args)} failed:\n{done.stderr}")
    return elapsed


def pairs(extra: list[str], repeats: int, work: Path) -> tuple[list[float], list[float]]:
    """Plain and audited wall times, alternated; a fresh database for every audited run."""
    plain, audited = [], []
    for i in range(repeats):
        plain.append(command(extra, work / ".sentio-cache", None))
        audited.append(command(extra, work / ".sentio-cache", work / f"audit-{i}.db"))
    return plain, audited


def in_process(repeats: int, work: Path) -> tuple[list[float], list[float]]:
    from sentio.audit import AuditStore, audited_strattest
    from sentio.backtest.strattest import StrattestConfig, backtest, historical_plan

    config = StrattestConfig(model=MODEL, blocks=5, cache_dir=work / ".sentio-cache")
    plain, audited = [], []
    backtest(historical_plan(config))  # warm the cache and the compiled kernels
    for i in range(repeats):
        start = time.perf_counter()
        backtest(historical_plan(config))
        plain.append(time.perf_counter() - start)
        store = AuditStore(work / f"inproc-{i}.db")
        start = time.perf_counter()
        audited_strattest(historical_plan(config), store)
        audited.append(time.perf_counter() - start)
    return plain, audited


def row(name: str, plain: list[float], audited: list[float]) -> tuple[str, ...]:
    paired = statistics.median(a / p - 1 for a, p in zip(audited, plain, strict=True))
    return (
        name,
        f"{statistics.median(plain):.2f} s (fastest {min(plain):.2f})",
        f"{statistics.median(audited):.2f} s (fastest {min(audited):.2f})",
        f"{100 * paired:+.0f} %",
        f"{100 * (min(audited) / min(plain) - 1):+.0f} %",
    )


def main() -> None:
    if not (MODEL / "manifest.json").exists():
        sys.exit(f"{MODEL} is missing: run `make demo` first")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        command([], work / ".sentio-cache", None)  # fill the probability cache
        warm = pairs([], REPEATS, work)
        cold = pairs(["--no-cache"], 3, work)
        inproc = in_process(REPEATS, work)
    rows = [
        row(f"command, warm cache (x{REPEATS})", *warm),
        row("command, --no-cache (x3)", *cold),
        row(f"in one process, warm cache (x{REPEATS})", *inproc),
    ]
    head = (
        "strattest --blocks 5",
        "plain (peer): median",
        "with --audit: median",
        "added: median of pairs",
        "added: fastest",
    )
    print_table(head, rows)
    print("(goal: auditing adds at most 25 %; 2,400 block bars streamed, one DB per run)")


if __name__ == "__main__":
    main()
