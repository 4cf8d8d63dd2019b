"""Tests for structflow.testing: capture_logs and MockSink."""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any

import pytest

from receivers import (
    HTTPReceiver,
    attach,
    closing_fixture,  # noqa: F401 - pytest finds it as 'closing'
    receiver_fixture,  # noqa: F401 - pytest finds it as 'receiver'
)
from structflow._context import bound, context
from structflow.formatters import JsonFormatter
from structflow.handlers import HTTPHandler, ShippingHandler
from structflow.handlers.encoders import ENCODINGS
from structflow.loggers import get_logger
from structflow.testing import CapturedLogs, MockSink, capture_logs


def test_captures_structflow_records_as_event_dicts() -> None:
    logger = get_logger("Task B")
    with context(flow_name="etl", task_name="Task B"), capture_logs() as logs:
        logger.info("Beginning to run Task B with input %s", 3, rows=3)
        logger.bind(run_id="r-1").warning("slow")
    assert logs == [
        {
            "level": "info",
            "logger": "structflow.Task B",
            "message": "Beginning to run Task B with input 3",
            "flow_name": "etl",
            "task_name": "Task B",
            "rows": 3,
        },
        {
            "level": "warning",
            "logger": "structflow.Task B",
            "message": "slow",
            "flow_name": "etl",
            "task_name": "Task B",
            "run_id": "r-1",
        },
    ]
    assert isinstance(logs, CapturedLogs)
    assert logs.messages() == ["Beginning to run Task B with input 3", "slow"]
    assert [r.getMessage() for r in logs.records] == logs.messages()


def test_capture_ends_with_the_block_and_leaves_no_handler() -> None:
    logger = get_logger()
    before = list(logger.handlers)
    with capture_logs() as logs:
        get_logger("x").info("inside")
    get_logger("x").info("outside")
    assert logs.messages() == ["inside"]
    assert before == logger.handlers


def test_exceptions_are_captured_as_dicts() -> None:
    with capture_logs() as logs:
        try:
            raise ValueError("bad")
        except ValueError:
            get_logger("x").exception("failed")
    exception = logs[0]["exception"]
    assert (exception["type"], exception["message"]) == ("ValueError", "bad")
    assert exception["traceback"].endswith("ValueError: bad")


def test_level_is_applied_during_the_block_and_restored() -> None:
    root = get_logger()
    root.setLevel(logging.INFO)
    with capture_logs() as logs:
        get_logger("x").debug("hidden")
    assert logs == []
    with capture_logs(level="DEBUG") as logs:
        get_logger("x").debug("shown")
    assert logs.messages() == ["shown"]
    assert root.level == logging.INFO


def test_other_loggers_by_name_or_object() -> None:
    third = logging.getLogger("capture_third_party")
    third.propagate = False
    other = logging.getLogger("capture_other")
    other.propagate = False
    try:
        with (
            bound(request_id="rq-1"),
            capture_logs("capture_third_party", other, level=logging.INFO) as logs,
        ):
            third.info("from %s", "third", extra={"attempt": 2})
            other.info("from other")
    finally:
        third.propagate = other.propagate = True
        third.setLevel(logging.NOTSET)
    assert logs == [
        {
            "level": "info",
            "logger": "capture_third_party",
            "message": "from third",
            "request_id": "rq-1",
            "attempt": 2,
        },
        {"level": "info", "logger": "capture_other", "message": "from other", "request_id": "rq-1"},
    ]
    assert third.handlers == [] and other.handlers == []
    assert other.level == logging.NOTSET


def test_a_record_reaching_two_captured_loggers_is_kept_once() -> None:
    child = get_logger("parent.child")
    with capture_logs("structflow.parent") as logs:
        child.info("once")
    assert logs.messages() == ["once"]


def test_redaction_applies_as_in_output() -> None:
    with capture_logs() as logs:
        get_logger("x").info("login", password="hunter2")
    assert logs[0]["password"] == "[REDACTED]"
    with capture_logs(formatter=JsonFormatter(redact_keys=[])) as logs:
        get_logger("x").info("login", password="hunter2")
    assert logs[0]["password"] == "hunter2"


def test_another_schema_through_the_formatter_option() -> None:
    with capture_logs(formatter=JsonFormatter(json_schema="gcp")) as logs:
        get_logger("x").error("boom")
    assert (logs[0]["severity"], logs[0]["message"]) == ("ERROR", "boom")
    assert "time" in logs[0]  # only the default layout's `timestamp` is dropped


def test_records_from_threads_are_captured() -> None:
    logger = get_logger("threaded")

    def work(n: int) -> None:
        with context(task_name=f"t{n}"):
            logger.info("work %s", n)

    with capture_logs() as logs:
        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(f"t{n}" for n in range(4)) == sorted(e["task_name"] for e in logs)


def test_capture_restores_state_when_the_block_raises() -> None:
    root = get_logger()
    root.setLevel(logging.WARNING)
    before = list(root.handlers)
    with pytest.raises(RuntimeError), capture_logs(level="DEBUG"):
        raise RuntimeError("test failure")
    assert (logging.WARNING, before) == (root.level, root.handlers)


def test_configured_extra_loggers_are_captured() -> None:
    import structflow

    structflow.configure(extra_loggers=["capture_extra_lib"])
    with capture_logs() as logs:
        logging.getLogger("capture_extra_lib").warning("from a library")
    assert [(e["logger"], e["message"]) for e in logs] == [("capture_extra_lib", "from a library")]


# --- MockSink ---------------------------------------------------------------------


def shipping(
    sink: MockSink, closing: list[logging.Handler], **options: Any
) -> tuple[ShippingHandler, logging.Logger]:
    """A ShippingHandler around *sink* (one batch per flush unless told), and a logger to it."""
    handler = ShippingHandler(sink, **{"flush_interval": 30.0, "retry_backoff": 0.01, **options})
    closing.append(handler)
    return handler, attach(handler)


def test_mock_sink_keeps_each_batch_the_worker_sends(closing: list[logging.Handler]) -> None:
    sink = MockSink()
    handler, logger = shipping(sink, closing, batch_max_records=2)
    for i in range(5):
        logger.info("record %d", i)

    assert handler.flush(timeout=10) is True
    assert [len(attempt) for attempt in sink.attempts] == [2, 2, 1]
    assert [event["message"] for event in sink.events()] == [f"record {i}" for i in range(5)]


def test_mock_sink_answers_from_a_list_in_order_then_ok(closing: list[logging.Handler]) -> None:
    sink = MockSink(["retry", "retry"])
    handler, logger = shipping(sink, closing)
    logger.info("once")

    assert handler.flush(timeout=10) is True
    assert (len(sink.attempts), len(sink.delivered)) == (3, 1)
    assert (handler.stats()["retried"], handler.stats()["delivered"]) == (2, 1)


def test_mock_sink_answers_with_what_a_callable_returns(closing: list[logging.Handler]) -> None:
    def refuse_secrets(batch: list[bytes]) -> str:
        return "reject" if any(b"secret" in entry for entry in batch) else "ok"

    sink = MockSink(refuse_secrets)
    handler, logger = shipping(sink, closing)
    logger.info("a secret")
    assert handler.flush(timeout=10) is True
    logger.info("public")
    assert handler.flush(timeout=10) is True

    assert [event["message"] for event in sink.events()] == ["public"]
    assert handler.stats()["dropped"]["rejected"] == 1


def test_mock_sink_events_are_redacted_and_rendered_by_the_handlers_formatter(
    closing: list[logging.Handler],
) -> None:
    sink = MockSink()
    handler, logger = shipping(sink, closing)
    handler.setFormatter(JsonFormatter(json_schema="ecs"))
    logger.info("login", extra={"password": "hunter2"})

    assert handler.flush(timeout=10) is True
    (event,) = sink.events()
    assert (event["message"], event["password"], "@timestamp" in event) == (
        "login",
        "[REDACTED]",
        True,
    )


def test_mock_sink_bodies_are_loki_pushes_with_the_labels_given(
    closing: list[logging.Handler],
) -> None:
    sink = MockSink(encoding="loki", labels={"env": "test"}, service="etl")
    handler, logger = shipping(sink, closing)
    logger.warning("disk full")

    assert handler.flush(timeout=10) is True
    (body,) = sink.bodies()
    (stream,) = json.loads(body)["streams"]
    assert stream["stream"] == {"env": "test", "level": "warning", "service_name": "etl"}


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_mock_sink_bodies_are_what_http_handler_posts(
    encoding: str, receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    """Both handlers on one logger see the same records; the bodies match byte for byte."""
    sink = MockSink(encoding=encoding, labels={"env": "test"}, index="logs-test")
    mock = ShippingHandler(sink, flush_interval=30.0)
    http = HTTPHandler(
        receiver.url, encoding, labels={"env": "test"}, index="logs-test", flush_interval=30.0
    )
    closing.extend([mock, http])
    logger = attach(mock)
    logger.addHandler(http)
    for i in range(3):
        logger.info("record %d", i, extra={"seq": i})

    assert mock.flush(timeout=10) is True
    assert http.flush(timeout=10) is True
    # Record ids are unique per handler (the ndjson encoding's): compare them by position.
    assert [_numbered_ids(r.body) for r in receiver.accepted] == [
        _numbered_ids(body) for body in sink.bodies()
    ]


def _numbered_ids(body: bytes) -> bytes:
    return re.sub(rb'"_record_id":"[0-9a-f]+-', b'"_record_id":"<handler>-', body)


def test_mock_sink_refuses_an_answer_it_does_not_know() -> None:
    with pytest.raises(ValueError) as info:
        MockSink("maybe")
    assert str(info.value) == (
        "MockSink: answer='maybe' is invalid; expected one of 'ok', 'retry', 'split', 'reject'"
    )


def test_mock_sink_needs_a_formatter_that_renders_json(closing: list[logging.Handler]) -> None:
    handler, _ = shipping(MockSink(), closing)
    with pytest.raises(TypeError, match="ShippingHandler renders records as JSON objects"):
        handler.setFormatter(logging.Formatter("%(message)s"))


def test_shipping_handler_repr_reads_like_its_configuration(
    closing: list[logging.Handler],
) -> None:
    handler = ShippingHandler(MockSink(["retry"]), batch_max_records=10, level="INFO")
    closing.append(handler)
    assert repr(handler) == (
        "ShippingHandler(MockSink(answer=['retry'], encoding='ndjson'), "
        "batch_max_records=10, level='INFO')"
    )
