"""Settings files: a command's flags written down once, in TOML (or JSON), checked in one line.

A command that takes many flags (``sentio train``, ``strattest``, ``live``, ``data import``...)
also takes ``--config FILE``: a file of settings named as the flags without their leading
dashes, the inner dashes written as underscores (``--max-daily-loss 3`` is
``max_daily_loss = 3``; ``--cache/--no-cache`` is ``cache = false``; a repeatable flag is a
list). The file is one flat table: no sections, one spelling per setting, so a setting is found
by the same name in ``--help``, in a file and in ``--show-config``'s output.

This module reads and type-checks such a file (:func:`read_settings_file`) and writes one back
(:func:`toml_text`); ``sentio.cli.configfile`` resolves a command's settings (defaults, then
the file, then the flags given on the command line) and each command's own config model checks
the values' rules, naming the file and the setting when the value came from the file.

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "run.toml"
>>> _ = path.write_text('capital = 50000\\nrule = "bands"\\n')
>>> SETTINGS = {s.name: s for s in (Setting("capital", "--capital", "number"),
...                                  Setting("rule", "--rule", "text"))}
>>> read_settings_file(path, SETTINGS)
{'capital': 50000, 'rule': 'bands'}
>>> _ = path.write_text("captial = 50000\\n")
>>> read_settings_file(path, SETTINGS)  # doctest: +ELLIPSIS
Traceback (most recent call last):
sentio.core.errors.OptionError: --config: ...: unknown setting 'captial'; did you mean 'capital'?...
>>> print(toml_text({"capital": 50000.0, "rule": "bands", "blocks": None}), end="")
capital = 50000.0
rule = "bands"
# blocks: not set
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from sentio.core.errors import OptionError, excerpt
from sentio.core.files import read_settings
from sentio.core.hashing import sha256_file

KINDS = ("text", "whole", "number", "bool")
_NEEDS = {  # what a value of each kind must be in the file, for the message
    "text": "must be text",
    "whole": "must be a whole number",
    "number": "must be a number",
    "bool": "must be true or false",
}
_LISTS = {
    "text": "must be a list of text",
    "whole": "must be a list of whole numbers",
    "number": "must be a list of numbers",
    "bool": "must be a list of true or false",
}


@dataclass(frozen=True)
class Setting:
    """One setting a file may hold: its name, the flag it stands for and its TOML type.

    ``kind`` is text (also paths and choices), whole, number or bool; ``many`` for a repeatable
    flag (a list of that kind); ``optional`` when the setting may be left unset (``None``).

    >>> Setting("blocks", "--blocks", "whole").problem(True)
    'must be a whole number'
    >>> Setting("half_spread_bp", "--half-spread-bp", "text", many=True).problem(["QQQ=1"])
    ''
    """

    name: str
    flag: str
    kind: str = "text"
    many: bool = False
    optional: bool = True
    example: str = ""  # a valid value, shown when a list is refused

    def problem(self, value: Any) -> str:
        """Why ``value`` (as read from a file) cannot be this setting; "" when it can. Types are
        checked before rules, so ``blocks = true`` is never one block."""
        if value is None:
            return "" if self.optional else "must be given a value"
        if self.many:
            ok = isinstance(value, list) and not any(_kind_problem(self.kind, v) for v in value)
            like = f" like {self.example}" if self.example else ""
            return "" if ok else _LISTS[self.kind] + like
        return _kind_problem(self.kind, value)


def _kind_problem(kind: str, value: Any) -> str:
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "text":
        ok = isinstance(value, str)
    elif isinstance(value, bool):  # TOML's true is no number (Python's bool is an int)
        ok = False
    elif kind == "whole":
        ok = isinstance(value, int)
    else:
        ok = isinstance(value, int | float)
    return "" if ok else _NEEDS[kind]


class SettingsFile(BaseModel):
    """Which file a run's settings came from: its path as given and the sha256 of its bytes
    (recorded beside the resolved config in artifacts and audits)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    sha256: str

    @classmethod
    def of(cls, path: str | Path) -> SettingsFile:
        return cls(path=str(path), sha256=sha256_file(path))


def read_settings_file(
    path: str | Path,
    settings: Mapping[str, Setting],
    flag: str = "--config",
    command_line: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The settings a TOML or JSON file holds, each known and of its setting's type.

    Refused in one line naming ``flag``, the file and the setting: a missing file or a folder,
    a file that is not valid TOML (its line and column) or JSON, a key given twice, an unknown
    setting (with the closest name and the list), a value of the wrong type or JSON's null.
    ``command_line``: name -> flag of the command's options that are no setting (its outputs):
    such a key is refused saying that it stays on the command line.
    """
    doc = read_settings(path, flag)
    for name, value in doc.items():
        if name not in settings and name in (command_line or {}):
            raise OptionError(
                f"{path}: {name} is no setting: it stays on the command line as "
                f"{command_line[name]} (docs/config.md)",
                flag=flag,
            )
        if name not in settings:
            raise unknown_setting(path, name, list(settings), flag)
        if value is None:  # JSON's null: TOML has none, and "unset" is a setting left out
            raise OptionError(
                f"{path}: {name} is null; give a value, or leave the setting out for its default",
                flag=flag,
            )
        problem = settings[name].problem(value)
        if problem:
            got = toml_value(value) if isinstance(value, bool) else excerpt(value)
            raise OptionError(f"{path}: {name} {problem}, got {got}", flag=flag)
    return doc


def unknown_setting(path: str | Path, name: str, names: list[str], flag: str) -> OptionError:
    """The error of a key no setting has: the closest setting's name, then every name.

    >>> str(unknown_setting("a.toml", "max-daily-loss", ["max_daily_loss", "seed"], "--config"))
    "--config: a.toml: unknown setting 'max-daily-loss'; did you mean 'max_daily_loss'? settings are the flags without dashes (max_daily_loss, seed)"
    """  # noqa: E501
    spelled = str(name).replace("-", "_").lower()
    close = difflib.get_close_matches(spelled, names, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ";"
    return OptionError(
        f"{path}: unknown setting {excerpt(name)}{hint} settings are the flags without dashes "
        f"({', '.join(sorted(names))})",
        flag=flag,
    )


def toml_value(value: Any) -> str:
    """``value`` (text, number, bool or a list of them) as a TOML value.

    >>> toml_value(["QQQ=0.5", 'a "b"']), toml_value(1e-05), toml_value(True), toml_value(3)
    ('["QQQ=0.5", "a \\\\"b\\\\""]', '1e-05', 'true', '3')
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    # a JSON string is a TOML basic string, but for DEL, which TOML wants escaped
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_text(
    values: Mapping[str, Any],
    notes: Mapping[str, str] | None = None,
    header: list[str] | None = None,
) -> str:
    """Settings as a TOML file that reads back to the same values: one ``name = value`` line
    each, in order; an unset (``None``) setting as a comment; ``notes`` as end-of-line
    comments (where a value came from) and ``header`` as comment lines on top."""
    notes = {name: comment(note) for name, note in (notes or {}).items()}
    lines = [f"# {comment(line)}" for line in header or []]
    for name, value in values.items():
        if value is None:
            lines.append(f"# {name}: not set")
            continue
        note = f"  # {notes[name]}" if notes.get(name) else ""
        lines.append(f"{name} = {toml_value(value)}{note}")
    return "\n".join(lines) + "\n"


def comment(text: str) -> str:
    r"""``text`` as one TOML comment line: control characters (a newline in a file name) as
    backslash escapes, and a name's bytes that are not UTF-8 as ``\udcff``.

    >>> comment("from a\nb.toml"), comment("x\udcffy")
    ('from a\\nb.toml', 'x\\udcffy')
    """
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c.encode("unicode_escape").decode() if _control(c) else c for c in text)


def _control(c: str) -> bool:
    return (c < " " and c != "\t") or c == "\x7f"


def utf8(value: Any) -> bool:
    r"""Whether ``value`` (text, a number, a list of them) can be written into a UTF-8 file:
    a Linux file name may hold bytes that are not UTF-8 (``\udcff`` to Python), TOML cannot.

    >>> utf8(["a.parquet", 3]), utf8("x\udcffy.parquet")
    (True, False)
    """
    if isinstance(value, list | tuple):
        return all(utf8(v) for v in value)
    try:
        str(value).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


__all__ = [
    "KINDS",
    "Setting",
    "SettingsFile",
    "comment",
    "read_settings_file",
    "toml_text",
    "toml_value",
    "unknown_setting",
    "utf8",
]
