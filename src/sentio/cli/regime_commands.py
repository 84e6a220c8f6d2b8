"""``sentio data regimes``: fit a regime labeller on part of a bar table (or on another file),
label every bar, and report bar and session shares, session-to-session transitions, bar
persistence and, for the built-in market, agreement with its own regimes (docs/regimes.md;
every figure is defined in ``sentio.train.regime_report``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import typer
from rich.text import Text

from sentio.cli.output import console, figure, print_json, table
from sentio.core.clock import ny_time
from sentio.core.errors import BarsError, OptionError, SentioError, excerpt
from sentio.core.files import atomic_output, check_output
from sentio.core.hashing import canonical_json, sha256_file
from sentio.data import read_bars
from sentio.features.inputs import clock_columns
from sentio.features.regimes import LABELLERS, NAMES, RegimeError
from sentio.train.regime_report import (
    FIT_FRACTION,
    fit_sessions,
    report,
    shared_bars,
    true_regimes,
)
from sentio.train.regimes import fit_block, regime_frame

SETS = (("all", "all bars"), ("in_sample", "in-sample"), ("out_of_sample", "out-of-sample"))


def _bars(path: Path, symbol: str, flag: str | None) -> tuple[pd.DataFrame, dict]:
    """One symbol's bars of a canonical table and the table's metadata; errors name the file
    (and ``flag``, for a file given by a flag)."""
    try:
        bars = read_bars(path)
        if symbol not in bars.symbols:
            raise BarsError(
                f"symbol {excerpt(symbol)} not in this table (it has {', '.join(bars.symbols)}); "
                "choose one with --symbol",
                file=str(path),
            )
    except SentioError as exc:
        if flag is None:
            raise
        raise OptionError(str(exc), flag=flag) from None
    return bars.of(symbol), bars.meta


def _say(text: str) -> None:
    """Print plain text (a file name's ``[`` is not rich markup)."""
    console.print(Text(text))


def _day(ts: int) -> str:
    return ny_time(np.array([ts]))[0].date().isoformat()


def _sessions(frame: pd.DataFrame, rows: np.ndarray | None = None) -> dict:
    """How many sessions the bars ``rows`` of ``frame`` span, and their first and last days."""
    ts = frame["ts"].to_numpy(np.int64)
    ts = ts if rows is None else ts[rows]
    session = clock_columns(ts)[1]
    return {
        "sessions": len(np.unique(session)),
        "first_session": _day(int(ts[0])),
        "last_session": _day(int(ts[-1])),
    }


def regimes_command(
    file: Path = typer.Argument(
        ..., help="Canonical bars (Parquet from `sentio data import` or `sentio data synth`)."
    ),
    labeller: str = typer.Option(
        ..., "--labeller", help="rules (volatility and trend cut points) or hmm (Gaussian HMM)."
    ),
    fit_on: Path | None = typer.Option(
        None,
        "--fit-on",
        help="Fit on all of this file's bars of --symbol (default: the first 70% of FILE's "
        "sessions).",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Parquet to write: ts, regime, regime_id, p_<regime> per bar of FILE."
    ),
    symbol: str = typer.Option("QQQ", "--symbol", help="The symbol of FILE (and --fit-on)."),
    seed: int = typer.Option(7, "--seed", min=0, help="Seed of the HMM fit (recorded)."),
    json_out: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Label every bar of FILE with a regime; report shares, transitions and persistence.

    On the built-in market, also agreement with its true regimes. Writes nothing without --out.
    """
    if labeller not in LABELLERS:
        raise OptionError(f"must be {' or '.join(LABELLERS)}, got {labeller!r}", flag="--labeller")
    if out is not None:
        check_output(out, file, fit_on)
    frame, meta = _bars(file, symbol, None)
    ts = frame["ts"].to_numpy(np.int64)
    session = clock_columns(ts)[1]
    if fit_on is not None:
        fit_frame, _ = _bars(fit_on, symbol, "--fit-on")
        fit = np.ones(len(fit_frame), dtype=bool)
        record = {"file": str(fit_on), "sha256": sha256_file(fit_on), "symbol": symbol}
        record |= _sessions(fit_frame)
        in_sample = shared_bars(frame, fit_frame)
        where = f"all of {fit_on}"
    else:
        fit_frame, fit = frame, fit_sessions(session)
        record = {"file": str(file), "sha256": sha256_file(file), "symbol": symbol}
        record |= {"fraction_of_sessions": FIT_FRACTION, **_sessions(frame, fit)}
        in_sample = fit
        where = f"the first {FIT_FRACTION:.0%} of {file}'s sessions"
    with console.status(f"fitting the {labeller} labeller on {where} and labelling {file}"):
        try:
            block = fit_block(labeller, fit_frame, fit, seed, record)
        except RegimeError as exc:
            raise RegimeError(f"fitting on {where}: {exc}") from None
        labels = regime_frame(block, frame)
        truth, source = true_regimes(file, meta, ts)
    figures = report(labels, session, in_sample, truth)
    doc = {
        "file": str(file),
        "symbol": symbol,
        "labeller": labeller,
        "seed": seed,
        "fit": block.fitted_on,
        "block": block.to_json_dict(),
        "in_sample_bars": int(in_sample.sum()),
        "out_of_sample_bars": int((~in_sample).sum()),
        "sessions": _sessions(frame),
        **figures,
        "truth": source,
        "out": None if out is None else str(out),
    }
    if out is not None:
        arrow = pa.Table.from_pandas(labels, preserve_index=False)
        arrow = arrow.replace_schema_metadata({"sentio.regimes": canonical_json(doc["block"])})
        with atomic_output(out) as tmp:
            pq.write_table(arrow, tmp, compression="zstd")
    if json_out:
        print_json(doc)
        return
    _print(doc, where)


def _print(doc: dict, where: str) -> None:
    fit = doc["fit"]
    _say(
        f"{doc['labeller']} labeller fitted on {where}: sessions {fit['first_session']} -> "
        f"{fit['last_session']} ({fit['sessions']} sessions, {fit['bars']} bars past the "
        f"warm-up{', seed ' + str(doc['seed']) if doc['labeller'] == 'hmm' else ''})"
    )
    _say(
        f"{doc['file']} {doc['symbol']}: {doc['sessions']['sessions']} sessions; in-sample "
        f"(bars the labeller was fitted on) {doc['in_sample_bars']} bars, out-of-sample "
        f"{doc['out_of_sample_bars']} bars"
    )
    shares = doc["bar_shares"]
    rows = [
        [label, shares[key]["bars"], shares[key]["before_warm_up"], shares[key]["labelled"]]
        + [figure(shares[key]["share"][n]) for n in NAMES]
        for key, label in SETS
    ]
    console.print(
        table(
            "Share of labelled bars per regime (bars before the warm-up carry no label)",
            ["bars", "count", "before warm-up", "labelled", *NAMES],
            rows,
            left=1,
        )
    )
    days = doc["session_shares"]
    console.print(
        table(
            f"Share of sessions per regime ({days['without_label']} of {days['sessions']} "
            "sessions have no labelled bar)",
            ["", *NAMES],
            [
                ["sessions", *(days["count"][n] for n in NAMES)],
                ["share", *(figure(days["share"][n]) for n in NAMES)],
            ],
            left=1,
        )
    )
    _say(f"a session's regime: the {days['rule']}")
    moves = doc["transitions"]
    console.print(
        table(
            "Session-to-session transitions (rows = from, each row sums to 1; counts in "
            "parentheses)",
            ["from \\ to", *NAMES],
            [
                [a, *(f"{figure(moves['share'][a][b])} ({moves['count'][a][b]})" for b in NAMES)]
                for a in NAMES
            ],
            left=1,
        )
    )
    kept = doc["bar_persistence"]
    _say(
        f"bar persistence: {figure(kept['share'])} ({kept['kept']} of {kept['pairs']} pairs of "
        "consecutive labelled bars of one session keep their label)"
    )
    truth = doc["truth"]
    if not truth["available"]:
        _say(f"agreement with true regimes: unavailable ({truth['reason']})")
        return
    agree = doc["agreement"]
    for key, label in SETS:
        part = agree[key]
        if not part["bars"]:
            continue
        console.print(
            table(
                f"Agreement, {label}: accuracy {figure(part['accuracy'])} over "
                f"{part['bars']} labelled bars",
                ["true \\ label", *NAMES],
                [[t, *(row[n] for n in NAMES)] for t, row in part["confusion"].items()],
                left=1,
            )
        )
    _say(f"true regimes (confusion rows; columns = labels, counts of bars) from {truth['source']}")
