"""``--report PATH`` and ``--track URI``: the HTML report and the MLflow run a command may add
to its work (no logic here: ``sentio.report`` draws, ``sentio.runs.tracking`` logs).

Both are checked before the work starts (the report's path against every input and output,
the report extra installed; the tracking store reachable and writable), so a bad value costs
no training and no backtest.
"""

from __future__ import annotations

from pathlib import Path

import typer

from sentio.cli.output import console


def report_option():
    return typer.Option(
        None,
        "--report",
        help="Also write the run as one self-contained HTML report (plots, tables, config; "
        "the extra sentio\\[report]; docs/report.md). Historical and walk-forward.",
    )


def track_option():
    return typer.Option(
        None,
        "--track",
        help="Log the run to MLflow: a local folder (no server) or an http(s):// tracking "
        "server (default: $SENTIO_MLFLOW_TRACKING_URI; the extra sentio\\[mlflow]; "
        "docs/tracking.md).",
    )


def tracking_uri(track: str | None) -> str | None:
    """The MLflow URI of ``--track`` (or the environment), read and checked for its form
    (nothing is contacted or created); None: not tracked."""
    from sentio.runs.tracking import tracking_uri as read_uri

    return read_uri(track)


def check_tracking(uri: str) -> None:
    """The store reachable and writable (creates its experiment): call it after the run's
    own outputs are checked, so that a refused run leaves no store behind."""
    from sentio.runs.tracking import check_tracking as check

    check(uri)


def check_report(report: Path | None, *inputs: Path | str | None) -> None:
    """Before the work: the report's path is none of the run's inputs or outputs, and Bokeh is
    installed."""
    if report is None:
        return
    from sentio.core.files import check_output
    from sentio.report.page import require_bokeh

    check_output(report, *inputs, flag="--report")
    require_bokeh()


def wrote(what: str, quiet: bool) -> None:
    """One line saying what was written or logged (not in --json mode: stdout is the JSON)."""
    if not quiet:
        console.print(what, highlight=False, soft_wrap=True)
