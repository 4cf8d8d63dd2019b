"""
A crash-safe on-disk spool: the :class:`~.buffer.Buffer` used with ``spool_dir``.

Rendered entries are appended to *segments* in the spool directory before they
count as accepted, read back by the sender, and deleted only after the
receiver confirmed them. A process that dies leaves its segments behind; the
next worker with the same directory *adopts* them and delivers them first.
The files and their format are described in
:mod:`~structflow.handlers.shipping.segments`.

A worker tells live owners from dead ones with ``fcntl.flock``: a live owner
holds an exclusive lock on its ``.lock`` file, which the kernel releases when
the process dies, however it dies. Lock files are created under a temporary
name and renamed once locked, so no one ever sees an unlocked fresh one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import threading
import time
import zlib
from collections.abc import Callable, Sequence

from structflow.handlers.shipping.buffer import Batch
from structflow.handlers.shipping.segments import (
    HEADER_SIZE,
    MAGIC,
    READ_CHUNK,
    REC,
    Segment,
    fdatasync,
    fsync_dir,
    identity_digest,
    parse_segment_name,
    read_ack,
    unlink,
    write_all,
)

__all__ = ["Spool"]

_REC_SIZE = REC.size
#: Seconds between looks for spools left by dead processes.
ADOPT_INTERVAL = 10.0
#: How long the idle writer sleeps between fsync interval checks.
IDLE_TICK = 0.25

Report = Callable[..., object]
CountDrop = Callable[[str, int], None]


class Spool:
    """
    The on-disk buffer between the worker's writer and sender threads.

    All methods are thread-safe; disk I/O happens under the spool's own lock,
    never under the worker's, so a slow disk never stalls a log call. What is
    spooled costs no memory: ``drop_oldest`` and ``clear`` drop nothing (the
    disk cap evicts instead), and what is not delivered at shutdown stays.

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
        self.fsync = fsync
        self.fsync_interval = fsync_interval
        self._report = report
        self._count_drop = count_drop
        self._lock = threading.Lock()
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
        self._owner: str | None = None
        self._owner_fd: int | None = None
        self._adopted_fds: dict[str, int] = {}  # dead owner -> its locked .lock fd
        self._owner_segments: dict[str, int] = {}  # owner -> segments still listed
        self._segments: list[Segment] = []
        self._write: Segment | None = None
        self._next_number = 0
        self._next_rank = 0
        self.total_bytes = 0
        #: Records written but not yet taken by the sender (own segments).
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

    # --- paths --------------------------------------------------------------

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    # --- ownership ----------------------------------------------------------

    def _ensure_owner(self) -> str:
        if self._owner is not None:
            return self._owner
        owner = f"{os.getpid()}-{secrets.token_hex(4)}"
        tmp = self._path(f".{owner}.lock.tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, self._lock_content())
            # Visible under its final name only once locked.
            os.rename(tmp, self._path(f"{owner}.lock"))
        except BaseException:
            os.close(fd)
            unlink(tmp)
            raise
        self._owner = owner
        self._owner_fd = fd
        self._owner_segments.setdefault(owner, 0)
        return owner

    def _lock_content(self) -> bytes:
        return json.dumps({"pid": os.getpid(), "identity": self.identity}).encode() + b"\n"

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
                names = os.listdir(self.directory)
            except OSError as exc:
                self._report(
                    "spool_io", "warning", "cannot list spool_dir %s: %s", self.directory, exc
                )
                return 0
            locks = sorted(n[:-5] for n in names if n.endswith(".lock") and not n.startswith("."))
            segs_by_owner: dict[str, list[tuple[int, str]]] = {}
            for name in names:
                parsed = parse_segment_name(name)
                if parsed is not None:
                    segs_by_owner.setdefault(parsed[0], []).append((parsed[1], name))
            adopted = 0
            for owner in locks:
                if owner == self._owner or owner in self._adopted_fds:
                    continue
                fd = self._try_lock_dead(self._path(f"{owner}.lock"))
                if fd is None:
                    continue
                adopted += self._take_over(owner, fd, segs_by_owner.get(owner, []))
            # Segments whose lock file is gone (removed by hand): claim the
            # owner name with a fresh lock, created atomically only if absent.
            for owner, segs in segs_by_owner.items():
                if owner in locks or owner == self._owner or owner in self._adopted_fds:
                    continue
                fd = self._claim_orphan(owner)
                if fd is not None:
                    adopted += self._take_over(owner, fd, segs)
            return adopted

    def _try_lock_dead(self, path: str) -> int | None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # a live owner holds it
            return None
        try:
            # Another adopter may have finished with it and unlinked it
            # between our open() and flock(): then the file is stale.
            st_fd, st_path = os.fstat(fd), os.stat(path)
            if (st_fd.st_ino, st_fd.st_dev) != (st_path.st_ino, st_path.st_dev):
                raise FileNotFoundError(path)
            content = os.pread(fd, 4096, 0)
            identity = json.loads(content or b"{}").get("identity")
        except (OSError, ValueError, AttributeError):
            os.close(fd)
            return None
        if identity != self.identity:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            self._report(
                "spool_identity",
                "warning",
                "spool_dir %s holds records encoded for %r, not %r; they are left for a "
                "handler of that kind (use one spool_dir per handler)",
                self.directory,
                identity,
                self.identity,
            )
            return None
        return fd

    def _claim_orphan(self, owner: str) -> int | None:
        tmp = self._path(f".{owner}.{secrets.token_hex(4)}.lock.tmp")
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, self._lock_content())
            os.link(tmp, self._path(f"{owner}.lock"))  # fails if someone else claimed it
        except OSError:
            os.close(fd)
            return None
        finally:
            unlink(tmp)
        return fd

    def _take_over(self, owner: str, fd: int, segs: list[tuple[int, str]]) -> int:
        segments: list[Segment] = []
        nbytes = 0
        for _number, name in sorted(segs):
            seg = self._open_adopted(owner, name)
            if seg is not None:
                segments.append(seg)
                nbytes += seg.end - seg.ack_off
        if not segments:
            unlink(self._path(f"{owner}.lock"))
            os.close(fd)
            return 0
        # Entries spooled later by this process go to a new segment, after
        # the adopted ones, so positions keep their order.
        self._roll()
        for seg in segments:
            seg.rank = self._next_rank
            self._next_rank += 1
            self._segments.append(seg)
            self.total_bytes += seg.end
        self._adopted_fds[owner] = fd
        self._owner_segments[owner] = len(segments)
        self.adopted_pending = True
        if self.oldest is None:
            self.oldest = time.monotonic()
        self._update_head()
        self._report(
            "spool_adopt",
            "info",
            "adopted %d spool segment(s) (%d bytes) left by a process that ended (owner %s)",
            len(segments),
            nbytes,
            owner,
        )
        return len(segments)

    def _open_adopted(self, owner: str, name: str) -> Segment | None:
        path = self._path(name)
        try:
            rfd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        size = os.fstat(rfd).st_size
        header = os.pread(rfd, HEADER_SIZE, 0)
        if len(header) < HEADER_SIZE or header[:8] != MAGIC or header[8:] != self._digest:
            os.close(rfd)
            if len(header) < HEADER_SIZE and header == (MAGIC + self._digest)[: len(header)]:
                # Died while creating it: nothing was ever written there.
                unlink(path)
                unlink(path + ".ack")
                return None
            self._report(
                "spool_corrupt",
                "error",
                "spool segment %s has an unknown header; it is left in place, not delivered",
                path,
            )
            return None
        seg = Segment(self.directory, name, owner, -1, adopted=True)
        seg.rfd = rfd
        seg.end = size
        seg.ack_off = seg.read_off = read_ack(path, size)
        return seg

    # --- writing ------------------------------------------------------------

    def _new_segment(self) -> Segment:
        owner = self._ensure_owner()
        name = f"{owner}-{self._next_number:08d}.seg"
        self._next_number += 1
        fd = os.open(
            self._path(name),
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC,
            0o600,
        )
        try:
            write_all(fd, MAGIC + self._digest)
        except BaseException:
            os.close(fd)
            unlink(self._path(name))
            raise
        if self.fsync == "always":
            fsync_dir(self.directory)
        seg = Segment(self.directory, name, owner, self._next_rank, adopted=False)
        self._next_rank += 1
        seg.fd = fd
        self._segments.append(seg)
        self._owner_segments[owner] = self._owner_segments.get(owner, 0) + 1
        self.total_bytes += HEADER_SIZE
        self._write = seg
        return seg

    def _roll(self) -> None:
        seg = self._write
        if seg is None:
            return
        self._write = None
        if seg.fd is not None:
            if self.fsync != "never" and self._dirty:
                fdatasync(seg.fd)
            os.close(seg.fd)
            seg.fd = None
        if seg.ack_off >= seg.end and seg.read_off >= seg.end:
            self._delete(seg)

    def prepare(self, entries: list[bytes]) -> list[bytes]:
        """Entries go to disk as they are (no copy is kept in memory)."""
        return entries

    def push(self, entries: Sequence[bytes], nbytes: int = 0) -> tuple[int, int]:
        """
        Append *entries* to the spool.

        They are written in slices of at most one segment, making room under
        the disk cap before each, so the spool never holds more than
        ``max_bytes`` however many entries come at once.

        Returns:
            How many were written, and the memory they cost (none). Entries
            that could not be written (disk full, I/O error) are counted as
            dropped and reported.
        """
        if not entries:
            return 0, 0
        with self._lock:
            if self._closed:
                self._count_drop("shutdown", len(entries))
                return 0, 0
            written = 0
            pack, crc = REC.pack, zlib.crc32
            limit = self.segment_bytes
            parts: list[bytes] = []
            size = 0
            for entry in entries:
                parts.append(pack(len(entry), crc(entry)))
                parts.append(entry)
                size += _REC_SIZE + len(entry)
                if size >= limit:
                    written += self._write_slice(parts, size)
                    parts, size = [], 0
            if parts:
                written += self._write_slice(parts, size)
            self._update_head()
            return written, 0

    def _write_slice(self, parts: list[bytes], size: int) -> int:
        """Write framed records (header, payload, header, ...) as one append."""
        count = len(parts) // 2
        try:
            self._make_room(size)
            seg = self._write or self._new_segment()
            start = seg.end
            try:
                write_all(seg.fd, b"".join(parts))  # type: ignore[arg-type]
            except OSError:
                # Cut a torn write back so later appends stay parseable.
                try:
                    os.ftruncate(seg.fd, start)  # type: ignore[arg-type]
                except OSError:
                    self._roll()
                raise
        except OSError as exc:
            self._count_drop("spool_error", count)
            self._report(
                "spool_io",
                "error",
                "cannot write to spool_dir %s (%s); %d record(s) dropped",
                self.directory,
                exc,
                count,
            )
            return 0
        seg.end += size
        seg.written += count
        self.total_bytes += size
        if self.pending == 0 and not self.adopted_pending:
            self.oldest = time.monotonic()
        self.pending += count
        self.pending_bytes += size - _REC_SIZE * count
        self._dirty = True
        if self.fsync == "always":
            fdatasync(seg.fd)  # type: ignore[arg-type]
            self._dirty = False
        elif self.fsync == "interval":
            self._maybe_sync_locked()
        if seg.end >= self.segment_bytes:
            self._roll()
        return count

    def _make_room(self, incoming: int) -> None:
        """Evict the oldest segments until *incoming* bytes fit under the cap."""
        while self.total_bytes + incoming > self.max_bytes and self._segments:
            oldest = self._segments[0]
            if oldest is self._write:
                if oldest.end <= HEADER_SIZE:
                    return  # an empty segment: nothing to evict
                self._roll()
                if not self._segments or self._segments[0] is not oldest:
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
            if self._write is not None and self._write.fd is not None:
                fdatasync(self._write.fd)
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
        length plus *overhead* against *max_bytes*.
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
            entries: list[bytes] = []
            nbytes = 0
            start = off = seg.read_off
            limited = False
            chunk = min(READ_CHUNK, max_bytes + (_REC_SIZE + 64) * max_records)
            try:
                for payload, after in seg.records(off, seg.end, chunk):
                    size = len(payload) + overhead
                    if entries and nbytes + size > max_bytes:
                        limited = True
                        break
                    entries.append(payload)
                    nbytes += size
                    off = after
                    if len(entries) >= max_records:
                        limited = True
                        break
            except OSError as exc:
                self._report("spool_io", "error", "cannot read spool segment %s: %s", seg.name, exc)
                return None
            if not limited and off < seg.end:
                # The record at `off` is unreadable: the rest of the segment
                # is a corrupt tail (a torn write, or damage on disk).
                self._corrupt_tail(seg, off)
            if entries:
                seg.read_off = off
                seg.read_count += len(entries)
                if not seg.adopted:
                    self.pending -= len(entries)
                    self.pending_bytes -= nbytes - overhead * len(entries)
            self.adopted_pending = self._adopted_unread()
            if self.pending <= 0:
                self.pending = 0
                self.pending_bytes = 0
                if not self.adopted_pending:
                    self.oldest = None
            self._update_head()
            if not entries:
                return None
            adopted = len(entries) if seg.adopted else 0
            return Batch(entries, nbytes, (seg, start, off, len(entries)), adopted)

    def _corrupt_tail(self, seg: Segment, off: int) -> None:
        skipped = seg.end - off
        self._count_drop("spool_corrupt", 1)
        self._report(
            "spool_corrupt",
            "error",
            "spool segment %s: corrupt data at offset %d; skipped the last %d bytes",
            seg.name,
            off,
            skipped,
        )
        if not seg.adopted:
            # Own segment damaged underneath us: what was after `off` is lost.
            self.pending -= seg.written - seg.read_count
            seg.read_count = seg.written
            if seg is self._write:
                self._roll()
        self.total_bytes -= skipped
        seg.end = off

    def _adopted_unread(self) -> bool:
        return any(s.adopted and s.read_off < s.end for s in self._segments)

    def complete(self, batch: Batch) -> int:
        """Forget a delivered (or deliberately dropped) batch: it is never sent again."""
        seg, _start, end, n = batch.ref
        with self._lock:
            if seg.evicted or self._closed:
                return 0
            seg.ack_off = end
            seg.acked += n
            if seg is not self._write and seg.ack_off >= seg.end:
                self._delete(seg)
            else:
                try:
                    seg.write_ack(end)
                except OSError as exc:
                    # Only costs duplicates after a crash, so it is reported, not fatal.
                    self._report("spool_io", "warning", "cannot record delivery progress: %s", exc)
            self._update_head()
            return 0

    def release(self, batch: Batch, undelivered: int) -> tuple[int, int]:
        """
        Give back a batch not (wholly) delivered: it stays in the spool, to be sent again.

        Records whose segment was evicted meanwhile are counted as
        ``spool_full`` here, so none is lost to the caller's count.
        """
        seg, start, _end, n = batch.ref
        with self._lock:
            if seg.evicted:
                self._count_drop("spool_full", n)
                return 0, 0
            seg.read_off = start
            seg.read_count -= n
            return 0, 0

    def abandoned(self) -> int:
        """None: a batch whose delivery never finished is still on disk."""
        return 0

    def drop_oldest(self, need: int) -> tuple[int, int]:
        """Nothing: spooled records take no memory (``spool_max_bytes`` evicts instead)."""
        return 0, 0

    def clear(self) -> tuple[int, int]:
        """Nothing: what is not delivered stays for the next process."""
        return 0, 0

    def _delete(self, seg: Segment) -> None:
        seg.close_files()
        unlink(seg.path)
        unlink(seg.path + ".ack")
        if seg in self._segments:
            self._segments.remove(seg)
            self.total_bytes -= seg.end
        if seg is self._write:
            self._write = None
        left = self._owner_segments.get(seg.owner, 1) - 1
        self._owner_segments[seg.owner] = left
        if left <= 0 and seg.owner in self._adopted_fds:
            # Everything the dead owner left is delivered: retire its lock.
            unlink(self._path(f"{seg.owner}.lock"))
            os.close(self._adopted_fds.pop(seg.owner))
            del self._owner_segments[seg.owner]
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
        """Records in the spool not yet delivered (exact for own segments)."""
        n = 0
        for seg in self._segments:
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
        is removed.

        Returns:
            How many undelivered records stay in the spool.
        """
        self.sync(force=True)
        with self._lock:
            if self._closed:
                return 0
            left = self._undelivered_locked()
            if self._write is not None:
                self._roll()
            for seg in list(self._segments):
                if seg.ack_off >= seg.end:
                    self._delete(seg)
            for seg in self._segments:
                seg.close_files()
            owners_left = {seg.owner for seg in self._segments}
            for owner, fd in list(self._adopted_fds.items()):
                if owner not in owners_left:
                    unlink(self._path(f"{owner}.lock"))
                os.close(fd)
            self._adopted_fds.clear()
            if self._owner is not None:
                if self._owner not in owners_left:
                    unlink(self._path(f"{self._owner}.lock"))
                if self._owner_fd is not None:
                    os.close(self._owner_fd)
            self._owner_fd = None
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
        fds = [self._owner_fd, *self._adopted_fds.values()]
        for seg in self._segments:
            fds.extend(seg.descriptors())
        for fd in fds:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._reset_state()
