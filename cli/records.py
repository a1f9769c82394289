"""Input shared by the recording commands: record files (JSON or YAML), times, the output of
a new id, and the `--file` option."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from cli.output import status
from ledger.errors import ValidationError

F = TypeVar("F", bound=Callable[..., Any])
MAX_RECORD_BYTES = 1024 * 1024
MAX_DEPTH = 32


def file_option(func: F) -> F:
    return click.option(
        "--file",
        "record_file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="The whole record as a JSON or YAML file, instead of the flags.",
    )(func)


def json_option(func: F) -> F:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json"]),
        default="text",
        help='json prints {"id": …} for scripts.',
    )(func)


def read_record(path: Path) -> dict[str, Any]:
    """A JSON or YAML mapping from a file, bounded in size and depth."""
    raw = path.read_bytes()
    if len(raw) > MAX_RECORD_BYTES:
        raise ValidationError(f"{path} is larger than {MAX_RECORD_BYTES // 1024} KiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"{path} is not UTF-8 text") from None
    data = _parse(path, text)
    if not isinstance(data, dict):
        raise ValidationError(f"{path} must hold one record (a mapping of field: value)")
    _check_depth(data, path)
    return data


def _parse(path: Path, text: str) -> Any:
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ValidationError(f"{path}: malformed JSON at line {e.lineno}: {e.msg}") from None
    import yaml  # here, not at the top: every query imports this module, ~20 ms for yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or "not YAML"
        raise ValidationError(f"{path}: malformed YAML{where}: {problem}") from None


def _check_depth(value: Any, path: Path, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise ValidationError(f"{path} is nested more than {MAX_DEPTH} levels deep")
    children = (
        value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    )
    for child in children:
        _check_depth(child, path, depth + 1)


def flags_or_file(record_file: Path | None, flags: dict[str, Any]) -> dict[str, Any]:
    """The record from --file, or from the flags that were given — not both."""
    given = {k: v for k, v in flags.items() if v not in (None, (), False)}
    if record_file is not None:
        if given:
            raise ValidationError(
                f"give the record either as flags or with --file, not both (also got: "
                f"{', '.join('--' + k.replace('_', '-') for k in sorted(given))})"
            )
        return read_record(record_file)
    return {k: v for k, v in flags.items() if v is not None}


def parse_time(text: str, what: str = "time") -> datetime:
    """ISO 8601; a time without an offset is taken as this machine's local time."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            f"invalid {what} {text!r}: use ISO 8601, e.g. 2026-10-05T14:30 or 2026-10-05T14:30Z"
        ) from None
    if value.tzinfo is None:
        value = value.astimezone()  # local time, made explicit
    return value.astimezone(UTC)


def parse_day(text: str, what: str = "date") -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"invalid {what} {text!r}: use YYYY-MM-DD") from None


def now() -> datetime:
    return datetime.now(UTC)


def emit_id(kind: str, ident: object, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps({"id": str(ident), "kind": kind}))
    else:
        click.echo(str(ident))
        status(f"{kind} recorded")
