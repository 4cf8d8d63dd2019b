"""
The spool's fallback when the disk refuses a write: a :class:`MemorySegment`.

When the disk is full, or failing, the :class:`~.spool.Spool` keeps the
entries it would not take in memory instead, in their place in the spool's
order (behind what is on disk, ahead of what is written once the disk takes
writes again). They count against ``max_queue_bytes`` like any record in
memory, are the first given up when the queue is full, and do not outlive
the process.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from structflow.handlers.shipping.buffer import ENTRY_OVERHEAD, Batch

__all__ = ["MemorySegment"]


class MemorySegment:
    """
    Entries the disk would not take, kept in memory at their place in the spool's order.

    Positions in it count entries: ``end`` entries were appended, the first
    ``read_off`` were taken (or dropped), the first ``ack_off`` are resolved.
    """

    __slots__ = ("ack_off", "end", "entries", "inflight", "name", "rank", "read_off")

    in_memory = True
    adopted = False
    evicted = False

    def __init__(self, rank: int) -> None:
        self.rank = rank
        self.name = f"(memory {rank})"
        self.entries: deque[bytes] = deque()  # not yet taken
        self.end = 0
        self.read_off = 0
        self.ack_off = 0
        self.inflight = 0  # entries of the batch in flight

    def append(self, entries: Sequence[bytes]) -> int:
        """Keep *entries* after those already waiting; return their payload bytes."""
        self.entries.extend(entries)
        self.end += len(entries)
        return sum(map(len, entries))

    def take(self, max_records: int, max_bytes: int, overhead: int) -> tuple[Batch, int]:
        """
        Take the next entries for one batch (at least one, however large).

        Returns:
            The batch, and the payload bytes of its entries.
        """
        entries: list[bytes] = []
        nbytes = payload = 0
        waiting = self.entries
        while waiting and len(entries) < max_records:
            size = len(waiting[0]) + overhead
            if entries and nbytes + size > max_bytes:
                break
            entry = waiting.popleft()
            entries.append(entry)
            nbytes += size
            payload += len(entry)
        start = self.read_off
        self.read_off += len(entries)
        self.ack_off = start
        self.inflight = len(entries)
        cost = payload + ENTRY_OVERHEAD * len(entries)
        ref = (self, start, self.read_off, len(entries), None)
        return Batch(entries, nbytes, ref, cost=cost), payload

    def drop(self, need: int) -> tuple[int, int, int]:
        """
        Drop waiting entries, oldest first, until *need* bytes of memory are freed.

        Returns:
            How many entries were dropped, the memory they held and their payload bytes.
        """
        dropped = freed = payload = 0
        waiting = self.entries
        while waiting and freed < need:
            size = len(waiting.popleft())
            payload += size
            freed += size + ENTRY_OVERHEAD
            dropped += 1
        self.read_off += dropped
        return dropped, freed, payload

    def resolve(self) -> None:
        """With no batch in flight, every entry taken or dropped is resolved."""
        if not self.inflight:
            self.ack_off = self.read_off
