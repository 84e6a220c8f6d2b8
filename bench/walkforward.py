"""Walk-forward folds per hour, local vs Ray, and the live loop's latency while a retrain runs.

1. Folds per hour. One walk-forward run (``run_walkforward``) on the built-in market, folds
   trained from scratch, on the local backend (one fold after another, in this process) and on
   Ray (every fold a task on a local Ray with this machine's cores, ``sentio.backtest.cluster``);
   the Ray start-up is timed apart. Folds per hour = folds / wall seconds x 3600, for the
   training phase alone and for the whole run (gates and trading are in this process on both
   backends). The two runs' walkforward.json must be the same bytes (checked, printed).
   Peer: the local backend (ratio Ray / local).
2. Live latency under a retrain. bench/live.py's measurement (``sentio live --feed
   replay:builtin@max`` in this process, profiled per decided minute: bar arrival -> orders
   sent) for the quick-preset model, alone and with a ``sentio train --quick`` running in a
   subprocess (the retrainer's work, the same process split as ``train --enable-realtime``).
   Peer: the loop alone (ratio with retrain / alone). The retrain must still be running when
   the replay ends (checked, printed).

Run: ``.venv/bin/python bench/walkforward.py`` (about 6 minutes on 2 cores); ``--days``,
``--epochs``, ``--preset`` change part 1's recipe. Prints one table per part.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import print_table
from live import ARRIVAL_TO_SENT, DEMO, SENTIO, latency, threads, train, us

from sentio.backtest.strattest import StrattestConfig
from sentio.backtest.walkforward import WalkForwardConfig, run_walkforward
from sentio.core.environment import environment


def recipe(args: argparse.Namespace) -> WalkForwardConfig:
    return WalkForwardConfig.from_flags(
        strattest=StrattestConfig.from_flags(data=["builtin"], seed=11, cache=False),
        train_window=args.train_window,
        retrain_every=args.retrain_every,
        shadow_sessions=2,
        preset_name=args.preset,
        epochs=args.epochs,
        horizon=1,
        deadzone_bp=0.0,
        feature_spec="intraday_default",
        builtin_days=args.days,
        signal_strength=0.3,
        cpu_capability="native",
    )


def timed_run(config: WalkForwardConfig, out: Path, backend: str) -> dict:
    marks: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "train" and done == 0:
            marks["train_start"] = time.perf_counter()
        if stage == "train" and done == total:
            marks["train_end"] = time.perf_counter()

    start = time.perf_counter()
    result = run_walkforward(config, out, backend=backend, progress=progress)
    end = time.perf_counter()
    return {
        "folds": len(result.folds),
        "train_s": marks["train_end"] - marks["train_start"],
        "total_s": end - start,
        "report": (out / "walkforward.json").read_bytes(),
    }


def folds_per_hour(args: argparse.Namespace, work: Path) -> None:
    from sentio.backtest.cluster import ray_session

    os.environ.setdefault("SOURCE_DATE_EPOCH", "0")  # both runs stamp their artifacts alike
    config = recipe(args)
    print(
        f"\n## 1. Walk-forward folds per hour: preset {args.preset} (d_model "
        f"{config.model.d_model}, {config.model.num_layers} layers, T {config.model.seq_len}), "
        f"{args.epochs} epochs, train window {args.train_window} sessions, retrain every "
        f"{args.retrain_every}, built-in market {args.days} sessions (seed 11, planted 0.3), "
        f"features intraday_default\n",
        flush=True,
    )
    local = timed_run(config, work / "local", "local")
    started = time.perf_counter()
    with ray_session():  # a local Ray on this machine's cores, shut down at the end
        ray_start = time.perf_counter() - started
        on_ray = timed_run(config, work / "ray", "ray")
    same = local["report"] == on_ray["report"]
    rows = []
    for name, run in (
        ("local (sequential, this process)", local),
        ("Ray (parallel tasks)", on_ray),
    ):
        rows.append(
            (
                name,
                str(run["folds"]),
                f"{run['train_s']:.1f}",
                f"{run['folds'] / run['train_s'] * 3600:,.0f}",
                f"{run['total_s']:.1f}",
                f"{run['folds'] / run['total_s'] * 3600:,.0f}",
            )
        )
    ratio_train = local["train_s"] / on_ray["train_s"]
    ratio_total = local["total_s"] / on_ray["total_s"]
    rows.append(("ratio: Ray / local folds per hour", "", "", f"{ratio_train:.2f}x", "",
                 f"{ratio_total:.2f}x"))  # fmt: skip
    head = ("backend", "folds", "training s", "folds/h (training)", "run s", "folds/h (run)")
    print_table(head, rows)
    print(
        f"Ray start-up (ray.init, {os.cpu_count()} CPUs, not in the figures above): "
        f"{ray_start:.1f} s; walkforward.json local == Ray: {'yes' if same else 'NO'}"
    )


def live_latency(model: Path, work: Path) -> None:
    print("\n## 2. Live loop: bar arrival -> order sent while a retrain runs (microseconds)\n")
    alone = latency("alone", model, work / "alone")
    command = [str(SENTIO), "train", "--quick", "--threads", "1", "--no-progress",
               "--output", str(work / "retrain")]  # fmt: skip
    retrain = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(5)  # past its imports: the retrain is training when the replay starts
        during = latency("with retrain", model, work / "during")
        running = retrain.poll() is None
    finally:
        retrain.terminate()
        retrain.wait()
    rows = []
    for run in (alone, during):
        a2s = run["profile"][:, ARRIVAL_TO_SENT]
        rows.append((run["name"], f"{len(a2s):,}", f"{us(a2s, 50):,.0f}", f"{us(a2s, 99):,.0f}",
                     f"{a2s.max() * 1e6:,.0f}"))  # fmt: skip
    p99 = [us(r["profile"][:, ARRIVAL_TO_SENT], 99) for r in (alone, during)]
    p50 = [us(r["profile"][:, ARRIVAL_TO_SENT], 50) for r in (alone, during)]
    rows.append(("ratio: with retrain / alone", "", f"{p50[1] / p50[0]:.2f}x",
                 f"{p99[1] / p99[0]:.2f}x", ""))  # fmt: skip
    print_table(("live loop", "minutes", "p50 us", "p99 us", "max us"), rows)
    print(
        f"model: {model} (quick preset); retrain: {' '.join(command[1:])} in a subprocess, "
        f"{'still running' if running else 'FINISHED BEFORE'} when the replay ended; "
        f"{os.cpu_count()} cores (the loop and the retrain each on one thread)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick", help="model preset of every fold")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per fold")
    parser.add_argument("--days", type=int, default=50, help="built-in market sessions")
    parser.add_argument("--train-window", type=int, default=10, help="sessions per fold")
    parser.add_argument("--retrain-every", type=int, default=5, help="sessions between folds")
    parser.add_argument("--quick-model", type=Path, help="quick-preset artifact (default demo/tfa)")
    parser.add_argument("--skip-live", action="store_true", help="part 1 only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-walkforward-") as tmp:
        work = Path(tmp)
        folds_per_hour(args, work)
        if not args.skip_live:
            model = args.quick_model or DEMO
            if not (model / "manifest.json").exists():
                model = train(["--quick", "--threads", threads()], work / "quick")
            live_latency(model, work)
    env = environment()
    print(f"\nmachine: {env['cpu_model']}, {env['cpu_count']} cores, python {env['python']}")
    print("packages: " + ", ".join(f"{k} {v}" for k, v in env["packages"].items()))
    print(f"reproduce: .venv/bin/python bench/walkforward.py {' '.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
