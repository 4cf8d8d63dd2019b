"""
:class:`WriterStage`: the worker's writer thread, from the intake into the buffer.

The writer takes the whole intake at once, renders its records into
entries with the sink, a slice at a time, and pushes them into the buffer
a group of slices at a time, accounting for each group at once (so a small
queue keeps moving while a large intake is rendered). It then positions the flush markers that came
with the intake, and wakes the sender when a batch is due. It never waits
for the receiver.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from structflow.handlers.shipping.lifecycle import worker_threads as _worker_threads
from structflow.handlers.shipping.sink import Rendered, render_slice
from structflow.handlers.shipping.snapshot import Queued, record_slices
from structflow.handlers.shipping.state import Marker, WorkerState

__all__ = ["WriterStage"]

#: After being woken, the writer waits this long for more records, so that it
#: renders them in chunks rather than one wake-up (and one notify) per record.
_WRITER_LINGER = 0.001
#: The writer renders (and prepares for its buffer) this many records at a time.
_RENDER_SLICE = 64

_get_ident = threading.get_ident
_sleep = time.sleep
# What the writer takes when the intake is empty (never appended to).
_NO_ITEMS: deque[Any] = deque(maxlen=0)


class _Failures:
    """Records set aside while rendering one intake, for one diagnostic of each kind."""

    __slots__ = ("error", "failed", "too_large")

    def __init__(self) -> None:
        self.failed = self.too_large = 0
        self.error = ""

    def add(self, rendered: Rendered) -> None:
        self.failed += rendered.failed
        self.too_large += rendered.too_large
        self.error = rendered.error or self.error


class WriterStage(WorkerState):
    """The writer thread of a worker: renders the intake and pushes it into the buffer."""

    def _writer_main(self) -> None:
        _worker_threads.add(_get_ident())
        try:
            while True:
                if self._buffer.maintain():
                    with self._lock:
                        self._sender_cv.notify_all()
                self._writer_wait()
                items, estimated, markers, stop = self._take_intake()
                try:
                    self._write(items, estimated, markers)
                except Exception as exc:  # never let the thread die
                    # _write counted the records it had not written.
                    self.diagnostics.report("internal", "error", "writer failed: %r", exc)
                    with self._lock:
                        self._markers_in[:0] = markers
                    time.sleep(0.05)
                    continue
                if not items:
                    self._buffer.sync()
                self._report_caller_drops()
                if stop and not items and not markers:
                    with self._lock:
                        if not self._intake and not self._markers_in:
                            break
        finally:
            with self._lock:
                self._writer_done = True
                self._sender_cv.notify_all()
            _worker_threads.discard(_get_ident())

    def _writer_wait(self) -> None:
        """Sleep until records, a flush or the close arrive; then linger for more records."""
        with self._lock:
            if not (self._intake or self._markers_in or self._stop_writer):
                self._writer_idle = True
                self._writer_cv.wait(self._buffer.idle_tick)
                self._writer_idle = False
            # Linger also when a few records came while the last ones were
            # rendered: taking them at once would hand the interpreter back
            # and forth with the log calls a few records at a time. No
            # lingering when a slice is already there, for a flush or the
            # close, or when callers wait for room (a small queue).
            linger = (
                0 < len(self._intake) < _RENDER_SLICE
                and not self._markers_in
                and not self._stop_writer
                and self._queued_bytes < self._high_water
                and not self._space_waiters
            )
        if linger:
            _sleep(_WRITER_LINGER)

    def _take_intake(self) -> tuple[deque[Queued], int, list[Marker], bool]:
        """Return the intake, its estimated bytes, the pending markers and whether to stop."""
        with self._lock:
            # Take the whole intake and every pending marker, or nothing:
            # never keep a reference to a container other threads append
            # to (a marker appended to it later would be positioned before
            # records still waiting in the intake).
            items: deque[Queued] = _NO_ITEMS
            estimated = 0
            if self._intake:
                items, self._intake = self._intake, deque()
                estimated, self._intake_bytes = self._intake_bytes, 0
                if self._pacing:
                    self._taken_cv.notify_all()
            markers: list[Marker] = []
            if self._markers_in:
                markers, self._markers_in = self._markers_in, []
            return items, estimated, markers, self._stop_writer

    def _write(self, items: deque[Queued], estimated: int, markers: list[Marker]) -> None:
        """
        Render *items* into the buffer, a slice at a time, and position *markers* after them.

        Each slice is accounted for as soon as it is in the buffer: the
        memory its records were estimated at is released (their entries
        count instead), the sender is woken and callers waiting for room
        (``when_full = "block"``) are let in, so a small queue keeps moving
        while a large intake is rendered.
        """
        total = len(items)
        done = released = 0
        failures = _Failures()
        group: list[Rendered] = []
        group_bytes = group_records = 0
        try:
            for part in record_slices(items, _RENDER_SLICE):
                rendered = render_slice(self.sink, part, self._max_entry)
                failures.add(rendered)
                group.append(rendered)
                group_bytes += rendered.payload
                group_records += len(part)
                if (
                    done + group_records < total
                    and group_bytes < self._push_bytes
                    and not self._space_waiters
                    and self._queued_bytes < self._high_water
                ):
                    continue
                # The estimate was summed over the whole intake; each group
                # releases its share, and the last one the rest.
                share = estimated * (done + group_records) // total - released
                self._push(group[0] if len(group) == 1 else _joined(group), share)
                done += group_records
                released += share
                group = []
                group_bytes = group_records = 0
        except BaseException:
            with self._lock:
                self._drops["error"] += total - done
                self._queued_bytes -= estimated - released
            raise
        finally:
            self._report_render_failures(failures)
        position = None
        if markers:
            self._buffer.sync(force=True)
            position = self._buffer.mark()
        with self._lock:
            for marker in markers:
                marker.position = position
                marker.spooled.set()
                self._markers_out.append(marker)
            self._wake_sender_locked(bool(markers))

    def _push(self, rendered: Rendered, estimated: int) -> None:
        """Put rendered slices into the buffer and account for them (their records: *estimated*)."""
        buffer = self._buffer
        entries = buffer.prepare(rendered.entries) if rendered.entries else rendered.entries
        spooled, cost = buffer.push(entries, rendered.payload) if entries else (0, 0)
        with self._lock:
            self._queued_bytes += cost - estimated
            excess = self._queued_bytes - self._max_queue
            if excess > 0 and self.settings.when_full == "drop_oldest":
                # Rendered entries can take more than their records were
                # estimated at (large field values): keep the bound now
                # rather than at the next log call.
                n, freed = buffer.drop_oldest(excess)
                self._queued_bytes -= freed
                self._queue_full += n
            self._counts["spooled"] += spooled
            self._drops["encode_error"] += rendered.failed
            self._drops["too_large"] += rendered.too_large
            self._wake_sender_locked(bool(entries))
            if self._space_waiters and cost < estimated:
                self._space_cv.notify_all()

    def _report_render_failures(self, failures: _Failures) -> None:
        if failures.error:
            self._last_error = failures.error
        if failures.failed:
            self.diagnostics.report(
                "encode_error",
                "error",
                "could not render %d record(s) (%s); dropped",
                failures.failed,
                self._last_error,
            )
        if failures.too_large:
            self.diagnostics.report(
                "too_large",
                "warning",
                "dropped %d record(s) too large for the destination once rendered "
                "(limit %d bytes; %s); lower max_message_bytes to truncate messages instead",
                failures.too_large,
                self._max_entry,
                self._last_error or "see batch_max_bytes and max_queue_bytes",
            )

    def _wake_sender_locked(self, changed: bool) -> None:
        if not changed:
            return
        buffer = self._buffer
        if (
            self._sender_idle
            or self._markers_out
            or buffer.pending >= self._batch_records
            or buffer.pending_bytes >= self._batch_bytes
            or self._queued_bytes >= self._high_water
        ):
            self._sender_cv.notify()

    def _report_caller_drops(self) -> None:
        queue_full = self._queue_full - self._reported_queue_full
        if queue_full > 0 and self.diagnostics.report(
            "queue_full",
            "warning",
            "dropped %d record(s): the queue reached max_queue_bytes=%d (when_full=%r)",
            queue_full,
            self.settings.max_queue_bytes,
            self.settings.when_full,
        ):
            self._reported_queue_full += queue_full
        errors = self._drops["error"] - self._reported_errors
        if errors > 0 and self.diagnostics.report(
            "emit_error",
            "error",
            "dropped %d record(s) that could not be queued (%s)",
            errors,
            self._last_error,
        ):
            self._reported_errors += errors


def _joined(group: list[Rendered]) -> Rendered:
    """The rendered slices of *group* as one."""
    entries: list[bytes] = []
    for rendered in group:
        entries += rendered.entries
    return Rendered(
        entries,
        sum(r.payload for r in group),
        sum(r.too_large for r in group),
        sum(r.failed for r in group),
        next((r.error for r in reversed(group) if r.error), ""),
    )
