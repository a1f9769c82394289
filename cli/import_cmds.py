"""`calm-ledger import incidents FILE.csv --mapping MAP.toml`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cli.bootstrap import Context
from cli.files import read_text_file
from cli.output import status
from domain.incidents import Incident
from ledger.errors import ValidationError
from ledger.importer import parse_mapping, read_rows, reject_csv, save_valid, validate_rows

CSV_LIMIT = 1024 * 1024 * 1024  # 1 GiB: far above a million rows of a typical export

pass_context = click.make_pass_decorator(Context)


@click.group("import")
def import_group() -> None:
    """Bulk import from another incident system."""


@import_group.command("incidents")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--mapping",
    "mapping_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='TOML: [columns] field = "CSV column", optional [values.FIELD], [options].',
)
@click.option("--skip-invalid", is_flag=True, help="Write the valid rows; reject the others.")
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write rejected rows (default: FILE.rejects.csv).",
)
@pass_context
def incidents(
    ctx: Context, csv_file: Path, mapping_file: Path, skip_invalid: bool, rejects: Path | None
) -> None:
    """Validate every row first; write nothing unless all are valid (or --skip-invalid).

    Example: calm-ledger --as lee import incidents export.csv --mapping datix.toml
    """
    mapping = parse_mapping(read_text_file(mapping_file, encoding="utf-8-sig"))
    csv_text = read_text_file(csv_file, limit=CSV_LIMIT, encoding="utf-8-sig")
    header, row_iter = read_rows(csv_text, mapping)
    rows = list(row_iter)
    service = ctx.service()
    service.authorise(Incident.Recorded.TYPE)
    service.cache_lookups()
    stderr = sys.stderr
    with click.progressbar(length=len(rows), label="validating rows", file=stderr) as bar:
        result = validate_rows(service, rows, mapping, _advance(bar))
    for error in result.errors[:50]:
        status(f"line {error.line}: {error.message}")
    if len(result.errors) > 50:
        status(f"… and {len(result.errors) - 50} more invalid rows")
    if result.errors and not skip_invalid:
        raise ValidationError(
            f"{len(result.errors)} of {len(result.errors) + len(result.valid)} rows are invalid;"
            " nothing was written (fix them, or use --skip-invalid)"
        )
    refs = save_valid(service, result)
    if result.errors:
        target = rejects or csv_file.with_suffix(".rejects.csv")
        target.write_text(reject_csv(header, result.errors))
        status(f"{len(result.errors)} rejected rows written to {target}")
    status(f"imported {len(refs)} incidents")


def _advance(bar: Any) -> Callable[[int], None]:
    def advance(n: int) -> None:
        bar.update(n)

    return advance
