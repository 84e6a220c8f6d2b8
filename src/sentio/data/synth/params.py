"""The fitted numbers of the synthetic market (``calibration.json``), validated by pydantic.

They are numbers measured from real QQQ bars by ``sentio data calibrate`` (no vendor data):
see docs/synthetic_market.md for what each one means and how it is measured.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sentio.core.errors import SynthError

REGIMES = ("bull", "bear", "sideways", "volatile")
SHIPPED = "calibration.json"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RegimeParams(_Frozen):
    names: tuple[str, ...] = Field(description="regime names, in matrix order")
    share: tuple[float, ...] = Field(description="fraction of calibration days in each regime")
    drift_per_min: tuple[float, ...] = Field(description="mean log return per minute (drift on)")
    vol_per_min: tuple[float, ...] = Field(description="typical day volatility per minute")
    vol_dispersion: tuple[float, ...] = Field(description="sd of log day volatility in regime")
    transition: tuple[tuple[float, ...], ...] = Field(description="P(next day | day), rows sum 1")

    @model_validator(mode="after")
    def _shapes(self) -> RegimeParams:
        k = len(self.names)
        if k < 4:
            raise ValueError(f"need at least 4 regimes, got {k}")
        for name in ("share", "drift_per_min", "vol_per_min", "vol_dispersion"):
            if len(getattr(self, name)) != k:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries, expected {k}")
        if len(self.transition) != k or any(len(row) != k for row in self.transition):
            raise ValueError(f"transition must be {k}x{k}")
        for row in self.transition:
            if abs(sum(row) - 1.0) > 1e-9 or min(row) < 0:
                raise ValueError("each transition row must be probabilities summing to 1")
        return self


class MarketParams(_Frozen):
    """Everything the generator needs, as measured from real 1-minute QQQ bars."""

    schema_version: str = "sentio.mars/1"
    sources: tuple[dict, ...] = Field(default=(), description="files measured: name and sha256")
    sessions: int = Field(description="sessions measured")
    vol_profile: tuple[float, ...] = Field(description="relative vol per minute of session (390)")
    volume_profile: tuple[float, ...] = Field(description="relative volume per minute (390)")
    garch_alpha: float = Field(ge=0, lt=1, description="GARCH(1,1) reaction to the last shock")
    garch_beta: float = Field(ge=0, lt=1, description="GARCH(1,1) persistence")
    student_df: float = Field(gt=2, description="degrees of freedom of the shocks")
    regimes: RegimeParams
    gap_std: float = Field(ge=0, description="sd of the overnight log gap")
    gap_mean: float = Field(description="mean overnight log gap (drift on)")
    gap_df: float = Field(gt=2, description="degrees of freedom of the overnight gap")
    volume_level: float = Field(gt=0, description="median mean bar volume of a day (shares)")
    volume_ar1: float = Field(gt=-1, lt=1, description="AR(1) of log volume around its profile")
    volume_noise_sd: float = Field(ge=0, description="innovation sd of that AR(1)")
    volume_vol_elasticity: float = Field(description="d log(day volume) / d log(day vol)")

    @model_validator(mode="after")
    def _check(self) -> MarketParams:
        if len(self.vol_profile) != 390 or len(self.volume_profile) != 390:
            raise ValueError("profiles need 390 minutes")
        if self.garch_alpha + self.garch_beta >= 1:
            raise ValueError("garch_alpha + garch_beta must be < 1")
        return self

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=1, sort_keys=True) + "\n"


def load_params(path: str | Path | None = None) -> MarketParams:
    """The shipped calibration, or the one in ``path``."""
    if path is None:
        text = resources.files("sentio.data.synth").joinpath(SHIPPED).read_text("utf-8")
        return MarketParams.model_validate_json(text)
    if Path(path).exists() and not Path(path).is_file():  # a FIFO would block the read forever
        raise SynthError(
            f"{path}: cannot read the calibration: not a regular file (a directory, FIFO or device)"
        )
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise SynthError(f"{path}: cannot read the calibration: {reason}") from exc
    try:
        return MarketParams.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "the file"
        raise SynthError(f"{path}: field {where}: {first.get('msg', 'invalid')}") from exc
