"""``sentio report``: one self-contained HTML report of a run (no logic here:
``sentio.report`` gathers the run's numbers and draws them)."""

from __future__ import annotations

from pathlib import Path

import typer

from sentio.cli.output import console
from sentio.core.errors import OptionError


def report_command(
    run: str | None = typer.Option(
        None,
        "--run",
        help="A run folder (`strattest --out DIR`, or a walk-forward run's --out); with "
        "--audit, the id of the audited run (default: the newest).",
    ),
    audit: Path | None = typer.Option(
        None, "--audit", help="An audit database (`strattest --audit DB`): report one of its runs."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="The HTML file to write (one self-contained file: every script and number inline, "
        "no network request when opened; replaced atomically).",
    ),
) -> None:
    """Write a self-contained HTML report of a strattest run folder, a walk-forward run folder
    or an audited run (docs/report.md)."""
    check_flags(run, audit, out)
    from sentio.report import report_audit, report_run

    written = report_audit(audit, out, run) if audit is not None else report_run(Path(run), out)
    size = written.stat().st_size
    console.print(f"wrote {written} ({size / 1e6:.1f} MB; open it in a browser)", soft_wrap=True)


def check_flags(run: str | None, audit: Path | None, out: Path | None) -> None:
    """Exactly one source: ``--run DIR``, or ``--audit DB`` with an optional ``--run ID``
    (never an empty one)."""
    if audit is None and run is None:
        raise OptionError(
            "give a run folder (--run DIR) or an audit database (--audit DB [--run ID])",
            flag="--run",
        )
    if run is not None and not run.strip():
        newest = "a run id of the database (or leave --run out: the newest run)"
        raise OptionError(f"is empty; give {newest if audit else 'a run folder'}", flag="--run")
    if audit is not None and run is not None and Path(run).is_dir():
        raise OptionError(
            f"with --audit, --run names a run of the database, but {run} is a folder; give "
            "either --run DIR or --audit DB [--run ID]",
            flag="--run",
        )
    if out is None:
        raise OptionError("give the HTML file to write, e.g. --out report.html", flag="--out")


__all__ = ["check_flags", "report_command"]
