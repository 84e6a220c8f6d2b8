"""Seeding: one explicit seed, independent named streams derived from it.

Each consumer asks for its own stream by name, so adding a consumer never shifts another's numbers.

>>> a = rng_for(7, "returns").standard_normal(2)
>>> b = rng_for(7, "returns").standard_normal(2)
>>> bool((a == b).all())
True
>>> bool((rng_for(7, "volume").standard_normal(2) == a).all())
False
"""

from __future__ import annotations

import zlib

import numpy as np

MAX_SEED = 2**63 - 1  # seeds are recorded as JSON integers and fed to numpy's SeedSequence


def rng_for(seed: int, stream: str) -> np.random.Generator:
    """A PCG64 generator for ``(seed, stream)``; the stream name is hashed with CRC-32."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    key = zlib.crc32(stream.encode("utf-8"))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, key])))
