"""Canonical JSON: orjson over the restricted space must equal RFC 8785, byte for byte."""

from __future__ import annotations

import collections
import dataclasses
import decimal
import enum
import json
import struct
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from ledger.canonical import (
    MAX_DEPTH,
    MAX_SAFE_INTEGER,
    canonical_bytes,
    format_datetime,
    parse_canonical,
    parse_datetime,
)
from ledger.errors import ValidationError

VECTORS = json.loads((Path(__file__).parent / "vectors" / "jcs-rfc8785.json").read_text("utf-8"))

# --- strategies over the restricted space ---------------------------------------------

TRICKY_KEYS = ["", "a", "A", "_", "1", "10", "111", "~", "\x7f", "\x00", "\n", "a b", "aa", "a\x00"]
ascii_keys = st.one_of(
    st.text(st.characters(max_codepoint=0x7F), max_size=6), st.sampled_from(TRICKY_KEYS)
)
TRICKY_CHARACTERS = list('\u2028\u2029\x7f\ufeff\U0001f602\U0010ffff\x80/\\"\x00\x1f\b\f\n\r\t')
string_values = st.text(
    st.one_of(
        st.characters(codec="utf-8"),  # every scalar value except surrogates
        st.characters(min_codepoint=0x10000, codec="utf-8"),  # astral plane
        st.characters(max_codepoint=0x1F),  # control characters
        st.sampled_from(TRICKY_CHARACTERS),
    ),
    max_size=12,
)
EDGE_INTEGERS = [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, MAX_SAFE_INTEGER - 1, 0, -1, 2**31, 2**32]
integers = st.one_of(
    st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER), st.sampled_from(EDGE_INTEGERS)
)
scalars = st.one_of(st.none(), st.booleans(), integers, string_values)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(ascii_keys, children, max_size=5)
    ),
    max_leaves=30,
)


def with_one_float(children: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """Containers each holding valid values and one child that holds a float."""
    return st.one_of(
        st.tuples(st.lists(scalars, max_size=3), children).map(lambda t: [*t[0], t[1]]),
        st.tuples(st.dictionaries(ascii_keys, scalars, max_size=3), ascii_keys, children).map(
            lambda t: {**t[0], t[1]: t[2]}
        ),
    )


values_with_a_float = st.recursive(st.floats(), with_one_float, max_leaves=10)


def nested_lists(depth: int) -> list[object]:
    outer: list[object] = []
    inner = outer
    for _ in range(depth - 1):
        inner.append([])
        inner = inner[0]  # type: ignore[assignment]
    return outer


# --- encoding ---------------------------------------------------------------------------


@given(values)
def test_canonical_bytes_equal_rfc8785_over_the_restricted_space(value: object) -> None:
    assert canonical_bytes(value) == rfc8785.dumps(value)  # type: ignore[arg-type]


@given(values)
def test_canonical_bytes_parse_back_to_the_same_value(value: object) -> None:
    assert parse_canonical(canonical_bytes(value)) == value


def test_every_ascii_character_and_the_separators_are_escaped_as_rfc8785_says() -> None:
    text = "".join(map(chr, range(0x80))) + "\u2028\u2029\x80\ufeff\U0001f602/"
    assert canonical_bytes(text) == rfc8785.dumps(text)
    assert canonical_bytes("/\u2028\x7f") == '"/\u2028\x7f"'.encode()  # not escaped
    assert canonical_bytes("\x1f\b") == b'"\\u001f\\b"'


def test_non_ascii_string_values_are_raw_utf8() -> None:
    assert canonical_bytes({"name": "Zoë 😂"}) == '{"name":"Zoë 😂"}'.encode()


def test_keys_sort_by_code_point_not_locale_or_case() -> None:
    value = {"b": 1, "a": 2, "B": 3, "": 4, "10": 5, "1": 6, "_": 7, "~": 8}
    assert canonical_bytes(value) == b'{"":4,"1":6,"10":5,"B":3,"_":7,"a":2,"b":1,"~":8}'


def test_tuples_encode_as_arrays() -> None:
    assert canonical_bytes({"a": (1, "x", None)}) == b'{"a":[1,"x",null]}'


@pytest.mark.parametrize("edge", [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER])
def test_integers_at_the_safe_limit_are_accepted(edge: int) -> None:
    assert canonical_bytes([edge]) == rfc8785.dumps([edge])


@pytest.mark.parametrize("outside", [2**53, -(2**53), 2**64, -(2**70)])
def test_integers_beyond_the_safe_limit_are_refused(outside: int) -> None:
    with pytest.raises(ValidationError, match=r"\$\.n\[0\]: integer .* outside"):
        canonical_bytes({"n": [outside]})


@given(values_with_a_float)
def test_a_float_anywhere_is_refused(value: object) -> None:
    with pytest.raises(ValidationError, match="floats are not allowed"):
        canonical_bytes(value)


def test_the_error_names_the_path_of_the_bad_value() -> None:
    event = {"data": {"interventions": [{"minutes": 1}, {"minutes": 2}, {"minutes": 2.5}]}}
    with pytest.raises(ValidationError, match=r"^\$\.data\.interventions\[2\]\.minutes: float"):
        canonical_bytes(event)


def test_paths_quote_keys_that_are_not_identifiers() -> None:
    with pytest.raises(ValidationError, match=r'^\$\["a b"\]\[1\]: float'):
        canonical_bytes({"a b": [0, 0.5]})


@pytest.mark.parametrize("key", ["é", "😂", "\ud800"])
def test_non_ascii_keys_are_refused(key: str) -> None:
    with pytest.raises(ValidationError, match=r"^\$\.x: object key .* is not ASCII"):
        canonical_bytes({"x": {key: 1}})


@pytest.mark.parametrize("key", [1, None, True, ("a",), b"a"])
def test_non_string_keys_are_refused(key: object) -> None:
    with pytest.raises(ValidationError, match="object key"):
        canonical_bytes({key: 1})


def test_lone_surrogates_in_values_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"^\$\.s\[1\]: string contains a lone surrogate"):
        canonical_bytes({"s": ["ok", "bad \udc00"]})


class Colour(enum.Enum):
    RED = "red"


class Role(enum.StrEnum):
    ADMIN = "admin"


class Count(enum.IntEnum):
    ONE = 1


@dataclasses.dataclass
class Point:
    x: int


class Name(str):
    pass


OTHER_TYPES = [
    datetime(2024, 1, 1, tzinfo=UTC),
    decimal.Decimal("1"),
    b"bytes",
    {1, 2},
    uuid.UUID(int=0),
    Colour.RED,
    Role.ADMIN,
    Count.ONE,
    Point(1),
    Name("x"),
    collections.OrderedDict(a=1),
    float("nan"),
    float("inf"),
    object(),
]


@pytest.mark.parametrize("value", OTHER_TYPES, ids=lambda v: type(v).__name__)
def test_other_types_and_subclasses_are_refused(value: object) -> None:
    with pytest.raises(ValidationError, match=r"^\$\.v\[0\]: "):
        canonical_bytes({"v": [value]})


def test_nesting_to_the_limit_is_accepted_and_one_deeper_is_refused() -> None:
    assert canonical_bytes(nested_lists(MAX_DEPTH)) == b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    with pytest.raises(ValidationError, match=f"nesting deeper than {MAX_DEPTH}"):
        canonical_bytes(nested_lists(MAX_DEPTH + 1))


def test_a_cycle_is_refused_not_a_crash() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValidationError, match="nesting deeper"):
        canonical_bytes(loop)


# --- the published RFC 8785 vectors -------------------------------------------------------

IN_SPACE = {"arrays", "unicode"}
OUT_OF_SPACE = {
    "french": "is not ASCII",  # non-ASCII keys
    "structures": "floats are not allowed",  # 56.0 parses as a float
    "values": "floats are not allowed",
    "weird": "is not ASCII",  # keys such as "€" and "😂"
}


def test_every_vector_is_classified_as_in_or_out_of_the_space() -> None:
    assert set(VECTORS["cases"]) == IN_SPACE | set(OUT_OF_SPACE)


@pytest.mark.parametrize("name", sorted(IN_SPACE))
def test_vectors_in_the_space_encode_to_the_expected_bytes(name: str) -> None:
    case = VECTORS["cases"][name]
    expected = bytes.fromhex(case["expected_output_hex"])
    assert canonical_bytes(json.loads(case["input_utf8"])) == expected
    assert canonical_bytes(parse_canonical(expected)) == expected


@pytest.mark.parametrize("name", sorted(OUT_OF_SPACE))
def test_vectors_outside_the_space_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match=OUT_OF_SPACE[name]):
        canonical_bytes(json.loads(VECTORS["cases"][name]["input_utf8"]))


@pytest.mark.parametrize(
    "ieee_hex", [h for h, _ in VECTORS["es6_number_samples_ieee_hex_to_expected"]]
)
def test_es6_number_samples_are_floats_and_refused(ieee_hex: str) -> None:
    (number,) = struct.unpack(">d", bytes.fromhex(ieee_hex.zfill(16)))
    with pytest.raises(ValidationError, match="floats are not allowed"):
        canonical_bytes([number])


# --- parse_canonical ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{ "a":1}',  # whitespace
        b'{"a":1}\n',  # trailing newline
        b'{"b":1,"a":2}',  # unsorted keys
        b'{"a":1,"a":2}',  # duplicate key
        b'"\\/"',  # escaped solidus
        b'"\\u001F"',  # upper-case hex escape
        b'"\\u00e9"',  # escaped non-ASCII
        b'"\\u000a"',  # long form of \n
        b"-0",
        b"01",
        b"\xef\xbb\xbf1",  # byte order mark
    ],
)
def test_parse_canonical_refuses_non_canonical_forms(raw: bytes) -> None:
    with pytest.raises(ValidationError):
        parse_canonical(raw)


@pytest.mark.parametrize(
    "raw", [b"1.0", b"1e2", b"9007199254740992", b'"\\ud800"', b"\xff", b"", b"[1,]", b"NaN"]
)
def test_parse_canonical_refuses_values_outside_the_space_or_invalid_json(raw: bytes) -> None:
    with pytest.raises(ValidationError):
        parse_canonical(raw)


def test_parse_canonical_returns_the_value() -> None:
    assert parse_canonical('{"a":[1,true,null,"é"]}'.encode()) == {"a": [1, True, None, "é"]}


def test_parse_canonical_bounds_depth() -> None:
    assert parse_canonical(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)
    with pytest.raises(ValidationError, match="nesting deeper"):
        parse_canonical(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    with pytest.raises(ValidationError):  # hostile depth: refused, never a RecursionError
        parse_canonical(b"[" * 1_000_000 + b"]" * 1_000_000)


def test_parse_canonical_bounds_size() -> None:
    raw = canonical_bytes(["x" * 100])
    assert parse_canonical(raw, max_bytes=len(raw)) == ["x" * 100]
    with pytest.raises(ValidationError, match="exceeds"):
        parse_canonical(raw, max_bytes=len(raw) - 1)


def test_parse_canonical_refuses_text() -> None:
    with pytest.raises(ValidationError, match="must be bytes"):
        parse_canonical('{"a":1}')  # type: ignore[arg-type]


# --- datetimes ------------------------------------------------------------------------------

offsets = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
)
aware_datetimes = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=offsets
)


@given(aware_datetimes)
def test_datetimes_round_trip_as_the_same_instant_in_utc(dt: datetime) -> None:
    text = format_datetime(dt)
    parsed = parse_datetime(text)
    assert parsed == dt
    assert parsed.utcoffset() == timedelta(0)
    assert format_datetime(parsed) == text


@pytest.mark.parametrize(
    ("dt", "text"),
    [
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05.000000Z"),
        (
            datetime(2024, 1, 1, 1, 0, 0, 7, timezone(timedelta(hours=2))),
            "2023-12-31T23:00:00.000007Z",
        ),
        (datetime(999, 1, 1, tzinfo=UTC), "0999-01-01T00:00:00.000000Z"),
    ],
)
def test_format_datetime_uses_fixed_microsecond_precision_in_utc(dt: datetime, text: str) -> None:
    assert format_datetime(dt) == text


def test_format_datetime_refuses_naive_datetimes() -> None:
    with pytest.raises(ValidationError, match="naive"):
        format_datetime(datetime(2024, 1, 1))


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-02T03:04:05Z",
        "2024-01-02T03:04:05.000Z",
        "2024-01-02T03:04:05.000000+00:00",
        "2024-01-02T03:04:05.000000z",
        "2024-01-02t03:04:05.000000Z",
        "2024-01-02 03:04:05.000000Z",
        "2024-02-30T03:04:05.000000Z",
        "2024-01-02T24:00:00.000000Z",
        "\uff12024-01-02T03:04:05.000000Z",  # full-width digit two
        "2024-01-02T03:04:05.000000Z\n",
        "",
    ],
)
def test_parse_datetime_accepts_only_the_exact_form(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_datetime(text)
