"""Issue 17's acceptance test: the report opened in a real browser (headless Chromium, the
system's, through Playwright) makes no network request and logs no error, draws every plot,
and shows as its last equity the run's final equity taken from another record of the run
(summary.json's block returns; the audit's block_end events). A screenshot of each is
written to the test's folder and, when SENTIO_SCREENSHOT_DIR is set, there too.

The run: one tiny ``sentio strattest --out DIR --audit DB`` through the console script;
``sentio report --audit`` through the console script, the run folder's report in-process.
The same run first checks what the two sources give the report against what strattest
recorded (no browser needed): the audit's costs, derived from its fills, are the run
folder's block table; its verdict is summary.json's.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sentio.report import report_run
from sentio.report.audited import from_audit
from sentio.report.sources import from_run_folder
from tests.cli.badinput import run_script

pytest.importorskip("bokeh", reason="the report draws with Bokeh: pip install 'sentio[report]'")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no system Chromium (apt-get install chromium; .ci/run does)"
)
# The plots each report makes (sentio.report.figures): the audit adds the parity panel.
RUN_PLOTS = ["equity", "equity_blocks", "drawdown", "exposure", "returns", "price",
             "probability", "histogram", "calibration", "costs", "turnover"]  # fmt: skip
EXPECTED = {"run": RUN_PLOTS, "audit": [*RUN_PLOTS[:8], "calibration", "parity", *RUN_PLOTS[9:]]}


@pytest.fixture(scope="module")
def reports(tiny_artifact, tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("report-browser")
    done = run_script(
        "sentio", "strattest", "tfa", "--model", str(tiny_artifact), "--blocks", "2",
        "--block-size", "200", "--rule", "adaptive", "--no-cache", "--out", str(tmp / "run"),
        "--audit", str(tmp / "a.db"), cwd=tmp,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    done = run_script("sentio", "report", "--audit", str(tmp / "a.db"), "--out",
                      str(tmp / "audit.html"), cwd=tmp)  # fmt: skip
    assert done.returncode == 0 and "wrote" in done.stdout, done.stderr[-2000:]
    report_run(tmp / "run", tmp / "run.html")
    return {"run": tmp / "run.html", "audit": tmp / "audit.html", "folder": tmp}


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the browser test drives Chromium with playwright (dev)"
    )
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def final_equity(kind: str, folder: Path) -> float:
    """The run's final equity from a record the page was not drawn from directly: the block
    returns strattest wrote into summary.json, or each block_end's equity in the audit."""
    if kind == "run":
        doc = json.loads((folder / "run" / "summary.json").read_text())
        growth = [1 + b["return_pct"] / 100 for b in doc["blocks"]]
        return doc["config"]["capital"] * float(np.prod(growth))
    with sqlite3.connect(folder / "a.db") as db:
        rows = db.execute("SELECT payload FROM events WHERE kind IN ('run_start', 'block_end') "
                          "ORDER BY seq").fetchall()  # fmt: skip
    start, *ends = (json.loads(r[0]) for r in rows)
    capital = start["config"]["capital"]
    return capital * float(np.prod([e["equity_end"] / capital for e in ends]))


def test_the_audit_gives_the_report_what_strattest_recorded(reports):
    """From the events alone (each fill split again, the market replayed for the
    half-spread and buy-and-hold), the audit's block costs and turnover are the ones
    strattest wrote into blocks.parquet, its run costs and verdict summary.json's; both
    sources draw the same chained equity and the same replayed buy-and-hold."""
    folder = reports["folder"]
    audit, run = from_audit(folder / "a.db"), from_run_folder(folder / "run")
    recorded = pd.read_parquet(folder / "run" / "blocks.parquet")
    for column in ("commissions", "regulatory_fees", "spread", "costs", "turnover"):
        got = audit.blocks[column].to_numpy()
        assert got == pytest.approx(recorded[column].to_numpy(), rel=1e-9), column
    summary = json.loads((folder / "run" / "summary.json").read_text())
    for key, value in audit.costs["strategy"].items():
        assert value == pytest.approx(summary["costs"]["strategy"][key], rel=1e-9), key
    assert audit.verdict["text"] == summary["verdict"]["text"]
    np.testing.assert_array_equal(audit.stitched_equity(), run.stitched_equity())
    hold = audit.bars["equity_buy_and_hold"].to_numpy()
    assert np.isfinite(hold).all()
    np.testing.assert_array_equal(hold, run.bars["equity_buy_and_hold"].to_numpy())
    ends = np.r_[np.flatnonzero(np.diff(audit.bars["block"]) != 0), len(hold) - 1]
    got = 100 * (hold[ends] / audit.capital - 1)
    assert got == pytest.approx(recorded["buy_and_hold_return_pct"].to_numpy(), abs=1e-9)
    assert audit.parity["identical"] and audit.parity["bars"] == len(audit.bars)


@needs_chromium
@pytest.mark.parametrize("kind", ["run", "audit"])
def test_the_report_opens_offline_draws_every_plot_and_ends_at_the_final_equity(
    browser, reports, kind, tmp_path
):
    path = reports[kind]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_function(
        "() => window.Bokeh && Bokeh.documents.length === 1 && Bokeh.documents[0].is_idle",
        timeout=30_000,
    )
    # every plot made is a root of the document, and its view has finished drawing
    drawn = page.evaluate(
        "() => Array.from(Bokeh.index).filter(v => v.model.name)"
        ".map(v => [v.model.name, v.has_finished()])"
    )
    assert [name for name, _ in drawn] == [f"plot_{n}" for n in EXPECTED[kind]]
    assert all(finished for _, finished in drawn), drawn
    canvases = page.locator(".bk-Canvas")  # one per plot, inside Bokeh's shadow roots
    assert canvases.count() == len(EXPECTED[kind])
    for i in range(canvases.count()):
        box = canvases.nth(i).bounding_box()
        assert box and box["width"] > 100 and box["height"] > 100, (i, box)
    last = page.evaluate(
        "() => { const s = Bokeh.documents[0].get_model_by_name('equity');"
        " return s.data.equity[s.data.equity.length - 1]; }"
    )
    assert last == pytest.approx(final_equity(kind, reports["folder"]), rel=1e-9)
    page.screenshot(path=str(tmp_path / f"{kind}.png"), full_page=True)
    if os.environ.get("SENTIO_SCREENSHOT_DIR"):
        keep = Path(os.environ["SENTIO_SCREENSHOT_DIR"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / f"{kind}.png", keep / f"report-{kind}.png")
    page.close()
    assert errors == []
    assert requests == [path.as_uri()]  # the file itself, nothing else
