"""Independent task runs in parallel, on a pool of threads."""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
from collections.abc import Callable, Collection, Iterator
from typing import Any, cast

from structflow.executors.base import Executor, F, SharedResource, T, TaskFuture

__all__ = ["LocalDaskExecutor", "ThreadExecutor"]


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
        self._pool: SharedResource[concurrent.futures.ThreadPoolExecutor] = SharedResource()

    def __repr__(self) -> str:
        return f"ThreadExecutor(max_workers={self.max_workers!r})"

    @contextlib.contextmanager
    def start(self) -> Iterator[None]:
        """Create the thread pool for the block; shut it down when the last block exits."""
        with self._pool.use(self._make_pool, _shut_down):
            yield

    def _make_pool(self) -> concurrent.futures.ThreadPoolExecutor:
        return concurrent.futures.ThreadPoolExecutor(
            max_workers=self.max_workers, thread_name_prefix="structflow-worker"
        )

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> TaskFuture[T]:
        """
        Run ``fn(*args, **kwargs)`` on a pool thread, in a copy of the current context.

        Raises:
            RuntimeError: the executor is not started.
        """
        pool = self._pool.value
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


def _shut_down(pool: concurrent.futures.ThreadPoolExecutor, failed: bool) -> None:
    # After an error nothing waits for queued tasks; running ones finish.
    pool.shutdown(wait=True, cancel_futures=failed)


class LocalDaskExecutor(ThreadExecutor):
    """
    Prefect 1's ``LocalDaskExecutor``, for ported code: a :class:`ThreadExecutor`.

    Args:
        scheduler: ``"threads"`` (Prefect 1's default), or ``"synchronous"``
            (one task run at a time). ``"processes"`` is refused: use
            :class:`~structflow.executors.DaskExecutor`, whose local cluster
            runs tasks in processes.
        num_workers: the number of threads (None: the pool's default).

    .. versionadded:: 0.1.0
    """

    def __init__(self, scheduler: str = "threads", num_workers: int | None = None) -> None:
        if scheduler == "processes":
            raise ValueError(
                "LocalDaskExecutor(scheduler='processes') is not supported: use "
                "structflow.executors.DaskExecutor() (a local Dask cluster runs tasks in "
                "processes), or scheduler='threads'"
            )
        if scheduler not in ("threads", "synchronous"):
            raise ValueError(
                f"LocalDaskExecutor(scheduler={scheduler!r}) is invalid; expected 'threads' or "
                "'synchronous'"
            )
        super().__init__(max_workers=1 if scheduler == "synchronous" else num_workers)
        self.scheduler = scheduler

    def __repr__(self) -> str:
        return f"LocalDaskExecutor(scheduler={self.scheduler!r}, num_workers={self.max_workers!r})"
