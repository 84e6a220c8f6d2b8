"""Canonical JSON and SHA-256: the ONE implementation used by specs, manifests, caches and audit.

Canonical JSON is ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
encoded as UTF-8 (docs/architecture.md section 4).

>>> canonical_json({"b": 1, "a": [1.5, "x"]})
b'{"a":[1.5,"x"],"b":1}'
>>> sha256_hex(b"abc")[:16]
'ba7816bf8f01cfea'
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np


def canonical_json(obj: Any) -> bytes:
    """Serialise ``obj`` as canonical JSON bytes (sorted keys, no spaces, UTF-8)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


class DuplicateKeyError(ValueError):
    """A key written twice in one JSON object (``json.loads`` would keep the last silently)."""


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for ``json.loads`` that refuses a repeated key.

    >>> json.loads('{"window": 3, "window": 7}', object_pairs_hook=unique_keys)
    Traceback (most recent call last):
    ...
    sentio.core.hashing.DuplicateKeyError: window
    """
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(key)
        out[key] = value
    return out


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def content_hash(obj: Any) -> str:
    """``sha256:`` + hex SHA-256 of the canonical JSON of ``obj``.

    >>> content_hash({})
    'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a'
    """
    return "sha256:" + sha256_hex(canonical_json(obj))


def number(x) -> float | None:
    """A float for a JSON document; NaN and infinities become null (JSON has neither)."""
    x = float(x)
    return x if np.isfinite(x) else None


def clean(obj):
    """``obj`` with every non-finite float replaced by None and tuples made lists."""
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return number(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
