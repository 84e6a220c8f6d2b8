"""``sentio live`` (also ``sencli live``): trade bar by bar from a feed; ``sentio live status``.

The command holds no logic: ``sentio.cli.configfile`` resolves the flags and a --config file
(``--show-config`` prints the result), ``LiveConfig.from_settings`` checks them and
``sentio.live.loop.LiveLoop`` runs them; here are the status line and the printing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.live import Live
from rich.text import Text

from sentio.cli.configfile import config_option, resolve, show_option
from sentio.cli.output import console, json_text, new_york, print_json, table
from sentio.core.errors import OptionError
from sentio.live.config import DEFAULTS, SETTINGS, LiveConfig

app = typer.Typer(
    help="Trade the model bar by bar from a feed through a broker, audited and restartable "
    "(docs/live.md). `sentio live status --state DIR` shows a run's state.",
    invoke_without_command=True,
)


@app.callback()
def live_command(
    ctx: typer.Context,
    model: Path | None = typer.Option(
        None, "--model", help="Artifact directory (default: the newest under artifacts/TFA)."
    ),
    feed: str | None = typer.Option(
        None,
        "--feed",
        help="Where bars come from: replay:FILE\\[@SPEED] (canonical Parquet, or 'builtin' for "
        "the model's own market; SPEED x real time or max, the default), csv-tail:FILE (a CSV "
        "another program appends to), jsonl:- (JSON lines on stdin), alpaca (needs "
        "sentio\\[alpaca]).",
    ),
    broker: str = typer.Option(
        "paper",
        "--broker",
        help="paper (the backtest's execution model) or alpaca-paper (needs sentio\\[alpaca]).",
    ),
    audit: Path | None = typer.Option(
        None, "--audit", help="SQLite audit store to record the run into (kind live)."
    ),
    state: Path | None = typer.Option(
        None,
        "--state",
        help="Folder for the state written after every bar; a killed run started again with "
        "the same folder resumes.",
    ),
    config: Path | None = config_option(),
    show_config: bool = show_option(),
    history: Path | None = typer.Option(
        None,
        "--history",
        help="Canonical Parquet of QQQ bars before the feed's first (warms the model up; a "
        "replay uses the bars before its first).",
    ),
    max_gap: int = typer.Option(
        DEFAULTS["max_gap"],
        "--max-gap",
        help="Minutes: a longer missing stretch inside a session starts a new segment.",
    ),
    blocks: int | None = typer.Option(
        None,
        "--blocks",
        help="Replay only: trade the last N blocks strattest would trade, each with fresh "
        "capital (compare with `sentio strattest --blocks N`).",
    ),
    block_size: int = typer.Option(
        DEFAULTS["block_size"], "--block-size", help="Bars per block with --blocks."
    ),
    capital: float = typer.Option(
        DEFAULTS["capital"], "--capital", help="Starting cash, $100 to $1e12."
    ),
    fill: str = typer.Option(
        "next-open",
        "--fill",
        help="Paper broker: next-open (default) or close (optimistic).",
    ),
    rule: str = typer.Option(
        "fitted",
        "--rule",
        help="Signal rule: fitted, adaptive, bands or cost (enters only when the expected "
        "move pays the round trip; docs/strategy.md).",
    ),
    allocation: str = typer.Option(
        "blend", "--allocation", help="blend, leveraged_only or unleveraged_only."
    ),
    commission_per_share: float = typer.Option(
        DEFAULTS["commission_per_share"], "--commission-per-share", help="$/share, 0 to 1."
    ),
    commission_min: float = typer.Option(
        DEFAULTS["commission_min"], "--commission-min", help="$ per order, 0 to 1000."
    ),
    sec_fee_per_million: float = typer.Option(
        DEFAULTS["sec_fee_per_million"],
        "--sec-fee-per-million",
        help="SEC fee on sells, $ per $1M.",
    ),
    taf_per_share: float = typer.Option(
        DEFAULTS["taf_per_share"], "--taf-per-share", help="FINRA TAF, $/share."
    ),
    half_spread_bp: list[str] | None = typer.Option(
        None,
        "--half-spread-bp",
        help="SYMBOL=BP for each of QQQ, TQQQ, PSQ, SQQQ (default: half a cent at the median "
        "price of a replay; 0 for other feeds unless given).",
    ),
    max_gross_exposure: float = typer.Option(
        DEFAULTS["max_gross_exposure"],
        "--max-gross-exposure",
        help="Refuse orders that add risk beyond this sum of |weight x leverage| (3 = all TQQQ).",
    ),
    max_order_value: float | None = typer.Option(
        None, "--max-order-value", help="Refuse an order worth more than this many $ (off)."
    ),
    max_orders_per_minute: int = typer.Option(
        DEFAULTS["max_orders_per_minute"],
        "--max-orders-per-minute",
        help="Refuse orders beyond this many in one minute of bar time.",
    ),
    max_daily_loss: float | None = typer.Option(
        None,
        "--max-daily-loss",
        help="% of the session's first equity: once lost, flat and no new position until the "
        "next session (off).",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Decide and record every order, send none."
    ),
    flatten_on_exit: bool = typer.Option(
        True,
        "--flatten-on-exit/--no-flatten-on-exit",
        help="On a kill file, SIGTERM, Ctrl-C or the end of the feed: sell everything at the "
        "last close (default), or leave the positions.",
    ),
    kill_file: Path | None = typer.Option(
        None, "--kill-file", help="Stop cleanly when this file appears."
    ),
    expire_after: int | None = typer.Option(
        None,
        "--expire-after",
        help="Sessions: a model more than this many sessions past its newest data (its "
        "validation end) does not trade (flat, reason model_expired) (off).",
    ),
    bar_store: Path | None = typer.Option(
        None,
        "--bar-store",
        help="Folder: every accepted bar of each closed session, as a canonical Parquet file "
        "per session (for retraining).",
    ),
    registry: Path | None = typer.Option(
        None,
        "--registry",
        help="Serve the model registry's current version instead of --model, and swap to a "
        "newly promoted one at the next bar (sentio model publish / promote).",
    ),
    allow_model_change: bool = typer.Option(
        False,
        "--allow-model-change",
        help="Resume a saved state with another model or other settings.",
    ),
    adopt_broker_positions: bool = typer.Option(
        False,
        "--adopt-broker-positions",
        help="alpaca-paper: take the broker's positions when they differ from the state.",
    ),
    allow_in_sample: bool = typer.Option(
        False,
        "--allow-in-sample",
        help="Replay: also trade bars up to the model's validation end.",
    ),
    poll: float = typer.Option(
        DEFAULTS["poll"],
        "--poll",
        help="Seconds a feed waits for a bar before checking the kill file again.",
    ),
    seed: int = typer.Option(DEFAULTS["seed"], "--seed", help="Seed of the metrics' bootstrap."),
    json_out: bool = typer.Option(
        False, "--json", help="A JSON line per bar and one at the end, no status line."
    ),
) -> None:
    """Trade the model bar by bar: feed -> stream probability -> decide() -> allocate() ->
    orders -> risk limits -> broker, audited, state saved after every bar."""
    if ctx.invoked_subcommand is not None:
        return
    run = resolve(ctx, config, table=SETTINGS)
    with run.checking():  # a value the file gave: name the file and the setting
        live = LiveConfig.from_settings(run.settings, config_file=run.file)
    if show_config:
        run.show()
        return
    run_live(
        live,
        audit=audit,
        state=state,
        allow_model_change=allow_model_change,
        adopt=adopt_broker_positions,
        json_out=json_out,
    )


def run_live(config: LiveConfig, *, audit, state, allow_model_change, adopt, json_out) -> None:
    from sentio.audit.store import AuditError
    from sentio.live.loop import LiveLoop

    line = StatusLine(json_out)
    loop = None
    try:
        with line:
            loop = LiveLoop(
                config,
                state_dir=state,
                audit=audit,
                on_bar=line.update,
                allow_model_change=allow_model_change,
                adopt_broker_positions=adopt,
            )
            result = loop.run()
    except AuditError as exc:  # only the --audit database raises it: name the flag
        raise OptionError(str(exc), flag="--audit") from None
    finally:
        if loop is not None and loop.store is not None:
            loop.store.close()
    if json_out:
        print(json.dumps({"final": json.loads(json_text(result))}), flush=True)
        return
    show_result(result, audit)


class StatusLine:
    """One status line redrawn at most ten times a second in a terminal; with --json a JSON
    line per bar instead; otherwise (a pipe) nothing until the end."""

    def __init__(self, json_out: bool) -> None:
        self.json_out = json_out
        self.live = (
            None
            if json_out or not console.is_terminal
            else Live(
                Text("waiting for the first bar ..."),
                console=console,
                transient=True,
                auto_refresh=False,
            )
        )
        self.last = 0.0

    def __enter__(self):
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc):
        if self.live is not None:
            self.live.__exit__(*exc)

    def update(self, status: dict) -> None:
        if self.json_out:
            print(json.dumps(status), flush=True)
            return
        if self.live is None:
            return
        now = time.monotonic()
        if now - self.last < 0.1:
            return
        self.last = now
        held = " ".join(f"{s} {n}" for s, n in status["positions"].items() if n) or "flat"
        p = "n/a" if status["p"] is None else f"{status['p']:.4f}"
        self.live.update(
            Text(
                f"{new_york(status['ts'])}  p {p}  exposure {status['exposure']:+.2f}  {held}  "
                f"equity ${status['equity']:,.2f}  faults {status['faults']}  refused "
                f"{status['refused']}  lag {status['lag_s']:.1f}s"
            ),
            refresh=True,
        )


def show_result(result: dict, audit) -> None:
    m = result.get("metrics") or {}
    rows = [
        ["run", result["run_id"]],
        ["stopped because", result["stop_reason"]],
        ["bars decided", result["bars"]],
        ["blocks", result["blocks"]],
        ["equity $", f"{result['equity']:,.2f}"],
        ["positions", " ".join(f"{s} {n}" for s, n in result["positions"].items() if n) or "flat"],
        ["mean RPB %", _num(m.get("mean_rpb_pct"))],
        ["fees $", _num(m.get("fees"))],
    ]
    rows += [[name.replace("_", " "), n] for name, n in sorted(result["counts"].items())]
    console.print(table("sentio live", ["", "value"], rows))
    if audit is not None:
        console.print(f"audit: saudit verify --db {audit} --run {result['run_id']}")


def _num(x) -> str:
    return "n/a" if x is None else f"{x:,.3f}"


@app.command("status")
def status_command(
    state: Path = typer.Option(..., "--state", help="The folder a live run writes its state to."),
    json_out: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """Positions, P&L, last bar, model and feed lag of a live run's saved state (reads only)."""
    from sentio.live.state import StateStore

    if not (state / "state.json").is_file():
        raise OptionError(f"{state} holds no live state (state.json)", flag="--state")
    doc = StateStore.read(state)
    last = doc.get("last_ts")
    lag = None if last is None else round(time.time() - (last / 1e9 + 60), 1)
    start = doc.get("capital_start")
    equity = doc.get("equity")
    out = {
        "run_id": doc.get("run_id"),
        "model": doc.get("model"),
        "manifest_hash": doc.get("manifest_hash"),
        "feed": doc.get("feed"),
        "last_bar": None if last is None else new_york(last),
        "feed_lag_s": lag,
        "positions": dict(zip(("QQQ", "TQQQ", "PSQ", "SQQQ"), doc["book"]["shares"], strict=True)),
        "cash": doc["book"]["cash"],
        "equity": equity,
        "pnl": None if equity is None or start is None else equity - start,
        "counts": doc.get("counts", {}),
        # a run that did not end was stopped by a kill (or is still going): its state says
        # which, not whether a process runs
        "ended": bool(doc.get("ended")),
        "stop_reason": doc.get("stop_reason") or None,
    }
    if json_out:
        print_json(out)
        return
    rows = [[k.replace("_", " "), _cell(v)] for k, v in out.items() if k != "counts"]
    rows += [[k.replace("_", " "), v] for k, v in sorted(out["counts"].items())]
    console.print(table(f"live state {state}", ["", "value"], rows))


def _cell(v) -> str:
    if isinstance(v, dict):
        return " ".join(f"{k} {n}" for k, n in v.items() if n) or "flat"
    if isinstance(v, float):
        return f"{v:,.2f}"
    return "n/a" if v is None else str(v)
