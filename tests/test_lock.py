"""The locked environment (issue 12): requirements.lock pins every dependency pyproject.toml
names, and this environment runs exactly the pinned versions (the Makefile installs with
``pip install -c requirements.lock``, so a fresh machine gets what the suite passed with)."""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"


def _name(requirement: str) -> str:
    """PEP 503 normalised distribution name of a requirement string."""
    raw = re.split(r"[\s\[<>=!~;@]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", raw).lower()


def _pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock line is not an exact pin: {line!r}"
            pins[_name(name)] = version.strip()
    return pins


def _declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        names |= {_name(r) for r in extra if not r.startswith("sentio")}
    return names


def test_lock_pins_every_declared_dependency_exactly():
    pins = _pins()
    missing = sorted(_declared() - set(pins))
    assert not missing, f"requirements.lock lacks {missing}; run `make lock`"
    assert "sentio" not in pins, "the project itself must not be pinned (absolute path)"


def test_lock_keeps_torch_on_the_cpu_wheel_rule():
    # torch below 2.14 is what makes pip take the local CPU wheel instead of a CUDA build.
    major, minor = (int(x) for x in _pins()["torch"].split(".")[:2])
    assert (major, minor) < (2, 14)


def test_this_environment_runs_the_locked_versions():
    if Path(sys.prefix).resolve() != (REPO / ".venv").resolve():
        pytest.skip(f"not the Makefile's environment ({sys.prefix}); only .venv is locked")
    wrong = {}
    for name, version in _pins().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # an extra this environment did not install
        if installed != version:
            wrong[name] = (installed, version)
    assert not wrong, f"installed vs locked: {wrong}; reinstall with `make test` (uses the lock)"
