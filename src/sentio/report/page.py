"""The report as one self-contained HTML page: Bokeh's JavaScript and every number inline
(``bokeh.resources.INLINE``), so opening the file makes no network request.

The page is Bokeh's own file template (``bokeh.embed.file_html``) with its body replaced by
the report's sections: plain HTML tables (every string escaped with ``html.escape``) with the
plots placed between them by name. Tables show the figures as strattest prints them: three
decimals, ``n/a`` for an undefined figure, an interval as ``low .. high``.
"""

from __future__ import annotations

import html
import json
import math

from sentio.backtest.metrics import ANNUALISED, MIN_DAYS, STRATTEST_FIGURES
from sentio.core.clock import ny_minute
from sentio.report.data import ReportData, ReportError
from sentio.report.figures import Plot, plots

EXTRA = "pip install 'sentio[report]'"
FIGURES = STRATTEST_FIGURES  # strattest's own table, row for row
STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px;
       padding: 0 1em; color: #222; display: block; height: auto; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.85em; }
th, td { border: 1px solid #ddd; padding: 2px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.banner { background: #fdd; color: #900; font-weight: bold; padding: 0.5em; }
.note { color: #8a6d3b; } .caption { color: #555; font-size: 0.85em; margin: 0 0 1em; }
.verdict { font-weight: bold; } pre { font-size: 0.8em; background: #f7f7f7; padding: 0.5em;
       overflow-x: auto; }
"""
TEMPLATE = """
{% block preamble %}<style>{{ style }}</style>{% endblock %}
{% block contents %}
{% from macros import embed %}
{% for kind, part in parts %}
{% if kind == "plot" %}{{ embed(roots[part]) }}{% else %}{{ part }}{% endif %}
{% endfor %}
{% endblock %}
"""


def require_bokeh() -> None:
    """Bokeh, the ``report`` extra, or one line saying how to install it."""
    try:
        import bokeh  # noqa: F401
    except ImportError:
        raise ReportError(
            f"the HTML report draws with Bokeh, which is not installed: {EXTRA}"
        ) from None


def render(data: ReportData) -> tuple[str, int]:
    """The page's HTML and the number of plots on it."""
    require_bokeh()
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    drawn = plots(data)
    for plot in drawn:
        plot.figure.name = f"plot_{plot.name}"  # the data source alone is named "equity"
    parts = sections(data, drawn)
    page = file_html(
        [p.figure for p in drawn],
        INLINE,
        title=f"sentio report: {data.title}",
        template=TEMPLATE,
        template_variables={"parts": parts, "style": STYLE},
    )
    return page, len(drawn)


def sections(data: ReportData, drawn: list[Plot]) -> list[tuple[str, str]]:
    """The page in order: ("html", text) and ("plot", root name) parts."""
    parts = [("html", head(data))]
    by_section: dict[str, list[Plot]] = {}
    for plot in drawn:
        by_section.setdefault(plot.section, []).append(plot)
    for section, members in by_section.items():
        parts.append(("html", f"<h2>{_e(section)}</h2>"))
        if section == "Returns and verdict":
            parts.append(("html", verdict_line(data)))
        for plot in members:
            parts.append(("plot", plot.figure.name))
            parts.append(("html", f'<p class="caption">{_e(plot.caption)}</p>'))
        if section == "Returns and verdict":
            parts.append(("html", blocks_table(data)))
    parts.append(("html", tail(data)))
    return parts


def head(data: ReportData) -> str:
    """Title, source, banners, notes and the figures table."""
    out = [f"<h1>{_e(data.title)}</h1>", f"<p>{_e(data.source)}</p>"]
    out += [f'<p class="banner">{_e(b)}</p>' for b in data.banners]
    out += [f'<p class="note">note: {_e(n)}</p>' for n in data.notes]
    out.append(f"<h2>Figures</h2>{figures_table(data)}")
    out.append(verdict_line(data))
    return "\n".join(out)


def figures_table(data: ReportData) -> str:
    """The runs side by side (strategy, buy-and-hold, flat), figures and costs whole."""
    runs = sorted(dict.fromkeys([*data.summary, *data.costs]), key=_run_order)
    columns = {r: (data.summary.get(r) or {}) | (data.costs.get(r) or {}) for r in runs}
    rows = [
        [label, *(cell(columns[r].get(key)) + _mark(columns[r], key) for r in runs)]
        for label, key in FIGURES
        if any(key in columns[r] for r in runs)
    ]
    out = table(["figure", *(r.replace("_", " ") for r in runs)], rows)
    days = [c.get("days") for c in columns.values() if c.get("small_sample")]
    if days:
        out += (
            f'<p class="note">* annualised from {min(days)} trading days: too few to '
            f"annualise (fewer than {MIN_DAYS}); read these figures as noise</p>"
        )
    return out


def _mark(figures: dict, key: str) -> str:
    """The small-sample mark of Sharpe, Sortino and Calmar (docs/metrics.md)."""
    return " *" if figures.get("small_sample") and key in ANNUALISED else ""


def _run_order(name: str) -> tuple[int, str]:
    order = ("strategy", "walk_forward", "single_model", "buy_and_hold_qqq", "flat")
    return (order.index(name) if name in order else len(order), name)


def verdict_line(data: ReportData) -> str:
    if not data.verdict:
        return '<p class="note">no verdict: the source records no figures of its runs</p>'
    return f'<p class="verdict">{_e(data.verdict.get("text", ""))}</p>'


def blocks_table(data: ReportData) -> str:
    """One row per block (session): span, returns, fills, costs whole, turnover."""
    blocks = data.blocks
    columns = [c for c in blocks.columns if blocks[c].notna().any()]
    rows = []
    for record in blocks[columns].to_dict(orient="records"):
        rows.append(
            [_time(record[c]) if c in ("start", "end") else cell(record[c]) for c in columns]
        )
    names = [
        c.replace("_", " ") + (" (New York)" if c in ("start", "end") else "") for c in columns
    ]
    return f"<details><summary>{len(rows)} {data.unit}s</summary>{table(names, rows)}</details>"


def tail(data: ReportData) -> str:
    """Walk-forward folds, out-of-sample scores, regimes, the config and the hashes."""
    out = []
    if data.folds:
        out.append(f"<h2>Walk-forward folds</h2>{records_table(data.folds)}")
    if data.out_of_sample:
        rows = [
            [
                name.replace("_", " "),
                *(cell(s.get(k)) for k in ("samples", "auc", "auc_ci95", "log_loss")),
            ]
            for name, s in data.out_of_sample.items()
        ]
        out.append(
            "<h2>Out-of-sample scores</h2>"
            + table(["model", "labelled bars", "AUC", "AUC 95% CI", "log loss"], rows)
        )
    if data.regimes:
        out.append(f"<h2>By regime</h2>{regimes_table(data.regimes)}")
    text = _e(json.dumps(data.config, indent=2, sort_keys=True, default=str))
    out.append(
        f"<h2>Config</h2><details><summary>the run's config as recorded</summary>"
        f"<pre>{text}</pre></details>"
    )
    out.append(
        "<h2>Hashes</h2>" + table(["what", "sha256 / id"], [[k, v] for k, v in data.hashes.items()])
    )
    return "\n".join(out)


def regimes_table(report: dict) -> str:
    """``strattest --by-regime``: per regime, the strategy and buy-and-hold on the same bars."""
    rows = []
    for name, runs in (report.get("regimes") or {}).items():
        for who, f in runs.items():
            rows.append(
                [
                    name,
                    who.replace("_", " "),
                    *(
                        cell(f.get(k))
                        for k in (
                            "bars",
                            "sessions",
                            "total_return_pct",
                            "mean_session_return_pct",
                            "session_return_ci95_pct",
                            "sharpe",
                            "max_drawdown_pct",
                        )
                    ),
                ]
            )
    labeller = (report.get("labeller") or {}).get("labeller", "")
    columns = [
        "regime",
        "who",
        "bars",
        "sessions",
        "total return %",
        "mean / session %",
        "95% CI %",
        "Sharpe (sessions)",
        "max drawdown %",
    ]
    return f"<p>labeller: {_e(labeller)}</p>" + table(columns, rows)


FOLD_COLUMNS = (  # a walk-forward run's per-fold table, in reading order (docs/walkforward.md)
    "fold",
    "number",
    "train",
    "shadow",
    "trade",
    "seed",
    "validation_auc",
    "validation_log_loss",
    "promoted",
    "gate_reason",
    "gate_candidate_log_loss",
    "gate_incumbent_log_loss",
    "active",
    "oos auc",
    "oos auc_ci95",
    "oos samples",
    "return_pct",
    "single_return_pct",
    "buy_and_hold_return_pct",
)


def records_table(records: list[dict], columns: tuple[str, ...] = FOLD_COLUMNS) -> str:
    """The ``columns`` the records have, in that order (one level of nesting flattened:
    ``oos auc``), in a box that scrolls sideways when wide."""
    flat = []
    for record in records:
        row = {}
        for key, value in record.items():
            if isinstance(value, dict):
                row |= {f"{key} {k}": v for k, v in value.items() if not isinstance(v, dict)}
            else:
                row[key] = value
        flat.append(row)
    shown = [c for c in columns if any(c in row for row in flat)]
    rows = [[cell(row.get(c)) for c in shown] for row in flat]
    names = [c.replace("_", " ") for c in shown]
    return f'<div style="overflow-x: auto">{table(names, rows)}</div>'


def table(columns: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def cell(value) -> str:
    """A figure as strattest prints it.

    >>> cell(0.12345), cell([0.1, None]), cell(float("nan")), cell(7), cell(True)
    ('0.123', '0.100 .. n/a', 'n/a', '7', 'yes')
    """
    if isinstance(value, list | tuple):
        if len(value) == 2 and all(v is None or isinstance(v, int | float) for v in value):
            return f"{cell(value[0])} .. {cell(value[1])}"
        return ", ".join(cell(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:,.3f}"
    return "n/a" if value is None else str(value)


def _time(value) -> str:
    """An ISO time as New York minutes (a walk-forward session's date stays a date)."""
    text = str(value)
    if len(text) <= 10:
        return text
    try:
        return ny_minute(text)
    except (ValueError, TypeError):
        return text


def _e(value) -> str:
    return html.escape(str(value))


__all__ = ["EXTRA", "FIGURES", "render", "require_bokeh", "sections", "table"]
