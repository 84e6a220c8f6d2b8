"""``sentio strattest tfa`` (also ``sencli strattest tfa``): block backtests with costs."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from sentio.cli.output import console, print_json, table

FIGURES = [
    ("mean RPB %", "mean_rpb_pct"),
    ("RPB 95% CI %", "rpb_ci95_pct"),
    ("ARB %", "arb_pct"),
    ("MPR %", "mpr_pct"),
    ("Sharpe (daily)", "sharpe"),
    ("Sortino", "sortino"),
    ("max drawdown %", "max_drawdown_pct"),
    ("Calmar", "calmar"),
    ("trades", "trades"),
    ("win rate %", "win_rate_pct"),
    ("profit factor", "profit_factor"),
    ("avg holding (bars)", "avg_holding_bars"),
    ("exposure %", "exposure_pct"),
    ("turnover / block", "turnover"),
    ("fees $", "fees"),
]


def _fmt(value) -> str:
    if isinstance(value, tuple):
        return f"{value[0]:.3f} .. {value[1]:.3f}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def strattest_command(
    strategy: str = typer.Argument("tfa", help="Strategy to test (only tfa exists)."),
    mode: str = typer.Option(
        "historical",
        "--mode",
        help="historical: the model's out-of-sample bars; simulation: "
        "fresh seeded tracks of the built-in market.",
    ),
    tracks: int = typer.Option(3, "--tracks", min=1, help="Simulation: tracks per regime."),
    regime: list[str] = typer.Option(
        ["mixed"],
        "--regime",
        help="Simulation: bull, bear, sideways, volatile or mixed; repeatable.",
    ),
    blocks: int = typer.Option(5, "--blocks", min=1, help="Blocks to run (the last ones)."),
    block_size: int = typer.Option(480, "--block-size", min=2, help="Bars per block."),
    model: Path | None = typer.Option(
        None, "--model", help="Artifact directory (default: the newest under artifacts/TFA)."
    ),
    data: list[str] = typer.Option(
        ["builtin"],
        "--data",
        help="Canonical Parquet files: QQQ plus any of TQQQ/PSQ/SQQQ "
        "(missing ones are simulated from QQQ and labelled); 'builtin': the model's own "
        "built-in market. Repeatable.",
    ),
    fill: str = typer.Option(
        "next-open",
        "--fill",
        help="next-open (default) or close (optimistic: fills at the "
        "signal bar's close, and every report says so).",
    ),
    capital: float = typer.Option(100_000.0, "--capital", help="Fresh capital per block, $."),
    rule: str = typer.Option("fitted", "--rule", help="Signal rule: fitted, adaptive, bands."),
    commission_per_share: float = typer.Option(0.005, "--commission-per-share", help="$/share."),
    commission_min: float = typer.Option(1.0, "--commission-min", help="$ per order."),
    sec_fee_per_million: float = typer.Option(
        27.80,
        "--sec-fee-per-million",
        help="SEC Section 31 fee on sells, $ per $1M (see docs/backtest.md for the dates).",
    ),
    taf_per_share: float = typer.Option(0.000166, "--taf-per-share", help="FINRA TAF, $/share"),
    half_spread_bp: list[str] = typer.Option(
        [],
        "--half-spread-bp",
        help="SYMBOL=BP, repeatable (default: half a cent tick at each instrument's median price).",
    ),
    seed: int = typer.Option(7, "--seed", help="Seed of the bootstrap interval."),
    allow_in_sample: bool = typer.Option(
        False,
        "--allow-in-sample",
        help="Also use bars up to the model's validation end (every output then says IN-SAMPLE).",
    ),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Reuse cached probabilities."),
    json_out: bool = typer.Option(False, "--json", help="Print every number as JSON."),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Write per-block, per-bar and fill tables (Parquet) and summary.json here.",
    ),
    audit: Path | None = typer.Option(
        None,
        "--audit",
        help="Record the run into this audit database (SQLite; created if absent): config, "
        "hashes, both inference paths per bar, signals, orders, fills, block and run ends. "
        "Read it with `saudit`.",
    ),
) -> None:
    """Run the TFA strategy over the last N blocks with real costs; compare with buy-and-hold
    QQQ and with staying flat over the same blocks."""
    from rich.progress import Progress

    from sentio.backtest.costs import CostModel
    from sentio.backtest.strattest import StrattestConfig, run_strattest
    from sentio.strategy import StrategyConfig

    if strategy != "tfa":
        raise typer.BadParameter("only the tfa strategy exists")
    if mode not in ("historical", "simulation"):
        raise typer.BadParameter("--mode must be historical or simulation")
    spreads = None
    if half_spread_bp:
        spreads = {}
        for item in half_spread_bp:
            symbol, _, value = item.partition("=")
            spreads[symbol] = float(value)
        if set(spreads) != {"QQQ", "TQQQ", "PSQ", "SQQQ"}:
            raise typer.BadParameter("--half-spread-bp needs all of QQQ, TQQQ, PSQ, SQQQ")
    config = StrattestConfig(
        model=model,
        data=tuple(data),
        blocks=blocks,
        block_size=block_size,
        capital=capital,
        fill=fill,
        seed=seed,
        allow_in_sample=allow_in_sample,
        cache_dir=Path(".sentio-cache") if cache else None,
        strategy=StrategyConfig(rule=rule),
        costs=CostModel(
            commission_per_share=commission_per_share,
            commission_min=commission_min,
            sec_fee_per_million=sec_fee_per_million,
            taf_per_share=taf_per_share,
            half_spread_bp=spreads,
        ),
    )
    if mode == "simulation":
        if audit is not None:
            raise typer.BadParameter(
                "--audit records historical runs; simulation tracks are not audited"
            )
        _simulation(config, tracks, tuple(regime), json_out)
        return
    recorded = None
    with Progress(console=console, transient=True, disable=json_out) as bar:
        tasks = {"blocks": bar.add_task("blocks", total=None)}
        if audit is None:
            result = run_strattest(
                config,
                lambda done, total: bar.update(tasks["blocks"], completed=done, total=total),
            )
        else:
            from sentio.audit import AuditStore, audited_strattest
            from sentio.backtest.strattest import historical_plan

            tasks["audit"] = bar.add_task("audit", total=None)
            store = AuditStore(audit)
            result, run_id = audited_strattest(
                historical_plan(config),
                store,
                progress=lambda stage, done, total: bar.update(
                    tasks[stage], completed=done, total=total
                ),
            )
            recorded = {
                "db": str(audit),
                "run_id": run_id,
                "events": store.count(run_id),
                "head": store.head(run_id),
            }
    document = {
        "in_sample": result.in_sample,
        "fill": config.fill,
        "optimistic_fill": config.fill == "close",
        "model": str(result.model),
        "data": list(config.data),
        "data_range": list(result.data_range),
        "simulated": result.simulated,
        "blocks_asked": result.blocks_asked,
        "blocks_run": result.blocks_run,
        "config": json.loads(config.model_dump_json()),
        "summary": {k: v.to_dict() for k, v in result.summary.items()},
        "blocks": result.per_block.to_dict(orient="records"),
        "audit": recorded,
    }
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        result.per_block.to_parquet(out / "blocks.parquet")
        result.per_bar.to_parquet(out / "bars.parquet")
        result.fills.to_parquet(out / "fills.parquet")
        (out / "summary.json").write_text(json.dumps(document, indent=2, default=str) + "\n")
    if json_out:
        print_json(document)
        return
    banner = "IN-SAMPLE: these bars include the model's training or validation period. "
    if result.in_sample:
        console.print(banner * 1, style="bold red")
    simulated = [s for s, flag in result.simulated.items() if flag]
    console.print(
        f"model {result.model}; data {', '.join(config.data)} {result.data_range[0]} .. "
        f"{result.data_range[1]}; fill {config.fill}"
        + (" (OPTIMISTIC: at the signal bar's close)" if config.fill == "close" else "")
        + f"; costs {config.costs.model_dump()}; simulated: {', '.join(simulated) or 'none'}"
    )
    if result.blocks_run < result.blocks_asked:
        console.print(
            f"only {result.blocks_run} of {result.blocks_asked} blocks fit after the "
            "model's validation end; ran those",
            style="yellow",
        )
    rows = [
        [label] + [_fmt(getattr(result.summary[k], key)) for k in result.summary]
        for label, key in FIGURES
    ]
    console.print(
        table(
            f"strattest {strategy}: {result.blocks_run} blocks of {config.block_size} bars",
            ["figure", *result.summary],
            rows,
            left=1,
        )
    )
    block_rows = result.per_block.assign(
        return_pct=result.per_block["return_pct"].round(3),
        fees=result.per_block["fees"].round(2),
        buy_and_hold_return_pct=result.per_block["buy_and_hold_return_pct"].round(3),
    ).values.tolist()
    console.print(table("blocks", list(result.per_block.columns), block_rows, left=3))
    if recorded is not None:
        console.print(
            f"audit: run {recorded['run_id']}, {recorded['events']} events, chain head "
            f"{recorded['head']} in {audit} (check it: saudit verify --db {audit} "
            f"--run {recorded['run_id']})",
            soft_wrap=True,
        )
    if result.in_sample:
        console.print(banner, style="bold red")


def _simulation(config, tracks: int, regimes: tuple[str, ...], json_out: bool) -> None:
    from sentio.backtest.strattest import REGIMES, regime_summary, run_simulation

    unknown = set(regimes) - set(REGIMES)
    if unknown:
        raise typer.BadParameter(f"--regime must be among {REGIMES}, got {sorted(unknown)}")
    with console.status(f"{tracks} fresh track(s) x {len(regimes)} regime(s)"):
        results = run_simulation(config, tracks, regimes)
    document = {
        "mode": "simulation",
        "fill": config.fill,
        "optimistic_fill": config.fill == "close",
        "simulated": True,
        "regimes": {r: regime_summary(results[r], config) for r in regimes},
        "config": json.loads(config.model_dump_json()),
    }
    if json_out:
        print_json(document)
        return
    console.print(
        f"simulation on fresh built-in tracks (every instrument simulated); fill "
        f"{config.fill}; costs {config.costs.model_dump()}"
    )
    rows = []
    for r, s in document["regimes"].items():
        for who in ("strategy", "buy_and_hold_qqq"):
            rows.append(
                [
                    r,
                    who,
                    s[who]["blocks"],
                    _fmt(s[who]["mean_rpb_pct"]),
                    _fmt(tuple(s[who]["rpb_ci95_pct"])),
                    _fmt(s[who]["arb_pct"]),
                ]
            )
    console.print(
        table(
            "strattest tfa --mode simulation",
            ["regime", "who", "blocks", "mean RPB %", "95% CI %", "ARB %"],
            rows,
            left=2,
        )
    )
