"""
Reading spooled records back for delivery, and counting those lost to damage.

The :class:`~.spool.Spool` takes its batches from segments on disk through a
:class:`Reader`. Record numbers run on across an owner's segments (see
:mod:`~structflow.handlers.shipping.segments`), so the reader counts the
records missing where the sequence jumps (damage in the middle of a
segment, a cut before a seal, a segment gone missing) and, for damage that
runs to the end of a segment, what its writer or the owner's next segment
says was there. What is lost is counted (``spool_corrupt``) and reported;
the rest is delivered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from structflow.handlers.shipping.buffer import Batch
from structflow.handlers.shipping.segments import (
    HEADER_SIZE,
    READ_CHUNK,
    REC,
    RECORD,
    SEAL,
    Segment,
    sequence_gap,
)

__all__ = ["CountDrop", "Reader", "Report"]

Report = Callable[..., object]
CountDrop = Callable[[str, int], None]

_REC_SIZE = REC.size


class Reader:
    """
    Takes batches from segments on disk, counting the records damage lost on the way.

    Args:
        report: ``report(kind, level, message, *args)``, rate-limited
            diagnostics.
        count_drop: ``count_drop(reason, n)`` for the records lost.
    """

    def __init__(self, report: Report, count_drop: CountDrop) -> None:
        self._report = report
        self._count_drop = count_drop
        #: Per dead owner, the number of the record expected next, carried
        #: from one of its segments to the next.
        self._owner_expect: dict[str, int] = {}

    def forget(self, owner: str) -> None:
        """Everything *owner* left is delivered: its sequence is no longer followed."""
        self._owner_expect.pop(owner, None)

    def take(
        self,
        seg: Segment,
        max_records: int,
        max_bytes: int,
        overhead: int,
        segments: Sequence[object],
    ) -> Batch | None:
        """
        Read the next entries of *seg* for one batch, from its read offset.

        Entries count their length plus *overhead* against *max_bytes*; at
        least one is taken, however large. ``seg.read_count`` grows by the
        records read past, delivered or lost. *segments* are all the spool
        holds (an owner's later segment says where its sequence resumed).

        Returns:
            The batch; None when only damage was read, or when the file
            could not be read (reported; it is read again next time).
        """
        entries: list[bytes] = []
        nbytes = 0
        start = off = seg.read_off
        expect_before = seg.expect
        if seg.expect is None and start == HEADER_SIZE and seg.adopted:
            seg.expect = self._owner_expect.get(seg.owner)
        limited = False
        lost = 0
        damaged_at: int | None = None
        chunk = min(READ_CHUNK, max_bytes + (_REC_SIZE + 64) * max_records)
        try:
            for frame in seg.frames(off, seg.end, chunk):
                if frame.kind == RECORD:
                    size = len(frame.payload) + overhead
                    if entries and nbytes + size > max_bytes:
                        limited = True
                        break
                    lost += self._gap(seg, frame.number, frame.end)
                    entries.append(frame.payload)
                    nbytes += size
                    off = frame.end
                    if len(entries) >= max_records:
                        limited = True
                        break
                elif frame.kind == SEAL:
                    lost += self._gap(seg, frame.number, frame.end)
                    seg.expect = frame.number
                    off = frame.end
                else:
                    if damaged_at is None:
                        damaged_at = off
                    off = frame.end
        except OSError as exc:
            seg.expect = expect_before
            self._report("spool_io", "error", "cannot read spool segment %s: %s", seg.name, exc)
            return None
        seg.read_off = off
        seg.read_count += len(entries)
        if not limited and off >= seg.end and damaged_at is not None:
            lost += self._damaged_tail(seg, off, segments)
        if lost or damaged_at is not None:
            self._lost_to_damage(seg, lost, damaged_at)
        if off >= seg.end and seg.adopted and seg.expect is not None:
            self._owner_expect[seg.owner] = seg.expect
        if not entries:
            if seg.ack_off == start:
                seg.ack_off = off  # only damage was read: nothing to deliver
            return None
        adopted = len(entries) if seg.adopted else 0
        return Batch(entries, nbytes, (seg, start, off, len(entries), expect_before), adopted)

    def _gap(self, seg: Segment, index: int, end: int) -> int:
        """Records missing before record (or seal) number *index*, which ends at *end*."""
        expect = seg.expect
        seg.expect = index + 1
        if expect is None or index < 0 or end <= seg.counted:
            return 0
        seg.counted = end
        return sequence_gap(expect, index)

    def _damaged_tail(self, seg: Segment, off: int, segments: Sequence[object]) -> int:
        """Records lost in damage that runs to the end of *seg*."""
        if off <= seg.counted:
            return 0
        seg.counted = off
        if not seg.adopted:
            # Written by this process: it knows how many the segment held.
            return max(0, seg.written - seg.read_count)
        if any(
            isinstance(s, Segment) and s.owner == seg.owner and s.rank > seg.rank for s in segments
        ):
            return 0  # the owner's next segment says where its sequence resumed
        return 1  # at least the record that was being written

    def _lost_to_damage(self, seg: Segment, lost: int, at: int | None) -> None:
        """Count and report *lost* records of *seg* (damage found at offset *at*, if any)."""
        if not seg.adopted and lost:
            # Own segment damaged underneath us: the records count as read.
            lost = min(lost, seg.written - seg.read_count)
            seg.read_count += lost
        if lost:
            self._count_drop("spool_corrupt", lost)
        if at is None:
            self._report(
                "spool_corrupt",
                "error",
                "spool segment %s: %d record(s) missing (the file was cut short, or a segment "
                "of the same process is gone); the rest is delivered",
                seg.path,
                lost,
            )
        else:
            self._report(
                "spool_corrupt",
                "error",
                "spool segment %s: corrupt data at offset %d skipped; %d record(s) lost, "
                "the rest is delivered",
                seg.path,
                at,
                lost,
            )
