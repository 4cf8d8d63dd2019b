"""
Tasks: the units of work a flow runs.

A task is either a function decorated with :func:`task` or an instance of a
:class:`Task` subclass that overrides :meth:`Task.run`. Calling a task inside
``with Flow(...)`` does not run it: it adds a copy of the task to the flow,
wired to the tasks and values it was called with, and returns that copy so it
can be passed on to other tasks.
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
import typing
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Never, TypedDict, Unpack, overload

from structflow._context import context
from structflow.engine._active import (
    PREFECT1_TASK_OPTIONS,
    FlowError,
    Wiring,
    active,
    refuse_options,
)
from structflow.engine._state_handlers import StateHandler, check_state_handlers
from structflow.engine.cache_validators import CacheValidator, duration_only
from structflow.engine.state import State
from structflow.engine.triggers import Trigger, all_successful
from structflow.loggers import Logger, get_logger

__all__ = [
    "FunctionTask",
    "GetItem",
    "Parameter",
    "Task",
    "TaskOptions",
    "flatten",
    "tags",
    "task",
    "unmapped",
]

# Keyword arguments of Task.__call__ / Task.map that configure the wiring
# rather than the run, so a task's run() cannot use them as parameter names.
RESERVED_ARGUMENTS = frozenset({"upstream_tasks", "task_args", "flow", "mapped"})
_COPY_OPTIONS = frozenset(
    {"name", "max_retries", "retry_delay", "timeout", "log_stdout", "skip_on_upstream_skip"}
)


class _Marker:
    """A value wrapped to say how :meth:`Task.map` takes it."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value!r})"


class unmapped(_Marker):  # noqa: N801 - the spelling Prefect 1 users know
    """
    Mark an argument of :meth:`Task.map` that every child receives whole.

    ``add.map(numbers, unmapped(10))`` runs ``add(n, 10)`` for each ``n``.

    .. versionadded:: 0.1.0
    """

    __slots__ = ()


class flatten(_Marker):  # noqa: N801 - the spelling Prefect 1 users know
    """
    Mark an argument of :meth:`Task.map` whose list of lists is mapped over as one list.

    ``count.map(flatten(pages))`` runs one child per row of all the pages
    (``pages`` a list of lists, or a mapped task's result). Only one level
    is flattened.

    .. versionadded:: 0.1.0
    """

    __slots__ = ()


def _check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"{what} must be a non-empty str, got {name!r}")
    return name


def _check_max_retries(value: object, task_name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"Task {task_name!r}: max_retries must be an int >= 0, got {value!r}")
    return value


def _check_retry_delay(value: object, task_name: str) -> timedelta:
    if value is None:
        return timedelta(0)
    if isinstance(value, timedelta):
        delay = value
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        delay = timedelta(seconds=value)
    else:
        raise TypeError(
            f"Task {task_name!r}: retry_delay must be a datetime.timedelta or a number "
            f"of seconds, got {value!r}"
        )
    if delay < timedelta(0):
        raise ValueError(f"Task {task_name!r}: retry_delay must not be negative, got {value!r}")
    return delay


def _check_timeout(value: object, task_name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise TypeError(
            f"Task {task_name!r}: timeout must be None, a number of seconds or a "
            f"datetime.timedelta, got {value!r}"
        )
    if not 0 < seconds < math.inf:
        raise ValueError(
            f"Task {task_name!r}: timeout must be more than 0 seconds and finite, got {value!r}"
        )
    return seconds


def _check_flag(value: object, task_name: str, option: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"Task {task_name!r}: {option} must be True or False, got {value!r}")
    return value


def _check_trigger(value: object, task_name: str) -> Trigger:
    if value is None:
        return all_successful
    if not callable(value):
        raise TypeError(
            f"Task {task_name!r}: trigger must be a callable trigger(upstream_states) such as "
            f"structflow.triggers.all_finished, got {value!r}"
        )
    return value


def _check_tags(value: object, task_name: str) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError(f"Task {task_name!r}: tags must be a list of str, got {value!r}")
    tags = list(value)
    for tag in tags:
        if not isinstance(tag, str):
            raise TypeError(f"Task {task_name!r}: tags must be str, got {tag!r}")
    return set(tags)


def _check_nout(value: object, task_name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TypeError(f"Task {task_name!r}: nout must be an int >= 1 or None, got {value!r}")
    return value


def _check_cache(
    cache_for: object, validator: object, key: object, task_name: str
) -> tuple[timedelta | None, CacheValidator, str | None]:
    duration = None if cache_for is None else _check_retry_delay(cache_for, task_name)
    if duration is not None and duration <= timedelta(0):
        raise ValueError(f"Task {task_name!r}: cache_for must be more than 0, got {cache_for!r}")
    if validator is not None and not callable(validator):
        raise TypeError(
            f"Task {task_name!r}: cache_validator must be a callable validator(state, inputs, "
            f"parameters) such as structflow.engine.cache_validators.all_inputs, got {validator!r}"
        )
    if key is not None and (not isinstance(key, str) or not key):
        raise TypeError(f"Task {task_name!r}: cache_key must be a non-empty str, got {key!r}")
    if duration is None and (validator is not None or key is not None):
        # As Prefect 1 did: a warning, not an error, so that a port still runs.
        warnings.warn(
            f"Task {task_name!r}: cache_validator or cache_key without cache_for; "
            "the task's results are not kept",
            UserWarning,
            stacklevel=4,
        )
    return duration, (validator if validator is not None else duration_only), key


def _returned_tuple_length(fn: Callable[..., Any]) -> int | None:
    """The length of a fixed-length tuple *fn*'s return annotation names, else None."""
    try:
        returned = typing.get_type_hints(fn).get("return")
    except Exception:  # an annotation that does not resolve: nothing to infer
        return None
    if typing.get_origin(returned) is not tuple:
        return None
    items = typing.get_args(returned)
    if not items or Ellipsis in items or items == ((),):
        return None
    return len(items)


def _context_tags() -> set[str]:
    """The tags of the open ``with tags(...)`` blocks."""
    value = context.get("tags")
    return set(value) if isinstance(value, set | frozenset | list | tuple) else set()


@contextmanager
def tags(*names: str) -> Iterator[None]:
    """
    ``with tags("etl", "nightly"):`` - tasks made or called in the block get these tags.

    Prefect 1's ``prefect.tags``: the tags are added to those of each task
    created (``Task(...)``, ``@task``) or copied into a flow (``task(...)``)
    inside the block, and are the context key ``tags`` meanwhile. Blocks nest.

    Raises:
        TypeError: a tag is not a str.

    .. versionadded:: 0.1.0
    """
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"tags() takes str names, got {name!r}")
    with context(tags=_context_tags() | set(names)):
        yield


class TaskOptions(TypedDict, total=False):
    """
    The keyword-only options of :class:`Task`, as :func:`task` and
    :class:`FunctionTask` take them; :class:`Task` documents each.
    """

    timeout: timedelta | float | None
    log_stdout: bool
    skip_on_upstream_skip: bool
    state_handlers: Iterable[StateHandler] | None
    on_failure: Callable[[Task, State], object] | None
    trigger: Trigger | None
    tags: Iterable[str] | None
    checkpoint: bool | None
    nout: int | None
    cache_for: timedelta | float | None
    cache_validator: CacheValidator | None
    cache_key: str | None


class Task:
    """
    A unit of work in a flow; subclasses override :meth:`run`.

    Args:
        name: the task's name, used in its logger (``structflow.<name>``) and
            in the engine's messages; defaults to the class name.
        max_retries: how many times a failed run is tried again.
        retry_delay: how long to wait before each retry, as a
            :class:`datetime.timedelta` or a number of seconds; defaults to 0.
        timeout: seconds (a number or a :class:`datetime.timedelta`) a try
            may run in a flow run before it ends
            :class:`~structflow.engine.TimedOut`; None (the default) for no
            limit. The try's code then keeps running in a background thread,
            as Python cannot stop a thread.
        log_stdout: send what the task prints during a flow run to its
            logger at INFO, one record per line, with the run context.
        skip_on_upstream_skip: when an upstream task was skipped (a ``SKIP``
            signal), skip this one too without running it (the default, as
            in Prefect 1); False runs it.
        state_handlers: callables ``handler(task, old_state, new_state)``
            called at each state change of the task's runs, in the run's
            context; a state they return becomes the new state.
        on_failure: ``callback(task, state)``, called when a run of the task
            ends failed.
        trigger: whether the task runs, given its upstream states (see
            :mod:`structflow.triggers`); defaults to ``all_successful``.
        tags: names for the task (a set of str), in the run context as
            ``task_tags``.
        checkpoint: accepted for code ported from Prefect 1 and changes
            nothing: results are kept in memory, never written, as in a
            Prefect 1 local run.
        nout: how many results the task returns as a tuple, so that
            ``a, b = task(...)`` works in a flow; inferred from a
            ``-> tuple[int, str]`` return annotation when not given.
        cache_for: keep each successful result this long (a timedelta or
            seconds), in this process, for later runs to use instead of
            running (see :mod:`structflow.engine.cache_validators`).
        cache_validator: whether a kept result may stand in for a run;
            ``duration_only`` by default.
        cache_key: share kept results between tasks with the same key
            (default: the task's name).

    Raises:
        TypeError: a bad name, retry_delay, timeout, log_stdout,
            skip_on_upstream_skip, state_handlers, on_failure, trigger, tags,
            checkpoint, nout, cache_for, cache_validator or cache_key, or ``run``
            uses a reserved parameter name (``upstream_tasks``, ``task_args``,
            ``flow``, ``mapped``).
        ValueError: a negative max_retries or retry_delay, or a timeout that
            is not more than 0.

    Example::

        class Add(Task):
            def run(self, x, y):
                self.logger.info("adding")
                return x + y

    Subclasses that define ``__init__`` must call ``super().__init__(...)``.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        name: str | None = None,
        max_retries: int = 0,
        retry_delay: timedelta | float | None = None,
        *,
        timeout: timedelta | float | None = None,
        log_stdout: bool = False,
        skip_on_upstream_skip: bool = True,
        state_handlers: Iterable[StateHandler] | None = None,
        on_failure: Callable[[Task, State], object] | None = None,
        trigger: Trigger | None = None,
        tags: Iterable[str] | None = None,
        checkpoint: bool | None = None,
        nout: int | None = None,
        cache_for: timedelta | float | None = None,
        cache_validator: CacheValidator | None = None,
        cache_key: str | None = None,
        **unknown: Never,
    ) -> None:
        if unknown:
            refuse_options(f"{type(self).__name__}()", unknown, PREFECT1_TASK_OPTIONS)
        self.name = _check_name(type(self).__name__ if name is None else name, "Task name")
        self.max_retries = _check_max_retries(max_retries, self.name)
        self.retry_delay = _check_retry_delay(retry_delay, self.name)
        self.timeout = _check_timeout(timeout, self.name)
        self.log_stdout = _check_flag(log_stdout, self.name, "log_stdout")
        self.skip_on_upstream_skip = _check_flag(
            skip_on_upstream_skip, self.name, "skip_on_upstream_skip"
        )
        self.state_handlers = check_state_handlers(
            state_handlers, on_failure, f"Task {self.name!r}"
        )
        self.trigger = _check_trigger(trigger, self.name)
        self.tags = _check_tags(tags, self.name) | _context_tags()
        self.checkpoint = (
            None if checkpoint is None else _check_flag(checkpoint, self.name, "checkpoint")
        )
        self.nout = _check_nout(nout, self.name)
        self.cache_for, self.cache_validator, self.cache_key = _check_cache(
            cache_for, cache_validator, cache_key, self.name
        )
        signature = self._signature()
        if signature is not None:
            clash = sorted(RESERVED_ARGUMENTS.intersection(signature.parameters))
            if clash:
                raise TypeError(
                    f"Task {self.name!r}: run() cannot have a parameter named "
                    f"{', '.join(map(repr, clash))}; those names configure how a task is "
                    f"wired into a flow"
                )

    def __repr__(self) -> str:
        return f"<Task: {self.name}>"

    @property
    def logger(self) -> Logger:
        """
        The task's logger: ``structflow.<name>``, or ``structflow.<name>[<i>]`` in a mapped run.

        During a run of this task it is ``structflow.context.get("logger")``.
        A logger assigned to it (``self.logger = logging.getLogger("app")``,
        as Prefect 1's tasks allowed) is the task's logger from then on.
        """
        own: Any = self.__dict__.get("_own_logger")
        if own is not None:
            # A plain logging.Logger, typed as structflow's: both log alike
            # but for key/value fields.
            return own  # type: ignore[no-any-return]
        if context.get("task_name") == self.name:
            current = context.get("logger")
            if isinstance(current, Logger):
                return current
        return get_logger(self.name)

    @logger.setter
    def logger(self, value: logging.Logger) -> None:
        self.__dict__["_own_logger"] = value

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """
        Do the task's work; override in subclasses.

        The arguments are the values (or upstream results) the task was
        called with in the flow. The return value becomes the task's result.
        The base implementation does nothing and returns None.
        """
        return None

    def _signature(self) -> inspect.Signature | None:
        """Return the signature of ``run`` as seen by callers, if Python can tell."""
        try:
            return inspect.signature(self.run)
        except (TypeError, ValueError):
            return None

    def check_arguments(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], *, partial: bool = False
    ) -> None:
        """
        Raise a clear TypeError if ``run`` cannot be called with these arguments.

        With *partial*, missing arguments are allowed (more may be wired later).

        Raises:
            TypeError: the arguments do not fit ``run``'s signature.
        """
        signature = self._signature()
        if signature is None:
            return
        try:
            if partial:
                signature.bind_partial(*args, **kwargs)
            else:
                signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(
                f"Task {self.name!r}: the arguments do not fit run{signature}: {exc}"
            ) from None

    def copy(self, **task_args: Any) -> Task:
        """
        Return a copy of the task with some options changed.

        The options are ``name``, ``max_retries``, ``retry_delay``,
        ``timeout``, ``log_stdout`` and ``skip_on_upstream_skip``.

        Raises:
            TypeError: another option, or a bad value.
            ValueError: a bad value.
        """
        unknown = sorted(set(task_args) - _COPY_OPTIONS)
        if unknown:
            raise TypeError(
                f"Task {self.name!r}: cannot override {', '.join(map(repr, unknown))} in a copy; "
                f"allowed: {', '.join(sorted(_COPY_OPTIONS))}"
            )
        new = copy.copy(self)
        new.tags = self.tags | _context_tags()  # as Prefect 1's copy: the open tags() blocks'
        if "name" in task_args:
            new.name = _check_name(task_args["name"], "Task name")
        if "max_retries" in task_args:
            new.max_retries = _check_max_retries(task_args["max_retries"], new.name)
        if "retry_delay" in task_args:
            new.retry_delay = _check_retry_delay(task_args["retry_delay"], new.name)
        if "timeout" in task_args:
            new.timeout = _check_timeout(task_args["timeout"], new.name)
        for flag in ("log_stdout", "skip_on_upstream_skip"):
            if flag in task_args:
                setattr(new, flag, _check_flag(task_args[flag], new.name, flag))
        return new

    def __call__(
        self,
        *args: Any,
        upstream_tasks: Iterable[Task] | None = None,
        task_args: dict[str, Any] | None = None,
        mapped: bool = False,
        flow: Wiring | None = None,
        **kwargs: Any,
    ) -> Task:
        """
        Add a copy of the task to the active flow, wired to *args* and *kwargs*.

        Arguments may be constants, tasks (their results are passed in), or
        lists, tuples and dicts containing tasks. *upstream_tasks* adds
        ordering-only dependencies; *task_args* overrides options of the copy
        (for example ``task_args={"name": "second"}``). As in Prefect 1,
        ``mapped=True`` is :meth:`map`, and *flow* wires the copy into that
        flow instead of the active one (outside a ``with`` block too).

        Returns:
            The copy, to pass to other tasks or to look up its state.

        Raises:
            FlowError: there is no active ``with Flow(...)`` block.
            TypeError: the arguments do not fit ``run``.
        """
        action = "map" if mapped else "call"
        return self._add_copy(action, args, kwargs, upstream_tasks, task_args, mapped, flow)

    def __getitem__(self, key: Any) -> Task:
        """
        ``task[key]`` in a flow: a task whose result is this task's ``result[key]``.

        As Prefect 1's ``GetItem``: ``rows = load()["rows"]``. It runs after
        this task, and is named ``<name>[<key>]``.

        Raises:
            FlowError: there is no active ``with Flow(...)`` block.
        """
        return GetItem(name=f"{self.name}[{key!r}]").bind(self, key)

    def __iter__(self) -> Iterator[Task]:
        """
        ``a, b = task(...)``: one :meth:`__getitem__` task per result, for a task with ``nout``.

        Raises:
            TypeError: the task has no ``nout``.
        """
        if self.nout is None:
            raise TypeError(
                f"Task {self.name!r} is not iterable: for `a, b = task(...)`, make it with "
                "nout=2 (or annotate run's return as tuple[..., ...]), as in Prefect 1"
            )
        return iter([self[i] for i in range(self.nout)])

    def map(
        self,
        *args: Any,
        upstream_tasks: Iterable[Task] | None = None,
        task_args: dict[str, Any] | None = None,
        flow: Wiring | None = None,
        **kwargs: Any,
    ) -> Task:
        """
        Add a mapped copy of the task to the active flow: one child run per item.

        Every argument is mapped over (a constant iterable or an upstream
        task whose result is one) except those wrapped in :class:`unmapped`,
        which every child receives whole. All mapped arguments must have the
        same length. Child *i* runs with ``map_index`` *i* and logs on
        ``structflow.<name>[<i>]``; the mapped task's result is the list of
        the children's results.

        Returns:
            The mapped copy.

        Raises:
            FlowError: there is no active ``with Flow(...)`` block, or nothing
                to map over.
            TypeError: the arguments do not fit ``run``.
        """
        return self._add_copy("map", args, kwargs, upstream_tasks, task_args, True, flow)

    def _add_copy(
        self,
        action: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        upstream_tasks: Iterable[Task] | None,
        task_args: dict[str, Any] | None,
        mapped: bool,
        flow: Wiring | None,
    ) -> Task:
        """Add a copy of the task, with *task_args*, to *flow* or the active one (for *action*)."""
        target = _flow_for(self, action, flow)
        new = self.copy(**(task_args or {}))
        target._wire(new, args, kwargs, mapped=mapped, upstream_tasks=upstream_tasks)
        return new

    def bind(
        self,
        *args: Any,
        upstream_tasks: Iterable[Task] | None = None,
        mapped: bool = False,
        flow: Wiring | None = None,
        **kwargs: Any,
    ) -> Task:
        """
        Wire this task itself (not a copy) into *flow*, or the active flow.

        Returns:
            The task.

        Raises:
            FlowError: no active flow, or the task's inputs are already bound.
            TypeError: the arguments do not fit ``run``.
        """
        target = _flow_for(self, "bind", flow)
        target._wire(self, args, kwargs, mapped=mapped, upstream_tasks=upstream_tasks)
        return self

    def set_upstream(
        self, task: Task, flow: Wiring | None = None, key: str | None = None, mapped: bool = False
    ) -> None:
        """Make *task* run before this one (its result given as *key*), in *flow* or the active."""
        _flow_for(self, "set_upstream", flow).add_edge(task, self, key=key, mapped=mapped)

    def set_downstream(
        self, task: Task, flow: Wiring | None = None, key: str | None = None, mapped: bool = False
    ) -> None:
        """Make *task* run after this one (this result given as *key*), in *flow* or the active."""
        _flow_for(self, "set_downstream", flow).add_edge(self, task, key=key, mapped=mapped)


def _flow_for(task: Task, action: str, flow: Wiring | None) -> Wiring:
    """The flow *action* wires *task* into: *flow* when given, else the active one."""
    if flow is not None:
        if not callable(getattr(flow, "_wire", None)):
            raise TypeError(f"Task {task.name!r}: {action}(flow={flow!r}) is not a Flow")
        return flow
    return _active_flow_for(task, action)


def _active_flow_for(task: Task, action: str) -> Wiring:
    flow = active()
    if flow is None:
        raise FlowError(
            f"Task {task.name!r}: {action}() needs an active flow, but it was used outside "
            f"a `with Flow(...)` block. Inside a flow, calling a task wires it in; "
            f"use `flow.set_dependencies(...)` to wire a flow outside its block, or call "
            f"`.run(...)` on the task to run its code directly."
        )
    return flow


class FunctionTask(Task):
    """
    A task whose ``run`` is a plain function; made by :func:`task`.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        max_retries: int = 0,
        retry_delay: timedelta | float | None = None,
        **options: Unpack[TaskOptions],
    ) -> None:
        if not callable(fn):
            raise TypeError(f"@task needs a function, got {fn!r}")
        if inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"@task: {getattr(fn, '__qualname__', fn)!r} is an `async def` function; "
                f"structflow runs tasks synchronously, so wrap the call in asyncio.run()"
            )
        self.fn = fn
        default_name = getattr(fn, "__name__", None) or type(fn).__name__
        if options.get("nout") is None:
            options["nout"] = _returned_tuple_length(fn)
        super().__init__(
            default_name if name is None else name,
            max_retries,
            retry_delay,
            **options,  # an unknown one is refused there, by name
        )
        self.__doc__ = getattr(fn, "__doc__", None)

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function with the task's inputs and return what it returns."""
        return self.fn(*args, **kwargs)

    def _signature(self) -> inspect.Signature | None:
        try:
            return inspect.signature(self.fn)
        except (TypeError, ValueError):
            return None


class GetItem(Task):
    """
    Returns ``task_result[key]``: what ``task[key]`` adds to a flow.

    .. versionadded:: 0.1.0
    """

    def run(self, task_result: Any, key: Any) -> Any:
        """Return ``task_result[key]``."""
        return task_result[key]


@overload
def task(fn: Callable[..., Any], /) -> FunctionTask: ...


@overload
def task(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    max_retries: int = 0,
    retry_delay: timedelta | float | None = None,
    **options: Unpack[TaskOptions],
) -> Callable[[Callable[..., Any]], FunctionTask]: ...


def task(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    max_retries: int = 0,
    retry_delay: timedelta | float | None = None,
    **options: Unpack[TaskOptions],
) -> FunctionTask | Callable[[Callable[..., Any]], FunctionTask]:
    """
    Turn a function into a task; use as ``@task`` or ``@task(name=..., ...)``.

    Args:
        fn: the function (when used without parentheses).
        name: the task's name; defaults to the function's name.
        max_retries: how many times a failed run is tried again.
        retry_delay: wait before each retry (timedelta or seconds).
        options: the keyword-only options of :class:`Task` (``timeout``,
            ``log_stdout``, ``state_handlers``, ``trigger``, ``cache_for``,
            ...), each documented there; ``nout`` is inferred from a
            ``-> tuple[int, str]`` return annotation when not given.

    Returns:
        A :class:`FunctionTask`, or a decorator that makes one.

    Example::

        @task(name="Task B", max_retries=2, retry_delay=5)
        def task_b(x):
            structflow.context.get("logger").info("got %s", x)
            return 3 * x + 1

    .. versionadded:: 0.1.0
    """
    unknown = {k: v for k, v in options.items() if k not in TaskOptions.__annotations__}
    if unknown:
        refuse_options("task()", unknown, PREFECT1_TASK_OPTIONS)
    # An iterator is read once here: checked now, and used by each task made.
    handlers, names = options.get("state_handlers"), options.get("tags")
    if isinstance(handlers, Iterator):
        options["state_handlers"] = list(handlers)
    if isinstance(names, Iterator):
        options["tags"] = list(names)
    if fn is not None:
        return FunctionTask(fn, name, max_retries, retry_delay, **options)
    # A mistake is reported at the decorator line: Task checks every option
    # (the function's name is not known yet).
    Task("<task>" if name is None else name, max_retries, retry_delay, **options)

    def decorator(func: Callable[..., Any]) -> FunctionTask:
        return FunctionTask(func, name, max_retries, retry_delay, **options)

    return decorator


class _NoDefault:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<no default>"

    def __reduce__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()


class Parameter(Task):
    """
    A task whose result is a value given to ``flow.run(parameters={...})``.

    Args:
        name: the parameter's name, unique among the flow's parameters.
        default: the value when the run does not give one.
        required: whether the run must give a value; defaults to True when
            there is no *default*. A required parameter ignores *default*.

    Parameters are not copied when passed to tasks: the same object is the
    input of every task that uses it.

    .. versionadded:: 0.1.0
    """

    def __init__(self, name: str, default: Any = NO_DEFAULT, required: bool | None = None) -> None:
        super().__init__(name=_check_name(name, "Parameter name"))
        self.required = default is NO_DEFAULT if required is None else bool(required)
        self.default = None if default is NO_DEFAULT else default

    def __repr__(self) -> str:
        return f"<Parameter: {self.name}>"

    def run(self) -> Any:
        """Return the value of this parameter in the current flow run."""
        values = context.get("parameters") or {}
        if self.name in values:
            return values[self.name]
        if self.required:
            raise FlowError(f"Parameter {self.name!r} is required but the flow run did not give it")
        return self.default

    def copy(self, **task_args: Any) -> Task:
        """
        Parameters cannot be copied (or called): each is unique by name in a flow.

        Raises:
            TypeError: always.
        """
        raise TypeError(
            f"Parameter {self.name!r} cannot be copied or called; pass the Parameter "
            f"itself to the tasks that need its value"
        )


def tasks_in(value: Any) -> Iterator[Task]:
    """Yield the tasks in an argument: the value itself, or inside lists, tuples and dicts."""
    if isinstance(value, Task):
        yield value
    elif isinstance(value, unmapped | flatten):
        yield from tasks_in(value.value)
    elif type(value) in (list, tuple):
        for item in value:
            yield from tasks_in(item)
    elif type(value) is dict:
        for item in value.values():
            yield from tasks_in(item)
