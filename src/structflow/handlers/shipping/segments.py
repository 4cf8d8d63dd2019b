"""
The files of a spool directory: their names, their format, writing and reading them.

Layout of a spool directory::

    <owner>.lock          one per worker that wrote here; flock()ed while it lives
    <owner>-<n>.seg       a segment: 16-byte header, then records
    <owner>-<n>.seg.ack   8 bytes: offset of the first record not yet delivered

``<owner>`` is ``<pid>-<random hex>``. A segment starts with ``SFSPOOL2`` and
an 8-byte digest of the spool identity (the handler kind and encoding), so a
handler never adopts entries encoded for another destination format.

Each record is framed so that a reader can find the next one after damage,
as the disk formats of Kafka and Vector do::

    marker  4 bytes  b"\\xffSFR" (0xFF never occurs in UTF-8 text)
    length  4 bytes  big-endian payload length
    index   4 bytes  big-endian number of the record in its owner's sequence
    crc     4 bytes  big-endian CRC-32 of length, index and payload
    payload length bytes

When a process rolls to a new segment, or closes, it ends the segment with
a *seal*: the same 16-byte frame with the marker ``b"\\xffSFE"``, length 0
and, as index, the number of the next record. Record numbers run on across
an owner's segments (modulo 2**32), so a reader counts exactly the records
lost to damage in the middle of a segment (the next intact record says
where the sequence resumes), to a cut at its end (the seal, or the next
segment, says where it ended), and to a whole segment gone missing. Only
the tail of a process's last segment, which has no seal because the process
died, cannot be checked: a power cut loses what was not yet synced there
(see ``fsync``).

Segments in the previous format (``SFSPOOL1``: a 4-byte length and a CRC-32
per record, no marker) are still read and delivered; in those, damage ends
the segment as before (the rest is counted as one loss).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from typing import NamedTuple

__all__ = [
    "DAMAGE",
    "HEADER_SIZE",
    "MAGIC",
    "MAGIC_V1",
    "REC",
    "RECORD",
    "SEAL",
    "Frame",
    "Segment",
    "fdatasync",
    "frame_record",
    "frame_seal",
    "fsync_dir",
    "identity_digest",
    "parse_segment_name",
    "read_ack",
    "sequence_gap",
    "unlink",
    "write_all",
]

MAGIC = b"SFSPOOL2"
#: The previous format, still read.
MAGIC_V1 = b"SFSPOOL1"
HEADER_SIZE = 16
#: A record's frame header: marker, payload length, record number, CRC-32.
REC = struct.Struct(">4sIII")
_REC_SIZE = REC.size
_FIELDS = struct.Struct(">II")
_RECORD_MARK = b"\xffSFR"
_SEAL_MARK = b"\xffSFE"
#: What every marker starts with, to search for after damage.
_MARK_PREFIX = b"\xffSF"
#: The frame of a ``SFSPOOL1`` segment: payload length and CRC-32.
_REC_V1 = struct.Struct(">II")
_ACK = struct.Struct(">Q")
#: A length field above this is taken as corruption, not as a record.
MAX_RECORD_BYTES = 64 * 1024 * 1024
#: Upper bound of one read from a segment when assembling a batch.
READ_CHUNK = 4 * 1024 * 1024
#: Record numbers are 32-bit and wrap around.
_SEQ_MOD = 1 << 32

#: Kinds of :class:`Frame`.
RECORD, SEAL, DAMAGE = 0, 1, 2


class Frame(NamedTuple):
    """
    What a reader finds at one place of a segment.

    * ``RECORD``: *payload*, then the next frame at *end*; *number* is the
      record's number in its owner's sequence (-1 in a ``SFSPOOL1`` segment).
    * ``SEAL``: the segment ends here; *number* is the number of the record
      that would have come next.
    * ``DAMAGE``: unreadable bytes up to *end*, where an intact frame (or the
      end of the segment) follows.
    """

    kind: int
    payload: bytes
    end: int
    number: int


def identity_digest(identity: str) -> bytes:
    """Return the 8-byte digest of a spool identity written in segment headers."""
    return hashlib.blake2b(identity.encode("utf-8"), digest_size=8).digest()


def _crc(length: int, index: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(_FIELDS.pack(length, index)))


def frame_record(index: int, payload: bytes) -> bytes:
    """Return the frame header of record number *index* holding *payload*."""
    length = len(payload)
    index %= _SEQ_MOD
    return REC.pack(_RECORD_MARK, length, index, _crc(length, index, payload))


def frame_seal(next_index: int) -> bytes:
    """Return the seal ending a segment whose next record would be number *next_index*."""
    next_index %= _SEQ_MOD
    return REC.pack(_SEAL_MARK, 0, next_index, _crc(0, next_index, b""))


def sequence_gap(expected: int, found: int) -> int:
    """Records missing between the number *expected* and the number *found* (modulo 2**32)."""
    gap = (found - expected) % _SEQ_MOD
    # A number behind the expected one is not a gap (a segment rewritten by hand).
    return gap if gap < _SEQ_MOD // 2 else 0


class Segment:
    """One segment file and what this process knows about it."""

    __slots__ = (
        "ack_fd",
        "ack_off",
        "acked",
        "adopted",
        "counted",
        "end",
        "evicted",
        "expect",
        "fd",
        "limit",
        "name",
        "owner",
        "path",
        "rank",
        "read_count",
        "read_off",
        "rfd",
        "size",
        "version",
        "written",
    )

    #: A segment on disk (see :class:`~.fallback.MemorySegment` for the other kind).
    in_memory = False

    def __init__(
        self, directory: str, name: str, owner: str, rank: int, adopted: bool, version: int = 2
    ) -> None:
        self.name = name
        self.path = os.path.join(directory, name)
        self.owner = owner
        self.rank = rank
        self.adopted = adopted
        self.version = version
        self.fd: int | None = None  # write descriptor (own, current segment only)
        self.rfd: int | None = None  # read descriptor, opened lazily
        self.ack_fd: int | None = None
        self.end = HEADER_SIZE  # bytes to read (own segments: without the seal)
        self.size = HEADER_SIZE  # bytes on disk
        self.limit = 0  # own segments roll at this size
        self.read_off = HEADER_SIZE  # next byte the sender reads
        self.ack_off = HEADER_SIZE  # first byte not yet delivered
        self.written = 0  # records written (own segments)
        self.read_count = 0  # records taken by the sender
        self.acked = 0  # records delivered (or given up)
        self.evicted = False
        #: Number of the next record the reader expects (None: not known yet).
        self.expect: int | None = None
        #: Losses before this offset are counted (a batch read again counts none twice).
        self.counted = 0

    @classmethod
    def create(
        cls, directory: str, name: str, owner: str, rank: int, digest: bytes, sync_dir: bool
    ) -> Segment:
        """
        Create segment *name* for this process to write, with its header (*digest*: the identity's).

        Raises:
            OSError: it cannot be created, or its header written (it is then removed).
        """
        path = os.path.join(directory, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            write_all(fd, MAGIC + digest)
        except BaseException:
            os.close(fd)
            unlink(path)
            raise
        if sync_dir:
            fsync_dir(directory)
        seg = cls(directory, name, owner, rank, adopted=False)
        seg.fd = fd
        return seg

    def append(self, first: int, entries: Sequence[bytes]) -> None:
        """
        Write *entries* as records numbered from *first*, in one append.

        Raises:
            OSError: the disk refused the write; a part written is cut back,
                so later appends stay readable.
        """
        parts: list[bytes] = []
        for entry in entries:
            parts.append(frame_record(first, entry))
            parts.append(entry)
            first += 1
        data = b"".join(parts)
        self._append(data)
        self.end += len(data)
        self.size += len(data)
        self.written += len(entries)

    def seal(self, next_index: int) -> bool:
        """
        End the segment with a seal saying its owner's next record is number *next_index*.

        Returns:
            Whether the seal was written. When the disk is full, the segment
            is left without one: only a cut at its very end would then go
            unnoticed, and only if no segment follows.
        """
        try:
            self._append(frame_seal(next_index))
        except OSError:
            return False
        self.size += _REC_SIZE
        return True

    def _append(self, data: bytes) -> None:
        """Write *data* at the end; what the disk took of a write it refused is cut back."""
        assert self.fd is not None
        try:
            write_all(self.fd, data)
        except OSError:
            # A torn write would leave later appends unreadable.
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, self.size)
            raise

    def descriptors(self) -> list[int]:
        """The open descriptors of this segment."""
        return [fd for fd in (self.fd, self.rfd, self.ack_fd) if fd is not None]

    def close_files(self) -> None:
        for fd in self.descriptors():
            os.close(fd)
        self.fd = self.rfd = self.ack_fd = None

    def _reader(self) -> int:
        if self.rfd is None:
            self.rfd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        return self.rfd

    def frames(self, off: int, end: int, chunk_size: int = READ_CHUNK) -> Iterator[Frame]:
        """
        Yield the frames from *off* to *end*, in order.

        Damage is yielded as one ``DAMAGE`` frame spanning the unreadable
        bytes; reading resumes at the next intact frame. In a ``SFSPOOL1``
        segment damage spans the rest of the segment.
        """
        if self.version == 1:
            yield from self._frames_v1(off, end, chunk_size)
            return
        rfd = self._reader()
        chunk_size = max(chunk_size, 64 * 1024)
        while off + _REC_SIZE <= end:
            chunk = os.pread(rfd, min(chunk_size, end - off), off)
            pos = 0
            bad = False
            while pos + _REC_SIZE <= len(chunk):
                mark, length, index, crc = REC.unpack_from(chunk, pos)
                stop = pos + _REC_SIZE + length
                if length > MAX_RECORD_BYTES or off + stop > end:
                    bad = True
                    break
                if stop > len(chunk):
                    break
                payload = chunk[pos + _REC_SIZE : stop]
                if _crc(length, index, payload) != crc:
                    bad = True
                    break
                if mark == _RECORD_MARK:
                    pos = stop
                    yield Frame(RECORD, payload, off + pos, index)
                elif mark == _SEAL_MARK and length == 0:
                    pos = stop
                    yield Frame(SEAL, b"", off + pos, index)
                else:
                    bad = True
                    break
            if bad:
                off += pos
                resume = self._resync(off + 1, end)
                yield Frame(DAMAGE, b"", resume, -1)
                off = resume
            elif pos == 0:
                # One record larger than the chunk: read exactly it.
                frame = self.frame_at(off, end)
                if frame is None:
                    resume = self._resync(off + 1, end)
                    yield Frame(DAMAGE, b"", resume, -1)
                    off = resume
                else:
                    yield frame
                    off = frame.end
            else:
                off += pos
        if off < end:
            # A partial frame header at the end: a torn last write.
            yield Frame(DAMAGE, b"", end, -1)

    def frame_at(self, off: int, end: int) -> Frame | None:
        """The intact frame starting at *off*, or None."""
        rfd = self._reader()
        header = os.pread(rfd, _REC_SIZE, off)
        if len(header) < _REC_SIZE:
            return None
        mark, length, index, crc = REC.unpack(header)
        if mark not in (_RECORD_MARK, _SEAL_MARK) or length > MAX_RECORD_BYTES:
            return None
        stop = off + _REC_SIZE + length
        if stop > end or (mark == _SEAL_MARK and length):
            return None
        payload = os.pread(rfd, length, off + _REC_SIZE) if length else b""
        if len(payload) != length or _crc(length, index, payload) != crc:
            return None
        return Frame(RECORD if mark == _RECORD_MARK else SEAL, payload, stop, index)

    def _resync(self, start: int, end: int) -> int:
        """Offset of the first intact frame at or after *start*, or *end*."""
        rfd = self._reader()
        off = start
        keep = len(_MARK_PREFIX) - 1
        while off < end:
            chunk = os.pread(rfd, min(READ_CHUNK, end - off), off)
            if not chunk:
                break
            pos = chunk.find(_MARK_PREFIX)
            while pos >= 0:
                if self.frame_at(off + pos, end) is not None:
                    return off + pos
                pos = chunk.find(_MARK_PREFIX, pos + 1)
            if len(chunk) <= keep:
                break
            off += len(chunk) - keep  # a marker may straddle two chunks
        return end

    def _frames_v1(self, off: int, end: int, chunk_size: int) -> Iterator[Frame]:
        rfd = self._reader()
        size = _REC_V1.size
        chunk_size = max(chunk_size, 64 * 1024)
        while off + size <= end:
            chunk = os.pread(rfd, min(chunk_size, end - off), off)
            pos = 0
            while pos + size <= len(chunk):
                length, crc = _REC_V1.unpack_from(chunk, pos)
                stop = pos + size + length
                if length > MAX_RECORD_BYTES or off + stop > end:
                    yield Frame(DAMAGE, b"", end, -1)
                    return
                if stop > len(chunk):
                    break
                payload = chunk[pos + size : stop]
                if zlib.crc32(payload) != crc:
                    yield Frame(DAMAGE, b"", end, -1)
                    return
                pos = stop
                yield Frame(RECORD, payload, off + pos, -1)
            if pos == 0:
                length, crc = _REC_V1.unpack(os.pread(rfd, size, off))
                payload = os.pread(rfd, length, off + size)
                if len(payload) != length or zlib.crc32(payload) != crc:
                    yield Frame(DAMAGE, b"", end, -1)
                    return
                off += size + length
                yield Frame(RECORD, payload, off, -1)
            else:
                off += pos
        if off < end:
            yield Frame(DAMAGE, b"", end, -1)

    def count(self, off: int) -> int:
        """Readable records from *off* to the end."""
        return sum(1 for frame in self.frames(off, self.end) if frame.kind == RECORD)

    def boundary_at_or_before(self, off: int) -> int:
        """The start of the frame holding byte *off* (*off* itself when a frame starts there)."""
        start = HEADER_SIZE
        for frame in self.frames(HEADER_SIZE, self.end):
            if frame.end > off:
                break
            start = frame.end
        return start

    def write_ack(self, end: int) -> None:
        """Record on disk that every record before *end* is delivered."""
        if self.ack_fd is None:
            self.ack_fd = os.open(
                self.path + ".ack", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
        os.pwrite(self.ack_fd, _ACK.pack(end), 0)


def read_ack(path: str, size: int) -> int:
    """The delivered offset a segment's ``.ack`` file holds (the header's end if none)."""
    ack = HEADER_SIZE
    with contextlib.suppress(OSError):
        with open(path + ".ack", "rb") as f:
            data = f.read()
        if len(data) >= _ACK.size:
            ack = _ACK.unpack_from(data)[0]
    return ack if HEADER_SIZE <= ack <= size else HEADER_SIZE


def parse_segment_name(name: str) -> tuple[str, int] | None:
    """``(owner, number)`` of a segment file's name; None for other files."""
    if not name.endswith(".seg") or name.startswith("."):
        return None
    owner, sep, number = name[:-4].rpartition("-")
    if not sep or not number.isdigit() or not owner:
        return None
    return owner, int(number)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fdatasync(fd: int) -> None:
    sync = getattr(os, "fdatasync", os.fsync)
    sync(fd)


def fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise
