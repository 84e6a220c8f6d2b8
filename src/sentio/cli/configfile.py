"""``--config FILE`` and ``--show-config`` for any command: defaults, then the file, then the
flags given on the command line (docs/config.md).

A command declares the two options and resolves its settings first thing::

    def command(ctx: typer.Context, ..., config: Path | None = config_option(),
                show_config: bool = show_option()) -> None:
        run = resolve(ctx, config, command_line_only=("out", "json_out"))
        with run.checking():              # a bad value from the file names the file
            built = SomeConfig.from_settings(run.settings)
        if show_config:
            run.show()                    # the resolved settings as TOML, exit 0
            return

The settings are the command's options (less ``command_line_only``: outputs and how the result
is shown), named as the flags without dashes. A value counts as given on the command line when
click's parameter source says so (COMMANDLINE, ENVIRONMENT or PROMPT), never by comparing it
with the default: ``--capital 100000`` wins over the file's ``capital = 5e4`` although 100000
is the default. :attr:`Resolved.settings` is a plain dict (JSON-ready: text, numbers, bools,
lists) to record or log; :meth:`Resolved.to_dict` adds the file's path and sha256.
"""

from __future__ import annotations

import contextlib
import sys
import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

try:  # typer >= 0.20 vendors click (the locked version)
    from typer._click.exceptions import BadParameter
except ImportError:  # pragma: no cover - typer on top of click
    from click.exceptions import BadParameter

from sentio.core.errors import OptionError, excerpt
from sentio.core.settings import Setting, SettingsFile, read_settings_file, toml_text, utf8

GIVEN = ("COMMANDLINE", "ENVIRONMENT", "PROMPT")  # click's sources of a value the user typed
OWN = ("config", "show_config")  # this module's options: never settings


def config_option() -> Any:
    """The ``--config FILE`` option."""
    return typer.Option(
        None,
        "--config",
        help="TOML (or .json) file of settings named as these flags without dashes "
        "(docs/config.md); a flag given here wins over the file.",
    )


def show_option() -> Any:
    """The ``--show-config`` option."""
    return typer.Option(
        False,
        "--show-config",
        help="Print the resolved settings (defaults, then --config, then these flags) as a "
        "TOML file for --config, and exit without running.",
    )


@dataclass
class Resolved:
    """A command's settings after defaults, the file and the flags given.

    ``settings``: setting name -> value (plain: paths as text, repeatable flags as lists);
    ``source``: setting name -> "default", "file" or "command line"; ``params``: the command's
    parameters by their Python names, with the file's values in (as click converts them).
    """

    command: str
    settings: dict[str, Any]
    source: dict[str, str]
    params: dict[str, Any]
    file: SettingsFile | None = None
    table: dict[str, Setting] = field(default_factory=dict)  # setting name -> Setting

    def named(self, exc: OptionError) -> OptionError:
        """``exc`` about a flag whose value came from the file, told as the file's setting."""
        name = self.setting_of(exc.flag)
        if name is None or self.source.get(name) != "file" or self.file is None:
            return exc
        return OptionError(f"{self.file.path}: {name}: {exc.detail}", flag="--config")

    def setting_of(self, flag: str | None) -> str | None:
        """The setting a flag (as an error names it: ``--cache/--no-cache`` too) sets."""
        first = (flag or "").split("/")[0]
        return next((s.name for s in self.table.values() if s.flag.split("/")[0] == first), None)

    @contextlib.contextmanager
    def checking(self) -> Iterator[None]:
        """Inside: an OptionError about a setting the file gave names the file and setting."""
        try:
            yield
        except OptionError as exc:
            told = self.named(exc)
            if told is exc:
                raise
            raise told from None

    def toml(self) -> str:
        """The resolved settings as a file ``--config`` reads back to the same settings; a
        value no UTF-8 file can hold (a file name's stray byte) is refused naming its flag."""
        for name, value in self.settings.items():
            if not utf8(value):
                raise OptionError(
                    f"{excerpt(value)} is not UTF-8 text, which a settings file cannot hold; "
                    "rename the file",
                    flag=self.table[name].flag if name in self.table else None,
                )
        origin = f"then {self.file.path} (sha256 {self.file.sha256[:16]}), " if self.file else ""
        notes = {k: f"from the {v}" for k, v in self.source.items() if v != "default"}
        header = [
            f"{self.command}: resolved settings (defaults, {origin}then the flags given)",
            f"run it again with: {self.command} --config FILE",
        ]
        return toml_text(self.settings, notes, header)

    def show(self) -> None:
        """Print :meth:`toml` (plain text: rich would read ``[...]`` as markup)."""
        sys.stdout.write(self.toml())
        sys.stdout.flush()

    def to_dict(self) -> dict[str, Any]:
        """What a record or a tracker logs: the settings and the file they came from."""
        return {
            "command": self.command,
            "settings": dict(self.settings),
            "config_file": self.file.model_dump() if self.file else None,
        }


def resolve(
    ctx: typer.Context,
    config: Path | None,
    *,
    command_line_only: Iterable[str] = (),
    table: Mapping[str, Setting] | None = None,
) -> Resolved:
    """The command's settings: defaults, then ``config``'s values, then the flags given.

    ``command_line_only``: parameter names that are no setting (outputs, ``--json``);
    ``table``: the settings by name when a lower stage defines them (``sentio live``'s), else
    derived from the command's options (a setting's name is its parameter's name there).
    """
    params = {p.name: p for p in ctx.command.params if p.param_type_name == "option"}
    left_out = set(OWN) | set(command_line_only)
    if table is None:
        derived = [setting(p) for name, p in params.items() if name not in left_out]
        table = {s.name: s for s in derived}
    param_of = {s.name: _param_named(params, s) for s in table.values()}
    others = _others(params, param_of, table)
    doc = read_settings_file(config, table, command_line=others) if config is not None else {}
    values = dict(ctx.params)
    settings, source = {}, {}
    for name, param in param_of.items():
        if _given(ctx, param.name):
            source[name] = "command line"
        elif name in doc:
            source[name] = "file"
            values[param.name] = _converted(ctx, param, doc[name], config, name)
        else:
            source[name] = "default"
        settings[name] = plain(values[param.name])
    file = SettingsFile.of(config) if config is not None else None
    return Resolved(ctx.command_path, settings, source, values, file, dict(table))


def _others(params: dict[str, Any], param_of: dict[str, Any], table: Mapping) -> dict[str, str]:
    """The command's options that are no setting (``out``, ``json``...): by parameter name
    and by flag name, each to its flag, so that a file naming one is told it stays a flag."""
    used = {p.name for p in param_of.values()} | set(OWN)
    others = {}
    for name, param in params.items():
        if name not in used:
            flag = setting(param)
            others.update({name: flag.flag, flag.name: flag.flag})
    return {name: flag for name, flag in others.items() if name not in table}


def setting(param: Any) -> Setting:
    """The setting of a command's option: its name, flag and kind from the option itself."""
    long = next(o for o in param.opts if o.startswith("--"))
    flag = f"{long}/{param.secondary_opts[0]}" if param.secondary_opts else long
    kind, many = _kind(param)
    return Setting(long[2:].replace("-", "_"), flag, kind, many=many)


def _kind(param: Any) -> tuple[str, bool]:
    """(kind, many) of an option's annotation: bool, int, float, a list of one, else text."""
    hint = param.type_descriptor.annotation
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # Optional[X]: X
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    many = typing.get_origin(hint) in (list, tuple)
    if many:
        hint = (typing.get_args(hint) or (str,))[0]
    return {bool: "bool", int: "whole", float: "number"}.get(hint, "text"), many


def _param_named(params: dict[str, Any], s: Setting) -> Any:
    """The option a setting stands for: by the parameter's name, else by its flag."""
    if s.name in params:
        return params[s.name]
    first = s.flag.split("/")[0]
    return next(p for p in params.values() if first in p.opts)


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the user gave parameter ``name`` (by the source's name: typer may run on click
    or on its own copy of it, each with its own ParameterSource enum)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in GIVEN


def _converted(ctx: typer.Context, param: Any, value: Any, config: Path, name: str) -> Any:
    """A file's value as the flag's would be (a path, a list), through the flag's own checks
    (its range): a value the flag would refuse is refused naming the file and the setting."""
    if value is None:
        return None
    try:
        return param.process_value(ctx, value)
    except BadParameter as exc:
        message = " ".join(exc.format_message().split())
        raise OptionError(f"{config}: {name}: {message}", flag="--config") from None


def plain(value: Any) -> Any:
    """A parameter's value as a file holds it: paths as text, tuples as lists.

    >>> plain((Path("a.parquet"), "b")), plain(3)
    (['a.parquet', 'b'], 3)
    """
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


__all__ = ["Resolved", "config_option", "plain", "resolve", "setting", "show_option"]
