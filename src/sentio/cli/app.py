"""The ``sentio`` command and its aliases.

``sencli`` is the whole ``sentio`` app under the original system's name; ``saudit`` is the
``sentio audit`` group on its own.
"""

from __future__ import annotations

import errno
import sys

import typer
from pydantic import ValidationError
from typer import Abort

try:  # typer >= 0.20 vendors click (the locked version)
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - typer on top of click
    from click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from rich.text import Text

from sentio import __version__
from sentio.cli import (
    audit_commands,
    backtest_commands,
    data_commands,
    features_commands,
    live_commands,
    model_commands,
    regime_commands,
    report_commands,
    runs_commands,
    sweep_commands,
)
from sentio.cli.output import err_console
from sentio.core.clock import source_date_epoch
from sentio.core.errors import OptionError, SentioError, excerpt

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
app.add_typer(live_commands.app, name="live")
app.add_typer(runs_commands.app, name="runs", no_args_is_help=True)
data_commands.app.command("regimes")(regime_commands.regimes_command)
app.command("train")(model_commands.train_command)
app.command("strattest")(backtest_commands.strattest_command)
app.command("sweep")(sweep_commands.sweep_command)
app.command("report")(report_commands.report_command)


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


def _fail(message: str, code: int = 2) -> None:
    # One line: newlines inside a message (an OS error's text, a bad cell) would split it; a
    # file name that is not UTF-8 (surrogate escapes) is shown with backslash escapes.
    line = " ".join(str(message).split())
    line = line.encode("utf-8", "backslashreplace").decode("utf-8")
    err_console.print(Text(f"error: {line}", style="red"), soft_wrap=True)
    sys.exit(code)


def _validation_message(exc: ValidationError) -> str:
    """A pydantic error as one line: the first failing field, its rule and the value's excerpt."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or exc.title
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}, got {excerpt(first.get('input'))}{more}"


def _usage_line(exc: UsageError, prog: str) -> str:
    """A usage error (unknown flag, wrong type, value out of range) as one line that names the
    flag and the command whose --help explains it."""
    command = exc.ctx.command_path if exc.ctx is not None else prog
    return f"{exc.format_message()} (see: {command} --help)"


def _repeated_option(application: typer.Typer, args: list[str]) -> str | None:
    """The first single-value option given twice (``--out a --out b``): the parser would keep
    the last silently. Options declared repeatable (``--data``, ``--regime``...) may repeat."""
    command = typer.main.get_command(application)
    rest = list(args)
    while getattr(command, "commands", None) and rest and rest[0] in command.commands:
        command = command.commands[rest.pop(0)]
    single = {}
    for param in getattr(command, "params", []):
        if getattr(param, "param_type_name", "") == "option" and not param.multiple:
            for name in (*param.opts, *param.secondary_opts):
                single[name] = param.opts[0]
    seen: set[str] = set()
    for arg in rest:
        if arg == "--":
            break
        flag = single.get(arg.split("=", 1)[0]) if arg.startswith("-") else None
        if flag is None:
            continue
        if flag in seen:
            return flag
        seen.add(flag)
    return None


def _run(application: typer.Typer, prog: str) -> None:
    """Run a typer app; every error a user can cause becomes one line on stderr and exit 2.

    SentioError carries its own message; the parser's usage errors name the flag; a pydantic
    ValidationError that escaped a command's own mapping names its field; an OS error names its
    file. Anything else is a bug and keeps its traceback, so that it gets reported and fixed.
    """
    try:
        source_date_epoch()  # libraries read it too, and crash on a bad value mid-run
        repeated = _repeated_option(application, sys.argv[1:])
        if repeated:
            raise OptionError("given more than once; give it once", flag=repeated)
        code = application(prog_name=prog, standalone_mode=False)
    except NoArgsIsHelpError as exc:  # `sentio data` alone: the group's help, as click does
        exc.show()
        sys.exit(exc.exit_code)
    except UsageError as exc:
        _fail(_usage_line(exc, prog), exc.exit_code)
    except ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except Abort:
        _fail("aborted", 1)
    except SentioError as exc:
        _fail(str(exc), exc.exit_code)
    except ValidationError as exc:
        _fail(_validation_message(exc))
    except OSError as exc:
        if exc.errno == errno.EPIPE:  # the reader of our output went away (`| head`)
            sys.stderr.close()
            sys.exit(1)
        name = str(exc.filename)  # a 5,000-character name is cut, not echoed in full
        target = "" if not exc.filename else f"{name if len(name) <= 200 else excerpt(name, 200)}: "
        _fail(f"{target}{exc.strerror or exc}")
    except UnicodeError as exc:  # a file name or text that is not valid UTF-8
        _fail(f"a file name or value is not valid UTF-8 text ({exc.reason}); rename it")
    except MemoryError:
        _fail("out of memory; reduce the size of the input or of the spec's windows")
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    sys.exit(code if isinstance(code, int) else 0)


def main() -> None:
    """Entry point of ``sentio``."""
    _run(app, "sentio")


def sencli_main() -> None:
    """Entry point of ``sencli``: the same commands as ``sentio``."""
    _run(app, "sencli")


def saudit_main() -> None:
    """Entry point of ``saudit``: the ``sentio audit`` commands."""
    _run(audit_commands.app, "saudit")
