"""The in-memory buffer cuts batches exactly as the record and byte limits say."""

from __future__ import annotations

import logging

from hypothesis import given, settings
from hypothesis import strategies as st

from receivers import HTTPReceiver, attach, closing_fixture, receiver_fixture
from structflow.handlers import HTTPHandler
from structflow.handlers.shipping.buffer import MemoryBuffer
from structflow.loggers import LogRecord

__all__ = ["closing_fixture", "receiver_fixture"]  # pytest finds them by name


def reference_batches(
    sizes: list[int], max_records: int, max_bytes: int, overhead: int
) -> list[list[int]]:
    """Entry by entry: add while both limits hold; an oversized entry travels alone."""
    batches: list[list[int]] = []
    i = 0
    while i < len(sizes):
        batch: list[int] = []
        cost = 0
        while i < len(sizes) and len(batch) < max_records:
            entry = sizes[i] + overhead
            if batch and cost + entry > max_bytes:
                break
            batch.append(sizes[i])
            cost += entry
            i += 1
            if cost > max_bytes:
                break
        batches.append(batch)
    return batches


@settings(max_examples=300, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=300),
    max_records=st.integers(min_value=1, max_value=50),
    max_bytes=st.integers(min_value=1, max_value=3000),
    overhead=st.sampled_from([0, 1, 48]),
)
def test_take_matches_the_entry_by_entry_rule(
    sizes: list[int], max_records: int, max_bytes: int, overhead: int
) -> None:
    buffer = MemoryBuffer()
    entries = [bytes(n) for n in sizes]
    buffer.push(entries, sum(sizes))
    got: list[list[int]] = []
    while (batch := buffer.take(max_records, max_bytes, overhead)) is not None:
        got.append([len(e) for e in batch.entries])
        buffer.complete(batch)
    assert got == reference_batches(sizes, max_records, max_bytes, overhead)
    assert buffer.pending_bytes == 0


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
