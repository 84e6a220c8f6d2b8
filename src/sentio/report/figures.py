"""The report's interactive plots (Bokeh), each drawn from :class:`ReportData` only.

:func:`plots` returns the plots in page order as :class:`Plot` records (a name, the section
it belongs to, the Bokeh figure and a caption). Every per-bar plot uses one x axis, the traded
bar's number (0, 1, ... over the blocks in order; the hover shows its New York time), and the
plots over the run share its range: zooming the price to a single bar zooms the probability,
equity, drawdown and exposure with it. Long line series are drawn with WebGL.

Bokeh is imported inside the functions: ``sentio`` imports without the ``report`` extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sentio.core.clock import NEW_YORK
from sentio.report.data import SYMBOLS, ReportData, drawdown_pct, entries_exits, stitched
from sentio.train.evaluate import auc, calibration

COLORS = {
    "strategy": "#1f77b4",
    "buy_and_hold_qqq": "#ff7f0e",
    "flat": "#7f7f7f",
    "single_model": "#2ca02c",
    "QQQ": "#1f77b4",
    "TQQQ": "#2ca02c",
    "PSQ": "#d62728",
    "SQQQ": "#9467bd",
    "commissions": "#1f77b4",
    "regulatory_fees": "#ff7f0e",
    "spread": "#d62728",
}
HEIGHT = 260
TOOLS = "xpan,xwheel_zoom,box_zoom,reset,save"


@dataclass
class Plot:
    name: str  # the Bokeh root's name (the page places it by name)
    section: str  # the heading it is drawn under
    figure: Any  # a bokeh.plotting.figure
    caption: str  # what it shows, in words


def plots(data: ReportData) -> list[Plot]:
    """Every plot the data allows, in page order (module doc)."""
    if data.bars is None:
        out = session_plots(data)
    else:
        x = np.arange(len(data.bars))
        shared = _range(len(x))
        out = bar_plots(data, x, shared)
        out += [returns_plot(data)]
        out += signal_plots(data, x, shared)
        out += score_plots(data)
        out += cost_plots(data)
    for plot in out:
        _legend_outside(plot.figure)
    return out


def bar_plots(data: ReportData, x: np.ndarray, shared) -> list[Plot]:
    """Equity (stitched and per block), drawdown and exposure by instrument."""
    from bokeh.models import ColumnDataSource, HoverTool

    bars = data.bars
    block = bars["block"].to_numpy()
    times = _times(bars["ts"])
    equity = data.stitched_equity()
    source = ColumnDataSource({"bar": x, "time": times, "equity": equity}, name="equity")
    fig = _figure("equity, blocks chained ($)", shared, y_label="$")
    fig.line(
        "bar",
        "equity",
        source=source,
        legend_label="strategy",
        color=COLORS["strategy"],
        line_width=1.5,
    )
    fig.add_tools(
        HoverTool(
            tooltips=[("time", "@time"), ("equity", "@equity{0,0.00}")],
            mode="vline",
            renderers=[fig.renderers[-1]],
        )
    )
    holding = baseline_equity(data)
    if holding is not None:
        hx, hy = holding
        fig.line(hx, hy, legend_label="buy-and-hold QQQ", color=COLORS["buy_and_hold_qqq"])
        if len(hx) < len(x):  # block ends only: mark them
            fig.scatter(hx, hy, color=COLORS["buy_and_hold_qqq"], size=6)
    fig.line(
        x,
        np.full(len(x), data.capital),
        legend_label="flat",
        color=COLORS["flat"],
        line_dash="dashed",
    )
    _blocks(fig, block)
    out = [Plot("equity", "Equity", fig, _equity_caption(data, holding))]

    per = _figure(
        "equity per block (% of the block's capital)", y_label="%", x_label="bar of block"
    )
    for b in np.unique(block):
        rows = np.flatnonzero(block == b)
        per.line(
            np.arange(len(rows)),
            100 * (bars["equity"].to_numpy()[rows] / data.capital - 1),
            color=COLORS["strategy"],
            alpha=0.6,
        )
        hold = bars["equity_buy_and_hold"].to_numpy()[rows]
        if not np.isnan(hold).all():
            per.line(
                np.arange(len(rows)),
                100 * (hold / data.capital - 1),
                color=COLORS["buy_and_hold_qqq"],
                alpha=0.5,
                line_dash="dashed",
            )
    out.append(
        Plot(
            "equity_blocks",
            "Equity",
            per,
            "each block from its fresh capital: the "
            "strategy (solid) and buy-and-hold QQQ (dashed, where replayed)",
        )
    )

    down = _figure("drawdown (% below the running peak)", shared, y_label="%")
    down.line(
        x, drawdown_pct(equity, data.capital), legend_label="strategy", color=COLORS["strategy"]
    )
    if holding is not None:
        down.line(
            holding[0],
            drawdown_pct(holding[1], data.capital),
            legend_label="buy-and-hold QQQ",
            color=COLORS["buy_and_hold_qqq"],
        )
    _blocks(down, block)
    out.append(
        Plot(
            "drawdown",
            "Equity",
            down,
            "the chained equity's fall from its running "
            "peak; its lowest point is the max drawdown of the figures table",
        )
    )

    shares = {s: 100 * bars[f"value_{s}"].to_numpy() / bars["equity"].to_numpy() for s in SYMBOLS}
    held = ColumnDataSource({"bar": x, **shares})
    exposure = _figure("exposure by instrument (% of equity held)", shared, y_label="%")
    exposure.varea_stack(
        list(SYMBOLS),
        x="bar",
        source=held,
        legend_label=list(SYMBOLS),
        color=[COLORS[s] for s in SYMBOLS],
        alpha=0.8,
    )
    _blocks(exposure, block)
    out.append(
        Plot(
            "exposure",
            "Equity",
            exposure,
            "the value held in each instrument at the "
            "bar's close over the equity (PSQ and SQQQ are inverse funds, held long)",
        )
    )
    return out


def baseline_equity(data: ReportData) -> tuple[np.ndarray, np.ndarray] | None:
    """Buy-and-hold QQQ chained like the strategy: per bar when the source has it, else at
    the block ends from its recorded block returns; None without either."""
    bars = data.bars
    hold = bars["equity_buy_and_hold"].to_numpy()
    block = bars["block"].to_numpy()
    if not np.isnan(hold).any():
        return np.arange(len(bars)), stitched(hold, block, data.capital)
    returns = data.blocks["buy_and_hold_return_pct"].to_numpy(np.float64)
    if np.isnan(returns).any():
        return None
    ends = np.r_[np.flatnonzero(np.diff(block) != 0), len(block) - 1]
    return ends, data.capital * np.cumprod(1 + returns / 100)


def returns_plot(data: ReportData) -> Plot:
    """Per-block (per-session) returns, the mean with its bootstrap interval, and the
    verdict."""
    from bokeh.models import BoxAnnotation, Span

    blocks = data.blocks
    x = blocks["block"].to_numpy()
    fig = _figure(
        f"return per {data.unit}, net of costs (%)",
        y_label="%",
        x_label=data.unit,
        tools="box_zoom,reset,save",
    )
    fig.vbar(
        x=x,
        top=blocks["return_pct"].to_numpy(float),
        width=0.8,
        color=COLORS["strategy"],
        legend_label="strategy",
    )
    fig.scatter(
        x,
        blocks["buy_and_hold_return_pct"].to_numpy(float),
        marker="diamond",
        size=8,
        color=COLORS["buy_and_hold_qqq"],
        legend_label="buy-and-hold QQQ",
    )
    if "single_return_pct" in blocks:
        fig.scatter(
            x,
            blocks["single_return_pct"].to_numpy(float),
            marker="circle",
            size=6,
            color=COLORS["single_model"],
            legend_label="single model",
        )
    caption = "each bar one " + data.unit
    judged = data.verdict
    if judged and all(np.isfinite(v) for v in _numbers(judged["mean_pct"], *judged["ci95_pct"])):
        low, high = judged["ci95_pct"]
        fig.add_layout(
            BoxAnnotation(bottom=low, top=high, fill_color=COLORS["strategy"], fill_alpha=0.12)
        )
        fig.add_layout(
            Span(
                location=judged["mean_pct"],
                dimension="width",
                line_color=COLORS["strategy"],
                line_dash="dashed",
            )
        )
        caption += (
            f"; dashed: the strategy's mean per {data.unit}, shaded: its 95 % "
            "bootstrap interval (docs/metrics.md)"
        )
    fig.add_layout(Span(location=0, dimension="width", line_color="black", line_width=1))
    return Plot("returns", "Returns and verdict", fig, caption)


def signal_plots(data: ReportData, x: np.ndarray, shared) -> list[Plot]:
    """QQQ's price with the entries and exits, and the probability with the thresholds."""
    from bokeh.models import ColumnDataSource, HoverTool

    bars = data.bars
    block = bars["block"].to_numpy()
    times = _times(bars["ts"])
    close = bars["close_QQQ"].to_numpy()
    exposure = bars["exposure"].to_numpy()
    price = _figure("QQQ close, entries and exits", shared, y_label="$")
    source = ColumnDataSource({"bar": x, "time": times, "close": close, "exposure": exposure})
    price.line("bar", "close", source=source, color="black", legend_label="QQQ close")
    price.add_tools(
        HoverTool(
            tooltips=[("time", "@time"), ("close", "@close{0.00}"), ("exposure", "@exposure")],
            mode="vline",
            renderers=[price.renderers[-1]],
        )
    )
    entries, exits = entries_exits(exposure, block)
    longs, shorts = entries[exposure[entries] > 0], entries[exposure[entries] < 0]
    for rows, marker, color, label in (
        (longs, "triangle", "#2ca02c", "enter long"),
        (shorts, "inverted_triangle", "#d62728", "enter short"),
        (exits, "x", "black", "exit to flat"),
    ):
        if len(rows):
            price.scatter(rows, close[rows], marker=marker, color=color, size=9, legend_label=label)
    _blocks(price, block)
    prob = _figure("probability p(seq) and the rule's thresholds", shared, y_label="p")
    prob.line(x, bars["probability"].to_numpy(), color=COLORS["strategy"], legend_label="p(seq)")
    dashes = ["dashed", "dotted", "dotdash", "dashdot"]
    for i, (name, level) in enumerate(data.thresholds.items()):
        prob.line(
            [0, len(x) - 1],
            [level, level],
            color="black",
            legend_label=name,
            line_dash=dashes[i % len(dashes)],
        )
    _blocks(prob, block)
    caption = (
        "decided at the bar's close (a fill follows at the next open with --fill "
        "next-open); zoom in to a single bar: the two plots share the x axis"
    )
    return [
        Plot("price", "Price and signal", price, caption),
        Plot(
            "probability",
            "Price and signal",
            prob,
            "the probability the strategy traded on; horizontal lines: the rule's "
            "thresholds (none for the adaptive and cost rules, whose levels move)",
        ),
    ]


def score_plots(data: ReportData) -> list[Plot]:
    """Histogram of the probabilities of the scored bars, the calibration (reliability)
    plot where the bars have labels, and the parity of the two inference paths."""
    bars = data.bars
    p = bars["probability"].to_numpy()
    scored = ~np.isnan(p)
    out = []
    if scored.any():
        counts, edges = np.histogram(p[scored], bins=40)
        fig = _figure(
            f"probability histogram ({int(scored.sum()):,} scored bars)",
            y_label="bars",
            x_label="p(seq)",
            tools="box_zoom,reset,save",
        )
        fig.quad(
            top=counts,
            bottom=0,
            left=edges[:-1],
            right=edges[1:],
            color=COLORS["strategy"],
            alpha=0.7,
        )
        out.append(Plot("histogram", "Scores", fig, "the probabilities of the traded bars"))
    y = bars["label"].to_numpy()
    known = scored & ~np.isnan(y)
    if known.any():
        out.append(calibration_plot(y[known], p[known]))
    if data.parity is not None and not np.isnan(bars["p_stream"].to_numpy()).all():
        out.append(parity_plot(data))
    return out


def calibration_plot(y: np.ndarray, p: np.ndarray) -> Plot:
    """Observed up-rate against the mean probability per decile (``train.evaluate``)."""
    table = [row for row in calibration(y, p) if row["count"]]
    score = auc(y, p)
    fig = _figure(
        f"calibration on {len(y):,} labelled bars (AUC {_fmt(score)})",
        y_label="observed share up",
        x_label="mean p(seq) in the bin",
        tools="box_zoom,reset,save",
    )
    fig.line([0, 1], [0, 1], color=COLORS["flat"], line_dash="dashed", legend_label="calibrated")
    sizes = [6 + 14 * np.sqrt(row["count"] / len(y)) for row in table]
    fig.scatter(
        [row["mean_predicted"] for row in table],
        [row["observed_rate"] for row in table],
        size=sizes,
        color=COLORS["strategy"],
        legend_label="deciles of p",
    )
    caption = (
        "per decile of the probability: the share of bars whose QQQ forward return at "
        "the model's horizon was up (the training label; bars in the dead zone or whose "
        "horizon leaves the session are left out); marker area ~ bars in the bin"
    )
    return Plot("calibration", "Scores", fig, caption)


def parity_plot(data: ReportData) -> Plot:
    """p(seq) against p(stream) per audited bar, with the recorded tally."""
    bars, tally = data.bars, data.parity
    fig = _figure(
        "parity: p(seq) vs p(stream)",
        y_label="p(stream)",
        x_label="p(seq)",
        tools="box_zoom,reset,save",
    )
    both = ~np.isnan(bars["probability"]) & ~np.isnan(bars["p_stream"])
    fig.scatter(
        bars["probability"][both],
        bars["p_stream"][both],
        size=4,
        alpha=0.5,
        color=COLORS["strategy"],
    )
    fig.line([0, 1], [0, 1], color=COLORS["flat"], line_dash="dashed")
    same = int(tally.get("bars", 0)) - int(tally.get("bars_differ", 0))
    caption = (
        f"{same:,} of {int(tally.get('bars', 0)):,} bars identical on both paths "
        f"(bit for bit, or without a probability on both); largest difference "
        f"{_fmt(tally.get('max_abs_diff'), '.3g')}; decisions flipped "
        f"{tally.get('decisions_flipped')} (the run_end tally)"
    )
    return Plot("parity", "Scores", fig, caption)


def cost_plots(data: ReportData) -> list[Plot]:
    """Costs per block split into commissions, regulatory fees and spread; turnover."""
    from bokeh.models import ColumnDataSource

    blocks = data.blocks
    x = blocks["block"].to_numpy()
    parts = [p for p in ("commissions", "regulatory_fees", "spread") if blocks[p].notna().all()]
    fig = _figure(f"costs per {data.unit} ($)", y_label="$", x_label=data.unit)
    if parts:
        source = ColumnDataSource({"x": x, **{p: blocks[p].to_numpy(float) for p in parts}})
        fig.vbar_stack(
            parts,
            x="x",
            source=source,
            width=0.8,
            color=[COLORS[p] for p in parts],
            legend_label=[p.replace("_", " ") for p in parts],
        )
    else:  # a walk-forward session records its costs whole
        fig.vbar(x=x, top=blocks["costs"].to_numpy(float), width=0.8, legend_label="costs")
    turnover = _figure(f"turnover per {data.unit} (traded notional / capital)", x_label=data.unit)
    turnover.vbar(x=x, top=blocks["turnover"].to_numpy(float), width=0.8, color="#8c564b")
    return [
        Plot(
            "costs",
            "Costs",
            fig,
            "commissions and regulatory fees are charged in cash, the "
            "spread is paid in the fill prices (docs/metrics.md)",
        ),
        Plot("turnover", "Costs", turnover, "buys and sells at the fill prices over the capital"),
    ]


def session_plots(data: ReportData) -> list[Plot]:
    """A walk-forward run folder: per session only (it records no bars)."""
    from bokeh.models import ColumnDataSource

    blocks = data.blocks
    x = blocks["block"].to_numpy()
    fig = _figure(
        "equity at the session ends, sessions chained ($)", y_label="$", x_label="session"
    )
    runs = {
        "walk-forward": ("return_pct", COLORS["strategy"]),
        "single model": ("single_return_pct", COLORS["single_model"]),
        "buy-and-hold QQQ": ("buy_and_hold_return_pct", COLORS["buy_and_hold_qqq"]),
    }
    equity = {}
    for label, (column, color) in runs.items():
        equity[label] = data.capital * np.cumprod(1 + blocks[column].to_numpy(float) / 100)
        if label == "walk-forward":
            source = ColumnDataSource({"session": x, "equity": equity[label]}, name="equity")
            fig.line(
                "session", "equity", source=source, color=color, legend_label=label, line_width=1.5
            )
        else:
            fig.line(x, equity[label], color=color, legend_label=label)
    fig.line(
        x,
        np.full(len(x), data.capital),
        color=COLORS["flat"],
        line_dash="dashed",
        legend_label="flat",
    )
    down = _figure("drawdown at the session ends (%)", fig.x_range, y_label="%", x_label="session")
    for label, (_, color) in runs.items():
        down.line(x, drawdown_pct(equity[label], data.capital), color=color, legend_label=label)
    return [
        Plot("equity", "Equity", fig, "the sessions' returns compounded (sessions.csv)"),
        Plot("drawdown", "Equity", down, "the chained equity's fall from its running peak"),
        returns_plot(data),
        *cost_plots(data),
    ]


def _figure(
    title: str, x_range=None, *, y_label: str = "", x_label: str = "traded bar", tools: str = TOOLS
):
    from bokeh.models import BasicTicker, NumeralTickFormatter
    from bokeh.plotting import figure

    kwargs = {"x_range": x_range} if x_range is not None else {}
    fig = figure(
        title=title,
        height=HEIGHT,
        sizing_mode="stretch_width",
        tools=tools,
        output_backend="webgl",
        **kwargs,
    )
    fig.xaxis.axis_label, fig.yaxis.axis_label = x_label, y_label
    fig.xaxis.ticker = BasicTicker(min_interval=1)  # bars, blocks and sessions are counted
    if y_label == "$":
        fig.yaxis.formatter = NumeralTickFormatter(format="0,0")
    fig.toolbar.logo = None
    return fig


def _legend_outside(fig) -> None:
    """The legend right of the plot (never over the data); a click hides a series."""
    if fig.legend:
        legend = fig.legend[0]
        legend.click_policy = "hide"
        fig.add_layout(legend, "right")


def _range(n: int):
    from bokeh.models import Range1d

    return Range1d(-0.5, n - 0.5, bounds=(-0.5, n - 0.5))


def _blocks(fig, block: np.ndarray) -> None:
    """A thin vertical line where each block after the first starts."""
    from bokeh.models import Span

    for start in np.flatnonzero(np.diff(block) != 0) + 1:
        fig.add_layout(
            Span(location=start - 0.5, dimension="height", line_color="#cccccc", line_width=1)
        )


def _times(ts: pd.Series) -> list[str]:
    stamps = pd.to_datetime(ts.to_numpy(np.int64), utc=True).tz_convert(NEW_YORK)
    return list(stamps.strftime("%Y-%m-%d %H:%M New York"))


def _equity_caption(data: ReportData, holding) -> str:
    text = (
        f"the strategy's equity with every block started from the previous block's end "
        f"(each block really starts flat with ${data.capital:,.0f}); final "
        f"${data.final_equity():,.2f}"
    )
    if holding is not None and len(holding[0]) < len(data.bars):
        text += "; buy-and-hold QQQ at the block ends only (its bars were not replayed)"
    return text


def _numbers(*values) -> list[float]:
    return [float("nan") if v is None else float(v) for v in values]


def _fmt(value, spec: str = ".3f") -> str:
    return "n/a" if value is None or not np.isfinite(value) else format(value, spec)


__all__ = ["Plot", "baseline_equity", "plots"]
