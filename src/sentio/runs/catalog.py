"""Finding runs on disk and naming one: what ``sentio runs list|show|compare`` read.

A folder is a run when it holds one of the marker files (``folders.MARKERS``): it is read and
not walked further (a walk-forward folder's fold artifacts and a sweep's variants belong to
it; give their paths to ``show`` to see one). Any other file that starts with SQLite's header
and has the audit tables is an audit database, each run in it a row. Folders are walked to a
bounded depth, hidden ones (``.git``, ``.venv``, ``.sentio-cache``) and symbolic links to
folders skipped. Nothing is written, and an entry that cannot be read is a :class:`Problem`
(one line) rather than the end of the listing.

A reference (``REF``) is a run folder (or its marker file), an audit database (its newest
run, as ``saudit`` takes) or ``DB#RUN_ID``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sentio.core.errors import excerpt
from sentio.runs.audits import is_sqlite, read_audit
from sentio.runs.fields import text
from sentio.runs.folders import MARKERS, kind_of, read_folder
from sentio.runs.run import Problem, Run, RunsError

MAX_DEPTH = 6  # folders below a root that are walked (runs/sweep1/variants/000 is depth 3)


def find_runs(roots: Sequence[Path], depth: int = MAX_DEPTH) -> tuple[list[Run], list[Problem]]:
    """Every run under ``roots`` (folders walked ``depth`` levels down, files taken as they
    are), newest first (runs that record no time last), and the entries that could not be
    read. A root that does not exist is a RunsError naming it."""
    entries: list[Run | Problem] = []
    for root in roots:
        if not root.exists():
            raise RunsError(f"{root}: no such file or folder")
        entries += _file(root, explicit=True) if root.is_file() else _walk(root, depth)
    unique = {e.ref: e for e in entries if isinstance(e, Run)}  # a root inside another
    runs = sorted(unique.values(), key=lambda r: r.ref)
    runs.sort(key=lambda r: r.when or "", reverse=True)
    problems = {e for e in entries if isinstance(e, Problem)}
    return runs, sorted(problems, key=lambda p: p.path)


def _walk(root: Path, depth: int) -> list[Run | Problem]:
    """The runs in ``root`` and the folders below it, in name order; a folder this user
    cannot look into is a Problem."""
    out: list[Run | Problem] = []
    stack = [(root, 0)]
    while stack:
        folder, level = stack.pop()
        try:
            found, below = _visit(folder, level < depth)
        except OSError as exc:
            found, below = [Problem(str(folder), f"cannot list ({exc.strerror or exc})")], []
        out += found
        stack += [(child, level + 1) for child in reversed(below)]  # popped in name order
    return out


def _visit(folder: Path, deeper: bool) -> tuple[list[Run | Problem], list[Path]]:
    """The runs in ``folder`` itself, and the folders below it to walk."""
    if kind_of(folder):
        return [_guarded(folder)], []
    found: list[Run | Problem] = []
    below = []
    for child in sorted(folder.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            if deeper and not child.is_symlink():
                below.append(child)
        elif child.is_file():
            found += _file(child, explicit=False)
    return found, below


def _guarded(folder: Path) -> Run | Problem:
    try:
        return read_folder(folder)
    except RunsError as exc:
        return Problem(str(folder), str(exc))


def _file(path: Path, explicit: bool) -> list[Run | Problem]:
    """A marker file stands for its folder; an SQLite file is read as an audit database. A
    file that is neither is skipped while walking, and a Problem when given by name."""
    if path.name in MARKERS:
        return [_guarded(path.parent)]
    try:
        found = read_audit(path) if is_sqlite(path) else None
    except RunsError as exc:
        return [Problem(str(path), str(exc))]
    if found is None:
        reason = "not a run folder, marker file or audit database"
        return [Problem(str(path), reason)] if explicit else []
    return found


def read_ref(ref: str) -> Run:
    """The run ``ref`` names (see the module's docstring); RunsError naming ``ref`` when it
    names none."""
    path, run_id = Path(ref), None
    if not path.exists() and "#" in ref:
        db, run_id = ref.rsplit("#", 1)
        path = Path(db)
    if not path.exists():
        raise RunsError(
            f"{excerpt(ref, 240)}: no such run folder or audit database (give a path `sentio runs "
            "list` shows, or DB#RUN_ID)"
        )
    if path.is_dir() or path.name in MARKERS:
        if run_id is not None:
            raise RunsError(f"{excerpt(ref, 240)}: #RUN_ID names a run in an audit database only")
        return read_folder(path if path.is_dir() else path.parent)
    found = read_audit(path) if is_sqlite(path) else None
    if found is None:
        raise RunsError(
            f"{excerpt(ref, 240)}: not a run folder, marker file ({', '.join(MARKERS)}) or audit "
            "database"
        )
    if not found:
        raise RunsError(f"{excerpt(ref, 240)}: no runs recorded yet")
    if run_id is None:
        chosen = found[-1]  # the newest run, as saudit takes it
    else:
        named = [e for e in found if _id_of(e, path) == run_id]
        if not named:
            known = ", ".join(excerpt(_id_of(e, path), 40) for e in found[:20])
            raise RunsError(
                f"{excerpt(ref, 240)}: no run {excerpt(run_id)} in {path} (runs: {known})"
            )
        chosen = named[0]
    if isinstance(chosen, Problem):
        raise RunsError(f"{path}: {chosen.reason}")
    return chosen


def _id_of(entry: Run | Problem, db: Path) -> str:
    if isinstance(entry, Run):
        return entry.run_id or ""
    return entry.path.removeprefix(f"{db}#")


SECTIONS = ("config", "hashes", "numbers")


def compare_rows(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """The fields of ``runs`` side by side: one row per (section, field) that any run has, in
    the order of the first run that has it, with each run's value (None where it has none) and
    ``differs``: whether the values are not all the same (a field one run lacks differs)."""
    rows = []
    for section in SECTIONS:
        names: dict[str, None] = {}
        for run in runs:
            names |= dict.fromkeys(getattr(run, section))
        for name in names:
            values = [getattr(run, section).get(name) for run in runs]
            shown = {
                text(v) if name in getattr(r, section) else "\0absent"
                for r, v in zip(runs, values, strict=True)
            }
            rows.append(
                {"section": section, "field": name, "values": values, "differs": len(shown) > 1}
            )
    return rows


__all__ = ["MAX_DEPTH", "SECTIONS", "compare_rows", "find_runs", "read_ref"]
