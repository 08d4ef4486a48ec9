"""Entry point: the typer app, global options, and the one place errors are printed."""

from __future__ import annotations

import errno
import os
import signal
import sys
from typing import Any

import typer
from rich.markup import escape

from compressor import __version__
from compressor.cli import plan as plan_command
from compressor.cli import plugins as plugins_command
from compressor.cli import profiles as profiles_command
from compressor.cli import report as report_command
from compressor.cli import run as run_command
from compressor.cli import stylize as stylize_command
from compressor.cli import train as train_command
from compressor.cli.render import err_console
from compressor.core.errors import CompressorError

app = typer.Typer(
    name="compressor",
    help="Hardware-aware compression of Keras vision models to .tflite, driven by device profiles.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"compressor {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Global options (they go before the command name)."""
    if debug:
        os.environ["COMPRESSOR_DEBUG"] = "1"


app.add_typer(profiles_command.app, name="profiles")
app.command("plugins")(plugins_command.plugins)
app.command("plan")(plan_command.plan)
app.command("run")(run_command.run)
app.command("report")(report_command.report)
app.command("train")(train_command.train)
app.command("stylize")(stylize_command.stylize)


def _debug() -> bool:
    return bool(os.environ.get("COMPRESSOR_DEBUG")) or "--debug" in sys.argv[1:]


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM (e.g. `kill`) stops a command like Ctrl-C; a run's status says where."""
    raise KeyboardInterrupt


# OS errors a user causes (a full or read-only disk, a path that is a file): one line, exit 2.
USER_OS_ERRORS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder",
    errno.EEXIST: "it already exists",
    errno.ENAMETOOLONG: "the name is too long",
    errno.ENOENT: "no such file or folder",
}


def _print_error(message: str, hint: str = "") -> None:
    """One red line; rich markup in paths and messages is escaped, never interpreted."""
    tail = f" — {escape(hint)}" if hint else ""
    err_console.print(
        f"[bold red]error:[/bold red] {escape(message)}{tail}", highlight=False, soft_wrap=True
    )


def main() -> None:
    """Console script: run the app; user errors become one line and exit code 2 (3 for a
    result that misses its constraints under ``--strict``)."""
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        app()
    except CompressorError as exc:
        if _debug():
            raise
        _print_error(exc.message, exc.hint)
        sys.exit(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        err_console.print("[bold red]aborted[/bold red]")
        sys.exit(130)
    except OSError as exc:
        if _debug() or exc.errno not in USER_OS_ERRORS:
            _internal_error(exc)
        where = f" {exc.filename}" if exc.filename else ""
        run_dir = getattr(exc, "run_dir", None)
        _print_error(
            f"cannot write or read{where}: {USER_OS_ERRORS[exc.errno]}",
            f"the run in {run_dir} is marked failed; free space or fix the path, then "
            f"`compressor run --resume {run_dir}`"
            if run_dir
            else "free space or fix the path",
        )
        sys.exit(2)
    except Exception as exc:
        _internal_error(exc)


def _internal_error(exc: BaseException) -> None:
    if _debug():
        raise exc
    err_console.print(
        f"[bold red]internal error:[/bold red] {escape(type(exc).__name__)}: "
        f"{escape(str(exc))} — rerun with `compressor --debug ...` for the traceback and "
        "report it",
        highlight=False,
        soft_wrap=True,
    )
    sys.exit(1)
