"""The built-in synthetic market ("MarS"), calibrated to measured facts of real QQQ."""

from sentio.data.synth.calibrate import calibrate
from sentio.data.synth.facts import abs_acf, beta, excess_kurtosis, session_returns, stylized_facts
from sentio.data.synth.generate import (
    REGIME_CHOICES,
    SIBLINGS,
    Market,
    SynthConfig,
    generate,
    write_market,
)
from sentio.data.synth.params import REGIMES, MarketParams, load_params
from sentio.data.synth.planted import planted_accuracy

__all__ = [
    "Market",
    "MarketParams",
    "REGIMES",
    "REGIME_CHOICES",
    "SIBLINGS",
    "SynthConfig",
    "abs_acf",
    "beta",
    "calibrate",
    "excess_kurtosis",
    "generate",
    "load_params",
    "planted_accuracy",
    "session_returns",
    "stylized_facts",
    "write_market",
]
