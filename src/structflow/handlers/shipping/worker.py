"""
:class:`Worker`: the intake, writer and sender of one shipping handler.

The stages, the flush barrier and the rules about logging's lock are
described in :mod:`structflow.handlers.shipping`. The worker is its intake
(:meth:`Worker.put`, on callers' threads), flush, close and counters; its
threads are :mod:`~structflow.handlers.shipping.writer`'s and
:mod:`~structflow.handlers.shipping.sender`'s, and what they share is
:mod:`~structflow.handlers.shipping.state`'s. Delivering one batch is
:mod:`~structflow.handlers.shipping.delivery`'s part.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from structflow.handlers.shipping import lifecycle
from structflow.handlers.shipping.delivery import Deliverer
from structflow.handlers.shipping.lifecycle import worker_threads as _worker_threads
from structflow.handlers.shipping.sender import SenderStage
from structflow.handlers.shipping.settings import WorkerSettings
from structflow.handlers.shipping.sink import Sink
from structflow.handlers.shipping.snapshot import Queued, estimate
from structflow.handlers.shipping.state import DROP_REASONS, Marker, make_buffer
from structflow.handlers.shipping.writer import WriterStage

__all__ = ["DROP_REASONS", "Worker", "make_buffer"]

#: How long after the shutdown deadline the writer, then the sender, may take to stop.
_STOP_GRACE = (0.25, 0.35)
#: Longest a log call waits for the writer to take the records waiting to be
#: rendered, once they fill half of ``max_queue_bytes`` (but with
#: ``when_full="block"``, where a full queue makes it wait for room instead).
_PACE_TIMEOUT = 0.02

_get_ident = threading.get_ident
_monotonic = time.monotonic
_sleep = time.sleep


def _yield() -> None:
    _sleep(0)


class Worker(WriterStage, SenderStage):
    """
    Batches, buffers and delivers the records of one shipping handler.

    Args:
        sink: renders and sends entries.
        settings: the handler's worker settings.
        label: how diagnostics name the handler (no secrets).

    .. versionadded:: 0.1.0
    """

    def __init__(self, sink: Sink, settings: WorkerSettings, label: str) -> None:
        super().__init__(sink, settings, label)
        self._deliverer = Deliverer(sink, settings, self.diagnostics, self)
        lifecycle.register(self)
        self._start_threads()

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
            # Not with when_full = "block" (self._paced is false): a full queue
            # makes the call wait for room, which paces it; waiting or yielding
            # before that only competes with the worker's threads for the
            # interpreter.
            if intake > self._high_water and self._paced and _get_ident() not in _worker_threads:
                # The records waiting to be rendered alone fill half the
                # queue: the writer is behind (threads logging at once keep
                # it from the GIL). Wait, briefly, until it takes them,
                # rather than let the queue overflow while the receiver is
                # healthy; the writer never waits for the receiver.
                self._pacing += 1
                self._taken_cv.wait(_PACE_TIMEOUT)
                self._pacing -= 1
                return
        if queued > self._high_water and self._paced and _get_ident() not in _worker_threads:
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

    def request_flush(self) -> Marker | None:
        """Start a flush without waiting for it; return its marker."""
        with self._lock:
            if self._state == "closed":
                return None
            if not self._started:
                self._start_threads_locked()
            marker = Marker()
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
            marker = Marker()
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
        # The sender's last attempt, cut at the deadline, can give its batch
        # up (counted as shutdown) and so resolve the final flush just before
        # the wait above ends: those records were not delivered either.
        ok = ok and not lost
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
