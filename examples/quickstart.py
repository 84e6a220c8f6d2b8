"""Quickstart: a synthetic market -> a tiny model -> its scores -> a backtest -> an HTML report.

    python examples/quickstart.py OUT

Everything goes under the folder OUT (created; it must be new or empty): the market's Parquet
files, the model artifact, and report.html. It runs in seconds because the sizes are tiny;
real runs use the presets (``sentio train --quick`` or ``--preset default``, docs/model.md)
on months of bars, and strattest's default 5 blocks of 480 bars (docs/backtest.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

from sentio import api
from sentio.core.errors import SentioError

SYMBOLS = ("QQQ", "TQQQ", "PSQ", "SQQQ")
# Tiny sizes for a run in seconds; real runs: preset "quick" or "default" (no overrides).
TINY = {"d_model": 16, "nhead": 2, "num_layers": 1, "sequence_length": 8, "epochs": 3}


def main(out: Path) -> None:
    # 1. The built-in market: QQQ and its simulated siblings on 20 NYSE sessions.
    market = out / "market"
    api.synth(market, seed=3, days=20)
    files = [market / f"{symbol}.parquet" for symbol in SYMBOLS]

    # 2. Train on QQQ: the sessions are split 70/15/15 into train, validation and test.
    trained = api.train(files[0], output=out / "model", seed=3, horizon=3, **TINY)
    test = trained.metrics["evaluation"]["test"]["model"]
    print(f"trained {trained.artifact}: test AUC {test['auc']:.4f} on {test['n']} samples")
    print(f"edge: {trained.edge['verdict']} - {trained.edge['reason']}")

    # 3. Score it on the file again: only the bars outside its own data count (the test part).
    scores = api.evaluate(trained.artifact, files[0])
    low, high = scores["overall"]["auc_ci95"]
    print(
        f"out of sample: AUC {scores['overall']['auc']:.4f} [{low:.4f}, {high:.4f}] on "
        f"{scores['bars']['scored']} bars"
    )

    # 4. Trade it over the last two sessions after its validation end, with costs, beside
    # buy-and-hold QQQ and staying flat. The adaptive rule trades a weak model's relative
    # probabilities; cache=False keeps every file under OUT.
    result = api.strattest(
        trained.artifact, files, blocks=2, block_size=390, rule="adaptive", cache=False
    )
    for run, summary in result.summary.items():
        print(f"{run}: mean return per block {summary.mean_rpb_pct:+.3f}%")
    print(result.verdict.text)

    # 5. The self-contained HTML report (the extra sentio[report] draws it).
    try:
        print(f"wrote {api.report(out / 'report.html', result=result)}")
    except SentioError as exc:
        print(f"no report: {exc}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python examples/quickstart.py OUT")
    try:
        main(Path(sys.argv[1]))
    except SentioError as exc:  # a one-line message, as the command line gives
        sys.exit(f"error: {exc}")
