"""`make docs`: pdoc renders the API reference from the docstrings (issue 17 part 4).

The modules are the Makefile's DOC_MODULES, rendered through pdoc's Python API into tmp_path;
every public name of sentio.api gets its anchor, and the result types it returns link to
their own pages.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sentio import api

MAKEFILE = Path(__file__).resolve().parents[2] / "Makefile"


def _doc_modules() -> list[str]:
    """DOC_MODULES of the Makefile (a value continued over lines with backslashes)."""
    text = MAKEFILE.read_text().replace("\\\n", " ")
    found = re.search(r"^DOC_MODULES\s*:=\s*(.+)$", text, re.MULTILINE)
    assert found, "the Makefile has no DOC_MODULES"
    return found.group(1).split()


def test_make_docs_renders_every_api_name_and_its_result_types(tmp_path):
    pdoc = pytest.importorskip("pdoc", reason="make docs needs pdoc (the dev extra)")
    recipe = r"^docs: .*\n(?:\t.*\n)*?\t.*pdoc \$\(DOC_MODULES\) -o build/docs$"
    assert re.search(recipe, MAKEFILE.read_text(), re.MULTILINE), "make docs runs no pdoc"
    modules = _doc_modules()
    assert modules[0] == "sentio.api"
    pdoc.pdoc(*modules, output_directory=tmp_path)
    page = (tmp_path / "sentio" / "api.html").read_text()
    for name in api.__all__:
        assert f'id="{name}"' in page, name
    assert "Parameters" in page and "Returns" in page  # numpydoc sections rendered
    # the result types link to their pages, and those pages hold them
    links = {
        "StrattestResult": "backtest/strattest.html",
        "Market": "data/synth/generate.html",
        "Bars": "data/schema.html",
        "ImportReport": "data/ingest.html",
    }
    for name, target in links.items():
        assert f'href="{target}#{name}"' in page, name
        assert f'id="{name}"' in (tmp_path / "sentio" / target).read_text(), name
