"""``sentio runs list|show|compare``: the run folders and audits that exist (no logic here:
``sentio.runs`` finds and reads them). Reading commands: nothing is written."""

from __future__ import annotations

from pathlib import Path

import typer

from sentio.cli.output import console, print_json, table
from sentio.core.errors import OptionError

app = typer.Typer(
    help="Runs recorded on disk (training artifacts, strattest and walk-forward folders, "
    "audits): list, show, compare.",
    no_args_is_help=True,
)

JSON = typer.Option(False, "--json", help="Print every field as JSON.")
REF_HELP = (
    "A run folder (training artifact, strattest --out, walk-forward or sweep folder), an "
    "audit database (its newest run) or DB#RUN_ID."
)


def cell(value: object) -> str:
    """A value in a table: floats to 6 significant digits, lists as compact JSON, None as -.

    >>> cell(-0.6833604210451427), cell(54), cell([0.3, 0.45]), cell(None)
    ('-0.68336', '54', '[0.3,0.45]', '-')
    """
    from sentio.runs.fields import text

    if isinstance(value, float):
        return f"{value:.6g}"
    return text(value)


def when_cell(when: str | None) -> str:
    """A recorded time in New York to the minute; ``-`` when the run records none.

    >>> when_cell("2026-12-01T00:10:21+00:00"), when_cell(None)
    ('2026-11-30 19:10', '-')
    """
    from sentio.core.clock import ny_minute

    if not when:
        return "-"
    try:
        return ny_minute(when)
    except (ValueError, TypeError):  # an edited audit's time: shown as recorded
        return str(when)[:32]


@app.command("list")
def list_command(
    paths: list[Path] | None = typer.Argument(
        None, help="Folders to search (recursively) or files; default: the current folder."
    ),
    depth: int = typer.Option(
        6, "--depth", min=0, max=32, help="Folder levels below each PATH to search."
    ),
    json_out: bool = JSON,
) -> None:
    """Every run under PATH (artifacts, run folders, audit runs) and its headline figures."""
    from sentio.runs.catalog import find_runs

    runs, problems = find_runs(paths or [Path(".")], depth=depth)
    if json_out:
        print_json(
            {"runs": [r.to_dict() for r in runs], "unreadable": [p.to_dict() for p in problems]}
        )
        return
    rows = [
        [
            r.kind,
            r.ref,
            when_cell(r.when),
            cell(r.auc),
            cell(r.edge),
            cell(r.net_mean_pct),
            cell(r.verdict),
        ]
        for r in runs
    ]
    columns = ["kind", "run", "recorded (New York)", "AUC", "edge", "net mean %", "verdict"]
    console.print(table(f"{len(runs)} runs", columns, rows, left=3))
    for p in problems:  # a reason that starts with the path names the file inside already
        line = p.reason if p.reason.startswith(p.path) else f"{p.path}: {p.reason}"
        console.print(f"unreadable: {line}", style="yellow", markup=False, soft_wrap=True)


@app.command("show")
def show_command(
    ref: str = typer.Argument(..., help=REF_HELP, show_default=False), json_out: bool = JSON
) -> None:
    """One run's config, hashes and numbers."""
    from sentio.runs.catalog import SECTIONS, read_ref

    run = read_ref(ref)
    if json_out:
        print_json(run.to_dict())
        return
    console.print(
        f"{run.kind} {run.ref}; recorded {when_cell(run.when)} New York; AUC {cell(run.auc)}; "
        f"edge {cell(run.edge)}; net mean {cell(run.net_mean_pct)} %; verdict "
        f"{cell(run.verdict)}",
        soft_wrap=True,
        markup=False,
    )
    for section in SECTIONS:
        values = getattr(run, section)
        rows = [[name, cell(value)] for name, value in values.items()]
        console.print(table(section, ["field", "value"], rows, left=2))


@app.command("compare")
def compare_command(
    refs: list[str] = typer.Argument(..., help=f"Two or more runs. {REF_HELP}"),
    differences: bool = typer.Option(
        False, "--differences", help="Only the fields whose values differ."
    ),
    json_out: bool = JSON,
) -> None:
    """Runs side by side: config, hashes and numbers; config values that differ marked *."""
    from sentio.runs.catalog import compare_rows, read_ref

    if len(refs) < 2:
        raise OptionError("give at least two runs to compare", flag="REF")
    runs = [read_ref(ref) for ref in refs]
    rows = [r for r in compare_rows(runs) if r["differs"] or not differences]
    if json_out:
        print_json({"runs": [r.ref for r in runs], "rows": rows})
        return
    shown = [
        [
            "*" if row["differs"] and row["section"] == "config" else "",
            row["section"],
            row["field"],
            *(cell(v) for v in row["values"]),
        ]
        for row in rows
    ]
    columns = ["", "section", "field", *(r.ref for r in runs)]
    console.print(table(f"{len(runs)} runs side by side", columns, shown, left=3))
    console.print("* a config value that differs between the runs", markup=False)
