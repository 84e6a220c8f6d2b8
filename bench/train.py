"""Training and inference speed of the TFA presets, with FLOPs and the share of peak.

For each preset (55 features, T = 48): training samples/s (forward + backward + AdamW, batch
256, torch on 1 and 2 threads); inference windows/s in batches of 256 and batch-1 latency
p50/p99 for ONNX Runtime (one intra-op thread, the serving configuration) and TorchScript (one
thread). FLOPs per window count the matrix products (sentio.model.tfa.flops_per_window);
training is taken as 3x the forward pass. Peak FP32 is ASSUMED, not measured: 32 FLOP per
cycle per core (two 256-bit FMA pipes, AVX2 + FMA, as /proc/cpuinfo reports) x the clock
/proc/cpuinfo reports.

Run: ``.venv/bin/python bench/train.py``. Prints one table.
"""

from __future__ import annotations

import io
import re
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from common import print_table

from sentio.core.environment import environment
from sentio.model.config import preset
from sentio.model.export import to_onnx, to_torchscript
from sentio.model.runtime import OnnxModel
from sentio.model.tfa import TFA, flops_per_window

FEATURES = 55
BATCH = 256


def flop_per_cycle() -> int:
    """FP32 FLOP per cycle per core: two FMA units of 8 lanes (AVX2) or 16 lanes (AVX-512).
    An assumption about the core, stated in the table, not a measurement."""
    return 64 if "avx512f" in environment()["cpu_isa"] else 32


def peak_gflops(cores: int) -> tuple[float, float]:
    text = Path("/proc/cpuinfo").read_text()
    mhz = float(re.search(r"cpu MHz\s*:\s*([\d.]+)", text).group(1))
    return flop_per_cycle() * mhz / 1e3 * cores, mhz


def train_rate(model: TFA, threads: int, steps: int = 12) -> float:
    torch.set_num_threads(threads)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    x = torch.randn(BATCH, model.cfg.seq_len, FEATURES)
    y = (torch.rand(BATCH) > 0.5).float()
    for i in range(steps + 2):
        if i == 2:
            start = time.perf_counter()
        loss = loss_fn(model(x).reshape(-1), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return steps * BATCH / (time.perf_counter() - start)


def latency(fn, x: np.ndarray, repeats: int) -> tuple[float, float]:
    times = []
    for i in range(repeats + 20):
        start = time.perf_counter()
        fn(x)
        if i >= 20:
            times.append(time.perf_counter() - start)
    arr = np.array(times) * 1e6
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def batch_rate(fn, x: np.ndarray, repeats: int = 5) -> float:
    fn(x)
    start = time.perf_counter()
    for _ in range(repeats):
        fn(x)
    return repeats * len(x) / (time.perf_counter() - start)


def main() -> None:
    rows = []
    peak1, mhz = peak_gflops(1)
    peak2, _ = peak_gflops(2)
    for name in ("quick", "default"):
        cfg = preset(name)
        torch.manual_seed(0)
        model = TFA(cfg, torch.zeros(FEATURES), torch.ones(FEATURES))
        flops = flops_per_window(cfg, FEATURES)
        for threads, peak in ((1, peak1), (2, peak2)):
            rate = train_rate(model, threads)
            rows.append(
                (
                    name,
                    f"train, {threads} thread(s)",
                    f"{rate:,.0f} samples/s",
                    "",
                    f"{3 * flops / 1e6:.1f}",
                    f"{rate * 3 * flops / 1e9 / peak:.1%}",
                )
            )
        model.eval()
        torch.set_num_threads(1)
        x = np.random.default_rng(0).normal(size=(BATCH, cfg.seq_len, FEATURES)).astype(np.float32)
        example = torch.from_numpy(x[:1])
        onnx = OnnxModel(to_onnx(model, example, {}))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            script = torch.jit.load(io.BytesIO(to_torchscript(model, example, {})))

        def run_script(w: np.ndarray, script=script) -> np.ndarray:
            with torch.no_grad():
                return script(torch.from_numpy(w)).numpy()

        for label, fn in (("ONNX Runtime", onnx.logits), ("TorchScript", run_script)):
            rate = batch_rate(fn, x)
            p50, p99 = latency(fn, x[:1], 300)
            rows.append(
                (
                    name,
                    f"{label}, batch {BATCH}",
                    f"{rate:,.0f} windows/s",
                    f"{p50:.0f} / {p99:.0f} us",
                    f"{flops / 1e6:.1f}",
                    f"{rate * flops / 1e9 / peak1:.1%}",
                )
            )
    head = (
        "preset",
        "work (1 thread unless said)",
        "throughput",
        "batch-1 p50 / p99",
        "MFLOP per sample",
        "share of peak",
    )
    print_table(head, rows)
    print(
        f"(assumed peak FP32: {flop_per_cycle()} FLOP/cycle/core x {mhz:.0f} MHz = "
        f"{peak1:.1f} GFLOP/s per core; FLOPs count matrix products only)"
    )


if __name__ == "__main__":
    main()
