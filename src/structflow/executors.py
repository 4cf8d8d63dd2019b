"""
Executors: where the task runs of a flow run execute.

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

``DaskExecutor`` (the ``structflow[dask]`` extra) is importable from here too;
its module is loaded on first use.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import abc
import concurrent.futures
import contextlib
import contextvars
import threading
from collections.abc import Callable, Collection, Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

if TYPE_CHECKING:
    from structflow._dask import DaskExecutor

__all__ = ["DaskExecutor", "Executor", "LocalExecutor", "TaskFuture", "ThreadExecutor"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


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


class LocalExecutor(Executor):
    """
    Run each task in the calling thread, one after another (the default).

    ``submit`` runs the call before it returns, so the future it returns is
    always done.

    .. versionadded:: 0.1.0
    """

    def __repr__(self) -> str:
        return "LocalExecutor()"

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> TaskFuture[T]:
        """Run ``fn(*args, **kwargs)`` now and return a finished future."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            # KeyboardInterrupt and SystemExit are not caught: they stop the run.
            future.set_exception(exc)
        else:
            future.set_result(result)
        return future

    def wait_first(self, futures: Collection[F], timeout: float | None = None) -> set[F]:
        """Return the futures that are done (all of the ones this executor made)."""
        return {f for f in futures if f.done()}


class ThreadExecutor(Executor):
    """
    Run independent tasks in parallel, on a pool of threads.

    Args:
        max_workers: the number of threads; None picks
            :class:`concurrent.futures.ThreadPoolExecutor`'s default
            (``min(32, os.cpu_count() + 4)``).

    The pool lives while :meth:`start` is entered (nested or concurrent
    ``start`` blocks share one pool). Each submission runs in a copy of the
    submitting thread's contextvars, so ``structflow.context``,
    ``structflow.bound`` keys and other libraries' context variables follow
    the task into the thread.

    .. versionadded:: 0.1.0
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and (
            isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
        ):
            raise ValueError(
                f"ThreadExecutor(max_workers=...) must be None or an int >= 1, got {max_workers!r}"
            )
        self.max_workers = max_workers
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._users = 0

    def __repr__(self) -> str:
        return f"ThreadExecutor(max_workers={self.max_workers!r})"

    @contextlib.contextmanager
    def start(self) -> Iterator[None]:
        """Create the thread pool for the block; shut it down when the last block exits."""
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self.max_workers, thread_name_prefix="structflow-worker"
                )
            self._users += 1
        interrupted = False
        try:
            yield
        except BaseException:
            interrupted = True
            raise
        finally:
            with self._lock:
                self._users -= 1
                pool = self._pool if self._users == 0 else None
                if pool is not None:
                    self._pool = None
            if pool is not None:
                # After an error nothing waits for queued tasks; running ones finish.
                pool.shutdown(wait=True, cancel_futures=interrupted)

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> TaskFuture[T]:
        """
        Run ``fn(*args, **kwargs)`` on a pool thread, in a copy of the current context.

        Raises:
            RuntimeError: the executor is not started.
        """
        pool = self._pool
        if pool is None:
            raise RuntimeError(
                "ThreadExecutor.submit() needs a started executor: use it inside "
                "`with executor.start():` (Flow.run does this for you)"
            )
        ctx = contextvars.copy_context()
        return pool.submit(ctx.run, fn, *args, **kwargs)

    def wait_first(self, futures: Collection[F], timeout: float | None = None) -> set[F]:
        """Wait for the first of *futures* to finish; return those that are done."""
        fs = cast("Collection[concurrent.futures.Future[Any]]", futures)
        done, _ = concurrent.futures.wait(
            fs, timeout=timeout, return_when=concurrent.futures.FIRST_COMPLETED
        )
        return cast("set[F]", done)


def __getattr__(name: str) -> Any:
    # DaskExecutor lives in its own module and is imported on first use, so
    # `import structflow` stays light for users without the dask extra.
    if name == "DaskExecutor":
        from structflow._dask import DaskExecutor

        return DaskExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
