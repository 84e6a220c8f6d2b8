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

from sentio.backtest.metrics import ANNUALISED, MIN_DAYS
from sentio.core.clock import ny_minute as new_york  # noqa: F401  (re-exported for the commands)
from sentio.infer.ranges import describe as describe_ranges

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


SMALL = "*"  # the mark of a figure annualised from too few days


def summary_figure(summary: dict, key: str) -> str:
    """One figure of a backtest summary (``metrics.Summary`` fields, with its costs merged in);
    Sharpe, Sortino and Calmar carry a mark when the days were too few to annualise
    (:func:`small_sample_note` says it in words under the table).

    >>> summary_figure({"sharpe": 3.1, "days": 6, "small_sample": True}, "sharpe")
    '3.100 *'
    >>> summary_figure({"sharpe": 3.1, "days": 60, "small_sample": False}, "sharpe")
    '3.100'
    """
    text = figure(summary.get(key))
    if key in ANNUALISED and summary.get("small_sample") and text != "n/a":
        text += f" {SMALL}"
    return text


def figure_rows(figures: list[tuple[str, str]], columns: dict[str, dict]) -> list[list[str]]:
    """Rows of a figures table: one per (label, key), one cell per column's summary."""
    return [[label, *(summary_figure(c, key) for c in columns.values())] for label, key in figures]


def small_sample_note(summary: dict) -> str | None:
    """The words of the mark, when a summary's days are too few (None otherwise).

    >>> small_sample_note({"days": 6, "small_sample": True})
    '* annualised from 6 trading days: too few to annualise (fewer than 20); read these Sharpe, Sortino and Calmar figures as noise'
    """  # noqa: E501
    if not summary.get("small_sample"):
        return None
    return (
        f"{SMALL} annualised from {summary.get('days')} trading days: too few to annualise "
        f"(fewer than {MIN_DAYS}); read these Sharpe, Sortino and Calmar figures as noise"
    )


def inputs_range_line(report: dict | None) -> tuple[str, str | None] | None:
    """The inputs' out-of-distribution count (the sequence context's ``range_report()``) as
    ``sentio.infer.ranges.describe``'s line and its style (yellow when it warns); None when
    there is no report."""
    if not report:
        return None
    return describe_ranges(report), "yellow" if report.get("warn") else None


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
