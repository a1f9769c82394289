"""`calm-ledger incidents …`: record an incident and everything that follows it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cli.bootstrap import Context
from cli.output import emit, format_option
from cli.records import (
    emit_id,
    file_option,
    flags_or_file,
    json_option,
    now,
    parse_day,
    parse_time,
    read_record,
)
from domain.vocabulary import DebriefType, InterventionType, Position, Reason, Recipient
from ledger.errors import NotFound, ValidationError

# The write path (ledger.recording, domain.statutory) and the event decoders are imported in
# the commands that use them: a query should not pay for them at start-up.

pass_context = click.make_pass_decorator(Context)


@click.group()
def incidents() -> None:
    """Record incidents, debriefs, notifications, sign-off and corrections."""


@incidents.command("record")
@click.option("--service")
@click.option("--person", help="The person's pseudonymous id.")
@click.option("--place")
@click.option("--start", help="When it started (ISO 8601).")
@click.option("--end", help="When it ended (ISO 8601).")
@click.option("--reason", type=click.Choice([r.value for r in Reason]), help="Reason code.")
@click.option(
    "--type",
    "kind",
    type=click.Choice([t.value for t in InterventionType]),
    help="Intervention type code (one intervention; use --file for several).",
)
@click.option("--technique", help="Technique id from the catalogue.")
@click.option("--position", type=click.Choice([p.value for p in Position]))
@click.option("--staff", "staff_ids", multiple=True, help="Staff id of each person who held.")
@click.option("--staff-count", type=click.IntRange(min=0, max=20))
@click.option("--de-escalation", "de_escalation", multiple=True, help="What was tried first.")
@click.option("--antecedents", help="What happened beforehand.")
@click.option("--description", "force_description", help="How force was used.")
@click.option("--outcome")
@click.option("--authorisation", help="The authorisation relied on, if any.")
@click.option("--part-of-plan", is_flag=True, help="The intervention is in the person's plan.")
@click.option("--interactive", is_flag=True, help="Be asked for each field in plain language.")
@file_option
@json_option
@pass_context
def record(
    ctx: Context, /, record_file: Path | None, fmt: str, interactive: bool, **flags: Any
) -> None:
    """Record a restrictive intervention episode. Prints the incident's reference.

    Example: calm-ledger --as sam incidents record --service ward-3 --person P-7F3A
             --place Lounge --start 2026-10-05T14:30Z --end 2026-10-05T14:38Z --reason 10
             --type 07 --technique one-person-hold --position standing --staff S-014
             --de-escalation "offered quiet space" --description "…" --outcome "…"
    """
    from ledger.recording import NewIncident, parse_command

    service = ctx.service()
    if interactive:
        data = _ask(ctx, service)
    else:
        data = _incident_record(flags_or_file(record_file, flags))
    ref = service.record_incident(parse_command(NewIncident, data))
    emit_id("incident", ref, fmt)


def _incident_record(record: dict[str, Any]) -> dict[str, Any]:
    """Flags describe one intervention spanning the incident; a file gives the full record."""
    if "interventions" in record or "kind" not in record:
        return record
    flat = dict(record)
    staff = flat.pop("staff_ids", ()) or ()
    intervention = {
        "type": flat.pop("kind"),
        "technique_id": flat.pop("technique", None),
        "position": flat.pop("position", None),
        "start": flat.get("start"),
        "end": flat.get("end"),
        "staff_count": flat.pop("staff_count", None) or len(staff),
        "staff": [{"staff_id": s} for s in staff],
    }
    flat["interventions"] = [{k: v for k, v in intervention.items() if v is not None}]
    for key in ("start", "end"):
        if isinstance(flat.get(key), str):
            flat[key] = parse_time(flat[key], f"--{key}")
            flat["interventions"][0][key] = flat[key]
    flat["part_of_care_plan"] = flat.pop("part_of_plan", False)
    return flat


def _plain() -> dict[int, tuple[str, str]]:
    from domain.statutory import BEFOREHAND, DESCRIPTION, OUTCOME

    return {
        id(BEFOREHAND): ("antecedents", "What was happening just before? (triggers, early signs)"),
        id(DESCRIPTION): ("force_description", "Describe how force was used, step by step"),
        id(OUTCOME): ("outcome", "What was the outcome? (how the person and staff were after)"),
    }


def _ask(ctx: Context, service: Any) -> dict[str, Any]:
    """Guide a person through the fields the service's profiles require."""
    data: dict[str, Any] = {}
    data["service"] = click.prompt("Service id")
    profiles = service.service_record(data["service"]).profiles
    data["person"] = click.prompt("Person's id (pseudonym)")
    service.person(data["person"])
    data["place"] = click.prompt("Where did it happen?")
    start = parse_time(click.prompt("When did it start? (e.g. 2026-10-05T14:30)"), "start")
    end = parse_time(click.prompt("When did it end?"), "end")
    data.update(start=start, end=end)
    data["reason"] = click.prompt("Reason code", type=click.Choice([r.value for r in Reason]))
    tried = click.prompt("What was tried first to avoid force? (separate with ';')")
    data["de_escalation"] = [t.strip() for t in tried.split(";") if t.strip()]
    kind = click.prompt(
        "Intervention type code", type=click.Choice([t.value for t in InterventionType])
    )
    technique = click.prompt("Technique id (blank if none)", default="", show_default=False)
    staff = click.prompt("Staff ids who held (separate with ',')", default="", show_default=False)
    staff_ids = [s.strip() for s in staff.split(",") if s.strip()]
    data["interventions"] = [
        {
            "type": kind,
            "start": start,
            "end": end,
            "staff_count": len(staff_ids),
            "staff": [{"staff_id": s} for s in staff_ids],
            **({"technique_id": technique} if technique else {}),
        }
    ]
    from domain.statutory import REQUIRED

    needed = {id(r) for p in profiles for r in REQUIRED.get(p, ())}
    for requirement, (field, question) in _plain().items():
        if requirement in needed:
            data[field] = click.prompt(question)
    return data


@incidents.command("debrief")
@click.argument("ref")
@click.option("--type", "kind", required=True, type=click.Choice([d.value for d in DebriefType]))
@click.option("--at", help="When (default: now).")
@click.option("--facilitator", help="Staff id of the facilitator (or who offered it).")
@click.option("--participant", "participants", multiple=True)
@click.option("--plan-revision-needed", is_flag=True)
@click.option("--declined", is_flag=True, help="The debrief was offered and declined.")
@click.option("--reason", help="Why it was declined or not held.")
@click.option("--account", "persons_account", help="The person's own account (sealed).")
@click.option("--learning", help="Learning points (sealed).")
@json_option
@pass_context
def debrief(
    ctx: Context,
    ref: str,
    kind: str,
    at: str | None,
    facilitator: str | None,
    participants: tuple[str, ...],
    plan_revision_needed: bool,
    declined: bool,
    reason: str | None,
    persons_account: str | None,
    learning: str | None,
    fmt: str,
) -> None:
    """Record a debrief held (or offered and declined) after an incident.

    Example: calm-ledger --as sam incidents debrief INC-1A2B3C4D5E6F --type person
             --facilitator S-002 --account "…" --learning "…"
    """
    when = parse_time(at, "--at") if at else now()
    service = ctx.service()
    if not facilitator:
        raise ValidationError("--facilitator is required (who held or offered the debrief)")
    if declined:
        service.decline_debrief(ref, DebriefType(kind), when, facilitator, reason or "")
        emit_id("declined debrief", ref, fmt)
        return
    debrief_id = service.record_debrief(
        ref,
        DebriefType(kind),
        when,
        facilitator,
        participants=participants,
        recommend_plan_revision=plan_revision_needed,
        persons_account=persons_account,
        learning=learning,
    )
    emit_id("debrief", debrief_id, fmt)


@incidents.command("notify")
@click.argument("ref")
@click.option("--recipient", required=True, type=click.Choice([r.value for r in Recipient]))
@click.option("--at", help="When (default: now).")
@click.option("--channel", help="phone, email, letter, portal …")
@click.option("--by", "sent_by", help="Staff id who sent it.")
@click.option("--withheld", is_flag=True, help="Not sent: risk of significant harm.")
@click.option("--reason", help="Why it was withheld.")
@click.option("--approver", help="Staff id who approved withholding it.")
@json_option
@pass_context
def notify(
    ctx: Context,
    ref: str,
    recipient: str,
    at: str | None,
    channel: str | None,
    sent_by: str | None,
    withheld: bool,
    reason: str | None,
    approver: str | None,
    fmt: str,
) -> None:
    """Record a notification sent (or withheld, with reason and approver).

    Example: calm-ledger --as sam incidents notify INC-1A2B3C4D5E6F --recipient parent-carer
             --channel phone --by S-014
    """
    when = parse_time(at, "--at") if at else now()
    service = ctx.service()
    if withheld:
        service.withhold_notification(ref, Recipient(recipient), when, approver or "", reason or "")
    else:
        if not (channel and sent_by):
            raise ValidationError("--channel and --by are required for a notification sent")
        service.notify(ref, Recipient(recipient), when, channel, sent_by)
    emit_id("notification", ref, fmt)


@incidents.command("sign-off")
@click.argument("ref")
@click.option("--at", help="When (default: now).")
@click.option("--spoke-to-staff-at", help="When the manager spoke to the staff involved.")
@click.option("--spoke-to-person-at", help="When the manager spoke to the person (child).")
@json_option
@pass_context
def sign_off(
    ctx: Context,
    ref: str,
    at: str | None,
    spoke_to_staff_at: str | None,
    spoke_to_person_at: str | None,
    fmt: str,
) -> None:
    """Manager's sign-off of the record as accurate (managers only).

    Example: calm-ledger --as mo incidents sign-off INC-1A2B3C4D5E6F
             --spoke-to-staff-at 2026-10-06T09:00Z
    """
    ctx.service().sign_off(
        ref,
        parse_time(at, "--at") if at else now(),
        parse_time(spoke_to_staff_at) if spoke_to_staff_at else None,
        parse_time(spoke_to_person_at) if spoke_to_person_at else None,
    )
    emit_id("sign-off", ref, fmt)


@incidents.command("correct")
@click.argument("ref")
@click.option(
    "--version",
    "corrects_version",
    type=int,
    required=True,
    help="The version of the incident's record being corrected (see 'show').",
)
@click.option("--reason", required=True)
@click.option("--set", "assignments", multiple=True, help='FIELD=JSON value, e.g. place="Garden".')
@file_option
@json_option
@pass_context
def correct(
    ctx: Context,
    ref: str,
    corrects_version: int,
    reason: str,
    assignments: tuple[str, ...],
    record_file: Path | None,
    fmt: str,
) -> None:
    """Correct an incident record: a new signed event naming what it corrects and why.

    Example: calm-ledger --as sam incidents correct INC-1A2B3C4D5E6F --version 1
             --reason "wrong room" --set place='"Garden"'
    """
    if record_file is not None and assignments:
        raise ValidationError("give the changes either with --set or with --file, not both")
    changes = read_record(record_file) if record_file else _assignments(assignments)
    ctx.service().correct_incident(ref, corrects_version, reason, changes)
    emit_id("correction", ref, fmt)


def _assignments(assignments: tuple[str, ...]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for item in assignments:
        field, sep, raw = item.partition("=")
        if not sep:
            raise ValidationError(f"--set {item!r}: use FIELD=VALUE")
        try:
            changes[field] = json.loads(raw)
        except json.JSONDecodeError:
            changes[field] = raw  # a bare word is a string
    return changes


@incidents.command("show")
@click.argument("ref")
@format_option
@pass_context
def show(ctx: Context, ref: str, fmt: str | None) -> None:
    """The full story of an incident: every event, who signed it, and corrections.

    Example: calm-ledger incidents show INC-1A2B3C4D5E6F --format json
    """
    from domain.events import stream_id
    from ledger.envelope import decode_envelope
    from ledger.mapper import EnvelopeMapper, build_event
    from ledger.store.reads import LogReader

    # Read through the log's tables directly: opening the ledger application (the library's
    # recorder, a probe connection) would cost more than the query.
    reader = LogReader(ctx.store_url)
    try:
        mapper = EnvelopeMapper(origin="")
        mapper.subject_keys = reader  # to open the sealed fields; it makes no keys
        events = []
        for state in reader.stream_states(stream_id("incident", ref)):
            envelope = decode_envelope(state)
            header = envelope.header()
            events.append((header, build_event(header, mapper.open_data(envelope))))
    finally:
        reader.close()
    _check_recorded([event for _, event in events], ref)
    rows = [
        {
            "version": header.version,
            "type": header.type,
            "signed_by": header.actor,
            "key_id": header.key_id,
            "recorded_at": header.recorded_at,
            "data": _shown(event),
        }
        for header, event in events
    ]
    emit(rows, fmt, ["version", "type", "signed_by", "recorded_at", "data"])


def _check_recorded(events: list[Any], ref: str) -> None:
    """Refuse a ref with no incident, with `RecordingService.incident`'s message. The
    stream's first event decides which aggregate the repository would build from it, so the
    stream is read once, not again by the repository (and nothing loads the write path)."""
    from eventsourcing.domain import CanInitAggregate

    from domain.events import aggregate_class
    from domain.incidents import Incident

    created = bool(events) and isinstance(events[0], CanInitAggregate)
    if not created or aggregate_class(events[0].TYPE) is not Incident:
        raise NotFound(f"no incident {ref!r} is recorded")


def _shown(event: Any) -> dict[str, Any]:
    data: dict[str, Any] = event.model_dump(
        mode="json",
        exclude={"originator_id", "originator_version", "timestamp", "originator_topic"},
    )
    for name in type(event).PERSONAL:
        if data.get(name) is None and name in data:
            data[name] = "[none or erased]"
    return data


@incidents.command("list")
@click.option("--service")
@click.option("--person")
@click.option("--staff", help="Incidents where this staff member held.")
@click.option("--type", "kind", help="Intervention type code, e.g. 01 for prone.")
@click.option("--technique")
@click.option("--from", "start", help="From this date or time (inclusive).")
@click.option("--to", "end", help="Up to this date or time (exclusive).")
@click.option("--planned/--emergency", default=None, help="Only planned, or only emergency use.")
@click.option("--injury", is_flag=True, help="Only incidents with an injury.")
@format_option
@pass_context
def list_incidents(
    ctx: Context,
    service: str | None,
    person: str | None,
    staff: str | None,
    kind: str | None,
    technique: str | None,
    start: str | None,
    end: str | None,
    planned: bool | None,
    injury: bool,
    fmt: str | None,
) -> None:
    """List incidents from the register (caught up first), oldest first.

    Example: calm-ledger incidents list --type 01 --from 2026-10-01 --to 2026-11-01
    """
    import orjson

    read = ctx.read_model()
    rows = []
    for f in read.incident_facts(service, person, _bound(start), _bound(end)):
        types, techniques = orjson.loads(f["types"]), orjson.loads(f["techniques"])
        if staff and staff not in orjson.loads(f["staff"]):
            continue
        if (kind and kind not in types) or (technique and technique not in techniques):
            continue
        if (planned is not None and bool(f["planned"]) != planned) or (
            injury and not f["injuries"]
        ):
            continue
        rows.append(
            {
                "incident": f["ref"],
                "service": f["service_id"],
                "person": f["person_id"],
                "start": f["start"],
                "minutes": round(f["minutes"], 1),
                "types": types,
                "techniques": techniques,
                "planned": bool(f["planned"]),
                "injuries": f["injuries"],
                "debriefs": f["debriefs"],
                "signed_off": bool(f["signed_off"]),
            }
        )
    emit(
        rows,
        fmt,
        [
            "incident",
            "service",
            "person",
            "start",
            "minutes",
            "types",
            "planned",
            "injuries",
            "debriefs",
            "signed_off",
        ],
    )


def _bound(text: str | None) -> str | None:
    """A date or time bound as the ISO text the register is indexed by."""
    if text is None:
        return None
    if len(text) == 10:
        return parse_day(text).isoformat()
    return parse_time(text).isoformat()
