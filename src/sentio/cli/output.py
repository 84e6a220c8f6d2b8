"""Printing helpers shared by the commands: rich tables, JSON, and error messages."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sentio.core.clock import ny_minute as new_york  # noqa: F401  (re-exported for the commands)

# Piped or captured output is 160 columns wide rather than rich's 80, so wide tables such as
# the signal flow keep one line per row; in a terminal, the terminal's width.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)


def plain(obj: Any) -> Any:
    """``obj`` as JSON-ready Python: non-finite floats become None (JSON has no NaN or
    Infinity), numpy scalars and arrays become numbers and lists, tuples lists, paths and times
    strings (ISO 8601), enums their value, pydantic models and dataclasses their fields; any
    other object its ``str`` (as ``json.dumps(default=str)`` did before).

    >>> plain({"a": np.float32(1.5), "b": (float("nan"), np.int64(2)), "c": [np.inf]})
    {'a': 1.5, 'b': [None, 2], 'c': [None]}
    """
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset | np.ndarray):
        return [plain(v) for v in obj]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, Enum):
        return plain(obj.value)
    if isinstance(obj, BaseModel):
        return plain(obj.model_dump(mode="json"))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return plain(dataclasses.asdict(obj))
    return str(obj)


def figure(value: Any) -> str:
    """A report's figure: 3 decimals, an interval as ``low .. high``, n/a when undefined.

    >>> figure(0.12345), figure((0.1, float("nan"))), figure(None), figure(7)
    ('0.123', '0.100 .. n/a', 'n/a', '7')
    """
    if isinstance(value, tuple | list):
        return f"{figure(value[0])} .. {figure(value[1])}"
    if isinstance(value, float):
        return "n/a" if value != value else f"{value:.3f}"  # NaN: the figure is undefined
    return "n/a" if value is None else str(value)


def json_text(obj: Any) -> str:
    """Indented JSON of ``obj`` (see :func:`plain`), never bare NaN or Infinity.

    >>> print(json_text({"sharpe": float("nan")}))
    {
      "sharpe": null
    }
    """
    return json.dumps(plain(obj), indent=2, sort_keys=True, allow_nan=False)


def print_json(obj: Any) -> None:
    """Print ``obj`` as indented JSON on stdout (for ``--json``)."""
    sys.stdout.write(json_text(obj) + "\n")


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
