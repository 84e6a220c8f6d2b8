"""``sentio strattest tfa --mode walk-forward``: the run and its report (no logic here:
``sentio.backtest.walkforward`` builds the config from the flags and runs it)."""

from __future__ import annotations

from pathlib import Path

from sentio.backtest.metrics import COST_FIGURES
from sentio.cli.output import (
    console,
    figure,
    figure_rows,
    print_json,
    small_sample_note,
    table,
)
from sentio.cli.recording import wrote
from sentio.core.errors import OptionError
from sentio.core.files import check_output

OPTIMISTIC = "OPTIMISTIC: --fill close fills at the signal bar's close (docs/backtest.md)."
FIGURES = [
    ("mean RPB %", "mean_rpb_pct"),
    ("RPB 95% CI %", "rpb_ci95_pct"),
    ("ARB %", "arb_pct"),
    ("trading days", "days"),
    ("Sharpe (daily)", "sharpe"),
    ("max drawdown %", "max_drawdown_pct"),
    ("trades", "trades"),
    ("exposure %", "exposure_pct"),
    ("turnover / block", "turnover"),
    *COST_FIGURES,
]


def walk_forward(strattest, flags: dict, out: Path, audit: Path | None, backend: str,
                 address: str | None, json_out: bool, record=None) -> None:  # fmt: skip
    """Check, run, print (or print the JSON document) and, with ``audit``, record; with
    ``record`` (strattest's --report and --track) draw the run folder and log it."""
    from rich.progress import Progress

    from sentio.backtest.walkforward import WalkForwardConfig, report_document, run_walkforward

    given = {k: v for k, v in flags.items() if v is not None}
    given.setdefault("cpu_capability", "auto")  # as `sentio train`: AVX2 and AVX-512 alike
    config = WalkForwardConfig.from_flags(strattest=strattest, **given)
    inputs = [Path(d) for d in strattest.data if d != "builtin"]
    check_output(out, *inputs, flag="--out", directory=True)
    if out.exists() and any(out.iterdir()):
        raise OptionError(f"{out} exists and is not empty; choose a new folder", flag="--out")
    if audit is not None:
        check_output(audit, *inputs, out, flag="--audit")
        if Path(audit).exists():  # an existing database is checked now, a new one made after
            _open_store(audit).close()
    if record is not None:
        record.check()  # the tracking store, once the run's own outputs are known to be fine
    with Progress(console=console, transient=True, disable=json_out) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(f"{stage} folds", total=total)
            bar.update(tasks[stage], completed=done, total=total)

        result = run_walkforward(config, out, backend=backend, address=address, progress=progress)
        recorded = None
        if audit is not None:
            from sentio.audit import audited_walkforward

            store = _open_store(audit)
            run_id = audited_walkforward(result, store)
            recorded = {"db": str(audit), "run_id": run_id, "events": store.count(run_id),
                        "head": store.head(run_id)}  # fmt: skip
            store.close()
    document = report_document(result) | {"out": str(out), "audit": recorded}
    if record is not None and record.report is not None:
        from sentio.report import report_run

        report_run(out, record.report)
    if record is not None and record.uri is not None:
        from sentio.runs.tracking import log_backtest

        files = record.files(out / "walkforward.json")
        mlflow_run = log_backtest(
            record.uri, document, kind="walk-forward", settings=record.settings, files=files
        )
        document["tracked"] = {"uri": record.uri, "run_id": mlflow_run}
    if json_out:
        print_json(document)
        return
    report(result, document, out)
    if record is not None and record.report is not None:
        wrote(f"report: {record.report}", json_out)
    if record is not None and record.uri is not None:
        wrote(f"tracked: MLflow run {document['tracked']['run_id']} at {record.uri}", json_out)


def _open_store(audit: Path):
    from sentio.audit import AuditError, AuditStore

    try:
        return AuditStore(audit)
    except AuditError as exc:
        raise OptionError(str(exc), flag="--audit") from None


def report(result, document: dict, out: Path) -> None:
    """The human-readable report: schedule, per-fold table, the runs side by side."""
    config = result.config
    policy = config.policy
    simulated = [s for s, flag in result.walk_forward.simulated.items() if flag]
    if config.strattest.fill == "close":
        console.print(OPTIMISTIC, style="bold red")
    console.print(
        f"walk-forward on {', '.join(config.strattest.data)}: train on {policy.train_window} "
        f"sessions, gate on the next {policy.shadow_sessions} (margin {policy.gate_margin:g}), "
        f"trade the next {policy.retrain_every}; {len(result.folds)} folds, "
        f"{'warm' if policy.warm_start else 'cold'} start; seed {config.train.seed}; "
        f"costs: {config.strattest.costs.describe()}; simulated: {', '.join(simulated) or 'none'}",
        soft_wrap=True,
    )
    rows = []
    for f in result.per_fold:
        oos = f["oos"]
        rows.append(
            [
                f["fold"],
                f"{f['train'][0]} .. {f['train'][1]}",
                f"{f['trade'][0]} .. {f['trade'][1]}",
                figure(f["validation_auc"]),
                figure(f["validation_log_loss"]),
                "promoted" if f["promoted"] else "kept",
                f["active"].split("/")[1],
                figure(oos["auc"]),
                figure(f["return_pct"]),
                figure(f["single_return_pct"]),
                figure(f["buy_and_hold_return_pct"]),
            ]
        )
    columns = ["fold", "train (NY dates)", "trade", "val AUC", "val log loss", "gate",
               "model", "OOS AUC", "return %", "single %", "buy&hold %"]  # fmt: skip
    console.print(table("folds", columns, rows, left=3))
    columns = {k: v | document["costs"][k] for k, v in document["summary"].items()}
    title = f"{document['sessions']} traded sessions, one block each"
    console.print(table(title, ["figure", *columns], figure_rows(FIGURES, columns), left=1))
    note = small_sample_note(columns["walk_forward"])
    if note is not None:
        console.print(note, style="yellow", soft_wrap=True)
    for name, s in result.scores.items():
        console.print(
            f"out-of-sample AUC, {name.replace('_', '-')}: {figure(s['auc'])} (95% CI "
            f"{figure(s['auc_ci95'])}, session bootstrap) on {s['samples']} labelled bars"
        )
    console.print(document["verdict"]["text"], soft_wrap=True)
    console.print(f"wrote {out / 'walkforward.json'}, {out / 'sessions.csv'} and the folds' "
                  f"artifacts under {out / 'folds'}", soft_wrap=True)  # fmt: skip
    if document.get("audit"):
        a = document["audit"]
        console.print(
            f"audit: run {a['run_id']}, {a['events']} events in {a['db']} (check it: saudit "
            f"verify --db {a['db']} --run {a['run_id']})",
            soft_wrap=True,
        )


__all__ = ["report", "walk_forward"]
