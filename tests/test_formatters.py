"""Tests for structflow.formatters: the four renderers, JSON schemas, safety and dictConfig."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import math
import os
import re
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import strategies
import structflow.formatters as formatters_module
from structflow._context import bound, context
from structflow.formatters import (
    DEFAULT_DATEFMT,
    DEFAULT_FORMAT,
    ClassicFormatter,
    ConsoleFormatter,
    JsonFormatter,
    LogfmtFormatter,
    escape,
    formatter_for,
    gcp_severity,
    otel_severity_number,
    to_json_bytes,
)
from structflow.loggers import LogRecord, get_logger

SCHEMAS = ("default", "ecs", "gcp", "datadog", "otel")


class ListHandler(logging.Handler):
    """Keeps the records it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def recording(name: str = "fmt") -> Iterator[tuple[Any, list[logging.LogRecord]]]:
    """A structflow logger at DEBUG whose records are collected (and not printed)."""
    logger = get_logger(name)
    handler = ListHandler()
    logger.addHandler(handler)
    saved = (logger.level, logger.propagate)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


@contextmanager
def foreign_recording(name: str) -> Iterator[tuple[logging.Logger, list[logging.LogRecord]]]:
    """A stdlib logger (not structflow's) whose records are collected."""
    get_logger()  # structflow configured: its record factory is installed
    logger = logging.getLogger(name)
    handler = ListHandler()
    logger.addHandler(handler)
    saved = (logger.level, logger.propagate)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def one_record(call: Any, name: str = "fmt") -> logging.LogRecord:
    with recording(name) as (logger, records):
        call(logger)
    assert len(records) == 1
    return records[0]


def all_formatters() -> list[logging.Formatter]:
    return [
        ClassicFormatter(),
        ClassicFormatter("%(levelname)s %(task_name)s %(payload)s %(message)s"),
        *(JsonFormatter(json_schema=s) for s in SCHEMAS),
        ConsoleFormatter(colors=True),
        ConsoleFormatter(colors=False),
        LogfmtFormatter(),
    ]


def golden_record(exc_info: Any = None, **overrides: Any) -> LogRecord:
    """A record with every varying attribute fixed, as if from a task run."""
    record = LogRecord(
        "structflow.golden",
        logging.ERROR,
        "/srv/app/flows.py",
        42,
        "loaded %s rows",
        (3,),
        exc_info,
        "load",
    )
    record.created = 1714564800.125  # 2024-05-01T12:00:00.125Z, exact in binary
    record.msecs = 125.0
    record.process = 4242
    record.processName = "MainProcess"
    record.thread = 1401
    record.threadName = "MainThread"
    fields = {
        "flow_name": "etl",
        "flow_run_id": "fr-1",
        "task_name": "load",
        "task_run_id": "tr-1",
        "map_index": None,
        "task_run_count": 1,
        "rows": 3,
    }
    fields.update(overrides)
    record.__dict__.update(fields)
    record.structflow_fields = tuple(fields)
    return record


def raised() -> tuple[Any, Any, Any]:
    try:
        raise ValueError("bad value")
    except ValueError:
        return sys.exc_info()


# --- JSON: the default layout ----------------------------------------------------


def test_json_default_layout_has_keys_in_documented_order() -> None:
    """timestamp, level, logger, message, run context, then bound and call fields."""
    run = {"flow_name": "etl", "flow_run_id": "fr-1", "task_name": "load", "task_run_id": "tr-1"}
    with context(**run), bound(request_id="rq-1"):
        record = one_record(lambda lg: lg.bind(run_id="r-1").info("rows %s", 3, rows=3))
    event = json.loads(JsonFormatter().format(record))
    assert list(event) == [
        "timestamp",
        "level",
        "logger",
        "message",
        "flow_name",
        "flow_run_id",
        "task_name",
        "task_run_id",
        "request_id",
        "run_id",
        "rows",
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", event["timestamp"])
    event.pop("timestamp")
    assert event == {
        "level": "info",
        "logger": "structflow.fmt",
        "message": "rows 3",
        "flow_name": "etl",
        "flow_run_id": "fr-1",
        "task_name": "load",
        "task_run_id": "tr-1",
        "request_id": "rq-1",
        "run_id": "r-1",
        "rows": 3,
    }


def test_json_timestamp_is_utc_with_microseconds() -> None:
    record = golden_record()
    record.created = 1714564800.000123
    assert JsonFormatter().event_dict(record)["timestamp"].startswith("2024-05-01T12:00:00.0001")
    record.created = 1714564801.5
    assert JsonFormatter().event_dict(record)["timestamp"] == "2024-05-01T12:00:01.500000Z"


def test_json_format_bytes_is_format_encoded() -> None:
    record = golden_record(exc_info=raised())
    for schema in SCHEMAS:
        formatter = JsonFormatter(json_schema=schema)
        assert formatter.format(record).encode("utf-8") == formatter.format_bytes(record)
        assert not formatter.format_bytes(record).endswith(b"\n")


def test_json_field_named_like_a_layout_key_gets_an_underscore() -> None:
    record = one_record(
        lambda lg: lg.info("m", level=5, timestamp="t", logger="l", exception="e", stack="s")
    )
    event = JsonFormatter().event_dict(record)
    assert (event["level"], event["logger"], event["message"]) == ("info", "structflow.fmt", "m")
    assert {k: event[k] for k in ("level_", "timestamp_", "logger_", "exception_", "stack_")} == {
        "level_": 5,
        "timestamp_": "t",
        "logger_": "l",
        "exception_": "e",
        "stack_": "s",
    }


def test_json_reserved_record_names_arrive_with_the_loggers_underscore() -> None:
    record = one_record(lambda lg: lg.info("m", name="n", message="x", args=1))
    event = JsonFormatter().event_dict(record)
    assert {k: event[k] for k in ("name_", "message_", "args_")} == {
        "name_": "n",
        "message_": "x",
        "args_": 1,
    }
    assert event["message"] == "m"


def test_json_exception_and_stack_info_come_last() -> None:
    def call(lg: Any) -> None:
        try:
            raise KeyError("missing")
        except KeyError:
            lg.exception("failed", rows=1, stack_info=True)

    event = JsonFormatter().event_dict(one_record(call))
    assert list(event)[-2:] == ["exception", "stack"]
    assert event["exception"]["type"] == "KeyError"
    assert event["exception"]["message"] == "'missing'"
    assert event["exception"]["traceback"].startswith("Traceback (most recent call last):")
    assert event["exception"]["traceback"].endswith("KeyError: 'missing'")
    assert event["stack"].startswith("Stack (most recent call last):")


def test_json_exception_type_names_its_module_unless_builtin() -> None:
    class LocalError(Exception):
        pass

    try:
        raise LocalError("x")
    except LocalError:
        record = golden_record(exc_info=sys.exc_info())
    expected = (
        f"{__name__}.test_json_exception_type_names_its_module_unless_builtin.<locals>.LocalError"
    )
    assert expected == JsonFormatter().event_dict(record)["exception"]["type"]


def test_json_exception_from_exc_text_only() -> None:
    """A record that crossed a process boundary keeps only the formatted text."""
    record = golden_record()
    record.exc_text = "Traceback (most recent call last):\nValueError: remote"
    assert {"traceback": record.exc_text} == JsonFormatter().event_dict(record)["exception"]


# --- golden records, one per schema ----------------------------------------------


def test_golden_default() -> None:
    exc_info = raised()
    tb = "".join(traceback.format_exception(*exc_info)).rstrip("\n")
    event = json.loads(JsonFormatter().format(golden_record(exc_info)))
    assert {
        "timestamp": "2024-05-01T12:00:00.125000Z",
        "level": "error",
        "logger": "structflow.golden",
        "message": "loaded 3 rows",
        "flow_name": "etl",
        "flow_run_id": "fr-1",
        "task_name": "load",
        "task_run_id": "tr-1",
        "map_index": None,
        "task_run_count": 1,
        "rows": 3,
        "exception": {"type": "ValueError", "message": "bad value", "traceback": tb},
    } == event


def test_golden_ecs() -> None:
    exc_info = raised()
    tb = "".join(traceback.format_exception(*exc_info)).rstrip("\n")
    event = json.loads(JsonFormatter(json_schema="ecs").format(golden_record(exc_info)))
    assert {
        "@timestamp": "2024-05-01T12:00:00.125Z",
        "log.level": "error",
        "message": "loaded 3 rows",
        "ecs.version": "1.6.0",
        "log": {
            "logger": "structflow.golden",
            "origin": {"file": {"name": "flows.py", "line": 42}, "function": "load"},
        },
        "process": {
            "pid": 4242,
            "name": "MainProcess",
            "thread": {"id": 1401, "name": "MainThread"},
        },
        "flow_name": "etl",
        "flow_run_id": "fr-1",
        "task_name": "load",
        "task_run_id": "tr-1",
        "map_index": None,
        "task_run_count": 1,
        "rows": 3,
        "error": {"type": "ValueError", "message": "bad value", "stack_trace": tb},
    } == event


def test_golden_gcp() -> None:
    exc_info = raised()
    tb = "".join(traceback.format_exception(*exc_info)).rstrip("\n")
    event = json.loads(JsonFormatter(json_schema="gcp").format(golden_record(exc_info)))
    assert {
        "severity": "ERROR",
        "message": "loaded 3 rows",
        "time": "2024-05-01T12:00:00.125000Z",
        "logging.googleapis.com/sourceLocation": {
            "file": "/srv/app/flows.py",
            "line": 42,
            "function": "load",
        },
        "logger": "structflow.golden",
        "logging.googleapis.com/labels": {
            "flow_name": "etl",
            "flow_run_id": "fr-1",
            "task_name": "load",
            "task_run_id": "tr-1",
            "task_run_count": "1",
        },
        "rows": 3,
        "stack_trace": tb,
    } == event


def test_golden_datadog() -> None:
    exc_info = raised()
    tb = "".join(traceback.format_exception(*exc_info)).rstrip("\n")
    formatter = JsonFormatter(json_schema="datadog", service_name="etl-service")
    event = json.loads(formatter.format(golden_record(exc_info)))
    assert {
        "timestamp": "2024-05-01T12:00:00.125Z",
        "status": "error",
        "message": "loaded 3 rows",
        "logger": {"name": "structflow.golden", "thread_name": "MainThread", "method_name": "load"},
        "service": "etl-service",
        "flow_name": "etl",
        "flow_run_id": "fr-1",
        "task_name": "load",
        "task_run_id": "tr-1",
        "map_index": None,
        "task_run_count": 1,
        "rows": 3,
        "error": {"kind": "ValueError", "message": "bad value", "stack": tb},
    } == event


def test_golden_otel() -> None:
    exc_info = raised()
    tb = "".join(traceback.format_exception(*exc_info)).rstrip("\n")
    formatter = JsonFormatter(json_schema="otel", service_name="etl-service")
    event = json.loads(formatter.format(golden_record(exc_info)))
    assert {
        "Timestamp": "1714564800125000000",
        "SeverityText": "ERROR",
        "SeverityNumber": 17,
        "Body": "loaded 3 rows",
        "Resource": {"service.name": "etl-service", "process.pid": 4242},
        "InstrumentationScope": {"Name": "structflow.golden"},
        "Attributes": {
            "flow_name": "etl",
            "flow_run_id": "fr-1",
            "task_name": "load",
            "task_run_id": "tr-1",
            "map_index": None,
            "task_run_count": 1,
            "rows": 3,
            "code.file.path": "/srv/app/flows.py",
            "code.function.name": "load",
            "code.line.number": 42,
            "exception.type": "ValueError",
            "exception.message": "bad value",
            "exception.stacktrace": tb,
        },
    } == event


@pytest.mark.parametrize(
    ("levelno", "severity", "number", "text"),
    [
        (logging.DEBUG, "DEBUG", 5, "DEBUG"),
        (logging.INFO, "INFO", 9, "INFO"),
        (logging.WARNING, "WARNING", 13, "WARN"),
        (logging.ERROR, "ERROR", 17, "ERROR"),
        (logging.CRITICAL, "CRITICAL", 21, "FATAL"),
    ],
)
def test_level_spellings_per_schema(levelno: int, severity: str, number: int, text: str) -> None:
    record = golden_record()
    record.levelno = levelno
    record.levelname = logging.getLevelName(levelno)
    assert severity == JsonFormatter(json_schema="gcp").event_dict(record)["severity"]
    otel = JsonFormatter(json_schema="otel").event_dict(record)
    assert (number, text) == (otel["SeverityNumber"], otel["SeverityText"])
    lower = record.levelname.lower()
    assert lower == JsonFormatter(json_schema="datadog").event_dict(record)["status"]
    assert lower == JsonFormatter(json_schema="ecs").event_dict(record)["log.level"]


def test_custom_levels_map_into_the_range_below() -> None:
    assert [otel_severity_number(n) for n in (1, 9, 10, 11, 15, 20, 29, 0)] == [
        1,
        4,
        5,
        6,
        8,
        9,
        12,
        0,
    ]
    assert [gcp_severity(n) for n in (5, 15, 25, 35, 60)] == [
        "DEFAULT",
        "DEBUG",
        "INFO",
        "WARNING",
        "CRITICAL",
    ]


def test_schema_keys_taken_by_fields_get_an_underscore() -> None:
    record = golden_record(severity="high", log="x", error="e", Attributes="a")
    assert JsonFormatter(json_schema="gcp").event_dict(record)["severity_"] == "high"
    ecs = JsonFormatter(json_schema="ecs").event_dict(record)
    assert (ecs["log_"], ecs["error_"]) == ("x", "e")
    otel = JsonFormatter(json_schema="otel").event_dict(record)
    assert otel["Attributes"]["Attributes"] == "a"


def test_otel_and_datadog_service_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-otel-env")
    monkeypatch.setenv("DD_SERVICE", "from-dd-env")
    record = golden_record()
    otel = JsonFormatter(json_schema="otel").event_dict(record)
    assert otel["Resource"]["service.name"] == "from-otel-env"
    assert JsonFormatter(json_schema="datadog").event_dict(record)["service"] == "from-dd-env"
    monkeypatch.delenv("OTEL_SERVICE_NAME")
    otel = JsonFormatter(json_schema="otel").event_dict(record)
    assert otel["Resource"]["service.name"] == "unknown_service:python"


def test_unknown_json_schema_is_a_clear_error() -> None:
    with pytest.raises(
        ValueError, match="json_schema='splunk' is not a JSON schema; expected one of default, ecs"
    ):
        JsonFormatter(json_schema="splunk")


# --- values JSON cannot hold ------------------------------------------------------


def test_json_renders_values_it_cannot_hold_as_repr() -> None:
    record = one_record(
        lambda lg: lg.info(
            "m",
            nan=math.nan,
            inf=-math.inf,
            big=2**70,
            huge=10**5000,
            surrogate="a\udc80b",
            raw=b"\x00\xff",
            raising=strategies.RaisingRepr(),
            nonstr=strategies.NonStrRepr(),
            items={1, 2},
            creds=strategies.Credentials("u", "hunter2"),
            weird_keys={1: "a", None: "b", (1, 2): "c"},
        )
    )
    event = json.loads(JsonFormatter().format(record))
    assert {
        "nan": "nan",
        "inf": "-inf",
        "big": str(2**70),
        "huge": "<int with 16610 bits>",
        "surrogate": "a\\udc80b",
        "raw": repr(b"\x00\xff"),
        "raising": "<unrepresentable RaisingRepr object>",
        "nonstr": "<unrepresentable NonStrRepr object>",
        "items": [1, 2],
        "creds": {"user": "u", "password": "[REDACTED]"},
        "weird_keys": {"1": "a", "None": "b", "(1, 2)": "c"},
    } == {k: event[k] for k in list(event)[4:]}


def test_json_recursive_and_deep_values_stay_bounded() -> None:
    items: list[Any] = [1]
    items.append(items)
    deep: Any = "bottom"
    for _ in range(200):
        deep = [deep]
    record = one_record(lambda lg: lg.info("m", items=items, deep=deep))
    event = json.loads(JsonFormatter().format(record))
    assert event["items"] == [1, "[...]"]
    depth, node = 0, event["deep"]
    while isinstance(node, list):
        depth, node = depth + 1, node[0]
    assert (depth, node) == (63, "<list nested deeper than 64 levels>")


def test_json_line_separators_inside_strings_are_escaped() -> None:
    record = one_record(lambda lg: lg.info("a\u2028b\x85c\u2029d"))
    line = JsonFormatter().format(record)
    assert len(line.splitlines()) == 1
    assert json.loads(line)["message"] == "a\u2028b\x85c\u2029d"


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


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    message=strategies.messages,
    args=strategies.message_args,
    fields=strategies.fields,
    bound_fields=strategies.fields,
    schema=st.sampled_from(SCHEMAS),
)
def test_json_every_call_gives_one_valid_line(
    message: str,
    args: tuple[Any, ...],
    fields: dict[str, Any],
    bound_fields: dict[str, Any],
    schema: str,
) -> None:
    """Whatever is logged, each record renders as exactly one parsable JSON line."""
    formatter = JsonFormatter(json_schema=schema)
    with recording("hyp") as (logger, records), context(flow_name="f\nx", task_name="t"):
        logger.bind(**bound_fields).warning(message, *args, **fields)
    assert len(records) == 1
    line = formatter.format(records[0])
    assert len(line.splitlines()) == 1
    assert "\n" not in line and "\r" not in line
    event = json.loads(line)
    assert isinstance(event, dict)
    assert line.encode("utf-8") == formatter.format_bytes(records[0])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields=strategies.fields, message=strategies.messages)
def test_every_renderer_gives_one_line_and_never_raises(
    fields: dict[str, Any], message: str
) -> None:
    with recording("hyp") as (logger, records):
        logger.error(message, **fields)
    for formatter in all_formatters():
        text = formatter.format(records[0])
        assert len(text.splitlines()) == 1, (formatter, text)


def test_huge_message_is_truncated_in_every_renderer() -> None:
    record = one_record(lambda lg: lg.info(strategies.huge_string()))
    for formatter in all_formatters():
        text = formatter.format(record)
        assert len(text.encode("utf-8")) < 1_001_000, formatter
        assert "x…[truncated 1000028 bytes]" in text, formatter


def test_truncation_limit_is_configurable_and_utf8_safe() -> None:
    record = one_record(lambda lg: lg.info("é" * 100))
    message = JsonFormatter(max_message_bytes=60).event_dict(record)["message"]
    assert len(message.encode("utf-8")) <= 60
    assert message.startswith("é" * 18) and message.endswith("…[truncated 164 bytes]")
    assert JsonFormatter(max_message_bytes=None).event_dict(record)["message"] == "é" * 100


@pytest.mark.parametrize("bad", [0, -1, 1.5, "10", True])
def test_bad_max_message_bytes_is_a_clear_error(bad: Any) -> None:
    with pytest.raises(
        ValueError, match=r"max_message_bytes=.* is not allowed; expected a positive integer"
    ):
        JsonFormatter(max_message_bytes=bad)


def test_rendering_error_still_gives_a_valid_line() -> None:
    """A record whose fields cannot even be read renders its essentials."""

    class Exploding(dict[str, Any]):
        def get(self, *args: Any) -> Any:
            raise RuntimeError("record dict broken")

    record = golden_record()
    record.__dict__ = Exploding(record.__dict__)
    event = json.loads(JsonFormatter().format(record))
    assert event["message"] == "loaded 3 rows"
    assert event["structflow_error"].startswith("record could not be rendered: RuntimeError")
    assert "loaded 3 rows" in ClassicFormatter().format(record)


# --- extra= fields from loggers that are not structflow's --------------------------


def test_foreign_extra_fields_reach_every_renderer() -> None:
    with context(task_name="load"), foreign_recording("thirdparty") as (logger, records):
        logger.warning("retrying", extra={"attempt": 2, "Authorization": "Bearer xyz"})
    record = records[0]
    event = JsonFormatter().event_dict(record)
    assert {k: event[k] for k in ("task_name", "attempt", "Authorization")} == {
        "task_name": "load",
        "attempt": 2,
        "Authorization": "[REDACTED]",
    }
    assert "attempt=2" in LogfmtFormatter().format(record)
    assert "attempt=2" in ConsoleFormatter(colors=False).format(record)
    assert (
        ClassicFormatter("[%(task_name)s] %(attempt)s %(message)s").format(record)
        == "[load] 2 retrying"
    )
    for schema in SCHEMAS:
        assert "Bearer xyz" not in JsonFormatter(json_schema=schema).format(record)


def test_extra_fields_after_another_formatter_ran() -> None:
    """A stdlib formatter adding message/asctime does not turn them into fields."""
    with foreign_recording("thirdparty2") as (logger, records):
        logger.info("hi", extra={"attempt": 1})
    record = records[0]
    logging.Formatter("%(asctime)s %(message)s").format(record)
    event = JsonFormatter().event_dict(record)
    assert list(event) == ["timestamp", "level", "logger", "message", "attempt"]


def test_private_attributes_are_not_fields() -> None:
    record = golden_record()
    record._private = "hidden"
    record.dd_trace = "t-1"
    event = JsonFormatter().event_dict(record)
    assert "_private" not in event
    assert event["dd_trace"] == "t-1"


def test_record_without_structflow_fields() -> None:
    """A record built by hand (no structflow factory) still renders its extras."""
    record = logging.LogRecord("plain", logging.INFO, __file__, 1, "hello %s", ("x",), None)
    record.job = "j-1"
    assert {
        k: v for k, v in JsonFormatter().event_dict(record).items() if k in ("message", "job")
    } == {"message": "hello x", "job": "j-1"}


# --- redaction -------------------------------------------------------------------


SECRET = "hunter2-SECRET-9f3c"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=st.sampled_from(
        ["password", "passwd", "secret", "token", "api_key", "apikey", "authorization", "cookie"]
    ).flatmap(
        lambda k: st.lists(st.booleans(), min_size=len(k), max_size=len(k)).map(
            lambda flips: "".join(c.upper() if f else c for c, f in zip(k, flips, strict=True))
        )
    ),
    nesting=st.integers(min_value=0, max_value=4),
    in_list=st.booleans(),
)
def test_redaction_holds_in_every_renderer(key: str, nesting: int, in_list: bool) -> None:
    value: Any = {key: SECRET}
    for i in range(nesting):
        value = [value] if in_list and i % 2 else {f"level{i}": value}
    with recording("redact") as (logger, records):
        logger.info("m", payload=value, **{key: SECRET})
    for formatter in all_formatters():
        text = formatter.format(records[0])
        assert SECRET not in text, (formatter, text)
    assert "[REDACTED]" in JsonFormatter().format(records[0])


def test_redaction_in_classic_format_fields() -> None:
    record = one_record(lambda lg: lg.info("m", Token=SECRET, payload={"cookie": SECRET}))
    text = ClassicFormatter("%(token)s %(Token)s %(payload)s %(payload)r").format(record)
    assert text == "[REDACTED] [REDACTED] {'cookie': '[REDACTED]'} {'cookie': '[REDACTED]'}"


def test_redaction_applies_to_bound_and_context_keys() -> None:
    with bound(api_key=SECRET):
        record = one_record(lambda lg: lg.bind(secret=SECRET).info("m"))
    for formatter in all_formatters():
        assert SECRET not in formatter.format(record)


def test_redaction_keys_are_configurable() -> None:
    record = one_record(lambda lg: lg.info("m", ssn="123", password="p"))
    event = JsonFormatter(redact_keys=["SSN"]).event_dict(record)
    assert (event["ssn"], event["password"]) == ("[REDACTED]", "p")
    assert JsonFormatter(redact_keys=[]).event_dict(record)["password"] == "p"


def test_redact_keys_as_a_single_string_is_a_clear_error() -> None:
    with pytest.raises(
        ValueError, match=r"redact_keys='password' is a single string; expected a list"
    ):
        JsonFormatter(redact_keys="password")


def test_redaction_never_modifies_the_callers_objects() -> None:
    payload = {"token": SECRET, "inner": [{"password": SECRET}]}
    record = one_record(lambda lg: lg.info("m", payload=payload))
    for formatter in all_formatters():
        formatter.format(record)
    assert payload == {"token": SECRET, "inner": [{"password": SECRET}]}


# --- classic -----------------------------------------------------------------------


def test_classic_defaults_are_prefects() -> None:
    formatter = ClassicFormatter()
    assert (formatter._fmt, formatter.datefmt) == (DEFAULT_FORMAT, DEFAULT_DATEFMT)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=strategies.printable_text, task=strategies.printable_text, with_exc=st.booleans())
def test_classic_matches_stdlib_for_printable_records(
    message: str, task: str, with_exc: bool
) -> None:
    """On text without control characters, the output is exactly stdlib's."""
    fmt = "[%(asctime)s] %(levelname)s - %(name)s | %(task_name)s | %(message)s"
    exc_info = raised() if with_exc else None
    record = golden_record(exc_info=exc_info, task_name=task)
    record.msg, record.args = message.replace("%", "%%") + " %s", ("arg",)
    ours = ClassicFormatter(fmt, DEFAULT_DATEFMT).format(record)
    theirs = logging.Formatter(fmt, DEFAULT_DATEFMT).format(record)
    assert theirs == ours
    no_datefmt = logging.Formatter(fmt).format(record)
    assert no_datefmt == ClassicFormatter(fmt).format(record)


def test_classic_missing_field_renders_dash_never_keyerror() -> None:
    record = one_record(lambda lg: lg.info("outside a flow"))
    text = ClassicFormatter(
        "%(task_name)s|%(flow_run_id)s|%(lineno)d|%(map_index)d|%(message)s"
    ).format(record)
    assert f"-|-|{record.lineno}|-|outside a flow" == text


def test_classic_defaults_replace_missing_fields() -> None:
    record = one_record(lambda lg: lg.info("m"))
    formatter = ClassicFormatter("%(task_name)s %(message)s", defaults={"task_name": "(no task)"})
    assert formatter.format(record) == "(no task) m"
    assert ClassicFormatter("%(task_name)s %(message)s", missing="?").format(record) == "? m"


def test_classic_brace_and_dollar_styles() -> None:
    with context(task_name="load"):
        record = one_record(lambda lg: lg.info("a\nb", rows=3))
    assert (
        ClassicFormatter(
            "{task_name} {rows:d} {message!r} {message} {flow_name}", style="{"
        ).format(record)
        == "load 3 'a\\nb' a\\nb -"
    )
    assert (
        ClassicFormatter("$task_name ${rows} $message $flow_name", style="$").format(record)
        == "load 3 a\\nb -"
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=strategies.nasty_text, task=strategies.nasty_text, value=strategies.values)
def test_classic_control_characters_never_start_a_line(message: str, task: str, value: Any) -> None:
    with context(task_name=task):
        record = one_record(lambda lg: lg.info(message, payload=value))
    text = ClassicFormatter(
        "[%(asctime)s] %(task_name)s %(payload)s %(payload)r | %(message)s"
    ).format(record)
    assert len(text.splitlines()) == 1
    assert text.isprintable()


def test_classic_forged_line_in_an_exception_message_stays_inside_the_traceback() -> None:
    forged = "bad\n[2024-05-01 12:00:00+0000] INFO - structflow.golden | all good\r\nmore"
    try:
        raise ValueError(forged)
    except ValueError:
        record = golden_record(exc_info=sys.exc_info())
    record.msg, record.args = "failed\r\n[2024-05-01 12:00:00+0000] INFO - x | fake", ()
    lines = ClassicFormatter().format(record).split("\n")
    assert lines[0].startswith("[2024-05-01 ") and lines[0].endswith(
        "| failed\\r\\n[2024-05-01 12:00:00+0000] INFO - x | fake"
    )
    assert [line for line in lines[1:] if line.startswith("[")] == []
    assert lines[-3:] == [
        "ValueError: bad",
        "  [2024-05-01 12:00:00+0000] INFO - structflow.golden | all good\\r",
        "  more",
    ]


def test_classic_exception_notes_are_escaped_too() -> None:
    try:
        err = ValueError("x")
        err.add_note("note\n[2024] INFO forged")
        raise err
    except ValueError:
        record = golden_record(exc_info=sys.exc_info())
    lines = ClassicFormatter().format(record).split("\n")
    assert lines[-3:] == ["ValueError: x", "  note", "  [2024] INFO forged"]


def test_classic_exc_text_lines_are_indented_when_they_could_pass_as_records() -> None:
    record = golden_record()
    record.exc_text = (
        'Traceback (most recent call last):\n  File "x", line 1\nValueError: a\n[2024] INFO forged'
    )
    lines = ClassicFormatter().format(record).split("\n")
    assert lines[1:] == [
        "Traceback (most recent call last):",
        '  File "x", line 1',
        "  ValueError: a",
        "  [2024] INFO forged",
    ]


def test_classic_percent_arg_mismatch_renders_message_and_args_once() -> None:
    record = one_record(lambda lg: lg.info("two %s %s", "only-one"))
    text = ClassicFormatter("%(message)s").format(record)
    assert text == "two %s %s ('only-one',)"
    for formatter in all_formatters():
        assert formatter.format(record).count("only-one") == 1, formatter


def test_percent_arg_mismatch_on_a_plain_stdlib_record() -> None:
    record = logging.LogRecord("plain", logging.INFO, __file__, 1, "%d items", ("many",), None)
    assert JsonFormatter().event_dict(record)["message"] == "%d items ('many',)"
    assert ClassicFormatter("%(message)s").format(record) == "%d items ('many',)"


def test_classic_asctime_follows_the_second() -> None:
    formatter = ClassicFormatter("%(asctime)s", "%H:%M:%S")
    record = golden_record()
    first = formatter.format(record)
    record.created += 1
    assert first != formatter.format(record)
    assert logging.Formatter("%(asctime)s", "%H:%M:%S").format(record) == formatter.format(record)


def test_classic_processors_can_feed_the_format() -> None:
    def add_host(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        event["host"] = "worker-1"
        return event

    record = one_record(lambda lg: lg.info("m"))
    assert (
        ClassicFormatter("%(host)s %(message)s", processors=[add_host]).format(record)
        == "worker-1 m"
    )


# --- console ---------------------------------------------------------------------------


def test_console_layout_without_colors() -> None:
    record = golden_record()
    record.levelno, record.levelname = logging.INFO, "INFO"
    text = ConsoleFormatter(colors=False, datefmt="%Y").format(record)
    expected = (
        "2024 [info    ] loaded 3 rows                  [structflow.golden] "
        "flow_name=etl flow_run_id=fr-1 task_name=load task_run_id=tr-1 map_index=None "
        "task_run_count=1 rows=3"
    )
    assert expected == text


def test_console_colors_wrap_level_and_fields() -> None:
    record = golden_record()
    text = ConsoleFormatter(colors=True).format(record)
    assert "\x1b[31merror   \x1b[0m" in text
    assert "\x1b[36mrows\x1b[0m=\x1b[35m3\x1b[0m" in text


def test_console_colors_follow_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    primary, secondary = os.openpty()
    with open(secondary, "w") as tty, open(os.devnull, "w") as devnull:
        assert ConsoleFormatter(stream=tty).colors is True
        assert ConsoleFormatter(stream=devnull).colors is False
        monkeypatch.setenv("NO_COLOR", "1")
        assert ConsoleFormatter(stream=tty).colors is False
        monkeypatch.delenv("NO_COLOR")
        monkeypatch.setenv("FORCE_COLOR", "1")
        assert ConsoleFormatter(stream=devnull).colors is True
    os.close(primary)


def test_console_traceback_below_the_line() -> None:
    record = golden_record(exc_info=raised())
    lines = ConsoleFormatter(colors=False).format(record).split("\n")
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: bad value"


# --- logfmt ------------------------------------------------------------------------


_LOGFMT_PAIR = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)')
_UNESCAPE = re.compile(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|.)")


def parse_logfmt(line: str) -> dict[str, str]:
    """A strict-enough logfmt reader: the pairs must cover the whole line."""
    pairs = _LOGFMT_PAIR.findall(line)
    assert " ".join(f"{k}={v}" for k, v in pairs) == line
    out = {}
    for key, raw in pairs:
        quoted = raw.startswith('"')
        out[key] = _UNESCAPE.sub(_unescape_one, raw[1:-1]) if quoted else raw
    return out


def _unescape_one(match: re.Match[str]) -> str:
    code = match.group(1)
    simple = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"'}
    if code in simple:
        return simple[code]
    return chr(int(code[1:], 16))


def test_logfmt_layout() -> None:
    record = golden_record(note="two words", empty="", quote='say "hi"', items=[1, 2])
    assert parse_logfmt(LogfmtFormatter().format(record)) == {
        "timestamp": "2024-05-01T12:00:00.125000Z",
        "level": "error",
        "logger": "structflow.golden",
        "message": "loaded 3 rows",
        "flow_name": "etl",
        "flow_run_id": "fr-1",
        "task_name": "load",
        "task_run_id": "tr-1",
        "map_index": "null",
        "task_run_count": "1",
        "rows": "3",
        "note": "two words",
        "empty": "",
        "quote": 'say "hi"',
        "items": "[1,2]",
    }


def test_logfmt_exception_fields() -> None:
    record = golden_record(exc_info=raised())
    parsed = parse_logfmt(LogfmtFormatter().format(record))
    assert (parsed["exception.type"], parsed["exception.message"]) == ("ValueError", "bad value")
    assert parsed["exception.traceback"].endswith("ValueError: bad value")


@settings(max_examples=150, deadline=None)
@given(value=strategies.nasty_text, key=strategies.nasty_text)
def test_logfmt_values_round_trip(value: str, key: str) -> None:
    assume(key != "v")  # the other field must not replace the value under test
    record = golden_record(**{"v": value, key or "_": "k"})
    line = LogfmtFormatter(redact_keys=[]).format(record)
    assert len(line.splitlines()) == 1
    parsed = parse_logfmt(line)
    assert value == parsed["v"]


# --- processors in formatters --------------------------------------------------------


def test_structlog_timestamper_and_callsite_adder_work_as_processors() -> None:
    import structlog

    adder = structlog.processors.CallsiteParameterAdder(
        [
            structlog.processors.CallsiteParameter.FILENAME,
            structlog.processors.CallsiteParameter.FUNC_NAME,
            structlog.processors.CallsiteParameter.LINENO,
        ]
    )
    stamper = structlog.processors.TimeStamper(fmt="%Y", key="year", utc=True)
    formatter = JsonFormatter(processors=[adder, stamper])
    with recording() as (logger, records):
        logger.info("m")
        line = sys._getframe().f_lineno - 1
    event = json.loads(formatter.format(records[0]))
    assert {
        "filename": "test_formatters.py",
        "func_name": "test_structlog_timestamper_and_callsite_adder_work_as_processors",
        "lineno": line,
    } == {k: event[k] for k in ("filename", "func_name", "lineno")}
    assert re.fullmatch(r"\d{4}", event["year"])
    assert "_record" not in event and "_from_structlog" not in event


def test_processor_given_by_import_path_and_class() -> None:
    formatter = JsonFormatter(
        processors=["structlog.processors:TimeStamper", "structflow.processors:add_run_context"]
    )
    with context(task_name="load"):
        record = one_record(lambda lg: lg.info("m"))
    event = formatter.event_dict(record)
    assert isinstance(event["timestamp"], float)  # TimeStamper() writes epoch seconds
    assert event["task_name"] == "load"
    assert "<" not in repr(formatter)


def test_processor_output_is_redacted_and_truncated() -> None:
    def leak(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        event["Authorization"] = SECRET
        event["message"] = "x" * 500
        return event

    record = one_record(lambda lg: lg.info("m"))
    for formatter in (
        JsonFormatter(processors=[leak], max_message_bytes=100),
        LogfmtFormatter(processors=[leak], max_message_bytes=100),
    ):
        text = formatter.format(record)
        assert SECRET not in text
        assert "truncated" in text


def test_failing_processor_is_reported_in_the_record() -> None:
    def broken(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("oops")

    def renderer(logger: Any, method: str, event: dict[str, Any]) -> str:
        return "rendered"

    record = one_record(lambda lg: lg.info("m"))
    event = json.loads(JsonFormatter(processors=[broken]).format(record))
    assert f"{broken.__qualname__} raised RuntimeError: oops" == event["processor_error"]
    event = json.loads(JsonFormatter(processors=[renderer]).format(record))
    assert event["processor_error"].endswith(
        "returned str, not the event dict; leave rendering to the formatter"
    )


def test_processors_see_method_name_and_no_logger() -> None:
    seen = []

    def spy(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        seen.append((logger, method, event["_record"].getMessage()))
        return event

    record = one_record(lambda lg: lg.warning("w %s", 1))
    JsonFormatter(processors=[spy]).format(record)
    assert seen == [(None, "warning", "w 1")]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nocolon", "processors\\[0\\]: 'nocolon' is not of the form 'package.module:callable'"),
        (
            "no_such_module_x:f",
            "processors\\[0\\]: cannot import 'no_such_module_x:f' \\(ModuleNotFoundError",
        ),
        ("structlog.processors:Nope", "'structlog.processors' has no attribute 'Nope'"),
        ("structflow.processors:REDACTED", "is a str, not a callable"),
        ("structflow.processors:Truncator.keys", "is a member_descriptor, not a callable"),
    ],
)
def test_bad_processor_specs_are_clear_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JsonFormatter(processors=[spec])


# --- factory, repr, dictConfig ------------------------------------------------------------


CONFIG_OPTIONS = {
    "fmt": "%(levelname)s %(message)s",
    "datefmt": "%H:%M",
    "json_schema": "ecs",
    "redact_keys": ["password"],
    "max_message_bytes": 500,
    "processors": [],
}


@pytest.mark.parametrize(
    ("renderer", "cls"),
    [
        ("classic", ClassicFormatter),
        ("json", JsonFormatter),
        ("console", ConsoleFormatter),
        ("logfmt", LogfmtFormatter),
    ],
)
def test_formatter_for_takes_the_whole_config_section(renderer: str, cls: type) -> None:
    formatter = formatter_for(renderer, **CONFIG_OPTIONS)
    assert cls is type(formatter)
    record = golden_record()
    text = formatter.format(record)
    assert "loaded 3 rows" in text
    if renderer == "classic":
        assert text == "ERROR loaded 3 rows"
    if renderer == "json":
        assert "ecs.version" in json.loads(text)


def test_formatter_for_errors() -> None:
    with pytest.raises(
        ValueError,
        match="renderer='xml' is not a renderer; expected one of classic, json, console, logfmt",
    ):
        formatter_for("xml")
    with pytest.raises(TypeError, match="unknown option\\(s\\) colour"):
        formatter_for("console", colour=True)


def test_formatter_for_console_stream_option() -> None:
    with open(os.devnull, "w") as devnull:
        assert formatter_for("console", stream=devnull).colors is False  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "formatter",
    [
        ClassicFormatter(
            "%(message)s", "%H", missing="?", processors=["structflow.processors:add_run_context"]
        ),
        ClassicFormatter("{message}", style="{", defaults={"a": 1}),
        JsonFormatter(json_schema="otel", service_name="svc", redact_keys=["x"]),
        JsonFormatter(max_message_bytes=None, processors=["structlog.processors:TimeStamper"]),
        ConsoleFormatter(colors=True, datefmt="%H", pad_message=10),
        LogfmtFormatter(redact_keys=[]),
    ],
)
def test_repr_reads_like_the_configuration(formatter: logging.Formatter) -> None:
    again = eval(repr(formatter), vars(formatters_module))
    assert repr(formatter) == repr(again)
    assert type(formatter) is type(again)


def test_repr_of_json_formatter() -> None:
    assert repr(
        JsonFormatter(
            json_schema="gcp",
            redact_keys=["token"],
            max_message_bytes=100,
            processors=["structflow.processors:add_run_context"],
        )
    ) == (
        "JsonFormatter(json_schema='gcp', redact_keys=['token'], max_message_bytes=100, "
        "processors=['structflow.processors:add_run_context'])"
    )


@pytest.mark.parametrize(
    ("formatter_config", "check"),
    [
        (
            {"()": "structflow.formatters.ClassicFormatter", "format": "%(task_name)s %(message)s"},
            lambda out: out == "load hello",
        ),
        (
            {
                "class": "structflow.formatters.ClassicFormatter",
                "format": "%(levelname)s|%(message)s",
                "datefmt": "%H",
            },
            lambda out: out == "INFO|hello",
        ),
        (
            {
                "()": "structflow.formatters.JsonFormatter",
                "json_schema": "gcp",
                "redact_keys": ["token"],
            },
            lambda out: (
                json.loads(out)["severity"] == "INFO" and json.loads(out)["token"] == "[REDACTED]"
            ),
        ),
        (
            {"class": "structflow.formatters.JsonFormatter"},
            lambda out: json.loads(out)["message"] == "hello",
        ),
        (
            {"()": "structflow.formatters.ConsoleFormatter", "colors": False, "datefmt": "%Y"},
            lambda out: out.startswith(tuple("0123456789")) and "[info    ] hello" in out,
        ),
        (
            {"()": "structflow.formatters.LogfmtFormatter", "max_message_bytes": 100},
            lambda out: "message=hello" in out and "task_name=load" in out,
        ),
    ],
)
def test_dictconfig_with_each_formatter(formatter_config: dict[str, Any], check: Any) -> None:
    stream = io.StringIO()
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"f": formatter_config},
            "handlers": {
                "h": {"class": "logging.StreamHandler", "formatter": "f", "stream": stream}
            },
            "loggers": {
                "dictconfig_test": {"handlers": ["h"], "level": "INFO", "propagate": False}
            },
        }
    )
    logger = logging.getLogger("dictconfig_test")
    try:
        get_logger()  # the record factory, as in an application using structflow
        with context(task_name="load"):
            logger.info("hello", extra={"token": "t"})
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
    out = stream.getvalue()
    assert out.endswith("\n") and out.count("\n") == 1
    assert check(out[:-1]), out


# --- concurrency -------------------------------------------------------------------------


def test_one_formatter_shared_by_threads() -> None:
    """Caches (time, field plans) are shared safely between threads."""
    formatter = JsonFormatter()
    lines: list[str] = []
    lock = threading.Lock()

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            line = formatter.format(record)
            with lock:
                lines.append(line)

    logger = get_logger("threads")
    handler = Collect()
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)

    def work(n: int) -> None:
        with context(task_name=f"t{n}"), bound(worker=n):
            for i in range(300):
                logger.info("item %s", i, i=i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    logger.removeHandler(handler)
    events = [json.loads(line) for line in lines]
    assert len(events) == 1800
    assert all(
        e["task_name"] == f"t{e['worker']}" and e["message"] == f"item {e['i']}" for e in events
    )


def test_escape_keeps_printable_text() -> None:
    assert escape("héllo wörld 😀") == "héllo wörld 😀"
    assert (
        escape("a\nb\r\t\x1b\u2028\x85\ud800\u200b") == "a\\nb\\r\\t\\x1b\\u2028\\x85\\ud800\\u200b"
    )


def test_classic_chained_exceptions_keep_stdlib_layout() -> None:
    try:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise RuntimeError("outer\nforged") from inner
    except RuntimeError:
        record = golden_record(exc_info=sys.exc_info())
    ours = ClassicFormatter("%(message)s").format(record).split("\n")
    theirs = logging.Formatter("%(message)s").format(record).split("\n")
    assert theirs[:-2] == ours[:-2]
    assert ours[-2:] == ["RuntimeError: outer", "  forged"]
    assert "The above exception was the direct cause of the following exception:" in ours


def test_a_record_with_an_impossible_time_still_renders() -> None:
    record = golden_record()
    record.created = math.nan
    event = json.loads(JsonFormatter().format(record))
    assert (event["timestamp"], event["message"]) == (None, "loaded 3 rows")
    assert event["structflow_error"].startswith("record could not be rendered: ValueError")
    for formatter in all_formatters():
        assert "loaded 3 rows" in formatter.format(record)


def test_layouts_seen_once_twice_or_with_many_fields_render_alike() -> None:
    """Field names that change per call, repeat, or exceed the compiled builder's size."""
    formatter = JsonFormatter()
    many = {f"f{i:03d}": i for i in range(100)}
    with recording("layouts") as (logger, records):
        for i in range(20):
            logger.info("m", **{f"key{i}": i}, password="p")
        for _ in range(3):
            logger.info("m", same=1, token="t")
        logger.info("m", **many)
        logger.info("m", **many)
    events = [formatter.event_dict(r) for r in records]
    for i in range(20):
        assert (events[i][f"key{i}"], events[i]["password"]) == (i, "[REDACTED]")
    for event in events[20:23]:
        assert (event["same"], event["token"]) == (1, "[REDACTED]")
    for event in events[23:]:
        assert list(event)[4:] == list(many)
        assert {k: event[k] for k in many} == many
