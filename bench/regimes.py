"""How the regime enters the model (issue 15): a regime embedding against a mixture of experts,
and both against the peer, a plain model, on the planted regime-sign market (docs/regimes.md).

The market is ``separable_regimes()`` with the planted AR(1) coefficient +rho in bull and bear,
-rho in sideways and volatile (250 sessions, rho 0.3); every variant trains the same tiny
network on one row of the scale-free z-score of the last return (the recipe of
tests/train/test_planted_regimes.py) and is scored on the test part per TRUE regime of the
generator. "balanced" is the mean of the four regimes' AUCs; "best" is the generator's own
formula (``planted_accuracy``). Seeds are the market's; the training seed is 7.

    python bench/regimes.py [--seeds 11 12 13]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import print_table

from sentio.data.synth.generate import SynthConfig, generate, write_market
from sentio.data.synth.planted import planted_accuracy, separable_regimes
from sentio.features.inputs import clock_columns
from sentio.infer import SequenceContext
from sentio.model.config import TFAConfig
from sentio.train.config import TrainConfig
from sentio.train.evaluate import auc
from sentio.train.pipeline import TrainRun, run_training
from sentio.train.samples import LabelSpec, label_bars

RHO, DAYS = 0.3, 250
NAMES = ("bull", "bear", "sideways", "volatile")
SIGNS = (1.0, 1.0, -1.0, -1.0)  # bull, bear, sideways, volatile
SPEC = {"features": [{"name": "zlog_60", "op": "ZWIN", "source": "logret", "window": 60}]}
VARIANTS = {  # name -> (labeller, multi-regime, experts)
    "plain (peer)": ("hmm", False, 0),
    "hmm embedding": ("hmm", True, 0),
    "hmm experts": ("hmm", True, 4),
    "rules embedding": ("rules", True, 0),
}


def score(folder: Path, market, out: Path) -> dict[str, float]:
    qqq = market.bars["QQQ"].of("QQQ")
    probability = SequenceContext(out).calculate_probability(qqq)
    meta = json.loads((out / "model.meta.json").read_text())
    ts = qqq["ts"].to_numpy(np.int64)
    ret, ok = label_bars(
        qqq["close"].to_numpy(), qqq["segment"].to_numpy(), clock_columns(ts)[1], LabelSpec(1, 0)
    )
    test = (ts >= meta["data"]["splits"]["test"]["first_ts"]) & ok & np.isfinite(probability)
    test &= ret != 0
    truth = market.regimes["regime_id"].to_numpy()
    y = (ret > 0).astype(float)
    return {
        name: auc(y[test & (truth == k)], probability[test & (truth == k)])
        for k, name in enumerate(NAMES)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[11, 12, 13])
    args = parser.parse_args()
    best = planted_accuracy(RHO, horizon=1)["auc"]
    rows, balanced = [], {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            folder = Path(tmp) / str(seed)
            market = generate(
                SynthConfig(seed=seed, days=DAYS, signal_strength=RHO, signal_by_regime=SIGNS),
                separable_regimes(),
            )
            write_market(market, folder / "market")
            (folder / "spec.json").write_text(json.dumps(SPEC))
            for name, (labeller, multi, experts) in VARIANTS.items():
                out = folder / name.split()[0] / name.split()[-1]
                start = time.perf_counter()
                run_training(
                    TrainRun(
                        data=[str(folder / "market" / "QQQ.parquet")],
                        output=out,
                        model=TFAConfig(
                            d_model=32, nhead=4, num_layers=1, seq_len=1, regime_experts=experts
                        ),
                        train=TrainConfig(epochs=4, learning_rate=1e-3, seed=7),
                        label=LabelSpec(horizon=1, deadzone_bp=0.0),
                        feature_spec=str(folder / "spec.json"),
                        regime_labeller=labeller,
                        multi_regime=multi,
                    )
                )
                seconds = time.perf_counter() - start
                per = score(folder, market, out)
                mean = float(np.mean(list(per.values())))
                balanced[name].append(mean)
                rows.append(
                    [
                        str(seed),
                        name,
                        *(f"{per[n]:.3f}" for n in NAMES),
                        f"{mean:.3f}",
                        f"{seconds:.0f}",
                    ]
                )
                print(f"seed {seed} {name}: balanced {mean:.3f}", file=sys.stderr)
    print(f"best achievable AUC per regime (generator's formula, rho {RHO}): {best:.3f}\n")
    print_table(["seed", "variant", *NAMES, "balanced", "train s"], rows)
    peer = float(np.mean(balanced["plain (peer)"]))
    print()
    print_table(
        ["variant", "mean balanced AUC", "x plain", "gap to best"],
        [
            [name, f"{np.mean(v):.3f}", f"{np.mean(v) / peer:.3f}", f"{best - np.mean(v):.3f}"]
            for name, v in balanced.items()
        ],
    )


if __name__ == "__main__":
    main()
