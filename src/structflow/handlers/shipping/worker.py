"""
:class:`Worker`: the intake, writer and sender of one shipping handler.

The stages, the flush barrier and the rules about logging's lock are
described in :mod:`structflow.handlers.shipping`; delivering one batch is
:mod:`~structflow.handlers.shipping.delivery`'s part.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from structflow.handlers.shipping import lifecycle
from structflow.handlers.shipping.buffer import Batch, Buffer, MemoryBuffer
from structflow.handlers.shipping.delivery import Deliverer
from structflow.handlers.shipping.diagnostics import Diagnostics
from structflow.handlers.shipping.lifecycle import worker_threads as _worker_threads
from structflow.handlers.shipping.settings import WorkerSettings
from structflow.handlers.shipping.sink import Rendered, Sink, render_slice
from structflow.handlers.shipping.snapshot import Queued, estimate, record_slices
from structflow.handlers.shipping.spool import Spool

__all__ = ["DROP_REASONS", "Worker", "make_buffer"]

#: Keys of ``stats()["dropped"]``, one per reason a record can be given up.
DROP_REASONS = (
    "queue_full",
    "too_large",
    "rejected",
    "retries_exhausted",
    "encode_error",
    "spool_full",
    "spool_corrupt",
    "spool_error",
    "shutdown",
    "closed",
    "error",
)
#: After being woken, the writer waits this long for more records, so that it
#: renders them in chunks rather than one wake-up (and one notify) per record.
_WRITER_LINGER = 0.001
#: How long after the shutdown deadline the writer, then the sender, may take to stop.
_STOP_GRACE = (0.25, 0.35)
#: Longest a log call waits for the writer to take the records waiting to be
#: rendered, once they fill half of ``max_queue_bytes``.
_PACE_TIMEOUT = 0.02
#: The writer renders (and prepares for its buffer) this many records at a time.
_RENDER_SLICE = 64
#: A batch holds at most this fraction of ``max_queue_bytes``.
_BATCHES_PER_QUEUE = 2

_get_ident = threading.get_ident
_monotonic = time.monotonic
_sleep = time.sleep
# What the writer takes when the intake is empty (never appended to).
_NO_ITEMS: deque[Any] = deque(maxlen=0)


def _yield() -> None:
    _sleep(0)


def make_buffer(
    settings: WorkerSettings,
    sink: Sink,
    diagnostics: Diagnostics,
    count_drop: Callable[[str, int], None],
) -> Buffer:
    """The buffer the settings ask for: the on-disk spool with ``spool_dir``, else memory."""
    if not settings.spool_dir:
        return MemoryBuffer()
    return Spool(
        settings.spool_dir,
        sink.identity,
        settings.spool_max_bytes,
        settings.fsync,
        settings.fsync_interval,
        diagnostics.report,
        count_drop,
    )


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


class _Marker:
    """A flush barrier travelling through the worker."""

    __slots__ = ("delivered", "position", "spooled")

    def __init__(self) -> None:
        self.spooled = threading.Event()
        self.delivered = threading.Event()
        self.position: Any = None


class Worker:
    """
    Batches, buffers and delivers the records of one shipping handler.

    Args:
        sink: renders and sends entries.
        settings: the handler's worker settings.
        label: how diagnostics name the handler (no secrets).

    .. versionadded:: 0.1.0
    """

    def __init__(self, sink: Sink, settings: WorkerSettings, label: str) -> None:
        self.sink = sink
        self.settings = settings
        self.label = label
        s = settings
        self._batch_records = min(
            s.batch_max_records, sink.max_batch_records or s.batch_max_records
        )
        # A batch in flight is not counted against the queue, which refills
        # meanwhile; it is bounded by half the queue, so the memory held stays
        # within 1.5 x max_queue_bytes plus the request body.
        self._batch_bytes = min(
            s.batch_max_bytes,
            sink.max_batch_bytes or s.batch_max_bytes,
            max(1024, s.max_queue_bytes // _BATCHES_PER_QUEUE),
        )
        self._max_queue = s.max_queue_bytes
        # Past this the sender sends what waits without waiting for a full
        # batch or flush_interval, and each log call yields the interpreter.
        self._high_water = s.max_queue_bytes // 2
        self.diagnostics = Diagnostics(label)
        self._buffer = make_buffer(s, sink, self.diagnostics, self.dropped)
        self._deliverer = Deliverer(sink, s, self.diagnostics, self)
        limits = [s.max_queue_bytes]
        for limit in (self._buffer.max_entry_bytes, sink.max_entry_bytes):
            if limit:
                limits.append(limit)
        self._max_entry = min(limits)
        self._init_runtime()
        lifecycle.register(self)
        self._start_threads()

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._writer_cv = threading.Condition(self._lock)
        self._sender_cv = threading.Condition(self._lock)
        self._space_cv = threading.Condition(self._lock)
        self._taken_cv = threading.Condition(self._lock)
        self._pacing = 0  # log calls waiting on _taken_cv
        self._intake: deque[Queued] = deque()
        self._intake_bytes = 0
        # What the intake, the records being written and the buffer hold in
        # memory: what max_queue_bytes bounds.
        self._queued_bytes = 0
        self._writer_idle = False
        self._sender_idle = False
        self._markers_in: list[_Marker] = []
        self._markers_out: list[_Marker] = []
        self._accepted = 0
        self._queue_full = 0
        self._counts = {
            "delivered": 0,
            "retried": 0,
            "spooled": 0,
            "adopted": 0,
            "delivered_bytes": 0,
        }
        self._drops = dict.fromkeys(DROP_REASONS, 0)
        self._reported_queue_full = 0
        self._reported_errors = 0
        self._last_error = ""
        self._state = "running"  # running -> closing -> closed
        self._deadline: float | None = None
        self._close_marker: _Marker | None = None
        self._close_ok = True
        self._shutdown_drops_before = 0
        self._stop_writer = False
        self._writer_done = False
        self._interrupt = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = False
        self._space_waiters = 0
        self._inflight: Batch | None = None
        # Entries of the batch in flight neither delivered nor given up yet.
        self._unsettled = 0

    # --- threads ------------------------------------------------------------

    def _start_threads(self) -> None:
        with self._lock:
            self._start_threads_locked()

    def _start_threads_locked(self) -> None:
        if self._started or self._state == "closed":
            return
        self._started = True
        short = self.label.split("(", 1)[0]
        for name, target in (("writer", self._writer_main), ("sender", self._sender_main)):
            thread = threading.Thread(target=target, name=f"structflow-{short}-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    # --- intake (callers' threads) -----------------------------------------

    def put(self, record: Queued, size: int) -> None:
        """
        Queue a snapshot record; apply ``when_full`` when the queue is full.

        *record* may also be the attributes of a snapshot of a structflow
        ``LogRecord`` (see :data:`~structflow.handlers.shipping.snapshot.Queued`).
        """
        with self._lock:
            # Every record handed over counts, even one dropped at once: it
            # is then delivered or counted in exactly one drop reason.
            self._accepted += 1
            if self._state != "running":
                self._drops["closed"] += 1
                return
            if not self._started:
                self._start_threads_locked()
            if self._queued_bytes + size > self._max_queue and not self._make_room(size):
                if self._writer_idle:
                    self._writer_idle = False
                    self._writer_cv.notify()
                return
            self._intake.append(record)
            intake = self._intake_bytes = self._intake_bytes + size
            queued = self._queued_bytes = self._queued_bytes + size
            if self._writer_idle:
                self._writer_idle = False
                self._writer_cv.notify()
            if intake > self._high_water and _get_ident() not in _worker_threads:
                # The records waiting to be rendered alone fill half the
                # queue: the writer is behind (threads logging at once keep
                # it from the GIL). Wait, briefly, until it takes them,
                # rather than let the queue overflow while the receiver is
                # healthy; the writer never waits for the receiver.
                self._pacing += 1
                self._taken_cv.wait(_PACE_TIMEOUT)
                self._pacing -= 1
                return
        if queued > self._high_water and _get_ident() not in _worker_threads:
            # Past the high-water mark each call yields the interpreter once
            # (no waiting on I/O or locks), which lets the worker's threads
            # run instead of records being dropped.
            _yield()

    def _make_room(self, size: int) -> bool:
        """Apply ``when_full`` (lock held); return whether the record may be queued."""
        limit = self.settings.max_queue_bytes
        if size > limit:
            self._drops["too_large"] += 1
            return False
        policy = self.settings.when_full
        if policy == "drop_oldest":
            need = self._queued_bytes + size - limit
            dropped, freed = self._buffer.drop_oldest(need)
            need -= freed
            self._queued_bytes -= freed
            intake = self._intake
            while need > 0 and intake:
                old = estimate(intake.popleft())
                need -= old
                self._queued_bytes -= old
                self._intake_bytes -= old
                dropped += 1
            if need > 0:
                # What is left is in the writer's or sender's hands.
                self._queue_full += dropped + 1
                return False
            self._queue_full += dropped
            return True
        if policy == "block" and _get_ident() not in _worker_threads:
            deadline = _monotonic() + self.settings.block_timeout
            self._space_waiters += 1
            try:
                while self._queued_bytes + size > limit:
                    remaining = deadline - _monotonic()
                    if remaining <= 0 or self._state != "running":
                        break
                    self._space_cv.wait(remaining)
                else:
                    return True
            finally:
                self._space_waiters -= 1
        self._queue_full += 1
        return False

    def dropped(self, reason: str, n: int) -> None:
        """Count *n* records given up for *reason* (one of :data:`DROP_REASONS`)."""
        with self._lock:
            self._drops[reason] += n

    # --- the writer thread --------------------------------------------------

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
            if self._intake or self._markers_in or self._stop_writer:
                return
            self._writer_idle = True
            self._writer_cv.wait(self._buffer.idle_tick)
            self._writer_idle = False
            # No lingering when a slice is already there, or when callers
            # wait for room (a small queue): waiting only delays them.
            linger = (
                not self._markers_in
                and not self._stop_writer
                and len(self._intake) < _RENDER_SLICE
                and self._queued_bytes < self._high_water
                and not self._space_waiters
            )
        if linger:
            _sleep(_WRITER_LINGER)

    def _take_intake(self) -> tuple[deque[Queued], int, list[_Marker], bool]:
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
            markers: list[_Marker] = []
            if self._markers_in:
                markers, self._markers_in = self._markers_in, []
            return items, estimated, markers, self._stop_writer

    def _write(self, items: deque[Queued], estimated: int, markers: list[_Marker]) -> None:
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
        try:
            for part in record_slices(items, _RENDER_SLICE):
                rendered = render_slice(self.sink, part, self._max_entry)
                failures.add(rendered)
                # The estimate was summed over the whole intake; each slice
                # releases its share, and the last one the rest.
                share = estimated * (done + len(part)) // total - released
                self._push(rendered, share)
                done += len(part)
                released += share
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
        """Put one rendered slice into the buffer and account for it (its records: *estimated*)."""
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

    # --- the sender thread --------------------------------------------------

    def _sender_main(self) -> None:
        _worker_threads.add(_get_ident())
        try:
            while True:
                batch: Batch | None = None
                try:
                    batch = self._next_batch()
                    if batch is None:
                        return
                    left = self._deliverer.deliver(batch.entries)
                    self._finish(batch, left)
                except Exception as exc:  # never let the thread die
                    self.diagnostics.report("internal", "error", "sender failed: %r", exc)
                    if batch is not None:
                        self._give_up(batch)
                    time.sleep(0.05)
        finally:
            with self._lock:
                self._resolve_markers_locked()
                stopped = self._state != "running"
            if stopped:
                # close() did not wait for this thread: release its connection now.
                with contextlib.suppress(Exception):
                    self.sink.close()
            _worker_threads.discard(_get_ident())

    def _give_up(self, batch: Batch) -> None:
        """Account for a batch an unexpected error interrupted (never lose it silently)."""
        try:
            if not self._claim(batch):
                return
            lost, freed = self._buffer.release(batch, self._unsettled)
            with self._lock:
                self._queued_bytes -= freed
                self._drops["error"] += lost
                self._resolve_markers_locked()
        except Exception as exc:
            self.diagnostics.report("internal", "error", "could not account for a batch: %r", exc)

    def _next_batch(self) -> Batch | None:
        """Wait for the next batch that is due and take it; None when the sender is to stop."""
        buffer = self._buffer
        while True:
            if not self._wait_for_batch():
                return None
            urgent = buffer.urgent
            batch = buffer.take(self._batch_records, self._batch_bytes, self.sink.entry_overhead)
            if batch is not None:
                with self._lock:
                    self._counts["adopted"] += batch.adopted
                    self._queued_bytes -= batch.cost
                    if self._space_waiters and batch.cost:
                        self._space_cv.notify_all()
                    self._unsettled = len(batch.entries)
                    self._inflight = batch
                return batch
            if not urgent:
                # Nothing readable right now (caught up, or a corrupt tail was
                # skipped): wait for the writer instead of spinning.
                with self._lock:
                    self._resolve_markers_locked()
                    if self._state != "running" and self._writer_done and not buffer.has_pending():
                        return None
                    self._sender_idle = True
                    self._sender_cv.wait(0.05 if buffer.has_pending() else 0.5)
                    self._sender_idle = False

    def _wait_for_batch(self) -> bool:
        """
        Wait until a batch is due; return False when the sender is to stop instead.

        A batch is due when it is full (records or bytes), when its oldest
        entry has waited ``flush_interval``, when the queue is more than half
        full (waiting for more would make it overflow), when entries left by
        a process that ended wait, and at once while a flush or the close waits.
        """
        buffer = self._buffer
        with self._lock:
            while True:
                self._resolve_markers_locked()
                records, nbytes, oldest = buffer.pending, buffer.pending_bytes, buffer.oldest
                urgent = buffer.urgent
                closing = self._state != "running"
                if closing and self._past_deadline():
                    return False
                wait: float | None = None
                if records or urgent:
                    if (
                        urgent
                        or closing
                        or self._markers_out
                        or records >= self._batch_records
                        or nbytes >= self._batch_bytes
                        or self._queued_bytes >= self._high_water
                        or oldest is None
                    ):
                        return True
                    wait = self.settings.flush_interval - (_monotonic() - oldest)
                    if wait <= 0:
                        return True
                elif closing and self._writer_done:
                    return False
                self._sender_idle = wait is None
                self._sender_cv.wait(wait if wait is None else max(wait, 0.001))
                self._sender_idle = False

    def _past_deadline(self) -> bool:
        deadline = self._deadline
        return deadline is not None and _monotonic() >= deadline

    def _resolve_markers_locked(self) -> None:
        markers = self._markers_out
        if not markers:
            return
        resolved = self._buffer.resolved
        done = 0
        for marker in markers:
            if not resolved(marker.position):
                break
            marker.delivered.set()
            done += 1
        if done:
            del markers[:done]

    # --- what the deliverer reports (sender thread) -------------------------

    def attempt_timeout(self) -> float:
        """Seconds one attempt may take: the sink's timeout, cut at shutdown's deadline."""
        timeout = self.sink.timeout
        deadline = self._deadline
        if deadline is not None and self._state != "running":
            timeout = min(timeout, deadline - _monotonic())
        return timeout

    def pause(self, delay: float) -> bool:
        """Wait before a retry; return False when shutdown's deadline cuts the wait."""
        deadline = self._deadline
        if deadline is not None and self._state != "running":
            remaining = deadline - _monotonic()
            if remaining <= 0:
                return False
            if delay >= remaining:
                self._interrupt.wait(remaining)
                return False
        end = _monotonic() + delay
        while True:
            left = end - _monotonic()
            if left <= 0:
                return True
            self._interrupt.wait(left)
            deadline = self._deadline
            if deadline is not None and self._state != "running" and end > deadline:
                self._interrupt.wait(max(0.0, deadline - _monotonic()))
                return False
            if self._interrupt.is_set():
                self._interrupt.clear()

    def delivered(self, n: int, nbytes: int) -> None:
        with self._lock:
            if self._state == "closed":
                return  # the close counted the batch as abandoned
            self._counts["delivered"] += n
            self._counts["delivered_bytes"] += nbytes
            self._unsettled -= n

    def gave_up(self, reason: str, n: int) -> None:
        with self._lock:
            if self._state == "closed":
                return
            self._drops[reason] += n
            self._unsettled -= n

    def retried(self, n: int) -> None:
        with self._lock:
            self._counts["retried"] += n

    def _claim(self, batch: Batch) -> bool:
        """
        Take the accounting of *batch* over from the close; False when the close has it.

        Exactly one of the sender (here) and :meth:`_drop_leftovers` (for a
        batch abandoned at shutdown) accounts for the batch in flight.
        """
        with self._lock:
            if self._inflight is not batch:
                return False
            self._inflight = None
            return True

    def _finish(self, batch: Batch, left: int) -> None:
        """Hand a batch back to the buffer: delivered, or *left* entries not (at shutdown)."""
        if not self._claim(batch):
            return
        buffer = self._buffer
        if left:
            lost, freed = buffer.release(batch, left)
        else:
            lost, freed = 0, buffer.complete(batch)
        with self._lock:
            self._queued_bytes -= freed
            self._drops["shutdown"] += lost
            if self._space_waiters:
                self._space_cv.notify_all()
            self._resolve_markers_locked()

    # --- flush, close, stats -----------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """
        Wait until every record accepted before the call is delivered.

        Returns:
            True once they are all delivered (or given up and counted in
            ``stats()["dropped"]``); False when *timeout* passed first, or
            when called from a worker thread.
        """
        if _get_ident() in _worker_threads:
            return False
        marker = self.request_flush()
        if marker is None:
            return self._close_ok
        if not marker.delivered.wait(timeout):
            return marker.delivered.is_set()
        return True

    def request_flush(self) -> _Marker | None:
        """Start a flush without waiting for it; return its marker."""
        with self._lock:
            if self._state == "closed":
                return None
            if not self._started:
                self._start_threads_locked()
            marker = _Marker()
            self._markers_in.append(marker)
            if self._writer_idle:
                self._writer_idle = False
                self._writer_cv.notify()
            return marker

    def begin_close(self, deadline: float) -> None:
        """Stop accepting records and start the final flush, due by *deadline*."""
        with self._lock:
            if self._state != "running":
                return
            if not self._started:
                # Never used in this process (a forked child that did not log):
                # nothing to deliver, no thread to stop.
                self._state = "closed"
                lifecycle.forget(self)
                return
            marker = _Marker()
            self._markers_in.append(marker)
            self._close_marker = marker
            self._shutdown_drops_before = self._drops["shutdown"]
            self._state = "closing"
            self._deadline = deadline
            self._writer_cv.notify_all()
            self._sender_cv.notify_all()
            self._space_cv.notify_all()
            self._taken_cv.notify_all()

    def finish_close(self) -> bool:
        """
        Wait for the final flush (until the deadline), then stop the threads.

        Returns:
            Whether every record was delivered. Otherwise, with a spool the
            rest stays on disk for the next process; without one it is
            counted as dropped (``shutdown``) and reported.
        """
        marker = self._close_marker
        deadline = self._deadline
        if marker is None or deadline is None or self._state == "closed":
            if self._state == "closed" and not self._started:
                self._close_buffer()
            return self._close_ok
        ok = marker.delivered.wait(max(0.0, deadline - _monotonic()))
        sender_alive = self._stop_threads(ok, deadline)
        lost = self._drop_leftovers(sender_alive)
        kept = self._close_buffer()
        if not sender_alive:
            with contextlib.suppress(Exception):
                self.sink.close()
        self._report_close(lost, 0 if ok else kept)
        lifecycle.forget(self)
        self._close_ok = ok
        return ok

    def _stop_threads(self, ok: bool, deadline: float) -> bool:
        """Tell the threads to stop and wait for them; return whether the sender is still busy."""
        with self._lock:
            self._stop_writer = True
            if not ok:
                self._deadline = min(deadline, _monotonic())
            self._writer_cv.notify_all()
            self._sender_cv.notify_all()
        self._interrupt.set()
        # Past the deadline the writer still gets a moment to spool what it
        # holds, and the sender to return from its attempt (cut to the
        # deadline). The waits end at fixed times after the deadline, so
        # workers closed together (which share it) stop together.
        for thread, grace in zip(self._threads, _STOP_GRACE, strict=False):
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline + grace - _monotonic()))
        return any(t.is_alive() for t in self._threads[1:])

    def _drop_leftovers(self, sender_alive: bool) -> int:
        """Drop what cannot outlive the process; return how many records shutdown lost."""
        with self._lock:
            lost, freed = self._buffer.clear()
            self._queued_bytes -= freed
            if sender_alive and self._inflight is not None:
                # The batch in flight, minus what was settled of it already.
                lost += min(self._buffer.abandoned(), self._unsettled)
                self._inflight = None  # accounted for: see _claim
            lost += len(self._intake)
            self._intake.clear()
            self._intake_bytes = 0
            self._drops["shutdown"] += lost
            self._state = "closed"
            for waiting in self._markers_in + self._markers_out:
                waiting.spooled.set()
            self._space_cv.notify_all()
            self._taken_cv.notify_all()
            # With what the sender gave back itself while stopping.
            return self._drops["shutdown"] - self._shutdown_drops_before

    def _close_buffer(self) -> int:
        """Close the buffer; return how many undelivered records it keeps for the next process."""
        try:
            return self._buffer.close()
        except Exception as exc:
            self.diagnostics.report("spool_io", "error", "cannot close the spool: %r", exc)
            return 0

    def _report_close(self, lost: int, kept: int) -> None:
        if lost:
            self.diagnostics.report(
                "shutdown",
                "warning",
                "%d record(s) not delivered within shutdown_timeout=%gs; dropped "
                "(set spool_dir to keep them)",
                lost,
                self.settings.shutdown_timeout,
            )
        if kept:
            self.diagnostics.report(
                "shutdown_spool",
                "warning",
                "%d record(s) not delivered within shutdown_timeout=%gs stay in spool_dir %s "
                "for the next process",
                kept,
                self.settings.shutdown_timeout,
                self.settings.spool_dir,
            )

    def close(self, timeout: float | None = None) -> bool:
        """Flush with a deadline of *timeout* (default ``shutdown_timeout``) and stop."""
        if timeout is None:
            timeout = self.settings.shutdown_timeout
        self.begin_close(_monotonic() + timeout)
        return self.finish_close()

    @property
    def closed(self) -> bool:
        return self._state == "closed"

    def stats(self) -> dict[str, Any]:
        """Return the worker's counters (see ``ShippingHandler.stats``)."""
        with self._lock:
            dropped = dict(self._drops)
            dropped["queue_full"] += self._queue_full
            return {
                "accepted": self._accepted,
                "delivered": self._counts["delivered"],
                "retried": self._counts["retried"],
                "spooled": self._counts["spooled"],
                "adopted": self._counts["adopted"],
                "dropped": dropped,
                "queued_bytes": self._queued_bytes,
                "delivered_bytes": self._counts["delivered_bytes"],
                "spool_fallback": self._buffer.fallback,
                "spool_skipped": self._buffer.skipped,
            }

    def count_error(self, exc: BaseException) -> None:
        """Count a record that could not even be queued (emit failed)."""
        with self._lock:
            self._accepted += 1
            self._drops["error"] += 1
            self._last_error = f"{type(exc).__name__}: {exc}"

    # --- fork ---------------------------------------------------------------

    def after_fork_in_child(self) -> None:
        """Start afresh in a forked child: empty queue, no threads, the parent's files untouched."""
        closed = self._state == "closed"
        with contextlib.suppress(Exception):
            self.sink.after_fork_in_child()
        self._buffer.after_fork_in_child()
        self.diagnostics.reset_after_fork()
        self._init_runtime()
        if closed:
            self._state = "closed"
