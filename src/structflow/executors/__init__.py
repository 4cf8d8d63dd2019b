"""
Executors: where the task runs of a flow run execute.

* :class:`LocalExecutor` (the default) runs them one after another in the
  calling thread;
* :class:`ThreadExecutor` runs independent ones in parallel threads
  (:class:`LocalDaskExecutor` is its Prefect 1 name);
* :class:`DaskExecutor` (the ``structflow[dask]`` extra) runs them on a Dask
  distributed cluster; its module is loaded on first use, so importing
  structflow never imports Dask.

Subclass :class:`Executor` to run task runs elsewhere; its module docstring
(:mod:`structflow.executors.base`) describes how the flow runner drives it.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from structflow.executors.base import Executor, TaskFuture
from structflow.executors.local import LocalExecutor
from structflow.executors.thread import LocalDaskExecutor, ThreadExecutor

if TYPE_CHECKING:
    from structflow.executors.dask import DaskExecutor

__all__ = [
    "DaskExecutor",
    "Executor",
    "LocalDaskExecutor",
    "LocalExecutor",
    "TaskFuture",
    "ThreadExecutor",
]


def __getattr__(name: str) -> Any:
    # DaskExecutor's module is imported on first use, so `import structflow`
    # stays light for users without the dask extra.
    if name == "DaskExecutor":
        from structflow.executors.dask import DaskExecutor

        return DaskExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
