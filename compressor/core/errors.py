"""Errors a user can cause, caught once at the CLI edge and shown as one line."""

from __future__ import annotations


def error_line(exc: BaseException, last: bool = False, fallback: str | None = None) -> str:
    """One line of an exception's message for a one-line error: the first (or, for tools
    that end with the cause, the ``last``) non-empty line, at most 300 characters;
    ``fallback`` (default: the exception's type name) when the message is empty."""
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__ if fallback is None else fallback
    return lines[-1 if last else 0][:300]


class CompressorError(Exception):
    """A problem the user can fix: bad input file, unknown name, invalid config.

    ``message`` says what went wrong and where; ``hint`` says what to do about it.
    """

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ProfileError(CompressorError):
    """A hardware profile is unknown or its YAML is invalid."""


class PlanError(CompressorError):
    """A plan file is invalid or names something that does not exist."""


class ModelError(CompressorError):
    """A model file is missing, corrupt, or not the kind of model a command needs."""


class DataError(CompressorError):
    """A data folder is missing, empty, or holds no readable image."""


class PluginError(CompressorError):
    """A plugin failed to load or registered something invalid."""


class StageError(CompressorError):
    """A pipeline stage failed on the model it was given."""


class ConstraintsMissed(CompressorError):
    """Under ``--strict``: the shipped result misses a constraint (the run is kept)."""

    exit_code = 3

    def __init__(
        self, message: str, hint: str = "", report: dict | None = None, run_dir: str = ""
    ) -> None:
        super().__init__(message, hint)
        self.report = report
        self.run_dir = run_dir
