"""`calm-ledger services …` and `calm-ledger techniques …`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from pydantic import Field

from cli.bootstrap import Context
from cli.files import read_text_file
from cli.output import emit, format_option
from cli.records import emit_id, file_option, flags_or_file, json_option, parse_day
from domain.techniques import default_catalogue, parse_catalogue
from domain.vocabulary import Profile, Setting
from ledger.recording import Command, parse_command

pass_context = click.make_pass_decorator(Context)


class NewService(Command):
    id: str
    name: str
    setting: Setting
    profiles: tuple[Profile, ...] = Field(min_length=1)


@click.group()
def services() -> None:
    """Register services (settings) and record their occupancy."""


@services.command("register")
@click.option("--id", "service_id", help="Short id, e.g. ward-3 or oak-house.")
@click.option("--name")
@click.option("--setting", type=click.Choice([s.value for s in Setting]))
@click.option(
    "--profile",
    "profiles",
    multiple=True,
    type=click.Choice([p.value for p in Profile]),
    help="Repeatable.",
)
@file_option
@json_option
@pass_context
def register(
    ctx: Context,
    service_id: str | None,
    name: str | None,
    setting: str | None,
    profiles: tuple[str, ...],
    record_file: Path | None,
    fmt: str,
) -> None:
    """Register a service with its setting and jurisdiction profile(s).

    Example: calm-ledger --as ada services register --id ward-3 --name "Ward 3"
             --setting mental-health-unit --profile uk-eng-mh-unit
    """
    record = flags_or_file(
        record_file,
        {"id": service_id, "name": name, "setting": setting, "profiles": profiles or None},
    )
    new = parse_command(NewService, record)
    ctx.service().register_service(new.id, new.name, new.setting, new.profiles)
    emit_id("service", new.id, fmt)


@services.command("occupancy")
@click.argument("service_id")
@click.option("--from", "start", required=True, help="First day, YYYY-MM-DD.")
@click.option("--to", "end", required=True, help="Last day, YYYY-MM-DD.")
@click.option(
    "--person-days",
    type=click.IntRange(min=0),
    required=True,
    help="Occupied bed days or pupil days in the period.",
)
@json_option
@pass_context
def occupancy(
    ctx: Context, service_id: str, start: str, end: str, person_days: int, fmt: str
) -> None:
    """Record person-days for a period (the denominator of every rate).

    Example: calm-ledger --as lee services occupancy ward-3 --from 2026-10-01 --to 2026-10-31
             --person-days 372
    """
    ctx.service().record_occupancy(
        service_id, parse_day(start, "--from"), parse_day(end, "--to"), person_days
    )
    emit_id("occupancy", f"{service_id} {start}..{end}", fmt)


@services.command("show")
@click.argument("service_id")
@format_option
@pass_context
def show(ctx: Context, service_id: str, fmt: str | None) -> None:
    """Show a service, its profiles and recorded occupancy.

    Example: calm-ledger services show ward-3
    """
    s = ctx.service_reader().service_record(service_id)
    rows: list[dict[str, Any]] = [
        {
            "service": s.service_id,
            "name": s.name,
            "setting": s.setting.value,
            "profiles": [p.value for p in s.profiles],
            "from": str(a),
            "to": str(b),
            "person_days": days,
        }
        for (a, b), days in sorted(s.occupancy.items())
    ] or [
        {
            "service": s.service_id,
            "name": s.name,
            "setting": s.setting.value,
            "profiles": [p.value for p in s.profiles],
        }
    ]
    emit(rows, fmt, ["service", "name", "setting", "profiles", "from", "to", "person_days"])


@click.group()
def techniques() -> None:
    """The organisation's technique catalogue (ranked by restrictiveness)."""


@techniques.command("publish")
@click.argument(
    "catalogue_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--default", "use_default", is_flag=True, help="Publish the built-in CALM-style catalogue."
)
@click.option("--reason", help="Why the catalogue changes (required for a revision).")
@json_option
@pass_context
def publish(
    ctx: Context, catalogue_file: Path | None, use_default: bool, reason: str | None, fmt: str
) -> None:
    """Publish (or revise) the technique catalogue from a TOML file.

    Example: calm-ledger --as ada techniques publish --default
    """
    if (catalogue_file is None) == (not use_default):
        raise click.UsageError("give a catalogue file or --default (one of them)")
    catalogue = (
        default_catalogue()
        if catalogue_file is None
        else parse_catalogue(read_text_file(catalogue_file))
    )
    ctx.service().publish_catalogue(catalogue, reason)
    emit_id("technique catalogue", f"{len(catalogue)} techniques", fmt)


@techniques.command("list")
@format_option
@pass_context
def list_techniques(ctx: Context, fmt: str | None) -> None:
    """List the catalogue, least restrictive first.

    Example: calm-ledger techniques list
    """
    catalogue = ctx.service_reader().catalogue()
    rows = [
        t.model_dump(mode="json")
        for t in sorted(catalogue.techniques.values(), key=lambda t: (t.rank, t.technique_id))
    ]
    emit(rows, fmt, ["technique_id", "name", "rank", "staff_required", "types", "curriculum"])
