"""
:class:`WorkerState`: what the stages of a :class:`~.worker.Worker` share.

The worker's intake (on callers' threads), its writer stage
(:mod:`~structflow.handlers.shipping.writer`) and its sender stage
(:mod:`~structflow.handlers.shipping.sender`) share one lock; under it, the
intake queue, the flush markers, the memory count that ``max_queue_bytes``
bounds and the counters of ``stats()``. The limits derived from the settings
and the sink are fixed at construction. The worker is made of the stages
(:class:`~.writer.WriterStage`, :class:`~.sender.SenderStage`), each a
subclass of :class:`WorkerState`; neither calls the other, they meet only in
this state.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from structflow.handlers.shipping.buffer import Batch, Buffer, MemoryBuffer
from structflow.handlers.shipping.diagnostics import Diagnostics
from structflow.handlers.shipping.settings import WorkerSettings
from structflow.handlers.shipping.sink import Sink
from structflow.handlers.shipping.snapshot import Queued
from structflow.handlers.shipping.spool import Spool

__all__ = ["DROP_REASONS", "Marker", "WorkerState", "make_buffer"]

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
#: A batch holds at most this fraction of ``max_queue_bytes``.
_BATCHES_PER_QUEUE = 2
#: The writer's rendered slices go into the buffer together until they hold
#: this fraction of ``max_queue_bytes`` (or a batch, if smaller). Each push
#: takes the lock and may wake the sender: one per slice costs a large queue
#: a tenth of its throughput, in lock and interpreter hand-offs with the log
#: calls.
_PUSHES_PER_QUEUE = 8


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


class Marker:
    """A flush barrier travelling through the worker."""

    __slots__ = ("delivered", "position", "spooled")

    def __init__(self) -> None:
        self.spooled = threading.Event()
        self.delivered = threading.Event()
        self.position: Any = None


class WorkerState:
    """
    The settings, limits and shared runtime state of one worker.

    Args:
        sink: renders and sends entries.
        settings: the handler's worker settings.
        label: how diagnostics name the handler (no secrets).
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
        # The writer pushes rendered entries into the buffer in groups of this size.
        self._push_bytes = min(self._batch_bytes, s.max_queue_bytes // _PUSHES_PER_QUEUE)
        # Whether log calls pace themselves past the high-water mark (not with
        # when_full = "block", where a full queue makes them wait for room).
        self._paced = s.when_full != "block"
        self.diagnostics = Diagnostics(label)
        self._buffer = make_buffer(s, sink, self.diagnostics, self.dropped)
        limits = [s.max_queue_bytes]
        for limit in (self._buffer.max_entry_bytes, sink.max_entry_bytes):
            if limit:
                limits.append(limit)
        self._max_entry = min(limits)
        self._init_runtime()

    def _init_runtime(self) -> None:
        """Start the shared state afresh: at construction, and in a forked child."""
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
        self._markers_in: list[Marker] = []
        self._markers_out: list[Marker] = []
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
        self._close_marker: Marker | None = None
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

    def dropped(self, reason: str, n: int) -> None:
        """Count *n* records given up for *reason* (one of :data:`DROP_REASONS`)."""
        with self._lock:
            self._drops[reason] += n
