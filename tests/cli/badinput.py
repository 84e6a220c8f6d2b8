"""Drive the real console scripts (``sentio``, ``sencli``, ``saudit``) with a bad invocation and
check the contract for errors a user can cause: exit 2, one line on stderr naming what is wrong,
no Python traceback, and nothing written where it must not be.

Each ``tests/cli/test_bad_input_*.py`` module holds one area's corpus as a table of cases.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent


def script(name: str) -> str:
    """Path of an installed console script beside this Python (the venv's ``bin``)."""
    path = BIN / name
    if not path.exists():  # pragma: no cover - an install without the entry points
        raise RuntimeError(f"console script {name} is not installed beside {sys.executable}")
    return str(path)


def run_script(
    name: str, *args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    """Run ``name args...`` as a user would, with no standard input."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [script(name), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


@dataclass
class Case:
    """One bad invocation: the script, its arguments (``{tmp}`` and any named fixture path are
    substituted), and words the one-line message must contain."""

    id: str
    args: list[str]
    says: list[str] = field(default_factory=list)
    script: str = "sentio"


def assert_refused(done: subprocess.CompletedProcess, *says: str) -> str:
    """Exit 2, no traceback, a one-line ``error:`` message on stderr containing ``says``.

    The parser's own usage errors (unknown flag, value of the wrong type or out of range) are
    one line too (``sentio.cli.app`` turns them into ``error: ... (see: COMMAND --help)``).
    """
    stderr = done.stderr
    assert done.returncode == 2, (done.returncode, stderr[-2000:], done.stdout[-2000:])
    assert "Traceback" not in stderr and "Traceback" not in done.stdout, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), stderr[-3000:]
    message = lines[0]
    assert len(message) < 1000, f"message of {len(message)} characters"
    for word in says:
        assert word.lower() in message.lower(), (word, message)
    return message
