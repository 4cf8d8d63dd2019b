"""
States of task runs and flow runs.

A run moves through ``Pending`` -> ``Running`` -> a finished state. The
finished states a user meets are :class:`Success` (and its mapped form
:class:`Mapped`, and :class:`Skipped`), :class:`Failed` and
:class:`TriggerFailed` (an upstream task did not succeed), and
:class:`TimedOut` (a try ran past the task's ``timeout``). :class:`Retrying`
sits between two tries of a task, and :class:`Looped` between two
iterations of a task that raised ``LOOP``.

States travel between processes when a Dask executor runs the task, so they
pickle; an exception that cannot be pickled is replaced by a
:class:`RemoteTaskError` that keeps its type name and message.
"""

from __future__ import annotations

import importlib
import pickle
from datetime import datetime
from typing import Any

__all__ = [
    "Cached",
    "Failed",
    "Finished",
    "Looped",
    "Mapped",
    "Pending",
    "RemoteTaskError",
    "Retrying",
    "Running",
    "Skipped",
    "State",
    "Success",
    "TimedOut",
    "TriggerFailed",
]


class State:
    """
    The state of a task run or a flow run.

    Args:
        message: a human-readable note about how the run got here.
        result: the value the run produced; for a flow run, a ``dict`` mapping
            each task to its final state; for a failed task, the exception.

    .. versionadded:: 0.1.0
    """

    def __init__(self, message: str | None = None, result: Any = None) -> None:
        self.message = message
        self.result = result

    def __repr__(self) -> str:
        if self.message:
            return f"<{type(self).__name__}: {self.message!r}>"
        return f"<{type(self).__name__}>"

    def is_pending(self) -> bool:
        """Return True if the run has not started (or waits to be retried)."""
        return isinstance(self, Pending)

    def is_running(self) -> bool:
        """Return True if the run is in progress."""
        return isinstance(self, Running)

    def is_finished(self) -> bool:
        """Return True if the run reached a final state."""
        return isinstance(self, Finished)

    def is_successful(self) -> bool:
        """Return True if the run succeeded."""
        return isinstance(self, Success)

    def is_failed(self) -> bool:
        """Return True if the run failed, including when an upstream task failed."""
        return isinstance(self, Failed)

    def is_retrying(self) -> bool:
        """Return True if the run failed and will be tried again."""
        return isinstance(self, Retrying)

    def is_mapped(self) -> bool:
        """Return True for the state of a mapped task (one child run per item)."""
        return isinstance(self, Mapped)

    def is_cached(self) -> bool:
        """Return True for a result kept by ``cache_for`` (or taken from the cache)."""
        return isinstance(self, Cached)

    def is_looped(self) -> bool:
        """Return True between two iterations of a looping task (``LOOP``)."""
        return isinstance(self, Looped)

    def is_skipped(self) -> bool:
        """Return True if the task was skipped (a ``SKIP`` signal, or an upstream task skipped)."""
        return isinstance(self, Skipped)


class Pending(State):
    """
    The run has not started yet.

    .. versionadded:: 0.1.0
    """


class Running(State):
    """
    The run is in progress.

    .. versionadded:: 0.1.0
    """


class Finished(State):
    """
    Base class of the final states.

    .. versionadded:: 0.1.0
    """


class Success(Finished):
    """
    The run succeeded; ``result`` is the value it returned.

    .. versionadded:: 0.1.0
    """


class Mapped(Success):
    """
    Every child run of a mapped task succeeded.

    ``result`` is the list of the children's results, in map order, and
    ``map_states`` the list of their states.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        message: str | None = None,
        result: Any = None,
        *,
        map_states: list[State] | None = None,
    ) -> None:
        super().__init__(message=message, result=result)
        self.map_states: list[State] = list(map_states or [])


class Looped(Finished):
    """
    A task run raised ``LOOP``: it runs again at once, with ``result`` as
    ``structflow.context.task_loop_result``. State handlers see it between
    two iterations; a flow run's result never holds it.

    Args:
        message: the signal's message.
        result: the value the next iteration gets.
        loop_count: the iteration that raised it (1 for the first).

    .. versionadded:: 0.1.0
    """

    def __init__(
        self, message: str | None = None, result: Any = None, *, loop_count: int = 1
    ) -> None:
        super().__init__(message=message, result=result)
        self.loop_count = loop_count


class Cached(Success):
    """
    A task run's result kept for later runs (``cache_for``), or taken from there.

    Args:
        message: the run's message.
        result: the task's result.
        cached_inputs: the arguments of the run that made it, by name.
        cached_parameters: that flow run's parameters.
        cached_result_expiration: when it stops being valid (aware UTC).

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        message: str | None = None,
        result: Any = None,
        *,
        cached_inputs: dict[str, Any] | None = None,
        cached_parameters: dict[str, Any] | None = None,
        cached_result_expiration: datetime | None = None,
    ) -> None:
        super().__init__(message=message, result=result)
        self.cached_inputs = cached_inputs
        self.cached_parameters = cached_parameters
        self.cached_result_expiration = cached_result_expiration


class Skipped(Success):
    """
    The task was skipped: it raised ``structflow.engine.signals.SKIP``, or an
    upstream task was skipped and ``skip_on_upstream_skip`` is true (the
    default). A success for the tasks downstream and for the flow run, as in
    Prefect 1; ``result`` is the signal's ``result`` (None by default).

    .. versionadded:: 0.1.0
    """


class RemoteTaskError(Exception):
    """
    Stands in for a task's exception that could not be sent between processes.

    Its message is ``"<type name>: <original message>"``.

    .. versionadded:: 0.1.0
    """


class _CarriesException:
    """Pickling for states that hold an exception from the task."""

    exception: BaseException | None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        exc = self.exception
        if exc is not None:
            try:
                # Round trip: an exception whose __init__ does not accept its
                # own args pickles fine but fails to unpickle.
                pickle.loads(_dumps(exc))
            except Exception:
                # Exceptions holding sockets, locks or local classes cannot
                # cross to another process; their type and text still can.
                stand_in = RemoteTaskError(f"{type(exc).__qualname__}: {_safe_str(exc)}")
                state["exception"] = stand_in
                if state.get("result") is exc:
                    state["result"] = stand_in
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class Failed(_CarriesException, Finished):
    """
    The run failed.

    Args:
        message: what went wrong, in one line.
        result: the exception, as in Prefect 1 (``state.result`` of a failed
            task is what it raised); defaults to *exception*.
        exception: the exception the task raised, or None when the failure
            did not come from an exception (an upstream failed, for example).
        traceback: the formatted traceback of *exception*, kept so it can be
            shown after the run and in other processes.
        map_states: for a mapped task, the states of its child runs.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        message: str | None = None,
        result: Any = None,
        *,
        exception: BaseException | None = None,
        traceback: str | None = None,
        map_states: list[State] | None = None,
    ) -> None:
        super().__init__(message=message, result=exception if result is None else result)
        self.exception = exception
        self.traceback = traceback
        self.map_states: list[State] = list(map_states or [])


class TriggerFailed(Failed):
    """
    The task did not run because an upstream task did not succeed.

    .. versionadded:: 0.1.0
    """


class TimedOut(Failed):
    """
    The task ran past its ``timeout`` (after its retries), as Prefect 1's ``TimedOut``.

    ``exception`` is a :class:`~structflow.engine.TaskTimeoutError` and
    ``traceback`` shows where the task's code was when the time ran out.

    .. versionadded:: 0.1.0
    """


class Retrying(_CarriesException, Pending):
    """
    The task failed and will run again.

    Args:
        message: why it is retried and when.
        result: the exception of the failed try.
        start_time: when the next try is due (timezone-aware, UTC).
        run_count: how many tries have run so far.
        exception: the exception of the failed try.
        traceback: its formatted traceback.
        loop: for a looping task (``LOOP``), the iteration that failed and
            the ``task_loop_result`` it had: the retry resumes there.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        message: str | None = None,
        result: Any = None,
        *,
        start_time: datetime | None = None,
        run_count: int = 1,
        exception: BaseException | None = None,
        traceback: str | None = None,
        loop: tuple[int, Any] | None = None,
    ) -> None:
        super().__init__(message=message, result=exception if result is None else result)
        self.start_time = start_time
        self.run_count = run_count
        self.exception = exception
        self.traceback = traceback
        self.loop = loop


def _dumps(obj: object) -> bytes:
    try:
        cloudpickle: Any = importlib.import_module("cloudpickle")
    except ImportError:  # cloudpickle comes with the dask extra
        return pickle.dumps(obj)
    return bytes(cloudpickle.dumps(obj))


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<unprintable {type(exc).__name__}>"
