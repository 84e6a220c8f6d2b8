"""Sentio: one pipeline from intraday bars to audited trades.

The package is laid out as the pipeline runs, each stage importing only stages to its left:
``core -> data -> features -> model -> infer -> strategy -> train -> backtest -> audit -> live
-> report -> runs``; ``sentio.cli`` and ``sentio.api`` sit on top.
"""

from sentio.core.compiled import prepare_numba_cache

__version__ = "0.1.0"

# Before any numba kernel is compiled: a read-only install must not crash at import.
prepare_numba_cache()

__all__ = [
    "__version__",
]
