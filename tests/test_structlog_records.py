"""structlog's own loggers give the same plain records as every other logger (DESIGN.md 3, 11)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, given, settings

import strategies
import structflow
from structflow import Flow, task
from structflow.formatters import JsonFormatter
from structflow.loggers import LogRecord
from structlog_support import RUN, collecting, fields_of, json_lines, setup_json, structlog_defaults

__all__ = ["structlog_defaults"]  # an autouse fixture


def issue_flow() -> Flow:
    """The example of the issue: a task logging through structlog's own API."""

    @task(name="t1")
    def t1() -> None:
        structlog.get_logger().info("from structlog", k=1)
        structlog.get_logger("mylib").bind(run_id="r-9").info("bound", k=2)

    with Flow("issue-13") as flow:
        t1()
    return flow


def structlog_lines(text: str) -> list[list[tuple[str, Any]]]:
    return [pairs for pairs in json_lines(text) if dict(pairs)["logger"] != "structflow.TaskRunner"]


def test_issue_example_gives_json_lines_with_context_and_keys_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_json()
    assert issue_flow().run().is_successful()
    lines = [p for p in structlog_lines(capsys.readouterr().out) if "FlowRunner" not in str(p)]

    assert [dict(pairs)["message"] for pairs in lines] == ["from structlog", "bound"]
    for pairs in lines:
        keys = [key for key, _ in pairs]
        assert len(keys) == len(set(keys)), keys
    first, second = (dict(pairs) for pairs in lines)
    assert (first["logger"], first["task_name"], first["k"]) == (__name__, "t1", 1)
    assert (second["logger"], second["task_name"], second["run_id"], second["k"]) == (
        "mylib",
        "t1",
        "r-9",
        2,
    )
    assert first["flow_run_id"] == second["flow_run_id"]
    assert first["flow_run_id"]


@pytest.mark.parametrize("renderer", ["console", "logfmt"])
def test_issue_example_in_other_renderers_shows_each_key_once(
    renderer: str, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_json(renderer=renderer)
    assert issue_flow().run().is_successful()
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if "bound" in ln]
    for pair in ("task_name=t1", "run_id=r-9", "k=2"):
        assert line.count(pair) == 1, line
    assert line.count("flow_run_id=") == 1, line


def test_issue_example_in_classic_format_fills_context_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_json(renderer="classic", format="%(name)s %(task_name)s %(run_id)s %(k)s | %(message)s")
    assert issue_flow().run().is_successful()
    out = capsys.readouterr().out.splitlines()
    assert f"{__name__} t1 - 1 | from structlog" in out
    assert "mylib t1 r-9 2 | bound" in out


def test_event_is_a_plain_record_with_fields_listed() -> None:
    setup_json(stream="none")
    with collecting() as records, structflow.context(**RUN):
        structlog.get_logger("mylib").bind(run_id="r-9").info("bound %s", "x", k=2)
    (record,) = records
    assert type(record) is LogRecord
    assert (record.msg, record.args, record.getMessage()) == ("bound %s", ("x",), "bound x")
    assert fields_of(record) == {**RUN, "run_id": "r-9", "k": 2}
    assert (record.name, record.levelname, record.funcName) == (
        "mylib",
        "INFO",
        "test_event_is_a_plain_record_with_fields_listed",
    )
    assert record.pathname == __file__


def test_unnamed_logger_takes_the_calling_module_name() -> None:
    setup_json(stream="none")
    with collecting() as records:
        structlog.get_logger().info("a")
        structlog.stdlib.get_logger().info("b")
    assert [(r.name, r.getMessage()) for r in records] == [(__name__, "a"), (__name__, "b")]


def test_mapping_argument_fills_named_placeholders() -> None:
    setup_json(stream="none")
    with collecting() as records:
        structlog.get_logger("x").info("%(rows)d rows into %(table)s", {"rows": 3, "table": "t"})
    assert [r.getMessage() for r in records] == ["3 rows into t"]


@pytest.mark.parametrize(
    ("event", "args", "message"),
    [
        ("bad %d", ("x",), "bad %d ('x',)"),
        ("two %s %s", ("only",), "two %s %s ('only',)"),
        ("none needed", (1, 2), "none needed (1, 2)"),
        ("100% sure", (), "100% sure"),
    ],
)
def test_mismatched_percent_arguments_still_give_one_record(
    event: str, args: tuple[Any, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_json()
    structlog.get_logger("x").warning(event, *args)
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["message"] == message


def test_levels_filter_by_structflows_level() -> None:
    setup_json(stream="none", level="WARNING")
    log = structlog.get_logger("x").bind(a=1)
    with collecting() as records:
        log.debug("d")
        log.info("i")
        log.warning("w")
        log.error("e")
        log.log(logging.INFO, "log-i")
        log.log(logging.ERROR, "log-e")
    assert [r.getMessage() for r in records] == ["w", "e", "log-e"]


def test_a_new_level_applies_to_loggers_made_before() -> None:
    setup_json(stream="none", level="INFO")
    log = structlog.get_logger("x").bind(a=1)
    log.debug("made")
    structflow.configure(stream="none", level="DEBUG")
    with collecting() as records:
        log.debug("now shown")
    assert [r.getMessage() for r in records] == ["now shown"]


def test_the_target_loggers_own_level_is_honoured() -> None:
    setup_json(stream="none", level="DEBUG")
    structflow.get_logger().setLevel(logging.ERROR)
    with collecting() as records:
        structlog.get_logger("x").warning("dropped")
        structlog.get_logger("x").error("kept")
    assert [r.getMessage() for r in records] == ["kept"]


def test_level_methods_and_aliases_log_at_their_levels() -> None:
    setup_json(stream="none", level="DEBUG")
    log = structlog.get_logger("x")
    with collecting() as records:
        for name in ("debug", "info", "msg", "warning", "warn", "error", "critical", "fatal"):
            getattr(log, name)(name)
    assert [(r.getMessage(), r.levelname) for r in records] == [
        ("debug", "DEBUG"),
        ("info", "INFO"),
        ("msg", "INFO"),
        ("warning", "WARNING"),
        ("warn", "WARNING"),
        ("error", "ERROR"),
        ("critical", "CRITICAL"),
        ("fatal", "CRITICAL"),
    ]


def test_is_enabled_for_and_effective_level_follow_the_configuration() -> None:
    setup_json(stream="none", level="WARNING")
    log = structlog.get_logger("x")
    assert (log.is_enabled_for(logging.INFO), log.is_enabled_for(logging.ERROR)) == (False, True)
    assert log.get_effective_level() == logging.WARNING


def test_await_able_methods_log_in_the_callers_context() -> None:
    import asyncio

    setup_json(stream="none", level="DEBUG")

    async def main() -> None:
        log = structlog.get_logger("x")
        with structflow.context(task_name="async-task"):
            await log.ainfo("a", k=1)
            await log.alog(logging.WARNING, "b")
            await log.adebug("c")

    with collecting() as records:
        asyncio.run(main())
    assert [(r.getMessage(), r.funcName, fields_of(r)) for r in records] == [
        ("a", "main", {"task_name": "async-task", "k": 1}),
        ("b", "main", {"task_name": "async-task"}),
        ("c", "main", {"task_name": "async-task"}),
    ]


# --- exceptions and stacks -------------------------------------------------------------


def test_exception_method_records_the_current_exception() -> None:
    setup_json(stream="none")
    with collecting() as records:
        try:
            raise ValueError("boom")
        except ValueError as exc:
            structlog.get_logger("x").exception("failed", k=1)
            caught = exc
    (record,) = records
    assert record.levelname == "ERROR"
    assert record.exc_info is not None
    assert record.exc_info[1] is caught
    assert fields_of(record) == {"k": 1}


def test_exc_info_renders_like_structflows_own_logger(capsys: pytest.CaptureFixture[str]) -> None:
    setup_json()
    try:
        raise KeyError("missing")
    except KeyError as exc:
        structlog.get_logger("x").error("with exc_info", exc_info=True)
        structlog.get_logger("x").error("with the exception", exc_info=exc)
        structflow.get_logger("x").error("structflow's own", exc_info=True)
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["message"] for e in events] == [
        "with exc_info",
        "with the exception",
        "structflow's own",
    ]
    assert events[0]["exception"] == events[1]["exception"] == events[2]["exception"]
    assert events[0]["exception"]["type"] == "KeyError"


def test_stack_info_records_the_callers_stack() -> None:
    setup_json(stream="none")
    with collecting() as records:
        structlog.get_logger("x").info("where", stack_info=True)
    (record,) = records
    assert record.stack_info is not None
    assert record.stack_info.startswith("Stack (most recent call last):")
    assert "test_stack_info_records_the_callers_stack" in record.stack_info.splitlines()[-2]
    assert fields_of(record) == {}


# --- structlog.contextvars ---------------------------------------------------------------


def test_contextvars_keys_are_fields_until_cleared() -> None:
    setup_json(stream="none")

    @task(name="t1")
    def t1() -> None:
        structlog.contextvars.bind_contextvars(req="x")
        structlog.get_logger("x").info("bound")
        structlog.contextvars.clear_contextvars()
        structlog.get_logger("x").info("cleared")

    with Flow("cv") as flow:
        t1()
    with collecting() as records:
        assert flow.run().is_successful()
    by_message = {r.getMessage(): fields_of(r) for r in records if r.name == "x"}
    assert by_message["bound"]["req"] == "x"
    assert by_message["bound"]["task_name"] == "t1"
    assert "req" not in by_message["cleared"]


def test_bound_and_call_keys_win_over_contextvars() -> None:
    setup_json(stream="none")
    with collecting() as records, structlog.contextvars.bound_contextvars(a="cv", b="cv", c="cv"):
        structlog.get_logger("x").bind(b="bound", c="bound").info("e", c="call")
    assert fields_of(records[0]) == {"b": "bound", "c": "call", "a": "cv"}


def test_unbound_contextvars_keys_are_gone() -> None:
    setup_json(stream="none")
    with collecting() as records:
        structlog.contextvars.bind_contextvars(a=1, b=2)
        structlog.contextvars.unbind_contextvars("a")
        structlog.get_logger("x").info("e")
        structlog.contextvars.clear_contextvars()
    assert fields_of(records[0]) == {"b": 2}


# --- structlog's meta keys ----------------------------------------------------------------


def test_logger_key_names_the_record() -> None:
    setup_json(stream="none")
    with collecting() as records:
        structlog.get_logger().bind(logger="bench.app").info("named")
    assert [(r.name, fields_of(r)) for r in records] == [("bench.app", {})]


def test_level_key_other_than_the_calls_level_stays_a_field() -> None:
    setup_json(stream="none")
    with collecting() as records:
        structlog.get_logger("x").info("a", level="info")
        structlog.get_logger("x").info("b", level="high")
    assert [fields_of(r) for r in records] == [{}, {"level": "high"}]


def test_keys_named_like_record_attributes_are_kept_with_an_underscore() -> None:
    setup_json(stream="none")
    with collecting() as records:
        structlog.get_logger("x").info("e", name="n", msg="m", args="a", message="s")
    (record,) = records
    assert (record.name, record.getMessage()) == ("x", "e")
    assert fields_of(record) == {"name_": "n", "msg_": "m", "args_": "a", "message_": "s"}


# --- hostile input ------------------------------------------------------------------------


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    message=strategies.messages,
    args=strategies.message_args,
    fields=strategies.fields,
    bound_fields=strategies.fields,
)
def test_hostile_values_give_one_valid_record_and_never_raise(
    message: str, args: tuple[Any, ...], fields: dict[str, Any], bound_fields: dict[str, Any]
) -> None:
    setup_json(stream="none")
    formatter = JsonFormatter()
    with collecting() as records, structflow.context(flow_name="f\nx", task_name="t"):
        structlog.get_logger("hyp").bind(**bound_fields).warning(message, *args, **fields)
    assert len(records) == 1
    record = records[0]
    assert isinstance(record.getMessage(), str)
    line = formatter.format(record)
    assert len(line.splitlines()) == 1
    assert isinstance(json.loads(line), dict)


def test_an_internal_failure_is_reported_and_not_raised(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Refuse(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            raise RuntimeError("filter refuses")

    setup_json(stream="none")
    refuse = Refuse()
    structflow.get_logger().addFilter(refuse)
    try:
        structlog.get_logger("x").info("e")
    finally:
        structflow.get_logger().removeFilter(refuse)
    err = capsys.readouterr().err
    assert "a structlog event could not be logged" in err
    assert "RuntimeError: filter refuses" in err


def test_no_structlog_output_bypasses_structflow(capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing of structlog's own console rendering is printed."""
    setup_json()
    structlog.get_logger("x").info("only once", k=1)
    out = capsys.readouterr().out
    assert [dict(pairs)["message"] for pairs in json_lines(out)] == ["only once"]
    assert "[info" not in out


def test_capture_logs_sees_structlog_events() -> None:
    from structflow.testing import capture_logs

    setup_json(stream="none")
    with capture_logs() as logs, structflow.context(task_name="t1"):
        structlog.get_logger("lib").info("hello", k=1)
    assert logs == [
        {"level": "info", "logger": "lib", "message": "hello", "task_name": "t1", "k": 1}
    ]
