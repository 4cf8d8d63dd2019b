"""ClassicFormatter: stdlib's format strings, safe for any record."""

from __future__ import annotations

import logging
import sys
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import strategies
from formatting import SECRET, all_formatters, golden_record, one_record, raised
from structflow._context import context
from structflow.formatters import DEFAULT_DATEFMT, DEFAULT_FORMAT, ClassicFormatter
from structflow.processors import EventDict

# --- classic -----------------------------------------------------------------


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


def test_redaction_in_classic_format_fields() -> None:
    record = one_record(lambda lg: lg.info("m", Token=SECRET, payload={"cookie": SECRET}))
    text = ClassicFormatter("%(Token)s %(payload)s %(payload)r").format(record)
    assert text == "[REDACTED] {'cookie': '[REDACTED]'} {'cookie': '[REDACTED]'}"


def test_a_redacted_field_the_record_lacks_is_missing_like_any_other() -> None:
    record = one_record(lambda lg: lg.info("m", Token=SECRET))
    # "token" is not "Token": absent here, so shown as any absent field is.
    assert ClassicFormatter("%(token)s %(password)s %(other)s").format(record) == "- - -"


def test_classic_asctime_follows_the_second() -> None:
    formatter = ClassicFormatter("%(asctime)s", "%H:%M:%S")
    record = golden_record()
    first = formatter.format(record)
    record.created += 1
    assert first != formatter.format(record)
    assert logging.Formatter("%(asctime)s", "%H:%M:%S").format(record) == formatter.format(record)


def test_classic_processors_can_feed_the_format() -> None:
    def add_host(logger: Any, method: str, event: EventDict) -> EventDict:
        event["host"] = "worker-1"
        return event

    record = one_record(lambda lg: lg.info("m"))
    assert (
        ClassicFormatter("%(host)s %(message)s", processors=[add_host]).format(record)
        == "worker-1 m"
    )


def test_classic_percent_arg_mismatch_renders_message_and_args_once() -> None:
    record = one_record(lambda lg: lg.info("two %s %s", "only-one"))
    text = ClassicFormatter("%(message)s").format(record)
    assert text == "two %s %s ('only-one',)"
    for formatter in all_formatters():
        assert formatter.format(record).count("only-one") == 1, formatter


# --- control characters and tracebacks ---------------------------------------


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


def test_a_context_field_without_a_value_renders_as_the_placeholder() -> None:
    """map_index outside a map, or a log attribute the context lacks, is None on the record."""
    text = ClassicFormatter("%(map_index)s %(message)s").format(golden_record())
    assert text == "- loaded 3 rows"


def test_a_field_without_a_value_takes_its_default() -> None:
    formatter = ClassicFormatter("%(map_index)s %(message)s", defaults={"map_index": "n/a"})
    assert formatter.format(golden_record()) == "n/a loaded 3 rows"


def test_a_record_attribute_that_is_none_renders_as_stdlib_does() -> None:
    record = golden_record()
    assert ClassicFormatter("%(exc_text)s").format(record) == "None"
