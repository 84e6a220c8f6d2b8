"""The trainer's settings (torch-free, so that ``sentio train`` checks every flag before it
imports torch or reads a bar).

Each field is checked where it is built and a bad value names the flag that sets it:

>>> TrainConfig(learning_rate=float("nan"))
Traceback (most recent call last):
...
sentio.core.errors.OptionError: --learning-rate: must be a finite number > 0 and <= 1, got nan
>>> TrainConfig(epochs=3).epochs
3
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from sentio.core.errors import OptionError, excerpt

CHECKPOINT = "last.pt"  # file name of the per-epoch checkpoint inside the checkpoint directory

# Upper bounds keep a typo from allocating memory or time without end (issue 12 section 3).
MAX_EPOCHS = 10_000
MAX_BATCH = 65_536

# The flag that sets each field (fields without a flag are named as they are).
FLAGS = {
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "learning_rate": "--learning-rate",
    "seed": "--seed",
    "threads": "--threads",
    "device": "--device",
}


def _flag(name: str) -> str:
    return FLAGS.get(name, name)


def _int_in(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise OptionError(
            f"must be an integer in [{low}, {high}], got {excerpt(value)}", flag=_flag(name)
        )


def _float_in(name: str, value: object, low: float, high: float, *, open_low: bool) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if open_low else value >= low) and value <= high
    if not ok:
        rule = f"> {low:g}" if open_low else f">= {low:g}"
        bound = f" and <= {high:g}" if math.isfinite(high) else ""
        raise OptionError(
            f"must be a finite number {rule}{bound}, got {excerpt(value)}", flag=_flag(name)
        )


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; every field has a default and a unit."""

    epochs: int = 10  # passes over the training split (early stopping may end sooner)
    batch_size: int = 256  # windows per gradient step
    learning_rate: float = 3e-4  # peak AdamW learning rate
    weight_decay: float = 0.01  # AdamW decay on weight matrices
    warmup_frac: float = 0.05  # share of all steps spent warming the learning rate up
    min_lr_frac: float = 0.1  # the cosine decays to this share of the peak
    grad_clip: float = 1.0  # max global gradient norm
    patience: int = 3  # epochs without a better validation log loss before stopping
    seed: int = 7  # torch initialisation, dropout and shuffling
    threads: int = 1  # torch intra-op threads (results are reproducible per thread count)
    device: str = "cpu"  # cpu or cuda

    def __post_init__(self) -> None:
        _int_in("epochs", self.epochs, 1, MAX_EPOCHS)
        _int_in("batch_size", self.batch_size, 1, MAX_BATCH)
        _int_in("patience", self.patience, 1, MAX_EPOCHS)
        _int_in("threads", self.threads, 1, 1024)
        _int_in("seed", self.seed, 0, 2**63 - 1)  # torch.manual_seed takes a 64-bit seed
        _float_in("learning_rate", self.learning_rate, 0.0, 1.0, open_low=True)
        _float_in("weight_decay", self.weight_decay, 0.0, math.inf, open_low=False)
        _float_in("warmup_frac", self.warmup_frac, 0.0, 1.0, open_low=False)
        _float_in("min_lr_frac", self.min_lr_frac, 0.0, 1.0, open_low=False)
        _float_in("grad_clip", self.grad_clip, 0.0, math.inf, open_low=True)
        if self.device not in ("cpu", "cuda"):
            raise OptionError(f"must be cpu or cuda, got {excerpt(self.device)}", flag="--device")

    def to_dict(self) -> dict:
        return asdict(self)


__all__ = ["CHECKPOINT", "FLAGS", "MAX_BATCH", "MAX_EPOCHS", "TrainConfig"]
