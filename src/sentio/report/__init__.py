"""Self-contained HTML reports of strattest, walk-forward and audited runs (issue 17).

``report_strattest`` (a result in memory), ``report_run`` (a ``strattest --out DIR`` folder
or a walk-forward run folder) and ``report_audit`` (an audited run) each read their source
into one :class:`~sentio.report.data.ReportData` (``sources``, ``audited``), draw it
(``figures``: Bokeh) and write one HTML file with every script and number inline (``page``),
atomically: a kill leaves the old file or the complete new one. An output that is a
directory, in a folder that cannot be written, or one of the source's own files is refused
before anything is read; one that is any other file the report reads (the model and data a
run folder's report replays: ``ReportData.inputs``) before anything is written
(docs/report.md).
"""

from __future__ import annotations

from pathlib import Path

from sentio.core.files import check_output, write_bytes_atomic
from sentio.report.data import ReportData, ReportError


def report_strattest(result, out: Path, *, by_regime: dict | None = None) -> Path:
    """Write the report of a historical strattest result (``run_strattest``'s) to ``out``;
    ``by_regime``: its ``strattest_by_regime(...).to_dict()``, drawn as a table."""
    from sentio.report.page import require_bokeh
    from sentio.report.sources import from_result, replay_inputs

    model = Path(result.model)
    out = check_output(out, model, *replay_inputs(model, result.config.data), flag="--report")
    require_bokeh()
    return write(from_result(result, by_regime), out, flag="--report")


def report_run(run: Path, out: Path) -> Path:
    """Write the report of a run folder (``strattest --out DIR``, or a walk-forward run's
    folder) to ``out``."""
    from sentio.report.page import require_bokeh
    from sentio.report.sources import from_run_folder

    run = Path(run)
    out = check_output(out, run, *_files(run), flag="--out")
    require_bokeh()
    return write(from_run_folder(run), out)


def report_audit(db: Path, out: Path, run_id: str | None = None) -> Path:
    """Write the report of the audited run ``run_id`` (default: the newest) in the audit
    database ``db`` to ``out``."""
    from sentio.report.audited import from_audit
    from sentio.report.page import require_bokeh

    db = Path(db)
    sides = [Path(f"{db}-wal"), Path(f"{db}-shm")]
    out = check_output(out, db, *sides, flag="--out")
    require_bokeh()
    return write(from_audit(db, run_id), out)


def write(data: ReportData, out: Path, flag: str = "--out") -> Path:
    """Render ``data`` and write it to ``out`` atomically, unless ``out`` is one of the files
    read to make it (``data.inputs``); returns ``out``."""
    from sentio.report.page import render

    out = check_output(out, *data.inputs, flag=flag)
    page, _ = render(data)
    return write_bytes_atomic(out, page.encode("utf-8"), flag=flag)


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []


__all__ = ["ReportData", "ReportError", "report_audit", "report_run", "report_strattest", "write"]
