"""Audit (issue 7, in progress): the append-only, hash-chained store and its chain check.

Recording from strattest, the ``saudit`` commands and the replay of metrics from fills come
with the rest of issue 7; until then ``saudit`` says so.
"""

from sentio.audit.store import AuditError, AuditStore, ChainCheck, verify_chain

__all__ = ["AuditError", "AuditStore", "ChainCheck", "verify_chain"]
