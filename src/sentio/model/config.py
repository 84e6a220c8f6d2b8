"""The TFA network's configuration and presets (torch-free: artifacts and loaders read it).

>>> preset("quick").d_model, preset("default", nhead=4).nhead
(64, 4)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from sentio.core.errors import SentioError, excerpt


class ModelConfigError(SentioError):
    """A model configuration that cannot be built (e.g. d_model not divisible by nhead)."""


# Upper bounds: a typo such as --d-model 1000000 must fail at once, not allocate without end.
LIMITS = {"d_model": 4096, "nhead": 64, "num_layers": 64, "seq_len": 4096, "ff_mult": 16}
MAX_EXPERTS = 16  # regime_experts: at most this many regimes, one expert logit each
FLAGS = {
    "d_model": "--d-model",
    "nhead": "--nhead",
    "num_layers": "--num-layers",
    "seq_len": "--sequence-length",
}


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
    # K regime experts: the head gives K logits, mixed by the last K input columns of the
    # decision row (the regime probabilities of --multi-regime); 0: one plain head
    regime_experts: int = 0

    def __post_init__(self) -> None:
        for name, high in LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
                raise ModelConfigError(
                    f"{FLAGS.get(name, name)}: must be an integer in [1, {high}], got {value!r}"
                )
        if self.d_model % self.nhead:
            raise ModelConfigError(
                f"d_model {self.d_model} is not divisible by nhead {self.nhead} (--d-model/--nhead)"
            )
        if not 0 <= self.dropout < 1:
            raise ModelConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0 < self.clip <= 1e6:
            raise ModelConfigError(f"clip must be in (0, 1e6], got {self.clip}")
        k = self.regime_experts
        if isinstance(k, bool) or not isinstance(k, int) or not (k == 0 or 2 <= k <= MAX_EXPERTS):
            raise ModelConfigError(
                f"regime_experts: must be 0 (one plain head) or an integer in [2, {MAX_EXPERTS}], "
                f"got {k!r}"
            )

    def to_dict(self) -> dict:
        """The fields as a dict; ``regime_experts`` only when set, so a plain config's dict
        (stored in artifacts and compared by warm starts) is the one written before the
        field existed."""
        out = asdict(self)
        if not self.regime_experts:
            del out["regime_experts"]
        return out


PRESETS = {
    "quick": TFAConfig(d_model=64, nhead=4, num_layers=2, seq_len=48),
    "default": TFAConfig(d_model=128, nhead=8, num_layers=3, seq_len=48),
}


def preset(name: str, **overrides: int | float | None) -> TFAConfig:
    """A preset with any field overridden (None leaves the preset's value)."""
    if name not in PRESETS:
        raise ModelConfigError(
            f"--preset: unknown preset {excerpt(name)}; presets: {', '.join(PRESETS)}"
        )
    known = {f.name for f in fields(TFAConfig)}
    unknown = set(overrides) - known
    if unknown:
        raise ModelConfigError(f"unknown model fields {sorted(unknown)}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})


__all__ = ["MAX_EXPERTS", "PRESETS", "ModelConfigError", "TFAConfig", "preset"]
