"""Shared foundations: errors, canonical hashing, time and seeding."""

from sentio.core.clock import NEW_YORK, NS_PER_MINUTE, build_time, ny_time, to_ns_utc
from sentio.core.domain import Bar, Reason
from sentio.core.errors import (
    ArtifactError,
    BarsError,
    CalendarError,
    LiveError,
    OptionError,
    OutputError,
    ParityError,
    SentioError,
    SpecError,
    StateError,
    SynthError,
    excerpt,
)
from sentio.core.files import atomic_output, check_output, write_bytes_atomic
from sentio.core.hashing import canonical_json, content_hash, sha256_file, sha256_hex
from sentio.core.seeding import rng_for

__all__ = [
    "ArtifactError",
    "Bar",
    "BarsError",
    "CalendarError",
    "LiveError",
    "NEW_YORK",
    "NS_PER_MINUTE",
    "OptionError",
    "OutputError",
    "ParityError",
    "Reason",
    "SentioError",
    "SpecError",
    "StateError",
    "SynthError",
    "atomic_output",
    "build_time",
    "canonical_json",
    "check_output",
    "content_hash",
    "excerpt",
    "ny_time",
    "rng_for",
    "sha256_file",
    "sha256_hex",
    "to_ns_utc",
    "write_bytes_atomic",
]
