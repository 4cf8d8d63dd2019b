"""
Prefect 1's signals: exceptions a task raises to choose its own final state.

``raise FAIL("no rows today")`` ends the try ``Failed`` (retried while
``max_retries`` allows), ``SUCCESS`` ends it ``Success``, ``SKIP`` ends it
``Skipped`` (and skips the tasks downstream, unless they were made with
``skip_on_upstream_skip=False``), ``RETRY`` runs it again whatever
``max_retries`` says, ``LOOP`` runs it again at once with a result to go on
from, and ``TRIGGERFAIL`` ends it ``TriggerFailed``. The task
runner logs ``FAIL signal raised: FAIL('no rows today')`` at INFO on
``structflow.TaskRunner``, without a traceback, as Prefect 1 did.

Prefect 1's ``PAUSE``, ``VALIDATIONFAIL`` and ``ENDRUN`` have no
counterpart: importing one says so.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

__all__ = ["FAIL", "LOOP", "RETRY", "SKIP", "SUCCESS", "TRIGGERFAIL", "PrefectStateSignal"]

#: Prefect 1's signals structflow lacks, and what they did.
_ABSENT = {
    "PAUSE": "pausing a task until it is resumed by hand",
    "VALIDATIONFAIL": "result validation",
    "ENDRUN": "ending a run from the engine's own pipeline",
}


class PrefectStateSignal(Exception):
    """
    A signal a task raises to set its state; the base of the others.

    Args:
        message: the state's message.
        result: the state's ``result``: the value of ``SUCCESS`` and
            ``SKIP``; for ``FAIL``, None keeps the signal itself, as Prefect
            1 did.

    .. versionadded:: 0.1.0
    """

    def __init__(self, message: str | None = None, *, result: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.result = result

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps ``result`` (and RETRY's ``start_time``) when a Dask worker
        # sends the state holding the signal back.
        return (type(self), (self.message,), self.__dict__)


class FAIL(PrefectStateSignal):
    """
    End the try ``Failed``; it is retried while ``max_retries`` allows.

    .. versionadded:: 0.1.0
    """


class TRIGGERFAIL(FAIL):
    """
    End the task run ``TriggerFailed``, as if an upstream task had failed; never retried.

    .. versionadded:: 0.1.0
    """


class SUCCESS(PrefectStateSignal):
    """
    End the task run ``Success``, with ``result`` as its result.

    .. versionadded:: 0.1.0
    """


class SKIP(PrefectStateSignal):
    """
    End the task run ``Skipped`` (a success); downstream tasks are skipped too.

    A task made with ``skip_on_upstream_skip=False`` runs instead, with
    ``result`` (None by default) as the skipped task's result.

    .. versionadded:: 0.1.0
    """


class RETRY(PrefectStateSignal):
    """
    Run the task again, whatever ``max_retries`` says.

    Args:
        message: the ``Retrying`` state's message.
        start_time: when to try again (an aware datetime); defaults to the
            task's ``retry_delay`` from now.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self, message: str | None = None, *, result: Any = None, start_time: datetime | None = None
    ) -> None:
        super().__init__(message, result=result)
        self.start_time = start_time


class LOOP(PrefectStateSignal):
    """
    Run the task again at once, in the same task run, with *result* to go on from.

    The next iteration finds *result* as ``structflow.context.task_loop_result``
    and its number as ``task_loop_count`` (2, 3, ...; absent in the first
    iteration, so ``context.get("task_loop_count", 1)``); the value the task
    finally returns is its result, as in Prefect 1.

    .. versionadded:: 0.1.0
    """


def __getattr__(name: str) -> Any:
    what = _ABSENT.get(name)
    if what is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    raise ImportError(
        f"structflow has no {name} signal: Prefect 1 used it for {what}, which structflow "
        "does not do (docs/tasks-and-flows.md, 'Limits, in one place')"
    )
