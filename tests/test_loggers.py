"""The record contract (DESIGN.md section 3) and the logger API (section 2)."""

from __future__ import annotations

import inspect
import json
import logging
import logging.handlers
import os
import queue
import subprocess
import sys
from typing import Any

import pytest

import structflow
from structflow.loggers import BoundLogger, Logger, get_logger


class Collect(logging.Handler):
    """A plain stdlib handler, as a user would write one."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def collect() -> Collect:
    structflow.configure(stream="none", level="DEBUG")
    handler = Collect()
    get_logger().addHandler(handler)
    return handler


RUN = {
    "flow_name": "f",
    "flow_run_id": "fr-1",
    "task_name": "Task B",
    "task_run_id": "tr-1",
    "map_index": None,
    "task_run_count": 1,
}


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    return {k: getattr(record, k) for k in vars(record)["structflow_fields"]}


def test_get_logger_names() -> None:
    assert get_logger().name == "structflow"
    assert get_logger("Task B").name == "structflow.Task B"
    assert get_logger("Task B") is logging.getLogger("structflow.Task B")
    assert isinstance(get_logger("x"), Logger)


def test_utilities_path_is_the_same_function() -> None:
    from structflow.utilities.logging import get_logger as ported

    assert ported is structflow.get_logger


def test_loggers_module_offers_the_same_get_logger() -> None:
    assert get_logger is structflow.get_logger


def test_plain_logger_made_earlier_is_upgraded_keeping_its_handlers() -> None:
    handler = Collect()
    plain = logging.getLogger("structflow.made-early")
    plain.addHandler(handler)
    upgraded = get_logger("made-early")
    assert upgraded is plain
    assert handler in upgraded.handlers
    assert upgraded.bind(k=1) is not None


def test_record_carries_run_context_as_attributes(collect: Collect) -> None:
    with structflow.context(**RUN):
        get_logger("Task B").info("hello %s", "world")
    (record,) = collect.records
    assert record.getMessage() == "hello world"
    assert record.msg == "hello %s"
    assert record.args == ("world",)
    assert fields_of(record) == RUN
    assert vars(record)["structflow_fields"] == tuple(RUN)


def test_bound_keys_follow_run_context_in_order(collect: Collect) -> None:
    with structflow.context(**RUN):
        get_logger("Task B").bind(run_id="r1").info("x", step=2)
    (record,) = collect.records
    assert vars(record)["run_id"] == "r1"
    assert vars(record)["step"] == 2
    assert vars(record)["structflow_fields"] == (*RUN, "run_id", "step")


def test_bind_unbind_new() -> None:
    lg = get_logger("b").bind(a=1, b=2)
    assert isinstance(lg, BoundLogger)
    assert lg.unbind("a")._context == {"b": 2}
    assert lg.new(c=3)._context == {"c": 3}
    assert lg.bind(b=5)._context == {"a": 1, "b": 5}
    # stdlib methods pass through
    lg.setLevel(logging.WARNING)
    assert not lg.isEnabledFor(logging.INFO)


def test_a_child_logger_takes_fields_and_keeps_what_was_bound(collect: Collect) -> None:
    child = get_logger("parent").getChild("child.grandchild")
    assert isinstance(child, Logger)
    assert child.name == "structflow.parent.child.grandchild"
    child.info("from the child", rows=3)
    bound = get_logger("parent").bind(run_id="r-1").getChild("child")
    assert isinstance(bound, BoundLogger)
    bound.info("bound child", rows=4)
    first, second = collect.records
    assert (first.name, first.getMessage(), fields_of(first)) == (
        "structflow.parent.child.grandchild",
        "from the child",
        {"rows": 3},
    )
    assert (second.name, fields_of(second)) == (
        "structflow.parent.child",
        {"run_id": "r-1", "rows": 4},
    )


def test_context_and_bound_keys_reach_any_logger_before_structflow_is_otherwise_used(
    tmp_path: Any,
) -> None:
    # dictConfig with structflow's formatter, and nothing else of structflow
    # called before the block: not get_logger(), configure() or a flow run.
    script = """
import logging, logging.config, sys
import structflow
assert logging.getLogRecordFactory() is logging.LogRecord  # importing changes nothing
logging.config.dictConfig({
    "version": 1,
    "formatters": {"json": {"()": "structflow.formatters.JsonFormatter"}},
    "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "json",
                         "stream": "ext://sys.stdout"}},
    "loggers": {"app": {"handlers": ["out"], "level": "INFO"}},
})
with structflow.bound(request_id="R1"), structflow.context(flow_run_id="FR1"):
    logging.getLogger("app").info("handled")
logging.getLogger("app").info("after")
"""
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "STRUCTFLOW__USER_CONFIG_PATH": os.devnull},
    )
    assert proc.returncode == 0, proc.stderr
    inside, after = (json.loads(line) for line in proc.stdout.splitlines())
    assert (inside["message"], inside["flow_run_id"], inside["request_id"]) == (
        "handled",
        "FR1",
        "R1",
    )
    assert "flow_run_id" not in after and "request_id" not in after


def test_foreign_logger_inside_context_carries_fields(collect: Collect) -> None:
    foreign = logging.getLogger("some.library")
    handler = Collect()
    foreign.addHandler(handler)
    try:
        with structflow.context(**RUN), structflow.bound(request="q"):
            foreign.warning("careful %d", 3)
    finally:
        foreign.removeHandler(handler)
    (record,) = handler.records
    assert record.getMessage() == "careful 3"
    assert fields_of(record) == {**RUN, "request": "q"}


def test_foreign_logger_outside_context_has_empty_fields(collect: Collect) -> None:
    foreign = logging.getLogger("some.library2")
    handler = Collect()
    foreign.addHandler(handler)
    try:
        foreign.warning("plain")
    finally:
        foreign.removeHandler(handler)
    assert vars(handler.records[0])["structflow_fields"] == ()


def test_mismatched_args_give_one_record_showing_both(collect: Collect) -> None:
    lg = get_logger("m")
    lg.info("a", "b")  # the Prefect #7175 call shape
    lg.info("%s and %s", "only-one")
    assert [r.getMessage() for r in collect.records] == [
        "a ('b',)",
        "%s and %s ('only-one',)",
    ]


def test_mapping_argument_follows_stdlib(collect: Collect) -> None:
    get_logger("m").info("%(a)s-%(b)s", {"a": 1, "b": 2})
    assert collect.records[0].getMessage() == "1-2"


def test_reserved_names_are_stored_with_underscore(collect: Collect) -> None:
    get_logger("r").info("x", name="bob", message="m", process="etl")
    (record,) = collect.records
    assert record.name == "structflow.r"
    assert (vars(record)["name_"], vars(record)["message_"], vars(record)["process_"]) == (
        "bob",
        "m",
        "etl",
    )
    assert vars(record)["structflow_fields"] == ("name_", "message_", "process_")


@pytest.mark.parametrize("bind", [False, True])
def test_a_field_named_msg_is_a_field_and_msg_alone_is_the_message(
    collect: Collect, bind: bool
) -> None:
    lg: Any = get_logger("msg").bind() if bind else get_logger("msg")
    lg.info("hello", msg="a field")
    lg.warning(msg="stdlib's spelling")
    first, second = collect.records
    assert (first.getMessage(), vars(first)["msg_"]) == ("hello", "a field")
    assert (second.getMessage(), second.levelno) == ("stdlib's spelling", logging.WARNING)


def test_extra_and_kwargs_both_become_fields(collect: Collect) -> None:
    get_logger("e").info("x", extra={"a": 1}, b=2)
    assert fields_of(collect.records[0]) == {"b": 2, "a": 1}


def test_caller_location_is_the_users_line(collect: Collect) -> None:
    lg = get_logger("loc")
    lg.info("here")
    lg.bind(k=1).warning("there")
    first, second = collect.records
    assert first.funcName == second.funcName == "test_caller_location_is_the_users_line"
    assert first.filename == "test_loggers.py"
    assert second.lineno == first.lineno + 1


@pytest.mark.parametrize("bind", [False, True])
def test_stacklevel_points_at_the_callers_caller(collect: Collect, bind: bool) -> None:
    lg: Any = get_logger("loc").bind(k=1) if bind else get_logger("loc")

    def helper() -> None:
        lg.info("from the helper", stacklevel=2)

    helper()
    line = sys._getframe().f_lineno - 1
    (record,) = collect.records
    assert (record.funcName, record.lineno) == (
        "test_stacklevel_points_at_the_callers_caller",
        line,
    )


@pytest.mark.parametrize("bind", [False, True])
def test_warn_alias_reports_the_callers_line(collect: Collect, bind: bool) -> None:
    lg: Any = get_logger("loc").bind(k=1) if bind else get_logger("loc")
    lg.warn("old spelling")
    line = sys._getframe().f_lineno - 1
    (record,) = collect.records
    assert (record.levelname, record.funcName, record.lineno) == (
        "WARNING",
        "test_warn_alias_reports_the_callers_line",
        line,
    )


def test_level_methods_show_their_parameters() -> None:
    """help() and editors show the real signature of the generated level methods."""
    info = inspect.signature(Logger.info)
    assert info.parameters["msg"].kind is inspect.Parameter.POSITIONAL_ONLY
    assert list(info.parameters) == [
        "self",
        "msg",
        "args",
        "exc_info",
        "stack_info",
        "stacklevel",
        "extra",
        "kw",
    ]
    assert info.parameters["exc_info"].default is None
    assert inspect.signature(Logger.exception).parameters["exc_info"].default is True
    names = [
        (vars(cls)["error"].__name__, vars(cls)["error"].__qualname__)
        for cls in (Logger, BoundLogger)
    ]
    assert names == [("error", "Logger.error"), ("error", "BoundLogger.error")]


def test_exception_records_exc_info(collect: Collect) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        get_logger("exc").exception("failed")
        get_logger("exc").bind(k=1).exception("failed bound")
    assert [r.exc_info[0] for r in collect.records] == [RuntimeError, RuntimeError]  # type: ignore[index]


def test_disabled_level_makes_no_record(collect: Collect) -> None:
    structflow.configure(stream="none", level="WARNING")
    lg = get_logger("quiet")
    lg.info("no")
    lg.bind(a=1).debug("no")
    lg.warning("yes")
    assert [r.getMessage() for r in collect.records] == ["yes"]


def test_queue_handler_passes_plain_message(collect: Collect) -> None:
    """structlog #702: a dict in record.msg broke QueueHandler; ours stays plain text."""
    q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handler = logging.handlers.QueueHandler(q)
    lg = get_logger("q")
    lg.addHandler(handler)
    with structflow.context(**RUN):
        lg.bind(run_id="r").info("value %s", 5)
    record = q.get_nowait()
    assert record.getMessage() == "value 5"
    assert record.msg == "value 5"
    assert vars(record)["run_id"] == "r"


def test_user_record_factory_is_honoured(collect: Collect) -> None:
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        vars(record)["custom"] = "yes"
        return record

    logging.setLogRecordFactory(factory)
    try:
        with structflow.context(**RUN):
            get_logger("f").info("x")
    finally:
        logging.setLogRecordFactory(previous)
    (record,) = collect.records
    assert vars(record)["custom"] == "yes"
    assert fields_of(record) == RUN


def test_stack_info(collect: Collect) -> None:
    get_logger("s").info("x", stack_info=True)
    stack = collect.records[0].stack_info
    assert stack is not None
    assert stack.startswith("Stack (most recent call last):")
    assert "test_stack_info" in stack


class Raising(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        raise ConnectionError("receiver is down")


def test_a_raising_handler_never_raises_into_the_caller(
    collect: Collect, capsys: pytest.CaptureFixture[str]
) -> None:
    """The seed page's handler posts without a try; a dead receiver must not fail the task."""
    lg = get_logger("raising")
    lg.addHandler(Raising())
    lg.info("still logged %s", 1)
    assert [r.getMessage() for r in collect.records] == ["still logged 1"]
    assert "ConnectionError: receiver is down" in capsys.readouterr().err


def test_foreign_extra_may_repeat_a_bound_key(collect: Collect) -> None:
    """stdlib refuses extra keys already on the record; the caller's value wins instead."""
    foreign = logging.getLogger("some.library3")
    handler = Collect()
    foreign.addHandler(handler)
    try:
        with structflow.context(**RUN), structflow.bound(request_id="outer"):
            foreign.warning("m", extra={"request_id": "inner", "task_name": "override", "n": 1})
    finally:
        foreign.removeHandler(handler)
    (record,) = handler.records
    assert vars(record)["request_id"] == "inner"
    assert vars(record)["task_name"] == "override"
    assert fields_of(record) == {
        **RUN,
        "task_name": "override",
        "request_id": "inner",
        "n": 1,
    }


def test_try_unbind_ignores_missing_keys(collect: Collect) -> None:
    get_logger("t").bind(a=1, b=2).try_unbind("a", "missing").info("x")
    assert fields_of(collect.records[0]) == {"b": 2}
