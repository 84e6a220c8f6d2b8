"""The one error tree of Sentio.

Every error a user can cause derives from :class:`SentioError`, carries the facts needed to fix it
(file, row, field, rule; or expected and got), and renders as one readable message. The CLI prints
that message and exits non-zero; it never shows a traceback for these.
"""

from __future__ import annotations


class SentioError(Exception):
    """Base of every error Sentio raises on purpose."""

    exit_code = 2


class BarsError(SentioError):
    """Bad bar input: a vendor file or a canonical table breaks a rule.

    >>> err = BarsError("high below max(open, close)", file="q.csv", row=7, field="high",
    ...                 rule="high_below_open_close")
    >>> str(err)
    "q.csv: row 7, field 'high': rule high_below_open_close: high below max(open, close)"
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        field: str | None = None,
        rule: str | None = None,
    ) -> None:
        self.file, self.row, self.field, self.rule = file, row, field, rule
        self.detail = message
        parts = []
        if row is not None:
            parts.append(f"row {row}")
        if field is not None:
            parts.append(f"field {field!r}")
        head = ", ".join(parts)
        if rule is not None:
            head = f"{head}: rule {rule}" if head else f"rule {rule}"
        text = f"{head}: {message}" if head else message
        super().__init__(f"{file}: {text}" if file else text)


class CalendarError(SentioError):
    """A date range the exchange calendar cannot serve."""


class SynthError(SentioError):
    """The synthetic market was asked for something it cannot produce."""


class SpecError(SentioError):
    """A feature spec breaks a rule: unknown op or source, bad window, duplicate name, ...

    >>> str(SpecError("unknown op 'EMX'", file="s.json", feature=3, field="op"))
    "s.json: feature 3, field 'op': unknown op 'EMX'"
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        feature: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file, self.feature, self.field = file, feature, field
        self.detail = message
        parts = []
        if feature is not None:
            parts.append(f"feature {feature}")
        if field is not None:
            parts.append(f"field {field!r}")
        text = f"{', '.join(parts)}: {message}" if parts else message
        super().__init__(f"{file}: {text}" if file else text)


class StateError(SentioError):
    """A saved engine state that does not belong to this engine, or is damaged."""


class ArtifactError(SentioError):
    """A model artifact that is incomplete, tampered with, or fails its own checks.

    >>> str(ArtifactError("sha256 differs from manifest.json", file="model.onnx"))
    'model.onnx: sha256 differs from manifest.json'
    """

    def __init__(self, message: str, *, file: str | None = None) -> None:
        self.file = file
        self.detail = message
        super().__init__(f"{file}: {message}" if file else message)


class ParityError(SentioError):
    """Two things that must agree do not: a model and its inputs, or the two inference paths."""


class LiveError(SentioError):
    """The live loop cannot go on as asked: a feed, broker or saved state it refuses
    (a broker position that differs from the saved state, a state of another model, ...)."""


class OptionError(SentioError):
    """A command-line flag (or config field) with a value that breaks its rule.

    >>> str(OptionError("must be > 0, got -5", flag="--capital"))
    '--capital: must be > 0, got -5'
    """

    def __init__(self, message: str, *, flag: str | None = None) -> None:
        self.flag = flag
        self.detail = message
        super().__init__(f"{flag}: {message}" if flag else message)


class OutputError(OptionError):
    """An output path that would destroy an input or cannot be written.

    >>> str(OutputError("out.csv is the same file as the input out.csv", flag="--out"))
    '--out: out.csv is the same file as the input out.csv'
    """


def excerpt(value: object, limit: int = 60) -> str:
    """``repr`` of a user's value, cut to ``limit`` characters so that a 10 MB cell is never
    echoed in full.

    >>> excerpt("x" * 100, limit=12)
    "'xxxxxxx... (102 characters)"
    >>> excerpt(3.5)
    '3.5'
    """
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 4]}... ({len(text)} characters)"
