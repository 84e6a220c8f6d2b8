"""Score a model on a bar file it never saw: import the file, then evaluate out of sample.

    python examples/evaluate_file.py OUT [--bars FILE] [--model DIR]

``--bars``: a vendor export you hold (IBKR or Polygon CSV, or Parquet: docs/data.md); without
it, a stand-in CSV of synthetic QQQ bars (New York times, a generic layout) is written to OUT
and used. ``--model``: an artifact directory; without it a tiny model is trained on 12
sessions of the built-in market into OUT/model, so that the example runs in seconds (real
models use the presets: ``sentio train --quick`` or ``--preset default``, docs/model.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sentio import api
from sentio.core.clock import NEW_YORK
from sentio.core.errors import SentioError


def stand_in_csv(path: Path) -> Path:
    """Ten sessions of synthetic QQQ from 2024-03-01, as a CSV with New York wall times."""
    frame = api.synth(seed=5, days=10, start="2024-03-01").bars["QQQ"].frame
    times = frame["ts"].astype("datetime64[ns, UTC]").dt.tz_convert(NEW_YORK)
    table = (
        frame[["open", "high", "low", "close", "volume"]]
        .round(4)
        .assign(time=times.dt.strftime("%Y-%m-%d %H:%M"))
    )
    table[["time", "open", "high", "low", "close", "volume"]].to_csv(path, index=False)
    return path


def main(out: Path, bars: Path | None, model: Path | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if model is None:  # tiny sizes for a run in seconds; real runs use the presets
        tiny = {"d_model": 16, "nhead": 2, "num_layers": 1, "sequence_length": 8, "epochs": 3}
        model = api.train(output=out / "model", builtin_days=12, seed=3, horizon=3, **tiny).artifact
    # A generic CSV says which column holds the time and what its zone is; vendor layouts
    # (IBKR, Polygon) are recognised without options.
    options = {"ts_col": "time", "tz": "America/New_York", "symbol": "QQQ"}
    if bars is None:
        bars = stand_in_csv(out / "qqq_1min.csv")
    else:
        options = {}
    table, imported = api.import_bars(bars, out / "qqq.parquet", **options)
    print(f"imported {len(table.frame)} bars ({imported.interval_s} s) from {bars}")

    doc = api.evaluate(model, out / "qqq.parquet")
    for name, scores in (("model", doc["overall"]), ("logistic", doc["logistic_last_row"])):
        if scores is not None:
            low, high = scores["auc_ci95"]
            print(
                f"{name}: AUC {scores['auc']:.4f} [{low:.4f}, {high:.4f}], "
                f"log loss {scores['log_loss']:.4f}, Brier {scores['brier']:.4f}"
            )
    print(f"edge: {doc['edge']['verdict']} - {doc['edge']['reason']}")
    print(
        f"scored {doc['bars']['scored']} of {doc['bars']['total']} bars; "
        f"{doc['bars']['no_probability']} had no probability (no full window of valid features yet)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output folder")
    parser.add_argument("--bars", type=Path, help="a bar file to score (default: a stand-in)")
    parser.add_argument("--model", type=Path, help="an artifact (default: train a tiny one)")
    args = parser.parse_args()
    try:
        main(args.out, args.bars, args.model)
    except SentioError as exc:  # a one-line message, as the command line gives
        sys.exit(f"error: {exc}")
