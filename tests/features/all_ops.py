"""A spec that runs every registered op (two parameter settings where it has a window); the
REGIME op, which only a spec's ``regimes`` block writes, through a rules block on short
windows."""

from __future__ import annotations

from sentio.features import REGISTRY, parse_spec
from sentio.features.spec import FeatureSpec

# Settings per parameter: the op's default (or a typical value when it has none), then another.
SETTINGS = {"window": (14, 3), "k": (2.0, 1.5), "d_period": (3, 5)}


def all_ops_entries() -> list[dict]:
    entries = []
    for op in REGISTRY.values():
        if op.name == "REGIME":
            continue
        sources = ("close", "logret") if op.inputs == "src" else (None,)
        for variant in range(2 if op.params else 1):
            for source in sources:
                entry: dict = {"name": f"{op.name}_{variant}_{source}", "op": op.name}
                if source:
                    entry["source"] = source
                for key, default in op.params.items():
                    if key in ("fast", "slow", "signal"):
                        entry[key] = (
                            default if variant == 0 else {"fast": 5, "slow": 13, "signal": 4}[key]
                        )
                    elif variant == 0 and default is not None:
                        entry[key] = default
                    else:
                        entry[key] = SETTINGS[key][variant]
                entries.append(entry)
    return entries


# Cut points inside the range of 1-minute volatility and 30-bar returns of the test bars.
REGIMES = {
    "labeller": "rules",
    "vol_window": 14,
    "trend_window": 30,
    "rules": {"vol_cut": 0.002, "trend_low": -0.002, "trend_high": 0.002},
}


def all_ops_spec() -> FeatureSpec:
    return parse_spec({"features": all_ops_entries(), "regimes": REGIMES}, origin="all_ops")
