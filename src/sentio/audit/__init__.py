"""Audit: the append-only, hash-chained store, what a strattest run records into it, and
the verification that walks the chain and replays the run from its fills."""

from sentio.audit.record import audited_strattest
from sentio.audit.store import AuditError, AuditStore, ChainCheck, verify_chain
from sentio.audit.verify import Verdict, verify_run
from sentio.audit.walkforward import audited_walkforward

__all__ = [
    "AuditError",
    "AuditStore",
    "ChainCheck",
    "Verdict",
    "audited_strattest",
    "audited_walkforward",
    "verify_chain",
    "verify_run",
]
