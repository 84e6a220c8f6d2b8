"""``sentio data ...``: import, align, info (and the synthetic market: synth, calibrate)."""

from __future__ import annotations

from pathlib import Path

import typer

from sentio.cli.output import console, print_json, table
from sentio.data import (
    DEFAULT_MAX_GAP_MIN,
    ReadOptions,
    Split,
    align,
    describe,
    import_files,
    read_bars,
    write_bars,
)
from sentio.data.validate import REPAIR_MODES, RULES

app = typer.Typer(help="Canonical bars: import vendor files, align symbols, inspect, synthesise.")


@app.command("import")
def import_command(
    files: list[Path] = typer.Argument(
        ..., help="Vendor files: Polygon/IBKR CSV, Parquet, or any CSV with --ts-col."
    ),
    out: Path = typer.Option(..., "--out", help="Canonical Parquet file to write."),
    symbol: str | None = typer.Option(
        None, help="Symbol for every row (else from the file, else from the file name)."
    ),
    ts_col: str | None = typer.Option(
        None, "--ts-col", help="Time column of a generic CSV (forces the generic reader)."
    ),
    tz: str | None = typer.Option(
        None, help="Time zone of naive times in a generic CSV, e.g. America/New_York or UTC."
    ),
    ts_unit: str | None = typer.Option(
        None, "--ts-unit", help="Unit of numeric epoch times in a generic CSV: s, ms, us or ns."
    ),
    max_gap: int = typer.Option(
        DEFAULT_MAX_GAP_MIN,
        "--max-gap",
        help="Minutes: a longer missing stretch inside a session starts a new segment.",
    ),
    split: list[str] = typer.Option(
        [],
        "--split",
        help="DATE:RATIO: sessions before DATE get prices x RATIO, volume / RATIO. Repeatable.",
    ),
    repair: str = typer.Option(
        "refuse",
        "--repair",
        help="Rows that break a rule: refuse (default) or drop (and report counts per rule).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the import report as JSON."),
) -> None:
    """Turn vendor files into one canonical bar table (regular session only, validated)."""
    if repair not in REPAIR_MODES:
        raise typer.BadParameter(f"--repair must be one of {REPAIR_MODES}")
    options = ReadOptions(symbol=symbol, ts_col=ts_col, tz=tz, ts_unit=ts_unit)
    bars, report = import_files(
        list(files),
        options,
        repair=repair,
        max_gap_min=max_gap,
        splits=[Split.parse(s) for s in split],
    )
    write_bars(bars, out)
    summary = {
        "out": str(out),
        "interval_s": report.interval_s,
        "files": [vars(f) for f in report.files],
        "segments": report.segments,
        "holes": {s: len(h) for s, h in report.holes.items()},
        "hole_minutes": {s: sum(x.minutes for x in h) for s, h in report.holes.items()},
        "split_rows": report.split_rows,
        "rows_out": len(bars.frame),
    }
    if json_out:
        print_json(summary)
        return
    rows = []
    for f in report.files:
        dropped = ", ".join(f"{k} {v}" for k, v in f.dropped.items()) or "-"
        rows.append(
            [
                Path(f.file).name,
                f.fmt,
                ",".join(f.symbols),
                f.rows_read,
                f.extended_hours,
                dropped,
                f.rows_kept,
            ]
        )
    console.print(
        table(
            "Import (extended = outside the regular session, always dropped)",
            ["file", "format", "symbol", "read", "extended", "dropped by rule", "kept"],
            rows,
        )
    )
    for key, count in report.split_rows.items():
        console.print(f"split {key}: adjusted {count} rows")
    for s in sorted(report.segments):
        holes = report.holes[s]
        console.print(
            f"{s}: {report.segments[s]} segment(s); {len(holes)} hole(s), "
            f"{sum(h.minutes for h in holes)} missing minute(s) (not filled)"
        )
    console.print(f"wrote {len(bars.frame)} bars ({report.interval_s} s) to {out}")


@app.command("align")
def align_command(
    files: list[Path] = typer.Argument(
        ..., help="Canonical Parquet tables (from `sentio data import`)."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Canonical Parquet file with every symbol on common timestamps."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Keep the timestamps every symbol has; report what was dropped per symbol and why."""
    bars, report = align([read_bars(f) for f in files])
    write_bars(bars, out)
    if json_out:
        print_json(
            {
                "out": str(out),
                "rows_in": report.rows_in,
                "rows_out_per_symbol": report.rows_out,
                "dropped": report.dropped,
            }
        )
        return
    rows = [
        [
            s,
            n,
            n - report.rows_out,
            ", ".join(f"{k}: {v}" for k, v in report.dropped[s].items()) or "-",
        ]
        for s, n in sorted(report.rows_in.items())
    ]
    console.print(
        table("Align", ["symbol", "rows in", "dropped", "why (a bar can miss in several)"], rows)
    )
    console.print(f"wrote {report.rows_out} common timestamps per symbol to {out}")


@app.command("info")
def info_command(
    files: list[Path] = typer.Argument(..., help="Canonical Parquet tables."),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Symbols, New York range, sessions, bars per session, segments, half days, holes."""
    infos = [(f, i) for f in files for i in describe(read_bars(f))]
    if json_out:
        print_json([{"file": str(f), **i.to_dict()} for f, i in infos])
        return
    for f, i in infos:
        label = i.symbol + (" (SIMULATED)" if i.simulated else "")
        rows = [
            ["range (New York)", f"{i.first_ny} -> {i.last_ny}"],
            ["bars", i.bars],
            ["sessions", i.sessions],
            [
                "bars per session min/median/max",
                f"{i.bars_per_session_min}/{i.bars_per_session_median:g}/{i.bars_per_session_max}",
            ],
            ["segments", i.segments],
            ["half days", ", ".join(i.half_days) or "-"],
            ["holes (not filled)", f"{i.holes} ({i.hole_minutes} missing minutes)"],
        ]
        console.print(table(f"{label}  [{f}]", ["field", "value"], rows))


@app.command("rules")
def rules_command() -> None:
    """List the validation rules, in the order they are checked."""
    console.print(
        table(
            "Bar rules (a row counts under the first it breaks)",
            ["rule", "meaning"],
            [[k, v] for k, v in RULES.items()],
        )
    )
