"""Turn pydantic validation errors into one readable line naming file and field."""

from __future__ import annotations

from pydantic import ValidationError


def describe_validation_error(error: ValidationError, prefix: str = "") -> str:
    """Return ``field.path: problem`` for every error, joined by ``; ``.

    ``prefix`` is put before each field path (e.g. ``stages[1].params``).
    """
    parts = []
    for item in error.errors():
        location = ".".join(str(p) for p in item["loc"])
        if prefix:
            location = f"{prefix}.{location}" if location else prefix
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif "input" in item and item["type"] != "missing":
            message = f"{message}, got {item['input']!r}"
        parts.append(f"{location or '<root>'}: {message}")
    return "; ".join(parts)


def yaml_error_text(error: Exception) -> str:
    """Where and what a YAML syntax error is: ``line 3, column 7: mapping values are not
    allowed here`` (PyYAML's marks are 0-based)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or "not valid YAML"
    if mark is None:
        return str(problem)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
