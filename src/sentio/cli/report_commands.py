"""``sentio report``: one self-contained HTML report of a run (no logic here:
``sentio.report`` gathers the run's numbers and draws them)."""

from __future__ import annotations

import typer


def report_command() -> None:
    """Write a self-contained HTML report of a strattest run folder or an audited run."""
    raise typer.Exit(0)
