"""Without the extra ``sentio[alpaca]``: the module imports, and every way in says, in one line,
how to install it (alpaca-py is hidden from a fresh interpreter, installed or not)."""

from __future__ import annotations

import subprocess
import sys

HIDE = "import sys; sys.modules['alpaca'] = None; "  # `import alpaca` now raises ImportError


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", HIDE + code],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        env={"APCA_API_KEY_ID": "k", "APCA_API_SECRET_KEY": "s", "PATH": ""},
    )


def test_the_module_imports_and_the_factories_name_the_extra():
    code = (
        "import sentio.live.alpaca as a\n"
        "from sentio.core.errors import LiveError\n"
        "for make in (lambda: a.open_feed(['QQQ']), a.open_broker):\n"
        "    try:\n"
        "        make()\n"
        "    except LiveError as exc:\n"
        "        print(exc)\n"
    )
    done = python(code)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert all("pip install 'sentio[alpaca]'" in line for line in lines)


def test_download_names_the_extra_in_one_line(tmp_path):
    argv = [
        *("sentio", "data", "download", "--source", "alpaca", "--symbol", "QQQ"),
        *("--start", "2025-01-06", "--end", "2025-01-07", "--out", str(tmp_path / "q.parquet")),
    ]
    done = python(f"sys.argv = {argv}\nfrom sentio.cli.app import main\nmain()")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), done.stderr
    assert "pip install 'sentio[alpaca]'" in lines[0]
    assert list(tmp_path.iterdir()) == []
