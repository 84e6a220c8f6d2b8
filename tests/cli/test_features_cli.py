"""``sentio features ...`` as a user runs it (subprocess: exit code, stdout, stderr)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sentio.data import read_bars
from sentio.features import REGISTRY, FeatureEngine
from sentio.features.checks import same_bits
from tests.cli.test_cli import run

DOCS_OPS = Path(__file__).resolve().parents[2] / "docs" / "ops.md"


def strict_json(text: str):
    """Parse as RFC 8259 JSON: a bare NaN or Infinity is an error, not a float."""

    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    out = tmp_path_factory.mktemp("m")
    done = run("data", "synth", "--out", str(out), "--days", "12", "--seed", "3")
    assert done.returncode == 0, done.stderr
    return out


def test_list_shows_every_op_and_docs_ops_md_is_its_markdown():
    done = run("features", "list", "--json")
    assert done.returncode == 0, done.stderr
    ops = {row["op"] for row in strict_json(done.stdout)}
    assert {"EMA", "RSI", "ZWIN", "ADX", "VWAP_DIST", "REL_VOLUME"} <= ops
    assert ops == set(REGISTRY)
    markdown = run("features", "list", "--markdown").stdout
    assert markdown in DOCS_OPS.read_text(), "docs/ops.md is stale: regenerate its table"


def test_hash_prints_the_content_hash(tmp_path):
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"features": [{"op": "EMA", "window": 3}]}, indent=3))
    done = run("features", "hash", str(spec))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == FeatureEngine(str(spec)).content_hash


def test_compute_writes_what_the_engine_computes(market, tmp_path):
    out = tmp_path / "f.parquet"
    done = run(
        "features",
        "compute",
        "--spec",
        "intraday_default",
        "--data",
        str(market / "QQQ.parquet"),
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    table = pq.read_table(out)
    meta = json.loads(table.schema.metadata[b"sentio.features"])
    engine = FeatureEngine("intraday_default")
    assert meta["spec_hash"] == engine.content_hash and meta["feature_names"] == list(engine.names)
    frame = table.to_pandas()
    expected = engine.compute(read_bars(market / "QQQ.parquet"))
    assert same_bits(frame[list(engine.names)].to_numpy(), expected.values).all()
    assert (frame["ready"].to_numpy() == expected.ready).all()
    # REL_VOLUME(10) needs 11 session starts: the first 10 of 12 sessions are not ready
    assert not frame["ready"][: 10 * 390].any() and frame["ready"][10 * 390 :].all()


def test_check_passes_on_good_data_and_reports_json(market):
    done = run(
        "features",
        "check",
        "--spec",
        "feature_spec_55_minimal",
        "--data",
        str(market / "TQQQ.parquet"),
        "--samples",
        "5",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    results = strict_json(done.stdout)["results"]
    assert [r["check"] for r in results] == [
        "stream == batch",
        "prefix (no look-ahead)",
        "warm-up",
        "save / restore",
    ]
    assert all(r["passed"] for r in results)


def test_bad_spec_is_a_message_not_a_traceback(tmp_path, market):
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({"features": [{"op": "EMA", "window": 0}]}))
    done = run(
        "features",
        "compute",
        "--spec",
        str(spec),
        "--data",
        str(market / "QQQ.parquet"),
        "--out",
        str(tmp_path / "x.parquet"),
    )
    assert done.returncode == 2
    assert "bad.json: feature 0, field 'window'" in done.stderr
    assert "Traceback" not in done.stderr
    missing = run("features", "hash", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "shipped specs are" in missing.stderr
