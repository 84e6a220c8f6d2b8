"""An audited walk-forward run: one chain, the models' swaps as events (issue 14 section 2).

The run is recorded as strattest's are (run_start, then per traded session a block with its
bars, orders and fills, then run_end), with three differences:

- run_start says ``command: walk-forward``, names the first fold's model as the model (the
  stream re-run of ``saudit verify`` loads it, and checks the bars it decided) and carries the
  schedule, every seed and every gate decision;
- before the first block a new model trades, a ``swap`` event (the shape ``sentio live``
  writes: both manifest hashes, the new thresholds, the gate's numbers): the replay decides
  the later bars with those thresholds;
- each block's stream probabilities come from the model trading it, and its block_start
  remembers that model's probabilities (the adaptive rule's history).

The recorder verifies the run before it returns, as every audited run does (``record``).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from sentio.audit.record import CHUNK, cancel_on_error, launch, record, run_start_payload
from sentio.audit.store import AuditStore
from sentio.backtest.walkforward import WalkForwardResult, fold_name
from sentio.core.hashing import clean, sha256_file
from sentio.model.artifact import load_verified


def remembered(result: WalkForwardResult) -> list[tuple[list[float], list[int]]]:
    """Per block, the valid probabilities of its model before it (the adaptive rule's
    history, as ``decide_blocks`` gave it); empty for the rules that remember nothing."""
    strategy = result.plan.config.strategy
    if strategy.rule != "adaptive":
        return [([], [])] * result.plan.blocks_run
    ts = result.plan.qqq["ts"].to_numpy(np.int64)
    out = []
    for b, (start, _stop) in enumerate(result.plan.spans):
        p = result.probabilities[result.models[b]][:start]
        valid = ~np.isnan(p)
        keep = slice(-strategy.adaptive_window, None)
        out.append(([float(x) for x in p[valid][keep]], [int(t) for t in ts[:start][valid][keep]]))
    return out


def swaps(result: WalkForwardResult) -> dict[int, list]:
    """The swap event opening each block whose model differs from the block before's."""
    ts = result.plan.qqq["ts"].to_numpy(np.int64)
    fold_of = result.per_session["fold"].to_numpy()
    out = {}
    for b, (start, _stop) in enumerate(result.plan.spans):
        if b == 0 or result.models[b] == result.models[b - 1]:
            continue
        old, new = result.models[b - 1], result.models[b]
        record = result.folds[int(fold_of[b])]
        payload = {
            "from": str(old),
            "from_manifest": sha256_file(old / "manifest.json"),
            "version": fold_name(new),
            "to": str(new),
            "to_manifest": sha256_file(new / "manifest.json"),
            "ok": True,
            "thresholds": load_verified(new)["thresholds"],
            "gate": clean(record.gate),
            "fold": record.fold.number,
        }
        out[b] = [(int(ts[start]), "swap", payload)]
    return out


def audited_walkforward(
    result: WalkForwardResult, store: AuditStore, *, workers: int | None = None
) -> str:
    """Record ``result`` as one audit run and verify it; returns the run id."""
    plan = result.plan
    threads = workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=threads) as pool, cancel_on_error(pool):
        model, data, jobs = launch(pool, plan, CHUNK, models=result.models)
        streams = [
            np.concatenate([job.result() for block, job in jobs if block == b])
            for b in range(plan.blocks_run)
        ]
    start = run_start_payload(result.walk_forward, model, data)
    start["command"] = "walk-forward"
    start["walk_forward"] = clean(
        {
            "config": result.config.to_dict(),
            "schedule": [r.fold.to_dict() | {"seed": r.seed} for r in result.folds],
            "gates": [r.gate for r in result.folds],
            "models": [fold_name(m) for m in result.models],
        }
    )
    run_id = record(
        store,
        result.walk_forward,
        model,
        data,
        streams,
        start=start,
        remembered=remembered(result),
        before=swaps(result),
    )  # record() verifies the run before it returns
    return run_id


__all__ = ["audited_walkforward"]
