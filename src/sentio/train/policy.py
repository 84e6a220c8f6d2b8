"""The retraining policy and the schedule of folds it implies (issue 14, first piece).

One :class:`RetrainPolicy` describes how a model is kept current: train on the last
``train_window`` sessions, retrain every ``retrain_every`` sessions, warm-start from the
incumbent or start from scratch, for how many epochs, how much better a candidate must be to
replace the incumbent (the gate), and when a model is too old to trade. The walk-forward
backtest, the live retrainer and ``sentio train --enable-realtime`` are to share it, so the
policy a backtest measures is the policy that trades.

:func:`fold_schedule` turns a policy and the sessions of a series into folds. Each fold trains
on ``train_window`` sessions, then leaves ``shadow_sessions`` sessions out of training for the
gate (the newest sessions neither the candidate nor the incumbent saw), then trades the next
``retrain_every`` sessions: the training side never reaches into the shadow or traded sessions
(the training's own embargo of ``horizon + seq_len`` bars between its parts is the pipeline's
business, inside the training window).

>>> policy = RetrainPolicy(train_window=3, retrain_every=2, shadow_sessions=1)
>>> [(f.train, f.shadow, f.trade) for f in fold_schedule(list(range(10, 19)), policy)]
[((10, 12), (13, 13), (14, 15)), ((12, 14), (15, 15), (16, 17)), ((14, 16), (17, 17), (18, 18))]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sentio.core.errors import OptionError, excerpt

_SPAN = re.compile(r"^\s*(\d+)\s*(d|s|sessions?)?\s*$")


def sessions_of(text: str | int, flag: str) -> int:
    """A span of trading sessions: ``60``, ``60d`` or ``60 sessions`` (a ``d`` is a trading
    day, one NYSE session; calendar days are never meant).

    >>> sessions_of("60d", "--train-window"), sessions_of(5, "--retrain-every")
    (60, 5)
    >>> sessions_of("2w", "--every")
    Traceback (most recent call last):
    ...
    sentio.core.errors.OptionError: --every: give a number of sessions like 5 or 5d, got '2w'
    """
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        match = _SPAN.match(str(text))
        if not match:
            raise OptionError(
                f"give a number of sessions like 5 or 5d, got {excerpt(text)}", flag=flag
            )
        value = int(match.group(1))
    if value < 1:
        raise OptionError(f"must be at least 1 session, got {excerpt(text)}", flag=flag)
    return value


class RetrainPolicy(BaseModel):
    """How a model is kept current; every field has a flag of the same name."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    train_window: int = Field(60, ge=1, le=10_000)  # sessions a model trains on (the newest)
    retrain_every: int = Field(5, ge=1, le=10_000)  # sessions between two retrainings
    warm_start: bool = False  # start from the incumbent's weights (else from scratch)
    epochs: int | None = Field(None, ge=1, le=10_000)  # None: the preset's
    gate_margin: float = Field(0.0, ge=0, le=1)  # log loss a candidate may lose and still win
    shadow_sessions: int = Field(5, ge=1, le=1_000)  # newest unseen sessions the gate compares on
    expire_after: int | None = Field(None, ge=1, le=10_000)  # sessions; older: flat, not traded


@dataclass(frozen=True)
class Fold:
    """One retraining: train on sessions ``train``, gate on ``shadow``, trade ``trade`` (each
    a (first, last) pair of NYSE session numbers, inclusive)."""

    number: int
    train: tuple[int, int]
    shadow: tuple[int, int]
    trade: tuple[int, int]

    def to_dict(self) -> dict:
        return {"fold": self.number, "train": list(self.train), "shadow": list(self.shadow),
                "trade": list(self.trade)}  # fmt: skip


def fold_schedule(
    sessions: list[int], policy: RetrainPolicy, trade_from: int | None = None
) -> list[Fold]:
    """The folds over ``sessions`` (session numbers of a series, gaps allowed): the first fold
    trades right after ``train_window + shadow_sessions`` sessions; each fold trades
    ``retrain_every`` sessions (the last may trade fewer), is gated on the ``shadow_sessions``
    just before them and trains on the ``train_window`` sessions before those. ``trade_from``
    (a session number) starts trading no earlier than that session (runs compared with each
    other then trade the same sessions). Deterministic: the same sessions and policy give the
    same folds.

    >>> policy = RetrainPolicy(train_window=2, retrain_every=2, shadow_sessions=1)
    >>> [f.trade for f in fold_schedule([1, 2, 3, 5, 8, 9], policy)]
    [(5, 8), (9, 9)]
    >>> [f.trade for f in fold_schedule([1, 2, 3, 5, 8, 9], policy, trade_from=6)]
    [(8, 9)]
    """
    ordered = sorted(set(sessions))
    window, shadow = policy.train_window, policy.shadow_sessions
    folds = []
    start = window + shadow
    if trade_from is not None:
        start = max(start, int(np.searchsorted(ordered, trade_from)))
    while start < len(ordered):
        trade = ordered[start : start + policy.retrain_every]
        gate = ordered[start - shadow : start]
        train = ordered[start - shadow - window : start - shadow]
        folds.append(Fold(len(folds), (train[0], train[-1]), (gate[0], gate[-1]),
                          (trade[0], trade[-1])))  # fmt: skip
        start += policy.retrain_every
    return folds


__all__ = ["Fold", "RetrainPolicy", "fold_schedule", "sessions_of"]
