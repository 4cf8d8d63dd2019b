"""
A crash-safe on-disk spool: the :class:`~.buffer.Buffer` used with ``spool_dir``.

Rendered entries are appended to *segments* in the spool directory before they
count as accepted, read back by the sender, and deleted only after the
receiver confirmed them. A process that dies leaves its segments behind; the
next worker with the same directory *adopts* them and delivers them first.
The files and their format are described in
:mod:`~structflow.handlers.shipping.segments`; reading them back, and
counting what damage lost, in :mod:`~structflow.handlers.shipping.reading`.

Which owners are dead, and what of theirs can be adopted, is
:mod:`~structflow.handlers.shipping.adoption`'s part, as are the lock files
this process holds; a file that cannot be adopted is skipped, reported once
and counted (``stats()["spool_skipped"]``).

When the disk refuses a write (full, or failing), the entries are kept in
memory instead, in order, behind what is on disk (a
:class:`~structflow.handlers.shipping.fallback.MemorySegment`, counted in
``stats()["spool_fallback"]``), and the disk is tried again
after a second, or as soon as a delivered segment freed space. A segment is
deleted once delivered, including the one being written, so the space comes
back while the process keeps logging.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Sequence

from structflow.handlers.shipping.adoption import Adopted, Adopter
from structflow.handlers.shipping.buffer import ENTRY_OVERHEAD, Batch
from structflow.handlers.shipping.fallback import MemorySegment
from structflow.handlers.shipping.reading import CountDrop, Reader, Report
from structflow.handlers.shipping.segments import (
    HEADER_SIZE,
    REC,
    Segment,
    fdatasync,
    identity_digest,
    unlink,
)

__all__ = ["Spool"]

_REC_SIZE = REC.size
#: Seconds between looks for spools left by dead processes.
ADOPT_INTERVAL = 10.0
#: How long the idle writer sleeps between fsync interval checks.
IDLE_TICK = 0.25
#: After the disk refused a write, seconds before it is tried again (sooner
#: when a delivered segment is deleted).
DISK_RETRY = 1.0
#: The segment being written is deleted once delivered when it is at least this large.
RECYCLE_BYTES = 1024 * 1024
#: Segments roll at ``segment_bytes``, or sooner on a disk with little room, but not below this.
MIN_SEGMENT_BYTES = 64 * 1024

AnySegment = Segment | MemorySegment


class Spool:
    """
    The on-disk buffer between the worker's writer and sender threads.

    All methods are thread-safe; disk I/O happens under the spool's own lock,
    never under the worker's, so a slow disk never stalls a log call. What is
    spooled costs no memory: ``drop_oldest`` and ``clear`` drop only what the
    disk would not take and waits in memory (the disk cap evicts instead),
    and what is on disk and not delivered at shutdown stays.

    Args:
        directory: the spool directory (created if missing).
        identity: what the entries are encoded for, e.g. ``"http ndjson"``.
        max_bytes: disk cap; the oldest segments are evicted beyond it.
        fsync: ``"always"`` (after every write), ``"interval"`` (at most every
            *fsync_interval* seconds, and on flush and close) or ``"never"``.
        fsync_interval: seconds between syncs under ``"interval"``.
        report: ``report(kind, level, message, *args)``, rate-limited
            diagnostics.
        count_drop: ``count_drop(reason, n)`` for records the spool gives up.
    """

    def __init__(
        self,
        directory: str,
        identity: str,
        max_bytes: int,
        fsync: str,
        fsync_interval: float,
        report: Report,
        count_drop: CountDrop,
    ) -> None:
        self.directory = os.path.abspath(directory)
        self.identity = identity
        self._digest = identity_digest(identity)
        self.max_bytes = max_bytes
        # Small enough that eviction frees space in steps, large enough that
        # a busy process does not create thousands of files.
        self.segment_bytes = max(256 * 1024, min(64 * 1024 * 1024, max_bytes // 8))
        self.recycle_bytes = min(RECYCLE_BYTES, self.segment_bytes // 2)
        self.fsync = fsync
        self.fsync_interval = fsync_interval
        self._report = report
        self._count_drop = count_drop
        self._lock = threading.Lock()
        self._adopter = Adopter(self.directory, identity, fsync, report)
        #: How many entries the disk would not take and that waited in memory.
        self.fallback = 0
        self._reset_state()
        os.makedirs(self.directory, exist_ok=True)
        #: The worker may make entries up to a quarter of the cap.
        self.max_entry_bytes = max_bytes // 4

    #: Seconds the idle writer sleeps before the next :meth:`maintain`.
    idle_tick = IDLE_TICK

    @property
    def urgent(self) -> bool:
        """Whether adopted records wait: they go out at once, not when a batch fills."""
        return self.adopted_pending

    def _reset_state(self) -> None:
        self._segments: list[AnySegment] = []
        self._write: AnySegment | None = None
        self._next_number = 0
        self._next_rank = 0
        #: Number of the next record this process writes (its owner's sequence).
        self._seq = 0
        self._reader = Reader(self._report, self._count_drop)
        self.total_bytes = 0
        #: Records written but not yet taken by the sender (own segments and memory).
        self.pending = 0
        #: Bytes of those records.
        self.pending_bytes = 0
        #: Whether adopted segments may hold records not yet taken.
        self.adopted_pending = False
        #: ``(rank, offset)`` of the first entry not delivered; None: nothing is.
        self.head: tuple[int, int] | None = None
        self._dirty = False
        self._last_sync = time.monotonic()
        #: Monotonic time the oldest pending record was written, for batching.
        self.oldest: float | None = None
        self._closed = False
        self._next_adopt = 0.0
        #: While the disk refuses writes: when to try it again (None: it takes them).
        self._disk_retry: float | None = None

    # --- adoption ------------------------------------------------------------

    def adopt(self) -> int:
        """
        Take over the segments of dead owners with the same identity.

        Returns:
            The number of segments adopted. Their records are delivered
            before any record this process spools afterwards.
        """
        with self._lock:
            if self._closed:
                return 0
            try:
                found = self._adopter.find(self._adopter.held())
            except OSError as exc:
                self._report(
                    "spool_io", "warning", "cannot list spool_dir %s: %s", self.directory, exc
                )
                return 0
            return sum(self._take_over(adopted) for adopted in found)

    def _take_over(self, adopted: Adopted) -> int:
        segments = adopted.segments
        # Entries spooled later by this process go to a new segment, after
        # the adopted ones, so positions keep their order.
        self._roll()
        for seg in segments:
            seg.rank = self._next_rank
            self._next_rank += 1
            self._segments.append(seg)
            self.total_bytes += seg.end
        self._adopter.took_over(adopted)
        self.adopted_pending = True
        if self.oldest is None:
            self.oldest = time.monotonic()
        self._update_head()
        self._report(
            "spool_adopt",
            "info",
            "adopted %d spool segment(s) (%d bytes) left by a process that ended (owner %s)",
            len(segments),
            sum(seg.end - seg.ack_off for seg in segments),
            adopted.owner,
        )
        return len(segments)

    @property
    def skipped(self) -> int:
        """Files in the directory that could not be adopted."""
        return self._adopter.skipped

    # --- writing ------------------------------------------------------------

    def _new_segment(self) -> Segment:
        owner = self._adopter.own()
        name = f"{owner}-{self._next_number:08d}.seg"
        self._next_number += 1
        seg = Segment.create(
            self.directory, name, owner, self._next_rank, self._digest, self.fsync == "always"
        )
        self._next_rank += 1
        seg.limit = self._segment_limit()
        seg.expect = self._seq
        self._segments.append(seg)
        self._adopter.segment_added(owner)
        self.total_bytes += HEADER_SIZE
        self._write = seg
        return seg

    def _segment_limit(self) -> int:
        """
        Size at which the next segment rolls: smaller on a nearly full disk.

        A segment's space comes back only when all of it is delivered; on a
        disk with little room, small segments let delivered records free it
        while the process keeps writing.
        """
        try:
            st = os.statvfs(self.directory)
        except OSError:
            return self.segment_bytes
        free = st.f_bavail * st.f_frsize
        return max(MIN_SEGMENT_BYTES, min(self.segment_bytes, free // 8))

    def _roll(self) -> None:
        """Stop writing to the current segment: seal it, or delete it if delivered."""
        seg = self._write
        if seg is None:
            return
        self._write = None
        if isinstance(seg, MemorySegment):
            if seg.ack_off >= seg.end:
                self._delete(seg)
            return
        delivered = seg.ack_off >= seg.end and seg.read_off >= seg.end
        if seg.fd is not None:
            if not delivered and seg.seal(self._seq):
                self.total_bytes += _REC_SIZE
            if self.fsync != "never" and self._dirty:
                with contextlib.suppress(OSError):
                    fdatasync(seg.fd)
            os.close(seg.fd)
            seg.fd = None
        if delivered:
            self._delete(seg)

    def prepare(self, entries: list[bytes]) -> list[bytes]:
        """Entries go to disk as they are (no copy is kept in memory)."""
        return entries

    def push(self, entries: Sequence[bytes], nbytes: int = 0) -> tuple[int, int]:
        """
        Append *entries* to the spool.

        They are written in slices of at most one segment, making room under
        the disk cap before each, so the spool never holds more than
        ``max_bytes`` however many entries come at once. Entries the disk
        will not take (it is full, or failing) wait in memory instead, in
        their place in the order, and are reported.

        Returns:
            How many were written to disk, and the memory taken by those
            kept in memory.
        """
        if not entries:
            return 0, 0
        with self._lock:
            if self._closed:
                self._count_drop("shutdown", len(entries))
                return 0, 0
            written = cost = 0
            limit = self.segment_bytes
            start = size = 0
            for i, entry in enumerate(entries):
                size += _REC_SIZE + len(entry)
                if size >= limit:
                    written, cost = self._place(entries[start : i + 1], size, written, cost)
                    start, size = i + 1, 0
            if start < len(entries):
                written, cost = self._place(entries[start:], size, written, cost)
            self._update_head()
            return written, cost

    def _place(
        self, entries: Sequence[bytes], size: int, written: int, cost: int
    ) -> tuple[int, int]:
        """Write one slice to disk, or keep it in memory; add to (*written*, *cost*)."""
        if self._disk_usable() and self._write_slice(entries, size):
            return written + len(entries), cost
        return written, cost + self._keep_in_memory(entries)

    def _disk_usable(self) -> bool:
        retry = self._disk_retry
        if retry is None:
            return True
        if time.monotonic() < retry:
            return False
        self._disk_retry = None
        return True

    def _write_slice(self, entries: Sequence[bytes], size: int) -> bool:
        """Write entries as framed records in one append; False when the disk refused them."""
        seg: Segment | None = None
        try:
            self._make_room(size)
            current = self._write
            if isinstance(current, MemorySegment):
                self._roll()  # what waits in memory goes first
                current = None
            seg = current or self._new_segment()
            seg.append(self._seq, entries)
        except OSError as exc:
            self._disk_refused(exc, seg)
            return False
        count = len(entries)
        self._seq += count
        self.total_bytes += size
        self._added(count, size - _REC_SIZE * count)
        self._dirty = True
        if self.fsync == "always":
            assert seg.fd is not None
            fdatasync(seg.fd)
            self._dirty = False
        elif self.fsync == "interval":
            self._maybe_sync_locked()
        if seg.end >= seg.limit:
            self._roll()
        return True

    def _added(self, count: int, payload: int) -> None:
        """*count* entries of *payload* bytes now wait to be taken."""
        if self.pending == 0 and not self.adopted_pending:
            self.oldest = time.monotonic()
        self.pending += count
        self.pending_bytes += payload

    def _disk_refused(self, exc: OSError, seg: Segment | None) -> None:
        """The disk refused a write: stop writing to *seg*, keep entries in memory a while."""
        if seg is not None and seg is self._write:
            self._roll()  # deleted if nothing is in it
        self._disk_retry = time.monotonic() + DISK_RETRY
        self._report(
            "spool_io",
            "error",
            "cannot write to spool_dir %s (%s); records wait in memory until the disk takes "
            "them again (counted in stats()['spool_fallback'], bounded by max_queue_bytes)",
            self.directory,
            exc,
        )

    def _keep_in_memory(self, entries: Sequence[bytes]) -> int:
        """Append *entries* to the memory segment at the end of the spool; return their cost."""
        seg = self._write
        if not isinstance(seg, MemorySegment):
            self._roll()
            seg = MemorySegment(self._next_rank)
            self._next_rank += 1
            self._segments.append(seg)
            self._write = seg
        payload = seg.append(entries)
        self._added(len(entries), payload)
        self.fallback += len(entries)
        return payload + ENTRY_OVERHEAD * len(entries)

    def _make_room(self, incoming: int) -> None:
        """Evict the oldest segments on disk until *incoming* bytes fit under the cap."""
        while self.total_bytes + incoming > self.max_bytes:
            oldest = next((s for s in self._segments if isinstance(s, Segment)), None)
            if oldest is None:
                return
            if oldest is self._write:
                if oldest.end <= HEADER_SIZE:
                    return  # an empty segment: nothing to evict
                self._roll()
                if oldest not in self._segments:
                    continue  # rolling deleted it (already delivered)
            self._evict(oldest)

    def _evict(self, seg: Segment) -> None:
        lost = self._count_unread(seg)
        seg.evicted = True
        self._delete(seg)
        if lost:
            self._count_drop("spool_full", lost)
            self._report(
                "spool_full",
                "warning",
                "spool_dir %s reached spool_max_bytes=%d; evicted the oldest segment "
                "with %d undelivered record(s)",
                self.directory,
                self.max_bytes,
                lost,
            )

    def _count_unread(self, seg: Segment) -> int:
        """Records in *seg* not yet taken by the sender."""
        if not seg.adopted:
            n = seg.written - seg.read_count
            self.pending -= n
            if n:
                self.pending_bytes -= max(0, seg.end - seg.read_off - _REC_SIZE * n)
            return n
        return seg.count(seg.read_off)

    def _maybe_sync_locked(self) -> None:
        now = time.monotonic()
        if self._dirty and now - self._last_sync >= self.fsync_interval:
            seg = self._write
            if isinstance(seg, Segment) and seg.fd is not None:
                fdatasync(seg.fd)
            self._dirty = False
            self._last_sync = now

    def sync(self, force: bool = False) -> None:
        """
        Make what was written durable, as the fsync policy allows.

        Under ``"interval"`` this syncs when the interval has passed, or at
        once with *force* (flush and close use it); ``"never"`` never syncs.
        """
        if self.fsync == "never":
            return
        with self._lock:
            if force:
                self._last_sync = 0.0
            self._maybe_sync_locked()

    # --- reading ------------------------------------------------------------

    def take(self, max_records: int, max_bytes: int, overhead: int) -> Batch | None:
        """
        Take the next entries to deliver, from the oldest segment.

        A batch never spans two segments. At least one entry is taken when
        any is pending, even one larger than *max_bytes*. Each entry costs its
        length plus *overhead* against *max_bytes*. Records lost to damage
        on the way are counted (``spool_corrupt``) and reported.
        """
        with self._lock:
            while self._segments:
                seg = self._segments[0]
                if seg.read_off < seg.end:
                    break
                if seg is self._write or seg.ack_off < seg.read_off:
                    return None  # caught up with the writer, or a batch is in flight
                self._delete(seg)
            else:
                self.adopted_pending = False
                return None
            batch: Batch | None
            if isinstance(seg, MemorySegment):
                batch, payload = seg.take(max_records, max_bytes, overhead)
                self.pending -= len(batch.entries)
                self.pending_bytes -= payload
            else:
                read = seg.read_count
                batch = self._reader.take(seg, max_records, max_bytes, overhead, self._segments)
                if not seg.adopted:
                    # Records read past (delivered or lost to damage) wait no more.
                    self.pending -= seg.read_count - read
                    if batch is not None:
                        self.pending_bytes -= batch.nbytes - overhead * len(batch.entries)
            self.adopted_pending = self._adopted_unread()
            if self.pending <= 0:
                self.pending = 0
                self.pending_bytes = 0
                if not self.adopted_pending:
                    self.oldest = None
            self._update_head()
            return batch

    def _adopted_unread(self) -> bool:
        return any(s.adopted and s.read_off < s.end for s in self._segments)

    def complete(self, batch: Batch) -> int:
        """Forget a delivered (or deliberately dropped) batch: it is never sent again."""
        seg, _start, end, n, _expect = batch.ref
        with self._lock:
            if isinstance(seg, MemorySegment):
                seg.inflight = 0
                self._resolve_memory(seg)
            elif not (seg.evicted or self._closed):
                self._complete_disk(seg, end, n)
            self._update_head()
            return 0

    def _complete_disk(self, seg: Segment, end: int, n: int) -> None:
        seg.ack_off = end
        seg.acked += n
        if seg.ack_off >= seg.end and (
            seg is not self._write or seg.end >= self.recycle_bytes or self._disk_retry is not None
        ):
            # Delivered: its space comes back now, even while it is being
            # written (the next entries start a new segment).
            if seg is self._write:
                self._roll()
            else:
                self._delete(seg)
            return
        try:
            seg.write_ack(end)
        except OSError as exc:
            # Only costs duplicates after a crash, so it is reported, not fatal.
            self._report("spool_io", "warning", "cannot record delivery progress: %s", exc)

    def _resolve_memory(self, seg: MemorySegment) -> None:
        seg.resolve()
        if seg is not self._write and seg.ack_off >= seg.end:
            self._delete(seg)

    def release(self, batch: Batch, undelivered: int) -> tuple[int, int]:
        """
        Give back a batch not (wholly) delivered: it stays in the spool, to be sent again.

        Records whose segment was evicted meanwhile are counted as
        ``spool_full`` here, so none is lost to the caller's count. Entries
        that waited in memory cannot be kept for later: they are lost.
        """
        seg, start, _end, n, expect = batch.ref
        with self._lock:
            if isinstance(seg, MemorySegment):
                seg.inflight = 0
                self._resolve_memory(seg)
                self._update_head()
                return undelivered, 0
            if seg.evicted:
                self._count_drop("spool_full", n)
                return 0, 0
            seg.read_off = start
            seg.read_count -= n
            seg.expect = expect
            return 0, 0

    def abandoned(self) -> int:
        """Entries of a batch from memory in flight; a batch from disk is still on disk."""
        return sum(s.inflight for s in self._segments if isinstance(s, MemorySegment))

    def drop_oldest(self, need: int) -> tuple[int, int]:
        """
        Drop entries waiting in memory (the disk refused them), oldest first, to free *need*.

        Called with the worker's lock held, by a log call too: it never waits
        for the spool's lock, which disk I/O may hold. When that lock is
        busy nothing is dropped now (the worker drops from its intake).
        """
        if not self._lock.acquire(blocking=False):
            return 0, 0
        try:
            return self._drop_memory(need)
        finally:
            self._lock.release()

    def _drop_memory(self, need: int) -> tuple[int, int]:
        dropped = freed = 0
        for seg in list(self._segments):
            if not isinstance(seg, MemorySegment):
                continue
            n, cost, payload = seg.drop(need - freed)
            dropped += n
            freed += cost
            self.pending -= n
            self.pending_bytes -= payload
            self._resolve_memory(seg)
            if freed >= need:
                break
        if dropped:
            self._update_head()
        return dropped, freed

    def clear(self) -> tuple[int, int]:
        """At shutdown: drop what waits in memory; what is on disk stays for the next process."""
        with self._lock:
            return self._drop_memory(1 << 62)

    def _delete(self, seg: AnySegment) -> None:
        if seg in self._segments:
            self._segments.remove(seg)
        if seg is self._write:
            self._write = None
        if isinstance(seg, MemorySegment):
            self._update_head()
            return
        seg.close_files()
        unlink(seg.path)
        unlink(seg.path + ".ack")
        self.total_bytes -= seg.size
        if self._disk_retry is not None:
            self._disk_retry = 0.0  # space was freed: try the disk again now
        if self._adopter.segment_gone(seg.owner):
            self._reader.forget(seg.owner)
        self._update_head()

    def _update_head(self) -> None:
        for seg in self._segments:
            if seg.ack_off < seg.end or seg is self._write:
                self.head = (seg.rank, seg.ack_off)
                return
        self.head = None

    def mark(self) -> tuple[int, int]:
        """Return the position just after the last entry written so far."""
        with self._lock:
            if self._segments:
                last = self._segments[-1]
                return (last.rank, last.end)
            return (-1, 0)

    def resolved(self, position: tuple[int, int]) -> bool:
        """Whether every entry before *position* is delivered or given up."""
        head = self.head
        return head is None or head >= position

    def has_pending(self) -> bool:
        """Whether any entry waits to be taken."""
        return self.pending > 0 or self.adopted_pending

    def _undelivered_locked(self) -> int:
        """Records on disk not yet delivered (exact for own segments)."""
        n = 0
        for seg in self._segments:
            if isinstance(seg, MemorySegment):
                continue
            if seg.adopted:
                n += seg.count(seg.ack_off)
            else:
                n += seg.written - seg.acked
        return n

    # --- lifecycle ----------------------------------------------------------

    def maintain(self) -> bool:
        """Adopt what ended processes left, every ``ADOPT_INTERVAL`` s; return whether any was."""
        if time.monotonic() < self._next_adopt:
            return False
        try:
            adopted = self.adopt() > 0
        except Exception as exc:
            self._report("spool_io", "error", "cannot adopt spooled records: %r", exc)
            adopted = False
        self._next_adopt = time.monotonic() + ADOPT_INTERVAL
        return adopted

    def close(self) -> int:
        """
        Sync and close every file; keep undelivered segments for the next process.

        The lock file stays (unlocked) while segments remain, which is how
        the next worker knows they are to be adopted; with nothing left it
        is removed. Entries still in memory were dropped by :meth:`clear`.

        Returns:
            How many undelivered records stay in the spool.
        """
        self.sync(force=True)
        with self._lock:
            if self._closed:
                return 0
            for waiting in [s for s in self._segments if isinstance(s, MemorySegment)]:
                self._delete(waiting)
            left = self._undelivered_locked()
            if self._write is not None:
                self._roll()
            for any_seg in list(self._segments):
                if any_seg.ack_off >= any_seg.end:
                    self._delete(any_seg)
            disk = [s for s in self._segments if isinstance(s, Segment)]
            for seg in disk:
                seg.close_files()
            self._adopter.release({seg.owner for seg in disk})
            self._closed = True
            return left

    def after_fork_in_child(self) -> None:
        """
        Forget the parent's files in a forked child, without touching them.

        The child's copies of the descriptors are closed (which releases no
        lock: the parent still holds its own), and the child gets its own
        owner name and segments on its first write.
        """
        self._lock = threading.Lock()
        for seg in self._segments:
            if isinstance(seg, Segment):
                for fd in seg.descriptors():
                    with contextlib.suppress(OSError):
                        os.close(fd)
        self._adopter.after_fork_in_child()
        self._reset_state()
        self.fallback = 0  # counters are per process
