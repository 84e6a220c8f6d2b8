"""Spec loading, validation errors, default names and the content hash (architecture s. 4)."""

from __future__ import annotations

import hashlib
import json

import pytest

from sentio.core.errors import SpecError
from sentio.features import SHIPPED, load_spec, parse_spec
from sentio.features.spec import default_name


def minimal(**overrides) -> dict:
    feature = {"name": "e", "op": "EMA", "source": "close", "window": 5}
    feature.update(overrides)
    return {"features": [feature]}


def macd(**params) -> dict:
    return {"features": [{"name": "m", "op": "MACD_LINE", **params}]}


def test_hash_is_sha256_of_canonical_json_without_content_hash():
    raw = {"schema_version": "1.0", "features": [{"op": "RSI", "window": 14, "name": "r"}]}
    text = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    expected = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    assert parse_spec(raw).content_hash == expected
    # key order, whitespace and an embedded content_hash do not change it
    reordered = json.loads(json.dumps(raw, indent=4))
    reordered = {"features": reordered["features"], "schema_version": "1.0"}
    assert parse_spec(reordered).content_hash == expected
    assert parse_spec({**raw, "content_hash": expected}).content_hash == expected
    # any value does
    raw["features"][0]["window"] = 15
    assert parse_spec(raw).content_hash != expected


def test_a_stale_content_hash_is_refused():
    with pytest.raises(SpecError, match="does not match"):
        parse_spec({**minimal(), "content_hash": "sha256:" + "0" * 64})


def test_to_json_round_trips_with_its_hash():
    spec = load_spec("feature_spec_55_minimal")
    again = parse_spec(json.loads(spec.to_json()))
    assert again.content_hash == spec.content_hash and again.names == spec.names


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_specs_load_by_name_and_by_path(name, tmp_path):
    spec = load_spec(name)
    path = tmp_path / "copy.json"
    path.write_text(json.dumps(spec.raw))
    assert load_spec(path).content_hash == spec.content_hash
    assert len(set(spec.names)) == len(spec.names)


def test_default_names_follow_op_source_window_k():
    assert default_name({"op": "EMA", "source": "close", "window": 20}) == "EMA_close_20_"
    assert default_name({"op": "OBV"}) == "OBV___"
    spec = parse_spec({"features": [{"op": "ZWIN", "source": "logret", "window": 5}]})
    assert spec.names == ("ZWIN_logret_5_",)


def test_original_defaults_and_aliases():
    spec = parse_spec({"features": [{"op": "EMA"}, {"op": "RSI", "source": "hlc", "name": "r"}]})
    ema, rsi = spec.features
    assert ema.params == {"window": 20} and ema.source == "close"
    assert rsi.params == {"window": 14} and rsi.source == "close"


@pytest.mark.parametrize(
    ("raw", "feature", "field", "words"),
    [
        (minimal(op="EMX"), 0, "op", "unknown op 'EMX'"),
        (minimal(source="vwap"), 0, "source", "unknown source 'vwap'"),
        (minimal(window=0), 0, "window", "positive integer up to 100,000 bars, got 0"),
        (minimal(window=-3), 0, "window", "positive integer up to 100,000 bars, got -3"),
        # issue 12: each of these allocated (or looped) for minutes before failing, or crashed
        (minimal(window=10**9), 0, "window", "up to 100,000 bars, got 1000000000"),
        (minimal(window=2**64), 0, "window", "up to 100,000 bars, got 18446744073709551616"),
        (minimal(window=1e12), 0, "window", "valid integer"),
        (macd(fast=12, slow=10**6), 0, "slow", "up to 100,000 bars"),
        (
            {"features": [{"op": "EMA", "name": "n" * 5000}]},
            0,
            "name",
            "at most 200 characters, got 5,000",
        ),
        (
            {"features": [{"op": "EMA", "window": w} for w in range(1, 1002)]},
            None,
            "features",
            "1,001 features; a spec has at most 1,000",
        ),  # fmt: skip
        (
            {"features": [{"op": "EMA", "x": [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}]},
            None,
            None,
            "nested 19 levels deep",
        ),  # fmt: skip
        (minimal(window=2.5), 0, "window", "valid integer"),
        (minimal(window="5"), 0, "window", "valid integer"),
        (minimal(window=None, op="LOGRET_N"), 0, "window", "needs 'window'"),
        (macd(fast=26, slow=12), 0, "fast", "fast < slow"),
        (minimal(op=None), 0, "op", "valid string"),
        ({"features": [{"op": "EMA"}, {"op": "EMA"}]}, 1, "name", "duplicate name 'EMA___'"),
        (
            {**minimal(), "alignment_policy": {"emit_from_index": -1}},
            None,
            "alignment_policy.emit_from_index",
            "must be 0 to 100,000",
        ),
        (
            {**minimal(), "alignment_policy": {"emit_from_index": "64"}},
            None,
            "alignment_policy.emit_from_index",
            "valid integer",
        ),
        (
            {**minimal(), "alignment_policy": {"pad_value": float("nan")}},
            None,
            "alignment_policy.pad_value",
            "finite",
        ),
        ({**minimal(), "dtype": "float64"}, None, "dtype", "float32"),
        ({"features": []}, None, "features", "empty"),
        ({"features": "EMA"}, None, "features", "valid list"),
        # issue 12, round 2: each of these was accepted, most with a silent default
        (minimal(windw=5), 0, "windw", "did you mean 'window'"),
        ({**minimal(), "featurs": []}, None, "featurs", "did you mean 'features'"),
        (
            {**minimal(), "alignment_policy": {"emit_from": 5}},
            None,
            "alignment_policy.emit_from",
            "did you mean 'emit_from_index'",
        ),
        ({"features": [{"op": "IDENT", "window": 5}]}, 0, "window", "IDENT does not take"),
        ({**minimal(), "schema_version": "99.0"}, None, "schema_version", "'99.0'"),
        (minimal(op="BOLLINGER_UPPER", k=1e308), 0, "k", "at most 100"),
        (minimal(op="BOLLINGER_UPPER", k=-5), 0, "k", "> 0"),
        (minimal(name="ts"), 0, "name", "'ts' is reserved"),
        (minimal(name="ready"), 0, "name", "'ready' is reserved"),
        (minimal(name="a\ud800b"), 0, "name", "surrogate"),
        (minimal(name="a\nerror: b"), 0, "name", "control"),
        (minimal(name=""), 0, "name", "empty"),
        (
            {**minimal(), "alignment_policy": {"pad_value": 1e300}},
            None,
            "alignment_policy.pad_value",
            "fit float32",
        ),
    ],
)
def test_bad_specs_name_the_feature_field_and_rule(raw, feature, field, words):
    with pytest.raises(SpecError) as caught:
        parse_spec(raw, origin="bad.json")
    err = caught.value
    assert (err.file, err.feature, err.field) == ("bad.json", feature, field)
    assert words in str(err) and str(err).startswith("bad.json: ")


def test_our_description_extension_is_accepted_and_hashed():
    with_text = parse_spec({**minimal(), "description": "why these features"})
    assert with_text.content_hash != parse_spec(minimal()).content_hash


def test_a_key_written_twice_is_refused_not_last_one_wins(tmp_path):
    path = tmp_path / "twice.json"
    path.write_text('{"features": [{"op": "EMA", "window": 3, "window": 70000}]}')
    with pytest.raises(SpecError, match="'window' is written twice"):
        load_spec(path)


def test_files_that_are_not_specs(tmp_path):
    with pytest.raises(SpecError, match="no such spec file; shipped specs are"):
        load_spec(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{features: [}")
    with pytest.raises(SpecError, match="not valid JSON"):
        load_spec(broken)
    listed = tmp_path / "list.json"
    listed.write_text("[]")
    with pytest.raises(SpecError, match="JSON object"):
        load_spec(listed)
    with pytest.raises(SpecError, match="is not a file"):
        load_spec(tmp_path)
    deep = tmp_path / "deep.json"  # 100,000 levels: beyond the JSON parser's recursion limit
    deep.write_text('{"features": [{"op": "EMA", "x": ' + "[" * 100_000 + "]" * 100_000 + "}]}")
    with pytest.raises(SpecError, match="nested too deeply"):
        load_spec(deep)
    huge = tmp_path / "huge.json"
    huge.write_text('{"features": [{"op": "EMA"}], "pad": "' + "x" * 2_000_000 + '"}')
    with pytest.raises(SpecError, match="a spec is at most 1,000,000"):
        load_spec(huge)
