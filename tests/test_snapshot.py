"""
What ``emit`` keeps of a record: the message made once, mutable fields copied, the traceback.
"""

from __future__ import annotations

import logging

import pytest

from receivers import (
    HTTPReceiver,
    attach,
    closing_fixture,  # noqa: F401 - pytest finds it as 'closing'
    receiver_fixture,  # noqa: F401 - pytest finds it as 'receiver'
)
from structflow.handlers import HTTPHandler
from structflow.handlers.shipping.worker import DROP_REASONS
from structflow.loggers import LogRecord

pytestmark = pytest.mark.timeout(60)

NO_DROPS = dict.fromkeys(DROP_REASONS, 0)


def test_emit_snapshots_the_record(receiver: HTTPReceiver, closing: list[logging.Handler]) -> None:
    """The message is made once, on the caller's thread; later changes to fields are not shipped."""

    class Counted:
        calls = 0

        def __str__(self) -> str:
            Counted.calls += 1
            return "counted"

    handler = HTTPHandler(receiver.url)
    closing.append(handler)
    logger = attach(handler)
    payload = {"k": 1}
    items = [1]
    logger.info("value %s", Counted(), extra={"payload": payload, "items": items})
    payload["k"] = 2
    items.append(2)

    assert handler.flush(timeout=10) is True
    (line,) = receiver.lines()
    assert (
        line["message"],
        line["payload"],
        line["items"],
        Counted.calls,
    ) == ("value counted", {"k": 1}, [1], 1)


def test_exceptions_are_shipped_with_their_traceback(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    handler = HTTPHandler(receiver.url)
    closing.append(handler)
    logger = attach(handler)

    def raiser() -> None:
        raise ValueError("boom")

    try:
        raiser()
    except ValueError:
        logger.exception("failed")

    assert handler.flush(timeout=10) is True
    (line,) = receiver.lines()
    traceback = line["exception"]["traceback"]
    assert "in raiser" in traceback
    assert traceback.endswith("ValueError: boom")


def test_emit_never_raises_and_bad_arguments_still_ship_once(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    handler = HTTPHandler(receiver.url)
    closing.append(handler)
    logger = attach(handler)

    class Unprintable:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

        __str__ = __repr__

    logger.info("%d items", "not a number")
    logger.info("field", extra={"bad": Unprintable()})
    handler.emit(logging.makeLogRecord({"msg": "%s %s", "args": ("only one",)}))

    assert handler.flush(timeout=10) is True
    lines = receiver.lines()
    assert len(lines) == 3
    assert "%d items" in lines[0]["message"] and "not a number" in lines[0]["message"]
    assert "Unprintable" in lines[1]["bad"]
    assert handler.stats()["dropped"] == NO_DROPS


class MyRecord(LogRecord):
    """A record class of the application's own."""

    tag = "mine"


def test_records_of_another_class_are_shipped_too(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    handler = HTTPHandler(receiver.url, flush_interval=0.05)
    closing.append(handler)
    logger = attach(handler)
    record = MyRecord("x", logging.INFO, __file__, 1, "custom %s", ("class",), None)
    record.structflow_fields = ("run_id",)
    record.run_id = "r1"
    logger.handle(record)
    logger.info("plain %s", "record")
    assert handler.flush(timeout=10)
    assert [(line["message"], line.get("run_id")) for line in receiver.lines()] == [
        ("custom class", "r1"),
        ("plain record", None),
    ]
