"""The ``sentio`` command and its aliases.

``sencli`` is the whole ``sentio`` app under the original system's name; ``saudit`` is the
``sentio audit`` group on its own.
"""

from __future__ import annotations

import sys

import typer
from rich.text import Text

from sentio import __version__
from sentio.cli import (
    audit_commands,
    backtest_commands,
    data_commands,
    features_commands,
    model_commands,
)
from sentio.cli.output import err_console
from sentio.core.errors import SentioError

app = typer.Typer(
    name="sentio",
    help="Sentio: intraday QQQ bars -> features -> model -> audited trades, one pipeline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_commands.app, name="data", no_args_is_help=True)
app.add_typer(features_commands.app, name="features", no_args_is_help=True)
app.add_typer(model_commands.app, name="model", no_args_is_help=True)
app.add_typer(audit_commands.app, name="audit", no_args_is_help=True)
app.command("train")(model_commands.train_command)
app.command("strattest")(backtest_commands.strattest_command)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sentio {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Sentio command line."""


def _run(application: typer.Typer, prog: str) -> None:
    """Run a typer app; a SentioError becomes its message on stderr and a non-zero exit."""
    try:
        application(prog_name=prog)
    except SentioError as exc:
        err_console.print(Text(f"error: {exc}", style="red"), soft_wrap=True)
        sys.exit(exc.exit_code)


def main() -> None:
    """Entry point of ``sentio``."""
    _run(app, "sentio")


def sencli_main() -> None:
    """Entry point of ``sencli``: the same commands as ``sentio``."""
    _run(app, "sencli")


def saudit_main() -> None:
    """Entry point of ``saudit``: the ``sentio audit`` commands."""
    _run(audit_commands.app, "saudit")
