"""The probability cache: one file per (artifact, bars, spec), checked before it is trusted.

A cached array is only a shortcut for recomputing the sequence context's probabilities, so it is
never believed on its name alone (issue 12: poisoned values moved strattest's exposure from 47 %
to 97 % with exit 0, and a truncated file crashed). Each file is one header line of JSON and the
raw little-endian float64 probabilities:

    {"format": ..., "key": ..., "manifest_hash": ..., "data_hash": ..., "spec_hash": ...,
     "bars": N, "sha256": <sha256 of the N * 8 payload bytes>}\\n<payload>

:meth:`ProbabilityCache.load` accepts a file only when its header parses, names this exact key
(so a file of another model, other bars or another spec renamed into place is refused), holds
exactly N values, the payload hashes to the recorded checksum (an edited or truncated array
is refused) and the values are ones the model can give (:func:`check_probabilities`: a number in
[0, 1] on every bar with a window, NaN on every bar without; issue 12 round 2: 5.0 or NaN
everywhere, rehashed, was accepted). Anything else is a miss with a reason: the caller recomputes
and overwrites the file atomically.

The checksum detects damage, stale and misplaced files; it is not a signature. Someone who can
write the cache folder and rewrites in-range values together with their checksum is not detected
here; an audited run (``strattest --audit``) records the stream path beside the cached sequence
path for every bar, so such a forgery shows there as a parity failure, and ``--no-cache`` skips
the cache altogether.

>>> import tempfile
>>> cache = ProbabilityCache(tempfile.mkdtemp())
>>> key = cache_key("m" * 64, "d" * 64, "s" * 64)
>>> cache.store(key, np.array([np.nan, 0.25]), hashes=("m", "d", "s"))
>>> cache.load(key, valid=np.array([False, True]))[0].tolist()[1]
0.25
>>> cache.load(key, valid=np.array([False, True, True]))[1]
'holds 2 bars, expected 3'
>>> cache.load(key, valid=np.array([True, True]))[1]
'has no probability on 1 bar with a window (the first is row 0)'
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from sentio.core.files import write_bytes_atomic

FORMAT = "sentio.probability-cache/1"
HEADER_LIMIT = 4096  # bytes: a header longer than this is not one we wrote
DTYPE = "<f8"


def cache_key(manifest_hash: str, data_hash: str, spec_hash: str) -> str:
    """The file name stem: sha256 of the three hashes the probabilities depend on."""
    return hashlib.sha256(f"{manifest_hash}|{data_hash}|{spec_hash}".encode()).hexdigest()


class ProbabilityCache:
    """Files ``<key>.prob`` under ``directory``; ``load`` checks, ``store`` writes atomically."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.prob"

    def load(self, key: str, valid: np.ndarray) -> tuple[np.ndarray | None, str | None]:
        """(probabilities, None) for a sound file; (None, None) when there is none; (None,
        reason) when there is one that cannot be trusted. ``valid`` (N,) bool: the bars that
        have a window (``sentio.model.windows.valid_windows``), so the bars that must have a
        probability."""
        bars = len(valid)
        path = self.path(key)
        if not path.exists() and not path.is_symlink():
            return None, None
        try:
            size = path.stat().st_size
            if size > HEADER_LIMIT + 8 * bars:  # never read a planted giant file into memory
                return None, f"is {size} bytes, more than {bars} bars can fill"
            blob = path.read_bytes()
        except OSError as exc:
            return None, f"cannot be read ({exc.strerror or exc})"
        values, why = _parse(blob, key, bars)
        if values is None:
            return None, why
        why = check_probabilities(values, valid)
        return (None, why) if why else (values, None)

    def store(self, key: str, values: np.ndarray, hashes: tuple[str, str, str]) -> None:
        """Write ``values`` under ``key`` atomically; an OS error raises
        :class:`~sentio.core.errors.OutputError`."""
        payload = np.ascontiguousarray(values, dtype=DTYPE).tobytes()
        manifest_hash, data_hash, spec_hash = hashes
        header = {
            "format": FORMAT,
            "key": key,
            "manifest_hash": manifest_hash,
            "data_hash": data_hash,
            "spec_hash": spec_hash,
            "bars": len(values),
            "sha256": hashlib.sha256(payload).hexdigest(),
        }
        line = json.dumps(header, sort_keys=True).encode() + b"\n"
        write_bytes_atomic(self.path(key), line + payload, flag=None)


def _parse(blob: bytes, key: str, bars: int) -> tuple[np.ndarray | None, str | None]:
    end = blob.find(b"\n", 0, HEADER_LIMIT)
    if end < 0:
        return None, "has no header line (not a file this version wrote, or truncated)"
    try:
        header = json.loads(blob[:end])
    except ValueError:
        return None, "has a header that is not JSON"
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        return None, f"is not in the format {FORMAT}"
    if header.get("key") != key:
        return None, "belongs to another model, data or spec (its key differs)"
    if header.get("bars") != bars:
        return None, f"holds {header.get('bars')} bars, expected {bars}"
    payload = blob[end + 1 :]
    if len(payload) != 8 * bars:
        return None, f"has {len(payload)} bytes of values, expected {8 * bars} (truncated?)"
    if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
        return None, "values do not match their sha256 (edited or damaged)"
    return np.frombuffer(payload, dtype=DTYPE).astype(np.float64), None


def check_probabilities(values: np.ndarray, valid: np.ndarray) -> str | None:
    """Why ``values`` cannot be probabilities of the model over bars whose windows are
    ``valid``, or None: the sequence context gives sigmoid(logit), a number in [0, 1] (0 and 1
    only when float64 rounds), on exactly the bars with a window and NaN on the others.

    >>> check_probabilities(np.array([np.nan, 0.4, 1.0]), np.array([False, True, True]))
    >>> check_probabilities(np.array([np.nan, 5.0, 0.5]), np.array([False, True, True]))
    'has 1 value outside [0, 1] (the first is 5 at row 1)'
    >>> check_probabilities(np.array([0.5, 0.4]), np.array([False, True]))
    'has a value on 1 bar without a window (the first is row 0)'
    """
    missing = np.isnan(values)
    for rows, what in (
        (np.flatnonzero(missing & valid), "has no probability on {n} bar{s} with a window"),
        (np.flatnonzero(~missing & ~valid), "has a value on {n} bar{s} without a window"),
    ):
        if len(rows):
            n = len(rows)
            return what.format(n=n, s="" if n == 1 else "s") + f" (the first is row {rows[0]})"
    # NaN is ruled out above where a value belongs; +-inf fail the range test
    outside = np.flatnonzero(valid & ~((values >= 0.0) & (values <= 1.0)))
    if len(outside):
        n, first = len(outside), outside[0]
        return (
            f"has {n} value{'' if n == 1 else 's'} outside [0, 1] "
            f"(the first is {values[first]:.6g} at row {first})"
        )
    return None


__all__ = ["FORMAT", "ProbabilityCache", "cache_key", "check_probabilities"]
