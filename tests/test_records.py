"""The record rules shared by loggers, formatters and handlers (structflow._records)."""

from __future__ import annotations

import logging
import sys
from fractions import Fraction
from typing import Any

import pytest

import strategies
from formatting import one_record, raised
from structflow._records import (
    RECORD_ATTRS,
    RESERVED,
    LogRecord,
    SecondCache,
    epoch_ns,
    exc_tuple,
    normalize_exc_info,
    safe_message,
    traceback_text,
    utc_second,
)
from structflow._values import unrepresentable

# --- reserved names ------------------------------------------------------------------


def test_every_attribute_of_this_pythons_records_is_reserved() -> None:
    """The list follows the running Python, so a newer stdlib attribute is protected too."""
    probe = logging.LogRecord("n", logging.INFO, "p", 1, "m", None, None)
    assert set(vars(probe)) == set(RECORD_ATTRS)
    assert set(RECORD_ATTRS) | {"message", "asctime", "structflow_fields", "taskName"} == RESERVED


def test_fields_named_like_record_attributes_leave_the_record_intact() -> None:
    fields: dict[str, Any] = {name: f"field {name}" for name in RESERVED}
    record = one_record(lambda lg: lg.info("the message", extra=fields))
    assert record.getMessage() == "the message"
    assert (record.name, record.levelno) == ("structflow.fmt", logging.INFO)
    assert {name: getattr(record, name + "_") for name in RESERVED} == fields


# --- the message ------------------------------------------------------------------------


def test_a_message_whose_arguments_do_not_match_shows_both() -> None:
    record = LogRecord("x", logging.INFO, "p", 1, "%s and %s", ("one",), None)
    assert safe_message(record) == "%s and %s ('one',)"
    assert record.getMessage() == "%s and %s ('one',)"


def test_a_message_that_cannot_be_shown_becomes_the_shared_placeholder() -> None:
    raising = strategies.RaisingRepr()
    record = LogRecord("x", logging.INFO, "p", 1, raising, None, None)
    assert safe_message(record) == unrepresentable(raising)
    record = LogRecord("x", logging.INFO, "p", 1, "%d", (raising,), None)
    assert safe_message(record) == f"%d {unrepresentable((raising,))}"


# --- exceptions ------------------------------------------------------------------------


def test_exc_info_of_a_logging_call_follows_stdlib() -> None:
    error = ValueError("boom")
    assert normalize_exc_info(error) == (ValueError, error, None)
    assert normalize_exc_info(None) is None
    assert normalize_exc_info(False) is None
    assert normalize_exc_info((None, None, None)) == (None, None, None)
    try:
        raise KeyError("handled")
    except KeyError:
        assert normalize_exc_info(True) == sys.exc_info()


def test_exc_info_of_a_record_is_used_only_when_it_holds_an_exception() -> None:
    error = ValueError("boom")
    assert exc_tuple((ValueError, error, None)) == (ValueError, error, None)
    assert exc_tuple(error) == (ValueError, error, None)
    assert exc_tuple((None, None, None)) is None
    assert exc_tuple(True) is None
    assert exc_tuple(("not", "an", "exception")) is None


def test_traceback_text_is_what_stdlib_formats() -> None:
    exc_info = raised()
    assert logging.Formatter().formatException(exc_info) == traceback_text(exc_info)


def test_traceback_text_never_raises() -> None:
    broken: Any = (ValueError, "not an exception", 42)
    assert traceback_text(broken).startswith("<traceback could not be formatted: ")


# --- time ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "created", [1714564800.125, 1714564800.123456, 1714564800.999999, 0.5, -0.25, -1.0000001]
)
def test_epoch_ns_is_the_nearest_nanosecond_of_the_float(created: float) -> None:
    assert round(Fraction(created) * 10**9) == epoch_ns(created)


def test_timestamps_follow_the_second_and_round_times_before_1970_down() -> None:
    stamps = SecondCache(utc_second, "%s.%06dZ", 1e6)
    assert stamps.format(1714564800.125) == "2024-05-01T12:00:00.125000Z"
    assert stamps.format(1714564801.5) == "2024-05-01T12:00:01.500000Z"
    assert stamps.format(-0.5) == "1969-12-31T23:59:59.500000Z"
    assert SecondCache(utc_second).format(1714564800.999) == "2024-05-01T12:00:00"
