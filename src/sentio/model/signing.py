"""Tamper-evident artifacts: an HMAC-SHA256 of the manifest under the user's key.

``manifest.json`` pins the sha256 of every file, so it catches accidents, but anyone who edits a
file (thresholds in model.meta.json, say) can recompute it. ``signature.json`` closes that: an
HMAC-SHA256 over the canonical JSON of the manifest, keyed with a secret only its holder has.
It proves that a key holder wrote (or signed) these exact bytes; it is not a public-key
signature (anyone who can check it can also forge it; ed25519 would be the extension).

The key comes from, in order: ``--key-file PATH``, the file named by ``SENTIO_SIGNING_KEY_FILE``,
or the value of ``SENTIO_SIGNING_KEY``; at least 16 bytes. With no key configured nothing is
checked and ``sentio model info`` says so.

>>> key = SigningKey(b"0123456789abcdef-secret", "example")
>>> doc = sign_manifest({"files": {"a": "00" * 32}}, key)
>>> doc["algorithm"], signature_status({"files": {"a": "00" * 32}}, doc, key)[0]
('HMAC-SHA256', 'verified')
>>> signature_status({"files": {"a": "11" * 32}}, doc, key)[0]
'bad'
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sentio.core.errors import OptionError
from sentio.core.hashing import canonical_json

SIGNATURE = "signature.json"
ENV_KEY = "SENTIO_SIGNING_KEY"
ENV_KEY_FILE = "SENTIO_SIGNING_KEY_FILE"
MIN_KEY_BYTES = 16
ALGORITHM = "HMAC-SHA256"
MAX_KEY_FILE_BYTES = 1 << 16  # a key file is a secret, never a large file


@dataclass(frozen=True)
class SigningKey:
    """A secret and where it came from (the secret never appears in a repr or a message)."""

    secret: bytes = field(repr=False)
    source: str  # "--key-file k.txt", "SENTIO_SIGNING_KEY", ...

    @property
    def key_id(self) -> str:
        """A short public name of the key (an HMAC of a fixed text, not the key itself)."""
        return hmac.new(self.secret, b"sentio signing key id", hashlib.sha256).hexdigest()[:16]


def _read_key_file(path: str | Path, flag: str) -> bytes:
    path = Path(path)
    try:
        if not path.is_file():
            raise OptionError(f"{path} is not a file", flag=flag)
        if path.stat().st_size > MAX_KEY_FILE_BYTES:
            raise OptionError(f"{path} is larger than {MAX_KEY_FILE_BYTES} bytes", flag=flag)
        data = path.read_bytes()
    except OSError as exc:
        raise OptionError(f"cannot read {path}: {exc.strerror or exc}", flag=flag) from exc
    return data.rstrip(b"\r\n")  # an editor's final newline is not part of the key


def signing_key(
    key_file: str | Path | None = None, env: Mapping[str, str] | None = None
) -> SigningKey | None:
    """The configured key, or None when neither a key file nor the environment gives one."""
    env = os.environ if env is None else env
    if key_file is not None:
        secret, source, flag = (
            _read_key_file(key_file, "--key-file"),
            f"--key-file {key_file}",
            "--key-file",
        )
    elif env.get(ENV_KEY_FILE):
        secret = _read_key_file(env[ENV_KEY_FILE], ENV_KEY_FILE)
        source = flag = ENV_KEY_FILE
    elif env.get(ENV_KEY):
        secret, source, flag = env[ENV_KEY].encode("utf-8"), ENV_KEY, ENV_KEY
    else:
        return None
    if len(secret) < MIN_KEY_BYTES:
        raise OptionError(
            f"the signing key has {len(secret)} bytes; use at least {MIN_KEY_BYTES} random bytes "
            "(e.g. python -c 'import secrets; print(secrets.token_hex(32))')",
            flag=flag,
        )
    return SigningKey(secret, source)


def _mac(manifest: object, key: SigningKey) -> str:
    return hmac.new(key.secret, canonical_json(manifest), hashlib.sha256).hexdigest()


def sign_manifest(manifest: object, key: SigningKey) -> dict:
    """The content of ``signature.json`` for ``manifest`` (the parsed manifest.json)."""
    return {
        "algorithm": ALGORITHM,
        "signed": "canonical JSON of manifest.json (sorted keys, no spaces, UTF-8)",
        "key_id": key.key_id,
        "hmac": _mac(manifest, key),
    }


def signature_status(
    manifest: object, signature: dict | None, key: SigningKey | None
) -> tuple[str, str]:
    """(status, detail): status is ``verified``, ``bad``, ``unsigned`` or ``not checked``."""
    if signature is None:
        if key is None:
            return "unsigned", "unsigned (no signing key configured, nothing to check)"
        return "unsigned", (
            f"unsigned, but a signing key is configured ({key.source}); sign it with "
            "`sentio model sign DIR` only if you trust it"
        )
    if key is None:
        return "not checked", "signed, not checked (no key)"
    given = signature.get("hmac")
    if signature.get("algorithm") != ALGORITHM or not isinstance(given, str):
        return "bad", f"{SIGNATURE} is not an {ALGORITHM} signature"
    if not hmac.compare_digest(given, _mac(manifest, key)):
        other = signature.get("key_id")
        hint = (
            f"signed with another key (key id {other}, configured {key.key_id})"
            if other != key.key_id
            else "manifest.json was edited after signing"
        )
        return "bad", f"{SIGNATURE} does not match manifest.json: {hint}"
    return "verified", f"signed and verified ({ALGORITHM}, key id {key.key_id})"


__all__ = [
    "ENV_KEY",
    "ENV_KEY_FILE",
    "MIN_KEY_BYTES",
    "SIGNATURE",
    "SigningKey",
    "sign_manifest",
    "signature_status",
    "signing_key",
]
