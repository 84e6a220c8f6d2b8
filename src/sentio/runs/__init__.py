"""Runs on disk and experiment tracking: find, show and compare the training artifacts, strattest
and walk-forward folders and audits that exist; log them to MLflow when asked."""

__all__: list[str] = []
