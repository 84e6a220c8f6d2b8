from __future__ import annotations

import hashlib
import json

import pytest

from sentio.core import BarsError, SentioError, build_time, canonical_json, content_hash, rng_for


def test_content_hash_matches_an_independent_sha256_of_sorted_compact_json():
    spec = {"schema_version": "1.0", "features": [{"op": "EMA", "window": 5, "name": "é"}]}
    expected = hashlib.sha256(
        '{"features":[{"name":"é","op":"EMA","window":5}],"schema_version":"1.0"}'.encode()
    ).hexdigest()
    assert content_hash(spec) == "sha256:" + expected
    assert json.loads(canonical_json(spec)) == spec


def test_bars_error_names_file_row_field_and_rule():
    err = BarsError("volume is -1", file="x.csv", row=3, field="volume", rule="negative_volume")
    assert isinstance(err, SentioError)
    text = str(err)
    for part in ("x.csv", "row 3", "'volume'", "negative_volume", "volume is -1"):
        assert part in text


def test_build_time_honours_source_date_epoch(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert build_time().isoformat() == "2023-11-14T22:13:20+00:00"


def test_named_streams_are_independent_and_reproducible():
    assert rng_for(1, "a").integers(0, 2**32) == rng_for(1, "a").integers(0, 2**32)
    assert rng_for(1, "a").integers(0, 2**32) != rng_for(1, "b").integers(0, 2**32)
    with pytest.raises(ValueError):
        rng_for(-1, "a")
