"""
:class:`SenderStage`: the worker's sender thread, from the buffer to the receiver.

The sender waits until a batch is due (full, old enough, the queue half
full, adopted records waiting, or a flush or the close waiting), takes it
from the buffer and hands it to its
:class:`~structflow.handlers.shipping.delivery.Deliverer`, one batch in
flight at a time, so order is kept. It implements the deliverer's
:class:`~structflow.handlers.shipping.delivery.Tally` (counters, and the
shutdown deadline that cuts attempts and retry waits), hands each batch
back to the buffer once it is settled, and releases the flush markers whose
position is resolved.
"""

from __future__ import annotations

import contextlib
import threading
import time

from structflow.handlers.shipping.buffer import Batch
from structflow.handlers.shipping.delivery import Deliverer
from structflow.handlers.shipping.lifecycle import worker_threads as _worker_threads
from structflow.handlers.shipping.state import WorkerState

__all__ = ["SenderStage"]

_get_ident = threading.get_ident
_monotonic = time.monotonic


class SenderStage(WorkerState):
    """The sender thread of a worker, and the :class:`~.delivery.Tally` its deliverer reports to."""

    #: Set by the worker, which is the tally it reports to.
    _deliverer: Deliverer

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
            if self._space_waiters and freed:
                self._space_cv.notify_all()
            self._resolve_markers_locked()
