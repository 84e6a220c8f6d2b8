"""``sentio live --config FILE``: a TOML or a JSON file of settings is the same run as the same
flags; a flag on the command line wins over the file; a file may hold no unknown key; and the
settings fingerprint a restart checks follows what changes the trading, not how it is paced.

Oracle: the settings written in the file (or given as flags) are the values the run records
(the ``run_start`` event of the audit, or the checked LiveConfig); the fingerprint's contents
are LiveConfig.fingerprint's own documented contract (strategy, costs, capital, feed kind,
broker, limits; not a replay's speed, the kill file, the poll interval or --dry-run).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentio.core.errors import OptionError
from sentio.live.config import DEFAULTS, LiveConfig, read_config_file
from tests.cli.badinput import run_script
from tests.live.conftest import audit_events

# Every kind of setting at a value other than its default (the model is added per test).
SETTINGS = {
    "feed": "jsonl:-",
    "rule": "adaptive",
    "allocation": "unleveraged_only",
    "fill": "close",
    "capital": 50_000.0,
    "commission_per_share": 0.004,
    "commission_min": 0.5,
    "sec_fee_per_million": 20.0,
    "taf_per_share": 0.0001,
    "half_spread_bp": ["QQQ=1", "TQQQ=2", "PSQ=3", "SQQQ=4"],
    "max_gross_exposure": 1.5,
    "max_order_value": 20_000.0,
    "max_orders_per_minute": 4,
    "max_daily_loss": 2.5,
    "max_gap": 10,
    "dry_run": True,
    "flatten_on_exit": False,
    "kill_file": "stop-now",
    "poll": 0.5,
    "seed": 11,
}


def toml_text(values: dict) -> str:
    """``values`` as TOML (strings, numbers, booleans and lists of strings are all it needs)."""

    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v)  # a JSON string or number is a TOML one for these values

    return "".join(f"{k} = {value(v)}\n" for k, v in values.items())


def as_flags(values: dict) -> list[str]:
    """``values`` as ``sentio live`` flags (a setting's flag is its name with dashes)."""
    out = []
    for name, v in values.items():
        flag = "--" + name.replace("_", "-")
        if name == "flatten_on_exit":
            out.append("--flatten-on-exit" if v else "--no-flatten-on-exit")
        elif isinstance(v, bool):
            out += [flag] if v else []
        elif isinstance(v, list):
            out += [x for item in v for x in (flag, item)]
        else:
            out += [flag, str(v)]
    return out


@pytest.fixture
def model(tmp_path) -> Path:
    """A folder that passes the --model check (the config does not read the model)."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "manifest.json").write_text("{}")
    return folder


def write(folder: Path, name: str, values: dict) -> Path:
    path = folder / name
    path.write_text(json.dumps(values) if name.endswith(".json") else toml_text(values))
    return path


def test_toml_json_and_a_dict_give_the_same_config(tmp_path, model):
    values = {**SETTINGS, "model": str(model)}
    from_toml = LiveConfig.from_settings(
        {**DEFAULTS, **read_config_file(write(tmp_path, "a.toml", values))}
    )
    from_json = LiveConfig.from_settings(
        {**DEFAULTS, **read_config_file(write(tmp_path, "a.json", values))}
    )
    direct = LiveConfig.from_settings({**DEFAULTS, **values})
    assert from_toml == from_json == direct
    # what the file says is what the config holds
    assert from_toml.trading.capital == 50_000.0
    assert from_toml.trading.strategy.rule == "adaptive"
    assert from_toml.trading.allocation == "unleveraged_only"
    assert from_toml.trading.fill == "close"
    assert from_toml.trading.costs.commission_per_share == 0.004
    assert from_toml.trading.costs.half_spread_bp == {"QQQ": 1, "TQQQ": 2, "PSQ": 3, "SQQQ": 4}
    assert from_toml.risk.max_gross_exposure == 1.5
    assert from_toml.risk.max_order_value == 20_000.0
    assert from_toml.risk.max_orders_per_minute == 4
    assert from_toml.risk.max_daily_loss == 2.5
    assert (from_toml.max_gap, from_toml.poll_s, from_toml.trading.seed) == (10, 0.5, 11)
    assert from_toml.dry_run is True and from_toml.flatten_on_exit is False
    assert from_toml.kill_file == Path("stop-now")
    assert from_toml.trading.model == model


def run_start(tmp_path: Path, name: str, *args: str) -> dict:
    """The run_start payload of ``sentio live ARGS`` on an empty jsonl feed."""
    db = tmp_path / f"{name}.db"
    done = run_script("sentio", "live", *args, "--audit", str(db), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    [(_, _, payload)] = audit_events(db, "run_start")
    return payload


def test_a_toml_a_json_file_and_the_flags_are_the_same_run(tmp_path, tiny_artifact):
    values = {**SETTINGS, "model": str(tiny_artifact)}
    runs = {
        "toml": run_start(tmp_path, "toml", "--config", str(write(tmp_path, "c.toml", values))),
        "json": run_start(tmp_path, "json", "--config", str(write(tmp_path, "c.json", values))),
        "flags": run_start(tmp_path, "flags", *as_flags(values)),
    }
    # a file's run also records which file (docs/config.md): its path and sha256
    for kind in ("toml", "json"):
        path = tmp_path / f"c.{kind}"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert runs[kind]["config"].pop("config_file") == {"path": str(path), "sha256": digest}
    assert "config_file" not in runs["flags"]["config"]
    # the nonce makes each live feed's run id its own (client order ids never repeat)
    configs = {
        k: (p["config"], {x: y for x, y in p["live"].items() if x != "nonce"})
        for k, p in runs.items()
    }
    assert configs["toml"] == configs["json"] == configs["flags"]
    config, live = configs["flags"]
    assert config["capital"] == 50_000.0 and config["fill"] == "close"
    assert config["strategy"]["rule"] == "adaptive" and config["allocation"] == "unleveraged_only"
    assert config["costs"]["half_spread_bp"] == {"QQQ": 1, "TQQQ": 2, "PSQ": 3, "SQQQ": 4}
    assert config["costs"]["commission_min"] == 0.5 and config["seed"] == 11
    assert live["risk"] == {
        "max_gross_exposure": 1.5,
        "max_order_value": 20_000.0,
        "max_orders_per_minute": 4,
        "max_daily_loss": 2.5,
    }
    assert live["dry_run"] is True and live["flatten_on_exit"] is False
    assert (live["max_gap"], live["poll_s"], live["kill_file"]) == (10, 0.5, "stop-now")


def test_a_flag_on_the_command_line_wins_over_the_file(tmp_path, tiny_artifact):
    values = {
        "model": str(tiny_artifact),
        "feed": "jsonl:-",
        "rule": "bands",
        "capital": 50_000.0,
        "flatten_on_exit": False,
        "max_daily_loss": 3.0,
    }
    config_file = write(tmp_path, "c.toml", values)
    # --rule fitted and --flatten-on-exit are the defaults: given, they still win
    flags = ["--rule", "fitted", "--capital", "20000", "--flatten-on-exit"]
    payload = run_start(tmp_path, "run", "--config", str(config_file), *flags)
    assert payload["config"]["strategy"]["rule"] == "fitted"
    assert payload["config"]["capital"] == 20_000.0
    assert payload["live"]["flatten_on_exit"] is True
    assert payload["live"]["risk"]["max_daily_loss"] == 3.0  # not given as a flag: the file's


UNKNOWN = ["bogus", "max-daily-loss", "Capital", "config", "audit", "state", "json", "risk"]


@pytest.mark.parametrize("suffix", [".toml", ".json"])
@pytest.mark.parametrize("key", UNKNOWN)
def test_a_config_file_may_not_hold_an_unknown_key(tmp_path, key, suffix):
    # `config`, `audit`, `state`, `json`: flags of the command, not settings of the run
    value = {"max_daily_loss": 3} if key == "risk" else 3
    if suffix == ".toml" and key == "risk":
        path = tmp_path / "c.toml"
        path.write_text('feed = "jsonl:-"\n[risk]\nmax_daily_loss = 3\n')
    else:
        path = write(tmp_path, f"c{suffix}", {"feed": "jsonl:-", key: value})
    with pytest.raises(OptionError) as caught:
        read_config_file(path)
    message = str(caught.value)
    assert message.startswith("--config:") and repr(key) in message and str(path) in message


def test_every_setting_a_file_may_hold_is_a_flag_of_sentio_live():
    done = run_script("sentio", "live", "--help", env={"COLUMNS": "400"})
    assert done.returncode == 0
    for name in DEFAULTS:
        flag = "--" + name.replace("_", "-")
        assert flag in done.stdout, flag


# -- the settings fingerprint -------------------------------------------------------------

BASE = {**DEFAULTS, "feed": "replay:builtin"}


def fingerprint(**change) -> str:
    return LiveConfig.from_settings({**BASE, **change}).fingerprint()


CHANGES_TRADING = {
    "rule": {"rule": "bands"},
    "allocation": {"allocation": "leveraged_only"},
    "fill": {"fill": "close"},
    "capital": {"capital": 50_000.0},
    "commission": {"commission_per_share": 0.001},
    "commission-min": {"commission_min": 2.0},
    "sec-fee": {"sec_fee_per_million": 10.0},
    "half-spread": {"half_spread_bp": ["QQQ=1", "TQQQ=1", "PSQ=1", "SQQQ=1"]},
    "gross-exposure": {"max_gross_exposure": 1.0},
    "order-value": {"max_order_value": 1000.0},
    "orders-per-minute": {"max_orders_per_minute": 2},
    "daily-loss": {"max_daily_loss": 3.0},
    "feed-kind": {"feed": "jsonl:-"},
    "broker": {"broker": "alpaca-paper", "feed": "alpaca"},  # a replay takes the paper broker
    "blocks": {"blocks": 2},
}
CHANGES_PACE = {
    "replay-speed": {"feed": "replay:builtin@60"},
    "replay-speed-max": {"feed": "replay:builtin@max"},
    "kill-file": {"kill_file": "stop-now"},
    "poll": {"poll": 5.0},
    "dry-run": {"dry_run": True},
    "flatten-on-exit": {"flatten_on_exit": False},  # how a run ends, not how it trades
}


@pytest.mark.parametrize("name", sorted(CHANGES_TRADING))
def test_the_fingerprint_changes_with_what_trades(name):
    assert fingerprint(**CHANGES_TRADING[name]) != fingerprint()


@pytest.mark.parametrize("name", sorted(CHANGES_PACE))
def test_the_fingerprint_does_not_change_with_the_pace_or_the_kill_file(name):
    assert fingerprint(**CHANGES_PACE[name]) == fingerprint()


def test_the_fingerprint_does_not_change_with_the_model_path(tmp_path):
    paths = []
    for name in ("one", "two"):  # the manifest hash is checked apart, not the path
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text("{}")
        paths.append(str(tmp_path / name))
    assert fingerprint(model=paths[0]) == fingerprint(model=paths[1])


@settings(max_examples=50, deadline=None)
@given(speed=st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False))
def test_no_replay_speed_changes_the_fingerprint(speed):
    assert fingerprint(feed=f"replay:builtin@{speed!r}") == fingerprint()
