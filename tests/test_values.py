"""The value helpers every renderer and payload uses (structflow._values)."""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import strategies
from structflow._values import (
    MAX_DEPTH,
    REDACTED,
    safe_repr,
    safe_str,
    scrub,
    to_json_bytes,
    truncate,
)
from structflow.processors import DEFAULT_REDACT_KEYS

# --- safe_repr / safe_str ----------------------------------------------------


def test_safe_repr_and_str_never_raise() -> None:
    assert safe_repr(strategies.RaisingRepr()) == "<unrepresentable RaisingRepr object>"
    assert safe_repr(strategies.NonStrRepr()) == "<unrepresentable NonStrRepr object>"
    assert safe_repr(10**5000) == "<int with 16610 bits>"
    assert safe_str(strategies.RaisingRepr()) == "<unrepresentable RaisingRepr object>"
    assert safe_str(3) == "3"


# --- truncate ----------------------------------------------------------------


def test_truncate_keeps_short_text_and_marks_long_text() -> None:
    assert truncate("short", 10) == "short"
    assert truncate("abcdefghij", 10) == "abcdefghij"
    assert truncate("abcdefghijk", 10) == "…[truncated 11 bytes]"
    assert truncate("x" * 100, None) == "x" * 100


@settings(max_examples=300, deadline=None)
@given(text=strategies.utf8_text, limit=st.integers(min_value=1, max_value=400))
def test_truncate_is_utf8_safe_and_says_how_much_was_cut(text: str, limit: int) -> None:
    out = truncate(text, limit)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size <= limit:
        assert text == out
        return
    head, marker = out.split("…[truncated ", 1)
    assert text.startswith(head)
    kept = len(head.encode("utf-8", "surrogatepass"))
    assert f"{size - kept} bytes]" == marker
    if limit >= len(f"…[truncated {size} bytes]".encode()):
        assert len(out.encode("utf-8", "surrogatepass")) <= limit


# --- scrub -------------------------------------------------------------------


def test_scrub_returns_the_same_object_when_nothing_changes() -> None:
    value = {"a": [1, "two", {"b": None}], "c": (True,)}
    assert scrub(value, frozenset({"password"})) is value


def test_scrub_copies_only_what_changes() -> None:
    inner = {"x": 1}
    value = {"keep": inner, "change": {"password": "p"}}
    out = scrub(value, frozenset({"password"}))
    assert out == {"keep": {"x": 1}, "change": {"password": REDACTED}}
    assert out["keep"] is inner
    assert value["change"] == {"password": "p"}


def test_scrub_turns_values_json_cannot_hold_into_data() -> None:
    out = scrub(
        {
            "nan": math.nan,
            "inf": math.inf,
            "ordered": OrderedDict(a=1),
            "mapping": strategies.Lookup({"token": "t"}),
            "items": frozenset({1}),
            "creds": strategies.Credentials("u", "p"),
            "broken": strategies.BrokenMapping(),
        },
        frozenset({"token", "password"}),
    )
    broken = out.pop("broken")
    assert broken.startswith("<strategies.BrokenMapping object at")
    assert {
        "nan": "nan",
        "inf": "inf",
        "ordered": OrderedDict(a=1),
        "mapping": {"token": REDACTED},
        "items": [1],
        "creds": {"user": "u", "password": REDACTED},
    } == out


def test_scrub_bounds_recursion_and_depth() -> None:
    loop: dict[str, Any] = {}
    loop["me"] = loop
    assert scrub(loop) == {"me": "{...}"}
    deep: Any = 0
    for _ in range(MAX_DEPTH + 10):
        deep = [deep]
    out = scrub(deep)
    for _ in range(MAX_DEPTH):
        out = out[0]
    assert f"<list nested deeper than {MAX_DEPTH} levels>" == out


@settings(max_examples=200, deadline=None)
@given(value=strategies.values)
def test_scrub_never_raises(value: Any) -> None:
    scrub({"v": value}, frozenset(DEFAULT_REDACT_KEYS))


# --- to_json_bytes -----------------------------------------------------------


def test_to_json_bytes_never_raises_on_hostile_values() -> None:
    assert to_json_bytes(strategies.RaisingRepr()) == b'"<unrepresentable RaisingRepr object>"'
    assert b'{"k":"' + str(2**65).encode() + b'"}' == to_json_bytes({"k": 2**65})
    assert json.loads(to_json_bytes({"\ud800": "\udfff"})) == {"\\ud800": "\\udfff"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=strategies.values)
def test_to_json_bytes_is_always_one_valid_json_line(value: Any) -> None:
    out = to_json_bytes({"value": value})
    assert len(out.decode("utf-8").splitlines()) == 1
    assert "value" in json.loads(out)
