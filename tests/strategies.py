"""Hypothesis strategies for rendering tests: values, keys and messages that break renderers."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import math
from collections import OrderedDict, deque
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from hypothesis import strategies as st

# Names the level methods take as parameters; they cannot be fields.
LEVEL_METHOD_PARAMETERS = frozenset(
    {"self", "msg", "exc_info", "stack_info", "stacklevel", "extra"}
)

# Any code point, lone surrogates included.
any_char = st.characters(codec=None, exclude_categories=())
# The characters that break lines or terminals.
NASTY_CHARS = "\n\r\t\x00\x1b\x0b\x0c\x1c\x85\u2028\u2029\ud800\udfff\u200b"
nasty_text = st.text(
    alphabet=st.one_of(any_char, st.sampled_from(NASTY_CHARS)),
    max_size=40,
)
printable_text = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp", "Cf", "Co", "Cn", "Zs")
    )
    | st.just(" "),
    max_size=40,
)


class RaisingRepr:
    """An object whose __repr__ and __str__ raise."""

    def __repr__(self) -> str:
        raise RuntimeError("repr refuses")

    __str__ = __repr__


class NonStrRepr:
    """An object whose __repr__ returns something that is not a str."""

    def __repr__(self) -> Any:
        return 42


class NewlineRepr:
    """An object whose repr spans lines and looks like a record."""

    def __repr__(self) -> str:
        return "x\n[2024-01-01 00:00:00+0000] INFO - forged | line"


class Color(enum.Enum):
    RED = "red"
    WEIRD = RaisingRepr


@dataclasses.dataclass
class Credentials:
    user: str
    password: str


class Lookup(Mapping[str, Any]):
    """A Mapping that is not a dict."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class BrokenMapping(Mapping[str, Any]):
    """A Mapping whose iteration fails."""

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("cannot iterate")

    def __len__(self) -> int:
        return 1


def _recursive_list() -> list[Any]:
    items: list[Any] = [1]
    items.append(items)
    return items


def _recursive_dict() -> dict[str, Any]:
    data: dict[str, Any] = {"a": 1}
    data["self"] = {"parent": data}
    return data


def _deep(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63, max_value=2**200),
    st.integers(max_value=-(2**63) - 1, min_value=-(2**200)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0]),
    nasty_text,
    st.binary(max_size=20),
    st.decimals(allow_nan=True),
    st.datetimes(timezones=st.none() | st.just(datetime.UTC)),
    st.uuids(),
)

odd_objects = st.one_of(
    st.builds(RaisingRepr),
    st.builds(NonStrRepr),
    st.builds(NewlineRepr),
    st.sampled_from([Color.RED, Color.WEIRD]),
    st.builds(Credentials, user=nasty_text, password=nasty_text),
    st.builds(_recursive_list),
    st.builds(_recursive_dict),
    st.integers(min_value=70, max_value=200).map(_deep),
    st.builds(lambda: 10**5000),  # too long for repr() under the digit limit
    st.just(BrokenMapping()),
    st.builds(lambda: ValueError("boom\nline")),
    st.builds(object),
    st.just(len),
    st.just(int),
)

keys = st.one_of(
    nasty_text,
    st.sampled_from(
        ["password", "Token", "API_KEY", "level", "timestamp", "message_", "log", "error"]
    ),
    st.integers(),
    st.none(),
    st.tuples(st.integers(), st.integers()),
    st.binary(max_size=5),
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(keys, children, max_size=4),
        st.dictionaries(st.text(max_size=5), children, max_size=3).map(OrderedDict),
        st.dictionaries(st.text(max_size=5), children, max_size=3).map(Lookup),
        st.dictionaries(st.text(max_size=5), children, max_size=3).map(MappingProxyType),
        st.frozensets(st.integers() | st.text(max_size=5), max_size=4),
        st.lists(children, max_size=3).map(deque),
    )


#: Anything a user might pass as a field value.
values = st.recursive(st.one_of(scalars, odd_objects), _containers, max_leaves=12)

#: Field names the level methods accept as keyword arguments.
field_names = st.one_of(
    st.text(min_size=1, max_size=12),
    nasty_text.filter(bool),
    st.sampled_from(
        [
            "password",
            "PassWord",
            "token",
            "level",
            "timestamp",
            "logger",
            "exception",
            "stack",
            "name",
            "message",
            "run_id",
            "flow_name",
            "severity",
            "Body",
        ]
    ),
).filter(lambda k: k not in LEVEL_METHOD_PARAMETERS)

#: Keyword fields for a log call.
fields = st.dictionaries(field_names, values, max_size=5)

#: Messages, with %-directives that may not match their arguments.
messages = st.one_of(
    nasty_text,
    st.sampled_from(["plain", "one %s", "two %s %s", "%d number", "%(key)s mapping", "100%"]),
    st.builds(lambda n: "é" * n, st.integers(min_value=0, max_value=3000)),
)
message_args = st.lists(values, max_size=3).map(tuple)

#: Strings with many multi-byte characters, for truncation.
utf8_text = st.text(alphabet=st.sampled_from("aé€😀\ud800"), max_size=200)


def huge_string(size: int = 2_000_000) -> str:
    """A message well beyond the default 1,000,000-byte limit."""
    return "x" * size


__all__ = [
    "LEVEL_METHOD_PARAMETERS",
    "NASTY_CHARS",
    "BrokenMapping",
    "Color",
    "Credentials",
    "Lookup",
    "NewlineRepr",
    "NonStrRepr",
    "RaisingRepr",
    "field_names",
    "fields",
    "huge_string",
    "keys",
    "message_args",
    "messages",
    "nasty_text",
    "printable_text",
    "utf8_text",
    "values",
]
