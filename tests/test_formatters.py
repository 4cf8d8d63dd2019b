"""
What every formatter shares: the event dict, redaction, truncation, processors, the factory.

The renderers have their own files (test_formatters_json.py, ..._classic.py,
..._console.py, ..._logfmt.py).
"""

from __future__ import annotations

import inspect
import io
import json
import logging
import logging.config
import os
import re
import sys
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import strategies
import structflow
import structflow.formatters as formatters_module
from formatting import (
    SCHEMAS,
    SECRET,
    ListHandler,
    all_formatters,
    foreign_recording,
    golden_record,
    one_record,
    recording,
)
from structflow._context import bound, context
from structflow.formatters import (
    ClassicFormatter,
    ConsoleFormatter,
    JsonFormatter,
    LogfmtFormatter,
    formatter_for,
)
from structflow.loggers import get_logger
from structflow.processors import EventDict

# --- the event dict ----------------------------------------------------------


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


def test_percent_arg_mismatch_on_a_plain_stdlib_record() -> None:
    record = logging.LogRecord("plain", logging.INFO, __file__, 1, "%d items", ("many",), None)
    assert JsonFormatter().event_dict(record)["message"] == "%d items ('many',)"
    assert ClassicFormatter("%(message)s").format(record) == "%d items ('many',)"


def test_layouts_seen_once_twice_or_with_many_fields_render_alike() -> None:
    """Field names that change per call, repeat, or exceed the compiled builder's size."""
    formatter = JsonFormatter()
    many: dict[str, Any] = {f"f{i:03d}": i for i in range(100)}
    with recording("layouts") as (logger, records):
        for i in range(20):
            once: dict[str, Any] = {f"key{i}": i}
            logger.info("m", **once, password="p")
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


# --- every renderer: one line, truncation ------------------------------------


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


@pytest.mark.parametrize("formatter", [ClassicFormatter, ConsoleFormatter])
@pytest.mark.parametrize("datefmt", ["%Y-%m-%d %Q", "%H:%M:%S.%f", "%H:%M:%S %"])
def test_a_datefmt_with_a_directive_strftime_lacks_is_refused(
    formatter: type[logging.Formatter], datefmt: str
) -> None:
    with pytest.raises(ValueError, match=f"datefmt={re.escape(repr(datefmt))} is not allowed"):
        formatter(datefmt=datefmt)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "10", True])
def test_bad_max_message_bytes_is_a_clear_error(bad: Any) -> None:
    with pytest.raises(
        ValueError, match=r"max_message_bytes=.* is not allowed; expected a positive integer"
    ):
        JsonFormatter(max_message_bytes=bad)


# --- what stdlib's Formatter.format leaves on the record ----------------------


def stdlib_asctime(record: logging.LogRecord, datefmt: str | None) -> str:
    return logging.Formatter(datefmt=datefmt).formatTime(record, datefmt)


@pytest.mark.parametrize("formatter", all_formatters(), ids=repr)
def test_every_formatter_leaves_message_and_asctime_set(formatter: logging.Formatter) -> None:
    record = golden_record()
    formatter.format(record)
    expected = ("loaded 3 rows", stdlib_asctime(record, formatter.datefmt))
    assert (record.message, record.asctime) == expected


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda f, r: f.format_bytes(r), id="format_bytes"),
        pytest.param(lambda f, r: f.event_dict(r), id="event_dict"),
    ],
)
def test_json_paths_for_handlers_leave_message_and_asctime_set(make: Any) -> None:
    record = golden_record()
    make(JsonFormatter(datefmt="%H:%M"), record)
    assert (record.message, record.asctime) == ("loaded 3 rows", stdlib_asctime(record, "%H:%M"))


def test_classic_with_processors_leaves_message_and_asctime_set() -> None:
    record = golden_record()
    ClassicFormatter(processors=["structflow.processors:add_run_context"]).format(record)
    expected = ("loaded 3 rows", stdlib_asctime(record, ClassicFormatter().datefmt))
    assert (record.message, record.asctime) == expected


@pytest.mark.parametrize("datefmt", [None, "%H:%M:%S"])
def test_asctime_follows_each_records_own_time(datefmt: str | None) -> None:
    """The time is cached per second and per millisecond, never across them."""
    formatter = JsonFormatter(datefmt=datefmt)
    seen = []
    for created in (1714564800.125, 1714564800.1259, 1714564800.126, 1714564801.126, 5.5):
        record = golden_record()
        record.created, record.msecs = created, float(int((created - int(created)) * 1000))
        formatter.format(record)
        seen.append(record.asctime == stdlib_asctime(record, datefmt))
    assert seen == [True] * 5


def test_asctime_honours_a_subclass_millisecond_format() -> None:
    class Dotted(LogfmtFormatter):
        default_msec_format = "%s.%03d"

    class StdlibDotted(logging.Formatter):
        default_msec_format = "%s.%03d"

    record = golden_record()
    Dotted().format(record)
    assert record.asctime == StdlibDotted().formatTime(record)


def test_record_message_is_the_whole_message_however_it_is_rendered() -> None:
    """Truncation and escaping are matters of rendering; ``message`` is getMessage()."""
    record = golden_record()
    record.msg, record.args = "line\n" + "x" * 400, ()
    text = LogfmtFormatter(max_message_bytes=100).format(record)
    assert (record.message, "x" * 400 in text) == ("line\n" + "x" * 400, False)


@pytest.mark.parametrize("renderer", formatters_module.RENDERERS)
def test_a_later_handler_reads_asctime_in_the_configured_datefmt(
    renderer: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Prefect 1's datefmt tests read ``record.asctime`` from a handler of their own."""
    structflow.configure(renderer=renderer, datefmt="%Y/%m")
    later = ListHandler()
    structflow.get_logger().addHandler(later)
    structflow.get_logger("x").info("hi")
    [record] = later.records
    assert record.asctime == time.strftime("%Y/%m", time.localtime(record.created))
    assert capsys.readouterr().out.count("hi") == 1


# --- log_attributes in every renderer ------------------------------------------


@pytest.mark.parametrize(
    ("formatter", "unset", "set_"),
    [
        (ClassicFormatter("%(user_id)s %(message)s"), "- hi", "u-1 hi"),
        (JsonFormatter(), '"user_id":null', '"user_id":"u-1"'),
        (LogfmtFormatter(), "user_id=null", "user_id=u-1"),
        (ConsoleFormatter(colors=False), "user_id=None", "user_id=u-1"),
    ],
    ids=["classic", "json", "logfmt", "console"],
)
def test_a_log_attribute_shows_its_value_or_the_renderers_no_value(
    formatter: logging.Formatter, unset: str, set_: str
) -> None:
    structflow.configure(stream="none", log_attributes=["user_id"])
    without = one_record(lambda lg: lg.info("hi"))
    with context(user_id="u-1"):
        with_value = one_record(lambda lg: lg.info("hi"))
    shown = (unset in formatter.format(without), set_ in formatter.format(with_value))
    assert shown == (True, True)


# --- extra= fields from loggers that are not structflow's --------------------


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


class _Key:
    """A key that is not a string, with a text of its own."""

    def __str__(self) -> str:
        return "custom-key"


NON_STRING_EXTRA: dict[Any, Any] = {7: "seven", (1, 2): "pair", _Key(): "custom", "s": "str"}
NON_STRING_SHOWN = {"7": "seven", "(1, 2)": "pair", "custom-key": "custom", "s": "str"}


def test_non_string_extra_keys_render_by_str_in_every_renderer() -> None:
    record = one_record(lambda lg: lg.info("mixed keys", extra=NON_STRING_EXTRA))

    event = JsonFormatter().event_dict(record)
    assert {k: event[k] for k in NON_STRING_SHOWN} == NON_STRING_SHOWN
    line = json.loads(JsonFormatter().format(record))
    assert {k: line[k] for k in NON_STRING_SHOWN} == NON_STRING_SHOWN
    for text in (LogfmtFormatter().format(record), ConsoleFormatter(colors=False).format(record)):
        assert "7=seven" in text and "custom-key=custom" in text


def test_non_string_extra_keys_of_a_foreign_logger_render_by_str() -> None:
    with foreign_recording("thirdparty-keys") as (logger, records):
        logger.warning("mixed keys", extra=NON_STRING_EXTRA)

    event = JsonFormatter().event_dict(records[0])
    assert {k: event[k] for k in NON_STRING_SHOWN} == NON_STRING_SHOWN
    assert "7=seven" in LogfmtFormatter().format(records[0])


def test_a_non_string_key_shown_like_a_layout_key_gets_an_underscore() -> None:
    class Message:
        def __str__(self) -> str:
            return "message"

    extra: dict[Any, Any] = {Message(): "a field"}
    record = one_record(lambda lg: lg.info("the message", extra=extra))

    event = JsonFormatter().event_dict(record)
    assert (event["message"], event["message_"]) == ("the message", "a field")


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


# --- redaction ---------------------------------------------------------------


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
        secret: dict[str, Any] = {key: SECRET}
        logger.info("m", payload=value, **secret)
    for formatter in all_formatters():
        text = formatter.format(records[0])
        assert SECRET not in text, (formatter, text)
    assert "[REDACTED]" in JsonFormatter().format(records[0])


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


# --- processors in formatters ------------------------------------------------


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
    def leak(logger: Any, method: str, event: EventDict) -> EventDict:
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
    def broken(logger: Any, method: str, event: EventDict) -> EventDict:
        raise RuntimeError("oops")

    def renderer(logger: Any, method: str, event: EventDict) -> str:
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

    def spy(logger: Any, method: str, event: EventDict) -> EventDict:
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


# --- factory, repr, dictConfig -----------------------------------------------


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


COMMON_LEADING = ["fmt", "datefmt", "style", "validate"]
COMMON_KEYWORDS = ["defaults", "redact_keys", "max_message_bytes", "processors"]


@pytest.mark.parametrize(
    ("cls", "own"),
    [
        (ClassicFormatter, ["missing"]),
        (JsonFormatter, ["json_schema", "service_name"]),
        (ConsoleFormatter, ["colors", "stream", "pad_message"]),
        (LogfmtFormatter, []),
    ],
)
def test_signature_lists_every_parameter_a_formatter_takes(cls: type, own: list[str]) -> None:
    """help() shows stdlib's four positional parameters, its own, then the common ones."""
    assert [*COMMON_LEADING, *own, *COMMON_KEYWORDS] == list(inspect.signature(cls).parameters)


def test_signature_shows_the_defaults_of_the_common_options() -> None:
    parameters = inspect.signature(JsonFormatter).parameters
    defaults = {name: parameters[name].default for name in ["style", "max_message_bytes"]}
    assert defaults == {"style": "%", "max_message_bytes": 1_000_000}


def test_unknown_keyword_names_it_and_the_ones_taken() -> None:
    with pytest.raises(TypeError) as caught:
        LogfmtFormatter(colour=True)  # type: ignore[call-arg]
    assert str(caught.value) == (
        "LogfmtFormatter() got an unexpected keyword argument 'colour'; expected some of "
        "fmt, datefmt, style, validate, defaults, redact_keys, max_message_bytes, processors"
    )


def test_formatters_take_stdlibs_arguments_positionally() -> None:
    """``dictConfig``'s ``class:`` form calls ``cls(fmt, datefmt, style, validate)``."""
    formatter = ClassicFormatter("{levelname}|{message}", "%H", "{", True)
    record = logging.makeLogRecord({"msg": "hello", "levelno": 20, "levelname": "INFO"})
    assert formatter.format(record) == "INFO|hello"


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
