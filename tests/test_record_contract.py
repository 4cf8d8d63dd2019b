"""
The record contract: a record from structflow's own loggers is stdlib's record.

structflow's loggers build records directly (the fast path) instead of calling
``logging.LogRecord``; every attribute must still be what stdlib would have
set, on every Python version. ``make test`` runs this file under each Python
3.11+ it finds, because stdlib's arithmetic changes between versions (3.13
keeps its clock in nanoseconds).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import structflow
import structflow._loggers as loggers
from structflow._records import RECORD_ATTRS
from structflow.loggers import Logger

#: Clock readings in nanoseconds: an ordinary one, and ones at the edges of a
#: millisecond and of a second, where float rounding is easy to get wrong.
CLOCKS_NS = [
    1_700_000_000_123_456_789,
    1_677_903_920_999_998_503,
    1_677_903_920_999_999_900,
    1_677_903_921_000_000_000,
    1_700_000_000_000_999_999,
]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Stop the clock for stdlib and structflow alike: set it with ``clock(ns)``."""

    def stop_at(ns: int) -> None:
        monkeypatch.setattr(time, "time_ns", lambda: ns)
        monkeypatch.setattr(time, "time", lambda: ns / 1e9)
        # structflow's loggers keep their own references to the clock.
        monkeypatch.setattr(loggers, "_time_ns", lambda: ns)
        monkeypatch.setattr(loggers, "_time", lambda: ns / 1e9)

    return stop_at


def stdlib_twin(record: logging.LogRecord) -> logging.LogRecord:
    """The record stdlib makes, here and now, for the same logger, call site and arguments."""
    return logging.LogRecord(
        record.name,
        record.levelno,
        record.pathname,
        record.lineno,
        record.msg,
        record.args,
        record.exc_info,
        record.funcName,
        record.stack_info,
    )


class Twins(logging.Handler):
    """Keeps each record with its stdlib twin, made in the thread and task that logged it."""

    def __init__(self) -> None:
        super().__init__()
        self.pairs: list[tuple[dict[str, Any], logging.LogRecord]] = []

    def emit(self, record: logging.LogRecord) -> None:
        # The attributes as they reach the first handler: later handlers
        # (pytest's, on the root logger) add `message` and `asctime`.
        self.pairs.append((dict(vars(record)), stdlib_twin(record)))


def record_and_twin(log: Callable[[Logger], None]) -> tuple[dict[str, Any], logging.LogRecord]:
    """Log once through a structflow logger on its fast path: the record's attributes, its twin."""
    structflow.configure(stream="none", level="DEBUG")
    assert loggers._fast_records, "structflow's loggers are not building records directly"
    logger = structflow.get_logger("contract")
    twins = Twins()
    logger.addHandler(twins)
    try:
        log(logger)
    finally:
        logger.removeHandler(twins)
    (pair,) = twins.pairs
    return pair


def assert_is_stdlibs(log: Callable[[Logger], None]) -> dict[str, Any]:
    """Every attribute stdlib sets, in its order, with its value and type; return them all."""
    record, twin = record_and_twin(log)
    fields = {*record["structflow_fields"], "structflow_fields"}
    ours = {k: v for k, v in record.items() if k not in fields}
    assert list(ours) == list(vars(twin)), "attribute names or their order differ"
    for name in RECORD_ATTRS:
        theirs = getattr(twin, name)
        assert (name, type(ours[name])) == (name, type(theirs))
        assert (name, ours[name]) == (name, theirs)
    return record


@pytest.mark.parametrize("ns", CLOCKS_NS)
def test_times_follow_stdlibs_arithmetic_on_this_python(clock: Any, ns: int) -> None:
    clock(ns)

    assert_is_stdlibs(lambda lg: lg.info("at %d", 1))


def test_relative_created_is_milliseconds_since_logging_was_loaded() -> None:
    """On the real clock (nanoseconds on Python 3.13), close to stdlib's a moment later."""
    record, later = record_and_twin(lambda lg: lg.info("now"))
    relative = record["relativeCreated"]

    assert 0 < relative <= later.relativeCreated < relative + 1000


def test_a_record_with_an_exception_a_stack_and_fields_is_stdlibs(clock: Any) -> None:
    clock(CLOCKS_NS[0])

    def log(lg: Logger) -> None:
        try:
            raise ValueError("boom")
        except ValueError:
            lg.exception("failed %s", "here", stack_info=True, extra={"k": 1}, step=2)

    record = assert_is_stdlibs(log)
    assert (record["k"], record["step"]) == (1, 2)


def test_a_record_from_a_named_thread_is_stdlibs(clock: Any) -> None:
    clock(CLOCKS_NS[0])

    def log(lg: Logger) -> None:
        thread = threading.Thread(target=lambda: lg.warning("from a thread"), name="worker-7")
        thread.start()
        thread.join()

    assert assert_is_stdlibs(log)["threadName"] == "worker-7"


def test_a_record_from_an_asyncio_task_is_stdlibs(clock: Any) -> None:
    clock(CLOCKS_NS[0])

    def log(lg: Logger) -> None:
        async def main() -> None:
            lg.info("in a task")

        async def outer() -> None:
            await asyncio.create_task(main(), name="task-9")

        asyncio.run(outer())

    assert_is_stdlibs(log)
