"""
The process around the workers: fork, interpreter exit, multiprocessing children, logging's lock.

* Every live worker is registered here; at interpreter exit (before
  ``logging.shutdown``, which was registered earlier), and when
  ``logging.shutdown()`` is called by hand, they are all closed, each
  against its ``shutdown_timeout``, started together: they drain in
  parallel, not one after another.
* After ``os.fork()`` the child's copies of the workers forget the parent's
  queue, threads and connections.
* A forked multiprocessing child leaves with ``os._exit`` (no atexit), so its
  workers are closed by one of multiprocessing's own finalizers.
* The threads of every live worker are listed: records made on them
  (diagnostics, urllib3's debug logs) are never shipped, by any handler.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import time
import weakref
from typing import Protocol

from structflow.handlers.shipping.settings import WorkerSettings

__all__ = [
    "Managed",
    "begin_close_all",
    "called_by_logging_shutdown",
    "close_all",
    "forget",
    "holding_logging_lock",
    "register",
    "worker_threads",
]


class Managed(Protocol):
    """What this module does with a worker."""

    settings: WorkerSettings

    def begin_close(self, deadline: float) -> None: ...

    def finish_close(self) -> bool: ...

    def after_fork_in_child(self) -> None: ...


#: Thread idents of every live worker's threads.
worker_threads: set[int] = set()
_live: weakref.WeakSet[Managed] = weakref.WeakSet()
_mp_hooked_pid: int | None = None


def register(worker: Managed) -> None:
    """Close *worker* at exit, and reset it in forked children."""
    _live.add(worker)
    _register_multiprocessing(worker)


def forget(worker: Managed) -> None:
    """*worker* is closed: nothing is left to do for it."""
    _live.discard(worker)


def _after_fork_in_child() -> None:
    worker_threads.clear()
    for worker in list(_live):
        worker.after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


def begin_close_all() -> list[Managed]:
    """
    Start closing every live worker, all at once, each due ``shutdown_timeout`` from now.

    They then drain in parallel: however many there are, closing them all
    ends within the longest ``shutdown_timeout`` (plus a fraction of a
    second for the threads to stop). Workers already closing keep their
    deadline. Returns the workers started.
    """
    workers = list(_live)
    start = time.monotonic()
    for worker in workers:
        with contextlib.suppress(Exception):
            worker.begin_close(start + worker.settings.shutdown_timeout)
    return workers


def close_all() -> None:
    """
    Close every live worker, all draining at once (see :func:`begin_close_all`).

    Runs at interpreter exit (before ``logging.shutdown``, which was
    registered earlier), at the end of a multiprocessing child, and from the
    first shipping handler that ``logging.shutdown()`` flushes.
    """
    for worker in begin_close_all():
        with contextlib.suppress(Exception):
            worker.finish_close()


atexit.register(close_all)


def _register_multiprocessing(worker: Managed) -> None:
    """
    Close workers at the end of a forked multiprocessing child too.

    Such children leave with ``os._exit`` (no atexit), after running
    multiprocessing's finalizers; the finalizer registry is cleared when the
    child starts, so the finalizer is registered from an after-fork hook.
    """
    try:
        from multiprocessing import util
    except Exception:  # a stripped-down interpreter
        return
    util.register_after_fork(worker, _hook_multiprocessing_child)


def _hook_multiprocessing_child(_worker: Managed) -> None:
    global _mp_hooked_pid
    if _mp_hooked_pid == os.getpid():
        return
    _mp_hooked_pid = os.getpid()
    from multiprocessing import util

    util.Finalize(None, close_all, exitpriority=0)


def holding_logging_lock() -> bool:
    """Whether this thread holds logging's module lock (as inside ``dictConfig``)."""
    lock = getattr(logging, "_lock", None)
    is_owned = getattr(lock, "_is_owned", None)
    if is_owned is None:
        return False
    try:
        return bool(is_owned())
    except Exception:
        return False


def called_by_logging_shutdown() -> bool:
    """Whether the function calling this one was called by ``logging.shutdown`` (at exit)."""
    code = logging.shutdown.__code__
    frame = sys._getframe(2)
    for _ in range(3):
        if frame is None:
            return False
        if frame.f_code is code:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False
