"""``sentio data ...``: import, download, align, info (and the synthetic market: synth,
calibrate)."""

from __future__ import annotations

from pathlib import Path

import typer

from sentio.cli.configfile import Resolved, config_option, resolve, show_option
from sentio.cli.output import console, err_console, print_json, table
from sentio.core.errors import OptionError
from sentio.core.files import check_output, write_bytes_atomic
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
from sentio.data.download import (
    DownloadRequest,
    alpaca_settings,
    download,
    parts_dir,
    require_alpaca,
)
from sentio.data.ingest import parse_interval
from sentio.data.validate import REPAIR_MODES, RULES

app = typer.Typer(help="Canonical bars: import vendor files, align symbols, inspect, synthesise.")


@app.command("import")
def import_command(
    ctx: typer.Context,
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
    interval: str | None = typer.Option(
        None,
        "--interval",
        help="Bar interval, e.g. 1min or 5min (default: a canonical input's own, else 1min).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the import report as JSON."),
    config: Path | None = config_option(),
    show_config: bool = show_option(),
) -> None:
    """Turn vendor files into one canonical bar table (regular session only, validated)."""
    run = resolve(ctx, config, command_line_only=("out", "json_out"))
    s = run.settings  # how to read the vendor's files: the files and --out stay flags
    with run.checking():
        if s["repair"] not in REPAIR_MODES:
            raise OptionError(f"must be one of {', '.join(REPAIR_MODES)}", flag="--repair")
        splits = [Split.parse(text) for text in s["split"]]
        interval_s = parse_interval(s["interval"]) if s["interval"] is not None else None
    if show_config:
        run.show()
        return
    check_output(out, *files, config)  # the settings file is an input too
    options = ReadOptions(symbol=s["symbol"], ts_col=s["ts_col"], tz=s["tz"], ts_unit=s["ts_unit"])
    with run.checking():  # --tz, --ts-unit... are checked as the files are read
        bars, report = import_files(
            list(files),
            options,
            repair=s["repair"],
            max_gap_min=s["max_gap"],
            splits=splits,
            interval_s=interval_s,
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
        "level_shifts": [shift.to_dict() for shift in report.level_shifts],
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
    print_level_shifts(report.level_shifts)
    console.print(f"wrote {len(bars.frame)} bars ({report.interval_s} s) to {out}")


def print_level_shifts(shifts) -> None:
    """One ``warning:`` line per level shift between files (``sentio.data.levels``)."""
    for shift in shifts:
        console.print(f"warning: {shift.message()}", markup=False, soft_wrap=True)


@app.command("download")
def download_command(
    source: str = typer.Option(
        ..., "--source", help="Where from: alpaca (keys in APCA_API_KEY_ID/APCA_API_SECRET_KEY)."
    ),
    symbol: str = typer.Option(..., "--symbol", help="The ticker, e.g. QQQ."),
    start: str = typer.Option(..., "--start", help="First New York trading day, YYYY-MM-DD."),
    end: str = typer.Option(..., "--end", help="Last New York trading day, YYYY-MM-DD."),
    out: Path = typer.Option(
        ..., "--out", help="Canonical Parquet file to write; finished days go to OUT.parts/."
    ),
    feed: str = typer.Option(
        "iex", "--feed", help="iex (free plan, the live feed's default) or sip (all exchanges)."
    ),
    max_gap: int = typer.Option(
        DEFAULT_MAX_GAP_MIN,
        "--max-gap",
        help="Minutes: a longer missing stretch inside a session starts a new segment.",
    ),
    repair: str = typer.Option(
        "refuse",
        "--repair",
        help="Bars that break a rule: refuse (default) or drop (and report counts per rule).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Download 1-minute bars, one trading day at a time (resumable), into a canonical table."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    request = DownloadRequest(
        symbol=symbol.strip().upper(),
        start=start,
        end=end,
        source=source,
        feed=feed,
        max_gap_min=max_gap,
        repair=repair,
    )
    days = request.check()
    folder = parts_dir(out)
    check_output(out, *(sorted(folder.glob("*.parquet")) if folder.is_dir() else ()))
    check_output(folder, directory=True)
    require_alpaca()
    settings = alpaca_settings()
    # The bar goes to stderr, and only on a terminal: piped output stays one report.
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )
    with progress:
        task = progress.add_task(f"{request.symbol} {days[0]}", total=len(days))

        def advance(day: str, what: str) -> None:
            progress.update(task, advance=1, description=f"{request.symbol} {day} {what}")

        bars, report = download(request, out, settings, on_day=advance)
    write_bars(bars, out)
    imported = report.imported
    extended = sum(f.extended_hours for f in imported.files)
    read = sum(f.rows_read for f in imported.files)
    dropped: dict[str, int] = {}
    for f in imported.files:
        for rule, count in f.dropped.items():
            dropped[rule] = dropped.get(rule, 0) + count
    holes = imported.holes.get(request.symbol, [])
    summary = {
        "out": str(out),
        "source": request.source,
        "symbol": request.symbol,
        "feed": request.feed,
        "days": len(report.days),
        "first_day": report.days[0],
        "last_day": report.days[-1],
        "fetched": report.fetched,
        "reused": report.reused,
        "empty": report.empty,
        "refetched_damaged": report.damaged,
        "parts": str(report.parts_dir),
        "rows_read": read,
        "extended_hours": extended,
        "dropped": dropped,
        "rows_out": len(bars.frame),
        "segments": imported.segments.get(request.symbol, 0),
        "holes": len(holes),
        "hole_minutes": sum(h.minutes for h in holes),
    }
    if json_out:
        print_json(summary)
        return
    console.print(
        f"{request.source} {request.symbol} ({request.feed} feed, prices as traded): "
        f"{len(report.days)} trading day(s) {report.days[0]} -> {report.days[-1]}; fetched "
        f"{len(report.fetched)}, reused {len(report.reused)} from {report.parts_dir}"
        + (f" ({len(report.damaged)} unreadable part(s) fetched again)" if report.damaged else "")
    )
    if report.empty:
        console.print(
            f"no bar at all on {len(report.empty)} trading day(s): {', '.join(report.empty)} "
            "(not saved: a re-run asks Alpaca again)"
        )
    console.print(
        f"read {read} bars; dropped {extended} outside the regular session (Alpaca serves "
        "pre-market and after-hours bars; Sentio keeps 09:30-16:00 New York)"
        + "".join(f"; dropped {count} by rule {rule}" for rule, count in dropped.items())
    )
    console.print(
        f"{request.symbol}: {summary['segments']} segment(s); {len(holes)} hole(s), "
        f"{summary['hole_minutes']} missing minute(s) (not filled)"
    )
    console.print(f"wrote {len(bars.frame)} bars (60 s) to {out}")


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
    check_output(out, *files)
    bars, report = align([read_bars(f) for f in files], [str(f) for f in files])
    write_bars(bars, out)
    if json_out:
        print_json(
            {
                "out": str(out),
                "rows_in": report.rows_in,
                "rows_out_per_symbol": report.rows_out,
                "dropped": report.dropped,
                "level_shifts": [shift.to_dict() for shift in report.level_shifts],
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
    print_level_shifts(report.level_shifts)
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


@app.command("synth")
def synth_command(
    ctx: typer.Context,
    out: Path = typer.Option(
        Path("data/builtin"), "--out", help="Folder for SYMBOL.parquet and regimes.parquet."
    ),
    seed: int = typer.Option(7, help="The one seed of the generator (recorded in the output)."),
    days: int = typer.Option(250, help="Trading sessions to generate (NYSE calendar)."),
    start: str = typer.Option("2024-01-02", help="First session on or after this date."),
    signal_strength: float = typer.Option(
        0.0,
        "--signal-strength",
        help="rho of the planted AR(1) in the shocks; 0 = none (martingale log price).",
    ),
    signal_flip_every: int = typer.Option(
        0,
        "--signal-flip-every",
        help="Flip the sign of the planted rho every N sessions (session d uses "
        "rho * (-1)^(d // N)), so a model trained once goes stale; 0 = never flips.",
    ),
    signal_by_regime: str | None = typer.Option(
        None,
        "--signal-by-regime",
        help="Sign of the planted rho per regime, e.g. bull=1,bear=-1,sideways=1,volatile=-1 "
        "(every regime of the calibration once, SIGN 1, +1 or -1): session d uses "
        "rho * sign\\[regime of d]. Not with --signal-flip-every.",
    ),
    drift: bool = typer.Option(
        False,
        "--drift/--no-drift",
        help="Add each regime's calibrated drift (then the price is no martingale).",
    ),
    regime: str = typer.Option(
        "mixed", help="mixed (Markov chain), or every day bull, bear, sideways or volatile."
    ),
    calibration: Path | None = typer.Option(
        None, "--calibration", help="Parameters JSON (default: the shipped calibration)."
    ),
    config: Path | None = config_option(),
    show_config: bool = show_option(),
) -> None:
    """Generate the built-in market: QQQ and simulated TQQQ, SQQQ, PSQ, with regime labels."""
    from sentio.data.synth import SIBLINGS, generate, write_market

    run = resolve(ctx, config, command_line_only=("out",))
    calibration = run.params["calibration"]
    with run.checking():
        params = _calibration(calibration)
        synth = _synth_config(run, params.regimes.names)
    if show_config:
        run.show()
        return
    check_output(out, calibration, config, directory=True)
    for name in ["QQQ", *(sib.symbol for sib in SIBLINGS), "regimes"]:
        check_output(out / f"{name}.parquet", calibration, config)
    market = generate(synth, params)
    paths = write_market(market, out)
    console.print(_synth_line(synth, params.regimes.names, len(market.bars["QQQ"].frame)))
    for p in paths:
        console.print(f"  wrote {p}")


def _synth_line(c, names: tuple[str, ...], bars: int) -> str:
    """What was generated, in one line."""
    signs = c.signal_by_regime
    return (
        f"MarS seed {c.seed}: {c.days} sessions, {bars} bars per symbol, signal strength "
        f"{c.signal_strength:g}"
        + (f" (sign flips every {c.signal_flip_every} sessions)" if c.signal_flip_every else "")
        + (
            " (sign by regime: "
            + ", ".join(f"{n} {v:+g}" for n, v in zip(names, signs, strict=True))
            + ")"
            if signs
            else ""
        )
        + f", drift {'on' if c.drift else 'off'}, regime {c.regime}; "
        "every table is SIMULATED"
    )


def _calibration(path: Path | None):
    """The market's parameters of ``--calibration`` (the shipped ones when unset); a file that
    cannot be read or checked is refused naming the flag (or the file's setting)."""
    from sentio.core.errors import SynthError
    from sentio.data.synth import load_params

    try:
        return load_params(path)
    except SynthError as exc:
        raise OptionError(str(exc), flag="--calibration") from None


def _synth_config(run: Resolved, names: tuple[str, ...]):
    """The market's config of the resolved settings, checked (a SynthError names its flag:
    "--days must ...", told as the file's setting when the file gave it)."""
    from sentio.core.errors import SynthError
    from sentio.data.synth import SynthConfig
    from sentio.data.synth.generate import parse_signal_by_regime

    s = run.settings
    by_regime = s["signal_by_regime"]
    config = SynthConfig(
        seed=s["seed"],
        days=s["days"],
        start=s["start"],
        signal_strength=s["signal_strength"],
        signal_flip_every=s["signal_flip_every"],
        signal_by_regime=() if by_regime is None else parse_signal_by_regime(by_regime, names),
        drift=s["drift"],
        regime=s["regime"],
    )
    try:
        config.validate()
    except SynthError as exc:
        flag, _, why = str(exc).partition(" ")
        told = run.named(OptionError(why, flag=flag))
        if told.flag != "--config":
            raise
        raise told from None
    return config


@app.command("calibrate")
def calibrate_command(
    files: list[Path] = typer.Argument(
        ..., help="Real 1-minute QQQ files (any importable format)."
    ),
    out: Path = typer.Option(..., "--out", help="Parameters JSON to write."),
    volume_level_from: list[Path] = typer.Option(
        [],
        "--volume-level-from",
        help="Files whose volume sets the level (consolidated-tape volume; default: all).",
    ),
) -> None:
    """Measure the synthetic market's parameters from real bars (see docs/synthetic_market.md)."""
    from sentio.data.synth import calibrate

    check_output(out, *files, *volume_level_from)
    params = calibrate(list(files), list(volume_level_from) or None)
    write_bytes_atomic(out, params.to_json().encode("utf-8"))
    r = params.regimes
    rows = [
        [n, f"{s:.2f}", f"{v * 1e4:.2f}", f"{d * 1e6:+.1f}", f"{t[i]:.2f}"]
        for i, (n, s, v, d, t) in enumerate(
            zip(r.names, r.share, r.vol_per_min, r.drift_per_min, r.transition, strict=True)
        )
    ]
    console.print(
        table(
            f"Regimes over {params.sessions} sessions",
            ["regime", "share", "vol bp/min", "drift 1e-6/min", "P(stay)"],
            rows,
        )
    )
    console.print(
        f"GARCH alpha {params.garch_alpha}, beta {params.garch_beta}; shocks Student-t df "
        f"{params.student_df:g}; overnight gap sd {params.gap_std:.4f}"
    )
    console.print(f"wrote {out}")
