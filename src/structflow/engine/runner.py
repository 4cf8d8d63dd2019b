"""
Running flows and task runs.

:class:`FlowRunner` walks a flow's graph: a task run is submitted to the
executor once all its upstream tasks are finished, and the runner waits for
whichever submission finishes first. Tasks whose upstream tasks did not all
succeed become ``TriggerFailed`` without running; failed tries are retried
after ``retry_delay`` by submitting them again, so no worker sleeps.

:func:`run_task` is what executors run: one try of one task run. It is a
module-level function taking a picklable :class:`TaskCall`, so executors can
ship it to other processes; it re-enters the run context there from the
snapshot the call carries.

Lifecycle messages go to the ``structflow.FlowRunner`` and
``structflow.TaskRunner`` loggers (:attr:`FlowRunner.logger` and
:attr:`TaskRunner.logger`), never to the tasks' own loggers. They keep
Prefect 1's wording and carry structured fields, so a store or an aggregator
can derive runs from the records alone: ``lifecycle`` (``flow_run_started``,
``flow_run_finished``, ``task_run_started``, ``task_run_finished``,
``task_run_retrying``) and, once a run or try is over, ``state`` (the state's
class name) and ``duration_s`` (seconds, wall clock).

A task's ``timeout`` and ``log_stdout`` cost nothing to tasks without them:
only their tries run the task's code through
:func:`~structflow.engine._timeout.call_with_timeout` or inside
:func:`structflow._stdout.prints_to`.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
import traceback
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from structflow._context import context
from structflow._stdout import RedirectToLog, prints_to
from structflow._values import safe_repr
from structflow.engine import _cache
from structflow.engine._active import FlowError
from structflow.engine._state_handlers import call_state_handlers
from structflow.engine._timeout import TaskTimeoutError, call_with_timeout
from structflow.engine.flow import Flow, positional_names
from structflow.engine.signals import LOOP, RETRY, SKIP, SUCCESS, TRIGGERFAIL, PrefectStateSignal
from structflow.engine.state import (
    Failed,
    Looped,
    Mapped,
    Pending,
    Retrying,
    Running,
    Skipped,
    State,
    Success,
    TimedOut,
    TriggerFailed,
)
from structflow.engine.task import Task, flatten, unmapped
from structflow.engine.triggers import all_successful
from structflow.executors import Executor, LocalExecutor, TaskFuture
from structflow.loggers import Logger, get_logger

if TYPE_CHECKING:
    from structflow.engine.flow import Inputs

__all__ = ["FlowRunner", "TaskCall", "TaskRunner", "run_task"]

# FlowRunner.run takes Prefect 1's `context=` argument, which hides the name.
_context = context

FLOW_RUNNER_LOGGER = "FlowRunner"
TASK_RUNNER_LOGGER = "TaskRunner"


def _elapsed(started: float) -> float:
    """Seconds since *started* (a ``time.perf_counter()`` reading), to the microsecond."""
    return round(time.perf_counter() - started, 6)


class _EngineLogger:
    """
    A class attribute that is the logger ``structflow.<name>``, on the class and its instances.

    The logger is looked up when the attribute is read, since
    ``get_logger`` reads the configuration and importing must not.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, instance: object, owner: type | None = None) -> Logger:
        return get_logger(self.name)


def _full_name(task: Task, map_index: int | None) -> str:
    return task.name if map_index is None else f"{task.name}[{map_index}]"


def _dates(now: datetime) -> dict[str, Any]:
    """
    The date keys Prefect 1 put in the context of a flow run, from its start *now* (UTC).

    ``date`` and ``scheduled_start_time`` (an aware datetime: a local run
    starts when it is scheduled), and ``today``, ``yesterday`` and
    ``tomorrow`` as ``YYYY-MM-DD``, each also ``..._nodash`` (``YYYYMMDD``).
    """
    keys: dict[str, Any] = {"date": now, "scheduled_start_time": now}
    for name, days in (("today", 0), ("yesterday", -1), ("tomorrow", 1)):
        day = (now + timedelta(days=days)).date()
        keys[name] = day.isoformat()
        keys[f"{name}_nodash"] = day.strftime("%Y%m%d")
    return keys


@contextmanager
def _task_context(
    task: Task, task_run_id: str, map_index: int | None, run_count: int, slug: str | None
) -> Iterator[Logger]:
    """Enter the run context of one try of a task run; yield the task's logger."""
    full_name = _full_name(task, map_index)
    logger = get_logger(full_name)
    with context(
        logger=logger,
        task_name=task.name,
        task_full_name=full_name,
        task_slug=slug,
        task_run_id=task_run_id,
        map_index=map_index,
        task_run_count=run_count,
        task_tags=task.tags,
    ):
        yield logger


@dataclass(frozen=True)
class TaskCall:
    """
    One try of one task run, as shipped to an executor.

    Attributes:
        task: the task to run.
        args: positional arguments for ``task.run`` (upstream results resolved).
        kwargs: keyword arguments for ``task.run``.
        snapshot: ``structflow.context.snapshot()`` of the flow run.
        task_run_id: the task run's id (the same for every try).
        map_index: the child's index in a mapped task, else None.
        run_count: 1 for the first try, 2 for the first retry, ...
        task_slug: the task's slug in its flow (``<name>-<n>``), the same
            for a mapped task's children; None outside a flow.
        loop: for a retry of a looping task, the iteration to resume and
            its ``task_loop_result``; None to start from the first.

    .. versionadded:: 0.1.0
    """

    task: Task
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    snapshot: dict[str, Any]
    task_run_id: str
    map_index: int | None = None
    run_count: int = 1
    task_slug: str | None = None
    loop: tuple[int, Any] | None = None


def run_task(call: TaskCall) -> State:
    """
    Run one try of a task run in its run context and return its state.

    Never raises for an exception from the task: it is logged with its
    traceback on ``structflow.TaskRunner`` and returned as ``Failed`` (or
    ``Retrying`` when retries are left). A try that runs past the task's
    ``timeout`` ends the same way, as ``TimedOut``; with ``log_stdout``, what
    the task prints is logged on its logger. A signal the task raises
    (:mod:`structflow.engine.signals`) sets the state instead, and ``LOOP``
    runs the task's code again within this try. The task's state handlers
    are called at each change, in the run context.

    .. versionadded:: 0.1.0
    """
    task = call.task
    name = _full_name(task, call.map_index)
    runner_logger = get_logger(TASK_RUNNER_LOGGER)
    with (
        context.restore(call.snapshot),
        _task_context(
            task, call.task_run_id, call.map_index, call.run_count, call.task_slug
        ) as logger,
    ):
        started = time.perf_counter()
        runner_logger.info(f"Task '{name}': Starting task run...", lifecycle="task_run_started")
        handlers = task.state_handlers
        label = f"Task '{name}'"
        # A retry starts from Retrying, as in Prefect 1.
        before: State = Pending() if call.run_count == 1 else Retrying(run_count=call.run_count - 1)
        loop = call.loop
        inputs = _cache.inputs_of(task, call.args, call.kwargs) if task.cache_for else {}
        parameters = context.get("parameters")
        cached = (
            _cache.cached_state(task, inputs, parameters, runner_logger, label)
            if task.cache_for
            else None
        )
        state: State
        if cached is not None:
            # A kept result stands in for the run: the task's code does not run.
            state = cached
            if handlers:
                state = call_state_handlers(task, handlers, before, state, runner_logger, label)
        while cached is None:  # once, or once per iteration of a task that raises LOOP
            running: State = Running(message="Starting task run.")
            if handlers:
                running = call_state_handlers(task, handlers, before, running, runner_logger, label)
            if not running.is_running():
                state = running  # a handler that failed: the task's code does not run
                break
            # Only a loop's later iterations get a context frame of their own.
            with (
                nullcontext()
                if loop is None
                else context(task_loop_count=loop[0], task_loop_result=loop[1])
            ):
                state = _run_try(call, name, logger, runner_logger)
            if task.cache_for and type(state) is Success:
                state = _cache.keep(task, state, inputs, parameters)
            if handlers:
                state = call_state_handlers(task, handlers, running, state, runner_logger, label)
            if not isinstance(state, Looped):
                break
            before = state
            loop = (state.loop_count + 1, state.result)
        runner_logger.info(
            f"Task '{name}': Finished task run for task with final state: '{type(state).__name__}'",
            lifecycle="task_run_retrying" if isinstance(state, Retrying) else "task_run_finished",
            state=type(state).__name__,
            duration_s=_elapsed(started),
        )
    return state


def _run_try(call: TaskCall, name: str, logger: Logger, runner_logger: Logger) -> State:
    """Run the task's code once; return the try's state (``Retrying`` while retries are left)."""
    task = call.task
    state: State
    try:
        if task.timeout is None and not task.log_stdout:
            value = task.run(*call.args, **call.kwargs)
        else:
            value = _run_with_options(call, name, logger)
    except PrefectStateSignal as signal:
        # The task chose its state: a note, not an error with a traceback,
        # worded as Prefect 1's (the record's task_name says which task).
        runner_logger.info(f"{type(signal).__name__} signal raised: {safe_repr(signal)}")
        state = _signal_state(call, signal)
    except TaskTimeoutError as exc:
        runner_logger.error(
            f"Task '{name}': Task timed out during execution after {exc.timeout:g} s "
            f"(its code keeps running in the background)"
        )
        timed_out = TimedOut(
            message=f"Task timed out during execution after {exc.timeout:g} s.",
            exception=exc,
            traceback=exc.stack,
        )
        state = _after_failed_try(call, timed_out)
    except Exception as exc:
        formatted = traceback.format_exc()
        runner_logger.error(
            f"Task '{name}': Exception encountered during task execution!", exc_info=True
        )
        failed = Failed(
            message=f"Error during execution of task: {safe_repr(exc)}",
            exception=exc,
            traceback=formatted,
        )
        state = _after_failed_try(call, failed)
    else:
        state = Success(message="Task run succeeded.", result=value)
    return state


def _run_with_options(call: TaskCall, name: str, logger: Logger) -> Any:
    """Run the task's code under its ``log_stdout`` and ``timeout`` options."""
    task = call.task
    with prints_to(RedirectToLog(logger)) if task.log_stdout else nullcontext():
        if task.timeout is None:
            return task.run(*call.args, **call.kwargs)
        return call_with_timeout(task.run, call.args, call.kwargs, task.timeout, name)


def _loop() -> tuple[int, Any]:
    """The iteration this try is in, and its ``task_loop_result`` (1 and None at first)."""
    return context.get("task_loop_count", 1), context.get("task_loop_result")


def _loop_to_resume() -> tuple[int, Any] | None:
    """Where a retry of this try resumes a loop; None outside one."""
    return _loop() if "task_loop_count" in context else None


def _signal_state(call: TaskCall, signal: PrefectStateSignal) -> State:
    """The state a task's signal asks for (see :mod:`structflow.engine.signals`)."""
    message = signal.message
    if isinstance(signal, LOOP):
        return Looped(message=message, result=signal.result, loop_count=_loop()[0])
    if isinstance(signal, SUCCESS):
        return Success(message=message, result=signal.result)
    if isinstance(signal, SKIP):
        return Skipped(message=message, result=signal.result)
    formatted = traceback.format_exc()
    if isinstance(signal, TRIGGERFAIL):
        return TriggerFailed(
            message=message, result=signal.result, exception=signal, traceback=formatted
        )
    if isinstance(signal, RETRY) and not context.get(RAISE_ON_EXCEPTION):
        due = signal.start_time
        if due is None:
            due = datetime.now(UTC) + call.task.retry_delay
        elif due.tzinfo is None:
            due = due.astimezone()  # a naive time is local time, as datetime.now() gives
        return Retrying(
            message=message or f"Retrying task after try {call.run_count}: RETRY signal raised",
            start_time=due,
            run_count=call.run_count,
            exception=signal,
            traceback=formatted,
            loop=_loop_to_resume(),
        )
    failed = Failed(message=message, result=signal.result, exception=signal, traceback=formatted)
    return _after_failed_try(call, failed)


def _after_failed_try(call: TaskCall, failed: Failed) -> State:
    """
    Return the state after a failed try: ``Retrying`` while retries are left, else *failed*.

    Under :func:`structflow.utilities.debug.raise_on_exception` the first
    failure is final: the flow run raises it.
    """
    task = call.task
    if call.run_count > task.max_retries or context.get(RAISE_ON_EXCEPTION):
        return failed
    return Retrying(
        message=(
            f"Retrying task after try {call.run_count} of {task.max_retries + 1} "
            f"in {task.retry_delay.total_seconds():g} s"
        ),
        start_time=datetime.now(UTC) + task.retry_delay,
        run_count=call.run_count,
        exception=failed.exception,
        traceback=failed.traceback,
        loop=_loop_to_resume(),
    )


class TaskRunner:
    """
    Runs one try of a task run; the engine's messages about task runs are its logger's.

    Executors run :func:`run_task`; ``TaskRunner(call.task).run(call)`` does
    the same. :attr:`logger` is ``structflow.TaskRunner``, as in Prefect 1.

    Args:
        task: the task whose tries this runner runs.

    .. versionadded:: 0.1.0
    """

    logger = _EngineLogger(TASK_RUNNER_LOGGER)
    """The logger ``structflow.TaskRunner`` (also on the class)."""

    def __init__(self, task: Task) -> None:
        if not isinstance(task, Task):
            raise TypeError(f"TaskRunner needs a Task, got {safe_repr(task)}")
        self.task = task

    def __repr__(self) -> str:
        return f"TaskRunner({self.task!r})"

    def run(self, call: TaskCall) -> State:
        """
        Run one try of *call*, a run of this runner's task; see :func:`run_task`.

        Raises:
            ValueError: *call* is a run of another task.
        """
        if call.task is not self.task:
            raise ValueError(
                f"TaskRunner for {self.task.name!r} cannot run a call of task "
                f"{call.task.name!r}; use TaskRunner(call.task)"
            )
        return run_task(call)


@dataclass
class _MapRun:
    """A mapped task whose children are running."""

    task: Task
    task_run_id: str
    states: list[State | None]
    left: int
    started: float


@dataclass(order=True)
class _DueRetry:
    due: float
    seq: int
    call: TaskCall = field(compare=False)
    parent: _MapRun | None = field(compare=False)


@dataclass
class _Submitted:
    call: TaskCall
    parent: _MapRun | None
    started: float = field(default_factory=time.perf_counter)


#: The context key :func:`structflow.utilities.debug.raise_on_exception` sets,
#: as Prefect 1's did.
RAISE_ON_EXCEPTION = "raise_on_exception"


#: Context keys a flow run sets itself; run(context=...) cannot give them.
_ENGINE_KEYS = frozenset(
    {"logger", "flow_name", "flow_run_id", "parameters", "task_name", "task_run_id", "map_index"}
)


def _flattened(value: Any) -> list[Any]:
    """*value* with one level of nesting removed (``flatten``); FlowError when it is not."""
    if isinstance(value, str | bytes | bytearray | Mapping):
        raise FlowError(f"cannot flatten a {type(value).__name__}; flatten takes a list of lists")
    out: list[Any] = []
    try:
        for item in value:
            if isinstance(item, str | bytes | bytearray | Mapping):
                raise FlowError(f"cannot flatten: an item is a {type(item).__name__}, not a list")
            out.extend(item)
    except TypeError:
        raise FlowError(
            f"cannot flatten {safe_repr(value)[:200]}: flatten takes a list of lists"
        ) from None
    return out


class _NotStarted(Exception):
    """A flow's state handler ended the run before any task ran."""

    def __init__(self, state: State) -> None:
        super().__init__(state)
        self.state = state


class _TaskRaised(Exception):
    """A task run failed with an exception under ``raise_on_exception``: the flow run ends."""

    def __init__(self, name: str, error: BaseException) -> None:
        super().__init__(name, error)
        self.name = name
        self.error = error


class FlowRunner:
    """
    Run a flow: check parameters, enter the flow's run context, run its tasks.

    Args:
        flow: the flow to run.

    .. versionadded:: 0.1.0
    """

    logger = _EngineLogger(FLOW_RUNNER_LOGGER)
    """The logger ``structflow.FlowRunner`` (also on the class), as in Prefect 1."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow

    def run(
        self,
        parameters: Mapping[str, Any] | None = None,
        executor: Executor | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> State:
        """
        Run the flow; see :meth:`structflow.Flow.run`.

        Raises:
            FlowError: unknown or missing required parameters, or a cycle.
            TypeError: *parameters* or *context* is not a mapping, *executor*
                not an Executor.
        """
        flow = self.flow
        values = self._parameter_values(parameters)
        executor = self._executor(executor)
        run_keys = self._run_context(context)
        order = flow.sorted_tasks()
        logger = get_logger(FLOW_RUNNER_LOGGER)
        started = time.perf_counter()
        with _context(
            **run_keys,
            logger=get_logger(flow.name),
            flow_name=flow.name,
            flow_run_id=str(uuid.uuid4()),
            parameters=values,
        ):
            logger.info(f"Beginning Flow run for '{flow.name}'", lifecycle="flow_run_started")
            scheduler = _Scheduler(flow, order, executor)
            error: Exception | None = None
            state: State
            raised: BaseException | None = None
            handlers = flow.state_handlers
            label = f"Flow '{flow.name}'"
            running: State = Running(message="Running flow.")
            if handlers:
                running = call_state_handlers(flow, handlers, Pending(), running, logger, label)
            try:
                if not running.is_running():
                    # A handler failed: no task runs.
                    raise _NotStarted(running)
                with executor.start():
                    scheduler.run()
            except _NotStarted as exc:
                state = exc.state
                note = f"Flow run FAILED: {state.message}"
            except _TaskRaised as exc:
                # The task runner has logged the traceback; the caller gets the exception.
                raised = exc.error
                note = (
                    f"Flow run FAILED: task '{exc.name}' raised {safe_repr(raised)} "
                    "(raise_on_exception)"
                )
                state = Failed(message=note, result=scheduler.states_in(order), exception=raised)
            except Exception as exc:
                error = exc
                if scheduler.raise_on_exception:
                    raised = exc
                note = f"Unexpected error while running flow: {safe_repr(exc)}"
                state = Failed(
                    message=note,
                    result=scheduler.states_in(order),
                    exception=exc,
                    traceback=traceback.format_exc(),
                )
            else:
                states = scheduler.states_in(order)
                if all(states[t].is_successful() for t in flow.reference_tasks()):
                    note = "Flow run SUCCESS: all reference tasks succeeded"
                    state = Success(message="All reference tasks succeeded.", result=states)
                else:
                    note = "Flow run FAILED: some reference tasks failed."
                    state = Failed(message="Some reference tasks failed.", result=states)
            if handlers and running.is_running():
                final = call_state_handlers(flow, handlers, running, state, logger, label)
                if final is not state:
                    state = final
                    outcome = "SUCCESS" if state.is_successful() else "FAILED"
                    note = f"Flow run {outcome}: {state.message} (set by a state handler)"
            if (
                raised is None
                and scheduler.raise_on_exception
                and isinstance(state, Failed)
                and isinstance(state.exception, Exception)
            ):
                raised = state.exception  # a state handler's error
            logger.log(
                logging.INFO if state.is_successful() else logging.ERROR,
                note,
                exc_info=error,
                lifecycle="flow_run_finished",
                state=type(state).__name__,
                duration_s=_elapsed(started),
            )
            if raised is not None:
                raise raised
            return state

    def _executor(self, executor: Executor | None) -> Executor:
        chosen = executor if executor is not None else self.flow.executor
        if chosen is None:
            return LocalExecutor()
        if isinstance(chosen, type) and issubclass(chosen, Executor):
            raise TypeError(
                f"Flow {self.flow.name!r}: executor must be an instance, got the class "
                f"{chosen.__name__}; use executor={chosen.__name__}()"
            )
        if not isinstance(chosen, Executor):
            raise TypeError(
                f"Flow {self.flow.name!r}: executor must be a structflow.executors.Executor, "
                f"got {safe_repr(chosen)}"
            )
        return chosen

    def _run_context(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """The date keys, then the keys *given* (which win over them, as in Prefect 1)."""
        keys = _dates(datetime.now(UTC))
        if given is None:
            return keys
        if not isinstance(given, Mapping) or not all(isinstance(k, str) for k in given):
            raise TypeError(
                f"Flow {self.flow.name!r}: run(context=...) takes a mapping of context keys "
                f"to values, got {safe_repr(given)}"
            )
        reserved = sorted(set(given) & _ENGINE_KEYS)
        if reserved:
            raise TypeError(
                f"Flow {self.flow.name!r}: run(context=...) cannot set "
                f"{', '.join(map(repr, reserved))}; the flow run sets those"
            )
        return {**keys, **given}

    def _parameter_values(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        flow = self.flow
        if given is None:
            given = {}
        if not isinstance(given, Mapping):
            raise TypeError(
                f"Flow {flow.name!r}: run(parameters=...) takes a mapping of parameter "
                f"names to values, got {type(given).__name__}"
            )
        params = {p.name: p for p in sorted(flow.parameters(), key=lambda p: p.name)}
        unknown = [k for k in given if k not in params]
        if unknown:
            known = ", ".join(map(repr, params)) or "none"
            raise FlowError(
                f"Flow {flow.name!r} has no parameter {', '.join(map(safe_repr, unknown))}; "
                f"its parameters are: {known}"
            )
        missing = [n for n, p in params.items() if p.required and n not in given]
        if missing:
            raise FlowError(
                f"Flow {flow.name!r} is missing required parameter "
                f"{', '.join(map(repr, missing))}; pass it as "
                f"flow.run(parameters={{{missing[0]!r}: ...}})"
            )
        return {n: given.get(n, p.default) for n, p in params.items()}


class _Scheduler:
    """The loop of one flow run: submit ready task runs, collect finished ones."""

    def __init__(self, flow: Flow, order: list[Task], executor: Executor) -> None:
        self.flow = flow
        self.executor = executor
        self.snapshot = context.snapshot()
        self.raise_on_exception = bool(context.get(RAISE_ON_EXCEPTION))
        self.logger = get_logger(TASK_RUNNER_LOGGER)
        self.states: dict[Task, State] = {}
        self.waiting = {t: len(flow.upstream_tasks(t)) for t in order}
        self.ready = deque(t for t in order if self.waiting[t] == 0)
        self.running: dict[TaskFuture[State], _Submitted] = {}
        self.retries: list[_DueRetry] = []
        self._seq = itertools.count()

    def states_in(self, order: list[Task]) -> dict[Task, State]:
        return {t: self.states[t] for t in order if t in self.states}

    def run(self) -> None:
        while True:
            while self.ready:
                self._start(self.ready.popleft())
            self._submit_due_retries()
            if not self.running and not self.retries:
                return
            timeout = None
            if self.retries:
                timeout = max(0.0, self.retries[0].due - time.monotonic())
            if not self.running:
                time.sleep(timeout or 0.0)
                continue
            for future in self.executor.wait_first(list(self.running), timeout):
                submitted = self.running.pop(future)
                self._collect(submitted, self._state_of(future, submitted))

    # --- starting a task --------------------------------------------------------

    def _start(self, task: Task) -> None:
        run_id = str(uuid.uuid4())
        upstream = self.flow.upstream_tasks(task)
        if task.skip_on_upstream_skip and any(self.states[u].is_skipped() for u in upstream):
            # Before the trigger, as in Prefect 1: a skip is passed on.
            skipped = Skipped(
                message="Upstream task was skipped; if this was not the intent, consider "
                "changing `skip_on_upstream_skip=False` for this task."
            )
            self._settle_unrun(task, run_id, skipped)
            return
        not_ok = [u for u in upstream if not self.states[u].is_successful()]
        if task.trigger is all_successful:
            if not_ok:
                names = ", ".join(repr(u.name) for u in sorted(not_ok, key=lambda u: u.name))
                self._settle_unrun(
                    task,
                    run_id,
                    TriggerFailed(
                        message=(
                            f'Trigger was "all_successful" but some of the upstream tasks '
                            f"failed: {names}"
                        )
                    ),
                )
                return
        else:
            with _task_context(task, run_id, None, 1, self.flow._slugs[task]):
                refused = self._trigger_refuses(task)
            if refused is not None:
                self._settle_unrun(task, run_id, refused)
                return
        inputs = self.flow.inputs(task)
        if not inputs.mapped:
            args = tuple(self._resolve(a) for a in inputs.args)
            kwargs = {k: self._resolve(v) for k, v in inputs.kwargs.items()}
            call = TaskCall(
                task, args, kwargs, self.snapshot, run_id, task_slug=self.flow._slugs[task]
            )
            self._submit(call, None)
            return
        started = time.perf_counter()
        with _task_context(task, run_id, None, 1, self.flow._slugs[task]):
            self.logger.info(
                f"Task '{task.name}': Starting task run...", lifecycle="task_run_started"
            )
            try:
                children = self._map_calls(task, inputs)
            except FlowError as exc:
                self.logger.error(f"Task '{task.name}': {exc}")
                failed = self._handled(task, Pending(), Failed(message=str(exc), exception=exc))
                self._log_finished(task.name, failed, started)
                self._finish(task, failed)
                return
            if not children:
                empty = self._handled(
                    task, Pending(), Mapped(message="Mapped over no items.", result=[])
                )
                self._log_finished(task.name, empty, started)
                self._finish(task, empty)
                return
        parent = _MapRun(task, run_id, [None] * len(children), len(children), started)
        for i, (args, kwargs) in enumerate(children):
            call = TaskCall(
                task,
                args,
                kwargs,
                self.snapshot,
                str(uuid.uuid4()),
                map_index=i,
                task_slug=self.flow._slugs[task],
            )
            self._submit(call, parent)

    def _trigger_refuses(self, task: Task) -> State | None:
        """Ask the task's own trigger; return the state it ends the run with, or None to run."""
        upstream_states = {e: self.states[e.upstream_task] for e in self.flow.edges_to(task)}
        try:
            if task.trigger(upstream_states):
                return None
            return TriggerFailed(message="Trigger failed")
        except TRIGGERFAIL as signal:
            return TriggerFailed(message=str(signal), exception=signal)
        except SKIP as signal:
            return Skipped(message=signal.message, result=signal.result)
        except Exception as exc:
            note = f"Unexpected error while checking the trigger: {safe_repr(exc)}"
            self.logger.error(f"Task '{task.name}': {note}", exc_info=True)
            return Failed(message=note, exception=exc, traceback=traceback.format_exc())

    def _settle_unrun(self, task: Task, run_id: str, state: State) -> None:
        """End a task run its upstream states decided: its handlers, its finished record."""
        with _task_context(task, run_id, None, 1, self.flow._slugs[task]):
            state = self._handled(task, Pending(), state)
            self.logger.info(
                f"Task '{task.name}': Finished task run for task with final state: "
                f"'{type(state).__name__}'",
                lifecycle="task_run_finished",
                state=type(state).__name__,
                duration_s=0.0,
            )
        self._finish(task, state)

    def _handled(self, task: Task, old: State, new: State) -> State:
        """*new* after the task's state handlers; called in the task run's context."""
        if not task.state_handlers:
            return new
        return call_state_handlers(
            task, task.state_handlers, old, new, self.logger, f"Task '{task.name}'"
        )

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, Task):
            return self.states[value].result
        if isinstance(value, unmapped):
            return self._resolve(value.value)
        if isinstance(value, flatten):
            return _flattened(self._resolve(value.value))
        if type(value) is list:
            return [self._resolve(v) for v in value]
        if type(value) is tuple:
            return tuple(self._resolve(v) for v in value)
        if type(value) is dict:
            return {k: self._resolve(v) for k, v in value.items()}
        return value

    def _map_calls(
        self, task: Task, inputs: Inputs
    ) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        """Split a mapped task's inputs into one (args, kwargs) per child."""
        lengths: dict[str, int] = {}
        whole: list[Any] = []  # values every child gets (from unmapped), by position

        def items(label: str, value: Any) -> list[Any] | None:
            if isinstance(value, unmapped):
                whole.append(self._resolve(value.value))
                return None
            resolved = self._resolve(value)
            if isinstance(resolved, str | bytes | bytearray | Mapping):
                raise FlowError(
                    f"cannot map over {label}: it is a {type(resolved).__name__}; map over "
                    f"a list (for a dict, pass list(d.items()) or wrap it in unmapped())"
                )
            try:
                seq = list(resolved)
            except TypeError:
                raise FlowError(
                    f"cannot map over {label}: {type(resolved).__name__} is not iterable; "
                    f"wrap it in unmapped() to give every child the same value"
                ) from None
            except Exception as exc:
                raise FlowError(
                    f"cannot map over {label}: iterating over it raised {safe_repr(exc)}"
                ) from exc
            lengths[label] = len(seq)
            return seq

        names = positional_names(task, len(inputs.args))
        labels = [f"argument {n!r}" if n else f"argument {i}" for i, n in enumerate(names)]
        args = [items(label, v) for label, v in zip(labels, inputs.args, strict=True)]
        kwargs = {k: items(f"argument {k!r}", v) for k, v in inputs.kwargs.items()}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{label} has {n}" for label, n in lengths.items())
            raise FlowError(f"mapped arguments must have the same length: {shown}")
        count = next(iter(lengths.values()))
        shared = iter(whole)
        columns = [seq if seq is not None else [next(shared)] * count for seq in args]
        named = {k: seq if seq is not None else [next(shared)] * count for k, seq in kwargs.items()}
        return [
            (tuple(col[i] for col in columns), {k: col[i] for k, col in named.items()})
            for i in range(count)
        ]

    # --- running and collecting -------------------------------------------------

    def _submit(self, call: TaskCall, parent: _MapRun | None) -> None:
        submitted = _Submitted(call, parent)
        try:
            future = self.executor.submit(run_task, call)
        except Exception as exc:
            # For example arguments a process-based executor cannot pickle:
            # only this task run fails.
            self._collect(submitted, self._executor_failure(submitted, exc))
            return
        self.running[future] = submitted

    def _submit_due_retries(self) -> None:
        now = time.monotonic()
        while self.retries and self.retries[0].due <= now:
            retry = heapq.heappop(self.retries)
            self._submit(retry.call, retry.parent)

    def _state_of(self, future: TaskFuture[State], submitted: _Submitted) -> State:
        """Return the state a finished future holds, or Failed if the executor failed."""
        try:
            state = future.result()
            if not isinstance(state, State):
                raise TypeError(f"the executor returned {safe_repr(state)} instead of a State")
        except Exception as exc:
            return self._executor_failure(submitted, exc)
        return state

    def _executor_failure(self, submitted: _Submitted, exc: Exception) -> State:
        """Log and return the state of a task run the executor could not run or return."""
        call = submitted.call
        name = _full_name(call.task, call.map_index)
        formatted = "".join(traceback.format_exception(exc))
        failed = Failed(
            message=f"Executor error: {safe_repr(exc)}", exception=exc, traceback=formatted
        )
        with (
            context.restore(self.snapshot),
            _task_context(
                call.task, call.task_run_id, call.map_index, call.run_count, call.task_slug
            ),
        ):
            state = self._handled(call.task, Running(), failed)
            self.logger.error(
                f"Task '{name}': the executor could not run the task or return its "
                f"result: {safe_repr(exc)}",
                exc_info=exc,
                lifecycle="task_run_finished",
                state=type(state).__name__,
                duration_s=_elapsed(submitted.started),
            )
        return state

    def _collect(self, submitted: _Submitted, state: State) -> None:
        call, parent = submitted.call, submitted.parent
        if self.raise_on_exception and isinstance(state, Failed) and state.exception is not None:
            raise _TaskRaised(_full_name(call.task, call.map_index), state.exception)
        if isinstance(state, Retrying):
            delay = 0.0
            if state.start_time is not None:
                delay = max(0.0, (state.start_time - datetime.now(UTC)).total_seconds())
            next_call = replace(call, run_count=call.run_count + 1, loop=state.loop)
            heapq.heappush(
                self.retries,
                _DueRetry(time.monotonic() + delay, next(self._seq), next_call, parent),
            )
            return
        if parent is None:
            self._finish(call.task, state)
            return
        assert call.map_index is not None
        parent.states[call.map_index] = state
        parent.left -= 1
        if parent.left == 0:
            self._finish_mapped(parent)

    def _finish_mapped(self, parent: _MapRun) -> None:
        children = [s for s in parent.states if s is not None]
        failed = [i for i, s in enumerate(children) if not s.is_successful()]
        state: State
        if failed:
            state = Failed(
                message=(
                    f"{len(failed)} of {len(children)} mapped task runs failed "
                    f"(map_index {', '.join(map(str, failed))})"
                ),
                map_states=children,
            )
        else:
            state = Mapped(
                message=f"Ran {len(children)} mapped task runs.",
                result=[s.result for s in children],
                map_states=children,
            )
        with _task_context(parent.task, parent.task_run_id, None, 1, self.flow._slugs[parent.task]):
            state = self._handled(parent.task, Pending(), state)
            self._log_finished(parent.task.name, state, parent.started)
        self._finish(parent.task, state)

    def _log_finished(self, name: str, state: State, started: float) -> None:
        self.logger.info(
            f"Task '{name}': Finished task run for task with final state: '{type(state).__name__}'",
            lifecycle="task_run_finished",
            state=type(state).__name__,
            duration_s=_elapsed(started),
        )

    def _finish(self, task: Task, state: State) -> None:
        self.states[task] = state
        # The flow's own ordered adjacency keeps runs in a reproducible order.
        for down in self.flow._downstream[task]:
            self.waiting[down] -= 1
            if self.waiting[down] == 0:
                self.ready.append(down)
