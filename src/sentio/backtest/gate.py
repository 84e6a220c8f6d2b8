"""The promotion gate: a candidate model against the incumbent on sessions neither trained on.

Both models see the same bars (the newest ``shadow`` sessions after both models' validation
ends, with every earlier bar as their warm-up), through the sequence path. On the bars of
those sessions that have a window under both and a label (the incumbent's label rule:
horizon and dead zone) each gets:

- log loss and AUC (``train.evaluate``), the AUC with a 95 % interval from a bootstrap over
  whole sessions (overlapping labels within a session are not independent);
- the net return of trading it: strattest on one block spanning those sessions (the same
  strategy, allocation and costs).

The candidate is promoted when its log loss is not worse than the incumbent's by more than
``margin``; every number goes into the decision (and so into the registry's history and the
audit's swap event).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sentio.backtest.strattest import (
    SYMBOLS,
    StrattestConfig,
    account,
    decide_blocks,
    make_plan,
    prices_of,
)
from sentio.core.errors import SentioError
from sentio.features.inputs import clock_columns
from sentio.infer import SequenceContext
from sentio.model.artifact import load_verified
from sentio.train.evaluate import auc, log_loss, session_auc_interval
from sentio.train.samples import LabelSpec, label_bars, outside_deadzone


class GateError(SentioError):
    """The gate cannot compare the models as asked (too few shadow bars, unseen sessions)."""


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    sessions: tuple[int, int]  # first and last shadow session (NYSE session numbers)
    samples: int  # labelled bars both models were scored on
    margin: float
    candidate: dict  # log_loss, auc, auc_ci95, net_return_pct
    incumbent: dict

    def to_dict(self) -> dict:
        return asdict(self)


def shadow_gate(
    candidate: str | Path,
    incumbent: str | Path,
    tables: dict[str, pd.DataFrame],
    shadow: int,
    config: StrattestConfig,
    margin: float = 0.0,
    probabilities: dict[str, np.ndarray] | None = None,
) -> GateDecision:
    """Compare ``candidate`` with ``incumbent`` on the newest ``shadow`` sessions of
    ``tables`` (every instrument's bars on QQQ's times, as ``strattest.market_tables`` gives
    them) that lie after both models' validation ends. ``probabilities`` ("candidate",
    "incumbent": each model's sequence-path probability of every QQQ row, as
    ``SequenceContext.calculate_probability`` gives it) saves computing them again."""
    metas = {name: load_verified(path) for name, path in (("candidate", candidate),
                                                          ("incumbent", incumbent))}  # fmt: skip
    qqq = tables["QQQ"]
    ts = qqq["ts"].to_numpy(np.int64)
    seen = max(m["data"]["splits"]["validation"]["last_ts"] for m in metas.values())
    session = clock_columns(ts)[1].astype(np.int64)
    last_seen = session[ts <= seen].max(initial=-1)  # its session may hold unseen bars too
    unseen = np.unique(session[(session > last_seen) & (session >= 0)])
    if len(unseen) < shadow:
        raise GateError(
            f"{len(unseen)} whole sessions after both models' validation ends; the gate needs "
            f"{shadow}"
        )
    days = unseen[-shadow:]
    inside = np.isin(session, days)
    label = metas["incumbent"]["label"]
    spec = LabelSpec(horizon=int(label["horizon_bars"]), deadzone_bp=float(label["deadzone_bp"]))
    ret, ok = label_bars(
        qqq["close"].to_numpy(np.float64), qqq["segment"].to_numpy(), session, spec
    )
    p = probabilities or {
        "candidate": SequenceContext(candidate).calculate_probability(qqq),
        "incumbent": SequenceContext(incumbent).calculate_probability(qqq),
    }
    keep = inside & ok & outside_deadzone(ret, spec)
    keep &= ~np.isnan(p["candidate"]) & ~np.isnan(p["incumbent"])
    if keep.sum() < 2:
        raise GateError(f"{int(keep.sum())} labelled shadow bars; the gate needs more")
    y = (ret[keep] > 0).astype(np.float64)
    scores = {}
    for name, path in (("candidate", candidate), ("incumbent", incumbent)):
        plan = make_plan(
            config.model_copy(update={"blocks": 1, "block_size": int(inside.sum())}),
            Path(path),
            metas[name],
            qqq,
            prices_of(tables),
            dict.fromkeys(SYMBOLS, False),
            inside,
        )
        chosen = (p[name], metas[name]["thresholds"])
        used, exposure, reasons = decide_blocks(plan, lambda b, m=chosen: m)
        result = account(plan, used, exposure, reasons, {})
        scores[name] = {
            "log_loss": log_loss(y, p[name][keep]),
            "auc": auc(y, p[name][keep]),
            "auc_ci95": session_auc_interval(y, p[name][keep], session[keep], config.seed),
            "net_return_pct": float(result.per_block["return_pct"].iloc[0]),
        }
    c, i = scores["candidate"]["log_loss"], scores["incumbent"]["log_loss"]
    promote = bool(c <= i + margin)
    verb = "promoted" if promote else "kept the incumbent"
    reason = (
        f"{verb}: log loss {c:.5f} vs the incumbent's {i:.5f} (margin {margin:g}) on "
        f"{int(keep.sum())} labelled bars of {shadow} unseen sessions"
    )
    return GateDecision(
        promote, reason, (int(days[0]), int(days[-1])), int(keep.sum()), margin,
        scores["candidate"], scores["incumbent"],
    )  # fmt: skip


__all__ = ["GateDecision", "GateError", "shadow_gate"]
