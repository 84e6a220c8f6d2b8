"""Sentio: one pipeline from intraday bars to audited trades.

The package is laid out as the pipeline runs, each stage importing only stages to its left:
``core -> data -> features -> model -> train -> infer -> strategy -> backtest -> audit -> live``.
"""

__version__ = "0.1.0"

__all__ = [
    "__version__",
]
