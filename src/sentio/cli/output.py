"""Printing helpers shared by the commands: rich tables, JSON, and error messages."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

console = Console()
err_console = Console(stderr=True)


def print_json(obj: Any) -> None:
    """Print ``obj`` as indented JSON on stdout (for ``--json``)."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    """A rich table; every cell is plain text (no markup is interpreted)."""
    out = Table(title=Text(title), title_justify="left")
    for i, name in enumerate(columns):
        out.add_column(Text(name), justify="left" if i < 2 else "right")
    for row in rows:
        out.add_row(*[Text(str(x)) for x in row])
    return out
