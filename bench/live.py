"""Live loop speed and memory: bar-arrival to order-sent latency per stage, and a one-year soak.

1. Latency. ``sentio live --feed replay:builtin@max --audit DB --state DIR`` run in this process
   (``LiveLoop(..., profile=True)``) over every bar after the model's validation end on its own
   built-in market (a few thousand minutes), for the quick and the default preset. Per decided
   minute the loop times (src/sentio/live/loop.py ``minute()``): features (the stream push),
   model (``predict``: the window through ONNX Runtime), strategy (``decide``, ``allocate``,
   order sizing), order send (the bar event, risk checks, order events, the paper broker), and
   from the minute's arrival (its last bar reached the loop) to the orders sent; then, after
   the orders went, the state write (state.json) and the audit write (SQLite). "other" is
   arrival-to-sent less the four stages (the session check at a session's first minute, the
   segment rule, the broker's poll). A session's first minute is shown apart. Goal: p99
   arrival-to-sent <= 1 ms for the quick preset. Reference: the ONNX Runtime call alone
   (``session.run`` on one window, one thread, the loop's own session), p50; for a causal
   artifact (``bench/causal.py``) its compiled step alone on one row, which the loop runs in
   the stream push (its "model" stage only reads the step's logit).
2. Soak. A year of built-in-market bars (``sentio data synth --days 252`` with the next seed,
   starting after the model's data ended, so every bar is out of sample and no
   ``--allow-in-sample`` is needed) through the loop at @max with state and audit, in this
   process, the resident set (VmRSS of /proc/self/status) sampled every 1,000 minutes. Goal:
   RSS growth from minute 5,000 to the end < 10 %.
3. The commands that reproduce it, and the machine.

Models: the quick preset is ``demo/tfa`` (``make demo``: ``sentio train --quick``) or trained
into a temporary folder; the default preset is trained unless ``--default-model DIR`` names one,
on the quick path's data and epochs (``sentio train --preset default --epochs 3
--builtin-days 60``, about 4 minutes on 2 cores; the full 10 epochs on 120 sessions take over
20): the latency depends on the architecture (d_model 128, 3 layers), not on how long it
trained.

Run: ``.venv/bin/python bench/live.py`` (everything, 8 to 15 minutes on 2 cores),
``--preset quick`` (skip the default preset), ``--quick`` (quick preset, a 20-session soak,
about 2 minutes). Prints a table per part.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from common import print_machine, print_table
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from sentio.audit.store import AuditStore
from sentio.data.synth import SynthConfig, generate, write_market
from sentio.features.inputs import clock_columns
from sentio.live.config import DEFAULTS, LiveConfig
from sentio.live.loop import LiveLoop
from sentio.live.state import StateStore
from sentio.model.artifact import load_verified

SENTIO = Path(sys.executable).with_name("sentio")
DEMO = Path("demo/tfa")  # run from the repository root, as the other benches
GOAL_P99_US = 1_000.0
GOAL_GROWTH_PCT = 10.0
DEFAULT_TRAINING = ("--epochs", "3", "--builtin-days", "60")  # the quick path's, see above
SAMPLE_EVERY = 1_000  # minutes between RSS samples
WARM_MINUTES = 5_000  # the soak's RSS baseline: after the caches and the ledger's first growth
ORT_REPEATS = 2_000
# loop.profile columns (src/sentio/live/loop.py minute())
PUSH, PREDICT, STRATEGY, SEND, ARRIVAL_TO_SENT, STATE_AND_AUDIT, AUDIT = range(7)


def train(args: list[str], out: Path) -> Path:
    command = [str(SENTIO), "train", *args, "--output", str(out), "--no-progress"]
    print(f"training: {' '.join(command)}", file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr}")
    return out


def threads() -> str:
    return str(os.cpu_count() or 1)


def rss_mib() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MiB, from /proc/self/status."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024  # kB
    return fields["VmRSS"], fields["VmHWM"]


def filesystem(path: Path) -> str:
    """The type and device of the mount holding ``path`` (from /proc/mounts): the state and
    audit writes cost what the filesystem charges for a write, a rename and an fsync."""
    best = ("", "?", "?")
    for line in Path("/proc/mounts").read_text().splitlines():
        device, mount, kind = line.split()[:3]
        where = str(path.resolve())
        inside = where == mount or where.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) > len(best[0]):
            best = (mount, kind, device)
    return f"{best[1]} on {best[2]}"


def live_config(model: Path, feed: str) -> LiveConfig:
    return LiveConfig.from_settings({**DEFAULTS, "model": str(model), "feed": feed})


def us(seconds: np.ndarray, q: float) -> float:
    return float(np.percentile(seconds, q)) * 1e6


def ort_call(loop: LiveLoop) -> np.ndarray:
    """Seconds per call of the loop's own model runtime alone: its ONNX Runtime session on its
    last window, or for a causal model (no ONNX graph) its compiled step on the last row, from
    a copy of the loop's state (full: each call advances the copy, which stays full)."""
    net = loop.model.net
    if net is not None:
        state, row = loop.stream.net_state.copy(), np.ascontiguousarray(loop.stream.ring[-1:])

        def call() -> None:
            net.step(state, row, True, False)
    else:
        onnx = loop.model.onnx
        feed = {onnx.input_name: np.ascontiguousarray(loop.stream.ring[None], dtype=np.float32)}

        def call() -> None:
            onnx.session.run(None, feed)

    times = []
    for i in range(ORT_REPEATS + 50):
        start = time.perf_counter()
        call()
        if i >= 50:
            times.append(time.perf_counter() - start)
    return np.array(times)


def state_parts(loop: LiveLoop, repeats: int = 200) -> dict[str, float]:
    """Where a state write goes: the stream context's JSON, the whole document, the dump and
    rename (median microseconds), and the file's size."""

    def median_us(fn) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return us(np.array(times), 50)

    doc = loop.state_doc([], loop.audit_count, loop.audit_count)
    scratch = StateStore(loop.state_store.folder.parent / "scratch")  # leave the run's state
    return {
        "stream_json_us": median_us(loop.stream.to_json),
        "doc_us": median_us(lambda: loop.state_doc([], loop.audit_count, loop.audit_count)),
        "save_us": median_us(lambda: scratch.save(doc)),
        "kb": len(json.dumps(doc, separators=(",", ":"))) / 1024,
    }


def latency(name: str, model: Path, work: Path) -> dict:
    """One replay of the model's built-in market after its validation end, profiled."""
    work.mkdir()
    config = live_config(model, "replay:builtin@max")
    store = AuditStore(work / "audit.db")
    try:
        loop = LiveLoop(config, state_dir=work / "state", store=store, profile=True)
        start = time.perf_counter()
        result = loop.run()
        wall = time.perf_counter() - start
        synchronous = store.db.execute("PRAGMA synchronous").fetchone()[0]
        parts = state_parts(loop)
        ort = ort_call(loop)
    finally:
        store.close()
    profile = np.array(loop.profile)  # (minutes, 7) seconds
    ts = loop.ledger.arrays()[0].copy()  # one record per decided minute, as the profile
    opening = None
    if len(ts) == len(profile):
        session = clock_columns(ts)[1]
        opening = np.r_[True, session[1:] != session[:-1]]  # a session's first minute
    return {
        "name": name,
        "profile": profile,
        "opening": opening,
        "ort": ort,
        "causal": loop.model.causal,
        "wall": wall,
        "result": result,
        "parts": parts,
        "synchronous": synchronous,
    }


def cells(x: np.ndarray) -> tuple[str, str, str]:
    """p50, p99 and max in microseconds."""
    return f"{us(x, 50):,.0f}", f"{us(x, 99):,.0f}", f"{x.max() * 1e6:,.0f}"


def latency_rows(run: dict) -> list[tuple[str, ...]]:
    p, name, opening = run["profile"], run["name"], run["opening"]
    causal = run.get("causal", False)  # the step runs in the push; predict reads its logit
    a2s = p[:, ARRIVAL_TO_SENT]
    other = a2s - p[:, [PUSH, PREDICT, STRATEGY, SEND]].sum(axis=1)
    stages = [
        (
            "features + causal step (stream push)" if causal else "features (stream push)",
            p[:, PUSH],
        ),
        ("model (predict: the step's logit)" if causal else "model (predict)", p[:, PREDICT]),
        ("strategy (decide, allocate, sizing)", p[:, STRATEGY]),
        ("order send (bar event, risk, paper broker)", p[:, SEND]),
        ("other (session check, segment, broker poll)", other),
    ]
    total = a2s.sum()
    rows = [(name, stage, *cells(x), f"{x.sum() / total:.0%}") for stage, x in stages]
    rows.append((name, f"= arrival -> order sent, {len(p):,} minutes", *cells(a2s), "100%"))
    if opening is not None:
        for label, rows_of in (
            ("a session's (or the run's) first minute", opening),
            ("the others", ~opening),
        ):
            x = a2s[rows_of]
            rows.append((name, f"  of which {label} ({len(x):,})", *cells(x), ""))
    ort = run["ort"]
    peer = "causal step (CausalNet.run, one row)" if causal else "ONNX Runtime call"
    rows.append((name, f"peer: {peer} alone", *cells(ort), ""))
    ratio = us(a2s, 50) / us(ort, 50)
    short = "step" if causal else "ORT call"
    rows.append((name, f"ratio: arrival-to-sent / {short}, p50", f"{ratio:.2f}x", "", "", ""))
    state = p[:, STATE_AND_AUDIT] - p[:, AUDIT]
    rows.append((name, "after sending: state write", *cells(state), ""))
    rows.append((name, "after sending: audit write", *cells(p[:, AUDIT]), ""))
    return rows


def print_latency(runs: list[dict]) -> None:
    print("\n## 1. Latency: bar arrival -> order sent, per decided minute (microseconds)\n")
    head = ("preset", "stage", "p50 us", "p99 us", "max us", "share of time to sent")
    print_table(head, [row for run in runs for row in latency_rows(run)])
    print()
    for run in runs:
        p, r = run["profile"], run["result"]
        a2s99 = us(p[:, ARRIVAL_TO_SENT], 99)
        verdict = (
            f"goal <= {GOAL_P99_US:,.0f} us: {'PASS' if a2s99 <= GOAL_P99_US else 'FAIL'}"
            if run["name"] == "quick"
            else "no goal set"
        )
        worst = int(np.argmax(p[:, ARRIVAL_TO_SENT]))
        which = "" if run["opening"] is None or not run["opening"][worst] else ", a session's first"
        verdict += (
            f"; worst minute {p[worst, ARRIVAL_TO_SENT] * 1e3:,.1f} ms (minute {worst}{which})"
        )
        parts = run["parts"]
        print(
            f"{run['name']}: {len(p):,} minutes decided in {run['wall']:.1f} s "
            f"({len(p) / run['wall']:,.0f} minutes/s with state and audit), "
            f"{r['counts'].get('orders', 0)} orders; p99 arrival-to-sent {a2s99:,.0f} us, "
            f"{verdict}"
        )
        print(
            f"  state write: document {parts['doc_us']:,.0f} us (stream context JSON "
            f"{parts['stream_json_us']:,.0f} us) + dump and rename {parts['save_us']:,.0f} us, "
            f"{parts['kb']:.0f} KB a minute; audit: SQLite WAL, PRAGMA synchronous="
            f"{run['synchronous']} (2 = FULL: the WAL is synced at every minute's commit)"
        )
    print(
        "(one process, one ONNX Runtime thread; replay @max of the bars after each model's "
        "validation end on its built-in market; arrival = the minute's last bar reached the loop)"
    )


def soak_market(model: Path, days: int, work: Path) -> tuple[Path, SynthConfig]:
    """A built-in market of ``days`` sessions that starts after the model's data ended, with the
    next seed: every bar is after the validation end (out of sample)."""
    meta = load_verified(model)
    splits = meta["data"]["splits"]
    last = max(splits[k]["last_ts"] for k in splits)
    day_after = pd.Timestamp(last, tz="UTC").tz_convert("America/New_York").date()
    day_after += timedelta(days=1)
    recorded = meta["data"].get("synth") or {}
    config = SynthConfig(seed=int(recorded.get("seed", 7)) + 1, days=days, start=str(day_after))
    write_market(generate(config), work)
    return work / "QQQ.parquet", config


def soak(model: Path, days: int, work: Path) -> dict:
    work.mkdir()
    qqq, synth = soak_market(model, days, work / "market")
    feed = f"replay:{qqq}@max"
    config = live_config(model, feed)
    store = AuditStore(work / "audit.db")
    samples: list[tuple[int, float, float]] = []  # (minutes, RSS MiB, seconds since start)
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("soak"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("minutes, {task.fields[rss]} MiB RSS"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    try:
        loop = LiveLoop(config, state_dir=work / "state", store=store)
        total = loop.feed.stop - loop.feed.start
        task = progress.add_task("soak", total=total, rss="-")
        decided = 0
        start = time.perf_counter()

        def on_bar(status: dict) -> None:
            nonlocal decided
            decided += 1
            if decided % SAMPLE_EVERY == 0:
                rss = rss_mib()[0]
                samples.append((decided, rss, time.perf_counter() - start))
                progress.update(task, completed=decided, rss=f"{rss:.0f}")

        loop.on_bar = on_bar
        with progress:
            result = loop.run()
        wall = time.perf_counter() - start
    finally:
        store.close()
    end_rss, peak = rss_mib()
    files = {
        name: (work / name).stat().st_size
        for name in ("audit.db", "state/state.json", "state/ledger.bin", "state/fills.bin")
    }
    return {
        "synth": synth,
        "feed": feed,
        "minutes": decided,
        "wall": wall,
        "samples": samples,
        "end_rss": end_rss,
        "peak": peak,
        "files": files,
        "result": result,
        "in_sample": config.trading.allow_in_sample,
    }


def rate(samples: list, lo: int, hi: int) -> float:
    """Minutes per second between the samples ``lo`` and ``hi`` (indices)."""
    (m0, _, t0), (m1, _, t1) = samples[lo], samples[hi]
    return (m1 - m0) / (t1 - t0)


def print_soak(s: dict, model: Path) -> None:
    print("\n## 2. Soak: a year of bars through the loop, state and audit on\n")
    samples = s["samples"]
    warm = next((x for x in samples if x[0] >= WARM_MINUTES), None)
    synth = s["synth"]
    rows = [
        ("model", f"{model} (quick preset)"),
        (
            "market",
            f"built-in, seed {synth.seed}, {synth.days} sessions from {synth.start}; "
            "TQQQ/PSQ/SQQQ simulated from QQQ by the replay",
        ),
        (
            "evidence",
            "in-sample (--allow-in-sample): memory only"
            if s["in_sample"]
            else "out of sample: every bar after the model's data (no --allow-in-sample)",
        ),
        ("minutes decided", f"{s['minutes']:,} in {s['wall']:.0f} s"),
        ("throughput", f"{s['minutes'] / s['wall']:,.0f} minutes/s"),
    ]
    if warm is not None and len(samples) - samples.index(warm) > 5:
        w = samples.index(warm)
        edges = np.linspace(w, len(samples) - 1, 6).round().astype(int)
        fifths = " / ".join(
            f"{rate(samples, a, b):,.0f}" for a, b in zip(edges[:-1], edges[1:], strict=True)
        )
        rows.append(("throughput by fifth after warm-up", f"{fifths} minutes/s"))
    if warm is None:
        rows.append(("RSS", f"fewer than {WARM_MINUTES:,} minutes: no baseline"))
        verdict = "n/a"
    else:
        growth = 100 * (s["end_rss"] / warm[1] - 1)
        verdict = "PASS" if growth < GOAL_GROWTH_PCT else "FAIL"
        rows += [
            (f"RSS after warm-up ({warm[0]:,} minutes)", f"{warm[1]:.1f} MiB"),
            (f"RSS at the end (run ended, {s['minutes']:,} minutes)", f"{s['end_rss']:.1f} MiB"),
            ("RSS growth", f"{growth:+.1f} %  {verdict} (goal < {GOAL_GROWTH_PCT:.0f} %)"),
            ("peak RSS (VmHWM)", f"{s['peak']:.1f} MiB"),
        ]
    step = max(1, len(samples) // 10)
    trend = ", ".join(f"{m // 1000}k {r:.0f}" for m, r, _ in samples[::step])
    rows.append(("RSS every ~10 %, MiB", trend))
    sizes = ", ".join(f"{Path(name).name} {n / 2**20:.2f} MiB" for name, n in s["files"].items())
    rows.append(("files at the end", sizes))
    r = s["result"]
    rows.append(
        (
            "run",
            f"{r['counts'].get('orders', 0):,} orders, {r['fills']:,} fills, {r['stop_reason']}",
        )
    )
    print_table(("measure", "value"), rows)


def print_reproduce(models: dict, s: dict) -> None:
    print("\n## 3. Reproduce\n")
    print(f".venv/bin/python bench/live.py {' '.join(sys.argv[1:])}".rstrip())
    print("# the same runs from the command line (WORK=$(mktemp -d)):")
    shown = {}
    for name in ("quick", "default"):
        if name in models:
            shown[name] = models[name] if models.get(f"{name}_given") else f"$WORK/{name}"
    if not models.get("quick_given"):
        print(f"sentio train --quick --threads {threads()} --output $WORK/quick")
    if "default" in models and not models.get("default_given"):
        print(
            f"sentio train --preset default {' '.join(DEFAULT_TRAINING)} --threads {threads()} "
            "--output $WORK/default"
        )
    for name, path in shown.items():
        print(
            f"sentio live --model {path} --feed replay:builtin@max "
            f"--audit $WORK/{name}.db --state $WORK/{name}-state --json"
        )
    synth = s["synth"]
    print(
        f"sentio data synth --out $WORK/market --seed {synth.seed} --days {synth.days} "
        f"--start {synth.start}"
    )
    print(
        f"sentio live --model {shown['quick']} --feed replay:$WORK/market/QQQ.parquet@max "
        "--audit $WORK/soak.db --state $WORK/soak-state"
    )
    print_machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="quick preset only and a 20-session soak"
    )
    parser.add_argument(
        "--preset", choices=("quick", "all"), default="all", help="all: quick and default"
    )
    parser.add_argument(
        "--soak-days", type=int, help="soak sessions (default 252, 20 with --quick)"
    )
    parser.add_argument("--quick-model", type=Path, help="quick-preset artifact (default demo/tfa)")
    parser.add_argument("--default-model", type=Path, help="default-preset artifact (else trained)")
    parser.add_argument(
        "--work", type=Path, help="folder for the temporary state and audit (default: the system's)"
    )
    args = parser.parse_args()
    presets = ("quick",) if args.quick or args.preset == "quick" else ("quick", "default")
    days = args.soak_days or (20 if args.quick else 252)
    with tempfile.TemporaryDirectory(prefix="bench-live-", dir=args.work) as tmp:
        work = Path(tmp)
        print(f"work folder: {work} ({filesystem(work)})", flush=True)
        models: dict = {}
        if args.quick_model or (DEMO / "manifest.json").exists():
            models["quick"], models["quick_given"] = args.quick_model or DEMO, True
        else:
            models["quick"] = train(["--quick", "--threads", threads()], work / "quick")
        if "default" in presets:
            if args.default_model:
                models["default"], models["default_given"] = args.default_model, True
            else:
                models["default"] = train(
                    ["--preset", "default", *DEFAULT_TRAINING, "--threads", threads()],
                    work / "default",
                )
        runs = [latency(name, models[name], work / f"latency-{name}") for name in presets]
        print_latency(runs)
        s = soak(models["quick"], days, work / "soak")
        print_soak(s, models["quick"])
        print_reproduce(models, s)


if __name__ == "__main__":
    main()
