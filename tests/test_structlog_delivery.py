"""structlog events reach structflow's destinations once, and users' handlers as plain records."""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

import structflow
from receivers import HTTPReceiver, SyslogReceiver, receiver_fixture, wait_until
from structflow import Flow, task
from structflow.executors import ThreadExecutor
from structflow.handlers import HTTPHandler, SyslogHandler
from structlog_support import RUN, collecting, fields_of, setup_json, structlog_defaults

__all__ = ["receiver_fixture", "structlog_defaults"]  # fixtures: 'receiver', and an autouse one


def flush_shipping() -> None:
    for handler in structflow.get_logger().handlers:
        if isinstance(handler, HTTPHandler | SyslogHandler):
            assert handler.flush(timeout=10) is True


def stdout_messages(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [json.loads(line)["message"] for line in capsys.readouterr().out.splitlines()]


@pytest.fixture
def syslog_receiver() -> Iterator[SyslogReceiver]:
    server = SyslogReceiver("tcp")
    try:
        yield server
    finally:
        server.close()


# --- exactly once ---------------------------------------------------------------------------


def test_http_receiver_gets_each_event_once_with_context(
    receiver: HTTPReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_json(http={"url": receiver.url, "flush_interval": 0.05})
    with structflow.context(**RUN):
        structlog.get_logger("mylib").bind(run_id="r-9").info("shipped", k=2, password="p")
    flush_shipping()
    (line,) = receiver.lines()
    del line["timestamp"]
    assert isinstance(line.pop("_record_id"), str)
    assert line == {
        "level": "info",
        "logger": "mylib",
        "message": "shipped",
        **RUN,
        "run_id": "r-9",
        "k": 2,
        "password": "[REDACTED]",
    }
    assert stdout_messages(capsys) == ["shipped"]


def test_extra_logger_name_is_delivered_once_through_its_logger(
    receiver: HTTPReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_json(extra_loggers=["lib"], http={"url": receiver.url, "flush_interval": 0.05})
    with collecting("lib") as seen_by_lib:
        structlog.get_logger("lib.sub").warning("from a library")
    flush_shipping()
    assert [line["message"] for line in receiver.lines()] == ["from a library"]
    assert stdout_messages(capsys) == ["from a library"]
    assert [r.name for r in seen_by_lib] == ["lib.sub"]


def test_syslog_receiver_gets_each_event_once(
    syslog_receiver: SyslogReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_json(stream="none", syslog={"address": syslog_receiver.address})
    structlog.get_logger("mylib").error("to syslog", k=1)
    # TCP keeps order and has no acknowledgement: once a later marker is in,
    # a second copy of the first event would have arrived before it.
    structflow.get_logger().error("marker")
    flush_shipping()
    assert wait_until(lambda: syslog_receiver.count() >= 2)
    payloads = [json.loads(m[m.index(b"{") :]) for m in syslog_receiver.messages]
    assert [(p["message"], p["logger"], p.get("k")) for p in payloads] == [
        ("to syslog", "mylib", 1),
        ("marker", "structflow", None),
    ]
    assert capsys.readouterr().out == ""


def test_a_structflow_name_goes_through_that_logger(capsys: pytest.CaptureFixture[str]) -> None:
    setup_json()
    with collecting("structflow.Task B") as records:
        structlog.get_logger("structflow.Task B").info("as a task logger")
    assert [r.getMessage() for r in records] == ["as a task logger"]
    assert stdout_messages(capsys) == ["as a task logger"]


def test_without_structflow_handlers_events_propagate_to_the_root_logger() -> None:
    """With stream = "none" and no shipping, records go where stdlib records go."""
    structflow.configure(stream="none")
    with collecting("") as records:
        structlog.get_logger("mylib").warning("to the application")
    assert [(r.name, r.getMessage()) for r in records] == [("mylib", "to the application")]


def test_thread_executor_tasks_carry_their_own_context() -> None:
    setup_json(stream="none")

    @task(name="left")
    def left() -> None:
        structlog.get_logger("lib").info("in a thread", side="left")

    @task(name="right")
    def right() -> None:
        structlog.get_logger("lib").info("in a thread", side="right")

    with Flow("threads") as flow:
        left()
        right()
    structlog.contextvars.bind_contextvars(request="q-1")
    try:
        with collecting() as records:
            state = flow.run(executor=ThreadExecutor(max_workers=2))
    finally:
        structlog.contextvars.clear_contextvars()
    assert state.is_successful()
    seen = sorted(
        (fields_of(r)["side"], fields_of(r)["task_name"], fields_of(r)["request"], r.threadName)
        for r in records
        if r.name == "lib"
    )
    assert [s[:3] for s in seen] == [("left", "left", "q-1"), ("right", "right", "q-1")]
    assert all(str(s[3]).startswith("structflow-worker") for s in seen)


# --- what users' own handlers see --------------------------------------------------------------


def test_a_users_queue_handler_gets_a_plain_record() -> None:
    setup_json(stream="none")
    q: queue.Queue[logging.LogRecord] = queue.Queue()
    handler = logging.handlers.QueueHandler(q)
    structflow.get_logger().addHandler(handler)
    try:
        with structflow.context(**RUN):
            structlog.get_logger("mylib").bind(run_id="r-9").info("queued %s", "x", k=2)
    finally:
        structflow.get_logger().removeHandler(handler)
    record = q.get_nowait()
    assert (record.msg, record.args, record.getMessage()) == ("queued x", None, "queued x")
    assert fields_of(record) == {**RUN, "run_id": "r-9", "k": 2}
    assert q.empty()


# --- redaction and truncation ------------------------------------------------------------------


def test_secret_keys_are_redacted_in_every_place(capsys: pytest.CaptureFixture[str]) -> None:
    setup_json()
    structlog.contextvars.bind_contextvars(api_key="from-contextvars")
    try:
        structlog.get_logger("x").bind(token="bound").info(
            "secrets", password="call", nested={"Secret": "deep", "ok": 1}
        )
    finally:
        structlog.contextvars.clear_contextvars()
    event: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert {k: event[k] for k in ("token", "password", "nested", "api_key")} == {
        "token": "[REDACTED]",
        "password": "[REDACTED]",
        "nested": {"Secret": "[REDACTED]", "ok": 1},
        "api_key": "[REDACTED]",
    }


def test_long_messages_are_truncated(capsys: pytest.CaptureFixture[str]) -> None:
    setup_json(max_message_bytes=64)
    structlog.get_logger("x").info("%s", "y" * 500)
    message = json.loads(capsys.readouterr().out)["message"]
    assert message == "y" * 40 + "…[truncated 460 bytes]"
