"""The model registry: versioned artifacts and one ``current`` pointer (``--registry DIR``).

Layout of a registry folder::

    DIR/versions/0001-<manifest hash, 12 hex>/   an artifact, copied in whole, never changed
    DIR/current.json                              {"version": ..., "manifest_hash": ...}
    DIR/history.jsonl                             one line per publish, promote, refuse, rollback

``publish`` verifies an artifact (every check a loader makes) and copies it in under the next
version number: into a temporary folder first, renamed into place once complete, so a
half-copied version never exists. ``promote`` points ``current`` at a version (written to a
temporary file, then renamed over ``current.json``: a reader sees the old pointer or the new
one, never a mix); ``rollback`` points it back at the version the current one replaced;
``refuse`` records that a gate kept a published version out of ``current``. Every step is a
line of the history with its time, reason and numbers (a gate's figures, when one decided),
appended and fsynced. Nothing is ever deleted.

A version is identified by its folder name; the manifest hash inside it is the artifact's
identity (docs/model.md), checked again whenever the registry hands a version out.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from sentio.core.clock import build_time
from sentio.core.errors import ArtifactError, OptionError, excerpt
from sentio.core.files import write_bytes_atomic
from sentio.core.hashing import sha256_file, unique_keys
from sentio.model.artifact import load_verified

VERSION = re.compile(r"^(\d{4,})-([0-9a-f]{12})$")


class RegistryError(OptionError):
    """A registry folder, version or history that cannot be used as asked."""


class ModelRegistry:
    """A registry folder (created by the first publish)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise RegistryError(f"{self.folder} is a file; give a folder", flag="--registry")
        self.versions_dir = self.folder / "versions"
        self.pointer = self.folder / "current.json"
        self.log = self.folder / "history.jsonl"

    # -- reading ---------------------------------------------------------------------------

    def versions(self) -> list[str]:
        """Every version, oldest first."""
        if not self.versions_dir.is_dir():
            return []
        found = [p.name for p in self.versions_dir.iterdir() if VERSION.match(p.name)]
        return sorted(found, key=lambda name: int(VERSION.match(name).group(1)))

    def path(self, version: str) -> Path:
        """The artifact folder of ``version``, its manifest checked against its name."""
        if version not in self.versions():
            known = ", ".join(self.versions()[-10:]) or "none"
            raise RegistryError(
                f"{self.folder} has no version {excerpt(version)} (newest: {known})",
                flag="--registry",
            )
        folder = self.versions_dir / version
        digest = sha256_file(folder / "manifest.json")
        if not digest.startswith(VERSION.match(version).group(2)):
            raise ArtifactError(
                f"manifest.json hashes to {digest[:12]}..., the version was published as "
                f"{VERSION.match(version).group(2)} (the artifact was changed)",
                file=str(folder),
            )
        return folder

    def current(self) -> str | None:
        """The version ``current`` points at, or None before the first promotion."""
        if not self.pointer.exists():
            return None
        try:
            doc = json.loads(self.pointer.read_text(), object_pairs_hook=unique_keys)
            version = doc["version"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RegistryError(f"{self.pointer}: not a registry pointer ({exc})") from None
        self.path(version)  # it must exist and be intact
        return version

    def history(self) -> list[dict]:
        """Every publish, promote, refuse and rollback, oldest first."""
        if not self.log.exists():
            return []
        out = []
        for n, line in enumerate(self.log.read_text().splitlines(), start=1):
            try:
                entry = json.loads(line, object_pairs_hook=unique_keys)
            except ValueError:
                raise RegistryError(f"{self.log}: line {n} is not JSON") from None
            if not isinstance(entry, dict) or "action" not in entry:
                raise RegistryError(f"{self.log}: line {n} is not a registry entry")
            out.append(entry)
        return out

    # -- writing ---------------------------------------------------------------------------

    def publish(self, artifact: str | Path, note: str = "") -> str:
        """Verify ``artifact`` and copy it in as the next version; returns the version."""
        artifact = Path(artifact)
        load_verified(artifact)  # refuses an incomplete, changed or unsigned-when-keyed one
        digest = sha256_file(artifact / "manifest.json")
        for version in self.versions():
            if VERSION.match(version).group(2) == digest[:12]:
                return version  # the same bytes are one version, published once
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        number = 1 + max((int(VERSION.match(v).group(1)) for v in self.versions()), default=0)
        version = f"{number:04d}-{digest[:12]}"
        staging = Path(tempfile.mkdtemp(prefix=".publish-", dir=self.versions_dir))
        try:
            shutil.copytree(artifact, staging / "artifact")
            os.replace(staging / "artifact", self.versions_dir / version)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.path(version)
        self._record("publish", version, note, manifest_hash=digest, source=str(artifact))
        return version

    def promote(self, version: str, reason: str = "", gate: dict | None = None, **more) -> str:
        """Point ``current`` at ``version`` (atomically); returns the version it replaced.
        ``more`` (JSON values) goes into the history line, as a retrainer's record does."""
        self.path(version)
        before = self.current()
        self._point(version)
        self._record("promote", version, reason, previous=before, gate=gate, **more)
        return before

    def refuse(self, version: str, reason: str = "", gate: dict | None = None, **more) -> None:
        """Record that ``version`` was gated and not promoted (``current`` stays where it is),
        with the gate's numbers: every decision is in the history, not only the promotions."""
        self.path(version)
        self._record("refuse", version, reason, current=self.current(), gate=gate, **more)

    def rollback(self, reason: str = "") -> str:
        """Point ``current`` back at the version it replaced when it was promoted (again and
        again: each rollback goes one promotion further back)."""
        now = self.current()
        promoted = [e for e in self.history() if e["action"] == "promote" and e["version"] == now]
        back = promoted[-1].get("previous") if promoted else None
        if back is None:
            raise RegistryError(
                f"{self.folder}: nothing to roll back to (version {now} was promoted over none)",
                flag="--registry",
            )
        self.path(back)
        self._point(back)
        self._record("rollback", back, reason, previous=now)
        return back

    def _point(self, version: str) -> None:
        digest = sha256_file(self.versions_dir / version / "manifest.json")
        doc = {"version": version, "manifest_hash": digest}
        write_bytes_atomic(self.pointer, json.dumps(doc, sort_keys=True).encode(), flag=None)

    def _record(self, action: str, version: str, reason: str, **more) -> None:
        entry = {"action": action, "version": version, "reason": reason,
                 "at": build_time().isoformat(), **more}  # fmt: skip
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.log, "a") as out:
            out.write(json.dumps(entry, sort_keys=True) + "\n")
            out.flush()
            os.fsync(out.fileno())


__all__ = ["VERSION", "ModelRegistry", "RegistryError"]
