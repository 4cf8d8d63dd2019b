"""
The executor contract: :class:`Executor` and the :class:`TaskFuture` it returns.

The flow runner drives every executor the same way::

    with executor.start():
        future = executor.submit(fn, *args)          # fn: module-level, picklable args
        done = executor.wait_first([future, ...], timeout)
        state = future.result()

It submits a task run only once its upstream tasks are finished and then
waits for whichever future completes first, so a worker never waits for
another task and a pool of any size cannot deadlock. ``fn`` is a
module-level function whose arguments pickle (with cloudpickle), so an
executor may run it in another process; it re-enters the run context there
itself.
"""

from __future__ import annotations

import abc
import contextlib
import threading
from collections.abc import Callable, Collection, Iterator
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["Executor", "SharedResource", "TaskFuture"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
R = TypeVar("R")


class TaskFuture(Protocol[T_co]):
    """
    What ``Executor.submit`` returns: :class:`concurrent.futures.Future` and
    ``distributed.Future`` both fit.

    .. versionadded:: 0.1.0
    """

    def done(self) -> bool:
        """Return True once the call finished (with a result or an exception)."""
        ...

    def result(self, timeout: float | None = None) -> T_co:
        """Return the call's result, or raise its exception."""
        ...


F = TypeVar("F", bound=TaskFuture[Any])


class Executor(abc.ABC):
    """
    Base class of executors.

    Subclasses implement :meth:`submit` and :meth:`wait_first`, and
    :meth:`start` when they hold resources (a pool, a cluster client) for the
    duration of a flow run.

    .. versionadded:: 0.1.0
    """

    @contextlib.contextmanager
    def start(self) -> Iterator[None]:
        """
        Hold the executor's resources for the duration of a ``with`` block.

        ``Flow.run`` enters it around the whole run. The base version holds
        nothing.
        """
        yield

    @abc.abstractmethod
    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> TaskFuture[T]:
        """
        Schedule ``fn(*args, **kwargs)`` and return a future for its result.

        Each call is independent: two submissions with equal arguments must
        both run (executors that deduplicate calls by their arguments must
        turn that off).
        """

    @abc.abstractmethod
    def wait_first(self, futures: Collection[F], timeout: float | None = None) -> set[F]:
        """
        Wait until at least one of *futures* is done, or *timeout* seconds pass.

        Returns:
            The futures that are done (empty when the timeout passed first).
        """


class SharedResource(Generic[R]):
    """
    A resource (a thread pool, a cluster client) that ``start()`` blocks share.

    Nested or concurrent blocks of one executor use one resource: the first
    block to enter makes it, the last one to leave releases it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: R | None = None
        self._users = 0

    @property
    def value(self) -> R | None:
        """The resource while a block holds it, else None."""
        return self._value

    @contextlib.contextmanager
    def use(self, make: Callable[[], R], release: Callable[[R, bool], None]) -> Iterator[R]:
        """
        Hold the resource for a ``with`` block, making it with *make* if needed.

        When the last block exits, ``release(resource, failed)`` runs, where
        *failed* tells whether that block ended with an exception.
        """
        with self._lock:
            if self._value is None:
                self._value = make()
            self._users += 1
            value = self._value
        failed = False
        try:
            yield value
        except BaseException:
            failed = True
            raise
        finally:
            with self._lock:
                self._users -= 1
                last = self._value if self._users == 0 else None
                if last is not None:
                    self._value = None
            if last is not None:
                release(last, failed)
