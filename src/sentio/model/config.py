"""The TFA network's configuration and presets (torch-free: artifacts and loaders read it).

>>> preset("quick").d_model, preset("default", nhead=4).nhead, preset("causal-quick").causal
(64, 4, True)
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
    # "window": every bar runs its own window of T rows through the network (the original
    # system's model, sentio.model.tfa); "causal": every row attends to itself and the T-1 rows
    # before it at every layer, so serving keeps per-layer caches and a bar costs one row
    # (sentio.model.causal, docs/model.md "The causal presets")
    family: str = "window"

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

        if self.family not in FAMILIES:
            raise ModelConfigError(
                f"family: must be one of {', '.join(FAMILIES)}, got {excerpt(self.family)}"
            )

    @property
    def causal(self) -> bool:
        return self.family == "causal"

    @property
    def reach(self) -> int:
        """Feature rows that decide one bar's logit: T for a window model; L (T - 1) + 1
        for a causal one (each layer looks T - 1 rows further back). Embargoes use it.

        >>> TFAConfig(seq_len=48).reach, TFAConfig(seq_len=48, num_layers=2, family="causal").reach
        (48, 95)
        """
        return context_rows(self.num_layers, self.seq_len) if self.causal else self.seq_len

    def to_dict(self) -> dict:
        """The fields as a dict; ``regime_experts`` and ``family`` only when set, so a plain
        window config's dict (stored in artifacts and compared by warm starts) is the one
        written before the fields existed."""
        out = asdict(self)
        if not self.regime_experts:
            del out["regime_experts"]
        if self.family == "window":
            del out["family"]
        return out


def context_rows(num_layers: int, seq_len: int) -> int:
    """Feature rows that decide a causal model's logit of a row: L (T - 1) + 1 (each layer
    reaches T - 1 rows further back). The one formula: training's chunks and embargo, the
    runtime's state rebuild and the stream context's ring all use it.

    >>> context_rows(num_layers=2, seq_len=48)
    95
    """
    return num_layers * (seq_len - 1) + 1


FAMILIES = ("window", "causal")
PRESETS = {
    "quick": TFAConfig(d_model=64, nhead=4, num_layers=2, seq_len=48),
    "default": TFAConfig(d_model=128, nhead=8, num_layers=3, seq_len=48),
    "causal-quick": TFAConfig(d_model=64, nhead=4, num_layers=2, seq_len=48, family="causal"),
    "causal-default": TFAConfig(d_model=128, nhead=8, num_layers=3, seq_len=48, family="causal"),
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


__all__ = [
    "FAMILIES",
    "MAX_EXPERTS",
    "PRESETS",
    "context_rows",
    "ModelConfigError",
    "TFAConfig",
    "preset",
]
