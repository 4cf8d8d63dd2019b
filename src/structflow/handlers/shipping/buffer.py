"""
Where rendered entries wait for the sender: the :class:`Buffer` protocol and :class:`MemoryBuffer`.

The worker's writer thread pushes entries into one buffer and its sender
thread takes batches from it. Two buffers implement the protocol: the
:class:`MemoryBuffer` here, and the crash-safe on-disk
:class:`~structflow.handlers.shipping.spool.Spool` (``spool_dir``). The
worker holds one and never asks which.

Positions (from :meth:`Buffer.mark`) are what flush barriers wait for: a
position is *resolved* once every entry pushed before it is delivered or
given up.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["ENTRY_OVERHEAD", "Batch", "Buffer", "MemoryBuffer", "compact"]

#: What a rendered entry held in memory costs besides its bytes: the bytes
#: object's header and the buffer's reference to it (CPython, 64-bit).
ENTRY_OVERHEAD = 48

_monotonic = time.monotonic


@dataclass(slots=True)
class Batch:
    """
    Entries taken from a buffer for one delivery.

    ``ref`` is the buffer's own bookkeeping (for the spool: the segment and
    the byte range the entries came from); ``adopted`` counts the entries
    that a process which ended left behind (read from its spool); ``cost``
    is the memory the entries held in the buffer, which the buffer no longer
    counts once they are taken (a batch in flight is bounded by the batch
    limits, not by ``max_queue_bytes``).
    """

    entries: list[bytes]
    nbytes: int
    ref: Any = None
    adopted: int = 0
    cost: int = 0


class Buffer(Protocol):
    """
    What the worker needs from the place entries wait in.

    Memory *cost* is what holding entries in this process takes; methods that
    change it return the change, which the worker counts against
    ``max_queue_bytes`` (a buffer on disk costs nothing there).

    Threads: ``push``, ``prepare``, ``mark``, ``sync`` and ``maintain`` are
    called on the writer thread; ``take``, ``complete`` and ``release`` on the
    sender thread; all of them without the worker's lock, so a buffer may do
    I/O in them. ``drop_oldest``, ``clear``, ``abandoned`` and ``resolved``,
    and reads of the attributes, may happen with the worker's lock held: they
    never wait for the worker (a buffer may call back into the worker, as the
    spool counts its drops, only from the first group).
    """

    @property
    def idle_tick(self) -> float | None:
        """Seconds the idle writer may sleep before calling :meth:`maintain` (None: until woken)."""
        ...

    @property
    def max_entry_bytes(self) -> int | None:
        """Larger entries are dropped as ``too_large`` (None: no limit of its own)."""
        ...

    @property
    def pending(self) -> int:
        """Entries waiting to be taken."""
        ...

    @property
    def pending_bytes(self) -> int:
        """Payload bytes of the entries waiting to be taken."""
        ...

    @property
    def oldest(self) -> float | None:
        """Monotonic time the oldest waiting entry arrived (None: none waits)."""
        ...

    @property
    def urgent(self) -> bool:
        """Whether entries wait that go out at once, not when a batch fills (a dead process's)."""
        ...

    @property
    def fallback(self) -> int:
        """Entries kept in memory because the disk would not take them, so far (a spool's)."""
        ...

    @property
    def skipped(self) -> int:
        """Files found in the buffer's directory that could not be adopted (a spool's)."""
        ...

    def prepare(self, entries: list[bytes]) -> list[bytes]:
        """Return freshly rendered *entries* as this buffer keeps them (per rendered slice)."""
        ...

    def push(self, entries: list[bytes], nbytes: int) -> tuple[int, int]:
        """Append *entries* (*nbytes* of payload); return (entries spooled to disk, cost added)."""
        ...

    def mark(self) -> Any:
        """Return the position just after the last entry pushed."""
        ...

    def resolved(self, position: Any) -> bool:
        """Whether every entry before *position* is delivered or given up."""
        ...

    def take(self, max_records: int, max_bytes: int, overhead: int) -> Batch | None:
        """
        Take the next batch: at least one entry if any waits, even one over *max_bytes*.

        The memory cost the entries held leaves the buffer's count with them
        (``Batch.cost``).
        """
        ...

    def complete(self, batch: Batch) -> int:
        """Forget a delivered (or deliberately dropped) batch; return the cost freed."""
        ...

    def release(self, batch: Batch, undelivered: int) -> tuple[int, int]:
        """
        Give back a batch of which *undelivered* entries were not delivered.

        Returns (entries lost, cost freed): a buffer that cannot keep them
        for a later attempt loses them.
        """
        ...

    def abandoned(self) -> int:
        """How many entries of the batch in flight are lost if its delivery never finishes."""
        ...

    def drop_oldest(self, need: int) -> tuple[int, int]:
        """Drop waiting entries, oldest first, to free *need* of cost; return (entries, cost)."""
        ...

    def clear(self) -> tuple[int, int]:
        """At shutdown: drop what cannot outlive the process; return (entries, cost)."""
        ...

    def has_pending(self) -> bool:
        """Whether any entry waits to be taken."""
        ...

    def sync(self, force: bool = False) -> None:
        """Make what was pushed durable, as far as the buffer's policy asks (*force*: now)."""
        ...

    def maintain(self) -> bool:
        """Housekeeping on the idle writer; return whether entries appeared (wake the sender)."""
        ...

    def close(self) -> int:
        """Release files; return how many undelivered entries stay for the next process."""
        ...

    def after_fork_in_child(self) -> None:
        """Start empty in a forked child, without touching what the parent holds."""
        ...


class MemoryBuffer:
    """
    Rendered entries waiting for the sender, in memory.

    Positions count entries ever pushed; the *head* is the first entry not
    yet resolved (delivered or dropped). Memory is counted as *cost*: each
    entry's length plus :data:`ENTRY_OVERHEAD`, what holding it really takes
    (entries are kept as compact ``bytes``: see :func:`compact`). Every
    operation is a few deque operations under the buffer's own lock.
    """

    __slots__ = (
        "_entries",
        "_inflight",
        "_lock",
        "_pushed",
        "_taken",
        "bytes",
        "head",
        "oldest",
        "pending_bytes",
    )

    idle_tick: float | None = None
    max_entry_bytes: int | None = None
    urgent = False
    fallback = 0
    skipped = 0

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._entries: deque[bytes] = deque()
        self._pushed = 0
        self._taken = 0
        self._inflight = 0  # entries taken and not yet completed
        #: Cost of the waiting entries (a batch taken no longer counts).
        self.bytes = 0
        #: Payload bytes of waiting entries (what batching counts).
        self.pending_bytes = 0
        self.head = 0
        self.oldest: float | None = None

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def pending(self) -> int:
        return len(self._entries)

    def prepare(self, entries: list[bytes]) -> list[bytes]:
        # At once, per rendered slice, so that at most one slice of
        # oversized objects is alive (see compact()).
        return compact(entries)

    def push(self, entries: list[bytes], nbytes: int) -> tuple[int, int]:
        """Append *entries* (*nbytes* of payload); return (0, their cost)."""
        if not entries:
            return 0, 0
        cost = nbytes + ENTRY_OVERHEAD * len(entries)
        with self._lock:
            if not self._entries:
                self.oldest = _monotonic()
            self._entries.extend(entries)
            self._pushed += len(entries)
            self.bytes += cost
            self.pending_bytes += nbytes
        return 0, cost

    def mark(self) -> int:
        return self._pushed

    def resolved(self, position: int) -> bool:
        return self.head >= position

    def take(self, max_records: int, max_bytes: int, overhead: int) -> Batch | None:
        with self._lock:
            return self._take(max_records, max_bytes, overhead)

    def _take(self, max_records: int, max_bytes: int, overhead: int) -> Batch | None:
        entries = self._entries
        if not entries:
            return None
        out: list[bytes] = []
        cost = payload = 0
        pending = self.pending_bytes
        popleft = entries.popleft
        while entries and len(out) < max_records:
            # Move a run of entries at once, as many as the average waiting
            # entry says fit, then hand back any that overshoot the byte limit:
            # a test per entry would cost several times as much.
            left = len(entries)
            average = max(1, pending // left) + overhead
            room = max_bytes - cost
            k = min(left, max_records - len(out), max(1, room // average))
            run = [popleft() for _ in range(k)]
            # sizes[i]: payload of the first i + 1 entries of the run.
            sizes = list(itertools.accumulate(map(len, run)))
            fit = k
            if sizes[-1] + overhead * k > room:
                fit = bisect.bisect_right(
                    range(k), room, key=lambda i: sizes[i] + overhead * (i + 1)
                )
                if fit == 0 and not out:
                    fit = 1  # an entry larger than a batch travels alone
                entries.extendleft(reversed(run[fit:]))
                del run[fit:]
            if fit:
                size = sizes[fit - 1]
                out += run
                cost += size + overhead * fit
                payload += size
                pending -= size
            if fit < k:
                break
        start = self._taken
        self._taken += len(out)
        self._inflight = len(out)
        self.head = start
        self.pending_bytes -= payload
        held = payload + ENTRY_OVERHEAD * len(out)
        self.bytes -= held
        self.oldest = _monotonic() if entries else None
        return Batch(out, cost, start, cost=held)

    def complete(self, batch: Batch) -> int:
        """Forget the batch in flight (its cost left the count when it was taken)."""
        with self._lock:
            self._inflight = 0
            self.head = self._taken
        return 0

    def release(self, batch: Batch, undelivered: int) -> tuple[int, int]:
        """Forget the batch in flight: memory cannot keep its undelivered entries for later."""
        return undelivered, self.complete(batch)

    def abandoned(self) -> int:
        return self._inflight

    def drop_oldest(self, need: int) -> tuple[int, int]:
        """Drop waiting entries, oldest first, until *need* bytes of cost are freed."""
        with self._lock:
            return self._drop_oldest(need)

    def _drop_oldest(self, need: int) -> tuple[int, int]:
        entries = self._entries
        n = freed = payload = 0
        popleft = entries.popleft
        while entries and freed < need:
            size = len(popleft())
            payload += size
            freed += size + ENTRY_OVERHEAD
            n += 1
        self._taken += n
        self.bytes -= freed
        self.pending_bytes -= payload
        if not self._inflight:
            self.head = self._taken
        if not entries:
            self.oldest = None
        return n, freed

    def clear(self) -> tuple[int, int]:
        """Drop everything waiting; return (entries, cost)."""
        with self._lock:
            if not self._entries:
                return 0, 0
            return self._drop_oldest(self.pending_bytes + ENTRY_OVERHEAD * len(self._entries) + 1)

    def has_pending(self) -> bool:
        return bool(self._entries)

    def sync(self, force: bool = False) -> None:
        """Nothing to make durable in memory."""

    def maintain(self) -> bool:
        return False

    def close(self) -> int:
        return 0

    def after_fork_in_child(self) -> None:
        # The parent's entries stay the parent's; its lock may have been held
        # by one of its threads at the fork.
        self._reset()


def compact(entries: list[bytes]) -> list[bytes]:
    """
    Return *entries* as ``bytes`` objects that hold exactly their length.

    A ``bytes`` object can hold more memory than its length: orjson, which
    the JSON formatter renders with, returns a short result inside a 4 KiB
    allocation, and a longer one inside about ten times its length. Entries
    wait in memory as long as a receiver is down and are counted by their
    length, so keeping those objects would let the process grow to ten times
    ``max_queue_bytes`` or more. A copy costs about 0.15 µs per entry, on the
    writer thread.
    """
    return [bytes(memoryview(entry)) for entry in entries]
