"""``sentio runs list|show|compare``: the run folders and audits that exist (no logic here:
``sentio.runs`` finds and reads them)."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Runs recorded on disk (training artifacts, strattest and walk-forward folders, "
    "audits): list, show, compare.",
    no_args_is_help=True,
)
