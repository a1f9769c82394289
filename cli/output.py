"""One output helper: rows as an aligned table, JSON or CSV on stdout; status on stderr."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

FORMATS = ("table", "json", "csv")
F = TypeVar("F", bound=Callable[..., Any])


def format_option(func: F) -> F:
    """`--format table|json|csv`: table by default on a terminal, JSON when piped."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default=None,
        help="Output format (default: table on a terminal, json otherwise).",
    )(func)


def resolve_format(fmt: str | None) -> str:
    if fmt:
        return fmt
    return "table" if sys.stdout.isatty() else "json"


def emit(
    rows: Sequence[dict[str, Any]],
    fmt: str | None,
    columns: Sequence[str],
    *,
    texts_only: bool = False,
) -> None:
    """`texts_only`: the caller built every value as a str or None (see `to_json`)."""
    fmt = resolve_format(fmt)
    if fmt == "json":
        click.echo(to_json(list(rows), texts_only=texts_only))
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(_csv_row(row) for row in rows)
        click.echo(buffer.getvalue(), nl=False)
    else:
        click.echo(table(rows, columns))


def _csv_row(row: dict[str, Any]) -> dict[str, Any]:
    """A list in a cell as `a;b` (a CSV cell holds one text; Python's `['a', 'b']` is not
    something a spreadsheet or another program should have to parse)."""
    return {k: ";".join(map(str, v)) if isinstance(v, list | tuple) else v for k, v in row.items()}


def to_json(rows: list[dict[str, Any]], *, texts_only: bool = False) -> str:
    """`json.dumps(rows, indent=2, default=str)`, byte for byte. The standard library's
    encoder runs in Python once it indents (seconds for 10^5 rows); orjson writes the same
    text for plain values (below) once non-ASCII is escaped as json's ensure_ascii does.
    `texts_only` skips checking each value when the caller built them all as str or None:
    `compliance` writes up to ~10^6 rows, where the check alone costs about a second."""
    if texts_only or all(_plain(row) for row in rows):
        import orjson

        try:
            text = orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode()
        except orjson.JSONEncodeError:  # e.g. a lone surrogate, which json writes escaped
            return json.dumps(rows, indent=2, default=str)
        return _NOT_ASCII.sub(_escape, text) if not text.isascii() or "\x7f" in text else text
    return json.dumps(rows, indent=2, default=str)


_NOT_ASCII = re.compile("[^\x00-\x7e]")


def _escape(match: re.Match[str]) -> str:
    """One character as json's ensure_ascii writes it (outside JSON strings there is none)."""
    n = ord(match.group())
    if n < 0x10000:
        return f"\\u{n:04x}"
    n -= 0x10000
    return f"\\u{0xD800 | (n >> 10):04x}\\u{0xDC00 | (n & 0x3FF):04x}"


def _plain(value: Any) -> bool:
    """Values both encoders write alike: strings, ints within 64 bits, floats that repr()
    writes without an exponent, and lists and str-keyed dicts of those. Anything else
    (dates, which default=str formats) goes to json."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-(2**63) <= value < 2**64)
    if kind is float:
        return bool(value == 0 or 1e-4 <= abs(value) < 1e16)
    if kind is list or kind is tuple:
        return all(_plain(v) for v in value)
    if kind is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    return False


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def status(message: str) -> None:
    click.echo(message, err=True)
