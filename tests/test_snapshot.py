"""
What ``emit`` keeps of a record: the message made once, mutable fields copied, the traceback.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

import pytest

from receivers import (
    NO_DROPS,
    HTTPReceiver,
    attach,
    closing_fixture,  # noqa: F401 - pytest finds it as 'closing'
    receiver_fixture,  # noqa: F401 - pytest finds it as 'receiver'
)
from structflow.handlers import HTTPHandler
from structflow.loggers import LogRecord

pytestmark = pytest.mark.timeout(60)


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


def test_nested_values_are_shipped_as_they_were_at_the_call(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    handler = HTTPHandler(receiver.url)
    closing.append(handler)
    logger = attach(handler)
    config: dict[str, Any] = {"inner": {"v": 1, "tags": ["a"]}, "pairs": ({"k": 1},)}
    logger.info("s", extra={"cfg": config})
    config["inner"]["v"] = -1
    config["inner"]["tags"].append("b")
    config["pairs"][0]["k"] = -1

    assert handler.flush(timeout=10) is True
    (line,) = receiver.lines()
    assert line["cfg"] == {"inner": {"v": 1, "tags": ["a"]}, "pairs": [{"k": 1}]}


def test_an_object_changed_after_the_call_ships_as_its_repr_was_at_the_call(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    class Box:
        def __init__(self) -> None:
            self.items = [1]

        def __repr__(self) -> str:
            return f"Box({self.items})"

    handler = HTTPHandler(receiver.url)
    closing.append(handler)
    box = Box()
    attach(handler).info("s", extra={"box": box})
    box.items.append(2)

    assert handler.flush(timeout=10) is True
    assert [line["box"] for line in receiver.lines()] == ["Box([1])"]


def test_a_dataclass_changed_after_the_call_ships_its_fields_as_they_were(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    @dataclasses.dataclass
    class Settings:
        name: str
        tags: list[str]

    handler = HTTPHandler(receiver.url)
    closing.append(handler)
    settings = Settings("a", ["x"])
    attach(handler).info("s", extra={"settings": settings})
    settings.name = "b"
    settings.tags.append("y")

    assert handler.flush(timeout=10) is True
    assert [line["settings"] for line in receiver.lines()] == [{"name": "a", "tags": ["x"]}]


def test_values_changed_by_another_thread_while_records_wait_ship_whole(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    """A nested dict that keeps changing size never makes a record fail to render."""
    handler = HTTPHandler(receiver.url, flush_interval=0.2)
    closing.append(handler)
    logger = attach(handler)
    shared: dict[str, dict[str, int]] = {"i": {"v": 0}}
    stop = threading.Event()

    def mutate() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            shared["i"][f"k{n % 50}"] = n
            if n % 50 == 0:
                shared["i"].clear()

    thread = threading.Thread(target=mutate)
    thread.start()
    try:
        for i in range(3000):
            logger.info("s", extra={"cfg": shared, "seq": i})
    finally:
        stop.set()
        thread.join(10)

    assert handler.flush(timeout=30) is True
    lines = receiver.lines()
    assert [line["seq"] for line in lines] == list(range(3000))
    assert [line for line in lines if "structflow_error" in line] == []
    assert handler.stats()["dropped"] == NO_DROPS


def test_a_record_that_cannot_be_rendered_is_counted_not_shipped_broken(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    handler = HTTPHandler(receiver.url)
    closing.append(handler)
    logger = attach(handler)
    broken = logging.LogRecord("app", logging.INFO, __file__, 1, "broken", (), None)
    broken.created = "not a time"  # type: ignore[assignment]
    logger.handle(broken)
    logger.info("fine", extra={"seq": 1})

    assert handler.flush(timeout=10) is True
    assert [line["seq"] for line in receiver.lines()] == [1]
    assert handler.stats()["dropped"] == {**NO_DROPS, "encode_error": 1}


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
