"""The causal presets against the window presets of the same width and depth (issue 18).

Each part prints one table; a row names the peer, the ratio and whether the issue's goal is met.

1. Stream, per bar (55 features, T = 48, both presets). FLOPs: the causal step
   (``sentio.model.causal.causal_flops_per_row``) against one window
   (``sentio.model.tfa.flops_per_window``), goal >= 20x fewer. Wall time, one thread: the
   window model (an untrained ``TFA`` exported by ``to_onnx``: weights do not change the cost)
   in ONNX Runtime at batch 1 (``OnnxModel.logits``, the stream context's call) against the
   causal step (``CausalNet.run`` on one row, the stream context's call) from a full state (the
   model's reach fed first; each call advances it by the next row, so it stays full), goal
   >= 10x lower at p50. The calls run in rounds that alternate the two models; each round's
   p50 and p99 are taken and the lowest over rounds kept (the round least disturbed by other
   tenants). The sequence path: ``CausalNet.series`` over 20,000 rows against ONNX Runtime on a
   batch of 256 windows, per bar, fastest of repeats (no goal).
2. Training, one thread (``torch.set_num_threads(1)``): labelled samples per second of one
   step (forward + backward + AdamW), fastest of repeats (``bench/common.timed``). Window: a
   batch of 256 windows (256, 48, 55) (``bench/train.py``'s ``train_rate``). Causal: a batch
   as ``ChunkFeeder`` builds it, ceil(256 / SPAN) chunks of (reach - 1) + SPAN rows (SPAN =
   128: 2 chunks), the loss on the last SPAN rows of each = 256 labelled samples. Goal >= 10x.
3. Quality (``--skip-quality`` skips it, several minutes): test AUC of a window and a causal
   model of the same size on the built-in market with a planted signal (0.15) and without
   (0.0), the recipe of tests/train/test_honesty.py (d 32, 4 heads, 1 layer, T 16, 3 epochs,
   horizon 1, ``intraday_default``), and of the quick and causal-quick presets on real QQQ
   (``sentio train --preset ... --epochs 3``, the CLI's label: horizon 5, dead zone 1 bp).
   Standard errors by Hanley and McNeil (1982, Radiology 143:29, eq. 2) from the test part's
   positives and negatives; the difference's as if the two AUCs were independent (they share
   the test bars, so a positive correlation makes the true one smaller: conservative). Goal:
   causal AUC >= window AUC - 2 SE of the difference (the honesty test's rule).
4. Live: the loop's bar-arrival to order-sent latency (``bench/live.py``'s ``latency``) of a
   causal-quick artifact next to a quick one, both trained on the quick path's built-in market.
   Goal: p99 <= 1 ms (bench/live.py's goal for the quick preset) for both.
5. The commands that reproduce it, and the machine.

Run: ``.venv/bin/python bench/causal.py`` (15 to 30 minutes on 2 loaded cores);
``--skip-quality`` (about 8 minutes, most of it training the two artifacts of part 4; give
them with ``--quick-model`` / ``--causal-model`` to skip that).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import print_machine, print_table, timed
from live import latency, latency_rows, train
from train import train_rate

from sentio.data.synth.generate import SynthConfig
from sentio.data.synth.planted import planted_accuracy
from sentio.model.causal import CausalTFA, causal_flops_per_row, runtime_weights
from sentio.model.causal_runtime import CausalNet
from sentio.model.config import TFAConfig, preset
from sentio.model.export import to_onnx
from sentio.model.runtime import OnnxModel
from sentio.model.tfa import TFA, flops_per_window
from sentio.train.pipeline import TrainRun, run_training
from sentio.train.samples import LabelSpec
from sentio.train.trainer import SPAN, TrainConfig

SENTIO = Path(sys.executable).with_name("sentio")
QQQ = Path("/work/shared/data/ibkr/QQQ_1min.csv")
FEATURES = 55
BATCH = 256
SERIES_ROWS = 20_000
CALLS = 1_000  # single-bar calls per round and model
ROUNDS = 5
TRAIN_STEPS = 12
PAIRS = (("quick", "causal-quick"), ("default", "causal-default"))
GOAL_FLOPS, GOAL_STEP, GOAL_TRAIN = 20.0, 10.0, 10.0
GOAL_P99_US = 1_000.0
CAUSAL_TRAINING = ("--preset", "causal-quick", "--epochs", "3", "--builtin-days", "60")
QQQ_TRAINING = ("--epochs", "3")
# tests/train/test_honesty.py's recipe
HONESTY_MODEL = {"d_model": 32, "nhead": 4, "num_layers": 1, "seq_len": 16}
PLANTED = 0.15


def met(ok: bool) -> str:
    return "yes" if ok else "no"


# ---------------------------------------------------------------- 1. stream


def window_onnx(cfg: TFAConfig) -> OnnxModel:
    torch.manual_seed(0)
    model = TFA(cfg, torch.zeros(FEATURES), torch.ones(FEATURES)).eval()
    return OnnxModel(to_onnx(model, torch.zeros(1, cfg.seq_len, FEATURES), {}))


def causal_model(cfg: TFAConfig) -> CausalTFA:
    torch.manual_seed(0)
    return CausalTFA(cfg, torch.zeros(FEATURES), torch.ones(FEATURES))


def causal_net(cfg: TFAConfig) -> CausalNet:
    return CausalNet(runtime_weights(causal_model(cfg).eval()), cfg.seq_len, cfg.nhead, cfg.clip)


def call_us(fn, calls: int) -> np.ndarray:
    """Microseconds of each of ``calls`` calls of ``fn``."""
    times = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - start
    return times * 1e6


def single_bar(window: OnnxModel, net: CausalNet, seq_len: int) -> dict[str, tuple[float, float]]:
    """Lowest (p50, p99) microseconds over rounds that alternate the window model's batch-1
    call and the causal step on one row."""
    rng = np.random.default_rng(1)
    x = np.ascontiguousarray(rng.normal(size=(1, seq_len, FEATURES)), dtype=np.float32)
    rows = rng.normal(size=(net.context_rows + CALLS + 50, FEATURES)).astype(np.float32)
    state = net.state()
    net.run(state, rows[: net.context_rows])  # the reach: a full state, as serving holds
    assert state.held == seq_len
    pool = [rows[i : i + 1] for i in range(net.context_rows, len(rows))]  # (1, F) each
    turn = [0]

    def step() -> None:  # the next row: the state stays full
        net.step(state, pool[turn[0] % len(pool)], True, False)  # what the stream context calls
        turn[0] += 1

    fns = {"window": lambda: window.logits(x), "causal": step}
    for fn in fns.values():
        call_us(fn, 50)  # warm-up (and numba's first call)
    best = {name: (math.inf, math.inf) for name in fns}
    for _ in range(ROUNDS):
        for name, fn in fns.items():
            us = call_us(fn, CALLS)
            p50, p99 = np.percentile(us, 50), np.percentile(us, 99)
            best[name] = (min(best[name][0], p50), min(best[name][1], p99))
    return best


def sequence_path(window: OnnxModel, net: CausalNet, seq_len: int) -> tuple[float, float]:
    """(window, causal) microseconds per bar: ONNX Runtime on 256 windows, and the causal
    sequence path over a 20,000-row series; fastest of repeats."""
    rng = np.random.default_rng(2)
    batch = rng.normal(size=(BATCH, seq_len, FEATURES)).astype(np.float32)
    rows = rng.normal(size=(SERIES_ROWS, FEATURES)).astype(np.float32)
    ready, segment = np.ones(SERIES_ROWS, bool), np.zeros(SERIES_ROWS, np.int64)
    window_s, _ = timed(lambda: window.logits(batch), 7)
    causal_s, _ = timed(lambda: net.series(rows, ready, segment), 3)
    return window_s / BATCH * 1e6, causal_s / SERIES_ROWS * 1e6


def stream_part() -> list[tuple[str, ...]]:
    torch.set_num_threads(1)
    rows = []
    for window_name, causal_name in PAIRS:
        wcfg, ccfg = preset(window_name), preset(causal_name)
        print(f"part 1: {window_name} vs {causal_name}", file=sys.stderr, flush=True)
        window, net = window_onnx(wcfg), causal_net(ccfg)
        pair = f"{causal_name} vs {window_name}"
        wf, cf = flops_per_window(wcfg, FEATURES), causal_flops_per_row(ccfg, FEATURES)
        rows.append(
            (
                pair,
                "MFLOP per bar (matrix products)",
                "one window (flops_per_window)",
                f"{wf / 1e6:.3f}",
                f"{cf / 1e6:.3f}",
                f"{wf / cf:.1f}x",
                f">= {GOAL_FLOPS:.0f}x",
                met(wf / cf >= GOAL_FLOPS),
            )
        )
        best = single_bar(window, net, wcfg.seq_len)
        (w50, w99), (c50, c99) = best["window"], best["causal"]
        peer = "ONNX Runtime, batch 1"
        rows.append(
            (
                pair,
                "stream: one bar, p50 us",
                peer,
                f"{w50:.1f}",
                f"{c50:.1f}",
                f"{w50 / c50:.1f}x",
                f">= {GOAL_STEP:.0f}x",
                met(w50 / c50 >= GOAL_STEP),
            )
        )
        rows.append(
            (pair, "stream: one bar, p99 us", peer, f"{w99:.1f}", f"{c99:.1f}",
             f"{w99 / c99:.1f}x", "none", "-")
        )  # fmt: skip
        rows.append(
            (pair, "  arithmetic rate, GFLOP/s at p50", peer, f"{wf / w50 / 1e3:.2f}",
             f"{cf / c50 / 1e3:.2f}", "", "", "")
        )  # fmt: skip
        wseq, cseq = sequence_path(window, net, wcfg.seq_len)
        rows.append(
            (
                pair,
                f"sequence: us per bar (causal over {SERIES_ROWS:,} rows)",
                f"ONNX Runtime, batch {BATCH}",
                f"{wseq:.2f}",
                f"{cseq:.2f}",
                f"{wseq / cseq:.1f}x",
                "none",
                "-",
            )
        )
    return rows


def print_stream(rows: list) -> None:
    print("\n## 1. Stream: cost per bar, one thread (ratio = window / causal)\n")
    head = ("pair", "measure", "peer (window model)", "window", "causal", "ratio", "goal", "met")
    print_table(head, rows)
    print(
        f"(55 features, T 48; untrained weights; single-bar p50/p99: the lowest over {ROUNDS} "
        f"rounds of {CALLS:,} calls alternating the two models; the causal step from a full "
        "state, each call taking the next row; sequence: fastest of repeats)"
    )


# ---------------------------------------------------------------- 2. training


def chunk_flops(cfg: TFAConfig, features: int, rows: int) -> int:
    """Multiply-adds x 2 of the causal network's forward pass over one chunk of ``rows`` rows
    (matrix products only, as ``causal_flops_per_row`` counts them). Torch pads the chunk to
    whole blocks of T rows, and each block's queries meet 2T keys (its own block and the one
    before, those outside the window masked): 2 x blocks x T x 2T x d per layer.

    A one-row chunk (padded to one block of T = 2) with d = 4, F = 3, one layer, ff_mult 1:
    2 rows x (3*4 + (3 + 1 + 2)*4*4 + 4) + 2 x 2 rows x 2T keys x 4 = 224 + 64, times 2:

    >>> chunk_flops(TFAConfig(d_model=4, nhead=1, num_layers=1, seq_len=2, ff_mult=1), 3, 1)
    576
    """
    d, ff, t = cfg.d_model, cfg.ff_mult, cfg.seq_len
    padded = -(-rows // t) * t
    per_row = features * d + cfg.num_layers * (3 * d * d + d * d + 2 * ff * d * d) + d
    return 2 * (padded * per_row + cfg.num_layers * 2 * padded * 2 * t * d)


def causal_train_rate(cfg: TFAConfig, steps: int = TRAIN_STEPS) -> tuple[float, tuple]:
    """Labelled samples/s of the fastest of ``steps`` steps on a ChunkFeeder-shaped batch."""
    torch.set_num_threads(1)
    model = causal_model(cfg).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    chunks = math.ceil(BATCH / SPAN)
    length = (cfg.reach - 1) + SPAN
    x = torch.randn(chunks, length, FEATURES)  # (K, C, F)
    y = (torch.rand(chunks, SPAN) > 0.5).float()  # the last SPAN rows of each chunk

    def step() -> None:
        loss = loss_fn(model(x)[:, -SPAN:], y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    fastest, _ = timed(step, steps)
    return chunks * SPAN / fastest, tuple(x.shape)


def train_part() -> list[tuple[str, ...]]:
    rows = []
    for window_name, causal_name in PAIRS:
        print(f"part 2: {window_name} vs {causal_name}", file=sys.stderr, flush=True)
        torch.manual_seed(0)
        window = TFA(preset(window_name), torch.zeros(FEATURES), torch.ones(FEATURES))
        wrate = train_rate(window, 1, TRAIN_STEPS)
        crate, shape = causal_train_rate(preset(causal_name))
        # forward FLOPs per labelled sample; training is ~3x the forward pass for both
        wflop = flops_per_window(preset(window_name), FEATURES)
        cflop = shape[0] * chunk_flops(preset(causal_name), FEATURES, shape[1]) / BATCH
        rows.append(
            (
                f"{causal_name} vs {window_name}",
                f"window batch ({BATCH}, 48, {FEATURES})",
                f"{wrate:,.0f}",
                f"chunks {shape}, loss on {shape[0] * SPAN}",
                f"{crate:,.0f}",
                f"{crate / wrate:.1f}x",
                f"{wflop / 1e6:.2f} / {cflop / 1e6:.2f} = {wflop / cflop:.1f}x",
                f"{3 * wflop * wrate / 1e9:.1f} / {3 * cflop * crate / 1e9:.1f}",
                f">= {GOAL_TRAIN:.0f}x",
                met(crate / wrate >= GOAL_TRAIN),
            )
        )
    return rows


def print_train(rows: list) -> None:
    print("\n## 2. Training: labelled samples per second, one thread (ratio = causal / window)\n")
    head = (
        "pair",
        "peer batch",
        "window samples/s",
        "causal batch",
        "causal samples/s",
        "ratio",
        "MFLOP/sample window / causal",
        "GFLOP/s window / causal",
        "goal",
        "met",
    )
    print_table(head, rows)
    print(
        f"(forward + backward + AdamW, fastest of {TRAIN_STEPS} steps after one warm-up; MFLOP "
        "per labelled sample: the forward pass's matrix products, a chunk's context rows and "
        "its banded attention (blocks of T rows against 2T keys, the chunk padded to whole "
        "blocks) included, so their ratio is the one the goal could "
        "reach at equal arithmetic rates; GFLOP/s: 3x the forward FLOPs per second)"
    )


# ---------------------------------------------------------------- 3. quality


def hanley_mcneil(auc: float, positives: int, negatives: int) -> float:
    """Standard error of an AUC (Hanley and McNeil 1982, eq. 2).

    >>> round(hanley_mcneil(0.5, 2900, 2900), 4)
    0.0076
    """
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)
    return math.sqrt(var / (positives * negatives))


def scored(model: dict) -> dict:
    """AUC, n and its standard error from a metrics.json ``evaluation.test.model`` block."""
    n, rate = int(model["n"]), float(model["positive_rate"])
    positives = round(n * rate)
    return {
        "auc": model["auc"],
        "n": n,
        "se": hanley_mcneil(model["auc"], positives, n - positives),
    }


def builtin_quality(work: Path, strength: float, family: str) -> dict:
    run = TrainRun(
        data=["builtin"],
        output=work / f"rho{strength}-{family}",
        feature_spec="intraday_default",
        model=TFAConfig(**HONESTY_MODEL, family=family),
        train=TrainConfig(epochs=3, batch_size=256, learning_rate=1e-3, seed=7),
        label=LabelSpec(horizon=1, deadzone_bp=0.0),
        builtin=SynthConfig(seed=7, days=100, signal_strength=strength),
    )
    return scored(run_training(run)["evaluation"]["test"]["model"])


def run_cli(args: list[str]) -> None:
    command = [str(SENTIO), *args]
    print(f"running: {' '.join(command)}", file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr}")


def qqq_quality(work: Path, name: str, bars: Path) -> dict:
    out = work / f"qqq-{name}"
    run_cli(["train", "--preset", name, "--data", str(bars), *QQQ_TRAINING, "--output", str(out),
             "--no-progress"])  # fmt: skip
    return scored(json.loads((out / "metrics.json").read_text())["evaluation"]["test"]["model"])


def quality_part(work: Path) -> list[tuple[str, ...]]:
    results = []
    for strength, market in ((PLANTED, f"built-in, planted {PLANTED}"), (0.0, "built-in, null")):
        print(f"part 3: {market}", file=sys.stderr, flush=True)
        pair = [builtin_quality(work, strength, family) for family in ("window", "causal")]
        size = "d 32, 1 layer, T 16, horizon 1"
        results.append((market, size, *pair))
    bars = work / "qqq.parquet"
    run_cli(["data", "import", str(QQQ), "--out", str(bars)])
    pair = [qqq_quality(work, name, bars) for name in ("quick", "causal-quick")]
    results.append(("real QQQ 1 min", "quick vs causal-quick, horizon 5", *pair))
    rows = []
    for market, size, w, c in results:
        diff = c["auc"] - w["auc"]
        se = math.sqrt(w["se"] ** 2 + c["se"] ** 2)
        rows.append(
            (
                market,
                size,
                f"{w['auc']:.4f} +- {w['se']:.4f} ({w['n']:,})",
                f"{c['auc']:.4f} +- {c['se']:.4f} ({c['n']:,})",
                f"{diff:+.4f} +- {se:.4f}",
                f"{diff / se:+.2f}",
                "causal >= window - 2 SE",
                met(diff >= -2 * se),
            )
        )
    return rows


def print_quality(rows: list) -> None:
    print("\n## 3. Quality: test AUC +- SE (test samples), window vs causal of the same size\n")
    head = (
        "market",
        "models",
        "window AUC (peer)",
        "causal AUC",
        "causal - window",
        "in SE",
        "goal",
        "met",
    )
    print_table(head, rows)
    best = planted_accuracy(PLANTED, horizon=1)["auc"]
    print(
        f"(SE: Hanley-McNeil from the test part's positives and negatives, labels taken as "
        f"independent; the difference's SE as if the two AUCs were independent: conservative, "
        f"they share the test bars. Real QQQ's horizon-5 labels overlap, so its SEs are too "
        f"small. Best AUC any model can reach on the planted market: {best:.4f})"
    )


# ---------------------------------------------------------------- 4. live


def live_part(args, work: Path) -> tuple[list[dict], dict]:
    models: dict = {}
    if args.quick_model:
        models["quick"], models["quick_given"] = args.quick_model, True
    else:
        models["quick"] = train(["--quick"], work / "quick")
    if args.causal_model:
        models["causal-quick"], models["causal-quick_given"] = args.causal_model, True
    else:
        models["causal-quick"] = train(list(CAUSAL_TRAINING), work / "causal-quick")
    runs = [
        latency(name, models[name], work / f"latency-{name}") for name in ("quick", "causal-quick")
    ]
    return runs, models


def p99_us(run: dict) -> float:
    return float(np.percentile(run["profile"][:, 4], 99)) * 1e6  # live.ARRIVAL_TO_SENT


def print_live(runs: list[dict]) -> None:
    print("\n## 4. Live: bar arrival -> order sent, per decided minute (microseconds)\n")
    head = ("preset", "stage", "p50 us", "p99 us", "max us", "share of time to sent")
    print_table(head, [row for run in runs for row in latency_rows(run)])
    window, causal = runs
    print()
    rows = []
    for run in runs:
        p99 = p99_us(run)
        rows.append(
            (
                run["name"],
                f"{len(run['profile']):,}",
                f"{p99:,.0f}",
                "quick (window)" if run is causal else "-",
                f"{p99_us(window) / p99:.2f}x" if run is causal else "-",
                f"p99 <= {GOAL_P99_US:,.0f} us",
                met(p99 <= GOAL_P99_US),
            )
        )
    head = ("preset", "minutes", "p99 arrival-to-sent us", "peer", "ratio peer / this", "goal",
            "met")  # fmt: skip
    print_table(head, rows)
    print(
        "(one process, one thread; replay @max of the bars after each model's validation end on "
        "its built-in market; a causal model takes its step in the stream push, so its "
        "'features' stage holds the network and 'model (predict)' only turns the logit into a "
        "probability)"
    )


# ---------------------------------------------------------------- 5. reproduce


def print_reproduce(models: dict, quality: bool) -> None:
    print("\n## 5. Reproduce\n")
    print(f".venv/bin/python bench/causal.py {' '.join(sys.argv[1:])}".rstrip())
    print("# parts 3 and 4 from the command line (WORK=$(mktemp -d)):")
    if quality:
        print(
            "# built-in planted/null: tests/train/test_honesty.py's TrainRun (d 32, 4 heads, "
            "1 layer, T 16, epochs 3, lr 1e-3, horizon 1, intraday_default, 100 days, seed 7), "
            "family window and causal"
        )
        print(f"sentio data import {QQQ} --out $WORK/qqq.parquet")
        for name in ("quick", "causal-quick"):
            print(
                f"sentio train --preset {name} --data $WORK/qqq.parquet {' '.join(QQQ_TRAINING)} "
                f"--output $WORK/qqq-{name} --no-progress"
            )
    shown = {}
    for name, flags in (("quick", ("--quick",)), ("causal-quick", CAUSAL_TRAINING)):
        if models.get(f"{name}_given"):
            shown[name] = models[name]
        else:
            shown[name] = f"$WORK/{name}"
            print(f"sentio train {' '.join(flags)} --output $WORK/{name}")
    for name, path in shown.items():
        print(
            f"sentio live --model {path} --feed replay:builtin@max "
            f"--audit $WORK/{name}.db --state $WORK/{name}-state --json"
        )
    print_machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--skip-quality", action="store_true", help="skip part 3 (trains six models, minutes)"
    )
    parser.add_argument("--quick-model", type=Path, help="quick-preset artifact (else trained)")
    parser.add_argument("--causal-model", type=Path, help="causal-quick artifact (else trained)")
    parser.add_argument(
        "--work", type=Path, help="folder for the temporary files (default: the system's)"
    )
    args = parser.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    stream = stream_part()
    print_stream(stream)
    training = train_part()
    print_train(training)
    with tempfile.TemporaryDirectory(prefix="bench-causal-", dir=args.work) as tmp:
        work = Path(tmp)
        if not args.skip_quality:
            (work / "quality").mkdir()
            print_quality(quality_part(work / "quality"))
        runs, models = live_part(args, work)
        print_live(runs)
        print_reproduce(models, not args.skip_quality)
    print(f"  load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
