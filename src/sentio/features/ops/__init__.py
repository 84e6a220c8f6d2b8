"""Feature ops: one numba kernel and one registry entry per op (collected in registry.py)."""

from sentio.features.ops.base import Op, Warmup

__all__ = ["Op", "Warmup"]
