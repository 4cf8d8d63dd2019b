"""
The buffers entries wait in: the same interface in memory and on disk.

Each behaviour of the :class:`Buffer` protocol is checked on both the
:class:`MemoryBuffer` and the :class:`Spool`; where they differ on purpose
(what costs memory, what outlives the process), the test says what each does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from structflow.handlers.shipping.buffer import ENTRY_OVERHEAD, Buffer, MemoryBuffer
from structflow.handlers.shipping.spool import Spool

ENTRIES = [b"entry-%d" % i for i in range(10)]  # 7 bytes each


@pytest.fixture(params=["memory", "spool"])
def buffer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Buffer]:
    if request.param == "memory":
        yield MemoryBuffer()
        return
    drops: list[tuple[str, int]] = []

    def count_drop(reason: str, n: int) -> None:
        drops.append((reason, n))

    def report(*args: Any) -> None:
        pass

    spool = Spool(str(tmp_path / "spool"), "test", 1 << 20, "never", 1.0, report, count_drop)
    yield spool
    spool.close()
    assert drops == []


def taken(buffer: Buffer, max_records: int = 100) -> list[list[bytes]]:
    """Take and complete batches of at most *max_records* until the buffer is empty."""
    out = []
    while (batch := buffer.take(max_records, 1 << 20, 1)) is not None:
        out.append(batch.entries)
        buffer.complete(batch)
    return out


def test_entries_come_out_in_order_in_batches_of_the_limit(buffer: Buffer) -> None:
    buffer.push(ENTRIES, 70)
    assert taken(buffer, max_records=4) == [ENTRIES[:4], ENTRIES[4:8], ENTRIES[8:]]
    assert (buffer.pending, buffer.pending_bytes, buffer.has_pending()) == (0, 0, False)


def test_a_position_resolves_once_every_entry_before_it_is_completed(buffer: Buffer) -> None:
    buffer.push(ENTRIES[:3], 21)
    position = buffer.mark()
    buffer.push(ENTRIES[3:], 49)
    first = buffer.take(3, 1 << 20, 1)
    assert first is not None
    assert (first.entries, buffer.resolved(position)) == (ENTRIES[:3], False)
    buffer.complete(first)
    assert (buffer.resolved(position), buffer.resolved(buffer.mark())) == (True, False)


def test_push_says_what_went_to_disk_and_what_stays_in_memory(buffer: Buffer) -> None:
    in_memory = (0, 70 + ENTRY_OVERHEAD * 10)  # (spooled, cost in memory)
    on_disk = (10, 0)
    assert buffer.push(ENTRIES, 70) == (in_memory if isinstance(buffer, MemoryBuffer) else on_disk)


def test_a_released_batch_is_lost_in_memory_and_sent_again_from_the_spool(
    buffer: Buffer,
) -> None:
    buffer.push(ENTRIES[:2], 14)
    batch = buffer.take(10, 1 << 20, 1)
    assert batch is not None
    lost, _freed = buffer.release(batch, 2)
    again = taken(buffer)
    if isinstance(buffer, MemoryBuffer):
        assert (lost, again) == (2, [])
    else:
        assert (lost, again) == (0, [ENTRIES[:2]])


def test_drop_oldest_frees_waiting_entries_and_never_the_batch_in_flight() -> None:
    buffer = MemoryBuffer()
    buffer.push(ENTRIES[:5], 35)
    batch = buffer.take(2, 1 << 20, 1)
    assert batch is not None
    dropped, freed = buffer.drop_oldest(1 << 20)
    assert (dropped, freed, buffer.abandoned()) == (3, 21 + 3 * ENTRY_OVERHEAD, 2)
    buffer.complete(batch)
    assert (buffer.bytes, buffer.abandoned(), buffer.has_pending()) == (0, 0, False)


def test_a_batch_taken_leaves_the_memory_count_with_its_cost() -> None:
    """A batch in flight is bounded by the batch limits, no longer by the queue's."""
    buffer = MemoryBuffer()
    buffer.push(ENTRIES[:5], 35)
    batch = buffer.take(2, 1 << 20, 1)
    assert batch is not None
    assert (batch.cost, buffer.bytes) == (14 + 2 * ENTRY_OVERHEAD, 21 + 3 * ENTRY_OVERHEAD)
    assert buffer.complete(batch) == 0


def test_what_is_spooled_is_never_dropped_for_memory_nor_at_close(tmp_path: Path) -> None:
    def ignore(*args: Any) -> None:
        pass

    spool = Spool(str(tmp_path), "test", 1 << 20, "never", 1.0, ignore, ignore)
    spool.push(ENTRIES, 70)
    assert (spool.drop_oldest(1 << 20), spool.clear()) == ((0, 0), (0, 0))
    assert spool.close() == 10


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
