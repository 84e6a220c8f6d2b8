"""``sentio features ...``: list the ops, hash a spec, compute features, check the engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import typer

from sentio import __version__
from sentio.cli.data_commands import print_level_shifts
from sentio.cli.output import console, markdown_table, print_json, table
from sentio.core.errors import OptionError
from sentio.core.files import atomic_output, check_output
from sentio.data import read_bars
from sentio.data.levels import shifts_between
from sentio.features import FeatureEngine, load_spec
from sentio.features.checks import check_seed, run_checks
from sentio.features.inputs import as_input
from sentio.features.registry import describe_ops, warmup_text

app = typer.Typer(help="Feature specs and the feature engine (batch and stream).")

SPEC_HELP = "Spec JSON file, or a shipped spec: feature_spec_55_minimal, intraday_default."
DATA_HELP = "Canonical bar table (Parquet from `sentio data import` or `sentio data synth`)."
SYMBOL_HELP = "Only this symbol of the table (default: every symbol in it)."
COMPAT_HELP = (
    "Apply the spec's alignment_policy like the original engine: rows before emit_from_index "
    "of each segment become pad_value, later non-finite values 0."
)

OP_COLUMNS = ["op", "inputs", "parameters", "zeros", "valid_from", "origin", "definition"]


@app.command("list")
def list_command(
    spec: str | None = typer.Option(
        None, "--spec", help="Show this spec's features (else the registry of ops)."
    ),
    markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown table."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List every op (inputs, parameters, warm-up), or the features of a spec.

    The terminal table leaves out each op's definition; --markdown and --json include it.
    """
    if markdown and json_out:  # one output format; silently picking one is what issue 12 forbids
        raise OptionError("give --markdown or --json, not both", flag="--json")
    if spec is None:
        rows = describe_ops()
        columns = OP_COLUMNS if markdown or json_out else OP_COLUMNS[:-1]
        title = "Feature ops (valid_from: first valid row of a segment at the defaults)"
    else:
        engine = FeatureEngine(spec)
        columns = ["name", "op", "source", "parameters", "valid_from"]
        title = f"{engine.spec.origin}: {len(engine.names)} features, {engine.content_hash}"
        rows = [
            {
                "name": f.name,
                "op": f.op.name,
                "source": f.source if f.op.inputs == "src" else "-",
                "parameters": ", ".join(f"{k}={v}" for k, v in f.params.items()) or "-",
                "valid_from": warmup_text(w),
            }
            for f, w in zip(engine.spec.features, engine.program.warmups, strict=True)
        ]
    if json_out:
        print_json(rows)
    elif markdown:
        typer.echo(markdown_table(columns, [[r[c] for c in columns] for r in rows]), nl=False)
    else:
        console.print(
            table(title, columns, [[r[c] for c in columns] for r in rows], left=len(columns))
        )


@app.command("hash")
def hash_command(spec: str = typer.Argument(..., help=SPEC_HELP)) -> None:
    """Print the spec's content hash (sha256 of its canonical JSON without content_hash)."""
    typer.echo(load_spec(spec).content_hash)


@app.command("compute")
def compute_command(
    spec: str = typer.Option(..., "--spec", help=SPEC_HELP),
    data: Path = typer.Option(..., "--data", help=DATA_HELP),
    out: Path = typer.Option(..., "--out", help="Parquet file to write (one row per bar)."),
    symbol: str | None = typer.Option(None, "--symbol", help=SYMBOL_HELP),
    compat: bool = typer.Option(False, "--compat", help=COMPAT_HELP),
) -> None:
    """Compute every feature of SPEC over DATA; write ts, symbol, segment, ready, features."""
    check_output(out, data, spec if Path(spec).exists() else None)
    engine = FeatureEngine(spec, compat=compat)
    bars = read_bars(data)
    symbols = [symbol] if symbol is not None else bars.symbols  # "" is refused by bars.of
    tables, report = [], {}
    for sym in symbols:
        frame = bars.of(sym)
        computed = engine.compute(as_input(frame))
        columns = {
            "ts": pa.array(frame["ts"].to_numpy(np.int64)),
            "symbol": pa.array([sym] * len(frame), pa.string()),
            "segment": pa.array(frame["segment"].to_numpy(np.int32)),
            "ready": pa.array(computed.ready),
        }
        for j, name in enumerate(engine.names):
            columns[name] = pa.array(computed.values[:, j])
        tables.append(pa.table(columns))
        report[sym] = {
            "rows": len(frame),
            "ready_rows": int(computed.ready.sum()),
            "segments": len(computed.segment_starts),
            "valid_from": {
                name: computed.valid_from[:, j].tolist() for j, name in enumerate(engine.names)
            },
        }
    meta = {
        "spec_hash": engine.content_hash,
        "feature_names": list(engine.names),
        "compat": compat,
        "data": str(data),
        "sentio_version": __version__,
        "symbols": report,
    }
    result = pa.concat_tables(tables)
    result = result.replace_schema_metadata({b"sentio.features": json.dumps(meta).encode()})
    with atomic_output(out) as tmp:
        pq.write_table(result, tmp, compression="zstd")
    for sym, info in report.items():
        console.print(
            f"{sym}: {info['rows']} bars, {len(engine.names)} features, {info['segments']} "
            f"segment(s); {info['ready_rows']} rows past every warm-up"
        )
    console.print(f"wrote {out} (spec {engine.content_hash})")


@app.command("check")
def check_command(
    spec: str = typer.Option(..., "--spec", help=SPEC_HELP),
    data: list[Path] = typer.Option(
        ...,
        "--data",
        help=DATA_HELP + " Repeatable: each file is checked, and a level shift in volume or "
        "price between adjacent sessions of two files is warned about.",
    ),
    symbol: str | None = typer.Option(None, "--symbol", help=SYMBOL_HELP),
    samples: int = typer.Option(
        20, "--samples", min=1, max=1000, help="Random prefix ends to test (at most 1000)."
    ),
    offset: list[int] = typer.Option(
        [1, 97, 1500], "--offset", min=1, help="Later starts for the warm-up check (repeatable)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the random prefix ends."),
    compat: bool = typer.Option(False, "--compat", help=COMPAT_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Prove the engine on your bars: stream == batch, prefix, warm-up, save/restore.

    Also warns of a level shift (volume or price) where bars pass from one file to another:
    between several --data files, or between the sources a combined table records.
    Exits 1 when any check fails (a level shift is a warning only).
    """
    check_seed(seed)
    engine = FeatureEngine(spec, compat=compat)
    tables = [(str(path), read_bars(path)) for path in data]
    several = len(tables) > 1
    options = {"samples": samples, "offsets": tuple(offset), "seed": seed}
    results = []
    for name, bars in tables:
        if several and symbol is not None and symbol not in bars.symbols:
            continue  # one file per symbol: the others' files (refused below if in none)
        for sym in [symbol] if symbol is not None else bars.symbols:
            if len(bars.of(sym)) < 2:  # a warm-up start +1 needs a second bar: nothing to prove
                raise OptionError(
                    f"{name}: {len(bars.of(sym))} {sym} bar; the checks need at least 2",
                    flag="--data",
                )
            with console.status(f"checking {sym} ({len(bars.of(sym))} bars)"):
                for r in run_checks(engine, as_input(bars.of(sym)), **options):
                    results.append(
                        {"file": name, "symbol": sym, "check": r.name, "passed": r.passed,
                         "detail": r.detail}
                    )  # fmt: skip
    if not results:  # --symbol in none of several files
        held = sorted({s for _, bars in tables for s in bars.symbols})
        raise OptionError(
            f"{symbol!r} is in none of the --data files (they hold {', '.join(held)})",
            flag="--symbol",
        )
    shifts = shifts_between(tables, symbol)
    if json_out:
        print_json(
            {
                "spec_hash": engine.content_hash,
                "seed": seed,
                "results": results,
                "level_shifts": [shift.to_dict() for shift in shifts],
            }
        )
    else:
        rows = [
            [*([r["file"]] if several else []), r["symbol"], r["check"],
             "pass" if r["passed"] else "FAIL", r["detail"]]
            for r in results
        ]  # fmt: skip
        columns = [*(["file"] if several else []), "symbol", "check", "result", "detail"]
        console.print(
            table(f"Engine checks, spec {engine.content_hash}", columns, rows, left=len(columns))
        )
        print_level_shifts(shifts)
    if not all(r["passed"] for r in results):
        raise typer.Exit(1)
