"""``sentio report`` refuses bad input through the real console script: one line naming the
flag, exit 2, no traceback, no file written and every input left as it was
(tests/cli/badinput.py). The cases run side by side (each is a fresh process)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sentio.audit import AuditStore
from sentio.cli.report_commands import check_flags
from sentio.core.errors import OptionError
from sentio.report import report_audit, report_run
from tests.cli.badinput import Case, assert_refused, run_script

CASES = [  # the classes of bad input; the rest of each class is checked in-process
    Case("no-out", ["report", "--run", "{run}"], ["--out", "give the HTML file"]),
    Case(
        "run-folder-and-audit",
        ["report", "--run", "{run}", "--audit", "{db}", "--out", "{out}"],
        ["--run", "is a folder"],
    ),  # fmt: skip
    Case(
        "not-a-run",
        ["report", "--run", "{empty}", "--out", "{out}"],
        ["--run", "not a run folder", "summary.json"],
    ),  # fmt: skip
    Case(
        "not-an-audit",
        ["report", "--audit", "{text}", "--out", "{out}"],
        ["--audit", "not a SQLite database"],
    ),  # fmt: skip
    Case(
        "unknown-run-id",
        ["report", "--audit", "{db}", "--run", "nope", "--out", "{out}"],
        ["--run", "no run 'nope'", "st-one"],
    ),  # fmt: skip
    Case(
        "out-is-a-run-file",
        ["report", "--run", "{run}", "--out", "{run}/summary.json"],
        ["--out", "same file as the input"],
    ),  # fmt: skip
]
# In-process: the same error classes (OptionError: the CLI prints its one line, as above).
INPROCESS = [
    ("no-source", lambda p: check_flags(None, None, p["out"]), ["--run", "--audit DB"]),
    ("no-folder", lambda p: report_run(p["tmp"] / "absent", p["out"]), ["--run", "not exist"]),
    ("broken-summary", lambda p: report_run(p["broken"], p["out"]),
     ["--run", "summary.json", "not valid JSON"]),
    ("out-is-the-audit", lambda p: report_audit(p["db"], p["db"]),
     ["--out", "same file as the input"]),
    ("out-is-the-audit-log", lambda p: report_audit(p["db"], Path(f"{p['db']}-wal")),
     ["--out", "same file as the input"]),
    ("out-is-a-folder", lambda p: report_run(p["run"], p["empty"]), ["--out", "directory"]),
    ("no-bars", lambda p: report_audit(p["db"], p["out"]), ["--run", "no bar"]),
]  # fmt: skip


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("report-cli")
    run, empty, broken = tmp / "run", tmp / "empty", tmp / "broken"
    for folder in (run, empty, broken):
        folder.mkdir()
    (run / "summary.json").write_text('{"config": {}}')  # refused before it is read
    (broken / "summary.json").write_text("{oops")
    (tmp / "notes.txt").write_text("not a database\n")
    store = AuditStore(tmp / "a.db")  # a real audit database with one run
    start = {"command": "strattest", "config": {"capital": 1e5}, "model": {"path": "m"}}
    store.start_run("st-one", start)
    store.append("st-one", [(0, "run_start", start)])  # and no bar
    store.end_run("st-one")
    store.close()
    return {"tmp": tmp, "run": run, "empty": empty, "broken": broken, "db": tmp / "a.db",
            "text": tmp / "notes.txt", "out": tmp / "report.html"}  # fmt: skip


def test_every_bad_invocation_is_one_line_naming_its_flag(paths):
    inputs = [paths["run"] / "summary.json", paths["broken"] / "summary.json", paths["db"],
              paths["text"]]  # fmt: skip
    before = {p: p.read_bytes() for p in inputs}

    def run(case: Case):
        args = [a.format(**{k: str(v) for k, v in paths.items()}) for a in case.args]
        return case, run_script("sentio", *args, cwd=paths["tmp"])

    with ThreadPoolExecutor(max_workers=4) as pool:
        done = list(pool.map(run, CASES))
    for case, result in done:
        try:
            assert_refused(result, *case.says)
        except AssertionError as exc:
            raise AssertionError(f"case {case.id}: {exc}") from None
    assert not paths["out"].exists()
    assert {p: p.read_bytes() for p in inputs} == before


@pytest.mark.parametrize("case", INPROCESS, ids=[c[0] for c in INPROCESS])
def test_the_same_refusals_in_process(paths, case):
    _, call, says = case
    with pytest.raises(OptionError) as caught:
        call(paths)
    for word in says:
        assert word.lower() in str(caught.value).lower(), (word, str(caught.value))
    assert not paths["out"].exists()
