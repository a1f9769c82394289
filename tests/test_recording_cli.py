"""Recording the domain through the command line, on both stores: the happy path, permissions,
sealed personal data, bad input (specific message, exit 2, log unchanged) and CSV import."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from domain.roles import Role
from tests.conftest import PASSPHRASE, Ledger
from tests.support import Superuser, run_cli

ENV = {"CALM_LEDGER_PASSPHRASE": PASSPHRASE}
START, END = "2026-10-05T14:30:00Z", "2026-10-05T14:38:00Z"


def cli(ledger: Ledger, *args: str, input: str | None = None) -> Result:
    return run_cli(["--dir", str(ledger.directory), *args], env=ENV, input=input)


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def size(ledger: Ledger) -> int:
    app = ledger.open()
    try:
        return app.store.head().size
    finally:
        app.close()


@pytest.fixture
def ward(ledger: Ledger) -> Ledger:
    """A mental-health ward with a lead, a recorder, a manager, an authoriser, a person,
    a trained member of staff and the default technique catalogue."""
    app = ledger.open()
    for name, role in (
        ("lee", Role.SAFEGUARDING_LEAD),
        ("sam", Role.RECORDER),
        ("mo", Role.MANAGER),
        ("quinn", Role.AUTHORISER),
    ):
        ledger.enrol(app, name, role)
    app.close()
    ok(
        cli(
            ledger,
            "--as",
            "ada",
            "services",
            "register",
            "--id",
            "ward-3",
            "--name",
            "Ward 3",
            "--setting",
            "mental-health-unit",
            "--profile",
            "uk-eng-mh-unit",
        )
    )
    ok(cli(ledger, "--as", "ada", "techniques", "publish", "--default"))
    ok(
        cli(
            ledger,
            "--as",
            "lee",
            "people",
            "register",
            "--id",
            "P-7F3A",
            "--service",
            "ward-3",
            "--name",
            "Zebedee Quartermain",
            "--date-of-birth",
            "2011-03-14",
            "--nhs-number",
            "943 476 5919",
        )
    )
    ok(
        cli(
            ledger,
            "--as",
            "lee",
            "staff",
            "register",
            "--id",
            "S-014",
            "--service",
            "ward-3",
            "--job-title",
            "Healthcare assistant",
            "--name",
            "Sam Example",
        )
    )
    ok(
        cli(
            ledger,
            "--as",
            "lee",
            "staff",
            "train",
            "S-014",
            "--course",
            "CALM Physical Skills",
            "--curriculum",
            "CALM",
            "--technique",
            "one-person-hold",
            "--completed",
            "2026-01-10",
            "--valid-until",
            "2027-01-10",
            "--provider",
            "CALM Training",
        )
    )
    return ledger


def record_args(**overrides: str) -> list[str]:
    fields = {
        "--service": "ward-3",
        "--person": "P-7F3A",
        "--place": "Lounge",
        "--start": START,
        "--end": END,
        "--reason": "10",
        "--type": "07",
        "--technique": "one-person-hold",
        "--position": "standing",
        "--staff": "S-014",
        "--de-escalation": "offered quiet space",
        "--description": "held both arms standing",
        "--outcome": "calm within minutes",
    }
    fields.update(overrides)
    args = ["incidents", "record"]
    for flag, value in fields.items():
        if value:
            args += [flag, value]
    return args


def test_an_incident_is_recorded_followed_up_and_corrected(ward: Ledger) -> None:
    auth = ok(
        cli(
            ward,
            "--as",
            "quinn",
            "authorisations",
            "grant",
            "--kind",
            "planned",
            "--service",
            "ward-3",
            "--person",
            "P-7F3A",
            "--technique",
            "one-person-hold",
            "--exclude-position",
            "prone",
            "--approver",
            "S-014",
            "--approver-role",
            "responsible clinician",
            "--from",
            "2026-10-01T00:00Z",
            "--until",
            "2027-01-01T00:00Z",
        )
    )
    ref = ok(cli(ward, "--as", "sam", *record_args(), "--authorisation", auth, "--part-of-plan"))
    assert ref.startswith("INC-")
    ok(
        cli(
            ward,
            "--as",
            "sam",
            "incidents",
            "debrief",
            ref,
            "--type",
            "person",
            "--facilitator",
            "S-014",
            "--at",
            "2026-10-05T16:00Z",
            "--account",
            "I was scared",
        )
    )
    ok(
        cli(
            ward,
            "--as",
            "sam",
            "incidents",
            "notify",
            ref,
            "--recipient",
            "parent-carer",
            "--channel",
            "phone",
            "--by",
            "S-014",
            "--at",
            "2026-10-05T15:00Z",
        )
    )
    ok(cli(ward, "--as", "mo", "incidents", "sign-off", ref, "--at", "2026-10-06T09:00Z"))
    ok(
        cli(
            ward,
            "--as",
            "sam",
            "incidents",
            "correct",
            ref,
            "--version",
            "1",
            "--reason",
            "it was in the garden",
            "--set",
            'place="Garden"',
        )
    )
    story = json.loads(ok(cli(ward, "incidents", "show", ref, "--format", "json")))
    assert [e["type"] for e in story] == [
        "incident.recorded",
        "incident.debrief-held",
        "incident.notification-sent",
        "incident.signed-off",
        "incident.corrected",
    ]
    assert story[0]["data"]["coverage"] == "valid"
    assert story[3]["signed_by"] == "mo"
    assert story[4]["data"]["facts"]["place"] == "Garden"
    assert story[1]["data"]["persons_account"] == "I was scared"
    listed = json.loads(ok(cli(ward, "incidents", "list", "--format", "json")))
    assert [row["incident"] for row in listed] == [ref]
    assert ok(cli(ward, "verify")).endswith("verified")


def test_an_intervention_outside_its_authorisation_is_recorded_as_such(ward: Ledger) -> None:
    auth = ok(
        cli(
            ward,
            "--as",
            "quinn",
            "authorisations",
            "grant",
            "--kind",
            "planned",
            "--service",
            "ward-3",
            "--person",
            "P-7F3A",
            "--technique",
            "one-person-hold",
            "--approver",
            "S-014",
            "--approver-role",
            "RC",
            "--from",
            "2026-09-01T00:00Z",
            "--until",
            "2026-10-01T00:00Z",
        )
    )
    ref = ok(cli(ward, "--as", "sam", *record_args(), "--authorisation", auth))
    story = json.loads(ok(cli(ward, "incidents", "show", ref, "--format", "json")))
    assert story[0]["data"]["coverage"] == "expired"


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_an_incident_can_be_recorded_from_a_file(ward: Ledger, tmp_path: Path, suffix: str) -> None:
    record = {
        "service": "ward-3",
        "person": "P-7F3A",
        "place": "Bedroom",
        "start": START,
        "end": END,
        "reason": "11",
        "de_escalation": ["talked", "offered PRN"],
        "force_description": "two holds",
        "outcome": "settled",
        "interventions": [
            {
                "type": "07",
                "technique_id": "one-person-hold",
                "start": START,
                "end": "2026-10-05T14:33:00Z",
                "staff_count": 1,
                "staff": [{"staff_id": "S-014"}],
            },
            {
                "type": "16",
                "start": "2026-10-05T14:34:00Z",
                "end": END,
                "staff_count": 1,
                "staff": [{"staff_id": "S-014"}],
                "chemical": {"drug": "lorazepam", "dose": "1 mg", "route": "oral"},
            },
        ],
        "injuries": [{"person": "staff", "description": "scratch", "severity": "minor"}],
    }
    path = tmp_path / f"incident{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(record))
    else:
        import yaml

        path.write_text(yaml.safe_dump(record))
    ref = ok(
        cli(ward, "--as", "sam", "incidents", "record", "--file", str(path), "--format", "json")
    )
    assert json.loads(ref)["id"].startswith("INC-")


def test_interactive_recording_asks_for_what_the_profile_requires(ward: Ledger) -> None:
    answers = (
        "\n".join(
            [
                "ward-3",
                "P-7F3A",
                "Lounge",
                START,
                END,
                "10",
                "talked; offered space",
                "07",
                "one-person-hold",
                "S-014",
                "held arms",
                "calm",
            ]
        )
        + "\n"
    )
    result = cli(ward, "--as", "sam", "incidents", "record", "--interactive", input=answers)
    assert result.exit_code == 0, result.stderr + result.stdout
    assert "Describe how force was used" in result.stdout
    assert "What was the outcome?" in result.stdout


def test_personal_fields_are_sealed_in_the_stored_bytes(ward: Ledger) -> None:
    su = Superuser(ward.db)
    raw = b"".join(bytes(row[0]) for row in su.query(f"SELECT state FROM {su.table('events')}"))
    assert b"events" not in raw[:0]  # the query returned envelopes
    assert raw.count(b"CLE1") == size(ward)
    for secret in (b"Zebedee", b"Quartermain", b"2011-03-14", b"943 476 5919", b"Sam Example"):
        assert secret not in raw


def test_a_recorder_cannot_grant_an_authorisation(ward: Ledger) -> None:
    before = size(ward)
    result = cli(
        ward,
        "--as",
        "sam",
        "authorisations",
        "grant",
        "--kind",
        "planned",
        "--service",
        "ward-3",
        "--person",
        "P-7F3A",
        "--approver",
        "S-014",
        "--approver-role",
        "RC",
        "--from",
        "2026-10-01T00:00Z",
        "--until",
        "2027-01-01T00:00Z",
    )
    assert result.exit_code == 2 and "may not sign 'authorisation.granted'" in result.stderr
    assert size(ward) == before


def test_a_recorder_cannot_sign_off(ward: Ledger) -> None:
    ref = ok(cli(ward, "--as", "sam", *record_args()))
    before = size(ward)
    result = cli(ward, "--as", "sam", "incidents", "sign-off", ref)
    assert result.exit_code == 2 and "may not sign 'incident.signed-off'" in result.stderr
    assert size(ward) == before


def test_a_revoked_actor_cannot_record(ward: Ledger) -> None:
    ok(cli(ward, "--as", "ada", "actors", "revoke", "sam", "--reason", "left"))
    before = size(ward)
    result = cli(ward, "--as", "sam", *record_args())
    assert result.exit_code == 2 and "revoked" in result.stderr
    assert size(ward) == before


BAD_RECORDS: list[tuple[str, dict[str, str], str]] = [
    ("unknown reason code", {"--reason": "77"}, "Invalid value for '--reason'"),
    ("unknown type code", {"--type": "99"}, "Invalid value for '--type'"),
    ("end before start", {"--end": "2026-10-05T14:00:00Z"}, "before it starts"),
    ("missing statutory description", {"--description": ""}, "how force was used"),
    ("missing de-escalation", {"--de-escalation": ""}, "efforts made to avoid force"),
    ("unknown person", {"--person": "P-NOBODY"}, "no person 'P-NOBODY'"),
    ("unknown service", {"--service": "ward-99"}, "no service 'ward-99'"),
    ("unknown technique", {"--technique": "headlock"}, "unknown technique 'headlock'"),
    ("unknown staff", {"--staff": "S-999"}, "no staff member 'S-999'"),
    ("bad time", {"--start": "yesterday"}, "invalid --start"),
]


@pytest.mark.parametrize(
    ("case", "overrides", "message"), BAD_RECORDS, ids=[c[0] for c in BAD_RECORDS]
)
def test_bad_incident_input_is_refused_and_nothing_written(
    ward: Ledger, case: str, overrides: dict[str, str], message: str
) -> None:
    before = size(ward)
    result = cli(ward, "--as", "sam", *record_args(**overrides))
    assert result.exit_code == 2, (case, result.stdout, result.stderr)
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert size(ward) == before


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.json", '{"service": "ward-3", ', "malformed JSON at line 1"),
        ("bad.yaml", "service: [ward-3\nperson: x\n", "malformed YAML"),
        ("list.yaml", "- a\n- b\n", "must hold one record"),
        ("fields.yaml", "service: ward-3\n", "person: Field required"),
    ],
)
def test_malformed_record_files_are_refused(
    ward: Ledger, tmp_path: Path, name: str, content: str, message: str
) -> None:
    before = size(ward)
    path = tmp_path / name
    path.write_text(content)
    result = cli(ward, "--as", "sam", "incidents", "record", "--file", str(path))
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert size(ward) == before


MAPPING = """
[columns]
service = "Unit"
person = "Patient"
place = "Location"
start = "Start"
end = "End"
reason = "Reason"
type = "Type"
technique = "Technique"
staff = "Staff"
de_escalation = "Tried"
force_description = "Description"
outcome = "Outcome"

[values.reason]
"Violence to others" = "10"

[options]
timezone = "Europe/London"
"""
HEADER = [
    "Unit",
    "Patient",
    "Location",
    "Start",
    "End",
    "Reason",
    "Type",
    "Technique",
    "Staff",
    "Tried",
    "Description",
    "Outcome",
]


def csv_rows(n: int) -> list[list[str]]:
    return [
        [
            "ward-3",
            "P-7F3A",
            "Lounge",
            f"2026-10-{1 + i % 28:02d}T{8 + i % 12:02d}:{i % 60:02d}",
            f"2026-10-{1 + i % 28:02d}T{8 + i % 12:02d}:{i % 60:02d}:59",
            "Violence to others",
            "07",
            "one-person-hold",
            "S-014",
            "talked;offered space",
            "held",
            "calm",
        ]
        for i in range(n)
    ]


def write_csv(path: Path, rows: list[list[Any]]) -> None:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([HEADER, *rows])


def test_csv_import_writes_nothing_when_a_row_is_invalid(ward: Ledger, tmp_path: Path) -> None:
    (tmp_path / "map.toml").write_text(MAPPING)
    rows = csv_rows(5)
    rows[3][6] = "77"  # unknown type
    rows[4][1] = "P-NOBODY"
    write_csv(tmp_path / "in.csv", rows)
    before = size(ward)
    result = cli(
        ward,
        "--as",
        "lee",
        "import",
        "incidents",
        str(tmp_path / "in.csv"),
        "--mapping",
        str(tmp_path / "map.toml"),
    )
    assert result.exit_code == 2
    assert "line 5: type:" in result.stderr and "line 6: no person 'P-NOBODY'" in result.stderr
    assert "2 of 5 rows are invalid; nothing was written" in result.stderr
    assert size(ward) == before
    skipped = cli(
        ward,
        "--as",
        "lee",
        "import",
        "incidents",
        str(tmp_path / "in.csv"),
        "--mapping",
        str(tmp_path / "map.toml"),
        "--skip-invalid",
    )
    assert skipped.exit_code == 0, skipped.stderr
    assert size(ward) == before + 3
    rejects = (tmp_path / "in.rejects.csv").read_text().splitlines()
    assert len(rejects) == 3 and rejects[1].startswith("5,")


def test_malformed_csv_and_mapping_are_refused(ward: Ledger, tmp_path: Path) -> None:
    (tmp_path / "map.toml").write_text("[columns\n")
    (tmp_path / "in.csv").write_text("a,b\n1,2\n")
    result = cli(
        ward,
        "--as",
        "lee",
        "import",
        "incidents",
        str(tmp_path / "in.csv"),
        "--mapping",
        str(tmp_path / "map.toml"),
    )
    assert result.exit_code == 2 and "mapping is not valid TOML" in result.stderr
    (tmp_path / "map.toml").write_text(MAPPING)
    result = cli(
        ward,
        "--as",
        "lee",
        "import",
        "incidents",
        str(tmp_path / "in.csv"),
        "--mapping",
        str(tmp_path / "map.toml"),
    )
    assert result.exit_code == 2 and "the CSV has no column(s)" in result.stderr


def test_csv_import_of_ten_thousand_rows(ward: Ledger, tmp_path: Path) -> None:
    (tmp_path / "map.toml").write_text(MAPPING)
    write_csv(tmp_path / "in.csv", csv_rows(10_000))
    before = size(ward)
    result = cli(
        ward,
        "--as",
        "lee",
        "import",
        "incidents",
        str(tmp_path / "in.csv"),
        "--mapping",
        str(tmp_path / "map.toml"),
    )
    assert result.exit_code == 0, result.stderr
    assert size(ward) == before + 10_000
    assert ok(cli(ward, "verify")).endswith("verified")
