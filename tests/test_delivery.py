"""
Delivering a batch: what each outcome of an attempt leads to.

Through a real receiver where the transport matters (status codes, cut
connections), and through :class:`structflow.testing.MockSink` where only
the outcome does.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from receivers import (
    FAST,
    NO_DROPS,
    Cut,
    Diagnostics,
    HTTPReceiver,
    Respond,
    attach,
    closing_fixture,  # noqa: F401 - pytest finds it as 'closing'
    diagnostics_fixture,  # noqa: F401 - pytest finds it as 'diagnostics'
    receiver_fixture,  # noqa: F401 - pytest finds it as 'receiver'
)
from structflow.handlers import HTTPHandler, Outcome, ShippingHandler
from structflow.testing import MockSink

pytestmark = pytest.mark.timeout(60)


def seqs(receiver: HTTPReceiver) -> list[int]:
    return [line["seq"] for line in receiver.lines()]


def ship(handler: logging.Handler, n: int) -> None:
    logger = attach(handler)
    for i in range(n):
        logger.info("r %d", i, extra={"seq": i})


def attempted(sink: MockSink) -> list[list[int]]:
    """The seq of each entry of each attempt."""
    return [[json.loads(entry)["seq"] for entry in attempt] for attempt in sink.attempts]


def mock_handler(sink: MockSink, closing: list[logging.Handler], **options: Any) -> ShippingHandler:
    """A handler that sends one batch when flushed (unless told otherwise), retrying at once."""
    handler = ShippingHandler(sink, **{"flush_interval": 30.0, **FAST, **options})
    closing.append(handler)
    return handler


def test_503_then_cut_connections_then_recovery_loses_nothing(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    receiver.script(Respond(503), Respond(503), Cut(), Cut(), Respond(502), Cut())
    handler = HTTPHandler(
        receiver.url, batch_max_records=200, retry_backoff=0.01, retry_max_backoff=0.05
    )
    closing.append(handler)
    logger = attach(handler)

    for i in range(3000):
        logger.info("record %d", i, extra={"seq": i})

    assert handler.flush(timeout=30) is True
    assert list(range(3000)) == seqs(receiver)
    assert receiver.statuses()[:6] == [503, 503, "cut", "cut", 502, "cut"]
    stats = handler.stats()
    assert stats["retried"] > 0
    assert (stats["delivered"], stats["dropped"]) == (3000, NO_DROPS)


def test_max_retries_gives_up_with_a_counted_drop(
    receiver: HTTPReceiver, closing: list[logging.Handler], diagnostics: Diagnostics
) -> None:
    receiver.default = Respond(503)
    handler = HTTPHandler(receiver.url, max_retries=2, retry_backoff=0.01)
    closing.append(handler)
    attach(handler).info("r")

    assert handler.flush(timeout=10) is True
    assert len(receiver.attempts) == 3
    assert handler.stats()["dropped"]["retries_exhausted"] == 1
    assert any("gave up on 1 record(s) after 2 retries" in m for m in diagnostics.messages())


def test_a_batch_refused_as_too_large_is_sent_in_halves(closing: list[logging.Handler]) -> None:
    sink = MockSink(["split"])
    handler = mock_handler(sink, closing)
    ship(handler, 4)

    assert handler.flush(timeout=10) is True
    assert attempted(sink) == [[0, 1, 2, 3], [0, 1], [2, 3]]
    assert (handler.stats()["delivered"], handler.stats()["dropped"]) == (4, NO_DROPS)


def test_a_single_record_refused_as_too_large_is_dropped_and_counted(
    closing: list[logging.Handler],
) -> None:
    sink = MockSink("split")
    handler = mock_handler(sink, closing)
    ship(handler, 1)

    assert handler.flush(timeout=10) is True
    assert handler.stats()["dropped"] == {**NO_DROPS, "too_large": 1}
    assert sink.delivered == []


def test_a_rejected_batch_is_dropped_counted_and_reported_once(
    closing: list[logging.Handler], diagnostics: Diagnostics
) -> None:
    sink = MockSink(["reject"])
    handler = mock_handler(sink, closing)
    ship(handler, 3)

    assert handler.flush(timeout=10) is True
    assert attempted(sink) == [[0, 1, 2]]
    assert handler.stats()["dropped"] == {**NO_DROPS, "rejected": 3}
    assert [m for m in diagnostics.messages() if "rejected" in m] == [
        "ShippingHandler(MockSink (ndjson)): the receiver rejected 3 record(s) "
        "(MockSink answered 'reject'); dropped"
    ]


def test_a_partial_answer_counts_what_arrived_drops_the_refused_and_retries_the_rest(
    closing: list[logging.Handler],
) -> None:
    sink = MockSink([Outcome("partial", "1 refused", retry=(1, 3), rejected=1), "ok"])
    handler = mock_handler(sink, closing)
    ship(handler, 4)

    assert handler.flush(timeout=10) is True
    assert attempted(sink) == [[0, 1, 2, 3], [1, 3]]
    stats = handler.stats()
    assert (stats["delivered"], stats["retried"], stats["dropped"]) == (
        3,
        2,
        {**NO_DROPS, "rejected": 1},
    )
    # Which of 0 and 2 was refused is not said: one of them is counted.
    first, again = sink.attempts
    assert stats["delivered_bytes"] == (len(first[0]) + len(first[2])) // 2 + sum(map(len, again))


def test_the_bytes_of_a_partial_answer_are_those_of_the_entries_delivered(
    closing: list[logging.Handler],
) -> None:
    sink = MockSink([Outcome("partial", "2 refused", rejected=2, rejected_at=(0, 3))])
    handler = mock_handler(sink, closing)
    logger = attach(handler)
    for message in ("a", "bb" * 100, "ccc" * 1000, "d"):
        logger.info(message)

    assert handler.flush(timeout=10) is True
    (entries,) = sink.attempts
    stats = handler.stats()
    assert (stats["delivered"], stats["dropped"]["rejected"]) == (2, 2)
    assert stats["delivered_bytes"] == len(entries[1]) + len(entries[2])


def test_an_error_raised_by_the_sink_is_retried_like_a_failed_attempt(
    closing: list[logging.Handler],
) -> None:
    answers: list[str] = []

    def answer(batch: list[bytes]) -> str:
        answers.append("raise" if not answers else "ok")
        if answers[-1] == "raise":
            raise ConnectionError("connection refused")
        return "ok"

    sink = MockSink(answer)
    handler = mock_handler(sink, closing)
    ship(handler, 2)

    assert handler.flush(timeout=10) is True
    assert attempted(sink) == [[0, 1], [0, 1]]
    stats = handler.stats()
    assert (stats["delivered"], stats["retried"], stats["dropped"]) == (2, 2, NO_DROPS)
