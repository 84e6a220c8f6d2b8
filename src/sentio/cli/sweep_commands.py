"""``sentio sweep --grid FILE``: the run and its ranked table (no logic here:
``sentio.backtest.sweep`` reads the grid, runs the variants and ranks them)."""

from __future__ import annotations

from pathlib import Path

import typer

from sentio.cli.output import console, figure, print_json, table
from sentio.core.errors import OptionError, excerpt


def sweep_command(
    grid: Path = typer.Option(
        ...,
        "--grid",
        help="Grid file (TOML or JSON): 'fixed' settings shared by every variant and 'grid' "
        "lists whose every combination is one walk-forward run (docs/sweep.md).",
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        help="A new or empty folder: variants/NNN (each a walk-forward run folder) and sweep.json.",
    ),
    backend: str = typer.Option(
        "local",
        "--backend",
        help="local (one fold after another) or ray (each variant's folds as Ray tasks; the "
        "extra sentio\\[ray]); the files are the same bytes.",
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        help="With --backend ray: a Ray cluster's HOST:PORT or 'auto' (default: start a "
        "local Ray on this machine's cores).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print sweep.json's document."),
) -> None:
    """Walk-forward-test every variant of a grid and rank them, with session-bootstrap
    intervals and the count of variants tried."""
    from rich.progress import Progress

    from sentio.backtest.sweep import read_grid, run_sweep

    if backend not in ("local", "ray"):
        raise OptionError(f"must be local or ray; got {excerpt(backend)}", flag="--backend")
    parsed = read_grid(grid)
    # started at the first report, so a grid refused before any work prints one line only
    bar = Progress(console=console, transient=True, disable=json_out)
    tasks: dict[str, int] = {}

    def progress(variant: int, variants: int, stage: str, done: int, total: int) -> None:
        if not tasks:
            bar.start()
            tasks["variants"] = bar.add_task("variants", total=variants)
        bar.update(tasks["variants"], completed=variant)
        if stage not in tasks:
            tasks[stage] = bar.add_task(f"{stage} folds", total=total)
        bar.update(tasks[stage], completed=done, total=total)

    try:
        document = run_sweep(parsed, out, backend=backend, address=ray_address, progress=progress)
    finally:
        if tasks:
            bar.stop()
    if json_out:
        print_json(document | {"out": str(out)})
        return
    report(document, out)


def sessions_line(sessions: dict) -> str:
    """What the variants traded: the same sessions (the latest first session any variant's
    policy allows, for all), or a plain warning when they did not.

    >>> print(sessions_line({"first_session": 7317, "first_date": "2024-01-26",
    ...     "last_date": "2024-02-13", "count": 13, "same_for_every_variant": True}))
    sessions: every variant traded the same 13 sessions, 2024-01-26 .. 2024-02-13 (from session 7317, the latest first session any variant's schedule allows)
    """  # noqa: E501
    if not sessions["same_for_every_variant"]:
        return ("sessions: the variants traded different sessions; their mean session returns "
                "are not comparable")  # fmt: skip
    return (
        f"sessions: every variant traded the same {sessions['count']} sessions, "
        f"{sessions['first_date']} .. {sessions['last_date']} (from session "
        f"{sessions['first_session']}, the latest first session any variant's schedule allows)"
    )


def report(document: dict, out: Path) -> None:
    """The ranked table, the best variant and the selection warning."""
    varied = list(document["grid"]["grid"])
    rows = []
    for row in document["ranked"]:
        rows.append(
            [
                row["rank"],
                f"{row['variant']:03d}",
                *[figure(row["settings"][k]) for k in varied],
                row["folds"],
                row["promoted"],
                row["sessions"],
                figure(row["mean_session_return_pct"]),
                figure(row["session_return_ci95_pct"]),
                figure(row["oos_auc"]),
                figure(row["oos_auc_ci95"]),
                figure(row["single_mean_session_return_pct"]),
            ]
        )
    columns = ["rank", "variant", *varied, "folds", "promoted", "sessions",
               "mean session %", "95% CI %", "OOS AUC", "AUC 95% CI", "single model %"]  # fmt: skip
    title = f"{document['variants_tried']} variants, ranked by {document['ranked_by']}"
    console.print(table(title, columns, rows, left=2 + len(varied)))
    console.print(
        "intervals: session bootstrap (whole sessions resampled: 10,000 times for the mean return, "
        "1,000 for the AUC); 'single model %': the first fold's model trading every "
        "session, never replaced",
        soft_wrap=True,
    )
    console.print(sessions_line(document["sessions"]), soft_wrap=True)
    console.print(f"best variant {document['best']['variant']:03d}: {document['verdict']['text']}",
                  soft_wrap=True)  # fmt: skip
    console.print(document["warning"], soft_wrap=True)
    console.print(f"wrote {out / 'sweep.json'} and every variant's run under {out / 'variants'}",
                  soft_wrap=True)  # fmt: skip


__all__ = ["report", "sessions_line", "sweep_command"]
