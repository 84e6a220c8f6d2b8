"""Training: labels, windows and splits, evaluation (numpy), and the trainer (torch, lazy)."""

from sentio.train.evaluate import auc, brier, calibration, evaluate, log_loss
from sentio.train.samples import (
    LabelSpec,
    SampleError,
    SampleReport,
    Samples,
    Split,
    select_samples,
    split_by_session,
    windows,
)

__all__ = [
    "LabelSpec",
    "SampleError",
    "SampleReport",
    "Samples",
    "Split",
    "auc",
    "brier",
    "calibration",
    "evaluate",
    "log_loss",
    "select_samples",
    "split_by_session",
    "windows",
]
