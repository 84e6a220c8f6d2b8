"""Self-contained HTML reports of strattest, walk-forward and audited runs."""

__all__: list[str] = []
