"""`calm-ledger plans …` and `calm-ledger authorisations …`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from cli.bootstrap import Context
from cli.records import emit_id, json_option, now, parse_time, read_record
from domain.authorisations import Scope
from domain.events import Instant
from domain.plans import PlanContent, RevisionReason
from domain.vocabulary import AuthorisationKind, InterventionType, Position
from ledger.recording import Command, parse_command

pass_context = click.make_pass_decorator(Context)


class PlanFile(Command):
    person: str
    content: PlanContent
    reason: RevisionReason | None = None
    at: Instant | None = None


@click.group()
def plans() -> None:
    """Behaviour support plans: publish, revise after learning, review."""


def _plan_file(record_file: Path) -> PlanFile:
    return parse_command(PlanFile, read_record(record_file))


@plans.command("publish")
@click.option(
    "--file",
    "record_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML/JSON: person, content {primary, secondary, tertiary, recovery, review_due}.",
)
@json_option
@pass_context
def publish(ctx: Context, record_file: Path, fmt: str) -> None:
    """Publish a person's first behaviour support plan.

    Example: calm-ledger --as lee plans publish --file plan.yaml
    """
    plan = _plan_file(record_file)
    ctx.service().publish_plan(plan.person, plan.content, plan.at or now())
    emit_id("plan", plan.person, fmt)


@plans.command("revise")
@click.option(
    "--file",
    "record_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="As for publish, plus reason {incidents, debriefs, note}.",
)
@json_option
@pass_context
def revise(ctx: Context, record_file: Path, fmt: str) -> None:
    """Revise a plan, naming the incidents and debriefs that led to it (the learning loop).

    Example: calm-ledger --as lee plans revise --file plan-v2.yaml
    """
    plan = _plan_file(record_file)
    if plan.reason is None:
        raise click.UsageError("a revision needs a reason: {incidents, debriefs, note}")
    ctx.service().revise_plan(plan.person, plan.content, plan.reason, plan.at or now())
    emit_id("plan revision", plan.person, fmt)


class NewAuthorisation(Command):
    kind: AuthorisationKind
    service: str
    person: str
    techniques: tuple[str, ...] = ()
    types: tuple[InterventionType, ...] = ()
    excluded_positions: tuple[Position, ...] = ()
    max_minutes: int | None = None
    approver: str
    approver_role: str
    valid_from: Instant
    valid_until: Instant
    conditions: str | None = None


@click.group()
def authorisations() -> None:
    """Grant, renew and revoke authorisations (authorisers only)."""


@authorisations.command("grant")
@click.option("--kind", required=True, type=click.Choice([k.value for k in AuthorisationKind]))
@click.option("--service", required=True)
@click.option("--person", required=True)
@click.option("--technique", "techniques", multiple=True, help="Technique ids in scope.")
@click.option("--type", "types", multiple=True, help="Intervention type codes in scope.")
@click.option(
    "--exclude-position", "excluded", multiple=True, type=click.Choice([p.value for p in Position])
)
@click.option("--max-minutes", type=click.IntRange(min=1))
@click.option("--approver", required=True, help="Staff id of the approver.")
@click.option("--approver-role", required=True, help="e.g. responsible clinician, head teacher.")
@click.option("--from", "valid_from", required=True, help="ISO 8601 time.")
@click.option("--until", "valid_until", required=True, help="ISO 8601 time.")
@click.option("--conditions")
@json_option
@pass_context
def grant(
    ctx: Context,
    kind: str,
    service: str,
    person: str,
    techniques: tuple[str, ...],
    types: tuple[str, ...],
    excluded: tuple[str, ...],
    max_minutes: int | None,
    approver: str,
    approver_role: str,
    valid_from: str,
    valid_until: str,
    conditions: str | None,
    fmt: str,
) -> None:
    """Grant an authorisation for restrictive interventions within a scope and a time window.

    Example: calm-ledger --as quinn authorisations grant --kind planned --service ward-3
             --person P-7F3A --technique two-person-seated --exclude-position prone
             --approver S-001 --approver-role "responsible clinician"
             --from 2026-10-01T00:00Z --until 2027-01-01T00:00Z
    """
    new = parse_command(
        NewAuthorisation,
        {
            "kind": kind,
            "service": service,
            "person": person,
            "techniques": techniques,
            "types": types,
            "excluded_positions": excluded,
            "max_minutes": max_minutes,
            "approver": approver,
            "approver_role": approver_role,
            "valid_from": parse_time(valid_from, "--from"),
            "valid_until": parse_time(valid_until, "--until"),
            "conditions": conditions,
        },
    )
    scope = Scope(
        person_id=new.person,
        techniques=new.techniques,
        types=new.types,
        excluded_positions=new.excluded_positions,
        max_minutes=new.max_minutes,
    )
    ref = ctx.service().grant_authorisation(
        new.kind,
        new.service,
        scope,
        new.approver,
        new.approver_role,
        new.valid_from,
        new.valid_until,
        new.conditions,
    )
    emit_id("authorisation", ref, fmt)


@authorisations.command("renew")
@click.argument("ref")
@click.option("--until", "valid_until", required=True)
@click.option("--assessment", required=True, help="The face-to-face review it rests on.")
@json_option
@pass_context
def renew(ctx: Context, ref: str, valid_until: str, assessment: str, fmt: str) -> None:
    """Extend an authorisation after a new assessment.

    Example: calm-ledger --as quinn authorisations renew AUTH-1A2B3C4D5E6F
             --until 2027-04-01T00:00Z --assessment "MDT review 2026-12-20"
    """
    ctx.service().renew_authorisation(ref, parse_time(valid_until, "--until"), assessment)
    emit_id("renewal", ref, fmt)


@authorisations.command("revoke")
@click.argument("ref")
@click.option("--reason", required=True)
@click.option("--at", default=None, help="When (default: now).")
@json_option
@pass_context
def revoke(ctx: Context, ref: str, reason: str, at: str | None, fmt: str) -> None:
    """Revoke an authorisation.

    Example: calm-ledger --as quinn authorisations revoke AUTH-1A2B3C4D5E6F --reason "plan revised"
    """
    when: datetime = parse_time(at, "--at") if at else now()
    ctx.service().revoke_authorisation(ref, when, reason)
    emit_id("revocation", ref, fmt)
