"""The TFA network's configuration and presets (torch-free: artifacts and loaders read it).

>>> preset("quick").d_model, preset("default", nhead=4).nhead
(64, 4)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from sentio.core.errors import SentioError


class ModelConfigError(SentioError):
    """A model configuration that cannot be built (e.g. d_model not divisible by nhead)."""


@dataclass(frozen=True)
class TFAConfig:
    """Shape of the TFA network. Every field has a default and a unit."""

    d_model: int = 128  # width of the token embedding
    nhead: int = 8  # attention heads (d_model must be divisible by it)
    num_layers: int = 3  # pre-norm transformer blocks
    seq_len: int = 48  # T: feature rows per window, the last one is the decision bar
    ff_mult: int = 4  # MLP hidden width = ff_mult * d_model
    dropout: float = 0.1  # dropout in attention, MLP and embedding while training
    clip: float = 10.0  # normalised features are clipped to [-clip, clip] inside the network

    def __post_init__(self) -> None:
        for name in ("d_model", "nhead", "num_layers", "seq_len", "ff_mult"):
            if getattr(self, name) <= 0:
                raise ModelConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.d_model % self.nhead:
            raise ModelConfigError(
                f"d_model {self.d_model} is not divisible by nhead {self.nhead} (--d-model/--nhead)"
            )
        if not 0 <= self.dropout < 1:
            raise ModelConfigError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    "quick": TFAConfig(d_model=64, nhead=4, num_layers=2, seq_len=48),
    "default": TFAConfig(d_model=128, nhead=8, num_layers=3, seq_len=48),
}


def preset(name: str, **overrides: int | float | None) -> TFAConfig:
    """A preset with any field overridden (None leaves the preset's value)."""
    if name not in PRESETS:
        raise ModelConfigError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    known = {f.name for f in fields(TFAConfig)}
    unknown = set(overrides) - known
    if unknown:
        raise ModelConfigError(f"unknown model fields {sorted(unknown)}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})


__all__ = ["PRESETS", "ModelConfigError", "TFAConfig", "preset"]
