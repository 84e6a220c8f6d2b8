"""Printing helpers shared by the commands: rich tables, JSON, and error messages."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

# Piped or captured output is 160 columns wide rather than rich's 80, so wide tables such as
# the signal flow keep one line per row; in a terminal, the terminal's width.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)


def print_json(obj: Any) -> None:
    """Print ``obj`` as indented JSON on stdout (for ``--json``)."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def table(title: str, columns: list[str], rows: list[list[Any]], left: int = 2) -> Table:
    """A rich table; every cell is plain text (no markup is interpreted). The first ``left``
    columns are left-justified (labels), the rest right-justified (numbers)."""
    out = Table(title=Text(title), title_justify="left")
    for i, name in enumerate(columns):
        out.add_column(Text(name), justify="left" if i < left else "right")
    for row in rows:
        out.add_row(*[Text(str(x)) for x in row])
    return out


def markdown_table(columns: list[str], rows: list[list[Any]]) -> str:
    """A GitHub Markdown table (``|`` in cells escaped).

    >>> print(markdown_table(["a", "b"], [[1, "x|y"]]), end="")
    | a | b |
    |---|---|
    | 1 | x\\|y |
    """

    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
