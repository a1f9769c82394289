"""`calm-ledger people …` and `calm-ledger staff …`."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from cli.bootstrap import Context
from cli.records import emit_id, file_option, flags_or_file, json_option, parse_day
from domain.staff import Training
from domain.vocabulary import AgeBand
from ledger.recording import Command, parse_command

pass_context = click.make_pass_decorator(Context)


class NewPerson(Command):
    id: str
    service: str
    full_name: str | None = None
    date_of_birth: date | None = None
    nhs_number: str | None = None
    mental_disorder: str | None = None
    protected_characteristics: str | None = None
    age_band: AgeBand | None = None
    learning_disability_or_autism: bool = False
    special_educational_needs: bool = False


@click.group()
def people() -> None:
    """Register people supported (pseudonymous ids; personal details sealed)."""


@people.command("register")
@click.option("--id", "person_id", help="A pseudonym, e.g. P-7F3A (never a name).")
@click.option("--service")
@click.option("--name", "full_name", help="Sealed in storage; erasable.")
@click.option("--date-of-birth", help="YYYY-MM-DD; sealed.")
@click.option("--nhs-number", help="Sealed.")
@click.option("--age-band", type=click.Choice([a.value for a in AgeBand]))
@click.option("--learning-disability-or-autism", "ld", is_flag=True)
@click.option("--sen", is_flag=True, help="Special educational / additional support needs.")
@file_option
@json_option
@pass_context
def register(
    ctx: Context,
    person_id: str | None,
    service: str | None,
    full_name: str | None,
    date_of_birth: str | None,
    nhs_number: str | None,
    age_band: str | None,
    ld: bool,
    sen: bool,
    record_file: Path | None,
    fmt: str,
) -> None:
    """Register a person supported by a service.

    Example: calm-ledger --as lee people register --id P-7F3A --service ward-3
             --name "Alex Example" --date-of-birth 2011-03-14 --age-band 9-17
    """
    record = flags_or_file(
        record_file,
        {
            "id": person_id,
            "service": service,
            "full_name": full_name,
            "date_of_birth": parse_day(date_of_birth, "--date-of-birth") if date_of_birth else None,
            "nhs_number": nhs_number,
            "age_band": age_band,
            "learning_disability_or_autism": ld or None,
            "special_educational_needs": sen or None,
        },
    )
    new = parse_command(NewPerson, record)
    recording = ctx.service()
    recording.service_record(new.service)
    recording.register_person(new.id, new.service, **new.model_dump(exclude={"id", "service"}))
    emit_id("person", new.id, fmt)


class NewStaff(Command):
    id: str
    service: str
    job_title: str
    full_name: str | None = None


@click.group()
def staff() -> None:
    """Register staff and record their training and certification."""


@staff.command("register")
@click.option("--id", "staff_id", help="Staff id, e.g. S-014.")
@click.option("--service")
@click.option("--job-title")
@click.option("--name", "full_name", help="Sealed in storage.")
@file_option
@json_option
@pass_context
def register_staff(
    ctx: Context,
    staff_id: str | None,
    service: str | None,
    job_title: str | None,
    full_name: str | None,
    record_file: Path | None,
    fmt: str,
) -> None:
    """Register a member of staff (name and job title: UoF s.6(5)(h)).

    Example: calm-ledger --as lee staff register --id S-014 --service ward-3
             --job-title "Healthcare assistant" --name "Sam Example"
    """
    record = flags_or_file(
        record_file,
        {"id": staff_id, "service": service, "job_title": job_title, "full_name": full_name},
    )
    new = parse_command(NewStaff, record)
    ctx.service().register_staff(new.id, new.service, new.job_title, new.full_name)
    emit_id("staff member", new.id, fmt)


@staff.command("train")
@click.argument("staff_id")
@click.option("--course")
@click.option("--curriculum")
@click.option(
    "--technique", "techniques", multiple=True, help="Technique id certified (repeatable)."
)
@click.option("--completed", help="YYYY-MM-DD.")
@click.option("--valid-until", help="YYYY-MM-DD.")
@click.option("--provider")
@click.option("--certificate", help="Provider certification reference (e.g. Bild ACT).")
@file_option
@json_option
@pass_context
def train(
    ctx: Context,
    staff_id: str,
    course: str | None,
    curriculum: str | None,
    techniques: tuple[str, ...],
    completed: str | None,
    valid_until: str | None,
    provider: str | None,
    certificate: str | None,
    record_file: Path | None,
    fmt: str,
) -> None:
    """Record a training course and the techniques it certifies, until when.

    Example: calm-ledger --as lee staff train S-014 --course "CALM Physical Skills"
             --curriculum CALM --technique one-person-hold --completed 2026-01-10
             --valid-until 2027-01-10 --provider "CALM Training"
    """
    record = flags_or_file(
        record_file,
        {
            "course": course,
            "curriculum": curriculum,
            "techniques": techniques or None,
            "completed_on": completed,
            "valid_until": valid_until,
            "provider": provider,
            "certificate": certificate,
        },
    )
    training = parse_command(Training, record)
    ctx.service().record_training(staff_id, training)
    emit_id("training", f"{staff_id} {training.course}", fmt)
