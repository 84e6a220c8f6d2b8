"""House rules that keep the package readable (docs/architecture.md, house rules 1 and 2)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import sentio

STAGES = [
    "core",
    "data",
    "features",
    "model",
    "infer",
    "strategy",
    "train",
    "backtest",
    "audit",
    "live",
    "report",
    "runs",
]
SRC = Path(sentio.__file__).parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sentio."):
            names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names |= {a.name.split(".")[1] for a in node.names if a.name.startswith("sentio.")}
    return names


def test_stages_import_only_leftward():
    for path in SRC.rglob("*.py"):
        stage = path.relative_to(SRC).parts[0]
        if stage not in STAGES:
            continue
        for used in _imports(path):
            if used in STAGES:
                assert STAGES.index(used) <= STAGES.index(stage), f"{path} imports sentio.{used}"


def test_public_api_is_explicit_sorted_and_importable():
    for info in pkgutil.walk_packages([str(SRC)], prefix="sentio."):
        if not info.ispkg or info.name.startswith("sentio.cli"):
            continue
        module = importlib.import_module(info.name)
        names = getattr(module, "__all__", None)
        assert names is not None, f"{info.name} has no __all__"
        assert list(names) == sorted(names), f"{info.name}.__all__ is not sorted"
        for name in names:
            assert hasattr(module, name), f"{info.name}.__all__ names missing {name}"


def test_production_stages_import_without_torch():
    """docs/architecture.md section 1: loading an artifact and computing features needs no torch."""
    import subprocess
    import sys

    code = (
        "import sys, sentio.features, sentio.model, sentio.train, sentio.cli.app;"
        "print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_user_facing_files_point_nowhere_outside_the_repository():
    """README, docs/, pyproject.toml and the package's own text never send a user to a file
    they do not have (the development contracts live in docs/architecture.md)."""
    repo = SRC.parents[1]
    outside = re.compile(r"\.\./shared|DEVELOPERS\.md|ARCHITECTURE\.md|STYLE\.md|FEATURE_OPS")
    paths = [repo / "README.md", repo / "pyproject.toml", *(repo / "docs").glob("*.md")]
    paths += list(SRC.rglob("*.py"))
    found = [
        f"{path.relative_to(repo)}:{n}"
        for path in paths
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if outside.search(line)
    ]
    assert len(paths) > 60 and not found, found
    for link in re.findall(r"\]\(([^)#]+)\)", (repo / "README.md").read_text()):
        if "://" not in link:
            assert (repo / link).exists(), f"README links to missing {link}"
