"""
One level table for every output (structflow._levels).

A custom level (``logging.addLevelName(25, "NOTICE")``) must get the same
severity from every renderer and encoder that writes one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from formatting import golden_record
from structflow._levels import (
    gcp_severity,
    otel_severity_number,
    otel_severity_text,
    syslog_severity,
)
from structflow.formatters import JsonFormatter
from structflow.handlers.encoders import EncoderOptions, make_encoder
from structflow.handlers.syslog import _SyslogSink
from structflow.loggers import LogRecord

STDLIB = (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)


def test_stdlib_levels_in_each_spelling() -> None:
    assert [otel_severity_number(n) for n in STDLIB] == [5, 9, 13, 17, 21]
    assert [otel_severity_text(logging.getLevelName(n)) for n in STDLIB] == [
        "DEBUG",
        "INFO",
        "WARN",
        "ERROR",
        "FATAL",
    ]
    assert [gcp_severity(n) for n in STDLIB] == ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    assert [syslog_severity(n) for n in STDLIB] == [7, 6, 4, 3, 2]


def test_custom_levels_map_into_the_range_below() -> None:
    assert [otel_severity_number(n) for n in (1, 9, 10, 11, 15, 20, 25, 29, 60, 0)] == [
        1,
        4,
        5,
        6,
        8,
        9,
        12,
        12,
        24,
        0,
    ]
    assert [gcp_severity(n) for n in (5, 15, 25, 35, 60)] == [
        "DEFAULT",
        "DEBUG",
        "INFO",
        "WARNING",
        "CRITICAL",
    ]
    assert [syslog_severity(n) for n in (0, 5, 15, 25, 35, 45, 60)] == [7, 7, 7, 6, 4, 3, 2]


def test_custom_level_names_are_kept_as_severity_text() -> None:
    assert otel_severity_text("NOTICE") == "NOTICE"
    assert otel_severity_text("Level 25") == "Level 25"


@pytest.fixture
def notice() -> Iterator[LogRecord]:
    """A record at the custom level 25, named NOTICE for the test's duration."""
    logging.addLevelName(25, "NOTICE")
    try:
        record = golden_record()
        record.levelno, record.levelname = 25, logging.getLevelName(25)
        yield record
    finally:
        del logging._levelToName[25]
        del logging._nameToLevel["NOTICE"]


def _otlp_log_record(record: logging.LogRecord, formatter: JsonFormatter) -> dict[str, object]:
    encoder = make_encoder("otlp", EncoderOptions(service="svc"))
    _group, _, log_record = encoder.entry(record, formatter).partition(b"\n")
    return json.loads(log_record)  # type: ignore[no-any-return]


def test_a_custom_level_has_one_otel_severity_in_every_output(notice: LogRecord) -> None:
    """NOTICE (25) is SeverityNumber 12 (INFO4), text NOTICE, from the formatter and the encoder."""
    otel = JsonFormatter(json_schema="otel").event_dict(notice)
    expected = (12, "NOTICE")
    assert expected == (otel["SeverityNumber"], otel["SeverityText"])
    for formatter in (JsonFormatter(), JsonFormatter(json_schema="otel")):
        shipped = _otlp_log_record(notice, formatter)
        assert expected == (shipped["severityNumber"], shipped["severityText"])


def test_a_custom_level_has_one_gcp_and_syslog_severity(notice: LogRecord) -> None:
    gcp = JsonFormatter(json_schema="gcp").event_dict(notice)
    assert (gcp["severity"], gcp_severity(25)) == ("INFO", "INFO")
    sink = _SyslogSink("tcp", "127.0.0.1", 601, 1, "host", "app", "-", 1.0, None)
    message = sink.render(notice)
    facility_user_info = 1 * 8 + 6
    assert message.startswith(f"<{facility_user_info}>1 2024-05-01T12:00:00.125000Z ".encode())
