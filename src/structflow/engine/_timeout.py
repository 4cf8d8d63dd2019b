"""
Running a task's code with a time limit (``@task(timeout=...)``).

Python cannot stop a thread, so the code runs in a thread of its own, in a
copy of the caller's context, and the caller waits for it up to the limit.
On expiry the caller raises :class:`TaskTimeoutError` and the thread is left
to finish in the background. Its context is the copy it started with, so
what it logs or prints afterwards still carries the run context of the try
that timed out and is never attributed to a later task run.
"""

from __future__ import annotations

import contextvars
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

__all__ = ["TaskTimeoutError", "call_with_timeout"]


class TaskTimeoutError(TimeoutError):
    """
    A try of a task run did not finish within the task's ``timeout``.

    Attributes:
        timeout: the limit, in seconds.
        stack: where the task's code was when the time ran out (formatted
            like a traceback), or None if its thread had just finished.

    .. versionadded:: 0.1.0
    """

    def __init__(self, message: str, timeout: float, stack: str | None = None) -> None:
        super().__init__(message)
        self.timeout = timeout
        self.stack = stack

    def __reduce__(self) -> tuple[Any, ...]:
        # Crosses back from Dask workers inside the TimedOut state.
        return (type(self), (str(self), self.timeout, self.stack))


def _stack_of(thread: threading.Thread) -> str | None:
    frame = sys._current_frames().get(thread.ident or -1)
    if frame is None:
        return None
    return "".join(traceback.format_stack(frame))


def call_with_timeout(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    timeout: float,
    name: str,
) -> Any:
    """
    Return ``fn(*args, **kwargs)``, run in a thread of its own for at most *timeout* seconds.

    An exception from *fn* is raised here. *name* (the task run's name)
    names the thread and the error.

    Raises:
        TaskTimeoutError: *fn* is still running after *timeout* seconds.
    """
    ctx = contextvars.copy_context()
    outcome: list[tuple[bool, Any]] = []
    finished = threading.Event()

    def body() -> None:
        try:
            outcome.append((True, ctx.run(fn, *args, **kwargs)))
        except BaseException as exc:  # re-raised in the waiting thread, SystemExit too
            outcome.append((False, exc))
        finally:
            finished.set()

    thread = threading.Thread(target=body, name=f"structflow-timeout[{name}]", daemon=True)
    thread.start()
    if not finished.wait(timeout):
        raise TaskTimeoutError(
            f"Task {name!r} did not finish within its timeout of {timeout:g} s; "
            f"its code keeps running in a background thread",
            timeout,
            _stack_of(thread),
        )
    ok, value = outcome[0]
    if ok:
        return value
    try:
        raise value
    finally:
        # The exception's traceback refers to this frame: break the cycle.
        value = None
        outcome.clear()
