"""Shared foundations: errors, canonical hashing, time and seeding."""

from sentio.core.clock import NEW_YORK, NS_PER_MINUTE, build_time, ny_time, to_ns_utc
from sentio.core.domain import Bar, Reason
from sentio.core.errors import (
    ArtifactError,
    BarsError,
    CalendarError,
    ParityError,
    SentioError,
    SpecError,
    StateError,
    SynthError,
)
from sentio.core.hashing import canonical_json, content_hash, sha256_file, sha256_hex
from sentio.core.seeding import rng_for

__all__ = [
    "ArtifactError",
    "Bar",
    "BarsError",
    "CalendarError",
    "NEW_YORK",
    "NS_PER_MINUTE",
    "ParityError",
    "Reason",
    "SentioError",
    "SpecError",
    "StateError",
    "SynthError",
    "build_time",
    "canonical_json",
    "content_hash",
    "ny_time",
    "rng_for",
    "sha256_file",
    "sha256_hex",
    "to_ns_utc",
]
