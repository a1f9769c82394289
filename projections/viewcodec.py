"""Read-table bodies back into views, without pydantic.

A body is orjson of a view dataclass (`readstore._body`), written by a catch-up from events
that were validated when signed (and that `verify` re-checks): reading it back needs the
types, not validation. One decoder per view type is built from its type hints. Importing
pydantic and building its adapters cost every query that decodes views 60-90 ms before the
first row; a decoder here costs nothing up front but 1.5-4 us more per incident view, so
queries that decode more than `readstore.BULK_DECODE` views still use pydantic.

The types views use: str, int, float, bool, date, datetime, enums, `X | None`,
`tuple[X, ...]` and nested view dataclasses; any other type is refused when its decoder is
built, so a new view field of another type fails every test that reads views.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from datetime import date, datetime
from enum import Enum
from functools import cache
from typing import Any

import orjson

Decode = Callable[[Any], Any]
_new = object.__new__
_set = object.__setattr__


def _same(value: Any) -> Any:
    return value


_SCALARS: dict[Any, Decode] = {
    str: _same,
    int: _same,
    bool: _same,
    float: float,  # JSON may hold a whole float as an integer
    date: date.fromisoformat,
    datetime: datetime.fromisoformat,  # orjson writes +00:00, which it reads back as UTC
}


def decode_json(view: Any, body: str | bytes) -> Any:
    """A view of type `view` from its stored body."""
    return decoder(view)(orjson.loads(body))


@cache
def decoder(view: Any) -> Decode:
    """The function from a body's parsed JSON to a value of type `view`."""
    if view in _SCALARS:
        return _SCALARS[view]
    if isinstance(view, type) and issubclass(view, Enum):
        return _enum(view)
    if dataclasses.is_dataclass(view) and isinstance(view, type):
        return _dataclass(view)
    origin, args = typing.get_origin(view), typing.get_args(view)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _tuple(decoder(args[0]))
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        return _optional(decoder(next(a for a in args if a is not type(None))))
    raise TypeError(f"no decoder for a view field of type {view!r}")


def _enum(view: type[Enum]) -> Decode:
    members = view._value2member_map_  # a dict lookup: calling the enum costs ten times more

    def member(value: Any) -> Any:
        try:
            return members[value]
        except (KeyError, TypeError):
            return view(value)

    return member


def _tuple(item: Decode) -> Decode:
    if item is _same:
        return tuple
    return lambda value: tuple(map(item, value))


def _optional(inner: Decode) -> Decode:
    if inner is _same:
        return _same
    return lambda value: None if value is None else inner(value)


def _dataclass(view: type[Any]) -> Decode:
    hints = typing.get_type_hints(view)
    names = tuple(f.name for f in dataclasses.fields(view))
    converted = tuple(
        (name, convert) for name in names if (convert := decoder(hints[name])) is not _same
    )
    slow = _by_init(view, converted)
    if hasattr(view, "__post_init__") or "__slots__" in view.__dict__:
        return slow  # its __init__ does more than store the fields

    def decode(value: dict[str, Any]) -> Any:
        # A body written from the view holds its fields in order: convert those that JSON
        # cannot hold in place and make the dict the view's own (as unpickling does). Any
        # other body goes through the view's __init__.
        if tuple(value) != names:
            return slow(value)
        for name, convert in converted:
            value[name] = convert(value[name])
        made = _new(view)
        _set(made, "__dict__", value)
        return made

    return decode


def _by_init(view: type[Any], converted: tuple[tuple[str, Decode], ...]) -> Decode:
    """Fields a body lacks take their defaults; keys no field names are ignored (as pydantic)."""
    names = frozenset(f.name for f in dataclasses.fields(view))

    def decode(value: dict[str, Any]) -> Any:
        kwargs = {k: v for k, v in value.items() if k in names}
        for name, convert in converted:
            if name in kwargs:
                kwargs[name] = convert(kwargs[name])
        return view(**kwargs)

    return decode
