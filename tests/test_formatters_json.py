"""JsonFormatter: its default layout, the JSON schemas, and values JSON cannot hold."""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import traceback
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import strategies
from formatting import SCHEMAS, all_formatters, golden_record, one_record, raised, recording
from structflow._context import bound, context
from structflow.formatters import ClassicFormatter, JsonFormatter
from structflow.loggers import get_logger

# --- the default layout ------------------------------------------------------


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


# --- golden records, one per schema ------------------------------------------


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


# --- values JSON cannot hold -------------------------------------------------


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


def test_a_record_with_an_impossible_time_still_renders() -> None:
    record = golden_record()
    record.created = math.nan
    event = json.loads(JsonFormatter().format(record))
    assert (event["timestamp"], event["message"]) == (None, "loaded 3 rows")
    assert event["structflow_error"].startswith("record could not be rendered: ValueError")
    for formatter in all_formatters():
        assert "loaded 3 rows" in formatter.format(record)


# --- concurrency -------------------------------------------------------------


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
