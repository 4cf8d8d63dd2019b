"""
The files of a spool directory: their names, their format, and reading them back.

Layout of a spool directory::

    <owner>.lock          one per worker that wrote here; flock()ed while it lives
    <owner>-<n>.seg       a segment: 16-byte header, then records
    <owner>-<n>.seg.ack   8 bytes: offset of the first record not yet delivered

``<owner>`` is ``<pid>-<random hex>``. A segment starts with ``SFSPOOL1`` and
an 8-byte digest of the spool identity (the handler kind and encoding), so a
handler never adopts entries encoded for another destination format. Each
record is a 4-byte big-endian payload length, the 4-byte big-endian CRC-32 of
the payload, then the payload.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import struct
import zlib
from collections.abc import Iterator

__all__ = [
    "HEADER_SIZE",
    "MAGIC",
    "REC",
    "Segment",
    "fdatasync",
    "fsync_dir",
    "identity_digest",
    "parse_segment_name",
    "read_ack",
    "unlink",
    "write_all",
]

MAGIC = b"SFSPOOL1"
HEADER_SIZE = 16
#: A record's header: payload length and CRC-32.
REC = struct.Struct(">II")
_REC_SIZE = REC.size
_ACK = struct.Struct(">Q")
#: A length field above this is taken as corruption, not as a record.
MAX_RECORD_BYTES = 64 * 1024 * 1024
#: Upper bound of one read from a segment when assembling a batch.
READ_CHUNK = 4 * 1024 * 1024


def identity_digest(identity: str) -> bytes:
    """Return the 8-byte digest of a spool identity written in segment headers."""
    return hashlib.blake2b(identity.encode("utf-8"), digest_size=8).digest()


class Segment:
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
        "path",
        "rank",
        "read_count",
        "read_off",
        "rfd",
        "written",
    )

    def __init__(self, directory: str, name: str, owner: str, rank: int, adopted: bool) -> None:
        self.name = name
        self.path = os.path.join(directory, name)
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

    def descriptors(self) -> list[int]:
        """The open descriptors of this segment."""
        return [fd for fd in (self.fd, self.rfd, self.ack_fd) if fd is not None]

    def close_files(self) -> None:
        for fd in self.descriptors():
            os.close(fd)
        self.fd = self.rfd = self.ack_fd = None

    def records(
        self, off: int, end: int, chunk_size: int = READ_CHUNK
    ) -> Iterator[tuple[bytes, int]]:
        """Yield ``(payload, next offset)`` from *off*; stops at a corrupt record."""
        if self.rfd is None:
            self.rfd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        rfd = self.rfd
        chunk_size = max(chunk_size, 64 * 1024)
        while off + _REC_SIZE <= end:
            chunk = os.pread(rfd, min(chunk_size, end - off), off)
            pos = 0
            while pos + _REC_SIZE <= len(chunk):
                length, crc = REC.unpack_from(chunk, pos)
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
                length, crc = REC.unpack(os.pread(rfd, _REC_SIZE, off))
                payload = os.pread(rfd, length, off + _REC_SIZE)
                if len(payload) != length or zlib.crc32(payload) != crc:
                    return
                off += _REC_SIZE + length
                yield payload, off
            else:
                off += pos

    def count(self, off: int) -> int:
        """Readable records from *off* to the end."""
        return sum(1 for _ in self.records(off, self.end))

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
