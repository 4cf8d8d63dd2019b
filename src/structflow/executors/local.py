"""The default executor: every task run in the calling thread, one after another."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Collection
from typing import Any

from structflow.executors.base import Executor, F, T, TaskFuture

__all__ = ["LocalExecutor"]


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
