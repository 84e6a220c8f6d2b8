"""One run as ``sentio runs`` shows it: what it is, where it lies, when it was recorded, its
headline figures and its config, hashes and numbers as flat dotted keys (``fields.flatten``),
so that any two runs can be put side by side."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sentio.core.errors import SentioError

# What a run can be; an audit run's kind names the command that recorded it.
KINDS = (
    "model",
    "strattest",
    "walk-forward",
    "sweep",
    "audit/strattest",
    "audit/walk-forward",
    "audit/live",
)


class RunsError(SentioError):
    """A run reference or run file that cannot be read as asked (one line naming it)."""


@dataclass(frozen=True)
class Run:
    """One recorded run.

    ``when`` is the time the run recorded (ISO 8601 UTC: an artifact's ``saved_at``, an audit
    run's start), never a file's modification time; None when the run records none.
    Headline figures: ``auc`` (a model's validation AUC, a walk-forward run's out-of-sample
    AUC), ``edge`` (a model's edge verdict), ``net_mean_pct`` (a backtest's net mean return
    per block or session, %) and ``verdict`` (a backtest's verdict kind; ``incomplete`` for an
    audit run that never ended).

    >>> Run("audit/strattest", "a.db", run_id="st-1").ref
    'a.db#st-1'
    """

    kind: str
    path: str
    run_id: str | None = None
    when: str | None = None
    auc: float | None = None
    edge: str | None = None
    net_mean_pct: float | None = None
    verdict: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    hashes: dict[str, Any] = field(default_factory=dict)
    numbers: dict[str, float] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """What ``sentio runs show`` takes back: the path, or ``DB#RUN_ID`` for an audit run."""
        return f"{self.path}#{self.run_id}" if self.run_id else self.path

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, **asdict(self)}


@dataclass(frozen=True)
class Problem:
    """An entry that looks like a run but cannot be read: its path and why, in one line."""

    path: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


__all__ = ["KINDS", "Problem", "Run", "RunsError"]
