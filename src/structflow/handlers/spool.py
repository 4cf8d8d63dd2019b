"""
A crash-safe on-disk spool for the shipping worker.

Rendered entries are appended to *segments* in the spool directory before they
count as accepted, read back by the sender, and deleted only after the
receiver confirmed them. A process that dies leaves its segments behind; the
next worker with the same directory *adopts* them and delivers them first.

Layout of a spool directory::

    <owner>.lock          one per worker that wrote here; flock()ed while it lives
    <owner>-<n>.seg       a segment: 16-byte header, then records
    <owner>-<n>.seg.ack   8 bytes: offset of the first record not yet delivered

``<owner>`` is ``<pid>-<random hex>``. A segment starts with ``SFSPOOL1`` and
an 8-byte digest of the spool identity (the handler kind and encoding), so a
handler never adopts entries encoded for another destination format. Each
record is a 4-byte big-endian payload length, the 4-byte big-endian CRC-32 of
the payload, then the payload.

A worker tells live owners from dead ones with ``fcntl.flock``: a live owner
holds an exclusive lock on its ``.lock`` file, which the kernel releases when
the process dies, however it dies. Lock files are created under a temporary
name and renamed once locked, so no one ever sees an unlocked fresh one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import secrets
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Batch", "Spool"]

MAGIC = b"SFSPOOL1"
HEADER_SIZE = 16
_REC = struct.Struct(">II")
_REC_SIZE = _REC.size
_ACK = struct.Struct(">Q")
#: A length field above this is taken as corruption, not as a record.
MAX_RECORD_BYTES = 64 * 1024 * 1024
#: Upper bound of one read from a segment when assembling a batch.
_READ_CHUNK = 4 * 1024 * 1024

Report = Callable[..., object]
CountDrop = Callable[[str, int], None]


@dataclass(slots=True)
class Batch:
    """
    Entries taken from a buffer for one delivery.

    ``ref`` is the buffer's own bookkeeping (for the spool: the segment and
    the byte range the entries came from).
    """

    entries: list[bytes]
    nbytes: int
    ref: Any = None


def identity_digest(identity: str) -> bytes:
    """Return the 8-byte digest of a spool identity written in segment headers."""
    return hashlib.blake2b(identity.encode("utf-8"), digest_size=8).digest()


class _Segment:
    """One segment file and what this process knows about it."""

    __slots__ = (
        "ack_fd",
        "ack_off",
        "acked",
        "adopted",
        "end",
        "evicted",
        "fd",
        "name",
        "owner",
        "rank",
        "read_count",
        "read_off",
        "rfd",
        "written",
    )

    def __init__(self, name: str, owner: str, rank: int, adopted: bool) -> None:
        self.name = name
        self.owner = owner
        self.rank = rank
        self.adopted = adopted
        self.fd: int | None = None  # write descriptor (own, current segment only)
        self.rfd: int | None = None  # read descriptor, opened lazily
        self.ack_fd: int | None = None
        self.end = HEADER_SIZE  # bytes that hold complete records
        self.read_off = HEADER_SIZE  # next byte the sender reads
        self.ack_off = HEADER_SIZE  # first byte not yet delivered
        self.written = 0  # records written (own segments)
        self.read_count = 0  # records taken by the sender
        self.acked = 0  # records delivered (or given up)
        self.evicted = False


class Spool:
    """
    The on-disk buffer between the worker's writer and sender threads.

    All methods are thread-safe; disk I/O happens under the spool's own lock,
    never under the worker's, so a slow disk never stalls a log call.

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

    def _reset_state(self) -> None:
        self._owner: str | None = None
        self._owner_fd: int | None = None
        self._adopted_fds: dict[str, int] = {}  # dead owner -> its locked .lock fd
        self._owner_segments: dict[str, int] = {}  # owner -> segments still listed
        self._segments: list[_Segment] = []
        self._write: _Segment | None = None
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
            _unlink(tmp)
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
                parsed = _parse_segment_name(name)
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
            _unlink(tmp)
        return fd

    def _take_over(self, owner: str, fd: int, segs: list[tuple[int, str]]) -> int:
        segments: list[_Segment] = []
        nbytes = 0
        for _number, name in sorted(segs):
            seg = self._open_adopted(owner, name)
            if seg is not None:
                segments.append(seg)
                nbytes += seg.end - seg.ack_off
        if not segments:
            _unlink(self._path(f"{owner}.lock"))
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

    def _open_adopted(self, owner: str, name: str) -> _Segment | None:
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
                _unlink(path)
                _unlink(path + ".ack")
                return None
            self._report(
                "spool_corrupt",
                "error",
                "spool segment %s has an unknown header; it is left in place, not delivered",
                path,
            )
            return None
        seg = _Segment(name, owner, -1, adopted=True)
        seg.rfd = rfd
        seg.end = size
        ack = HEADER_SIZE
        with contextlib.suppress(OSError):
            data = _read_file(path + ".ack")
            if len(data) >= _ACK.size:
                ack = _ACK.unpack_from(data)[0]
        if not HEADER_SIZE <= ack <= size:
            ack = HEADER_SIZE
        seg.ack_off = seg.read_off = ack
        return seg

    # --- writing ------------------------------------------------------------

    def _new_segment(self) -> _Segment:
        owner = self._ensure_owner()
        name = f"{owner}-{self._next_number:08d}.seg"
        self._next_number += 1
        fd = os.open(
            self._path(name),
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC,
            0o600,
        )
        try:
            _write_all(fd, MAGIC + self._digest)
        except BaseException:
            os.close(fd)
            _unlink(self._path(name))
            raise
        if self.fsync == "always":
            _fsync_dir(self.directory)
        seg = _Segment(name, owner, self._next_rank, adopted=False)
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
                _fdatasync(seg.fd)
            os.close(seg.fd)
            seg.fd = None
        if seg.ack_off >= seg.end and seg.read_off >= seg.end:
            self._delete(seg)

    def push(self, entries: Sequence[bytes]) -> int:
        """
        Append *entries* to the spool.

        They are written in slices of at most one segment, making room under
        the disk cap before each, so the spool never holds more than
        ``max_bytes`` however many entries come at once.

        Returns:
            How many were written. Entries that could not be written (disk
            full, I/O error) are counted as dropped and reported.
        """
        if not entries:
            return 0
        with self._lock:
            if self._closed:
                self._count_drop("shutdown", len(entries))
                return 0
            written = 0
            pack, crc = _REC.pack, zlib.crc32
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
            return written

    def _write_slice(self, parts: list[bytes], size: int) -> int:
        """Write framed records (header, payload, header, ...) as one append."""
        count = len(parts) // 2
        try:
            self._make_room(size)
            seg = self._write or self._new_segment()
            start = seg.end
            try:
                _write_all(seg.fd, b"".join(parts))  # type: ignore[arg-type]
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
            _fdatasync(seg.fd)  # type: ignore[arg-type]
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

    def _evict(self, seg: _Segment) -> None:
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

    def _count_unread(self, seg: _Segment) -> int:
        """Records in *seg* not yet taken by the sender."""
        if not seg.adopted:
            n = seg.written - seg.read_count
            self.pending -= n
            if n:
                self.pending_bytes -= max(0, seg.end - seg.read_off - _REC_SIZE * n)
            return n
        return sum(1 for _ in self._iter_records(seg, seg.read_off, seg.end))

    def _iter_records(
        self, seg: _Segment, off: int, end: int, chunk_size: int = _READ_CHUNK
    ) -> Iterator[tuple[bytes, int]]:
        """Yield ``(payload, next offset)`` from *off*; stops at a corrupt record."""
        rfd = self._rfd(seg)
        chunk_size = max(chunk_size, 64 * 1024)
        while off + _REC_SIZE <= end:
            chunk = os.pread(rfd, min(chunk_size, end - off), off)
            pos = 0
            while pos + _REC_SIZE <= len(chunk):
                length, crc = _REC.unpack_from(chunk, pos)
                stop = pos + _REC_SIZE + length
                if length > MAX_RECORD_BYTES or off + stop > end:
                    return
                if stop > len(chunk):
                    break
                payload = chunk[pos + _REC_SIZE : stop]
                if zlib.crc32(payload) != crc:
                    return
                pos = stop
                yield payload, off + pos
            if pos == 0:
                # One record larger than the chunk: read exactly it.
                length, crc = _REC.unpack(os.pread(rfd, _REC_SIZE, off))
                payload = os.pread(rfd, length, off + _REC_SIZE)
                if len(payload) != length or zlib.crc32(payload) != crc:
                    return
                off += _REC_SIZE + length
                yield payload, off
            else:
                off += pos

    def _rfd(self, seg: _Segment) -> int:
        if seg.rfd is None:
            seg.rfd = os.open(self._path(seg.name), os.O_RDONLY | os.O_CLOEXEC)
        return seg.rfd

    def _maybe_sync_locked(self) -> None:
        now = time.monotonic()
        if self._dirty and now - self._last_sync >= self.fsync_interval:
            if self._write is not None and self._write.fd is not None:
                _fdatasync(self._write.fd)
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
            chunk = min(_READ_CHUNK, max_bytes + (_REC_SIZE + 64) * max_records)
            try:
                for payload, after in self._iter_records(seg, off, seg.end, chunk):
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
            return Batch(entries, nbytes, (seg, start, off, len(entries)))

    def _corrupt_tail(self, seg: _Segment, off: int) -> None:
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

    def complete(self, batch: Batch) -> None:
        """Forget a delivered (or deliberately dropped) batch: it is never sent again."""
        seg, _start, end, n = batch.ref
        with self._lock:
            if seg.evicted or self._closed:
                return
            seg.ack_off = end
            seg.acked += n
            if seg is not self._write and seg.ack_off >= seg.end:
                self._delete(seg)
            else:
                try:
                    if seg.ack_fd is None:
                        seg.ack_fd = os.open(
                            self._path(seg.name + ".ack"),
                            os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC,
                            0o600,
                        )
                    os.pwrite(seg.ack_fd, _ACK.pack(end), 0)
                except OSError as exc:
                    # Only costs duplicates after a crash, so it is reported, not fatal.
                    self._report("spool_io", "warning", "cannot record delivery progress: %s", exc)
            self._update_head()

    def release(self, batch: Batch) -> int:
        """
        Give back an undelivered batch (at shutdown): it stays in the spool.

        Returns:
            How many of its records were lost because their segment was
            evicted meanwhile.
        """
        seg, start, _end, n = batch.ref
        with self._lock:
            if seg.evicted:
                self._count_drop("spool_full", n)
                return int(n)
            seg.read_off = start
            seg.read_count -= n
            return 0

    def _delete(self, seg: _Segment) -> None:
        for fd in (seg.fd, seg.rfd, seg.ack_fd):
            if fd is not None:
                os.close(fd)
        seg.fd = seg.rfd = seg.ack_fd = None
        _unlink(self._path(seg.name))
        _unlink(self._path(seg.name + ".ack"))
        if seg in self._segments:
            self._segments.remove(seg)
            self.total_bytes -= seg.end
        if seg is self._write:
            self._write = None
        left = self._owner_segments.get(seg.owner, 1) - 1
        self._owner_segments[seg.owner] = left
        if left <= 0 and seg.owner in self._adopted_fds:
            # Everything the dead owner left is delivered: retire its lock.
            _unlink(self._path(f"{seg.owner}.lock"))
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

    def undelivered(self) -> int:
        """Records in the spool not yet delivered (exact for own segments)."""
        with self._lock:
            n = 0
            for seg in self._segments:
                if seg.adopted:
                    n += sum(1 for _ in self._iter_records(seg, seg.ack_off, seg.end))
                else:
                    n += seg.written - seg.acked
            return n

    # --- lifecycle ----------------------------------------------------------

    def close(self) -> None:
        """
        Sync and close every file; keep undelivered segments for the next process.

        The lock file stays (unlocked) while segments remain, which is how
        the next worker knows they are to be adopted; with nothing left it
        is removed.
        """
        with self._lock:
            if self._closed:
                return
            if self._write is not None:
                self._roll()
            for seg in list(self._segments):
                if seg.ack_off >= seg.end:
                    self._delete(seg)
            for seg in self._segments:
                for fd in (seg.fd, seg.rfd, seg.ack_fd):
                    if fd is not None:
                        os.close(fd)
                seg.fd = seg.rfd = seg.ack_fd = None
            owners_left = {seg.owner for seg in self._segments}
            for owner, fd in list(self._adopted_fds.items()):
                if owner not in owners_left:
                    _unlink(self._path(f"{owner}.lock"))
                os.close(fd)
            self._adopted_fds.clear()
            if self._owner is not None:
                if self._owner not in owners_left:
                    _unlink(self._path(f"{self._owner}.lock"))
                if self._owner_fd is not None:
                    os.close(self._owner_fd)
            self._owner_fd = None
            self._closed = True

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
            fds.extend((seg.fd, seg.rfd, seg.ack_fd))
        for fd in fds:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._reset_state()


def _parse_segment_name(name: str) -> tuple[str, int] | None:
    if not name.endswith(".seg") or name.startswith("."):
        return None
    owner, sep, number = name[:-4].rpartition("-")
    if not sep or not number.isdigit() or not owner:
        return None
    return owner, int(number)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fdatasync(fd: int) -> None:
    sync = getattr(os, "fdatasync", os.fsync)
    sync(fd)


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise
