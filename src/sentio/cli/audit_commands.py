"""``saudit`` (also ``sentio audit``): read and verify the audit store.

Every command takes ``--db`` (default audit.db in the working directory) and ``--json``;
``--run`` defaults to the newest run in the database. Every command only reads: the database
is opened read-only and left byte for byte as it was.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import typer

from sentio.cli.output import console, figure, print_json, table
from sentio.cli.output import new_york as ny_clock

app = typer.Typer(
    name="saudit",
    help="Audit runs recorded by `sentio strattest --audit DB`: list, signal flow, trades, "
    "positions, summary, verify (chain + replay from fills), export.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

DB = typer.Option(Path("audit.db"), "--db", help="Audit database (SQLite).")
JSON = typer.Option(False, "--json", help="Print JSON instead of tables.")
RUN = typer.Option(None, "--run", help="Run id (default: the newest run in the database).")


def _reader(db: Path):
    """The database opened read-only; a refusal names the --db flag."""
    from sentio.audit import AuditError, AuditStore

    try:
        return AuditStore(db, create=False)
    except AuditError as exc:
        raise AuditError(f"--db {exc}") from None


def _open(db: Path, run_id: str | None):
    from sentio.audit.read import load

    store = _reader(db)
    run = store.run(run_id)
    return store, run, load(store, run["run_id"])


def _p(value) -> str:
    return "n/a" if value is None else f"{value:.6f}"


def _diff(value) -> str:
    if value is None:
        return "n/a"
    return "0" if value == 0 else f"{value:+.2e}"


def _header(kind: str, shown: list, total: int, oldest: bool, run: dict, extra: str) -> str:
    from sentio.audit.read import new_york

    if not shown:
        return f"{kind} of run {run['run_id']} ({run['status']}): none match{extra}"
    which = "oldest" if oldest else "newest"
    return (
        f"{kind} of run {run['run_id']} ({run['status']}): the {which} {len(shown)} of "
        f"{total}{extra}, {new_york(shown[0]['ts'])} .. {new_york(shown[-1]['ts'])} New York"
    )


def _show(title, run, rows, max_rows, oldest, extra, columns, cells, json_out) -> None:
    """The selected rows under a header that says which they are, as a table or JSON."""
    from sentio.audit.read import fields, select

    shown = select(rows, max_rows, oldest)
    header = _header(title, shown, len(rows), oldest, run, extra)
    if json_out:
        print_json({"header": header, "rows": shown})
        return
    lines = []
    for r in shown:
        with fields(
            run["run_id"], r.get("seq"), "recorded"
        ):  # a rehashed edit: named, no traceback
            lines.append(cells(r))
    console.print(table(header, columns, lines, left=1))


@app.command("list")
def list_command(db: Path = DB, json_out: bool = JSON) -> None:
    """Every run: status (complete / incomplete), model, data, blocks, events, chain head."""
    from sentio.audit.read import fields

    store = _reader(db)
    runs = []
    for entry in store.runs():
        run = store.run(entry["run_id"])
        start = run["config"]  # the chained run_start, not the runs table's copy
        with fields(run["run_id"], 0, "run_start"):
            runs.append(_listed(run, start))
    if json_out:
        print_json(runs)
        return
    rows = [
        [
            r["run_id"],
            r["status"],
            ny_clock(r["started_at"]) if r["started_at"] else "",
            f"{r['model']} ({(r['manifest_hash'] or '')[:12]})",
            ", ".join(r["data"]),
            r["blocks"],
            r["events"],
            r["head"][:16],
        ]
        for r in runs
    ]
    console.print(
        table(
            f"runs in {db}",
            ["run", "status", "started (New York)", "model", "data", "blocks", "events", "head"],
            rows,
            left=5,
        )
    )


def _listed(run: dict, start: dict) -> dict:
    """One row of ``saudit list`` from the run and its chained run_start payload."""
    data = start.get("data", {})
    return {
        "run_id": run["run_id"],
        "status": run["status"],
        "started_at": run["started_at"],
        "model": start.get("model", {}).get("path"),
        "manifest_hash": start.get("model", {}).get("manifest_hash"),
        "data": [f["path"] for f in data.get("files", [])] or ["builtin"],
        "blocks": start.get("blocks_run"),
        "events": run["events"],
        "head": run["head"],
    }


@app.command("signal-flow")
def signal_flow_command(
    max_rows: int = typer.Option(20, "--max", min=0, help="Rows to show (0: all)."),
    run_id: str | None = RUN,
    since: str | None = typer.Option(
        None, "--since", help="Only bars at or after this time (no zone: New York time)."
    ),
    trades_only: bool = typer.Option(
        False, "--trades-only", help="Only bars with an order or a fill."
    ),
    oldest: bool = typer.Option(
        False, "--oldest", help="Show the oldest rows instead of the newest."
    ),
    db: Path = DB,
    json_out: bool = JSON,
) -> None:
    """Bar by bar, the NEWEST rows by default: New York time, p(seq), p(stream), their
    difference, signal, reason, orders, fills, position, equity."""
    from sentio.audit.read import flow, holding, new_york, parse_since

    _, run, events = _open(db, run_id)
    rows = flow(events, run["run_id"])
    extra = ""
    if since:
        start = parse_since(since)
        rows = [r for r in rows if r["ts"] >= start]
        extra += f" bars since {new_york(start)} New York"
    else:
        extra += " bars"
    if trades_only:
        rows = [r for r in rows if r["orders"] or r["fills"]]
        extra += " with an order or a fill"
    columns = ["time (New York)", "p(seq)", "p(stream)", "diff", "signal", "reason", "order"]
    columns += ["fill", "position", "equity"]
    _show(
        "signal flow",
        run,
        rows,
        max_rows,
        oldest,
        extra,
        columns,
        lambda r: [
            new_york(r["ts"]),
            _p(r["p_seq"]),
            _p(r["p_stream"]),
            _diff(r["diff"]),
            r["signal"],
            r["reason"],
            "; ".join(r["orders"]),
            "; ".join(r["fills"]),
            holding(r["positions"]),
            f"{r['equity']:,.2f}",
        ],
        json_out,
    )


@app.command("trades")
def trades_command(
    max_rows: int = typer.Option(20, "--max", min=0, help="Fills to show, the newest (0: all)."),
    run_id: str | None = RUN,
    db: Path = DB,
    json_out: bool = JSON,
) -> None:
    """Every fill: time, block, side, quantity, instrument, price, fees, cash and holdings
    after it."""
    from sentio.audit.read import fills, holding, new_york

    _, run, events = _open(db, run_id)
    columns = ["time (New York)", "seq", "block", "side", "qty", "symbol", "price", "fees"]
    columns += ["cash", "holdings"]
    _show(
        "fills",
        run,
        fills(events),
        max_rows,
        False,
        "",
        columns,
        lambda r: [
            new_york(r["ts"]),
            r["seq"],
            r["block"],
            r["side"],
            r["qty"],
            r["symbol"] + (" (sim)" if r["simulated"] else ""),
            f"{r['price']:.4f}",
            f"{r['fees']:.2f}",
            f"{r['cash_after']:,.2f}",
            holding(r["positions_after"]),
        ],
        json_out,
    )


@app.command("positions")
def positions_command(
    max_rows: int = typer.Option(20, "--max", min=0, help="Changes to show, the newest (0: all)."),
    run_id: str | None = RUN,
    db: Path = DB,
    json_out: bool = JSON,
) -> None:
    """Holdings at every bar where they changed, with the equity at that close."""
    from sentio.audit.read import new_york, position_changes

    _, run, events = _open(db, run_id)
    rows = position_changes(events, run["run_id"])
    symbols = [k for k in (rows[0] if rows else {}) if k not in ("seq", "ts", "block", "equity")]
    _show(
        "position changes",
        run,
        rows,
        max_rows,
        False,
        "",
        ["time (New York)", "seq", "block", *symbols, "equity"],
        lambda r: (
            [new_york(r["ts"]), r["seq"], r["block"], *[r[s] for s in symbols]]
            + [f"{r['equity']:,.2f}"]
        ),
        json_out,
    )


@app.command("summary")
def summary_command(run_id: str | None = RUN, db: Path = DB, json_out: bool = JSON) -> None:
    """The run: model, data, config, metrics as recorded at its end, parity, blocks."""
    from sentio.audit.read import fields, summary

    _, run, events = _open(db, run_id)
    doc = summary(run, events)
    if json_out:
        print_json(doc)
        return
    # a field a rehashed edit removed or retyped is named, never a traceback
    with fields(run["run_id"], "its run_start, a block_end or its run_end", "recorded"):
        _print_summary(doc)


def _print_summary(doc: dict) -> None:
    from sentio.cli.backtest_commands import FIGURES

    model, data, config = doc["model"] or {}, doc["data"] or {}, doc["config"] or {}
    files = ", ".join(f"{f['path']} (sha256 {f['sha256'][:12]})" for f in data.get("files", []))
    span = data.get("blocks_range") or []
    bars = f"{ny_clock(span[0])} .. {ny_clock(span[-1])} New York" if span else "none"
    console.print(
        f"run {doc['run_id']} ({doc['status']}), {doc['events']} events, head {doc['head']}\n"
        f"model {model.get('path')} (manifest {str(model.get('manifest_hash'))[:12]}, spec "
        f"{str(model.get('spec_hash'))[:19]}); data {files or 'built-in market'}; bars "
        f"{bars}; fill {config.get('fill')}; seed {config.get('seed')}"
        + ("; IN-SAMPLE" if doc["in_sample"] else ""),
        soft_wrap=True,
    )
    if doc["summary"] is None:
        console.print("no run_end: the run is incomplete, it has no final metrics", style="yellow")
    else:
        names = list(doc["summary"])
        rows = [
            [label]
            + [
                figure(tuple(v) if isinstance(v, list) else v)
                for v in (doc["summary"][n][key] for n in names)
            ]
            for label, key in FIGURES
        ]
        console.print(table("metrics recorded at the run end", ["figure", *names], rows, left=1))
        parity = doc["parity"]
        console.print(
            f"inference paths: {parity['compared']} of {parity['bars']} bars compared, "
            f"{parity['bars_differ']} differ, max |p(stream) - p(seq)| {parity['max_abs_diff']}"
        )
    if doc["blocks"]:
        columns = ["block", "start", "end", "return_pct", "fills", "fees"]
        rows = [
            [figure(b["block"]), ny_clock(b["start"]), ny_clock(b["end"])]
            + [figure(b[c]) for c in columns[3:]]
            for b in doc["blocks"]
        ]
        heads = ["block", "start (New York)", "end (New York)", "return %", "fills", "fees $"]
        console.print(table("blocks", heads, rows, left=3))


@app.command("verify")
def verify_command(
    run_id: str | None = RUN,
    full: bool = typer.Option(
        False, "--full", help="Re-run the stream context on every bar, not a sample."
    ),
    sample: int = typer.Option(
        64, "--sample", min=1, help="Bars whose probability the stream re-run checks."
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed that draws the sampled bars."),
    db: Path = DB,
    json_out: bool = JSON,
) -> None:
    """Walk the hash chain (a complete run must end with its run_end), replay cash,
    positions, equity, every decision (the strategy's decide() on the recorded probabilities)
    and every strategy metric, and re-run the stream context on a seeded sample of bars from
    the recorded model and data (all with --full). Exit 0: all of it holds; 1: something does
    not (the first bad seq is named); 3: nothing wrong found, but the stream re-run could not
    be done (model or data absent or different; the reason is printed)."""
    from sentio.audit import verify_run

    verdict = verify_run(_reader(db), run_id, full=full, sample=sample, seed=seed)
    if json_out:
        print_json(verdict.to_dict())
    elif verdict.ok:
        checked, parity = verdict.checked, verdict.checked["parity"]
        stream = checked.get("stream")
        stream_text = (
            f"; the stream re-run reproduced {stream['bars']} of {stream['of']} recorded "
            f"probabilities bit for bit ({stream['mode']}, seed {stream['seed']}"
            + (f", with {stream['models']} models" if stream.get("models", 1) > 1 else "")
            + ")"
            + (
                f"; each of the {stream['sessions']} blocks is one whole session of the data"
                if "sessions" in stream
                else ""
            )
            if stream
            else ""
        )
        console.print(
            f"run {verdict.run_id}: OK. Chain of {verdict.events} events intact and ended by "
            f"its run_end, head {verdict.head}; replayed {checked['bars']} bars, "
            f"{checked['fills']} fills, {checked['blocks']} blocks: cash, positions, equity, "
            f"{checked['decisions']} decisions and every strategy metric match the record; "
            f"the two inference paths agree on all {parity['compared']} compared bars"
            f"{stream_text}.",
            soft_wrap=True,
        )
        if verdict.unchecked:
            console.print(f"NOT CHECKED: {verdict.unchecked}", style="yellow", soft_wrap=True)
    else:
        console.print(
            f"run {verdict.run_id}: FAILED at seq {verdict.first_bad_seq}: {verdict.problem}",
            style="red",
            soft_wrap=True,
        )
    if verdict.exit_code:
        raise typer.Exit(verdict.exit_code)


@app.command("export")
def export_command(
    fmt: str = typer.Option("jsonl", "--format", help="csv or jsonl."),
    out: Path | None = typer.Option(None, "--out", help="File to write (default: stdout)."),
    run_id: str | None = RUN,
    db: Path = DB,
    json_out: bool = JSON,
) -> None:
    """Every event of a run with its chain fields (payload_canonical is the exact string
    hashed: hash = sha256(prev_hash + kind + payload_canonical))."""
    from sentio.audit.read import export_rows
    from sentio.core.files import atomic_output, check_output

    if fmt not in ("csv", "jsonl"):
        raise typer.BadParameter("--format must be csv or jsonl")
    if out is not None:  # before any work: never onto the database or its WAL files
        check_output(out, db, Path(f"{db}-wal"), Path(f"{db}-shm"), flag="--out")
    _, run, events = _open(db, run_id)
    rows = export_rows(run["run_id"], events)
    if out is None:
        _write_events(sys.stdout, rows, fmt)
    else:
        with atomic_output(out, flag="--out") as tmp, tmp.open("w", newline="") as stream:
            _write_events(stream, rows, fmt)
    if out and json_out:
        print_json({"run_id": run["run_id"], "events": len(rows), "format": fmt, "out": out})
    elif out:
        console.print(f"wrote {len(rows)} events of run {run['run_id']} to {out} ({fmt})")


def _write_events(stream, rows: list[dict], fmt: str) -> None:
    if fmt == "jsonl":
        for row in rows:
            stream.write(json.dumps(row, sort_keys=True) + "\n")
        return
    writer = csv.writer(stream)
    columns = ["run_id", "seq", "ts", "time_utc", "kind", "payload_canonical", "prev_hash", "hash"]
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row[c] for c in columns])


__all__ = ["app"]
