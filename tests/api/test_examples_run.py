"""Every script in examples/ and the notebook run as a user runs them (issue 17 part 4).

Each script gets an output folder under tmp_path and runs with this interpreter in tmp_path,
so nothing is written into the repository. The notebook's code cells run in order in one
namespace in a fresh interpreter, as a kernel would run them (no Jupyter kernel is
installed); its last cell asserts that the live replay equals strattest.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py"))
# A notebook's code cells, in order, in one namespace (``python -c RUN_CELLS NOTEBOOK``).
RUN_CELLS = """
import json, sys
namespace = {"__name__": "__main__"}
for n, cell in enumerate(json.load(open(sys.argv[1]))["cells"]):
    if cell["cell_type"] == "code":
        exec(compile("".join(cell["source"]), f"cell {n}", "exec"), namespace)
"""


def _run(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_the_examples_are_the_ones_docs_api_md_shows():
    assert SCRIPTS == ["evaluate_file.py", "quickstart.py"]
    text = (EXAMPLES.parent / "docs" / "api.md").read_text()
    for name in [*SCRIPTS, "quickstart.ipynb"]:
        assert f"examples/{name}" in text, name


def test_quickstart(tmp_path):
    from sentio.model.artifact import load_verified

    out = tmp_path / "out"
    done = _run([str(EXAMPLES / "quickstart.py"), str(out)], tmp_path)
    assert "verdict:" in done.stdout and "out of sample: AUC" in done.stdout
    load_verified(out / "model")  # a whole artifact: manifest, hashes, metadata
    if importlib.util.find_spec("bokeh") is None:  # the extra sentio[report] is absent
        assert "no report:" in done.stdout and "sentio[report]" in done.stdout
    else:
        assert (out / "report.html").stat().st_size > 100_000  # Bokeh's bundle is inline
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing beside OUT


def test_evaluate_file(tiny_artifact, tmp_path):
    import pandas as pd

    out = tmp_path / "out"
    done = _run(
        [str(EXAMPLES / "evaluate_file.py"), str(out), "--model", str(tiny_artifact)], tmp_path
    )
    assert "edge:" in done.stdout
    # the stand-in: 10 full NYSE sessions from 1 March 2024 (no holiday or half day until
    # the 14th) of 390 one-minute bars each
    assert len(pd.read_parquet(out / "qqq.parquet")) == 10 * 390
    assert "imported 3900 bars (60 s)" in done.stdout


def test_quickstart_notebook(tmp_path):
    pytest.importorskip("bokeh", reason="the notebook draws the report: extra sentio[report]")
    notebook = EXAMPLES / "quickstart.ipynb"
    doc = json.loads(notebook.read_text())
    assert doc["nbformat"] == 4
    code = [c for c in doc["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    out = tmp_path / "out"
    _run(["-c", RUN_CELLS, str(notebook)], tmp_path, {"SENTIO_EXAMPLE_OUT": str(out)})
    assert (out / "model" / "manifest.json").is_file()
    assert (out / "report.html").stat().st_size > 100_000
