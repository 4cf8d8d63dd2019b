"""
Prefect 1's branches: ``with case(task, value):``, ``switch``, ``ifelse`` and ``merge``.

Tasks added to a flow inside ``with case(check, True):`` run only when
``check``'s result equals ``True``: the block adds a task named
``case(True)`` that compares the result and raises ``SKIP`` when it differs,
and makes it upstream of the block's first tasks, so the whole branch is
``Skipped`` (logged as ``SKIP signal raised: ...``, as in Prefect 1).
``merge(a, b)`` returns the result of whichever branch ran.

``from structflow import case, merge`` (Prefect 1: ``from prefect import
case`` and ``from prefect.tasks.control_flow import merge``).
"""

from __future__ import annotations

import contextvars
from types import TracebackType
from typing import Any

from structflow.engine._active import FlowError, active, close_case, open_case
from structflow.engine.signals import SKIP
from structflow.engine.task import Task

__all__ = ["CompareValue", "Merge", "case", "ifelse", "merge", "switch"]


class CompareValue(Task):
    """
    Skips (``SKIP``) unless its input equals *value*; what ``case`` adds to a flow.

    .. versionadded:: 0.1.0
    """

    def __init__(self, value: Any, **options: Any) -> None:
        self.value = value
        options.setdefault("name", f"case({value})")  # as Prefect 1 named it
        super().__init__(**options)

    def run(self, value: Any) -> None:
        """Raise ``SKIP`` when *value* is not the one the branch runs on."""
        if value != self.value:
            raise SKIP(f'Provided value "{value}" did not match "{self.value}"')


class case:  # noqa: N801 - the spelling Prefect 1 users know
    """
    ``with case(task, value):`` - the tasks added inside run only when *task*'s result is *value*.

    Args:
        task: the task whose result decides (a Parameter too).
        value: the result the branch runs on (compared with ``==``).

    Raises:
        TypeError: *task* is not a Task.
        FlowError: the block is not inside ``with Flow(...)``.

    .. versionadded:: 0.1.0
    """

    def __init__(self, task: Task, value: Any) -> None:
        if not isinstance(task, Task):
            raise TypeError(f"case() needs a task whose result decides, got {task!r}")
        self.task = task
        self.value = value
        self._tasks: dict[Task, None] = {}
        self._token: contextvars.Token[Any] | None = None

    def add_task(self, task: Task, flow: Any) -> None:
        """Called by the flow for each task added inside the block."""
        self._tasks[task] = None

    def __enter__(self) -> case:
        if active() is None:
            raise FlowError("case() is used inside a `with Flow(...):` block")
        if self._token is not None:
            raise FlowError("this case() block is already open; make a new case() for each")
        self._token = open_case(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, self._token = self._token, None
        if token is not None:
            close_case(token)
        if exc_type is not None or not self._tasks:
            return
        flow: Any = active()
        condition = CompareValue(self.value)
        # Added while any outer case is still open, so it joins that branch.
        condition.bind(value=self.task, flow=flow)
        for task in self._tasks:
            # The branch's first tasks wait for the condition; the rest follow them.
            if not any(up in self._tasks for up in flow.upstream_tasks(task)):
                task.set_upstream(condition, flow=flow)


class Merge(Task):
    """
    Returns the first of its inputs that is not None: the result of the branch that ran.

    Runs even when branches upstream were skipped (``skip_on_upstream_skip=False``).

    .. versionadded:: 0.1.0
    """

    def __init__(self, **options: Any) -> None:
        options.setdefault("name", "Merge")
        options.setdefault("skip_on_upstream_skip", False)
        super().__init__(**options)

    def run(self, *values: Any) -> Any:
        """The first value that is not None, else None."""
        return next((v for v in values if v is not None), None)


def merge(*tasks: Task, flow: Any = None) -> Task:
    """
    A task whose result is that of whichever of *tasks* ran (the first not None).

    ``merge(a, b)`` after ``with case(check, True): a = ...`` and
    ``with case(check, False): b = ...``.

    .. versionadded:: 0.1.0
    """
    return Merge().bind(*tasks, flow=flow)


def switch(condition: Task, cases: dict[Any, Task], flow: Any = None) -> None:
    """
    Run each task of *cases* only when *condition*'s result is its key; skip the others.

    ``switch(kind, {"csv": load_csv, "json": load_json})``: each task gets a
    ``case(<key>)`` task upstream that skips it (and what follows it) on any
    other result, as ``with case(...)`` does. *flow* defaults to the active one.

    Raises:
        TypeError: *condition* or a case is not a Task.
        FlowError: no flow is given or active.

    .. versionadded:: 0.1.0
    """
    if not isinstance(condition, Task):
        raise TypeError(f"switch() needs a task whose result decides, got {condition!r}")
    target = flow if flow is not None else active()
    if target is None:
        raise FlowError("switch() is used inside a `with Flow(...):` block, or given flow=")
    for value, branch in cases.items():
        if not isinstance(branch, Task):
            raise TypeError(f"switch(): the case for {value!r} must be a Task, got {branch!r}")
        match = CompareValue(value).bind(value=condition, flow=target)
        branch.set_upstream(match, flow=target)


def ifelse(condition: Task, true_task: Task, false_task: Task, flow: Any = None) -> None:
    """
    Run *true_task* when *condition*'s result is truthy, else *false_task*; skip the other.

    As Prefect 1's ``ifelse``: the result is turned into a bool first.

    .. versionadded:: 0.1.0
    """
    target = flow if flow is not None else active()
    if target is None:
        raise FlowError("ifelse() is used inside a `with Flow(...):` block, or given flow=")
    truth = _Truth(name="bool").bind(condition, flow=target)
    switch(truth, {True: true_task, False: false_task}, flow=target)


class _Truth(Task):
    def run(self, value: Any) -> bool:
        return bool(value)
