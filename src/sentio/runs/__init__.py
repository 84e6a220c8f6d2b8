"""Runs on disk and experiment tracking: find, show and compare the training artifacts, strattest
and walk-forward folders and audits that exist; log them to MLflow when asked.

``sentio.runs.tracking`` imports mlflow only when a run is logged (the extra
``sentio[mlflow]``); nothing else here needs it.
"""

from sentio.runs.catalog import compare_rows, find_runs, read_ref
from sentio.runs.run import Problem, Run, RunsError
from sentio.runs.tracking import (
    TrackingError,
    check_tracking,
    log_backtest,
    log_training,
    tracking_uri,
)

__all__ = [
    "Problem",
    "Run",
    "RunsError",
    "TrackingError",
    "check_tracking",
    "compare_rows",
    "find_runs",
    "log_backtest",
    "log_training",
    "read_ref",
    "tracking_uri",
]
